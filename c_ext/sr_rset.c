/*
 * sr_rset.c - an ordered set of PCRE2 patterns with a literal-prefix trie.
 *
 * Idea (the RE2::Set / Hyperscan "literal prefilter" shape, written from
 * scratch): most route patterns start with a run of plain literals, possibly
 * interleaved with groups of purely literal alternatives, e.g.
 *     ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*\/send
 * expands to four literal prefixes ("/_matrix/client/api/v1/rooms/", ...)
 * followed by a common remainder (".*\/send"). All prefixes of all entries go
 * into one byte trie. A match walks the subject through the trie once; every
 * trie node where some entry's prefix ends marks that entry as a candidate and
 * records the prefix length. Entries with an empty prefix are candidates for
 * every subject. Candidates are then verified in list order, each by one
 * anchored PCRE2 match of its remainder at offset = prefix length (or of the
 * whole pattern when the remainder cannot be compiled on its own safely).
 * The first verified candidate is the answer, exactly as the naive loop
 * (sr_rset_match_loop) would give, because a pattern whose literal prefix
 * does not start the subject cannot match it.
 *
 * Concurrency: a set owns one pcre2_match_data, one match context and one
 * candidate scratch area; sr_rset_match / sr_rset_match_loop write to them.
 * So a set must be used by one caller at a time (HAProxy's Lua lock
 * serializes converter calls; every Lua state owns its own objects). There is
 * no mutable static state in this file.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_core.h"

/* Limits: the number of literal prefixes one pattern may expand to, the
 * longest literal prefix we index, and PCRE2's resource limits. */
#define RS_MAX_EXPAND   64
#define RS_MAX_PREFIX   256
#define RS_MATCH_LIMIT  1000000u
#define RS_DEPTH_LIMIT  10000u
#define RS_JIT_STACK_MAX (1024u * 1024u)

/* PCRE2 compile options shared by full patterns and remainders: anchored at
 * the start offset (the contract says patterns are matched anchored), never
 * UTF (paths are bytes; no UTF validity errors on hostile input). */
#define RS_COPTS (PCRE2_ANCHORED | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP)

enum { V_LIT = 0, V_REST = 1, V_FULL = 2 };

typedef struct {
    pcre2_code *full;      /* the whole pattern (also used by the loop)     */
    pcre2_code *rest;      /* remainder after the literal prefix, or NULL   */
    unsigned mask;         /* method mask, SR_M_ALL when "any"              */
    int verify;            /* V_LIT: prefix hit is a match; V_REST; V_FULL  */
} rs_entry;

typedef struct {
    unsigned first_child;  /* node index, 0 = none (root is node 0)         */
    unsigned next_sibling; /* node index, 0 = none                          */
    unsigned ends_off;     /* into ends[]                                   */
    unsigned ends_cnt;     /* entries whose prefix ends exactly here        */
    unsigned char byte;
} rs_node;

struct sr_rset {
    size_t n;
    rs_entry *e;
    rs_node *nodes; size_t n_nodes, cap_nodes;
    unsigned *ends;        /* entry indices, grouped per node               */
    size_t nwords;         /* bitset words                                  */
    uint64_t *always;      /* entries with an empty literal prefix          */
    uint64_t *cand;        /* scratch: candidate bitset (one caller at once)*/
    unsigned *plen;        /* scratch: prefix length per candidate entry    */
    pcre2_match_data *md;  /* scratch                                       */
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    int jit;               /* 1 if every compiled code is JIT-compiled      */
};

/* ------------------------------------------------------------------------ */
/* Literal prefix extraction.                                                */

/* Expansion state: up to RS_MAX_EXPAND strings of up to RS_MAX_PREFIX bytes. */
typedef struct {
    char s[RS_MAX_EXPAND][RS_MAX_PREFIX];
    size_t len[RS_MAX_EXPAND];
    size_t n;
} rs_exp;

static int is_quant(char c) { return c == '?' || c == '*' || c == '+' || c == '{'; }

static int is_meta(char c)
{
    return c == '\\' || c == '^' || c == '$' || c == '.' || c == '[' ||
           c == ']' || c == '|' || c == '(' || c == ')' || c == '?' ||
           c == '*' || c == '+' || c == '{' || c == '}';
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* One literal atom at p: a non-meta byte, or '\' + ASCII punctuation.
 * Returns the atom's length in the pattern (1 or 2) and its byte in *out,
 * or 0 if p does not start a simple literal. */
static size_t lit_atom(const char *p, char *out)
{
    if (*p == '\0') return 0;
    if (*p == '\\') {
        char c = p[1];
        if (c == '\0' || is_alnum(c) || (unsigned char)c >= 0x80 || c <= ' ') return 0;
        *out = c;
        return 2;
    }
    if (is_meta(*p)) return 0;
    *out = *p;
    return 1;
}

/* 1 if the pattern has a '|' at group depth 0 (outside classes/escapes):
 * then the leading '^' does not govern the whole pattern and we index no
 * prefix. Conservative on anything odd (unbalanced, \Q...\E): returns 1. */
static int has_top_level_alt(const char *p)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '\\') {
            if (p[1] == 'Q') return 1;
            if (p[1] == '\0') return 1;
            p++;
        } else if (*p == '[') {
            /* skip a character class: ']' first is literal */
            p++;
            if (*p == '^') p++;
            if (*p == ']') p++;
            while (*p && *p != ']') {
                if (*p == '\\' && p[1]) p++;
                else if (*p == '[' && p[1] == ':') {
                    const char *q = strstr(p + 2, ":]");
                    if (!q) return 1;
                    p = q + 1;
                }
                p++;
            }
            if (!*p) return 1;
        } else if (*p == '(') depth++;
        else if (*p == ')') { if (--depth < 0) return 1; }
        else if (*p == '|' && depth == 0) return 1;
    }
    return depth != 0;
}

/* Append byte c to every expansion. 0 if a prefix would get too long. */
static int exp_append(rs_exp *x, char c)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->len[i] + 1 >= RS_MAX_PREFIX) return 0;
    for (size_t i = 0; i < x->n; i++)
        x->s[i][x->len[i]++] = c;
    return 1;
}

/* Try to read a group "(alt|alt|...)" of simple literals at p (p[0]=='(').
 * On success returns the group's length in the pattern and fills alts
 * (alt_len per alternative, alt text) with at most RS_MAX_EXPAND entries. */
static size_t lit_group(const char *p, char alts[][RS_MAX_PREFIX],
                        size_t *alt_len, size_t *n_alts)
{
    size_t i = 1, k = 0;
    if (p[1] == '?' || p[1] == '*') return 0;          /* (?...) (*VERB) */
    alt_len[0] = 0;
    for (;;) {
        char c;
        size_t a;
        if (p[i] == ')') { i++; break; }
        if (p[i] == '|') {
            if (++k >= RS_MAX_EXPAND) return 0;
            alt_len[k] = 0;
            i++;
            continue;
        }
        a = lit_atom(p + i, &c);
        if (a == 0) return 0;
        if (is_quant(p[i + a])) return 0;                /* quantified atom */
        if (alt_len[k] + 1 >= RS_MAX_PREFIX) return 0;
        alts[k][alt_len[k]++] = c;
        i += a;
    }
    *n_alts = k + 1;
    return i;
}

/* Compute the literal prefixes of pattern pat. Returns the offset in pat
 * where the remainder starts (0 and x->n == 1 with an empty string when
 * there is no usable prefix). Works on scratch memory from the caller. */
static size_t extract_prefixes(const char *pat, rs_exp *x,
                               char alts[][RS_MAX_PREFIX], size_t *alt_len)
{
    size_t i;
    x->n = 1;
    x->len[0] = 0;
    if (pat[0] != '^' || has_top_level_alt(pat)) return 0;
    i = 1;
    for (;;) {
        char c;
        size_t a = lit_atom(pat + i, &c);
        if (a) {
            if (is_quant(pat[i + a])) break;
            if (!exp_append(x, c)) break;
            i += a;
            continue;
        }
        if (pat[i] == '(') {
            size_t nalt = 0, g = lit_group(pat + i, alts, alt_len, &nalt);
            size_t nn, j, k;
            if (g == 0 || is_quant(pat[i + g])) break;
            nn = x->n * nalt;
            if (nn > RS_MAX_EXPAND) break;
            for (k = 0; k < nalt; k++)
                for (j = 0; j < x->n; j++)
                    if (x->len[j] + alt_len[k] >= RS_MAX_PREFIX) return i; /* unchanged x */
            /* expand in place: new index = k * n + j; fill from the back */
            for (k = nalt; k-- > 0;) {
                for (j = x->n; j-- > 0;) {
                    size_t d = k * x->n + j;
                    if (d != j) {
                        memcpy(x->s[d], x->s[j], x->len[j]);
                        x->len[d] = x->len[j];
                    }
                }
            }
            {
                size_t oldn = x->n;
                x->n = nn;
                for (k = 0; k < nalt; k++)
                    for (j = 0; j < oldn; j++) {
                        size_t d = k * oldn + j;
                        memcpy(x->s[d] + x->len[d], alts[k], alt_len[k]);
                        x->len[d] += alt_len[k];
                    }
            }
            i += g;
            continue;
        }
        break;
    }
    if (x->n == 1 && x->len[0] == 0) return 0;
    return i;
}

/* 1 if the remainder text can be compiled on its own and matched at the
 * prefix end with the same meaning it has inside the whole pattern: no
 * backreferences, subroutine calls, conditions, lookarounds or option
 * settings (anything "(?" or "(*"), no alphanumeric escapes (\1, \g, \G ...). */
static int rest_is_standalone(const char *r)
{
    for (; *r; r++) {
        if (*r == '\\') {
            if (r[1] == '\0' || is_alnum(r[1])) return 0;
            r++;
        } else if (*r == '(' && (r[1] == '?' || r[1] == '*')) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Trie.                                                                     */

static int node_add(sr_rset *s)
{
    if (s->n_nodes == s->cap_nodes) {
        size_t nc = s->cap_nodes ? s->cap_nodes * 2 : 256;
        rs_node *nn = realloc(s->nodes, nc * sizeof *nn);
        if (!nn) return -1;
        s->nodes = nn;
        s->cap_nodes = nc;
    }
    memset(&s->nodes[s->n_nodes], 0, sizeof s->nodes[0]);
    return (int)s->n_nodes++;
}

/* Insert string; returns the node where it ends or -1 on OOM. */
static long trie_insert(sr_rset *s, const char *str, size_t len)
{
    unsigned cur = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)str[i];
        unsigned ch = s->nodes[cur].first_child, prev = 0;
        while (ch && s->nodes[ch].byte != b) { prev = ch; ch = s->nodes[ch].next_sibling; }
        if (!ch) {
            int nn = node_add(s);
            if (nn < 0) return -1;
            s->nodes[nn].byte = b;
            if (prev) s->nodes[prev].next_sibling = (unsigned)nn;
            else s->nodes[cur].first_child = (unsigned)nn;
            ch = (unsigned)nn;
        }
        cur = ch;
    }
    return (long)cur;
}

/* ------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, size_t idx, const char *name,
                    size_t off, const char *msg)
{
    if (!err || errlen == 0) return;
    if (name)
        snprintf(err, errlen, "entry %zu (\"%s\"): offset %zu: %s", idx, name, off, msg);
    else
        snprintf(err, errlen, "entry %zu: offset %zu: %s", idx, off, msg);
}

static void plain_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* Compile with JIT if possible; JIT failure is not an error. *jit_ok is
 * cleared when this code runs interpreted. NULL on a pattern error. */
static pcre2_code *compile(const char *pat, size_t len, int *errcode,
                           PCRE2_SIZE *erroff, int *jit_ok)
{
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, len, RS_COPTS, errcode, erroff, NULL);
    if (c && pcre2_jit_compile(c, PCRE2_JIT_COMPLETE) != 0) *jit_ok = 0;
    return c;
}

/* Per-entry index of where the prefixes end, gathered before flattening. */
typedef struct { unsigned node, entry; } rs_end;

static int cmp_end(const void *a, const void *b)
{
    const rs_end *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

sr_rset *sr_rset_new(const char *const *patterns, const unsigned *masks,
                     const char *const *names, size_t n,
                     char *err, size_t errlen)
{
    sr_rset *s;
    rs_exp *x = NULL;
    char (*alts)[RS_MAX_PREFIX] = NULL;
    size_t *alt_len = NULL;
    rs_end *ends = NULL;
    size_t n_ends = 0, cap_ends = 0;
    uint32_t has_jit = 0;

    if (err && errlen) err[0] = '\0';
    if (n > 0 && !patterns) { plain_err(err, errlen, "no patterns"); return NULL; }
    if (n > 0x7fffffff) { plain_err(err, errlen, "too many patterns"); return NULL; }
    s = calloc(1, sizeof *s);
    if (!s) { plain_err(err, errlen, "out of memory"); return NULL; }
    s->n = n;
    s->nwords = (n + 63) / 64;
    s->e = calloc(n ? n : 1, sizeof *s->e);
    s->always = calloc(s->nwords ? s->nwords : 1, sizeof *s->always);
    s->cand = calloc(s->nwords ? s->nwords : 1, sizeof *s->cand);
    s->plen = calloc(n ? n : 1, sizeof *s->plen);
    x = malloc(sizeof *x);
    alts = malloc(RS_MAX_EXPAND * sizeof *alts);
    alt_len = malloc(RS_MAX_EXPAND * sizeof *alt_len);
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->e || !s->always || !s->cand || !s->plen || !x || !alts || !alt_len ||
        !s->md || !s->mctx || node_add(s) < 0) {
        plain_err(err, errlen, "out of memory");
        goto fail;
    }
    pcre2_set_match_limit(s->mctx, RS_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, RS_DEPTH_LIMIT);
    if (pcre2_config(PCRE2_CONFIG_JIT, &has_jit) < 0) has_jit = 0;
    s->jit = has_jit ? 1 : 0;
    if (has_jit) {
        s->jstack = pcre2_jit_stack_create(32 * 1024, RS_JIT_STACK_MAX, NULL);
        if (s->jstack) pcre2_jit_stack_assign(s->mctx, NULL, s->jstack);
    }

    for (size_t i = 0; i < n; i++) {
        const char *pat = patterns[i];
        const char *name = names ? names[i] : NULL;
        int ec = 0;
        PCRE2_SIZE eo = 0;
        size_t roff;
        rs_entry *e = &s->e[i];

        if (!pat) { set_err(err, errlen, i, name, 0, "no pattern"); goto fail; }
        e->mask = (masks && masks[i]) ? (masks[i] & SR_M_ALL) : SR_M_ALL;
        if (e->mask == 0) e->mask = SR_M_ALL;
        e->full = compile(pat, PCRE2_ZERO_TERMINATED, &ec, &eo, &s->jit);
        if (!e->full) {
            PCRE2_UCHAR msg[256];
            if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
                snprintf((char *)msg, sizeof msg, "error %d", ec);
            set_err(err, errlen, i, name, (size_t)eo, (const char *)msg);
            goto fail;
        }

        roff = extract_prefixes(pat, x, alts, alt_len);
        if (roff == 0) {
            s->always[i / 64] |= (uint64_t)1 << (i % 64);
            e->verify = V_FULL;
            continue;
        }
        /* verification mode */
        if (pat[roff] == '\0') e->verify = V_LIT;
        else if (rest_is_standalone(pat + roff)) e->verify = V_REST;
        else e->verify = V_FULL;
        /* prefixes where one starts another: a subject could hit the
         * entry at two lengths; verify with the whole pattern then. */
        for (size_t a = 0; a < x->n && e->verify != V_FULL; a++)
            for (size_t b = 0; b < x->n; b++)
                if (a != b && x->len[a] <= x->len[b] &&
                    memcmp(x->s[a], x->s[b], x->len[a]) == 0) {
                    e->verify = V_FULL;
                    break;
                }
        if (e->verify == V_LIT) {
            /* a literal-only pattern: a trie hit at the prefix end IS a
             * match, but only if nothing duplicates; V_FULL covers that */
        } else if (e->verify == V_REST) {
            int ec2 = 0;
            PCRE2_SIZE eo2 = 0;
            e->rest = compile(pat + roff, PCRE2_ZERO_TERMINATED, &ec2, &eo2, &s->jit);
            if (!e->rest) e->verify = V_FULL;   /* be safe: whole pattern */
        }
        for (size_t a = 0; a < x->n; a++) {
            long node = trie_insert(s, x->s[a], x->len[a]);
            if (node < 0) { plain_err(err, errlen, "out of memory"); goto fail; }
            if (n_ends == cap_ends) {
                size_t nc = cap_ends ? cap_ends * 2 : 256;
                rs_end *ne = realloc(ends, nc * sizeof *ne);
                if (!ne) { plain_err(err, errlen, "out of memory"); goto fail; }
                ends = ne;
                cap_ends = nc;
            }
            ends[n_ends].node = (unsigned)node;
            ends[n_ends].entry = (unsigned)i;
            n_ends++;
        }
    }

    /* flatten the (node, entry) pairs into per-node runs */
    if (n_ends) {
        qsort(ends, n_ends, sizeof *ends, cmp_end);
        s->ends = malloc(n_ends * sizeof *s->ends);
        if (!s->ends) { plain_err(err, errlen, "out of memory"); goto fail; }
        for (size_t k = 0; k < n_ends; k++) {
            rs_node *nd = &s->nodes[ends[k].node];
            if (nd->ends_cnt == 0) nd->ends_off = (unsigned)k;
            nd->ends_cnt++;
            s->ends[k] = ends[k].entry;
        }
    }
    free(ends);
    free(x);
    free(alts);
    free(alt_len);
    return s;

fail:
    free(ends);
    free(x);
    free(alts);
    free(alt_len);
    sr_rset_free(s);
    return NULL;
}

void sr_rset_free(sr_rset *s)
{
    if (!s) return;
    if (s->e) {
        for (size_t i = 0; i < s->n; i++) {
            pcre2_code_free(s->e[i].full);
            pcre2_code_free(s->e[i].rest);
        }
    }
    free(s->e);
    free(s->nodes);
    free(s->ends);
    free(s->always);
    free(s->cand);
    free(s->plen);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->jstack);
    free(s);
}

/* One anchored PCRE2 match. 1 match, 0 no match, -1 limit/error. */
static int run(const sr_rset *s, const pcre2_code *c, const char *subj,
               size_t len, size_t off)
{
    int rc = pcre2_match(c, (PCRE2_SPTR)subj, len, off, 0, s->md, s->mctx);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return -1;
}

int sr_rset_match(const sr_rset *s, const char *subject, size_t len,
                  unsigned mbit)
{
    uint64_t *cand;
    unsigned cur = 0;
    if (!s || s->n == 0) return -1;
    if (!subject) { subject = ""; len = 0; }
    if (mbit == 0) mbit = SR_M_ALL;
    cand = s->cand;
    memcpy(cand, s->always, s->nwords * sizeof *cand);
    /* walk the subject through the trie; the root (empty prefix) has no
     * ends (empty prefixes are in `always`) */
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)subject[i];
        unsigned ch = s->nodes[cur].first_child;
        while (ch && s->nodes[ch].byte != b) ch = s->nodes[ch].next_sibling;
        if (!ch) break;
        cur = ch;
        if (s->nodes[cur].ends_cnt) {
            const rs_node *nd = &s->nodes[cur];
            for (unsigned k = 0; k < nd->ends_cnt; k++) {
                unsigned e = s->ends[nd->ends_off + k];
                cand[e / 64] |= (uint64_t)1 << (e % 64);
                s->plen[e] = (unsigned)(i + 1);
            }
        }
    }
    for (size_t w = 0; w < s->nwords; w++) {
        uint64_t bits = cand[w];
        while (bits) {
            unsigned e = (unsigned)(w * 64 + (unsigned)__builtin_ctzll(bits));
            const rs_entry *en = &s->e[e];
            bits &= bits - 1;
            if (!(en->mask & mbit)) continue;
            int r;
            if (en->verify == V_LIT) return (int)e;
            if (en->verify == V_REST)
                r = run(s, en->rest, subject, len, s->plen[e]);
            else
                r = run(s, en->full, subject, len, 0);
            if (r == 1) return (int)e;
            if (r < 0) return -1;
        }
    }
    return -1;
}

int sr_rset_match_loop(const sr_rset *s, const char *subject, size_t len,
                       unsigned mbit)
{
    if (!s) return -1;
    if (!subject) { subject = ""; len = 0; }
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

int sr_rset_jit(const sr_rset *s) { return s ? s->jit : 0; }

size_t sr_rset_size(const sr_rset *s) { return s ? s->n : 0; }
