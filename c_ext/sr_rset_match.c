/*
 * sr_rset_match.c - matching: the exact-path memo, then one walk through
 * the prefix trie for the candidates, then the candidates verified in list
 * order, each the cheapest way its remainder allows (sr_verify). The first
 * verified candidate is the answer, exactly as the naive loop
 * (sr_rset_match_loop) gives, because a pattern whose literal prefix does
 * not start the subject cannot match it.
 *
 * Both functions use the set's scratch (candidate bitset, PCRE2 match data):
 * one caller at a time. Neither allocates or fails: no match, or a PCRE2
 * resource limit, is -1.
 */
#include <string.h>

#include "sr_rset_int.h"

/* One anchored PCRE2 match at offset off. 1 match, 0 no match, -1
 * limit/error. */
static int run(const sr_rset *s, const pcre2_code *c, const char *subj,
               size_t len, size_t off)
{
    int rc = pcre2_match(c, (PCRE2_SPTR)subj, len, off, 0, s->md, s->mctx);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return -1;
}

/* What one match call knows about its subject, computed on first need. */
typedef struct {
    const char *subj;
    size_t len;
    int has_nl;   /* -1 unknown, else 0/1: a '\n' in the subject  */
    rs_ctx dict;  /* dictionary runs found (dict.done: scanned)   */
    rs_visit vis; /* trie nodes passed, for prefix lengths        */
} rs_subject;

static int has_newline(rs_subject *q)
{
    if (q->has_nl < 0) q->has_nl = memchr(q->subj, '\n', q->len) != NULL;
    return q->has_nl;
}

/* 0 if a dictionary run entry en needs is nowhere in the subject. */
static int required_runs_present(const sr_rset *s, const rs_entry *en, rs_subject *q)
{
    if (!en->req || q->len > 0xffffffffu) return 1;
    if (!q->dict.done) rs_dict_scan(&s->dict, &q->dict, q->subj, q->len);
    return (en->req & ~q->dict.found) == 0;
}

/* SR_VERIFY_GLOB / SR_VERIFY_REGEX: the remainder at the prefix end plen.
 * Without a newline in the subject the glob decides, or the quick rejects
 * may; PCRE2 has the last word. 1 match, 0 not, -1 limit. */
static int verify_rest(const sr_rset *s, const rs_entry *en, rs_subject *q, size_t plen)
{
    if ((en->glob || en->suffix || en->pre) && !has_newline(q)) {
        if (en->glob) return rs_glob_match(&s->dict, &q->dict, en->glob, q->subj, q->len, plen);
        if (en->suffix && !rs_suffix_ok(en->suffix, q->subj, q->len)) return 0;
        if (en->pre && !rs_glob_match(&s->dict, &q->dict, en->pre, q->subj, q->len, plen)) return 0;
    }
    return run(s, en->rest, q->subj, q->len, plen);
}

/* Does candidate e match the subject? 1 match, 0 not, -1 limit. */
static int verify(const sr_rset *s, unsigned e, rs_subject *q)
{
    const rs_entry *en = &s->e[e];
    if (en->verify == SR_VERIFY_LITERAL) return 1;
    if (!required_runs_present(s, en, q)) return 0;
    switch (en->verify) {
    case SR_VERIFY_TAIL:
        return rs_tail_match(en->glob, q->subj, q->len, rs_prefix_len(s, &q->vis, e));
    case SR_VERIFY_GLOB:
    case SR_VERIFY_REGEX:
        return verify_rest(s, en, q, rs_prefix_len(s, &q->vis, e));
    default:
        return run(s, en->full, q->subj, q->len, 0);
    }
}

/* The first entry of the candidate bitset, in list order, whose method mask
 * has mbit and which verifies; -1 if none or on a PCRE2 limit. */
static int first_verified(const sr_rset *s, const uint64_t *cand, unsigned mbit,
                          rs_subject *q)
{
    for (size_t w = 0; w < s->nwords; w++) {
        uint64_t bits = cand[w];
        while (bits) {
            unsigned e = (unsigned)(w * 64 + (unsigned)__builtin_ctzll(bits));
            int r;
            bits &= bits - 1;
            if (!(s->e[e].mask & mbit)) continue;
            r = verify(s, e, q);
            if (r == 1) return (int)e;
            if (r < 0) return -1;
        }
    }
    return -1;
}

/* The index of the first entry whose pattern matches subject[0..len) and
 * whose method mask has mbit (0 = any method), or -1 (no match, a PCRE2
 * limit, NULL or empty set). Uses the set's scratch: one caller at a
 * time. Never fails, never allocates. */
int sr_rset_match(const sr_rset *s, const char *subject, size_t len,
                  unsigned mbit)
{
    rs_subject q;
    int ans;
    if (!s || s->n == 0) return -1;
    if (!subject) {
        subject = "";
        len = 0;
    }
    if (mbit == 0) mbit = SR_M_ALL;
    if (rs_memo_lookup(s, subject, len, mbit, &ans)) return ans;
    q.subj = subject;
    q.len = len;
    q.has_nl = -1;
    q.dict.done = 0;
    for (size_t w = 0; w < s->nwords; w++) s->cand[w] = s->always[w];
    rs_trie_walk(s, subject, len, s->cand, &q.vis);
    return first_verified(s, s->cand, mbit, &q);
}

/* The reference answer: every full pattern in order, with the same limits.
 * Same returns and scratch rule as sr_rset_match. */
int sr_rset_match_loop(const sr_rset *s, const char *subject, size_t len,
                       unsigned mbit)
{
    if (!s) return -1;
    if (!subject) {
        subject = "";
        len = 0;
    }
    if (mbit == 0) mbit = SR_M_ALL;
    for (size_t i = 0; i < s->n; i++) {
        int r;
        if (!(s->e[i].mask & mbit)) continue;
        r = run(s, s->e[i].full, subject, len, 0);
        if (r == 1) return (int)i;
        if (r < 0) return -1;
    }
    return -1;
}
