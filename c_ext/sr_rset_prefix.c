/*
 * sr_rset_prefix.c - the literal prefixes of a pattern.
 *
 * Most route patterns start with a run of plain literals, possibly
 * interleaved with groups of purely literal alternatives, e.g.
 *     ^/_matrix/client/(api/v1|r0|v3)/rooms/.*\/send
 * which expands to three literal prefixes ("/_matrix/client/api/v1/rooms/",
 * ...) followed by a common remainder (".*\/send"). This file finds them and
 * judges the remainder. Pure functions over NUL-terminated pattern text; no
 * allocation; conservative on anything odd (then: no prefix, or "verify
 * with the whole pattern").
 */
#include <string.h>

#include "sr_rset_int.h"

/* Character classification for the pattern scanner; total, never fail. */
int rs_is_quant(char c) { return c == '?' || c == '*' || c == '+' || c == '{'; }

static int is_meta(char c)
{
    return c == '\\' || c == '^' || c == '$' || c == '.' || c == '[' ||
           c == ']' || c == '|' || c == '(' || c == ')' || c == '?' ||
           c == '*' || c == '+' || c == '{' || c == '}';
}

int rs_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* One literal atom at p: a non-meta byte, or '\' + ASCII punctuation.
 * Returns the atom's length in the pattern (1 or 2) and its byte in *out,
 * or 0 if p does not start a simple literal. */
size_t rs_lit_atom(const char *p, char *out)
{
    if (*p == '\0') return 0;
    if (*p == '\\') {
        char c = p[1];
        if (c == '\0' || rs_is_alnum(c) || (unsigned char)c >= 0x80 || c <= ' ') return 0;
        *out = c;
        return 2;
    }
    if (is_meta(*p)) return 0;
    *out = *p;
    return 1;
}

/* Length of the character class at p (p[0] == '['), up to and including
 * its ']': a ']' right after '[' or "[^" is literal, escapes and POSIX
 * classes ("[:alpha:]") are skipped. 0 if the class is unterminated. */
size_t rs_skip_class(const char *p)
{
    size_t i = 1;
    if (p[i] == '^') i++;
    if (p[i] == ']') i++;
    while (p[i] && p[i] != ']') {
        if (p[i] == '\\' && p[i + 1]) {
            i++;
        } else if (p[i] == '[' && p[i + 1] == ':') {
            const char *q = strstr(p + i + 2, ":]");
            if (!q) return 0;
            i = (size_t)(q - p) + 1;
        }
        i++;
    }
    return p[i] ? i + 1 : 0;
}

/* 1 if the pattern has a '|' at group depth 0 (outside classes/escapes):
 * then the leading '^' does not govern the whole pattern and we index no
 * prefix. Conservative on anything odd (unbalanced, \Q...\E): returns 1. */
int rs_has_top_level_alt(const char *p)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '\\') {
            if (p[1] == 'Q' || p[1] == '\0') return 1;
            p++;
        } else if (*p == '[') {
            size_t k = rs_skip_class(p);
            if (k == 0) return 1;
            p += k - 1;
        } else if (*p == '(') {
            depth++;
        } else if (*p == ')') {
            if (--depth < 0) return 1;
        } else if (*p == '|' && depth == 0) {
            return 1;
        }
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
size_t rs_lit_group(const char *p, char alts[][RS_MAX_PREFIX],
                    size_t *alt_len, size_t *n_alts)
{
    size_t i = 1, k = 0;
    if (p[1] == '?' || p[1] == '*') return 0; /* (?...) (*VERB) */
    alt_len[0] = 0;
    for (;;) {
        char c;
        size_t a;
        if (p[i] == ')') {
            i++;
            break;
        }
        if (p[i] == '|') {
            if (++k >= RS_MAX_EXPAND) return 0;
            alt_len[k] = 0;
            i++;
            continue;
        }
        a = rs_lit_atom(p + i, &c);
        if (a == 0) return 0;
        if (rs_is_quant(p[i + a])) return 0; /* quantified atom */
        if (alt_len[k] + 1 >= RS_MAX_PREFIX) return 0;
        alts[k][alt_len[k]++] = c;
        i += a;
    }
    *n_alts = k + 1;
    return i;
}

/* Multiply the expansions by the nalt alternatives in x->alts: new index
 * k * n + j is old prefix j followed by alternative k. 0 (x unchanged) if
 * there would be too many or too long prefixes. */
static int exp_product(rs_exp *x, size_t nalt)
{
    size_t oldn = x->n, j, k;
    if (oldn * nalt > RS_MAX_EXPAND) return 0;
    for (k = 0; k < nalt; k++)
        for (j = 0; j < oldn; j++)
            if (x->len[j] + x->alt_len[k] >= RS_MAX_PREFIX) return 0;
    /* copy the old prefixes in place, filling from the back */
    for (k = nalt; k-- > 0;)
        for (j = oldn; j-- > 0;) {
            size_t d = k * oldn + j;
            if (d != j) {
                memcpy(x->s[d], x->s[j], x->len[j]);
                x->len[d] = x->len[j];
            }
        }
    for (k = 0; k < nalt; k++)
        for (j = 0; j < oldn; j++) {
            size_t d = k * oldn + j;
            memcpy(x->s[d] + x->len[d], x->alts[k], x->alt_len[k]);
            x->len[d] += x->alt_len[k];
        }
    x->n = oldn * nalt;
    return 1;
}

/* Compute the literal prefixes of pattern pat into x. Returns the offset in
 * pat where the remainder starts; 0 (and x->n == 1 with an empty string)
 * when there is no usable prefix. */
size_t rs_extract_prefixes(const char *pat, rs_exp *x)
{
    size_t i = 1;
    x->n = 1;
    x->len[0] = 0;
    if (pat[0] != '^' || rs_has_top_level_alt(pat)) return 0;
    for (;;) {
        char c;
        size_t nalt = 0, a = rs_lit_atom(pat + i, &c);
        if (a) {
            if (rs_is_quant(pat[i + a]) || !exp_append(x, c)) break;
            i += a;
            continue;
        }
        if (pat[i] != '(') break;
        a = rs_lit_group(pat + i, x->alts, x->alt_len, &nalt);
        if (a == 0 || rs_is_quant(pat[i + a]) || !exp_product(x, nalt)) break;
        i += a;
    }
    if (x->n == 1 && x->len[0] == 0) return 0;
    return i;
}

/* 1 if the remainder text can be compiled on its own and matched at the
 * prefix end with the same meaning it has inside the whole pattern: no
 * backreferences, subroutine calls, conditions, lookarounds or option
 * settings (anything "(?" or "(*"), no alphanumeric escapes (\1, \g, \G ...). */
int rs_rest_is_standalone(const char *r)
{
    for (; *r; r++) {
        if (*r == '\\') {
            if (r[1] == '\0' || rs_is_alnum(r[1])) return 0;
            r++;
        } else if (*r == '(' && (r[1] == '?' || r[1] == '*')) {
            return 0;
        }
    }
    return 1;
}

/* 1 if one prefix of x starts another: a subject could then hit the entry
 * at two prefix lengths, and only the whole pattern knows which is meant. */
int rs_prefixes_nest(const rs_exp *x)
{
    for (size_t a = 0; a < x->n; a++)
        for (size_t b = 0; b < x->n; b++)
            if (a != b && x->len[a] <= x->len[b] &&
                memcmp(x->s[a], x->s[b], x->len[a]) == 0)
                return 1;
    return 0;
}

/* Why pattern pat has no literal prefix (rs_extract_prefixes gave 0), in
 * words for sr_rset_dump. */
const char *rs_why_no_prefix(const char *pat)
{
    if (pat[0] != '^') return "no literal prefix (no leading '^')";
    if (rs_has_top_level_alt(pat)) return "no literal prefix (a top-level '|')";
    return "no literal prefix (starts with a non-literal)";
}
