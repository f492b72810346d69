/*
 * sr_rset_trie.c - the literal-prefix trie.
 *
 * All prefixes of all entries go into one byte trie while entries are added
 * (rs_trie_insert). rs_trie_finish then turns it into the trie a match
 * walks: path-compressed (a node carries the run of bytes since its
 * branching parent), children found by their first byte (a 256-slot row
 * for nodes with many children), and per node a bitset of the entries
 * whose prefix ends there. A walk (rs_trie_walk) reads the subject once
 * and ORs those bitsets into the candidates. Build functions report out of
 * memory by their return value; the walk never fails.
 */
#include <stdlib.h>
#include <string.h>

#include "sr_rset_int.h"

/* A new zeroed byte-trie node; its index, or -1 on out of memory. */
static long node_add(sr_rset *s)
{
    if (s->n_nodes == s->cap_nodes) {
        size_t nc = s->cap_nodes ? s->cap_nodes * 2 : 256;
        rs_node *nn = realloc(s->nodes, nc * sizeof *nn);
        if (!nn) return -1;
        s->nodes = nn;
        s->cap_nodes = nc;
    }
    memset(&s->nodes[s->n_nodes], 0, sizeof s->nodes[0]);
    return (long)s->n_nodes++;
}

/* The root of the byte trie (node 0). 0 on out of memory. */
int rs_trie_init(sr_rset *s) { return node_add(s) == 0; }

/* Insert str; returns the node where it ends, or -1 on out of memory. */
long rs_trie_insert(sr_rset *s, const char *str, size_t len)
{
    unsigned cur = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)str[i];
        unsigned ch = s->nodes[cur].first_child, prev = 0;
        while (ch && s->nodes[ch].byte != b) {
            prev = ch;
            ch = s->nodes[ch].next_sibling;
        }
        if (!ch) {
            long nn = node_add(s);
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
/* Finishing: ends per node, path compression, dense rows, node bitsets.     */

/* qsort order of (node, entry) pairs. */
static int cmp_end(const void *a, const void *b)
{
    const rs_end *x = a, *y = b;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* Flatten the (node, entry) pairs into per-node runs of s->ends. */
static int flatten_ends(sr_rset *s, rs_end *ends, size_t n_ends)
{
    if (n_ends == 0) return 1;
    qsort(ends, n_ends, sizeof *ends, cmp_end);
    s->ends = malloc(n_ends * sizeof *s->ends);
    if (!s->ends) return 0;
    for (size_t k = 0; k < n_ends; k++) {
        rs_node *nd = &s->nodes[ends[k].node];
        if (nd->ends_cnt == 0) nd->ends_off = (unsigned)k;
        nd->ends_cnt++;
        s->ends[k] = ends[k].entry;
    }
    return 1;
}

/* Counters of the compression: cursors into arrays preallocated with
 * n_nodes slots (an upper bound for each). */
typedef struct {
    size_t ncn, nlab, nslot;
} rs_cursor;

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

/* A 256-slot child row for every compressed node with many children (not
 * when node indices would not fit the uint16_t slots). 0 on out of memory. */
static int make_dense_rows(sr_rset *s)
{
    size_t rows = 0, r = 0;
    for (size_t i = 0; i < s->n_cn; i++)
        if (s->cn[i].nchild > RS_DENSE_MIN) rows++;
    s->dense = calloc(rows ? rows * 256 : 1, sizeof *s->dense);
    if (!s->dense) return 0;
    for (size_t i = 0; i < s->n_cn; i++) {
        rs_cnode *nd = &s->cn[i];
        nd->dense = -1;
        if (nd->nchild <= RS_DENSE_MIN || s->n_cn >= 0xffff) continue;
        nd->dense = (int)r;
        for (unsigned k = 0; k < nd->nchild; k++)
            s->dense[r * 256 + s->cfirst[nd->child_off + k]] =
                (uint16_t)(s->cidx[nd->child_off + k] + 1);
        r++;
    }
    return 1;
}

/* Path-compress the byte trie into s->cn and free it. 0 on out of memory. */
static int compress_trie(sr_rset *s)
{
    rs_cursor c = { 1, 0, 0 };
    size_t m = s->n_nodes;
    s->cn = calloc(m, sizeof *s->cn);
    s->labels = calloc(m + 8, 1);
    s->cfirst = malloc(m);
    s->cidx = malloc(m * sizeof *s->cidx);
    if (!s->cn || !s->labels || !s->cfirst || !s->cidx) return 0;
    fill_children(s, 0, 0, &c); /* root: empty label */
    s->n_cn = c.ncn;
    if (!make_dense_rows(s)) return 0;
    free(s->nodes);
    s->nodes = NULL;
    s->n_nodes = s->cap_nodes = 0;
    return 1;
}

/* Per compressed node, the bitset of entries whose prefix ends there. */
static int make_node_bits(sr_rset *s)
{
    s->nbits = calloc(s->n_cn * (s->nwords ? s->nwords : 1), sizeof *s->nbits);
    if (!s->nbits) return 0;
    for (size_t c = 0; c < s->n_cn; c++)
        for (unsigned q = 0; q < s->cn[c].ends_cnt; q++) {
            unsigned e = s->ends[s->cn[c].ends_off + q];
            s->nbits[c * s->nwords + e / 64] |= (uint64_t)1 << (e % 64);
        }
    return 1;
}

/* Turn the byte trie and the (node, entry) pairs (reordered here) into the
 * match-time trie. 0 on out of memory (the set frees what was made). */
int rs_trie_finish(sr_rset *s, rs_end *ends, size_t n_ends)
{
    return flatten_ends(s, ends, n_ends) && compress_trie(s) && make_node_bits(s);
}

/* Frees the trie's arrays (byte trie, compressed trie, ends, node
 * bitsets); only sr_rset_free calls it. */
void rs_trie_free(sr_rset *s)
{
    void *const owned[] = { s->nodes, s->cn, s->labels, s->cfirst,
                            s->cidx, s->dense, s->ends, s->nbits };
    sr_free_all(owned, sizeof owned / sizeof owned[0]);
}

/* ------------------------------------------------------------------------ */
/* The walk.                                                                 */

/* The child of nd whose label starts with b, or NULL. */
static const rs_cnode *child_of(const sr_rset *s, const rs_cnode *nd, unsigned char b)
{
    if (nd->dense >= 0) {
        unsigned ci = s->dense[(size_t)nd->dense * 256 + b];
        return ci ? &s->cn[ci - 1] : NULL;
    } else {
        const unsigned char *cf = s->cfirst + nd->child_off;
        unsigned k = 0;
        while (k < nd->nchild && cf[k] != b) k++;
        return k < nd->nchild ? &s->cn[s->cidx[nd->child_off + k]] : NULL;
    }
}

/* 1 if the label lab[0..L) equals subj[pos..pos+L) (pos + L <= len; the
 * first byte is already known to match). Labels are padded with 8 zero
 * bytes, so whole words may be compared, the last one masked. */
static int label_matches(const unsigned char *lab, unsigned L, const char *subj,
                         size_t len, size_t pos)
{
    unsigned j = 1;
#if RS_LE
    if (len - pos >= 8) {
        uint64_t x, y, diff = 0;
        j = 0;
        while (j + 8 <= L && pos + j + 8 <= len) {
            memcpy(&x, lab + j, 8);
            memcpy(&y, subj + pos + j, 8);
            diff |= x ^ y;
            j += 8;
        }
        if (j < L && pos + j + 8 <= len) {
            memcpy(&x, lab + j, 8);
            memcpy(&y, subj + pos + j, 8);
            diff |= (x ^ y) & ((1ULL << (8 * (L - j))) - 1);
            j = L;
        }
        if (diff) return 0;
    }
#endif
    for (; j < L && lab[j] == (unsigned char)subj[pos + j]; j++) {}
    return j == L;
}

/* Walk subj through the trie: OR into cand (nwords words, preset by the
 * caller) the entries of every node passed whose prefix ends there, and
 * list those nodes in vis. The root (empty prefix) has no ends. */
void rs_trie_walk(const sr_rset *s, const char *subj, size_t len,
                  uint64_t *cand, rs_visit *vis)
{
    const rs_cnode *cn = s->cn, *nd = cn;
    const size_t nwords = s->nwords;
    size_t pos = 0;
    unsigned nvis = 0;
    while (pos < len && nd->nchild) {
        nd = child_of(s, nd, (unsigned char)subj[pos]);
        if (!nd || len - pos < nd->label_len ||
            !label_matches(s->labels + nd->label_off, nd->label_len, subj, len, pos))
            break;
        pos += nd->label_len;
        if (nd->ends_cnt) {
            const uint64_t *nb = s->nbits + (size_t)(nd - cn) * nwords;
            for (size_t w = 0; w < nwords; w++) cand[w] |= nb[w];
            vis->node[nvis] = (unsigned)(nd - cn);
            vis->pos[nvis] = (unsigned)pos;
            nvis++;
        }
    }
    vis->n = nvis;
}

/* The prefix length at which entry e (listed by a visited node) starts its
 * remainder: the offset after the deepest visited node that lists it. */
size_t rs_prefix_len(const sr_rset *s, const rs_visit *vis, unsigned e)
{
    for (unsigned v = vis->n; v-- > 0;)
        if ((s->nbits[(size_t)vis->node[v] * s->nwords + e / 64] >> (e % 64)) & 1)
            return vis->pos[v];
    return 0;
}
