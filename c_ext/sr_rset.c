/*
 * sr_rset.c - an ordered set of PCRE2 patterns with a literal-prefix trie.
 *
 * Idea (the RE2::Set / Hyperscan "literal prefilter" shape, written from
 * scratch): most route patterns start with a run of plain literals, possibly
 * interleaved with groups of purely literal alternatives, e.g.
 *     ^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*\/send
 * expands to four literal prefixes ("/_matrix/client/api/v1/rooms/", ...)
 * followed by a common remainder (".*\/send"). All prefixes of all entries go
 * into one path-compressed byte trie. A match walks the subject through the
 * trie once; every node where some entry's prefix ends adds that node's
 * entry bitset to the candidates. Entries with an empty prefix are
 * candidates for every subject. Candidates are then verified in list order;
 * the first verified one is the answer, exactly as the naive loop
 * (sr_rset_match_loop) would give, because a pattern whose literal prefix
 * does not start the subject cannot match it. Verification, cheapest first:
 *  - remainder empty: the prefix hit is the match;
 *  - remainder "L0 (.* Li)* [$]" (a glob): matched natively (for subjects
 *    with a newline, which '.' and '$' treat specially, PCRE2 decides);
 *  - otherwise quick rejects before one anchored PCRE2 match of the
 *    remainder at offset = prefix length: literal runs the remainder needs
 *    (found for all entries at once by one pass over the subject's '/'
 *    bytes, the "dictionary"), a required ending, a superset glob;
 *  - remainders that are not self-contained (backreferences, lookaround,
 *    options, alnum escapes) are verified with the whole pattern.
 * Complete paths spelled out by patterns like '^/_matrix/client/v3/sync$'
 * are also memoized at build time with their answer per method (the answer
 * depends only on subject and method), so the commonest request is one
 * hash probe.
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
#define RS_EXACT_MAX_   128       /* longest path in the exact-path memo     */
#define RS_EXACT_MAX    RS_EXACT_MAX_

/* PCRE2 compile options shared by full patterns and remainders: anchored at
 * the start offset (the contract says patterns are matched anchored), never
 * UTF (paths are bytes; no UTF validity errors on hostile input). */
#define RS_COPTS (PCRE2_ANCHORED | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP)

enum { V_LIT = 0, V_REST = 1, V_FULL = 2 };

/* A remainder of the simple shape  L0 (.* Li)* [.*] [$]  (literal runs
 * separated by ".*", optional end anchor) is verified without PCRE2 when
 * the subject has no newline ('.' excludes only '\n' by default, and '$'
 * also matches before a final '\n'; subjects with '\n' take PCRE2). */
typedef struct {
    char *lits;            /* all literal runs, concatenated                */
    size_t *off, *len;     /* run i = lits[off[i] .. off[i]+len[i])         */
    size_t nseg;           /* runs: nseg-1 ".*" separators between them     */
    int end_anchor;        /* pattern ends with '$'                         */
    int *lid;              /* per run: dictionary id (see rs_dict) or -1    */
} rs_glob;

/* The dictionary: up to 64 distinct runs that start with '/' and are
 * searched after a ".*". One pass over the '/' bytes of a subject finds the
 * first occurrence of each; a glob then needs no scan of its own. Runs are
 * bucketed by their second byte. */
#define RS_DICT_MAX 64
typedef struct {
    size_t n;
    const char *lit[RS_DICT_MAX];  /* point into the globs' lits          */
    size_t len[RS_DICT_MAX];
    unsigned char bstart[257];     /* bucket b = ids order[bstart[b]..bstart[b+1]) */
    unsigned char order[RS_DICT_MAX];
} rs_dict;

typedef struct {
    pcre2_code *full;      /* the whole pattern (also used by the loop)     */
    pcre2_code *rest;      /* remainder after the literal prefix, or NULL   */
    rs_glob *glob;         /* native form of the remainder, or NULL         */
    rs_glob *pre;          /* superset glob of the remainder (quick reject
                              before PCRE2), or NULL                      */
    rs_glob *suffix;       /* required endings (quick reject before PCRE2):
                              nseg alternatives; NULL when unknown         */
    unsigned mask;         /* method mask, SR_M_ALL when "any"              */
    int verify;            /* V_LIT: prefix hit is a match; V_REST; V_FULL  */
    uint64_t req;          /* dictionary runs any match must contain        */
} rs_entry;

typedef struct {
    unsigned first_child;  /* node index, 0 = none (root is node 0)         */
    unsigned next_sibling; /* node index, 0 = none                          */
    unsigned ends_off;     /* into ends[]                                   */
    unsigned ends_cnt;     /* entries whose prefix ends exactly here        */
    unsigned char byte;
} rs_node;

/* The trie used at match time: path-compressed (each node carries the run
 * of bytes since its branching parent), children found by their first byte. */
typedef struct {
    unsigned label_off, label_len;   /* bytes in labels[]                  */
    unsigned child_off, nchild;      /* cfirst[] / cidx[] slots            */
    unsigned ends_off, ends_cnt;     /* entries whose prefix ends here     */
    int dense;                       /* >= 0: row of dense[] (many children) */
} rs_cnode;

/* Nodes with more children than this get a 256-entry lookup row. */
#define RS_DENSE_MIN 6

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RS_LE 1      /* word-at-a-time tricks below assume little-endian */
#else
#define RS_LE 0
#endif

struct sr_rset {
    size_t n;
    rs_entry *e;
    rs_node *nodes; size_t n_nodes, cap_nodes;   /* build time only       */
    rs_cnode *cn;
    unsigned char *labels, *cfirst;  /* labels: padded with 8 zero bytes  */
    unsigned *cidx;
    uint16_t *dense;       /* rows of 256: child cn index + 1, 0 = none     */
    unsigned *ends;        /* entry indices, grouped per node               */
    size_t nwords;         /* bitset words                                  */
    uint64_t *always;      /* entries with an empty literal prefix          */
    uint64_t *cand;        /* scratch: candidate bitset (one caller at once)*/
    uint64_t *nbits;       /* per compressed node: nwords bitset of the
                              entries whose prefix ends there               */
    pcre2_match_data *md;  /* scratch                                       */
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    int jit;               /* 1 if every compiled code is JIT-compiled      */
    rs_dict dict;
    /* Exact-path memo: the answers (per method) for the complete paths a
     * pattern like '^/_matrix/client/(r0|v3)/sync$' spells out, computed
     * at build time by the general path. The answer depends only on the
     * subject and the method, so a hit is exactly what a match computes. */
    struct rs_exact {
        char *str; size_t len;
        int16_t ans[9];    /* [0]: any method, [1 + bit]: one method bit   */
    } *exact;
    size_t exact_cap;      /* power of two, 0 = no table                    */
    uint64_t exact_lens[(RS_EXACT_MAX_ + 64) / 64];   /* lengths present     */
    uint64_t exact_last[4];                          /* last bytes present  */
};

/* ------------------------------------------------------------------------ */
/* Literal prefix extraction.                                                */

/* Expansion state: up to RS_MAX_EXPAND strings of up to RS_MAX_PREFIX bytes. */
typedef struct {
    char s[RS_MAX_EXPAND][RS_MAX_PREFIX];
    size_t len[RS_MAX_EXPAND];
    size_t n;
} rs_exp;

/* Character classification for the pattern scanner; total, never fail. */
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
/* Native verification of simple remainders.                                 */

static void glob_free(rs_glob *g)
{
    if (!g) return;
    free(g->lits);
    free(g->off);
    free(g->len);
    free(g->lid);
    free(g);
}

/* Parse remainder r into a glob, or NULL if it has any other shape (or on
 * out-of-memory: the caller then simply uses PCRE2). */
static rs_glob *glob_compile(const char *r)
{
    size_t rl = strlen(r), nseg = 1, i = 0, o = 0;
    rs_glob *g;
    for (size_t k = 0; k + 1 < rl; k++)
        if (r[k] == '.' && r[k + 1] == '*') nseg++;
    g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->lits = malloc(rl + 1);
    g->off = calloc(nseg, sizeof *g->off);
    g->len = calloc(nseg, sizeof *g->len);
    if (!g->lits || !g->off || !g->len) { glob_free(g); return NULL; }
    g->nseg = 1;
    g->off[0] = 0;
    while (r[i]) {
        char c;
        size_t a;
        if (r[i] == '$' && r[i + 1] == '\0') { g->end_anchor = 1; i++; break; }
        if (r[i] == '.' && r[i + 1] == '*') {
            if (is_quant(r[i + 2])) { glob_free(g); return NULL; }  /* .*? .*+ */
            g->len[g->nseg - 1] = o - g->off[g->nseg - 1];
            g->off[g->nseg] = o;
            g->nseg++;
            i += 2;
            continue;
        }
        a = lit_atom(r + i, &c);
        if (a == 0 || is_quant(r[i + a])) { glob_free(g); return NULL; }
        g->lits[o++] = c;
        i += a;
    }
    g->len[g->nseg - 1] = o - g->off[g->nseg - 1];
    return g;
}

/* Per-call search context (on the stack of sr_rset_match): which
 * dictionary runs occur in the subject, and where first. */
typedef struct {
    int done;                      /* dictionary pass made                  */
    uint64_t found;
    uint32_t first[RS_DICT_MAX];
} rs_ctx;

/* One dictionary probe at a '/' found at u[at]. */
static void dict_probe(const rs_dict *d, rs_ctx *c, const unsigned char *u,
                       size_t len, size_t at)
{
    unsigned char b;
    if (at + 1 >= len) return;
    b = u[at + 1];
    for (unsigned q = d->bstart[b]; q < d->bstart[b + 1]; q++) {
        unsigned id = d->order[q];
        const unsigned char *l = (const unsigned char *)d->lit[id];
        size_t nl = d->len[id], j;
        if (((c->found >> id) & 1) || at + nl > len) continue;
        for (j = 2; j < nl && u[at + j] == l[j]; j++) {}
        if (j == nl) {
            c->found |= (uint64_t)1 << id;
            c->first[id] = (uint32_t)at;
        }
    }
}

/* Find every dictionary run in s (len < 2^32): visit each '/' in order,
 * eight bytes at a time (a word has a '/' iff x ^ 0x2f.. has a zero byte;
 * flagged bytes are re-checked, so false positives are harmless). */
static void dict_scan(const rs_dict *d, rs_ctx *c, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL,
                   slashes = 0x2f2f2f2f2f2f2f2fULL;
    size_t i = 0;
    c->done = 1;
    c->found = 0;
    if (d->n == 0) return;
#if RS_LE
    for (; i + 8 <= len; i += 8) {
        uint64_t x, y, t;
        memcpy(&x, u + i, 8);
        y = x ^ slashes;
        t = (y - ones) & ~y & highs;
        while (t) {
            size_t at = i + (size_t)(__builtin_ctzll(t) >> 3);   /* little-endian order */
            t &= t - 1;
            if (u[at] == '/') dict_probe(d, c, u, len, at);
        }
    }
#endif
    for (; i < len; i++)
        if (u[i] == '/') dict_probe(d, c, u, len, i);
}

/* First occurrence of needle (nl > 0) in hay at or after `from`; -1 none.
 * Paths are short: a plain loop beats library calls here. */
static long find_lit(const char *h, size_t hl, size_t from, const char *nd, size_t nl)
{
    const unsigned char *hs = (const unsigned char *)h, *ns = (const unsigned char *)nd;
    unsigned char c0 = ns[0];
    if (hl < nl) return -1;
    for (size_t i = from; i + nl <= hl; i++) {
        size_t j;
        if (hs[i] != c0) continue;
        for (j = 1; j < nl && hs[i + j] == ns[j]; j++) {}
        if (j == nl) return (long)i;
    }
    return -1;
}

/* Run k of glob g searched from `from`: through the dictionary when the
 * run is in it, else by scanning. */
static long find_run(const rs_dict *d, rs_ctx *c, const rs_glob *g, size_t k,
                     const char *s, size_t len, size_t from)
{
    int id = g->lid ? g->lid[k] : -1;
    if (id >= 0 && len <= 0xffffffffu) {
        if (!c->done) dict_scan(d, c, s, len);
        if (!((c->found >> id) & 1)) return -1;
        if (c->first[id] >= from) return (long)c->first[id];
    }
    return find_lit(s, len, from, g->lits + g->off[k], g->len[k]);
}

/* Give the runs after a ".*" of g dictionary ids (build time) and add
 * their bits to *req: top-level literal runs any match must contain. */
static int dict_add(rs_dict *d, rs_glob *g, uint64_t *req)
{
    if (!g || g->nseg < 2) return 1;
    g->lid = malloc(g->nseg * sizeof *g->lid);
    if (!g->lid) return 0;
    for (size_t k = 0; k < g->nseg; k++) {
        const char *l = g->lits + g->off[k];
        size_t nl = g->len[k], id;
        g->lid[k] = -1;
        if (k == 0 || nl < 2 || l[0] != '/') continue;
        for (id = 0; id < d->n; id++)
            if (d->len[id] == nl && memcmp(d->lit[id], l, nl) == 0) break;
        if (id == d->n) {
            if (d->n == RS_DICT_MAX) continue;
            d->lit[id] = l;
            d->len[id] = nl;
            d->n++;
        }
        g->lid[k] = (int)id;
        *req |= (uint64_t)1 << id;
    }
    return 1;
}

/* Bucket the dictionary runs by their second byte (build time; cannot fail). */
static void dict_finish(rs_dict *d)
{
    unsigned cnt[256] = { 0 }, q = 0;
    for (size_t id = 0; id < d->n; id++) cnt[(unsigned char)d->lit[id][1]]++;
    for (unsigned b = 0; b < 256; b++) { d->bstart[b] = (unsigned char)q; q += cnt[b]; }
    d->bstart[256] = (unsigned char)q;
    memset(cnt, 0, sizeof cnt);
    for (size_t id = 0; id < d->n; id++) {
        unsigned b = (unsigned char)d->lit[id][1];
        d->order[d->bstart[b] + cnt[b]++] = (unsigned char)id;
    }
}

/* Build the required-ending alternatives of a standalone remainder r that
 * ends in '$': the literal run right before '$', or the alternatives of a
 * literal group "(a|b|...)" right before '$'. NULL when r has another
 * shape (then nothing is rejected early). The subject (without newline)
 * must end with one of them for r to match. */
static rs_glob *suffix_compile(const char *r)
{
    size_t rl = strlen(r), end, st;
    rs_glob *g;
    if (rl < 2 || r[rl - 1] != '$' || r[rl - 2] == '\\' || has_top_level_alt(r)) return NULL;
    end = rl - 1;                      /* r[0..end) precedes '$' */
    g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->lits = malloc(rl + 1);
    g->off = calloc(rl + 1, sizeof *g->off);
    g->len = calloc(rl + 1, sizeof *g->len);
    if (!g->lits || !g->off || !g->len) { glob_free(g); return NULL; }
    if (r[end - 1] == ')') {
        /* a literal group: find its '(' (no parens inside a literal group) */
        char (*alts)[RS_MAX_PREFIX] = malloc(RS_MAX_EXPAND * sizeof *alts);
        size_t alen[RS_MAX_EXPAND], nalt = 0, o = 0, gl;
        st = end - 1;
        while (st > 0 && r[st - 1] != '(' && r[st - 1] != ')') st--;
        if (st == 0 || r[st - 1] != '(' || (st >= 2 && r[st - 2] == '\\')) { free(alts); glob_free(g); return NULL; }
        st--;
        gl = alts ? lit_group(r + st, alts, alen, &nalt) : 0;
        if (gl == 0 || gl != end - st) { free(alts); glob_free(g); return NULL; }
        for (size_t k = 0; k < nalt; k++) {
            if (alen[k] == 0) { free(alts); glob_free(g); return NULL; }   /* empty alt */
            memcpy(g->lits + o, alts[k], alen[k]);
            g->off[k] = o;
            g->len[k] = alen[k];
            o += alen[k];
        }
        free(alts);
        g->nseg = nalt;
        return g;
    }
    /* a run of plain characters (no escapes, no metacharacters) */
    st = end;
    while (st > 0 && (is_alnum(r[st - 1]) || r[st - 1] == '/' || r[st - 1] == '_' ||
                      r[st - 1] == '-') && !(st >= 2 && r[st - 2] == '\\'))
        st--;
    if (st == end) { glob_free(g); return NULL; }
    memcpy(g->lits, r + st, end - st);
    g->off[0] = 0;
    g->len[0] = end - st;
    g->nseg = 1;
    return g;
}


/* A superset of a standalone remainder r as a glob: every top-level item
 * that is not a plain literal (groups, classes, '.', quantified atoms,
 * anchors) becomes ".*". Under "no newline in the subject" every string r
 * matches, the glob matches too, so a glob miss rejects the entry without
 * PCRE2. NULL when r has a top-level '|', a '{', or anything unbalanced. */
static rs_glob *superset_compile(const char *r)
{
    size_t rl = strlen(r), i = 0, o = 0;
    rs_glob *g;
    int last_star = 0;
    if (has_top_level_alt(r) || strchr(r, '{')) return NULL;
    g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->lits = malloc(rl + 1);
    g->off = calloc(rl + 2, sizeof *g->off);
    g->len = calloc(rl + 2, sizeof *g->len);
    if (!g->lits || !g->off || !g->len) { glob_free(g); return NULL; }
    g->nseg = 1;
#define SUP_STAR() do { if (!last_star) { g->len[g->nseg - 1] = o - g->off[g->nseg - 1]; \
        g->off[g->nseg] = o; g->nseg++; last_star = 1; } } while (0)
    while (r[i]) {
        char c;
        size_t a;
        if (r[i] == '$' && r[i + 1] == '\0') {
            if (!last_star) g->end_anchor = 1;
            i++;
            break;
        }
        a = lit_atom(r + i, &c);
        if (a && !is_quant(r[i + a])) {
            g->lits[o++] = c;
            last_star = 0;
            i += a;
            continue;
        }
        SUP_STAR();
        if (a) { i += a; continue; }                 /* quantified literal */
        if (r[i] == '(') {
            int depth = 0;
            for (; r[i]; i++) {
                if (r[i] == '\\') { if (!r[i + 1]) break; i++; continue; }
                if (r[i] == '[') {
                    i++;
                    if (r[i] == '^') i++;
                    if (r[i] == ']') i++;
                    while (r[i] && r[i] != ']') { if (r[i] == '\\' && r[i + 1]) i++; i++; }
                    if (!r[i]) break;
                    continue;
                }
                if (r[i] == '(') depth++;
                else if (r[i] == ')' && --depth == 0) { i++; break; }
            }
            if (depth != 0) { glob_free(g); return NULL; }
            continue;
        }
        if (r[i] == '[') {
            i++;
            if (r[i] == '^') i++;
            if (r[i] == ']') i++;
            while (r[i] && r[i] != ']') { if (r[i] == '\\' && r[i + 1]) i++; i++; }
            if (!r[i]) { glob_free(g); return NULL; }
            i++;
            continue;
        }
        if (r[i] == '\\') {                          /* not a literal escape */
            if (!r[i + 1]) { glob_free(g); return NULL; }
            i += 2;
            continue;
        }
        i++;                                         /* . ^ $ ? * + ) ] } */
    }
#undef SUP_STAR
    g->len[g->nseg - 1] = o - g->off[g->nseg - 1];
    return g;
}

/* 1 if s[0..len) ends with one of the alternatives of sfx. */
static int suffix_ok(const rs_glob *sfx, const char *s, size_t len)
{
    for (size_t k = 0; k < sfx->nseg; k++) {
        size_t nl = sfx->len[k];
        if (len >= nl && memcmp(s + len - nl, sfx->lits + sfx->off[k], nl) == 0) return 1;
    }
    return 0;
}

/* Match glob g against s[pos..len) (no newline in s). 1 match, 0 not.
 * Leftmost placement of each middle run is optimal for existence. */
static int glob_match(const rs_dict *d, rs_ctx *c, const rs_glob *g, const char *s,
                      size_t len, size_t pos)
{
    const char *l0 = g->lits + g->off[0];
    size_t n0 = g->len[0];
    if (n0 && (len - pos < n0 || memcmp(s + pos, l0, n0) != 0)) return 0;
    pos += n0;
    if (g->nseg == 1) return g->end_anchor ? pos == len : 1;
    for (size_t k = 1; k + 1 < g->nseg; k++) {
        size_t nl = g->len[k];
        long at;
        if (nl == 0) continue;
        at = find_run(d, c, g, k, s, len, pos);
        if (at < 0) return 0;
        pos = (size_t)at + nl;
    }
    {
        size_t nl = g->len[g->nseg - 1];
        const char *lk = g->lits + g->off[g->nseg - 1];
        if (nl == 0) return 1;                       /* ends with .* or .*$ */
        if (g->end_anchor)
            return len - pos >= nl && memcmp(s + len - nl, lk, nl) == 0;
        return find_run(d, c, g, g->nseg - 1, s, len, pos) >= 0;
    }
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


/* Build the path-compressed trie from the byte trie. Counters are cursors
 * into arrays preallocated with n_nodes slots (an upper bound for each). */
typedef struct { size_t ncn, nlab, nslot; } rs_cursor;

/* Number of children of byte-trie node u. */
static unsigned nchildren(const sr_rset *s, unsigned u)
{
    unsigned k = 0;
    for (unsigned ch = s->nodes[u].first_child; ch; ch = s->nodes[ch].next_sibling) k++;
    return k;
}

static void fill_children(sr_rset *s, unsigned me, unsigned cur, rs_cursor *c);

/* Compressed node for the chain starting at byte-trie node u; returns its
 * index. Writes into arrays sized by compress_trie, cannot fail. */
static unsigned compress_node(sr_rset *s, unsigned u, rs_cursor *c)
{
    unsigned me = (unsigned)c->ncn++, cur = u;
    s->cn[me].label_off = (unsigned)c->nlab;
    s->labels[c->nlab++] = s->nodes[cur].byte;
    while (s->nodes[cur].ends_cnt == 0 && nchildren(s, cur) == 1) {
        cur = s->nodes[cur].first_child;
        s->labels[c->nlab++] = s->nodes[cur].byte;
    }
    s->cn[me].label_len = (unsigned)c->nlab - s->cn[me].label_off;
    fill_children(s, me, cur, c);
    return me;
}

/* Ends and children of compressed node `me` from byte-trie node cur. */
static void fill_children(sr_rset *s, unsigned me, unsigned cur, rs_cursor *c)
{
    unsigned k = 0, off;
    s->cn[me].ends_off = s->nodes[cur].ends_off;
    s->cn[me].ends_cnt = s->nodes[cur].ends_cnt;
    s->cn[me].nchild = nchildren(s, cur);
    off = (unsigned)c->nslot;
    s->cn[me].child_off = off;
    c->nslot += s->cn[me].nchild;
    for (unsigned ch = s->nodes[cur].first_child; ch; ch = s->nodes[ch].next_sibling, k++) {
        unsigned idx;
        s->cfirst[off + k] = s->nodes[ch].byte;
        idx = compress_node(s, ch, c);
        s->cidx[off + k] = idx;
    }
}

/* 0 on out-of-memory. Frees the byte trie. */
static int compress_trie(sr_rset *s)
{
    rs_cursor c = { 1, 0, 0 };
    size_t m = s->n_nodes;
    s->cn = calloc(m, sizeof *s->cn);
    s->labels = calloc(m + 8, 1);
    s->cfirst = malloc(m);
    s->cidx = malloc(m * sizeof *s->cidx);
    if (!s->cn || !s->labels || !s->cfirst || !s->cidx) return 0;
    fill_children(s, 0, 0, &c);       /* root: empty label */
    {
        size_t rows = 0, r = 0;
        for (size_t i = 0; i < c.ncn; i++) if (s->cn[i].nchild > RS_DENSE_MIN) rows++;
        s->dense = calloc(rows ? rows * 256 : 1, sizeof *s->dense);
        if (!s->dense) return 0;
        for (size_t i = 0; i < c.ncn; i++) {
            s->cn[i].dense = -1;
            if (s->cn[i].nchild <= RS_DENSE_MIN || c.ncn >= 0xffff) continue;
            s->cn[i].dense = (int)r;
            for (unsigned k = 0; k < s->cn[i].nchild; k++)
                s->dense[r * 256 + s->cfirst[s->cn[i].child_off + k]] =
                    (uint16_t)(s->cidx[s->cn[i].child_off + k] + 1);
            r++;
        }
    }
    free(s->nodes);
    s->nodes = NULL;
    s->n_nodes = s->cap_nodes = 0;
    return 1;
}


/* ------------------------------------------------------------------------ */
/* Exact-path memo.                                                          */


static uint64_t exact_hash(const char *p, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    {
        uint64_t w = 0;
        if (i < len) memcpy(&w, p + i, len - i);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 32;
    }
    return h;
}

/* Slot of p in the table, or of the empty slot where it would go. */
static size_t exact_slot(const sr_rset *s, const char *p, size_t len)
{
    size_t m = s->exact_cap - 1, i = (size_t)exact_hash(p, len) & m;
    while (s->exact[i].str &&
           !(s->exact[i].len == len && memcmp(s->exact[i].str, p, len) == 0))
        i = (i + 1) & m;
    return i;
}

/* Method bit -> answer index, or -1 for a combination of bits. */
static int exact_index(unsigned mbit)
{
    if (mbit == 0 || mbit == SR_M_ALL) return 0;
    if (mbit & (mbit - 1)) return -1;
    return 1 + __builtin_ctz(mbit);
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

/* Copy msg to err (may be NULL); always NUL-terminated. */
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

/* qsort order of (node, entry) pairs. */
static int cmp_end(const void *a, const void *b)
{
    const rs_end *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* Contract in sr_core.h. Also: patterns need not start with '^' (they are
 * compiled PCRE2_ANCHORED either way; only '^'-patterns get a literal
 * prefix). The set owns copies of everything; the caller's arrays may be
 * freed afterwards. Returns NULL + err on a bad pattern or out of memory. */
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
    char **exact_strs = NULL;
    size_t n_exact = 0, cap_exact = 0;
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

    x = malloc(sizeof *x);
    alts = malloc(RS_MAX_EXPAND * sizeof *alts);
    alt_len = malloc(RS_MAX_EXPAND * sizeof *alt_len);
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->e || !s->always || !s->cand || !x || !alts || !alt_len ||
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
        if (pat[roff] == '$' && pat[roff + 1] == '\0') {
            /* complete paths: candidates for the exact-path memo */
            for (size_t a = 0; a < x->n; a++) {
                char *str;
                if (x->len[a] > RS_EXACT_MAX) continue;
                if (n_exact == cap_exact) {
                    size_t nc = cap_exact ? cap_exact * 2 : 64;
                    char **ne = realloc(exact_strs, nc * sizeof *ne);
                    if (!ne) { plain_err(err, errlen, "out of memory"); goto fail; }
                    exact_strs = ne;
                    cap_exact = nc;
                }
                str = malloc(x->len[a] + 1);
                if (!str) { plain_err(err, errlen, "out of memory"); goto fail; }
                memcpy(str, x->s[a], x->len[a]);
                str[x->len[a]] = '\0';
                exact_strs[n_exact++] = str;
            }
        }
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
            else {
                e->glob = glob_compile(pat + roff);      /* NULL: use PCRE2 */
                if (!e->glob) {
                    e->pre = superset_compile(pat + roff);
                    e->suffix = suffix_compile(pat + roff);
                }
            }
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
    {
        size_t ncn = s->n_nodes;        /* compressed nodes <= byte-trie nodes */
        if (!compress_trie(s)) { plain_err(err, errlen, "out of memory"); goto fail; }
        s->nbits = calloc(ncn * (s->nwords ? s->nwords : 1), sizeof *s->nbits);
        if (!s->nbits) { plain_err(err, errlen, "out of memory"); goto fail; }
        for (size_t c = 0; c < ncn; c++)
            for (unsigned q = 0; q < s->cn[c].ends_cnt; q++) {
                unsigned e = s->ends[s->cn[c].ends_off + q];
                s->nbits[c * s->nwords + e / 64] |= (uint64_t)1 << (e % 64);
            }
    }
    for (size_t i = 0; i < n; i++)
        if (!dict_add(&s->dict, s->e[i].glob, &s->e[i].req) ||
            !dict_add(&s->dict, s->e[i].pre, &s->e[i].req)) {
            plain_err(err, errlen, "out of memory");
            goto fail;
        }
    dict_finish(&s->dict);

    /* the exact-path memo, filled by the general path (table still off) */
    if (n_exact) {
        size_t cap = 16;
        struct rs_exact *tab;
        while (cap < n_exact * 2) cap *= 2;
        tab = calloc(cap, sizeof *tab);
        if (!tab) { plain_err(err, errlen, "out of memory"); goto fail; }
        for (size_t k = 0; k < n_exact; k++) {
            struct rs_exact tmp;
            size_t slot;
            tmp.str = exact_strs[k];
            tmp.len = strlen(exact_strs[k]);
            tmp.ans[0] = (int16_t)sr_rset_match(s, tmp.str, tmp.len, 0);
            for (int b = 0; b < 8; b++)
                tmp.ans[1 + b] = (int16_t)sr_rset_match(s, tmp.str, tmp.len, 1u << b);
            s->exact = tab;               /* probe the table being built */
            s->exact_cap = cap;
            slot = exact_slot(s, tmp.str, tmp.len);
            s->exact = NULL;
            s->exact_cap = 0;
            if (tab[slot].str) { free(exact_strs[k]); continue; }   /* duplicate */
            tab[slot] = tmp;
            s->exact_lens[tmp.len / 64] |= (uint64_t)1 << (tmp.len % 64);
            if (tmp.len) {
                unsigned char lb = (unsigned char)tmp.str[tmp.len - 1];
                s->exact_last[lb / 64] |= (uint64_t)1 << (lb % 64);
            }
            exact_strs[k] = NULL;
        }
        if (n > 0x7fff) {                 /* answers are int16 */
            for (size_t k = 0; k < cap; k++) free(tab[k].str);
            free(tab);
        } else {
            s->exact = tab;
            s->exact_cap = cap;
        }
    }
    free(exact_strs);
    exact_strs = NULL;
    free(ends);
    free(x);
    free(alts);
    free(alt_len);
    return s;

fail:
    for (size_t k = 0; k < n_exact; k++) free(exact_strs[k]);
    free(exact_strs);
    free(ends);
    free(x);
    free(alts);
    free(alt_len);
    sr_rset_free(s);
    return NULL;
}

/* Frees everything the set owns; NULL is a no-op. */
void sr_rset_free(sr_rset *s)
{
    if (!s) return;
    if (s->e) {
        for (size_t i = 0; i < s->n; i++) {
            pcre2_code_free(s->e[i].full);
            pcre2_code_free(s->e[i].rest);
            glob_free(s->e[i].glob);
            glob_free(s->e[i].suffix);
            glob_free(s->e[i].pre);
        }
    }
    free(s->e);
    free(s->nodes);
    free(s->cn);
    free(s->labels);
    free(s->cfirst);
    free(s->cidx);
    free(s->dense);
    free(s->ends);
    free(s->always);
    free(s->cand);
    free(s->nbits);
    if (s->exact) for (size_t k = 0; k < s->exact_cap; k++) free(s->exact[k].str);
    free(s->exact);
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

/* Contract in sr_core.h. mbit 0 means any method. Uses the set's scratch
 * (one caller at a time). Never fails: no match or a PCRE2 limit is -1. */
int sr_rset_match(const sr_rset *s, const char *subject, size_t len,
                  unsigned mbit)
{
    uint64_t *cand;
    int has_nl = -1;       /* computed on first need */
    rs_ctx ctx;
    unsigned vis_node[RS_MAX_PREFIX], vis_pos[RS_MAX_PREFIX], nvis = 0;
    ctx.done = 0;
    if (!s || s->n == 0) return -1;
    if (!subject) { subject = ""; len = 0; }
    if (mbit == 0) mbit = SR_M_ALL;
    if (s->exact_cap && len <= RS_EXACT_MAX && len > 0 &&
        ((s->exact_lens[len / 64] >> (len % 64)) & 1) &&
        ((s->exact_last[(unsigned char)subject[len - 1] / 64] >> ((unsigned char)subject[len - 1] % 64)) & 1)) {
        int ix = exact_index(mbit);
        if (ix >= 0) {
            size_t slot = exact_slot(s, subject, len);
            if (s->exact[slot].str) return s->exact[slot].ans[ix];
        }
    }
    cand = s->cand;
    /* walk the subject through the trie; the root (empty prefix) has no
     * ends (empty prefixes are in `always`). Remember the nodes with ends:
     * an entry verified by its remainder has prefixes of which at most one
     * starts the subject (checked at build), so its prefix length is the
     * depth of the one visited node that lists it. */
    for (size_t w = 0; w < s->nwords; w++) cand[w] = s->always[w];
    {
        const rs_cnode *nd = &s->cn[0];
        size_t pos = 0;
        while (pos < len && nd->nchild) {
            unsigned char b = (unsigned char)subject[pos];
            const unsigned char *lab;
            unsigned L, j = 1;
            if (nd->dense >= 0) {
                unsigned ci = s->dense[(size_t)nd->dense * 256 + b];
                if (!ci) break;
                nd = &s->cn[ci - 1];
            } else {
                const unsigned char *cf = s->cfirst + nd->child_off;
                unsigned k = 0;
                while (k < nd->nchild && cf[k] != b) k++;
                if (k == nd->nchild) break;
                nd = &s->cn[s->cidx[nd->child_off + k]];
            }
            L = nd->label_len;
            if (len - pos < L) break;
            lab = s->labels + nd->label_off;
#if RS_LE
            if (len - pos >= 8) {
                /* whole words; the last one masked (labels are padded) */
                uint64_t x, y, diff = 0;
                j = 0;
                while (j + 8 <= L && pos + j + 8 <= len) {
                    memcpy(&x, lab + j, 8);
                    memcpy(&y, subject + pos + j, 8);
                    diff |= x ^ y;
                    j += 8;
                }
                if (j < L && pos + j + 8 <= len) {
                    memcpy(&x, lab + j, 8);
                    memcpy(&y, subject + pos + j, 8);
                    diff |= (x ^ y) & ((1ULL << (8 * (L - j))) - 1);
                    j = L;
                }
                if (diff) break;
            }
#endif
            for (; j < L && lab[j] == (unsigned char)subject[pos + j]; j++) {}
            if (j < L) break;
            pos += L;
            if (nd->ends_cnt) {
                const uint64_t *nb = s->nbits + (size_t)(nd - s->cn) * s->nwords;
                for (size_t w = 0; w < s->nwords; w++) cand[w] |= nb[w];
                vis_node[nvis] = (unsigned)(nd - s->cn);
                vis_pos[nvis] = (unsigned)pos;
                nvis++;
            }
        }
    }
    for (size_t w = 0; w < s->nwords; w++) {
        uint64_t bits = cand[w];
        while (bits) {
            unsigned e = (unsigned)(w * 64 + (unsigned)__builtin_ctzll(bits));
            const rs_entry *en = &s->e[e];
            size_t plen = 0;
            int r;
            bits &= bits - 1;
            if (!(en->mask & mbit)) continue;
            if (en->verify == V_LIT) return (int)e;
            if (en->req && len <= 0xffffffffu) {
                /* a run the entry needs is nowhere in the subject */
                if (!ctx.done) dict_scan(&s->dict, &ctx, subject, len);
                if (en->req & ~ctx.found) continue;
            }
            if (en->verify == V_REST) {
                for (unsigned v = nvis; v-- > 0;)
                    if ((s->nbits[(size_t)vis_node[v] * s->nwords + w] >> (e % 64)) & 1) {
                        plen = vis_pos[v];
                        break;
                    }
                if (en->glob && en->glob->nseg == 1) {
                    /* literal + optional '$': exact for any subject ('$'
                     * also matches before a final newline) */
                    const rs_glob *g = en->glob;
                    size_t n0 = g->len[0];
                    if (len - plen >= n0 && (n0 == 0 || memcmp(subject + plen, g->lits, n0) == 0)) {
                        size_t p2 = plen + n0;
                        if (!g->end_anchor || p2 == len || (p2 + 1 == len && subject[p2] == '\n'))
                            return (int)e;
                    }
                    continue;
                }
                if (en->glob || en->suffix || en->pre) {
                    if (has_nl < 0) has_nl = memchr(subject, '\n', len) != NULL;
                    if (!has_nl) {
                        if (en->glob) {
                            if (glob_match(&s->dict, &ctx, en->glob, subject, len, plen)) return (int)e;
                            continue;
                        }
                        if (en->suffix && !suffix_ok(en->suffix, subject, len)) continue;
                        if (en->pre && !glob_match(&s->dict, &ctx, en->pre, subject, len, plen)) continue;
                    }
                }
                r = run(s, en->rest, subject, len, plen);
            } else {
                r = run(s, en->full, subject, len, 0);
            }
            if (r == 1) return (int)e;
            if (r < 0) return -1;
        }
    }
    return -1;
}

/* The reference answer: every full pattern in order (same limits). */
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

/* 1 if PCRE2 has JIT and every pattern of the set got JIT code. */
int sr_rset_jit(const sr_rset *s) { return s ? s->jit : 0; }

/* Number of entries (0 for NULL). */
size_t sr_rset_size(const sr_rset *s) { return s ? s->n : 0; }
