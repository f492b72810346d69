/*
 * sr_rset_glob.c - remainders verified without PCRE2.
 *
 * After the trie, an entry's remainder (the pattern after its literal
 * prefix) decides. Cheapest first:
 *  - a remainder "L0 (.* Li)* [$]" (a glob) is matched natively; a glob of
 *    one run is a plain comparison ("tail");
 *  - other standalone remainders get quick rejects before PCRE2: the
 *    literal endings a match must have before '$' (a "suffix" glob of
 *    alternatives), and a superset glob every match also matches;
 *  - the literal runs that follow a ".*" and start with '/' form the
 *    dictionary: one pass over the '/' bytes of a subject finds the first
 *    occurrence of every run at once, for all entries.
 * Compile functions return NULL when the remainder has another shape or
 * memory runs out: the caller then simply relies on PCRE2. Match functions
 * are pure (apart from the caller's rs_ctx) and never fail.
 */
#include <stdlib.h>
#include <string.h>

#include "sr_rset_int.h"

/* Frees g and its arrays; NULL is a no-op. */
void rs_glob_free(rs_glob *g)
{
    if (!g) return;
    free(g->lits);
    free(g->off);
    free(g->len);
    free(g->lid);
    free(g);
}

/* An empty glob with room for `lits` literal bytes and `segs` runs, one
 * empty run open; NULL on out of memory. */
static rs_glob *glob_alloc(size_t lits, size_t segs)
{
    rs_glob *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->lits = malloc(lits + 1);
    g->off = calloc(segs, sizeof *g->off);
    g->len = calloc(segs, sizeof *g->len);
    if (!g->lits || !g->off || !g->len) {
        rs_glob_free(g);
        return NULL;
    }
    g->nseg = 1;
    return g;
}

/* Close the open run at literal offset o and open the next one. */
static void glob_star(rs_glob *g, size_t o)
{
    g->len[g->nseg - 1] = o - g->off[g->nseg - 1];
    g->off[g->nseg] = o;
    g->nseg++;
}

/* Parse remainder r into a glob, or NULL if it has any other shape. */
rs_glob *rs_glob_compile(const char *r)
{
    size_t rl = strlen(r), nseg = 1, i = 0, o = 0;
    rs_glob *g;
    for (size_t k = 0; k + 1 < rl; k++)
        if (r[k] == '.' && r[k + 1] == '*') nseg++;
    g = glob_alloc(rl, nseg);
    if (!g) return NULL;
    while (r[i] && !(r[i] == '$' && r[i + 1] == '\0')) {
        char c;
        size_t a;
        if (r[i] == '.' && r[i + 1] == '*' && !rs_is_quant(r[i + 2])) {
            glob_star(g, o);
            i += 2;
            continue;
        }
        a = rs_lit_atom(r + i, &c); /* ".*?" and ".*+" fail here */
        if (a == 0 || rs_is_quant(r[i + a])) {
            rs_glob_free(g);
            return NULL;
        }
        g->lits[o++] = c;
        i += a;
    }
    g->end_anchor = r[i] == '$';
    g->len[g->nseg - 1] = o - g->off[g->nseg - 1];
    return g;
}

/* The endings of a remainder that ends in a literal group "(a|b|...)$":
 * one run per alternative, or NULL (another shape, an empty alternative). */
static rs_glob *suffix_of_group(const char *r, size_t end)
{
    char(*alts)[RS_MAX_PREFIX];
    size_t alen[RS_MAX_EXPAND], nalt = 0, o = 0, st = end - 1, gl;
    rs_glob *g;
    /* find the group's '(' (no parens inside a literal group) */
    while (st > 0 && r[st - 1] != '(' && r[st - 1] != ')') st--;
    if (st == 0 || r[st - 1] != '(' || (st >= 2 && r[st - 2] == '\\')) return NULL;
    st--;
    alts = malloc(RS_MAX_EXPAND * sizeof *alts);
    g = alts ? glob_alloc(end, end + 1) : NULL;
    gl = g ? rs_lit_group(r + st, alts, alen, &nalt) : 0;
    for (size_t k = 0; gl == end - st && k < nalt; k++) {
        if (alen[k] == 0) gl = 0; /* empty alternative */
        memcpy(g->lits + o, alts[k], alen[k]);
        g->off[k] = o;
        g->len[k] = alen[k];
        o += alen[k];
    }
    free(alts);
    if (gl == 0 || gl != end - st) {
        rs_glob_free(g);
        return NULL;
    }
    g->nseg = nalt;
    return g;
}

/* A character of a plain ending: letters, digits, '/', '_', '-'. */
static int is_plain(char c) { return rs_is_alnum(c) || c == '/' || c == '_' || c == '-'; }

/* The ending of a remainder that ends in plain characters before '$' (no
 * escapes, no metacharacters): one run, or NULL. */
static rs_glob *suffix_of_run(const char *r, size_t end)
{
    size_t st = end;
    rs_glob *g;
    while (st > 0 && is_plain(r[st - 1]) && !(st >= 2 && r[st - 2] == '\\')) st--;
    if (st == end) return NULL;
    g = glob_alloc(end - st, 1);
    if (!g) return NULL;
    memcpy(g->lits, r + st, end - st);
    g->len[0] = end - st;
    return g;
}

/* The required endings of a standalone remainder r that ends in '$': the
 * literal run right before '$', or the alternatives of a literal group
 * "(a|b|...)" right before '$'. NULL when r has another shape (then
 * nothing is rejected early). The subject (without newline) must end with
 * one of them for r to match. */
rs_glob *rs_suffix_compile(const char *r)
{
    size_t rl = strlen(r);
    if (rl < 2 || r[rl - 1] != '$' || r[rl - 2] == '\\' || rs_has_top_level_alt(r)) return NULL;
    if (r[rl - 2] == ')') return suffix_of_group(r, rl - 1);
    return suffix_of_run(r, rl - 1);
}

/* Length of the group at r (r[0] == '('), through its matching ')'; 0 if
 * unbalanced. Classes and escapes inside are skipped. */
static size_t skip_group(const char *r)
{
    size_t i = 0;
    int depth = 0;
    while (r[i]) {
        if (r[i] == '\\') {
            if (!r[i + 1]) return 0;
            i += 2;
            continue;
        }
        if (r[i] == '[') {
            size_t k = rs_skip_class(r + i);
            if (k == 0) return 0;
            i += k;
            continue;
        }
        if (r[i] == '(') depth++;
        else if (r[i] == ')' && --depth == 0) return i + 1;
        i++;
    }
    return 0;
}

/* Length of the non-literal item at r (a group, a class, a non-literal
 * escape or a single metacharacter); 0 if it is unbalanced. */
static size_t skip_item(const char *r)
{
    if (r[0] == '(') return skip_group(r);
    if (r[0] == '[') return rs_skip_class(r);
    if (r[0] == '\\') return r[1] ? 2 : 0;
    return 1; /* . ^ $ ? * + ) ] } */
}

/* A superset of a standalone remainder r as a glob: every top-level item
 * that is not a plain literal (groups, classes, '.', quantified atoms,
 * anchors) becomes ".*". Under "no newline in the subject" every string r
 * matches, the glob matches too, so a glob miss rejects the entry without
 * PCRE2. NULL when r has a top-level '|', a '{', or anything unbalanced. */
rs_glob *rs_superset_compile(const char *r)
{
    size_t rl = strlen(r), i = 0, o = 0;
    rs_glob *g;
    int last_star = 0;
    if (rs_has_top_level_alt(r) || strchr(r, '{')) return NULL;
    g = glob_alloc(rl, rl + 2);
    if (!g) return NULL;
    while (r[i]) {
        char c;
        size_t a;
        if (r[i] == '$' && r[i + 1] == '\0') {
            g->end_anchor = !last_star;
            break;
        }
        a = rs_lit_atom(r + i, &c);
        if (a && !rs_is_quant(r[i + a])) {
            g->lits[o++] = c;
            last_star = 0;
            i += a;
            continue;
        }
        if (!last_star) glob_star(g, o);
        last_star = 1;
        a = a ? a : skip_item(r + i); /* quantified literal */
        if (a == 0) {
            rs_glob_free(g);
            return NULL;
        }
        i += a;
    }
    g->len[g->nseg - 1] = o - g->off[g->nseg - 1];
    return g;
}

/* ------------------------------------------------------------------------ */
/* The dictionary.                                                           */

/* Give the runs after a ".*" of g dictionary ids (build time) and add
 * their bits to *req: top-level literal runs any match must contain.
 * 0 on out of memory. */
int rs_dict_add(rs_dict *d, rs_glob *g, uint64_t *req)
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
void rs_dict_finish(rs_dict *d)
{
    unsigned cnt[256] = { 0 }, q = 0;
    for (size_t id = 0; id < d->n; id++) cnt[(unsigned char)d->lit[id][1]]++;
    for (unsigned b = 0; b < 256; b++) {
        d->bstart[b] = (unsigned char)q;
        q += cnt[b];
    }
    d->bstart[256] = (unsigned char)q;
    memset(cnt, 0, sizeof cnt);
    for (size_t id = 0; id < d->n; id++) {
        unsigned b = (unsigned char)d->lit[id][1];
        d->order[d->bstart[b] + cnt[b]++] = (unsigned char)id;
    }
}

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
 * eight bytes at a time where the byte order allows (a word has a '/' iff
 * x ^ 0x2f.. has a zero byte; flagged bytes are re-checked, so false
 * positives are harmless). */
void rs_dict_scan(const rs_dict *d, rs_ctx *c, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    c->done = 1;
    c->found = 0;
    if (d->n == 0) return;
#if RS_LE
    for (; i + 8 <= len; i += 8) {
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL,
                       slashes = 0x2f2f2f2f2f2f2f2fULL;
        uint64_t x, y, t;
        memcpy(&x, u + i, 8);
        y = x ^ slashes;
        t = (y - ones) & ~y & highs;
        while (t) {
            size_t at = i + (size_t)(__builtin_ctzll(t) >> 3); /* little-endian order */
            t &= t - 1;
            if (u[at] == '/') dict_probe(d, c, u, len, at);
        }
    }
#endif
    for (; i < len; i++)
        if (u[i] == '/') dict_probe(d, c, u, len, i);
}

/* ------------------------------------------------------------------------ */
/* Matching.                                                                 */

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
        if (!c->done) rs_dict_scan(d, c, s, len);
        if (!((c->found >> id) & 1)) return -1;
        if (c->first[id] >= from) return (long)c->first[id];
    }
    return find_lit(s, len, from, g->lits + g->off[k], g->len[k]);
}

/* Match glob g against s[pos..len) (no newline in s). 1 match, 0 not.
 * Leftmost placement of each middle run is optimal for existence. */
int rs_glob_match(const rs_dict *d, rs_ctx *c, const rs_glob *g, const char *s,
                  size_t len, size_t pos)
{
    const char *l0 = g->lits + g->off[0], *lk;
    size_t n0 = g->len[0], nl;
    if (n0 && (len - pos < n0 || memcmp(s + pos, l0, n0) != 0)) return 0;
    pos += n0;
    if (g->nseg == 1) return g->end_anchor ? pos == len : 1;
    for (size_t k = 1; k + 1 < g->nseg; k++) {
        long at;
        nl = g->len[k];
        if (nl == 0) continue;
        at = find_run(d, c, g, k, s, len, pos);
        if (at < 0) return 0;
        pos = (size_t)at + nl;
    }
    nl = g->len[g->nseg - 1];
    lk = g->lits + g->off[g->nseg - 1];
    if (nl == 0) return 1; /* ends with .* or .*$ */
    if (g->end_anchor) return len - pos >= nl && memcmp(s + len - nl, lk, nl) == 0;
    return find_run(d, c, g, g->nseg - 1, s, len, pos) >= 0;
}

/* A glob of one run (literal, optional '$') at s[pos..len): exact for any
 * subject ('$' also matches before a final newline). 1 match, 0 not. */
int rs_tail_match(const rs_glob *g, const char *s, size_t len, size_t pos)
{
    size_t n0 = g->len[0], p2 = pos + n0;
    if (len - pos < n0 || (n0 && memcmp(s + pos, g->lits, n0) != 0)) return 0;
    return !g->end_anchor || p2 == len || (p2 + 1 == len && s[p2] == '\n');
}

/* 1 if s[0..len) ends with one of the alternatives of sfx. */
int rs_suffix_ok(const rs_glob *sfx, const char *s, size_t len)
{
    for (size_t k = 0; k < sfx->nseg; k++) {
        size_t nl = sfx->len[k];
        if (len >= nl && memcmp(s + len - nl, sfx->lits + sfx->off[k], nl) == 0) return 1;
    }
    return 0;
}
