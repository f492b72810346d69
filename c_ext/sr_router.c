#define _GNU_SOURCE  /* memmem */
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

#include "sr_core.h"

#define RT_NAME_MAX   255      /* class / backend / id names                */
#define RT_TOK_MAX    4096     /* longest token we look at (query-decoded)  */
#define RT_PARAM_MAX  512      /* query values we read (since, user_id ...) */
#define RT_NORM_MAX   4096     /* path bytes normalized for the block check */
#define RT_SEG_MAX    256

typedef struct {
    char *cls, *be_a, *be_b, *reason;
    unsigned mask_a;           /* SR_M_ALL when "any"                       */
    sr_key_src key;
    int as_ok;
} rt_target;

typedef struct {
    char *id;
    int target, alt;
    sr_refine refine;
} rt_entry;

typedef struct {
    uint64_t h;                /* keyed hash of the token                   */
    size_t len;                /* its length (cheap extra check)            */
    char *sender;              /* localpart                                 */
} rt_astok;

struct sr_router {
    sr_rset *set;
    rt_entry *e; size_t ne;
    rt_target *t; size_t nt;
    int fallback;
    int blocked;               /* index of a data target of class "blocked",
                                  or -1: use builtin_blocked               */
    rt_target builtin_blocked;
    sr_hkey key;               /* hkey and token-hash key                   */
    sr_hkey askey;             /* key for appservice token hashes           */
    rt_astok *as; size_t nas;
    char *as_backend;
};

/* ------------------------------------------------------------------------ */
/* Construction.                                                             */

static void errf(char *err, size_t errlen, const char *fmt, const char *a,
                 size_t i)
{
    if (err && errlen) snprintf(err, errlen, fmt, a, i);
}

/* Copy a NUL-terminated string; NULL stays NULL. *oom set on failure. */
static char *dup_str(const char *s, int *oom)
{
    size_t n;
    char *d;
    if (!s) return NULL;
    n = strlen(s);
    d = malloc(n + 1);
    if (!d) { *oom = 1; return NULL; }
    memcpy(d, s, n + 1);
    return d;
}

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
    if (r->e) for (size_t i = 0; i < r->ne; i++) free(r->e[i].id);
    if (r->t) for (size_t i = 0; i < r->nt; i++) {
        free(r->t[i].cls); free(r->t[i].be_a);
        free(r->t[i].be_b); free(r->t[i].reason);
    }
    if (r->as) for (size_t i = 0; i < r->nas; i++) free(r->as[i].sender);
    free(r->e);
    free(r->t);
    free(r->as);
    free(r->as_backend);
    free(r);
}

/* Contract in sr_core.h. Validates indices, names ([A-Za-z0-9_.:-], 1..255
 * bytes: they are printed in "backend|class|hkey") and patterns; copies
 * every string; keeps only keyed hashes of as_tokens. be_b NULL = be_a,
 * mask_a 0 = every method. NULL + err (0-based indices) on bad data/OOM. */
sr_router *sr_router_new(const sr_router_spec *spec, char *err, size_t errlen)
{
    sr_router *r;
    const char **pats = NULL, **names = NULL;
    unsigned *masks = NULL;
    int oom = 0;

    if (err && errlen) err[0] = '\0';
    if (!spec) { errf(err, errlen, "%sno spec", "", 0); return NULL; }
    if (spec->n_targets == 0 || !spec->targets) {
        errf(err, errlen, "%sno targets", "", 0);
        return NULL;
    }
    if (spec->n_entries && !spec->entries) {
        errf(err, errlen, "%sno entries", "", 0);
        return NULL;
    }
    if (spec->n_targets > 0x7fffffff || spec->n_entries > 0x7fffffff) {
        errf(err, errlen, "%stoo many entries", "", 0);
        return NULL;
    }
    if (spec->fallback_target < 0 || (size_t)spec->fallback_target >= spec->n_targets) {
        errf(err, errlen, "%sfallback_target out of range", "", 0);
        return NULL;
    }
    if (spec->as_backend && !valid_name(spec->as_backend)) {
        errf(err, errlen, "%sas_backend: bad name", "", 0);
        return NULL;
    }
    if (spec->n_as_tokens && !spec->as_tokens) {
        errf(err, errlen, "%sno as_tokens", "", 0);
        return NULL;
    }

    r = calloc(1, sizeof *r);
    if (!r) { errf(err, errlen, "%sout of memory", "", 0); return NULL; }
    r->blocked = -1;
    r->builtin_blocked.cls = "blocked";
    r->builtin_blocked.be_a = "blocked";
    r->builtin_blocked.be_b = "blocked";
    r->builtin_blocked.reason = "internal endpoint (replication/MAS), never public";
    r->builtin_blocked.mask_a = SR_M_ALL;
    r->builtin_blocked.key = SR_KEY_NONE;
    r->fallback = spec->fallback_target;

    /* targets */
    r->t = calloc(spec->n_targets, sizeof *r->t);
    if (!r->t) goto oom;
    r->nt = spec->n_targets;
    for (size_t i = 0; i < spec->n_targets; i++) {
        const sr_target *st = &spec->targets[i];
        rt_target *t = &r->t[i];
        const char *be_b = st->be_b ? st->be_b : st->be_a;
        if (!valid_name(st->cls)) { errf(err, errlen, "%starget %zu: bad class name", "", i); goto fail; }
        if (!valid_name(st->be_a) || !valid_name(be_b)) {
            errf(err, errlen, "%starget %zu: bad backend name", "", i);
            goto fail;
        }
        if ((unsigned)st->key > SR_KEY_PATH_USER) {
            errf(err, errlen, "%starget %zu: bad key source", "", i);
            goto fail;
        }
        t->cls = dup_str(st->cls, &oom);
        t->be_a = dup_str(st->be_a, &oom);
        t->be_b = dup_str(be_b, &oom);
        t->reason = dup_str(st->reason, &oom);
        if (oom) goto oom;
        t->mask_a = (st->mask_a & SR_M_ALL) ? (st->mask_a & SR_M_ALL) : SR_M_ALL;
        t->key = st->key;
        t->as_ok = st->as_ok ? 1 : 0;
        if (r->blocked < 0 && strcmp(st->cls, "blocked") == 0) r->blocked = (int)i;
    }

    /* entries + the regex set */
    r->e = calloc(spec->n_entries ? spec->n_entries : 1, sizeof *r->e);
    pats = calloc(spec->n_entries ? spec->n_entries : 1, sizeof *pats);
    names = calloc(spec->n_entries ? spec->n_entries : 1, sizeof *names);
    masks = calloc(spec->n_entries ? spec->n_entries : 1, sizeof *masks);
    if (!r->e || !pats || !names || !masks) goto oom;
    r->ne = spec->n_entries;
    for (size_t i = 0; i < spec->n_entries; i++) {
        const sr_entry *se = &spec->entries[i];
        rt_entry *e = &r->e[i];
        if (!se->id || !se->id[0] || strlen(se->id) > RT_NAME_MAX) {
            errf(err, errlen, "%sentry %zu: bad id", "", i);
            goto fail;
        }
        if (!se->pattern) { errf(err, errlen, "%sentry %zu: no pattern", "", i); goto fail; }
        if (se->target < 0 || (size_t)se->target >= spec->n_targets) {
            errf(err, errlen, "%sentry %zu: target out of range", "", i);
            goto fail;
        }
        if ((unsigned)se->refine > SR_REFINE_POS) {
            errf(err, errlen, "%sentry %zu: bad refine", "", i);
            goto fail;
        }
        if (se->refine != SR_REFINE_NONE &&
            (se->alt_target < 0 || (size_t)se->alt_target >= spec->n_targets)) {
            errf(err, errlen, "%sentry %zu: alt_target out of range", "", i);
            goto fail;
        }
        e->id = dup_str(se->id, &oom);
        if (oom) goto oom;
        e->target = se->target;
        e->refine = se->refine;
        e->alt = se->refine != SR_REFINE_NONE ? se->alt_target : se->target;
        pats[i] = se->pattern;
        names[i] = se->id;
        masks[i] = se->methods;
    }
    r->set = sr_rset_new(pats, masks, names, spec->n_entries, err, errlen);
    if (!r->set) goto fail;
    free(pats); pats = NULL;
    free(names); names = NULL;
    free(masks); masks = NULL;

    /* keys */
    r->key = sr_hkey_from_secret(spec->secret ? spec->secret : "",
                                 spec->secret ? spec->secret_len : 0);
    r->askey.k0 = r->key.k0 ^ 0x6173746f6b656e31ULL;  /* "astoken1" */
    r->askey.k1 = r->key.k1 ^ 0x73796e726f757465ULL;  /* "synroute" */

    /* appservice tokens: keyed hashes only */
    if (spec->n_as_tokens) {
        r->as = calloc(spec->n_as_tokens, sizeof *r->as);
        if (!r->as) goto oom;
        r->nas = spec->n_as_tokens;
        for (size_t i = 0; i < spec->n_as_tokens; i++) {
            const char *tok = spec->as_tokens[i];
            const char *snd = spec->as_senders ? spec->as_senders[i] : NULL;
            char lp[RT_NAME_MAX + 1];
            long l = 0;
            if (!tok || !tok[0]) { errf(err, errlen, "%sas_token %zu: empty", "", i); goto fail; }
            if (snd) {
                l = sr_localpart(snd, strlen(snd), lp, sizeof lp - 1);
                if (l < 0) { errf(err, errlen, "%sas_token %zu: sender too long", "", i); goto fail; }
            }
            lp[l] = '\0';
            r->as[i].h = sr_siphash(&r->askey, tok, strlen(tok));
            r->as[i].len = strlen(tok);
            r->as[i].sender = dup_str(lp, &oom);
            if (oom) goto oom;
        }
    }
    r->as_backend = dup_str(spec->as_backend, &oom);
    if (oom) goto oom;
    return r;

oom:
    errf(err, errlen, "%sout of memory", "", 0);
fail:
    free(pats);
    free(names);
    free(masks);
    sr_router_free(r);
    return NULL;
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

/* Does [h, h+hn) contain the C string lit? */
static int mem_has(const char *h, size_t hn, const char *lit)
{
    size_t n = strlen(lit);
    for (size_t i = 0; i + n <= hn; i++)
        if (memcmp(h + i, lit, n) == 0) return 1;
    return 0;
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
 * segments "_synapse" then "replication" or "mas". */
static int is_internal_path(const char *p, size_t n)
{
    char a[RT_NORM_MAX], b[RT_NORM_MAX];
    size_t la, lb, segs[RT_SEG_MAX][2], ns = 0, i = 0;

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
        if (seg_is(b + st, len, "..")) { if (ns) ns--; continue; }
        if (ns == RT_SEG_MAX)
            return mem_has(b, lb, "_synapse/replication") || mem_has(b, lb, "_synapse/mas");
        segs[ns][0] = st;
        segs[ns][1] = len;
        ns++;
    }
    return ns >= 2 && seg_is(b + segs[0][0], segs[0][1], "_synapse") &&
           (seg_is(b + segs[1][0], segs[1][1], "replication") ||
            seg_is(b + segs[1][0], segs[1][1], "mas"));
}

/* ------------------------------------------------------------------------ */
/* The decision.                                                             */

void sr_router_hkey(const sr_router *r, const char *kind, const char *key,
                    size_t keylen, char out[17])
{
    char buf[64 + 512 + 2];
    size_t kl = kind ? strlen(kind) : 0, n;
    uint64_t h;
    if (kl > 64) kl = 64;
    if (!key) keylen = 0;
    if (kl) memcpy(buf, kind, kl);
    buf[kl] = ':';
    n = kl + 1;
    if (keylen <= sizeof buf - n) {
        if (keylen) memcpy(buf + n, key, keylen);
        h = sr_siphash(&r->key, buf, n + keylen);
    } else {
        /* longer than any key sr_route produces: hash in two steps so the
         * function still never fails (such keys never come from sr_route) */
        uint64_t hk = sr_siphash(&r->key, key, keylen);
        memcpy(buf + n, &hk, sizeof hk);
        h = sr_siphash(&r->key, buf, n + sizeof hk);
    }
    sr_hex64(h, out);
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

/* Contract in sr_core.h: never fails, never allocates, never copies a raw
 * token into d. A NULL router gives class/backend "main". */
void sr_route(const sr_router *r, const char *in, size_t len, sr_decision *d)
{
    const char *method = "", *src = "", *path = "", *query = "", *auth = "";
    size_t mlen = 0, slen = 0, plen = 0, qlen = 0, alen = 0;
    const rt_target *t;
    unsigned mbit;
    char tokbuf[RT_TOK_MAX];
    char tmp[RT_PARAM_MAX];
    const char *tok = NULL;
    size_t toklen = 0;
    int have_tok = 0, as_idx = -1;
    char kbuf[sizeof d->key];

    d->entry = -1;
    d->route_id = "default";
    d->cls = d->backend = d->reason = NULL;
    d->key_kind = "none";
    d->key[0] = '\0';
    d->hkey[0] = '\0';
    d->token_kind = SR_TOK_NONE;
    d->appservice = 0;
    if (!r) { d->cls = d->backend = "main"; return; }
    if (!in) len = 0;

    /* 1. METHOD SP SRC SP PATHQ SP AUTH */
    if (len) {
        const char *end = in + len, *p = in, *sp;
        sp = memchr(p, ' ', (size_t)(end - p));
        method = p; mlen = sp ? (size_t)(sp - p) : (size_t)(end - p);
        if (sp) {
            p = sp + 1;
            sp = memchr(p, ' ', (size_t)(end - p));
            src = p; slen = sp ? (size_t)(sp - p) : (size_t)(end - p);
            if (sp) {
                const char *q;
                p = sp + 1;
                sp = memchr(p, ' ', (size_t)(end - p));
                path = p; plen = sp ? (size_t)(sp - p) : (size_t)(end - p);
                if (sp) { auth = sp + 1; alen = (size_t)(end - auth); }
                q = plen ? memchr(path, '?', plen) : NULL;
                if (q) {
                    query = q + 1;
                    qlen = plen - (size_t)(q + 1 - path);
                    plen = (size_t)(q - path);
                }
            }
        }
    }
    if (alen == 1 && auth[0] == '-') alen = 0;
    if (slen == 1 && src[0] == '-') slen = 0;
    mbit = sr_method_bit(method, mlen);

    /* 2. internal paths */
    if (is_internal_path(path, plen)) {
        t = r->blocked >= 0 ? &r->t[r->blocked] : &r->builtin_blocked;
        d->route_id = "blocked";
        d->cls = t->cls;
        d->backend = t->be_a;
        d->reason = t->reason ? t->reason : r->builtin_blocked.reason;
        return;
    }

    /* 3. entry + refine */
    {
        int e = sr_rset_match(r->set, path, plen, mbit);
        if (e >= 0) {
            const rt_entry *en = &r->e[e];
            int ti = en->target;
            d->entry = e;
            d->route_id = en->id;
            if (en->refine == SR_REFINE_SINCE) {
                /* only emptiness matters: no need to decode the value */
                if (sr_query_raw(query, qlen, "since", NULL) <= 0) ti = en->alt;
                else if (qparam(query, qlen, "full_state", tmp, sizeof tmp) == 4 &&
                         memcmp(tmp, "true", 4) == 0)
                    ti = en->alt;
            } else if (en->refine == SR_REFINE_POS) {
                if (sr_query_raw(query, qlen, "pos", NULL) <= 0) ti = en->alt;
            }
            t = &r->t[ti];
        } else {
            t = &r->t[r->fallback];
        }
    }
    d->cls = t->cls;
    d->reason = t->reason;

    /* 4. backend by method */
    d->backend = (t->mask_a & mbit) ? t->be_a : t->be_b;

    /* the token (used by user keys and the appservice check) */
    if (t->key == SR_KEY_USER || r->nas) {
        have_tok = sr_token_find(alen ? auth : NULL, alen, query, qlen,
                                 tokbuf, sizeof tokbuf, &tok, &toklen) == 1;
        if (have_tok && toklen == 0) have_tok = 0;
        if (have_tok && r->nas) {
            uint64_t h = sr_siphash(&r->askey, tok, toklen);
            for (size_t i = 0; i < r->nas; i++)
                if (r->as[i].h == h && r->as[i].len == toklen) { as_idx = (int)i; break; }
        }
    }

    /* appservice user: user_id param (localpart), else the sender */
    if (as_idx >= 0) {
        d->token_kind = SR_TOK_OPAQUE;
        if (t->as_ok && r->as_backend) {
            d->backend = r->as_backend;
            d->appservice = 1;
        }
        if (d->appservice || t->key == SR_KEY_USER) {
            long v = qparam(query, qlen, "user_id", tmp, sizeof tmp);
            long l = -1;
            if (v > 0) l = sr_localpart(tmp, (size_t)v, kbuf, sizeof kbuf - 1);
            if (l > 0) set_key(d, "user", kbuf, (size_t)l);
            else set_key(d, "user", r->as[as_idx].sender, strlen(r->as[as_idx].sender));
        }
    } else if (t->key == SR_KEY_USER) {
        if (have_tok) {
            size_t kl = 0;
            sr_tok_kind k = sr_token_classify(tok, toklen, kbuf, sizeof kbuf - 1, &kl);
            d->token_kind = (int)k;
            if ((k == SR_TOK_SYT || k == SR_TOK_MACAROON) && kl > 0) {
                set_key(d, "user", kbuf, kl);
            } else {
                char hx[17];
                char th[3 + 16];
                sr_hex64(sr_siphash(&r->key, tok, toklen), hx);
                memcpy(th, "th:", 3);
                memcpy(th + 3, hx, 16);
                set_key(d, "token-hash", th, sizeof th);
            }
        }
    } else if (t->key == SR_KEY_ROOM) {
        long l = sr_room_from_path(path, plen, kbuf, sizeof kbuf - 1);
        if (l > 0) set_key(d, "room", kbuf, (size_t)l);
    } else if (t->key == SR_KEY_PATH_USER) {
        long l = sr_profile_user_from_path(path, plen, kbuf, sizeof kbuf - 1);
        if (l > 0) set_key(d, "user", kbuf, (size_t)l);
    } else if (t->key == SR_KEY_ORIGIN) {
        long l = alen ? sr_xmatrix_origin(auth, alen, kbuf, sizeof kbuf - 1) : 0;
        if (l > 0) {
            set_key(d, "origin", kbuf, (size_t)l);
        } else if (slen) {
            size_t n = slen > sizeof kbuf - 5 ? sizeof kbuf - 5 : slen;
            memcpy(kbuf, "src:", 4);
            memcpy(kbuf + 4, src, n);
            set_key(d, "origin", kbuf, n + 4);
        }
    }

    /* 6. hkey */
    if (d->key[0])
        sr_router_hkey(r, d->key_kind, d->key, strlen(d->key), d->hkey);
}

/* Contract in sr_core.h. If out is too small, out = "" and 0 is returned
 * (HAProxy then leaves the vars unset: default_backend main). */
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
    if (n + 1 > outcap) { out[0] = '\0'; return 0; }
    memcpy(out, d.backend, bl);
    out[bl] = '|';
    memcpy(out + bl + 1, d.cls, cl);
    out[bl + 1 + cl] = '|';
    memcpy(out + bl + 2 + cl, d.hkey, hl);
    out[n] = '\0';
    return n;
}
