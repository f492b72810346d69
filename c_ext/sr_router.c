#define _GNU_SOURCE /* memmem */
/*
 * sr_router.c - the per-request routing decision (docs/design.md "Router
 * data", steps 1-6), from data built once by the Lua policy.
 *
 * A router is built once and then only read, except for the scratch area of
 * its regex set (see sr_rset.c): a router is used by one caller at a time.
 * sr_route never allocates: every buffer is on the stack, keys are capped at
 * sizeof(d->key) - 1 bytes. Raw access tokens are never copied into a
 * decision: user keys are localparts, other tokens become "th:" + a keyed
 * hash, and appservice tokens are stored only as keyed hashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_util.h"

#define RT_NAME_MAX  255  /* class / backend / id names                */
#define RT_TOK_MAX   4096 /* longest token we look at (query-decoded)  */
#define RT_PARAM_MAX 512  /* query values we read (since, user_id ...) */
#define RT_NORM_MAX  4096 /* path bytes normalized for the block check */

typedef struct {
    char *cls, *generic_backend, *other_backend, *reason;
    unsigned generic_methods; /* SR_M_ALL when "any"                       */
    sr_key_src key;
    int as_ok;
} rt_target;

typedef struct {
    char *id;
    int target, alt;
    sr_refine refine;
} rt_entry;

typedef struct {
    uint64_t h;   /* keyed hash of the token                   */
    size_t len;   /* its length (cheap extra check)            */
    char *sender; /* localpart                                 */
} rt_astok;

struct sr_router {
    sr_rset *set;
    rt_entry *e;
    size_t ne;
    rt_target *t;
    size_t nt;
    int fallback;
    int blocked; /* index of a data target of class "blocked",
                    or -1: use builtin_blocked               */
    rt_target builtin_blocked;
    sr_sipkey sipkey;    /* for hkeys and token hashes                */
    sr_sipkey as_sipkey; /* for appservice token hashes               */
    uint64_t seed[4];    /* XXH64 seeds of the hkeys, by key family:
                            user, room, origin, token-hash (< 2^63)   */
    rt_astok *as;
    size_t nas;
    char *as_backend;
};

/* ------------------------------------------------------------------------ */
/* Construction.                                                             */

/* A backend or class name: 1..255 bytes of [A-Za-z0-9_.:-] (it is printed
 * in the packed "backend|class|hkey" string and used as an HAProxy name). */
static int valid_name(const char *s)
{
    size_t n;
    if (!s) return 0;
    n = strlen(s);
    if (n == 0 || n > RT_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* Frees everything the router owns (and its regex set); NULL is a no-op. */
void sr_router_free(sr_router *r)
{
    if (!r) return;
    sr_rset_free(r->set);
    for (size_t i = 0; r->e && i < r->ne; i++) free(r->e[i].id);
    for (size_t i = 0; r->t && i < r->nt; i++) {
        free(r->t[i].cls);
        free(r->t[i].generic_backend);
        free(r->t[i].other_backend);
        free(r->t[i].reason);
    }
    for (size_t i = 0; r->as && i < r->nas; i++) free(r->as[i].sender);
    {
        void *const owned[] = { r->e, r->t, r->as, r->as_backend, r };
        sr_free_all(owned, sizeof owned / sizeof owned[0]);
    }
}

/* The spec's shape: counts, lists present, indices in range. */
static int check_spec(const sr_router_spec *spec, sr_error *err)
{
    const char *bad = NULL;
    if (!spec) bad = "no spec";
    else if (spec->n_targets == 0 || !spec->targets) bad = "no targets";
    else if (spec->n_entries && !spec->entries) bad = "no entries";
    else if (spec->n_targets > 0x7fffffff || spec->n_entries > 0x7fffffff) bad = "too many entries";
    else if (spec->fallback_target < 0 || (size_t)spec->fallback_target >= spec->n_targets)
        bad = "fallback_target out of range";
    else if (spec->as_backend && !valid_name(spec->as_backend)) bad = "as_backend: bad name";
    else if (spec->n_as_tokens && !spec->as_tokens) bad = "no as_tokens";
    if (bad) sr_err_input(err, "%s", bad);
    return bad == NULL;
}

/* A copy of s into *dst; 0 when s is set but memory ran out. */
static int copy_str(char **dst, const char *s)
{
    *dst = sr_strdup(s);
    return !s || *dst;
}

/* Target i: names checked ([A-Za-z0-9_.:-]), strings copied. */
static int copy_target(sr_router *r, const sr_target *st, size_t i, sr_error *err)
{
    rt_target *t = &r->t[i];
    const char *other = st->other_backend ? st->other_backend : st->generic_backend;
    const char *bad = NULL;
    if (!valid_name(st->cls)) bad = "bad class name";
    else if (!valid_name(st->generic_backend) || !valid_name(other)) bad = "bad backend name";
    else if ((unsigned)st->key > SR_KEY_PATH_USER) bad = "bad key source";
    if (bad) {
        sr_errf(err, SR_AT_TARGET, i, NULL, "%s", bad);
        return 0;
    }
    if (!copy_str(&t->cls, st->cls) || !copy_str(&t->generic_backend, st->generic_backend) ||
        !copy_str(&t->other_backend, other) || !copy_str(&t->reason, st->reason)) {
        sr_err_input(err, "out of memory");
        return 0;
    }
    t->generic_methods = (st->generic_methods & SR_M_ALL) ? (st->generic_methods & SR_M_ALL) : SR_M_ALL;
    t->key = st->key;
    t->as_ok = st->as_ok ? 1 : 0;
    if (r->blocked < 0 && strcmp(st->cls, "blocked") == 0) r->blocked = (int)i;
    return 1;
}

/* Entry i: id, target indices and refine checked, id copied. */
static int copy_entry(sr_router *r, const sr_router_spec *spec, size_t i, sr_error *err)
{
    const sr_entry *se = &spec->entries[i];
    rt_entry *e = &r->e[i];
    int id_ok = se->id && se->id[0] && strlen(se->id) <= RT_NAME_MAX;
    const char *bad = NULL;
    if (!id_ok) bad = "bad id";
    else if (!se->pattern) bad = "no pattern";
    else if (se->target < 0 || (size_t)se->target >= spec->n_targets) bad = "target out of range";
    else if ((unsigned)se->refine > SR_REFINE_POS) bad = "bad refine";
    else if (se->refine != SR_REFINE_NONE &&
             (se->alt_target < 0 || (size_t)se->alt_target >= spec->n_targets))
        bad = "alt_target out of range";
    if (bad) {
        sr_errf(err, SR_AT_ENTRY, i, id_ok ? se->id : NULL, "%s", bad);
        return 0;
    }
    if (!copy_str(&e->id, se->id)) {
        sr_err_input(err, "out of memory");
        return 0;
    }
    e->target = se->target;
    e->refine = se->refine;
    e->alt = se->refine != SR_REFINE_NONE ? se->alt_target : se->target;
    return 1;
}

/* The regex set over the entries' patterns, method filters and ids. */
static int build_set(sr_router *r, const sr_router_spec *spec, sr_error *err)
{
    size_t n = spec->n_entries ? spec->n_entries : 1;
    const char **pats = calloc(n, sizeof *pats), **names = calloc(n, sizeof *names);
    unsigned *masks = calloc(n, sizeof *masks);
    if (pats && names && masks) {
        for (size_t i = 0; i < spec->n_entries; i++) {
            pats[i] = spec->entries[i].pattern;
            names[i] = spec->entries[i].id;
            masks[i] = spec->entries[i].methods;
        }
        r->set = sr_rset_new(pats, masks, names, spec->n_entries, err);
    } else {
        sr_err_input(err, "out of memory");
    }
    free(pats);
    free(names);
    free(masks);
    return r->set != NULL;
}

/* The SipHash keys: one from the secret (hkeys, token hashes), one derived
 * from it for appservice token hashes. */
static void derive_keys(sr_router *r, const sr_router_spec *spec)
{
    r->sipkey = sr_sipkey_from_secret(spec->secret ? spec->secret : "",
                                      spec->secret ? spec->secret_len : 0);
    r->as_sipkey.k0 = r->sipkey.k0 ^ 0x6173746f6b656e31ULL; /* "astoken1" */
    r->as_sipkey.k1 = r->sipkey.k1 ^ 0x73796e726f757465ULL; /* "synroute" */
    for (int i = 0; i < 4; i++) {
        char tag[] = "hkey-seed-0";
        tag[10] = (char)('0' + i);
        r->seed[i] = sr_siphash(&r->sipkey, tag, sizeof tag - 1) & 0x7fffffffffffffffULL;
    }
}

/* Appservice token i: kept as a keyed hash, with its sender's localpart. */
static int copy_as_token(sr_router *r, const sr_router_spec *spec, size_t i, sr_error *err)
{
    const char *tok = spec->as_tokens[i];
    const char *snd = spec->as_senders ? spec->as_senders[i] : NULL;
    char lp[RT_NAME_MAX + 1];
    long l = 0;
    if (!tok || !tok[0]) {
        sr_errf(err, SR_AT_AS_TOKEN, i, NULL, "empty");
        return 0;
    }
    if (snd) l = sr_localpart(snd, strlen(snd), lp, sizeof lp - 1);
    if (l < 0) {
        sr_errf(err, SR_AT_AS_TOKEN, i, NULL, "sender too long");
        return 0;
    }
    lp[l] = '\0';
    r->as[i].h = sr_siphash(&r->as_sipkey, tok, strlen(tok));
    r->as[i].len = strlen(tok);
    if (!copy_str(&r->as[i].sender, lp)) {
        sr_err_input(err, "out of memory");
        return 0;
    }
    return 1;
}

/* A router with its arrays allocated and the built-in "blocked" target. */
static sr_router *router_alloc(const sr_router_spec *spec)
{
    sr_router *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->blocked = -1;
    r->builtin_blocked.cls = "blocked";
    r->builtin_blocked.generic_backend = "blocked";
    r->builtin_blocked.other_backend = "blocked";
    r->builtin_blocked.reason = "internal endpoint (replication/MAS), never public";
    r->builtin_blocked.generic_methods = SR_M_ALL;
    r->builtin_blocked.key = SR_KEY_NONE;
    r->fallback = spec->fallback_target;
    r->nt = spec->n_targets;
    r->ne = spec->n_entries;
    r->nas = spec->n_as_tokens;
    r->t = calloc(r->nt, sizeof *r->t);
    r->e = calloc(r->ne ? r->ne : 1, sizeof *r->e);
    r->as = calloc(r->nas ? r->nas : 1, sizeof *r->as);
    if (!r->t || !r->e || !r->as) {
        sr_router_free(r);
        return NULL;
    }
    return r;
}

/* Build a router from spec (contract in sr_core.h). Validates indices,
 * names and patterns; copies every string; keeps only keyed hashes of
 * as_tokens. other_backend NULL = generic_backend, generic_methods 0 =
 * every method. NULL with *err filled (0-based indices) on bad data or out
 * of memory. Never raises. */
sr_router *sr_router_new(const sr_router_spec *spec, sr_error *err)
{
    sr_router *r;
    int ok = 1;
    sr_err_clear(err);
    if (!check_spec(spec, err)) return NULL;
    r = router_alloc(spec);
    if (!r) {
        sr_err_input(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; ok && i < spec->n_targets; i++) ok = copy_target(r, &spec->targets[i], i, err);
    for (size_t i = 0; ok && i < spec->n_entries; i++) ok = copy_entry(r, spec, i, err);
    ok = ok && build_set(r, spec, err);
    if (ok) derive_keys(r, spec);
    for (size_t i = 0; ok && i < spec->n_as_tokens; i++) ok = copy_as_token(r, spec, i, err);
    if (ok && !copy_str(&r->as_backend, spec->as_backend)) {
        sr_err_input(err, "out of memory");
        ok = 0;
    }
    if (!ok) {
        sr_router_free(r);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Internal paths: /_synapse/replication/ and /_synapse/mas/.                */

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Lenient percent-decode (invalid escapes stay as they are), lowercase,
 * '\' -> '/'. dst holds n bytes. Returns the new length. */
static size_t loose_decode(const char *s, size_t n, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n &&
            hexv((unsigned char)s[i + 1]) >= 0 && hexv((unsigned char)s[i + 2]) >= 0) {
            c = (unsigned char)(hexv((unsigned char)s[i + 1]) * 16 + hexv((unsigned char)s[i + 2]));
            i += 2;
        }
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (c == '\\') c = '/';
        dst[o++] = (char)c;
    }
    return o;
}

/* Is [s, s+n) exactly the C string lit? */
static int seg_is(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* 0 if no normalization of p can produce a segment "_synapse": that needs
 * a '_' (raw, or %5f, or double-encoded via %25) followed by an 's' (raw,
 * either case, or encoded: then a '%' follows the '_'). Sound, and lets
 * nearly every request skip the decoding below. */
static int maybe_internal(const char *p, size_t n)
{
    const char *end = p + n, *c;
    /* memchr jumps between the only two bytes that matter */
    for (c = p; n > 1 && (c = memchr(c, '_', (size_t)(end - c))) != NULL && c + 1 < end; c++) {
        unsigned char d = (unsigned char)c[1];
        if ((d | 0x20) == 's' || d == '%') return 1;
    }
    for (c = p; n > 2 && (c = memchr(c, '%', (size_t)(end - c))) != NULL && c + 2 < end; c++) {
        unsigned char d = (unsigned char)c[1], e = (unsigned char)c[2];
        if ((d == '5' && (e | 0x20) == 'f') || (d == '2' && e == '5')) return 1;
    }
    return 0;
}

/* 1 if the path must be blocked: the raw path starts with one of the
 * internal prefixes, or - conservatively - the path after percent-decoding
 * (twice), lowercasing, merging slashes and resolving dot segments has the
 * segments "_synapse" then "replication" or "mas". Only the first two
 * segments decide, so the resolution keeps those two and a count of the
 * segments above them: exact however deep the path goes. */
static int is_internal_path(const char *p, size_t n)
{
    char a[RT_NORM_MAX], b[RT_NORM_MAX];
    size_t la, lb, segs[2][2] = { { 0, 0 }, { 0, 0 } }, ns = 0, i = 0;

    if ((n >= 22 && memcmp(p, "/_synapse/replication/", 22) == 0) ||
        (n >= 14 && memcmp(p, "/_synapse/mas/", 14) == 0))
        return 1;
    if (!maybe_internal(p, n)) return 0;
    if (n > RT_NORM_MAX) {
        /* Too long to normalize on the stack (never a real Matrix path).
         * Normalizing only decodes '%', lowercases and maps '\' to '/':
         * without any '%' the segment "_synapse" needs "synapse" in the raw
         * text, case-insensitively. Block if either could be the case. */
        if (memchr(p, '%', n)) return 1;
        for (i = 0; i + 7 <= n; i++) {
            size_t k = 0;
            while (k < 7 && (p[i + k] | 0x20) == "synapse"[k]) k++;
            if (k == 7) return 1;
        }
        return 0;
    }
    la = loose_decode(p, n, a);
    lb = loose_decode(a, la, b);
    while (i < lb) {
        size_t st, len;
        while (i < lb && b[i] == '/') i++;
        st = i;
        while (i < lb && b[i] != '/') i++;
        len = i - st;
        if (len == 0 || seg_is(b + st, len, ".")) continue;
        if (seg_is(b + st, len, "..")) {
            if (ns) ns--;
            continue;
        }
        if (ns < 2) {
            segs[ns][0] = st;
            segs[ns][1] = len;
        }
        ns++;
    }
    return ns >= 2 && seg_is(b + segs[0][0], segs[0][1], "_synapse") &&
           (seg_is(b + segs[1][0], segs[1][1], "replication") ||
            seg_is(b + segs[1][0], segs[1][1], "mas"));
}

/* ------------------------------------------------------------------------ */
/* The decision.                                                             */

/* The seed family of a key kind: 0 user (and syt), 1 room, 2 origin,
 * 3 anything else (token-hash). */
static int seed_family(const char *kind)
{
    if (!kind) return 3;
    if (!strcmp(kind, "user") || !strcmp(kind, "syt")) return 0;
    if (!strcmp(kind, "room")) return 1;
    if (!strcmp(kind, "origin")) return 2;
    return 3;
}

/* Unpadded standard base64 of src[0..n) into dst (cap >= 4 * (n + 2) / 3 + 1);
 * its length. Synapse writes a syt_ token's localpart this way. */
static size_t b64_unpadded(const unsigned char *src, size_t n, char *dst)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        dst[o++] = a[v >> 18];
        dst[o++] = a[(v >> 12) & 63];
        dst[o++] = a[(v >> 6) & 63];
        dst[o++] = a[v & 63];
    }
    if (n - i == 1) {
        dst[o++] = a[src[i] >> 2];
        dst[o++] = a[(src[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)src[i] << 8 | src[i + 1];
        dst[o++] = a[v >> 10];
        dst[o++] = a[(v >> 4) & 63];
        dst[o++] = a[(v & 15) << 2];
    }
    return o;
}

/* The hkey of (kind, key) (contract in sr_core.h): 16 lowercase hex of
 * XXH64 under the kind's seed, over the key as HAProxy's native fast
 * paths see it: a "user" key (a localpart) as the unpadded base64 a syt_
 * token carries, a "syt" key (such a segment itself) and every other key
 * as they are. Never fails, never allocates. */
void sr_router_hkey(const sr_router *r, const char *kind, const char *key,
                    size_t keylen, char out[17])
{
    int fam = seed_family(kind);
    if (!key) keylen = 0;
    if (kind && !strcmp(kind, "user") && keylen <= 512) {
        char buf[4 * (512 + 2) / 3 + 4];
        size_t n = b64_unpadded((const unsigned char *)key, keylen, buf);
        sr_hex64(sr_xxh64(buf, n, r->seed[fam]), out);
        return;
    }
    sr_hex64(sr_xxh64(key, keylen, r->seed[fam]), out);
}

/* The XXH64 seed of the hkeys of kind (what `synroute haproxy` writes into
 * the native fast paths' xxh64(<seed>)); 0 for a NULL router. */
uint64_t sr_router_hkey_seed(const sr_router *r, const char *kind)
{
    return r ? r->seed[seed_family(kind)] : 0;
}

/* sr_query_param, skipped when `name` cannot be in the query: without any
 * '%' the form-decoded names are the raw ones (a '+' becomes a space, which
 * no name we look up contains), so the raw name must occur. Same returns. */
static long qparam(const char *q, size_t qlen, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (qlen == 0) return -1;
    if (!memchr(q, '%', qlen) && !memmem(q, qlen, name, nl)) return -1;
    return sr_query_param(q, qlen, name, dst, cap);
}

/* Set d->key from (s, n) capped at sizeof(d->key) - 1; 0 if empty. */
static int set_key(sr_decision *d, const char *kind, const char *s, size_t n)
{
    if (n == 0) return 0;
    if (n > sizeof d->key - 1) n = sizeof d->key - 1;
    memcpy(d->key, s, n);
    d->key[n] = '\0';
    d->key_kind = kind;
    return 1;
}

/* One request, split: "METHOD SP SRC SP PATHQ SP AUTH", PATHQ at its first
 * '?'. Absent parts are empty; "-" for SRC or AUTH means absent. */
typedef struct {
    const char *method, *src, *path, *query, *auth;
    size_t mlen, slen, plen, qlen, alen;
    unsigned mbit;
} rt_req;

/* The next space-separated field of [*p, end): its start and length;
 * *p moves past the space, or to NULL when this was the last field. */
static const char *next_field(const char **p, const char *end, size_t *flen)
{
    const char *f = *p, *sp = memchr(f, ' ', (size_t)(end - f));
    *flen = sp ? (size_t)(sp - f) : (size_t)(end - f);
    *p = sp ? sp + 1 : NULL;
    return f;
}

/* Step 1: split the input. Never fails: missing fields stay empty. */
static void parse_input(const char *in, size_t len, rt_req *q)
{
    const char *end = in + len, *p = in, *mark;
    memset(q, 0, sizeof *q);
    q->method = q->src = q->path = q->query = q->auth = "";
    if (len) q->method = next_field(&p, end, &q->mlen);
    if (len && p) q->src = next_field(&p, end, &q->slen);
    if (len && p) q->path = next_field(&p, end, &q->plen);
    if (len && p) {
        q->auth = p;
        q->alen = (size_t)(end - p);
    }
    mark = q->plen ? memchr(q->path, '?', q->plen) : NULL;
    if (mark) {
        q->query = mark + 1;
        q->qlen = q->plen - (size_t)(mark + 1 - q->path);
        q->plen = (size_t)(mark - q->path);
    }
    if (q->alen == 1 && q->auth[0] == '-') q->alen = 0;
    if (q->slen == 1 && q->src[0] == '-') q->slen = 0;
    q->mbit = sr_method_bit(q->method, q->mlen);
}

/* Steps 2-3: the matching entry (or the fallback) and its refinement: a
 * sync without `since` (or with full_state=true), or a sliding sync
 * without `pos`, takes the entry's alternative target. */
static const rt_target *pick_target(const sr_router *r, const rt_req *q, sr_decision *d)
{
    int e = sr_rset_match(r->set, q->path, q->plen, q->mbit), ti;
    const rt_entry *en;
    if (e < 0) return &r->t[r->fallback];
    en = &r->e[e];
    ti = en->target;
    d->entry = e;
    d->route_id = en->id;
    if (en->refine == SR_REFINE_SINCE) {
        char tmp[RT_PARAM_MAX];
        /* only emptiness matters: no need to decode the value */
        if (sr_query_raw(q->query, q->qlen, "since", NULL) <= 0) ti = en->alt;
        else if (qparam(q->query, q->qlen, "full_state", tmp, sizeof tmp) == 4 &&
                 memcmp(tmp, "true", 4) == 0)
            ti = en->alt;
    } else if (en->refine == SR_REFINE_POS) {
        if (sr_query_raw(q->query, q->qlen, "pos", NULL) <= 0) ti = en->alt;
    }
    return &r->t[ti];
}

/* The request's access token (Authorization, else access_token), pointing
 * into q or tokbuf; 0 if there is none or it is empty/undecodable. */
static int find_token(const rt_req *q, char *tokbuf, size_t cap, const char **tok, size_t *toklen)
{
    int found = sr_token_find(q->alen ? q->auth : NULL, q->alen, q->query, q->qlen,
                              tokbuf, cap, tok, toklen) == 1;
    return found && *toklen > 0;
}

/* Index of the appservice token equal to tok, or -1. */
static int as_token_index(const sr_router *r, const char *tok, size_t toklen)
{
    uint64_t h = sr_siphash(&r->as_sipkey, tok, toklen);
    for (size_t i = 0; i < r->nas; i++)
        if (r->as[i].h == h && r->as[i].len == toklen) return (int)i;
    return -1;
}

/* Step 5, an appservice token: its pool when the target allows it, and
 * the user it acts for: the user_id param (localpart), else the sender. */
static void key_for_appservice(const sr_router *r, const rt_target *t, const rt_req *q,
                               int as_idx, sr_decision *d)
{
    char tmp[RT_PARAM_MAX], kbuf[sizeof d->key];
    long v, l = -1;
    d->token_kind = SR_TOK_OPAQUE;
    if (t->as_ok && r->as_backend) {
        d->backend = r->as_backend;
        d->appservice = 1;
    }
    if (!d->appservice && t->key != SR_KEY_USER) return;
    v = qparam(q->query, q->qlen, "user_id", tmp, sizeof tmp);
    if (v > 0) l = sr_localpart(tmp, (size_t)v, kbuf, sizeof kbuf - 1);
    if (l > 0) set_key(d, "user", kbuf, (size_t)l);
    else set_key(d, "user", r->as[as_idx].sender, strlen(r->as[as_idx].sender));
}

/* A syt_ token of the shape the native fast path takes: "syt_" S "_" R...
 * with S and R non-empty (what `^Bearer syt_[^_]+_[^_]` admits after
 * "Bearer "). Its segment S (*slen bytes at the return), or NULL. */
static const char *syt_segment(const char *tok, size_t toklen, size_t *slen)
{
    const char *us;
    if (toklen < 7 || memcmp(tok, "syt_", 4) != 0) return NULL;
    us = memchr(tok + 4, '_', toklen - 4);
    if (!us || us == tok + 4 || (size_t)(us - tok) + 1 >= toklen || us[1] == '_') return NULL;
    *slen = (size_t)(us - tok) - 4;
    return tok + 4;
}

/* A user key from the token: the localpart inside syt_/macaroon tokens,
 * else "th:" + a keyed hash of the token (never the token itself). A syt_
 * token of the fast-path shape is hashed by its segment as sent, so the
 * native fast path and this agree even for a segment that is not the
 * canonical base64 of a localpart (key kind "syt" then). */
static void key_from_token(const sr_router *r, const char *tok, size_t toklen, sr_decision *d)
{
    char kbuf[sizeof d->key], hx[17], th[3 + 16], enc[sizeof d->key];
    size_t kl = 0, sl = 0;
    const char *seg = syt_segment(tok, toklen, &sl);
    sr_tok_kind k = sr_token_classify(tok, toklen, kbuf, sizeof kbuf - 1, &kl);
    d->token_kind = (int)k;
    if (seg && (k != SR_TOK_SYT || kl == 0 || 4 * (kl + 2) / 3 >= sizeof enc ||
                b64_unpadded((const unsigned char *)kbuf, kl, enc) != sl ||
                memcmp(enc, seg, sl) != 0)) {
        set_key(d, "syt", seg, sl);
        return;
    }
    if ((k == SR_TOK_SYT || k == SR_TOK_MACAROON) && kl > 0) {
        set_key(d, "user", kbuf, kl);
        return;
    }
    sr_hex64(sr_siphash(&r->sipkey, tok, toklen), hx);
    memcpy(th, "th:", 3);
    memcpy(th + 3, hx, 16);
    set_key(d, "token-hash", th, sizeof th);
}

/* The origin key: the X-Matrix origin, else "src:" + the client address. */
static void key_from_origin(const rt_req *q, sr_decision *d)
{
    static const char fast[] = "X-Matrix origin=\"";
    const size_t fl = sizeof fast - 1;
    char kbuf[sizeof d->key];
    long l;
    size_t n = q->slen > sizeof kbuf - 5 ? sizeof kbuf - 5 : q->slen;
    if (q->alen > fl && !memcmp(q->auth, fast, fl) && q->auth[fl] != '"') {
        /* the common shape: the origin is the first parameter; taken as it
         * is up to its closing quote, as the native fast path takes it
         * (Synapse checks the signature itself) */
        const char *v = q->auth + fl, *e = memchr(v, '"', q->alen - fl);
        size_t vl = e ? (size_t)(e - v) : q->alen - fl;
        /* (a NUL, which HAProxy never passes, is for the full parser to refuse) */
        if (!memchr(v, '\0', vl)) {
            set_key(d, "origin", v, vl);
            return;
        }
    }
    l = q->alen ? sr_xmatrix_origin(q->auth, q->alen, kbuf, sizeof kbuf - 1) : 0;
    if (l > 0) {
        set_key(d, "origin", kbuf, (size_t)l);
    } else if (q->slen) {
        memcpy(kbuf, "src:", 4);
        memcpy(kbuf + 4, q->src, n);
        set_key(d, "origin", kbuf, n + 4);
    }
}

/* Step 6 for keys that come from the path: the room, or the profile user. */
static void key_from_path(const rt_target *t, const rt_req *q, sr_decision *d)
{
    char kbuf[sizeof d->key];
    long l = t->key == SR_KEY_ROOM
                 ? sr_room_from_path(q->path, q->plen, kbuf, sizeof kbuf - 1)
                 : sr_profile_user_from_path(q->path, q->plen, kbuf, sizeof kbuf - 1);
    if (l > 0) set_key(d, t->key == SR_KEY_ROOM ? "room" : "user", kbuf, (size_t)l);
}

/* Steps 5-6 by the token: an appservice token (its pool and user), or
 * the user key of the token. 0 when the token decides nothing (none, or
 * not an appservice token for a target not keyed by user). */
static int key_by_token(const sr_router *r, const rt_target *t, const rt_req *q, sr_decision *d)
{
    char tokbuf[RT_TOK_MAX];
    const char *tok = NULL;
    size_t toklen = 0;
    int as_idx = -1;
    if (!find_token(q, tokbuf, sizeof tokbuf, &tok, &toklen)) return 0;
    if (r->nas) as_idx = as_token_index(r, tok, toklen);
    if (as_idx >= 0) key_for_appservice(r, t, q, as_idx, d);
    else if (t->key == SR_KEY_USER) key_from_token(r, tok, toklen, d);
    else return 0;
    return 1;
}

/* Steps 5-6: the appservice override and the stickiness key. */
static void route_key(const sr_router *r, const rt_target *t, const rt_req *q, sr_decision *d)
{
    if ((t->key == SR_KEY_USER || r->nas) && key_by_token(r, t, q, d)) return;
    if (t->key == SR_KEY_ROOM || t->key == SR_KEY_PATH_USER) key_from_path(t, q, d);
    else if (t->key == SR_KEY_ORIGIN) key_from_origin(q, d);
}

/* A decision with nothing decided yet: fallback route id, no key. */
static void decision_init(sr_decision *d)
{
    d->entry = -1;
    d->route_id = "default";
    d->cls = d->backend = d->reason = NULL;
    d->key_kind = "none";
    d->key[0] = '\0';
    d->hkey[0] = '\0';
    d->token_kind = SR_TOK_NONE;
    d->appservice = 0;
}

/* The whole decision for one "METHOD SRC PATHQ AUTH" input (contract in
 * sr_core.h, steps in docs/design.md "Router data"). Never fails, never
 * allocates, never copies a raw token into d. A NULL router gives class
 * and backend "main". */
void sr_route(const sr_router *r, const char *in, size_t len, sr_decision *d)
{
    rt_req q;
    const rt_target *t;
    decision_init(d);
    if (!r) {
        d->cls = d->backend = "main";
        return;
    }
    parse_input(in ? in : "", in ? len : 0, &q);
    if (is_internal_path(q.path, q.plen)) {
        t = r->blocked >= 0 ? &r->t[r->blocked] : &r->builtin_blocked;
        d->route_id = "blocked";
        d->cls = t->cls;
        d->backend = t->generic_backend;
        d->reason = t->reason ? t->reason : r->builtin_blocked.reason;
        return;
    }
    t = pick_target(r, &q, d);
    d->cls = t->cls;
    d->reason = t->reason;
    d->backend = (t->generic_methods & q.mbit) ? t->generic_backend : t->other_backend;
    route_key(r, t, &q, d);
    if (d->key[0]) sr_router_hkey(r, d->key_kind, d->key, strlen(d->key), d->hkey);
}

/* The decision packed as "backend|class|hkey" into out; returns its length.
 * If out is too small, out = "" and 0 is returned (HAProxy then leaves the
 * vars unset: default_backend main). Never fails, never allocates. */
size_t sr_route_packed(const sr_router *r, const char *in, size_t len,
                       char *out, size_t outcap)
{
    sr_decision d;
    size_t bl, cl, hl, n;
    if (!out || outcap == 0) return 0;
    sr_route(r, in, len, &d);
    bl = strlen(d.backend);
    cl = strlen(d.cls);
    hl = strlen(d.hkey);
    n = bl + 1 + cl + 1 + hl;
    if (n + 1 > outcap) {
        out[0] = '\0';
        return 0;
    }
    memcpy(out, d.backend, bl);
    out[bl] = '|';
    memcpy(out + bl + 1, d.cls, cl);
    out[bl + 1 + cl] = '|';
    memcpy(out + bl + 2 + cl, d.hkey, hl);
    out[n] = '\0';
    return n;
}
