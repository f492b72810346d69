/*
 * fuzz_router.c - fuzz targets for the routing decision and the regex set,
 * over the repository's real route table and a real deployment (the data
 * gen_spec.lua writes; see fuzz_spec.h). Built like fuzz_targets.c, one
 * binary per target (-DFUZZ_TARGET=<name>), with libFuzzer or driver.c:
 *
 *   router   sr_route + sr_route_packed (what the HAProxy converter calls).
 *            Input: a mode byte, then "METHOD SRC PATHQ AUTH". Mode & 3:
 *            0 the text as is; 1 AUTH replaced by "Bearer <canary>"; 2 the
 *            canary appended as access_token to the query; 3 both. A canary
 *            is a token of each kind (syt_, opaque, MAS, the deployment's
 *            as_token) chosen by mode >> 2.
 *   rset     sr_rset_match against sr_rset_match_loop (the plain loop
 *            behind set:match_loop) on the route table's patterns: the same
 *            answer for the input as subject, for every method bit.
 *   rsetpat  the same equivalence with patterns from the input: lines up to
 *            a blank line are patterns ("HH" hex method bits may precede a
 *            pattern; without them, any method), the lines after it
 *            subjects. Also sr_rset_dump's snprintf contract.
 *
 * Invariants of router, checked on every input (a violation aborts: a
 * finding, like a crash):
 *  - the packed answer is "backend|class|hkey": a backend of the deployment,
 *    a class of the table, hkey empty or 16 lowercase hex digits; it agrees
 *    with sr_route's decision; a too small buffer gets "" and 0;
 *  - a key exists exactly when an hkey does, and the hkey is the keyed hash
 *    of kind ":" key (sr_router_hkey); the key kind is a known one;
 *  - no canary token appears in the key or the answer, unless the input's
 *    own bytes (percent-decoded up to twice) already carry it;
 *  - a path that starts with /_synapse/replication/ or /_synapse/mas/, or
 *    whose resolved form starts with the segments _synapse and replication
 *    or mas (after two rounds of percent-decoding, lowercasing, '\' as '/',
 *    empty and dot segments resolved) is always blocked, and - for paths
 *    short enough for the router to resolve them exactly - the router
 *    blocks no other path by that rule;
 *  - the same input routed twice gives the same decision.
 * Before the first input, the router built here must answer every check
 * vector of gen_spec.lua as the Lua binding's router did, and the vectors
 * must pass the invariants above.
 */
#include "fuzz_spec.h"
#include "sr_core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEED(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
            abort(); \
        } \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PACKED_MAX 600 /* as the converter's buffer in lsynroute.c */

/* ------------------------------------------------------------------------ */
/* The spec, as the binding reads it.                                        */

/* "GET,POST" -> SR_M_* bits (NULL: 0 = any). */
static unsigned method_mask(const char *list)
{
    unsigned m = 0;
    while (list && *list) {
        size_t n = strcspn(list, ",");
        m |= sr_method_bit(list, n);
        list += n + (list[n] == ',');
    }
    return m;
}

static sr_key_src key_src(const char *k)
{
    if (!strcmp(k, "user")) return SR_KEY_USER;
    if (!strcmp(k, "room")) return SR_KEY_ROOM;
    if (!strcmp(k, "origin")) return SR_KEY_ORIGIN;
    if (!strcmp(k, "path_user")) return SR_KEY_PATH_USER;
    NEED(!strcmp(k, "none"));
    return SR_KEY_NONE;
}

static sr_refine refine_of(const char *r)
{
    if (!r) return SR_REFINE_NONE;
    if (!strcmp(r, "since")) return SR_REFINE_SINCE;
    NEED(!strcmp(r, "pos"));
    return SR_REFINE_POS;
}

/* The router of the generated spec; aborts (a broken build, not a finding
 * of the fuzzer) when it cannot be built or disagrees with a check vector. */
static sr_router *build_router(void)
{
    sr_target *t = calloc(fz_n_targets, sizeof *t);
    sr_entry *e = calloc(fz_n_entries, sizeof *e);
    sr_router_spec sp;
    sr_error err;
    sr_router *r;
    NEED(t && e);
    for (size_t i = 0; i < fz_n_targets; i++) {
        const fz_target *f = &fz_targets[i];
        t[i].cls = f->cls;
        t[i].generic_backend = f->generic_backend;
        t[i].other_backend = f->other_backend;
        t[i].generic_methods = method_mask(f->generic_methods);
        t[i].key = key_src(f->key);
        t[i].as_ok = f->as_ok;
        t[i].reason = f->reason;
    }
    for (size_t i = 0; i < fz_n_entries; i++) {
        const fz_entry *f = &fz_entries[i];
        e[i].id = f->id;
        e[i].pattern = f->pattern;
        e[i].methods = method_mask(f->methods);
        e[i].target = f->target;
        e[i].refine = refine_of(f->refine);
        e[i].alt_target = f->alt_target;
    }
    memset(&sp, 0, sizeof sp);
    sp.secret = fz_secret;
    sp.secret_len = fz_secret_len;
    sp.entries = e;
    sp.n_entries = fz_n_entries;
    sp.targets = t;
    sp.n_targets = fz_n_targets;
    sp.fallback_target = fz_fallback;
    sp.as_tokens = fz_as_tokens;
    sp.as_senders = fz_as_senders;
    sp.n_as_tokens = fz_n_as_tokens;
    sp.as_backend = fz_as_backend;
    r = sr_router_new(&sp, &err);
    if (!r) fprintf(stderr, "fuzz: the generated spec does not build: %s\n", err.msg);
    NEED(r != NULL);
    free(t);
    free(e);
    for (size_t i = 0; i < fz_n_checks; i++) {
        char out[PACKED_MAX];
        sr_route_packed(r, fz_checks[i].input, fz_checks[i].len, out, sizeof out);
        if (strcmp(out, fz_checks[i].packed) != 0)
            fprintf(stderr, "fuzz: check vector %zu: '%.120s' gives '%s', the Lua binding '%s'\n", i,
                    fz_checks[i].input, out, fz_checks[i].packed);
        NEED(strcmp(out, fz_checks[i].packed) == 0);
    }
    return r;
}

/* The regex set of the table's patterns and method filters. */
static sr_rset *build_set(void)
{
    const char **pats = calloc(fz_n_entries, sizeof *pats), **names = calloc(fz_n_entries, sizeof *names);
    unsigned *masks = calloc(fz_n_entries, sizeof *masks);
    sr_rset *s;
    NEED(pats && names && masks);
    for (size_t i = 0; i < fz_n_entries; i++) {
        pats[i] = fz_entries[i].pattern;
        names[i] = fz_entries[i].id;
        masks[i] = method_mask(fz_entries[i].methods);
    }
    s = sr_rset_new(pats, masks, names, fz_n_entries, NULL);
    NEED(s != NULL);
    free(pats);
    free(names);
    free(masks);
    return s;
}

/* Built once per process (a fuzz binary is one caller at a time). */
static sr_router *the_router(void)
{
    static sr_router *r;
    if (!r) r = build_router();
    return r;
}

static sr_rset *the_set(void)
{
    static sr_rset *s;
    if (!s) s = build_set();
    return s;
}

/* ------------------------------------------------------------------------ */
/* Independent oracles.                                                      */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into o (valid escapes only); returns the length. */
static size_t pct_once(const unsigned char *s, size_t n, unsigned char *o)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[k++] = (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    return k;
}

/* Is seg[0..n) equal to the C string w? */
static int seg_eq(const unsigned char *seg, size_t n, const char *w)
{
    return n == strlen(w) && memcmp(seg, w, n) == 0;
}

/* 1 if the path is internal: it starts with /_synapse/replication/ or
 * /_synapse/mas/ as it is, or its resolved form starts with the segments
 * _synapse, then replication or mas. */
static int internal_path(const unsigned char *p, size_t n)
{
    unsigned char *a = malloc(n + 1), *b = malloc(n + 1);
    size_t la, lb, i = 0, ns = 0, cap = 16, (*segs)[2] = malloc(cap * sizeof *segs);
    int hit;
    NEED(a && b && segs);
    if ((n >= 22 && !memcmp(p, "/_synapse/replication/", 22)) || (n >= 14 && !memcmp(p, "/_synapse/mas/", 14))) {
        free(a);
        free(b);
        free(segs);
        return 1;
    }
    la = pct_once(p, n, a);
    lb = pct_once(a, la, b);
    for (size_t k = 0; k < lb; k++) {
        if (b[k] >= 'A' && b[k] <= 'Z') b[k] = (unsigned char)(b[k] | 0x20);
        if (b[k] == '\\') b[k] = '/';
    }
    while (i < lb) {
        size_t st;
        while (i < lb && b[i] == '/') i++;
        st = i;
        while (i < lb && b[i] != '/') i++;
        if (i == st || seg_eq(b + st, i - st, ".")) continue;
        if (seg_eq(b + st, i - st, "..")) {
            if (ns) ns--;
            continue;
        }
        if (ns == cap) {
            cap *= 2;
            segs = realloc(segs, cap * sizeof *segs);
            NEED(segs);
        }
        segs[ns][0] = st;
        segs[ns][1] = i - st;
        ns++;
    }
    hit = ns >= 2 && seg_eq(b + segs[0][0], segs[0][1], "_synapse") &&
          (seg_eq(b + segs[1][0], segs[1][1], "replication") || seg_eq(b + segs[1][0], segs[1][1], "mas"));
    free(a);
    free(b);
    free(segs);
    return hit;
}

/* Does s[0..n), percent-decoded 0, 1 or 2 times, contain w (ignoring
 * case)? */
static int carries(const unsigned char *s, size_t n, const char *w)
{
    unsigned char *a = malloc(n + 1), *b = malloc(n + 1);
    const unsigned char *v[3];
    size_t len[3], wl = strlen(w);
    int hit = 0;
    NEED(a && b);
    len[0] = n;
    v[0] = s;
    len[1] = pct_once(s, n, a);
    v[1] = a;
    len[2] = pct_once(a, len[1], b);
    v[2] = b;
    for (int r = 0; r < 3 && !hit; r++)
        for (size_t i = 0; !hit && i + wl <= len[r]; i++) {
            size_t k = 0;
            while (k < wl && (v[r][i + k] | 0x20) == (w[k] | 0x20)) k++;
            hit = k == wl;
        }
    free(a);
    free(b);
    return hit;
}

/* ------------------------------------------------------------------------ */
/* router                                                                    */

/* Tokens of every kind; the last is the deployment's as_token. */
static const char *canary(unsigned k, const char **marker)
{
    static const char *const tok[] = { "syt_ZnV6enVzZXI_CANARYsytXq9Zr4Lm2P_1aB2c3",
                                       "CANARYopaqueTokenV9fQ2xK7pL0mN3", "mat_CANARYmasTokenR4tY8uI1oP6aS2d" };
    k %= 4;
    if (k == 3 && fz_n_as_tokens) {
        *marker = fz_as_tokens[0];
        return fz_as_tokens[0];
    }
    *marker = "CANARY";
    return tok[k % 3];
}

/* The fields of "METHOD SRC PATHQ AUTH" (as sr_route splits them). */
typedef struct {
    const char *f[4];
    size_t n[4];
} fields;

static void split4(const char *s, size_t n, fields *out)
{
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        size_t st = i;
        if (k < 3)
            while (i < n && s[i] != ' ') i++;
        else
            i = n;
        out->f[k] = s + st;
        out->n[k] = i - st;
        if (i < n) i++;
    }
}

/* The router's input for this fuzz input into buf (cap bytes); returns
 * its length. *tok: the canary placed, or NULL (mode 0). */
static size_t make_input(const uint8_t *data, size_t size, char *buf, size_t cap, const char **tok,
                         const char **marker)
{
    unsigned mode = size ? data[0] : 0;
    const char *text = (const char *)data + (size ? 1 : 0);
    size_t tn = size ? size - 1 : 0, o = 0;
    fields fl;
    *tok = NULL;
    if ((mode & 3) == 0 || tn + 200 > cap) {
        memcpy(buf, text, tn);
        return tn;
    }
    *tok = canary(mode >> 2, marker);
    split4(text, tn, &fl);
    for (int k = 0; k < 3; k++) {
        memcpy(buf + o, fl.f[k], fl.n[k]);
        o += fl.n[k];
        if (k == 2 && (mode & 2))
            o += (size_t)sprintf(buf + o, "%saccess_token=%s", memchr(fl.f[2], '?', fl.n[2]) ? "&" : "?", *tok);
        buf[o++] = ' ';
    }
    if (mode & 1) {
        o += (size_t)sprintf(buf + o, "Bearer %s", *tok);
    } else {
        memcpy(buf + o, fl.f[3], fl.n[3]);
        o += fl.n[3];
    }
    return o;
}

static int is_name(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

static int is_class(const char *s)
{
    if (!strcmp(s, "blocked")) return 1;
    for (size_t i = 0; i < fz_n_targets; i++)
        if (!strcmp(s, fz_targets[i].cls)) return 1;
    return 0;
}

/* The packed answer's shape and its agreement with the decision. */
static void check_packed(const sr_router *r, const char *in, size_t n, const sr_decision *d)
{
    static const char *const kinds[] = { "none", "user", "room", "origin", "token-hash", "syt", NULL };
    char out[PACKED_MAX], small[12], hx[17], *bar1, *bar2;
    size_t len = sr_route_packed(r, in, n, out, sizeof out), sl;
    NEED(len > 0 && len == strlen(out));
    bar1 = strchr(out, '|');
    NEED(bar1 && (bar2 = strchr(bar1 + 1, '|')) && !strchr(bar2 + 1, '|'));
    *bar1 = *bar2 = '\0';
    NEED(is_name(out, fz_backends) && !strcmp(out, d->backend));
    NEED(is_class(bar1 + 1) && !strcmp(bar1 + 1, d->cls));
    NEED(!strcmp(bar2 + 1, d->hkey));
    NEED(strlen(d->hkey) == 0 || (strlen(d->hkey) == 16 && strspn(d->hkey, "0123456789abcdef") == 16));
    NEED(is_name(d->key_kind, kinds));
    NEED(!d->key[0] == !d->hkey[0] && !d->key[0] == !strcmp(d->key_kind, "none"));
    if (d->key[0]) {
        sr_router_hkey(r, d->key_kind, d->key, strlen(d->key), hx);
        NEED(!strcmp(hx, d->hkey));
    }
    if (d->appservice) NEED(fz_as_backend && !strcmp(d->backend, fz_as_backend));
    sl = sr_route_packed(r, in, n, small, sizeof small);
    NEED(len < sizeof small ? sl == len : (sl == 0 && small[0] == '\0'));
}

static void same_decision(const sr_decision *a, const sr_decision *b)
{
    NEED(a->entry == b->entry && !strcmp(a->route_id, b->route_id));
    NEED(!strcmp(a->cls, b->cls) && !strcmp(a->backend, b->backend));
    NEED(!strcmp(a->key_kind, b->key_kind) && !strcmp(a->key, b->key) && !strcmp(a->hkey, b->hkey));
    NEED(a->token_kind == b->token_kind && a->appservice == b->appservice);
}

/* The canary never shows, when it is the token the request carries. */
static void check_canary(const char *in, size_t n, const char *tok, const char *marker,
                         const uint8_t *text, size_t tn, const sr_decision *d)
{
    fields fl;
    char tokbuf[4096];
    const char *found = NULL, *q;
    size_t flen = 0, ql = 0;
    if (!tok || carries(text, tn, marker)) return;
    split4(in, n, &fl);
    q = memchr(fl.f[2], '?', fl.n[2]);
    if (q) ql = fl.n[2] - (size_t)(q + 1 - fl.f[2]);
    if (sr_token_find(fl.n[3] ? fl.f[3] : NULL, fl.n[3], q ? q + 1 : "", ql, tokbuf, sizeof tokbuf,
                      &found, &flen) != 1 ||
        flen != strlen(tok) || memcmp(found, tok, flen) != 0)
        return;
    NEED(!carries((const uint8_t *)d->key, strlen(d->key), marker));
    NEED(!strstr(d->backend, marker) && !strstr(d->cls, marker));
}

/* The internal-path rule, both ways. */
static void check_blocked(const char *in, size_t n, const sr_decision *d)
{
    fields fl;
    size_t plen;
    int internal;
    split4(in, n, &fl);
    plen = fl.n[2];
    if (memchr(fl.f[2], '?', plen)) plen = (size_t)((const char *)memchr(fl.f[2], '?', plen) - fl.f[2]);
    internal = internal_path((const unsigned char *)fl.f[2], plen);
    if (internal) NEED(!strcmp(d->cls, "blocked") && !strcmp(d->backend, "blocked"));
    /* longer paths the router blocks conservatively (see sr_router.c) */
    if (!strcmp(d->route_id, "blocked") && plen <= 4096) NEED(internal);
}

/* Route in[0..n) and check every invariant; tok/marker: the canary placed
 * (NULL: none), text[0..tn): the fuzzer's own bytes. */
static void route_checked(const sr_router *r, const char *in, size_t n, const char *tok,
                          const char *marker, const uint8_t *text, size_t tn)
{
    char *copy = malloc(n ? n : 1); /* exactly sized: ASan sees any overread */
    sr_decision d, d2;
    NEED(copy);
    memcpy(copy, in, n);
    sr_route(r, copy, n, &d);
    check_packed(r, copy, n, &d);
    check_canary(copy, n, tok, marker, text, tn, &d);
    check_blocked(copy, n, &d);
    sr_route(r, copy, n, &d2);
    same_decision(&d, &d2);
    free(copy);
}

static void fuzz_router(const uint8_t *data, size_t size)
{
    static int vectors_done;
    const sr_router *r = the_router();
    size_t cap = size + 256, n;
    char *in = malloc(cap);
    const char *tok, *marker = NULL;
    NEED(in);
    /* the check vectors pass every invariant too (among them the long
     * and deep paths, kept out of the seeds, which they would slow down) */
    for (size_t i = 0; !vectors_done && i < fz_n_checks; i++)
        route_checked(r, fz_checks[i].input, fz_checks[i].len, NULL, NULL, NULL, 0);
    vectors_done = 1;
    n = make_input(data, size, in, cap, &tok, &marker);
    route_checked(r, in, n, tok, marker, data + (size ? 1 : 0), size ? size - 1 : 0);
    free(in);
}

/* ------------------------------------------------------------------------ */
/* rset, rsetpat                                                             */

/* The set and the loop agree on s for every method bit (and 0). */
static void same_answer(const sr_rset *set, const char *s, size_t n)
{
    for (unsigned m = 0; m <= SR_M_OTHER; m = m ? m << 1 : 1) {
        int a = sr_rset_match(set, s, n, m), b = sr_rset_match_loop(set, s, n, m);
        if (a != b) fprintf(stderr, "set %d, loop %d for method bits %u\n", a, b, m);
        NEED(a == b);
        NEED(a >= -1 && a < (int)sr_rset_size(set));
    }
}

static void fuzz_rset(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    NEED(s);
    if (size) memcpy(s, data, size);
    same_answer(the_set(), s, size);
    free(s);
}

#define PAT_MAX  16
#define SUBJ_MAX 8

/* The patterns (NUL-terminated copies in pats, masks) and subjects of an
 * rsetpat input; returns the number of patterns. */
static size_t parse_pat_input(const uint8_t *data, size_t size, char **pats, unsigned *masks,
                              char **subj, size_t *subj_len, size_t *ns)
{
    size_t i = 0, np = 0;
    int in_subjects = 0;
    *ns = 0;
    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t len = nl ? (size_t)(nl - (data + i)) : size - i;
        const uint8_t *l = data + i;
        i += len + 1;
        if (!in_subjects && len == 0) {
            in_subjects = 1;
        } else if (!in_subjects && np < PAT_MAX && !memchr(l, 0, len)) {
            masks[np] = 0;
            if (len >= 3 && hexval(l[0]) >= 0 && hexval(l[1]) >= 0 && l[2] == '^') {
                masks[np] = (unsigned)(hexval(l[0]) * 16 + hexval(l[1]));
                l += 2;
                len -= 2;
            }
            pats[np] = malloc(len + 1);
            NEED(pats[np]);
            memcpy(pats[np], l, len);
            pats[np++][len] = '\0';
        } else if (in_subjects && *ns < SUBJ_MAX) {
            subj[*ns] = malloc(len ? len : 1);
            NEED(subj[*ns]);
            memcpy(subj[*ns], l, len);
            subj_len[(*ns)++] = len;
        }
    }
    return np;
}

/* sr_rset_dump works like snprintf. */
static void check_dump(const sr_rset *set)
{
    size_t full = sr_rset_dump(set, NULL, 0), got;
    char *buf = malloc(full + 1), small[32];
    NEED(buf && full > 0);
    got = sr_rset_dump(set, buf, full + 1);
    NEED(got == full && strlen(buf) == full);
    NEED(sr_rset_dump(set, small, sizeof small) == full && strlen(small) == (full < 31 ? full : 31));
    NEED(full < 31 || memcmp(small, buf, 31) == 0);
    free(buf);
}

static void fuzz_rsetpat(const uint8_t *data, size_t size)
{
    char *pats[PAT_MAX], *subj[SUBJ_MAX];
    unsigned masks[PAT_MAX];
    size_t subj_len[SUBJ_MAX], ns, np = parse_pat_input(data, size, pats, masks, subj, subj_len, &ns);
    sr_error err;
    sr_rset *set = np ? sr_rset_new((const char *const *)pats, masks, NULL, np, &err) : NULL;
    if (set) {
        for (size_t k = 0; k < ns; k++) same_answer(set, subj[k], subj_len[k]);
        check_dump(set);
        for (size_t k = 0; k < np; k++) {
            sr_rset_entry_info info;
            NEED(sr_rset_entry(set, k, &info) == 0 && !strcmp(info.pattern, pats[k]));
        }
        NEED(sr_rset_entry(set, np, NULL) == -1);
    } else if (np) {
        NEED(err.at == SR_AT_ENTRY ? err.index < np : err.at == SR_AT_INPUT);
        NEED(memchr(err.msg, 0, sizeof err.msg) != NULL);
    }
    sr_rset_free(set);
    for (size_t k = 0; k < np; k++) free(pats[k]);
    for (size_t k = 0; k < ns; k++) free(subj[k]);
}

/* targets: router|rset|rsetpat */
#include "fuzz_main.h"
