/*
 * sr_rset_memo.c - the exact-path memo.
 *
 * A pattern whose remainder is just '$' (e.g. '^/_matrix/client/(r0|v3)/
 * sync$') spells out complete paths. Their answers - the first entry that
 * matches, per method - depend only on the subject and the method, so they
 * are computed once at build time by the general path (sr_rset_match with
 * the table still off) and kept in an open-addressing table: the commonest
 * requests cost one hash probe. Two small bitsets (path lengths present,
 * last bytes present) reject most other subjects before hashing.
 */
#include <stdlib.h>
#include <string.h>

#include "sr_rset_int.h"

/* Add entry `entry`'s complete paths (the prefixes in x, up to
 * RS_MEMO_MAX bytes) to l. 0 on out of memory. */
int rs_memo_collect(rs_memo_list *l, const rs_exp *x, unsigned entry)
{
    for (size_t a = 0; a < x->n; a++) {
        char *str;
        if (x->len[a] > RS_MEMO_MAX) continue;
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 64;
            char **ns = realloc(l->str, nc * sizeof *ns);
            unsigned *ne = ns ? realloc(l->entry, nc * sizeof *ne) : NULL;
            if (ns) l->str = ns;
            if (!ne) return 0;
            l->entry = ne;
            l->cap = nc;
        }
        str = malloc(x->len[a] + 1);
        if (!str) return 0;
        memcpy(str, x->s[a], x->len[a]);
        str[x->len[a]] = '\0';
        l->entry[l->n] = entry;
        l->str[l->n++] = str;
    }
    return 1;
}

/* Frees the strings still in l (those not moved into a table) and l's
 * arrays. */
void rs_memo_list_free(rs_memo_list *l)
{
    for (size_t k = 0; k < l->n; k++) free(l->str[k]);
    free(l->str);
    free(l->entry);
    l->str = NULL;
    l->entry = NULL;
    l->n = l->cap = 0;
}

/* Frees the memo table of s and its paths; only sr_rset_free calls it. */
void rs_memo_free(sr_rset *s)
{
    for (size_t k = 0; s->memo && k < s->memo_cap; k++) free(s->memo[k].str);
    free(s->memo);
}

static uint64_t memo_hash(const char *p, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    w = 0;
    if (i < len) memcpy(&w, p + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 32;
    return h;
}

/* Slot of p in table tab (cap a power of two), or of the empty slot where
 * it would go. */
size_t rs_memo_slot_of(const rs_memo_slot *tab, size_t cap, const char *p, size_t len)
{
    size_t m = cap - 1, i = (size_t)memo_hash(p, len) & m;
    while (tab[i].str && !(tab[i].len == len && memcmp(tab[i].str, p, len) == 0))
        i = (i + 1) & m;
    return i;
}

/* One table slot for str: its answers for any method and each method bit. */
static rs_memo_slot memo_answers(const sr_rset *s, char *str)
{
    rs_memo_slot t;
    t.str = str;
    t.len = strlen(str);
    t.ans[0] = (int16_t)sr_rset_match(s, t.str, t.len, 0);
    for (int b = 0; b < 8; b++)
        t.ans[1 + b] = (int16_t)sr_rset_match(s, t.str, t.len, 1u << b);
    return t;
}

/* Move t into the table unless its path is there already (then 0: the
 * caller keeps the string). */
static int memo_put(sr_rset *s, rs_memo_slot *tab, size_t cap, rs_memo_slot t)
{
    size_t slot = rs_memo_slot_of(tab, cap, t.str, t.len);
    if (tab[slot].str) return 0; /* duplicate */
    tab[slot] = t;
    s->memo_lens[t.len / 64] |= (uint64_t)1 << (t.len % 64);
    if (t.len) {
        unsigned char lb = (unsigned char)t.str[t.len - 1];
        s->memo_last[lb / 64] |= (uint64_t)1 << (lb % 64);
    }
    return 1;
}

/* Build the memo from l with the rest of the set complete (the table is
 * off while the answers are computed). Takes the strings it keeps out of l
 * and credits each path to the entry that spelled it first. Sets with
 * more entries than an int16_t answer holds get no memo. 0 on out of
 * memory. */
int rs_memo_build(sr_rset *s, rs_memo_list *l)
{
    size_t cap = 16;
    rs_memo_slot *tab;
    if (l->n == 0 || s->n > 0x7fff) return 1;
    while (cap < l->n * 2) cap *= 2;
    tab = calloc(cap, sizeof *tab);
    if (!tab) return 0;
    for (size_t k = 0; k < l->n; k++) {
        if (!memo_put(s, tab, cap, memo_answers(s, l->str[k]))) continue;
        s->e[l->entry[k]].nmemo++;
        s->memo_n++;
        l->str[k] = NULL;
    }
    s->memo = tab;
    s->memo_cap = cap;
    return 1;
}
