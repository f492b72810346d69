/*
 * fuzz_targets.c - fuzz targets for the synroute C parsers.
 *
 * Build one binary per target with -DFUZZ_TARGET=<name>, either with
 * clang -fsanitize=fuzzer (libFuzzer provides main) or with driver.c (a
 * deterministic random-input main for gcc + ASan/UBSan). Targets:
 *   xmatrix  sr_xmatrix_origin
 *   token    sr_token_find + sr_token_classify (+ sr_localpart)
 *   query    sr_query_param, sr_pct_decode
 *   path     sr_room_from_path, sr_profile_user_from_path
 *   b64      sr_b64_decode (both alphabets, round trip)
 *   yaml     sr_yaml_load_string (+ a bounded walk of the tree, which must
 *            see the expanded size the loader counted; odd-sized inputs
 *            under small limits)
 * Besides the sanitizers, each target checks the contracts of sr_core.h
 * (results within capacity, no NUL in decoded output, determinism) and
 * aborts on a violation: that is a finding, like a crash.
 */
#include "sr_core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NEED(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copy into an exactly-sized heap buffer so ASan sees any overread. */
static char *dup_exact(const uint8_t *d, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (p && n) memcpy(p, d, n);
    return p;
}

static void fuzz_xmatrix(const uint8_t *data, size_t size)
{
    char *h = dup_exact(data, size);
    char out[256], out2[256];
    long r, r2;
    if (!h) return;
    r = sr_xmatrix_origin(h, size, out, sizeof out);
    NEED(r >= -1 && r <= (long)sizeof out);
    r2 = sr_xmatrix_origin(h, size, out2, sizeof out2);
    NEED(r == r2 && (r <= 0 || memcmp(out, out2, (size_t)r) == 0));
    if (r > 0) NEED(memchr(out, 0, (size_t)r) == NULL);
    /* a tiny buffer must never be overrun */
    {
        char *small = malloc(3);
        if (small) {
            r2 = sr_xmatrix_origin(h, size, small, 3);
            NEED(r2 <= 3);
            if (r > 0 && r <= 3) NEED(r2 == r);
            free(small);
        }
    }
    free(h);
}

static void fuzz_token(const uint8_t *data, size_t size)
{
    /* input = AUTH '\n' QUERY */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t alen = nl ? (size_t)(nl - data) : size;
    size_t qlen = nl ? size - alen - 1 : 0;
    char *auth = dup_exact(data, alen);
    char *query = dup_exact(nl ? nl + 1 : data, qlen);
    char tokbuf[512], key[64];
    const char *tok = NULL;
    size_t toklen = 0, keylen = 0;
    int r;
    sr_tok_kind k;
    if (!auth || !query) { free(auth); free(query); return; }
    r = sr_token_find(auth, alen, query, qlen, tokbuf, sizeof tokbuf, &tok, &toklen);
    NEED(r >= -1 && r <= 1);
    if (r == 1) {
        NEED(toklen > 0);
        NEED((tok >= auth && tok + toklen <= auth + alen) ||
             (tok == tokbuf && toklen <= sizeof tokbuf));
    } else {
        NEED(tok == NULL && toklen == 0);
        tok = auth; toklen = alen;   /* classify the raw bytes anyway */
    }
    k = sr_token_classify(tok, toklen, key, sizeof key, &keylen);
    NEED(k >= SR_TOK_NONE && k <= SR_TOK_OPAQUE);
    if (k == SR_TOK_SYT || k == SR_TOK_MACAROON) {
        size_t i;
        NEED(keylen > 0 && keylen <= sizeof key);
        for (i = 0; i < keylen; i++)
            NEED((unsigned char)key[i] > ' ' && key[i] != 0x7f && key[i] != ':');
    } else {
        NEED(keylen == 0);
    }
    if (toklen == 0) NEED(k == SR_TOK_NONE);
    {
        char lp[16];
        long l = sr_localpart(tok, toklen, lp, sizeof lp);
        NEED(l >= -1 && l <= (long)sizeof lp);
    }
    free(auth);
    free(query);
}

static void fuzz_query(const uint8_t *data, size_t size)
{
    /* input = NAME '\n' QUERY ; the name is a C string */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl ? (size_t)(nl - data) : 0;
    size_t qlen = nl ? size - nlen - 1 : size;
    char *name = malloc(nlen + 1);
    char *q = dup_exact(nl ? nl + 1 : data, qlen);
    char *out = malloc(qlen ? qlen : 1);
    char small[4];
    long r, r2;
    if (!name || !q || !out) goto done;
    memcpy(name, data, nlen);
    name[nlen] = '\0';
    r = sr_query_param(q, qlen, name, out, qlen);
    NEED(r >= -2 && r <= (long)qlen);
    if (r > 0) NEED(memchr(out, 0, (size_t)r) == NULL);
    r2 = sr_query_param(q, qlen, name, small, sizeof small);
    NEED(r2 >= -2 && r2 <= (long)sizeof small);
    if (r >= 0 && r <= (long)sizeof small) NEED(r2 == r);
    if (r == -1) NEED(r2 == -1);
    r = sr_pct_decode(q, qlen, out, (int)(qlen & 1));
    NEED(r >= -1 && r <= (long)qlen);
    if (r > 0) NEED(memchr(out, 0, (size_t)r) == NULL);
done:
    free(name); free(q); free(out);
}

static void fuzz_path(const uint8_t *data, size_t size)
{
    char *p = dup_exact(data, size);
    char *out = malloc(size ? size : 1);
    long r;
    if (!p || !out) goto done;
    r = sr_room_from_path(p, size, out, size);
    NEED(r >= -1 && r <= (long)size);
    if (r > 0) NEED(memchr(out, 0, (size_t)r) == NULL);
    r = sr_profile_user_from_path(p, size, out, size);
    NEED(r >= -1 && r <= (long)size);
    if (r > 0) NEED(memchr(out, 0, (size_t)r) == NULL && memchr(out, ':', (size_t)r) == NULL);
done:
    free(p); free(out);
}

static size_t enc64(const unsigned char *s, size_t n, char *out, int url)
{
    const char *al = url
        ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        size_t left = n - i;
        if (left > 1) v |= (unsigned)s[i + 1] << 8;
        if (left > 2) v |= s[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        if (left > 1) out[o++] = al[v >> 6 & 63];
        if (left > 2) out[o++] = al[v & 63];
    }
    return o;
}

static void fuzz_b64(const uint8_t *data, size_t size)
{
    char *s = dup_exact(data, size);
    char *out = malloc(size + 1), *enc = malloc(size * 2 + 8), *back = malloc(size + 1);
    int url;
    if (!s || !out || !enc || !back) goto done;
    for (url = 0; url <= 1; url++) {
        long r = sr_b64_decode(s, size, out, size, url), r2;
        size_t el;
        NEED(r >= -1 && r <= (long)size);
        if (r < 0) continue;
        NEED(size % 4 != 1);
        /* round trip: what we decoded re-encodes and decodes to itself */
        el = enc64((const unsigned char *)out, (size_t)r, enc, url);
        r2 = sr_b64_decode(enc, el, back, size + 1, url);
        NEED(r2 == r && memcmp(back, out, (size_t)r) == 0);
        /* a too-small buffer is refused, not overrun */
        if (r > 0) NEED(sr_b64_decode(s, size, back, (size_t)r - 1, url) == -1);
    }
done:
    free(s); free(out); free(enc); free(back);
}

/* Walk with a budget: aliases make a DAG whose expansion can be huge.
 * Counts the nodes and scalar bytes visited into *seen, and the deepest
 * nesting of sequences and mappings (depth: those above n). */
static void walk(const sr_ynode *n, size_t depth, long *budget, sr_ysize *seen)
{
    size_t i, k;
    if (--*budget < 0) return;
    NEED(n->line >= 1 && n->col >= 1);
    seen->nodes++;
    switch (n->type) {
    case SR_Y_NULL:
        break;
    case SR_Y_SCALAR:
        NEED(n->str != NULL && n->str[n->len] == '\0');
        seen->text += n->len;
        break;
    case SR_Y_SEQ:
    case SR_Y_MAP:
        k = n->type == SR_Y_MAP ? 2 * n->n : n->n;
        NEED(k == 0 || n->items != NULL);
        NEED(depth + 1 <= 256);
        if (depth + 1 > seen->depth) seen->depth = depth + 1;
        for (i = 0; i < k && *budget > 0; i++) walk(n->items[i], depth + 1, budget, seen);
        break;
    default:
        abort();
    }
}

static void fuzz_yaml(const uint8_t *data, size_t size)
{
    char err[256];
    char *s = dup_exact(data, size);
    /* small limits, so that the fuzzer reaches them */
    sr_yaml_limits lim = { 4096, 2000, 20000 };
    sr_ydoc *d;
    if (!s) return;
    err[0] = 'x';
    d = sr_yaml_load_string(s, size, "fuzz.yaml", size & 1 ? &lim : NULL, err, sizeof err);
    if (d) {
        long budget = 100000;
        const sr_ynode *root = sr_ydoc_root(d);
        sr_ysize seen = { 0, 0, 0 }, z = sr_ydoc_size(d);
        NEED(root != NULL);
        walk(root, 0, &budget, &seen);
        /* the expanded size counted at load is what a full walk sees (a
         * walk that used up its budget saw only part of the tree) */
        if (seen.nodes < 100000) NEED(seen.nodes == z.nodes && seen.text == z.text && seen.depth == z.depth);
        else NEED(z.nodes >= seen.nodes);
        NEED(z.depth <= 256);
        if (size & 1) NEED(z.nodes <= lim.max_nodes && z.text <= lim.max_text && size <= lim.max_bytes);
        sr_ydoc_free(d);
    } else {
        NEED(memchr(err, 0, sizeof err) != NULL);
        NEED(strncmp(err, "fuzz.yaml:", 10) == 0);
    }
    free(s);
}

/* targets: xmatrix|token|query|path|b64|yaml */
#include "fuzz_main.h"
