/*
 * sr_rset.c - an ordered set of PCRE2 patterns with a literal-prefix trie:
 * building and freeing. The phases live in their own files (see
 * sr_rset_int.h for the map).
 *
 * Idea (the RE2::Set / Hyperscan "literal prefilter" shape, written from
 * scratch): most route patterns start with literal prefixes (possibly
 * several, from groups of literal alternatives) followed by a common
 * remainder. All prefixes of all entries go into one trie; a match walks
 * the subject through it once, collecting as candidates the entries whose
 * prefix it passes, plus the entries without a usable prefix. Candidates
 * are verified in list order, the cheapest way their remainder allows:
 *  - remainder empty: the prefix hit is the match (SR_VERIFY_LITERAL);
 *  - a literal tail or a glob "L0 (.* Li)* [$]": matched natively
 *    (SR_VERIFY_TAIL, SR_VERIFY_GLOB; for subjects with a newline, which
 *    '.' and '$' treat specially, PCRE2 decides);
 *  - otherwise quick rejects, then one anchored PCRE2 match of the
 *    remainder at offset = prefix length (SR_VERIFY_REGEX);
 *  - remainders that are not self-contained (backreferences, lookaround,
 *    options, alnum escapes) are verified with the whole pattern
 *    (SR_VERIFY_FULL), as are entries without a prefix.
 * Complete paths spelled out by patterns like '^/_matrix/client/v3/sync$'
 * are memoized at build time with their answer per method.
 *
 * Concurrency: a set owns one pcre2_match_data, one match context and one
 * candidate scratch area; sr_rset_match / sr_rset_match_loop write to them.
 * So a set is used by one caller at a time (in HAProxy every thread has its
 * own Lua state, hence its own router and set). There is no mutable static
 * state in any of these files.
 */
#include <stdlib.h>
#include <string.h>

#include "sr_rset_int.h"

/* PCRE2 compile options shared by full patterns and remainders: anchored at
 * the start offset (the contract says patterns are matched anchored), never
 * UTF (paths are bytes; no UTF validity errors on hostile input). */
#define RS_COPTS (PCRE2_ANCHORED | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP)

/* What building needs besides the set itself. */
typedef struct {
    rs_exp *x;    /* the current entry's prefixes (scratch)        */
    rs_end *ends; /* where every prefix ends in the byte trie      */
    size_t n_ends, cap_ends;
    rs_memo_list memo; /* complete paths for the exact-path memo        */
} rs_build;

/* Frees everything the set owns; NULL is a no-op. */
void sr_rset_free(sr_rset *s)
{
    if (!s) return;
    for (size_t i = 0; s->e && i < s->n; i++) {
        rs_entry *en = &s->e[i];
        pcre2_code_free(en->full);
        pcre2_code_free(en->rest);
        rs_glob_free(en->glob);
        rs_glob_free(en->suffix);
        rs_glob_free(en->pre);
        free(en->pattern);
        free(en->name);
    }
    rs_trie_free(s);
    rs_memo_free(s);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->jstack);
    {
        void *const owned[] = { s->e, s->always, s->cand, s };
        sr_free_all(owned, sizeof owned / sizeof owned[0]);
    }
}

/* Compile with JIT if possible; JIT failure is not an error (*jit_ok is
 * cleared: this code runs interpreted). NULL on a pattern error. */
static pcre2_code *compile(const char *pat, int *errcode, PCRE2_SIZE *erroff, int *jit_ok)
{
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, RS_COPTS,
                                  errcode, erroff, NULL);
    if (c && pcre2_jit_compile(c, PCRE2_JIT_COMPLETE) != 0) *jit_ok = 0;
    return c;
}

/* An empty set for n entries with its match context; NULL on out of
 * memory. */
static sr_rset *set_alloc(size_t n)
{
    sr_rset *s = calloc(1, sizeof *s);
    uint32_t has_jit = 0;
    if (!s) return NULL;
    s->n = n;
    s->nwords = (n + 63) / 64;
    s->e = calloc(n ? n : 1, sizeof *s->e);
    s->always = calloc(s->nwords ? s->nwords : 1, sizeof *s->always);
    s->cand = calloc(s->nwords ? s->nwords : 1, sizeof *s->cand);
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->e || !s->always || !s->cand || !s->md || !s->mctx || !rs_trie_init(s)) {
        sr_rset_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, RS_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, RS_DEPTH_LIMIT);
    if (pcre2_config(PCRE2_CONFIG_JIT, &has_jit) < 0) has_jit = 0;
    s->jit = has_jit ? 1 : 0;
    if (has_jit) {
        s->jstack = pcre2_jit_stack_create(32 * 1024, RS_JIT_STACK_MAX, NULL);
        if (s->jstack) pcre2_jit_stack_assign(s->mctx, NULL, s->jstack);
    }
    return s;
}

/* Entry i's copies, mask and whole-pattern code. 0 with *err filled on a
 * bad pattern or out of memory. */
static int entry_compile(sr_rset *s, size_t i, const char *pat, unsigned mask,
                         const char *name, sr_error *err)
{
    rs_entry *e = &s->e[i];
    int ec = 0;
    PCRE2_SIZE eo = 0;
    if (!pat) {
        sr_errf(err, SR_AT_ENTRY, i, name, "no pattern");
        return 0;
    }
    e->mask = (mask & SR_M_ALL) ? (mask & SR_M_ALL) : SR_M_ALL;
    e->pattern = sr_strdup(pat);
    e->name = sr_strdup(name);
    if (!e->pattern || (name && !e->name)) {
        sr_err_input(err, "out of memory");
        return 0;
    }
    e->full = compile(pat, &ec, &eo, &s->jit);
    if (!e->full) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
            sr_errf(err, SR_AT_ENTRY, i, name, "offset %zu: error %d", (size_t)eo, ec);
        else
            sr_errf(err, SR_AT_ENTRY, i, name, "offset %zu: %s", (size_t)eo, (const char *)msg);
        return 0;
    }
    return 1;
}

/* How entry e, whose remainder pat + roff follows the literal prefixes in
 * x, is verified; compiles what that needs. Never fails: without memory
 * for a shortcut the entry falls back to a slower, equally exact way. */
static void entry_classify(sr_rset *s, rs_entry *e, const rs_exp *x, const char *rest)
{
    int ec = 0;
    PCRE2_SIZE eo = 0;
    if (!rs_rest_is_standalone(rest)) {
        e->verify = SR_VERIFY_FULL;
        e->why = "the rest needs the whole pattern (backreference, lookaround, option or escape)";
    } else if (rs_prefixes_nest(x)) {
        e->verify = SR_VERIFY_FULL;
        e->why = "one of its prefixes starts another";
    } else if (rest[0] == '\0') {
        e->verify = SR_VERIFY_LITERAL;
    } else if (!(e->rest = compile(rest, &ec, &eo, &s->jit))) {
        e->verify = SR_VERIFY_FULL;
        e->why = "the rest does not compile alone";
    } else if ((e->glob = rs_glob_compile(rest)) != NULL) {
        e->verify = e->glob->nseg == 1 ? SR_VERIFY_TAIL : SR_VERIFY_GLOB;
    } else {
        e->verify = SR_VERIFY_REGEX;
        e->pre = rs_superset_compile(rest);
        e->suffix = rs_suffix_compile(rest);
    }
}

/* Record that a prefix of entry i ends at byte-trie node `node`. */
static int add_end(rs_build *b, long node, size_t i)
{
    if (node < 0) return 0;
    if (b->n_ends == b->cap_ends) {
        size_t nc = b->cap_ends ? b->cap_ends * 2 : 256;
        rs_end *ne = realloc(b->ends, nc * sizeof *ne);
        if (!ne) return 0;
        b->ends = ne;
        b->cap_ends = nc;
    }
    b->ends[b->n_ends].node = (unsigned)node;
    b->ends[b->n_ends].entry = (unsigned)i;
    b->n_ends++;
    return 1;
}

/* Add entry i: compile it, find its prefixes, choose its verification,
 * collect its complete paths and insert its prefixes into the trie. 0 with
 * *err filled on a bad pattern or out of memory. */
static int entry_add(sr_rset *s, rs_build *b, size_t i, const char *pat,
                     unsigned mask, const char *name, sr_error *err)
{
    rs_entry *e = &s->e[i];
    if (!entry_compile(s, i, pat, mask, name, err)) return 0;
    e->roff = rs_extract_prefixes(pat, b->x);
    if (e->roff == 0) {
        s->always[i / 64] |= (uint64_t)1 << (i % 64);
        e->verify = SR_VERIFY_FULL;
        e->why = rs_why_no_prefix(pat);
        return 1;
    }
    e->nprefix = b->x->n;
    entry_classify(s, e, b->x, pat + e->roff);
    if (strcmp(pat + e->roff, "$") == 0 && !rs_memo_collect(&b->memo, b->x, (unsigned)i)) {
        sr_err_input(err, "out of memory");
        return 0;
    }
    for (size_t a = 0; a < b->x->n; a++)
        if (!add_end(b, rs_trie_insert(s, b->x->s[a], b->x->len[a]), i)) {
            sr_err_input(err, "out of memory");
            return 0;
        }
    return 1;
}

/* The dictionary of the runs that globs and superset globs search. */
static int dict_build(sr_rset *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!rs_dict_add(&s->dict, s->e[i].glob, &s->e[i].req) ||
            !rs_dict_add(&s->dict, s->e[i].pre, &s->e[i].req))
            return 0;
    rs_dict_finish(&s->dict);
    return 1;
}

static void build_free(rs_build *b)
{
    free(b->x);
    free(b->ends);
    rs_memo_list_free(&b->memo);
}

/* Build a set from patterns[i] (NUL-terminated), masks[i] (0 = any; masks
 * may be NULL) and names[i] (names may be NULL). Patterns need not start
 * with '^' (they are compiled PCRE2_ANCHORED either way; only '^'-patterns
 * get a literal prefix). The set owns copies of everything; the caller's
 * arrays may be freed afterwards. NULL with *err filled (err may be NULL)
 * on a bad pattern or out of memory. Never raises. */
sr_rset *sr_rset_new(const char *const *patterns, const unsigned *masks,
                     const char *const *names, size_t n, sr_error *err)
{
    rs_build b;
    sr_rset *s;
    sr_err_clear(err);
    if (n > 0 && !patterns) {
        sr_err_input(err, "no patterns");
        return NULL;
    }
    if (n > 0x7fffffff) {
        sr_err_input(err, "too many patterns");
        return NULL;
    }
    memset(&b, 0, sizeof b);
    s = set_alloc(n);
    b.x = malloc(sizeof *b.x);
    if (!s || !b.x) goto oom;
    for (size_t i = 0; i < n; i++)
        if (!entry_add(s, &b, i, patterns[i], masks ? masks[i] : 0,
                       names ? names[i] : NULL, err))
            goto fail;
    if (!rs_trie_finish(s, b.ends, b.n_ends) || !dict_build(s) || !rs_memo_build(s, &b.memo))
        goto oom;
    build_free(&b);
    return s;
oom:
    sr_err_input(err, "out of memory");
fail:
    build_free(&b);
    sr_rset_free(s);
    return NULL;
}

/* 1 if PCRE2 has JIT and every pattern of the set got JIT code. */
int sr_rset_jit(const sr_rset *s) { return s ? s->jit : 0; }

/* Number of entries (0 for NULL). */
size_t sr_rset_size(const sr_rset *s) { return s ? s->n : 0; }
