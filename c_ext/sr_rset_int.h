/*
 * sr_rset_int.h - what the phases of the regex set share; callers see only
 * sr_core.h. How the set works is told in sr_rset.c. One file per phase:
 *
 *   sr_rset_prefix.c  literal prefixes of a pattern (and what remains)
 *   sr_rset_glob.c    remainders verified without PCRE2: globs, required
 *                     endings, superset globs, the dictionary of runs
 *   sr_rset_trie.c    the prefix trie: built per byte, path-compressed,
 *                     walked once per subject
 *   sr_rset_memo.c    the exact-path memo
 *   sr_rset_match.c   sr_rset_match: memo, trie walk, verification
 *   sr_rset.c         sr_rset_new / sr_rset_free: the phases in order
 *   sr_rset_dump.c    sr_rset_entry / sr_rset_dump: how each entry compiled
 *
 * Every function here is total on the inputs its phase produces; the ones
 * that allocate say how they report out-of-memory. None of them raises.
 */
#ifndef SR_RSET_INT_H
#define SR_RSET_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "sr_util.h"

/* Limits: the number of literal prefixes one pattern may expand to, the
 * longest literal prefix we index, and PCRE2's resource limits. */
#define RS_MAX_EXPAND    64
#define RS_MAX_PREFIX    256
#define RS_MATCH_LIMIT   1000000u
#define RS_DEPTH_LIMIT   10000u
#define RS_JIT_STACK_MAX (1024u * 1024u)
#define RS_MEMO_MAX      128 /* longest path in the exact-path memo   */
#define RS_DICT_MAX      64  /* dictionary runs (bits of a uint64_t)  */
#define RS_DENSE_MIN     6   /* more children: a 256-slot lookup row  */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RS_LE 1 /* word-at-a-time loops assume little-endian */
#else
#define RS_LE 0
#endif

/* Internal functions are not exported from the module: calls between the
 * core's files stay direct (no PLT) in the shared object. */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(hidden)
#endif

/* ------------------------------------------------------------------------ */
/* Prefix phase (sr_rset_prefix.c).                                          */

/* The literal prefixes of one pattern: up to RS_MAX_EXPAND strings of up
 * to RS_MAX_PREFIX bytes, plus scratch for one group's alternatives. */
typedef struct {
    char s[RS_MAX_EXPAND][RS_MAX_PREFIX];
    size_t len[RS_MAX_EXPAND];
    size_t n;
    char alts[RS_MAX_EXPAND][RS_MAX_PREFIX];
    size_t alt_len[RS_MAX_EXPAND];
} rs_exp;

int rs_is_quant(char c);
int rs_is_alnum(char c);
size_t rs_lit_atom(const char *p, char *out);
size_t rs_skip_class(const char *p);
int rs_has_top_level_alt(const char *p);
size_t rs_lit_group(const char *p, char alts[][RS_MAX_PREFIX],
                    size_t *alt_len, size_t *n_alts);
size_t rs_extract_prefixes(const char *pat, rs_exp *x);
int rs_rest_is_standalone(const char *r);
int rs_prefixes_nest(const rs_exp *x);
const char *rs_why_no_prefix(const char *pat);

/* ------------------------------------------------------------------------ */
/* Glob phase (sr_rset_glob.c).                                              */

/* A remainder of the shape  L0 (.* Li)* [$]  (literal runs separated by
 * ".*", optional end anchor), also used for required endings (nseg
 * alternatives) and superset globs. Matched without PCRE2 when the subject
 * has no newline ('.' excludes only '\n', and '$' also matches before a
 * final '\n'; subjects with '\n' take PCRE2). */
typedef struct {
    char *lits;        /* all literal runs, concatenated                */
    size_t *off, *len; /* run i = lits[off[i] .. off[i]+len[i])         */
    size_t nseg;       /* runs: nseg-1 ".*" separators between them     */
    int end_anchor;    /* pattern ends with '$'                         */
    int *lid;          /* per run: dictionary id (see rs_dict) or -1    */
} rs_glob;

/* The dictionary: up to 64 distinct runs that start with '/' and are
 * searched after a ".*". One pass over the '/' bytes of a subject finds the
 * first occurrence of each; a glob then needs no scan of its own. Runs are
 * bucketed by their second byte. */
typedef struct {
    size_t n;
    const char *lit[RS_DICT_MAX]; /* point into the globs' lits          */
    size_t len[RS_DICT_MAX];
    unsigned char bstart[257]; /* bucket b = ids order[bstart[b]..bstart[b+1]) */
    unsigned char order[RS_DICT_MAX];
} rs_dict;

/* Per-call search context (on the stack of sr_rset_match): which
 * dictionary runs occur in the subject, and where first. */
typedef struct {
    int done; /* dictionary pass made                  */
    uint64_t found;
    uint32_t first[RS_DICT_MAX];
} rs_ctx;

rs_glob *rs_glob_compile(const char *r);
rs_glob *rs_suffix_compile(const char *r);
rs_glob *rs_superset_compile(const char *r);
void rs_glob_free(rs_glob *g);
int rs_dict_add(rs_dict *d, rs_glob *g, uint64_t *req);
void rs_dict_finish(rs_dict *d);
void rs_dict_scan(const rs_dict *d, rs_ctx *c, const char *s, size_t len);
int rs_glob_match(const rs_dict *d, rs_ctx *c, const rs_glob *g,
                  const char *s, size_t len, size_t pos);
int rs_tail_match(const rs_glob *g, const char *s, size_t len, size_t pos);
int rs_suffix_ok(const rs_glob *sfx, const char *s, size_t len);

/* ------------------------------------------------------------------------ */
/* The set.                                                                  */

typedef struct {
    pcre2_code *full; /* the whole pattern (also used by the loop)     */
    pcre2_code *rest; /* remainder after the literal prefix, or NULL   */
    rs_glob *glob;    /* TAIL/GLOB: native form of the remainder       */
    rs_glob *pre;     /* REGEX: superset glob (quick reject) or NULL   */
    rs_glob *suffix;  /* REGEX: required endings (quick reject) or NULL */
    unsigned mask;    /* method mask, SR_M_ALL when "any"              */
    sr_verify verify;
    uint64_t req; /* dictionary runs any match must contain        */
    /* read by sr_rset_entry only */
    char *pattern, *name; /* copies (name may be NULL)                     */
    size_t roff;          /* where the remainder starts in pattern         */
    size_t nprefix;       /* literal prefixes in the trie                  */
    size_t nmemo;         /* complete paths in the memo                    */
    const char *why;      /* SR_VERIFY_FULL: why (a string constant)       */
} rs_entry;

/* Byte trie, build time only. */
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
    unsigned label_off, label_len; /* bytes in labels[]                  */
    unsigned child_off, nchild;    /* cfirst[] / cidx[] slots            */
    unsigned ends_off, ends_cnt;   /* entries whose prefix ends here     */
    int dense;                     /* >= 0: row of dense[] (many children) */
} rs_cnode;

/* One slot of the exact-path memo. */
typedef struct {
    char *str;
    size_t len;
    int16_t ans[9]; /* [0]: any method, [1 + bit]: one method bit   */
} rs_memo_slot;

struct sr_rset {
    size_t n;
    rs_entry *e;
    rs_node *nodes; /* the byte trie, build time only        */
    size_t n_nodes, cap_nodes;
    rs_cnode *cn;
    size_t n_cn;
    unsigned char *labels, *cfirst; /* labels: padded with 8 zero bytes  */
    unsigned *cidx;
    uint16_t *dense;      /* rows of 256: child cn index + 1, 0 = none     */
    unsigned *ends;       /* entry indices, grouped per node               */
    size_t nwords;        /* bitset words                                  */
    uint64_t *always;     /* entries with an empty literal prefix          */
    uint64_t *cand;       /* scratch: candidate bitset (one caller at once)*/
    uint64_t *nbits;      /* per compressed node: nwords bitset of the
                             entries whose prefix ends there               */
    pcre2_match_data *md; /* scratch                                       */
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    int jit; /* 1 if every compiled code is JIT-compiled      */
    rs_dict dict;
    /* Exact-path memo: the answers (per method) for the complete paths a
     * pattern like '^/_matrix/client/(r0|v3)/sync$' spells out, computed
     * at build time by the general path. The answer depends only on the
     * subject and the method, so a hit is exactly what a match computes. */
    rs_memo_slot *memo;
    size_t memo_cap;                             /* power of two, 0 = no table                    */
    size_t memo_n;                               /* paths in the table                            */
    uint64_t memo_lens[(RS_MEMO_MAX + 64) / 64]; /* lengths present       */
    uint64_t memo_last[4];                       /* last bytes present    */
};

/* ------------------------------------------------------------------------ */
/* Trie phase (sr_rset_trie.c).                                              */

/* Where a prefix of entry `entry` ends in the byte trie (build time). */
typedef struct {
    unsigned node, entry;
} rs_end;

/* The nodes with ends that a walk passed, and the subject offset after
 * each: an entry verified by its remainder has prefixes of which at most
 * one starts the subject (checked at build), so its prefix length is the
 * offset of the one visited node that lists it. */
typedef struct {
    unsigned node[RS_MAX_PREFIX], pos[RS_MAX_PREFIX];
    unsigned n;
} rs_visit;

int rs_trie_init(sr_rset *s);
long rs_trie_insert(sr_rset *s, const char *str, size_t len);
int rs_trie_finish(sr_rset *s, rs_end *ends, size_t n_ends);
void rs_trie_walk(const sr_rset *s, const char *subj, size_t len,
                  uint64_t *cand, rs_visit *vis);
size_t rs_prefix_len(const sr_rset *s, const rs_visit *vis, unsigned e);
void rs_trie_free(sr_rset *s);

/* ------------------------------------------------------------------------ */
/* Memo phase (sr_rset_memo.c).                                              */

/* The complete paths collected while entries are added (build time). */
typedef struct {
    char **str;
    unsigned *entry;
    size_t n, cap;
} rs_memo_list;

int rs_memo_collect(rs_memo_list *l, const rs_exp *x, unsigned entry);
int rs_memo_build(sr_rset *s, rs_memo_list *l);
void rs_memo_list_free(rs_memo_list *l);
void rs_memo_free(sr_rset *s);
size_t rs_memo_slot_of(const rs_memo_slot *tab, size_t cap, const char *p, size_t len);

/* 1 and *ans = the answer if subj is a memoized path (for a single method
 * bit or any method), else 0. Inline: every match starts here, and most
 * subjects are rejected by the two bitsets. */
static inline int rs_memo_lookup(const sr_rset *s, const char *subj, size_t len,
                                 unsigned mbit, int *ans)
{
    unsigned char lb;
    size_t slot;
    int ix;
    if (!s->memo_cap || len > RS_MEMO_MAX || len == 0) return 0;
    lb = (unsigned char)subj[len - 1];
    if (!((s->memo_lens[len / 64] >> (len % 64)) & 1) ||
        !((s->memo_last[lb / 64] >> (lb % 64)) & 1))
        return 0;
    if (mbit == 0 || mbit == SR_M_ALL) ix = 0; /* answer index */
    else if (mbit & (mbit - 1)) return 0;      /* several bits */
    else ix = 1 + __builtin_ctz(mbit);
    slot = rs_memo_slot_of(s->memo, s->memo_cap, subj, len);
    if (!s->memo[slot].str) return 0;
    *ans = s->memo[slot].ans[ix];
    return 1;
}

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#endif
