/*
 * sr_parse.c - decoding helpers and request parsers of the synroute core:
 * methods, percent/form decoding, query parameters, base64, access tokens
 * (syt_/syr_, macaroons, MAS), X-Matrix origin, room / profile user from a
 * client path. Key formats: docs/design.md "Key kinds and keys".
 *
 * Every function here is pure: no allocation, no static state, no output.
 * Inputs are (pointer, length) pairs that may contain NUL bytes; every
 * function bounds all its reads by the given length and all its writes by
 * the given capacity. None of them can fail other than by their documented
 * return values.
 */
#include "sr_core.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Small character helpers.                                                  */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

/* Does [s, s+n) start with the NUL-terminated literal `lit`? */
static int has_prefix(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(s, lit, l) == 0;
}

/* First occurrence of needle (nlen > 0) in [h, h+hlen), or NULL. */
static const char *find_mem(const char *h, size_t hlen, const char *needle,
                            size_t nlen)
{
    size_t i;
    if (nlen == 0 || hlen < nlen) return NULL;
    for (i = 0; i + nlen <= hlen; i++)
        if (h[i] == needle[0] && memcmp(h + i, needle, nlen) == 0)
            return h + i;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Methods.                                                                  */

/* HTTP method name (case-sensitive) -> its SR_M_* bit; NULL or any other
 * name -> SR_M_OTHER. Pure, never fails. */
unsigned sr_method_bit(const char *m, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } tab[] = {
        { "GET", SR_M_GET },
        { "HEAD", SR_M_HEAD },
        { "POST", SR_M_POST },
        { "PUT", SR_M_PUT },
        { "DELETE", SR_M_DELETE },
        { "OPTIONS", SR_M_OPTIONS },
        { "PATCH", SR_M_PATCH },
    };
    size_t i;
    if (!m) return SR_M_OTHER;
    for (i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strlen(tab[i].name) == len && memcmp(tab[i].name, m, len) == 0)
            return tab[i].bit;
    return SR_M_OTHER;
}

/* ------------------------------------------------------------------------ */
/* Percent / form decoding.                                                  */

/* Decode one unit at src[*i] (advancing *i). Returns the byte (0..255) or
 * -1 for an invalid escape. A decoded NUL is returned as 0 (callers reject). */
static int pct_next(const char *src, size_t len, size_t *i, int form)
{
    unsigned char c = (unsigned char)src[*i];
    if (c == '%') {
        int hi, lo;
        if (len - *i < 3) return -1;
        hi = hexval((unsigned char)src[*i + 1]);
        lo = hexval((unsigned char)src[*i + 2]);
        if (hi < 0 || lo < 0) return -1;
        *i += 3;
        return hi * 16 + lo;
    }
    (*i)++;
    if (form && c == '+') return ' ';
    return c;
}

/* Percent-decode src into dst (room for srclen bytes; '+' is ' ' when
 * form). The decoded length, or -1 for an invalid escape or a decoded NUL
 * (dst then holds garbage). Never allocates. */
long sr_pct_decode(const char *src, size_t srclen, char *dst, int form)
{
    size_t i = 0, o = 0;
    while (i < srclen) {
        int b = pct_next(src, srclen, &i, form);
        if (b <= 0) return -1; /* invalid escape or NUL */
        dst[o++] = (char)b;
    }
    return (long)o;
}

/* Is the form-decoded [s, s+n) exactly equal to the C string `want`?
 * Undecodable input never equals anything. */
static int form_equals(const char *s, size_t n, const char *want)
{
    size_t i = 0, w = 0, wlen = strlen(want);
    /* Fast path: without '%' or '+' the decoded name is the raw one. */
    if (n == wlen && !memchr(s, '%', n) && !memchr(s, '+', n))
        return memcmp(s, want, n) == 0;
    if (n < wlen) return 0; /* decoding never lengthens */
    while (i < n) {
        int b = pct_next(s, n, &i, 1);
        if (b <= 0 || w >= wlen || (unsigned char)want[w] != (unsigned)b)
            return 0;
        w++;
    }
    return w == wlen;
}

/* The raw (undecoded) value of the first parameter whose form-decoded
 * name is `name`: *val (may be NULL) points into query, the length is
 * returned (0 for "name" or "name="); -1 if absent or query/name is NULL. */
long sr_query_raw(const char *query, size_t qlen, const char *name,
                  const char **val)
{
    size_t p = 0;
    if (!query || !name) return -1;
    while (p <= qlen) {
        size_t end = p, eq;
        while (end < qlen && query[end] != '&') end++;
        eq = p;
        while (eq < end && query[eq] != '=') eq++;
        if (end > p && form_equals(query + p, eq - p, name)) {
            if (eq < end) {
                if (val) *val = query + eq + 1;
                return (long)(end - eq - 1);
            }
            if (val) *val = query + end;
            return 0;
        }
        p = end + 1;
    }
    return -1;
}

/* The form-decoded value of the first parameter `name` into dst (capacity
 * dstcap): its length; -1 if absent, -2 if undecodable or longer than
 * dstcap. Never allocates. */
long sr_query_param(const char *query, size_t qlen, const char *name,
                    char *dst, size_t dstcap)
{
    const char *v = NULL;
    long vlen = sr_query_raw(query, qlen, name, &v);
    size_t i = 0, o = 0;
    if (vlen < 0) return -1;
    while (i < (size_t)vlen) {
        int b = pct_next(v, (size_t)vlen, &i, 1);
        if (b <= 0 || o >= dstcap) return -2;
        dst[o++] = (char)b;
    }
    return (long)o;
}

/* ------------------------------------------------------------------------ */
/* Base64.                                                                   */

static int b64val(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

/* Accepts unpadded input, or padded input whose total length is a multiple
 * of 4. Rejects: characters outside the chosen alphabet, '=' anywhere but
 * the end, more than two '=', a final group of one character (4n+1). Unused
 * low bits of the last group are ignored (as most decoders do). */
long sr_b64_decode(const char *src, size_t srclen, char *dst, size_t dstcap,
                   int url)
{
    size_t n = srclen, pad = 0, i, o = 0, outlen;
    uint32_t acc = 0;
    int bits = 0;
    if (!src && srclen) return -1;
    while (n > 0 && src[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && srclen % 4 != 0) return -1;
    if (n % 4 == 1) return -1;
    if (pad && (n % 4) + pad != 4) return -1; /* e.g. "QQ==" ok, "QUE==" not */
    outlen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (outlen > dstcap) return -1;
    for (i = 0; i < n; i++) {
        int v = b64val((unsigned char)src[i], url);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)o;
}

/* ------------------------------------------------------------------------ */
/* Access tokens.                                                            */

/* The access token of a request: "Bearer <token>" in auth (one word), else
 * the access_token query parameter decoded into tokbuf. *tok and *toklen point
 * into auth or tokbuf. 1 found, 0 none, -1 present but undecodable or
 * longer than tokcap. Never allocates. */
int sr_token_find(const char *auth, size_t alen, const char *query, size_t qlen,
                  char *tokbuf, size_t tokcap, const char **tok, size_t *toklen)
{
    long r;
    *tok = NULL;
    *toklen = 0;
    if (auth && has_prefix(auth, alen, "Bearer ") && alen > 7) {
        /* One token68-ish word: no further spaces, tabs or control bytes. */
        size_t i;
        int ok = 1;
        for (i = 7; i < alen; i++)
            if ((unsigned char)auth[i] <= ' ' || auth[i] == 0x7f) {
                ok = 0;
                break;
            }
        if (ok) {
            *tok = auth + 7;
            *toklen = alen - 7;
            return 1;
        }
    }
    if (!query || qlen == 0) return 0;
    r = sr_query_param(query, qlen, "access_token", tokbuf, tokcap);
    if (r == -1 || r == 0) return 0;
    if (r < 0) return -1;
    *tok = tokbuf;
    *toklen = (size_t)r;
    return 1;
}

#define SR_LOCALPART_MAX 255 /* a whole user ID is at most 255 bytes */

/* Is [s, s+n) valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k, need;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else return 0;
        if (n - i <= need) return 0;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        i += need + 1;
    }
    return 1;
}

/* A decoded localpart we are willing to use as a key: non-empty, at most
 * SR_LOCALPART_MAX bytes, valid UTF-8, no control bytes, no ':' or '@'
 * (neither can appear in a localpart) and no spaces. */
static int plausible_localpart(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > SR_LOCALPART_MAX) return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == ':' || c == '@') return 0;
    }
    return valid_utf8((const unsigned char *)s, n);
}

/* syt_<b64 localpart>_<random>_<crc>: the part after the prefix. */
static sr_tok_kind classify_syt(const char *rest, size_t n, char *key,
                                size_t keycap, size_t *keylen)
{
    char buf[SR_LOCALPART_MAX + 3];
    const char *us = memchr(rest, '_', n);
    long d;
    if (!us || us == rest) return SR_TOK_OPAQUE;
    /* The random and CRC parts must follow: one more '_' with text around. */
    {
        const char *tail = us + 1;
        size_t tn = n - (size_t)(tail - rest);
        const char *us2 = memchr(tail, '_', tn);
        if (!us2 || us2 == tail || us2 + 1 == tail + tn) return SR_TOK_OPAQUE;
    }
    d = sr_b64_decode(rest, (size_t)(us - rest), buf, sizeof buf, 0);
    if (d < 0 || !plausible_localpart(buf, (size_t)d) || (size_t)d > keycap)
        return SR_TOK_OPAQUE;
    memcpy(key, buf, (size_t)d);
    *keylen = (size_t)d;
    return SR_TOK_SYT;
}

/* Longest macaroon we decode (encoded characters); longer ones are opaque.
 * Synapse's are a few hundred bytes. */
#define SR_MACAROON_MAX 4096

static sr_tok_kind classify_macaroon(const char *tok, size_t len, char *key,
                                     size_t keycap, size_t *keylen)
{
    char buf[SR_MACAROON_MAX / 4 * 3 + 3];
    const char *uid = NULL;
    size_t uidlen = 0, p = 0, n;
    long d;
    if (len > SR_MACAROON_MAX) return SR_TOK_OPAQUE;
    d = sr_b64_decode(tok, len, buf, sizeof buf, 1);
    if (d <= 0) return SR_TOK_OPAQUE;
    n = (size_t)d;
    while (p < n) {
        size_t plen = 0, k;
        const char *body, *sp;
        size_t blen;
        if (n - p < 4) return SR_TOK_OPAQUE;
        for (k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)buf[p + k];
            int v = (c >= '0' && c <= '9')   ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                             : -1;
            if (v < 0) return SR_TOK_OPAQUE;
            plen = plen * 16 + (size_t)v;
        }
        /* at least "k \n" after the length; must fit in what is left */
        if (plen < 4 + 3 || plen > n - p) return SR_TOK_OPAQUE;
        body = buf + p + 4;
        blen = plen - 4;
        if (body[blen - 1] != '\n') return SR_TOK_OPAQUE;
        sp = memchr(body, ' ', blen - 1);
        if (!sp || sp == body) return SR_TOK_OPAQUE;
        if (!uid && (size_t)(sp - body) == 3 && memcmp(body, "cid", 3) == 0) {
            const char *v = sp + 1;
            size_t vlen = (size_t)(body + blen - 1 - v);
            if (has_prefix(v, vlen, "user_id = ")) {
                uid = v + 10;
                uidlen = vlen - 10;
            }
        }
        p += plen;
    }
    if (!uid) return SR_TOK_OPAQUE;
    {
        long l = sr_user_localpart(uid, uidlen, key, keycap);
        if (l < 0) return SR_TOK_OPAQUE;
        *keylen = (size_t)l;
    }
    return SR_TOK_MACAROON;
}

/* The kind of a raw token and, for syt_/syr_ and macaroons, the user's
 * localpart in key (capacity keycap, *keylen its length; 0 otherwise). A
 * user part that does not decode makes the token SR_TOK_OPAQUE. Pure. */
sr_tok_kind sr_token_classify(const char *tok, size_t len,
                              char *key, size_t keycap, size_t *keylen)
{
    static const char *const mas[] = { "mat_", "mar_", "mct_", "mcr_", "mpt_" };
    size_t i;
    *keylen = 0;
    if (!tok || len == 0) return SR_TOK_NONE;
    if (has_prefix(tok, len, "syt_") || has_prefix(tok, len, "syr_"))
        return classify_syt(tok + 4, len - 4, key, keycap, keylen);
    for (i = 0; i < sizeof mas / sizeof mas[0]; i++)
        if (has_prefix(tok, len, mas[i])) return SR_TOK_MAS;
    if (has_prefix(tok, len, "MDAx"))
        return classify_macaroon(tok, len, key, keycap, keylen);
    return SR_TOK_OPAQUE;
}

/* "@alice:hs" or "alice" -> "alice" in dst: strips one leading '@' and
 * everything from the first ':'. Its length, or -1 if longer than dstcap
 * (or uid NULL with len > 0). Never allocates. */
long sr_localpart(const char *uid, size_t len, char *dst, size_t dstcap)
{
    const char *colon;
    size_t n;
    if (!uid && len) return -1;
    if (len && uid[0] == '@') {
        uid++;
        len--;
    }
    colon = len ? memchr(uid, ':', len) : NULL;
    n = colon ? (size_t)(colon - uid) : len;
    if (n > dstcap) return -1;
    if (n) memcpy(dst, uid, n);
    return (long)n;
}

/* "@alice:hs" -> "alice" in dst: a leading '@', then everything up to the
 * first ':' when it is a localpart we are willing to use as a key
 * (plausible_localpart). Its length, or -1 (not '@'-prefixed, not plausible,
 * or longer than dstcap). The rule for a macaroon's user_id caveat and for
 * the user_id of a whoami answer. Never allocates. */
long sr_user_localpart(const char *uid, size_t len, char *dst, size_t dstcap)
{
    char lp[SR_LOCALPART_MAX + 1];
    long l;
    if (!uid || len < 2 || uid[0] != '@') return -1;
    l = sr_localpart(uid, len, lp, sizeof lp);
    if (l <= 0 || !plausible_localpart(lp, (size_t)l) || (size_t)l > dstcap) return -1;
    memcpy(dst, lp, (size_t)l);
    return l;
}

/* ------------------------------------------------------------------------ */
/* X-Matrix.                                                                 */

/* A cursor over an Authorization value, and where the origin goes. */
typedef struct {
    const char *h;
    size_t len, p;
    char *dst;
    size_t cap;
} xm_cur;

static void skip_ows(xm_cur *x)
{
    while (x->p < x->len && is_ows((unsigned char)x->h[x->p])) x->p++;
}

/* Length of the token (RFC 9110 tchar run) at the cursor; moves past it. */
static size_t take_token(xm_cur *x)
{
    size_t s = x->p;
    while (x->p < x->len && is_tchar((unsigned char)x->h[x->p])) x->p++;
    return x->p - s;
}

/* 1 if s[0..n) equals lit ignoring ASCII case. */
static int ieq(const char *s, size_t n, const char *lit)
{
    size_t k;
    if (n != strlen(lit)) return 0;
    for (k = 0; k < n; k++)
        if (lower((unsigned char)s[k]) != lower((unsigned char)lit[k])) return 0;
    return 1;
}

/* A visible byte or tab (what a quoted-string may hold). */
static int is_qdtext(unsigned char c) { return !((c < ' ' && c != '\t') || c == 0x7f); }

/* The quoted-string after the opening '"' at the cursor, unescaped into
 * dst when keep. Returns its length, or -1 if malformed or too long. */
static long take_quoted(xm_cur *x, int keep)
{
    size_t o = 0;
    for (;;) {
        unsigned char c;
        if (x->p >= x->len) return -1; /* unterminated */
        c = (unsigned char)x->h[x->p];
        if (c == '"') {
            x->p++;
            return (long)o;
        }
        if (c == '\\' && ++x->p >= x->len) return -1;
        c = (unsigned char)x->h[x->p];
        if (!is_qdtext(c)) return -1;
        if (keep) {
            if (o >= x->cap) return -1;
            x->dst[o++] = (char)c;
        }
        x->p++;
    }
}

/* An unquoted value: a token, but older senders put ':' (and other visible
 * characters, e.g. base64 '/') in it. Copied into dst when keep. Returns
 * its length, or -1 if empty, malformed or too long. */
static long take_unquoted(xm_cur *x, int keep)
{
    size_t vs = x->p;
    while (x->p < x->len) {
        unsigned char c = (unsigned char)x->h[x->p];
        if (c == ',' || is_ows(c)) break;
        if (c < ' ' || c == 0x7f || c == '"' || c == '\\') return -1;
        x->p++;
    }
    if (x->p == vs || (keep && x->p - vs > x->cap)) return -1;
    if (keep) memcpy(x->dst, x->h + vs, x->p - vs);
    return (long)(x->p - vs);
}

/* The scheme "X-Matrix" (any case) then 1+ spaces. 1 if so, 0 if another
 * scheme, -1 for "X-Matrix" followed by something else. */
static int take_scheme(xm_cur *x)
{
    size_t s, n;
    skip_ows(x);
    s = x->p;
    n = take_token(x);
    if (!ieq(x->h + s, n, "X-Matrix")) return 0;
    if (x->p < x->len && x->h[x->p] != ' ') return -1; /* "X-Matrix\t", "X-Matrix/" */
    while (x->p < x->len && x->h[x->p] == ' ') x->p++;
    return 1;
}

/* One "name=value" parameter; *is_origin says whether it was origin (then
 * its value is in dst). Returns the value's length, -1 if malformed, or -2
 * at a second "X-Matrix ..." credentials in the same line (two headers
 * merged: all of a sender's headers carry the same origin, keep the first
 * one's). */
static long take_param(xm_cur *x, int *is_origin)
{
    size_t ns = x->p, nl = take_token(x);
    if (nl == 0) return -1;
    skip_ows(x);
    if (x->p < x->len && x->h[x->p] != '=' && x->p > ns + nl &&
        ieq(x->h + ns, nl, "X-Matrix") && x->h[ns + nl] == ' ')
        return -2;
    if (x->p >= x->len || x->h[x->p] != '=') return -1;
    x->p++;
    skip_ows(x);
    *is_origin = ieq(x->h + ns, nl, "origin");
    if (x->p < x->len && x->h[x->p] == '"') {
        x->p++;
        return take_quoted(x, *is_origin);
    }
    return take_unquoted(x, *is_origin);
}

/* The origin of an "Authorization: X-Matrix ..." value into dst (contract
 * in sr_core.h): its length, 0 if the value is not X-Matrix, -1 if it is
 * but malformed, without origin, with origin twice or an origin longer
 * than dstcap. Never fails otherwise, never allocates. */
long sr_xmatrix_origin(const char *hdr, size_t len, char *dst, size_t dstcap)
{
    xm_cur x = { hdr, len, 0, dst, dstcap };
    long olen = -1;
    int sch;
    if (!hdr) return 0;
    sch = take_scheme(&x);
    if (sch <= 0) return sch;
    for (;;) {
        int is_origin = 0;
        long v;
        /* empty list elements (",  ,") are allowed, as RFC 9110 #rule says */
        while (x.p < len && (is_ows((unsigned char)hdr[x.p]) || hdr[x.p] == ',')) x.p++;
        if (x.p >= len) break;
        v = take_param(&x, &is_origin);
        if (v == -2) break;
        /* an origin must not be empty, nor come twice (RFC 9110: names once) */
        if (v < 0 || (is_origin && (olen >= 0 || v == 0))) return -1;
        if (is_origin) olen = v;
        skip_ows(&x);
        if (x.p < len && hdr[x.p] != ',') return -1;
    }
    return olen;
}

/* ------------------------------------------------------------------------ */
/* Paths.                                                                    */

/* Length of the path proper (up to '?' or '#', which a path never holds). */
static size_t path_len(const char *path, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (path[i] == '?' || path[i] == '#') return i;
    return len;
}

/* Offset of the '/' that ends "/_matrix/client/<version>", or -1.
 * Versions: r0, v<digits>, api/v1, unstable, unstable/<something>; for
 * "unstable/<something>" the '/' before <something> is returned, which is
 * fine because callers search from there. */
static long client_version_end(const char *path, size_t len)
{
    static const char pre[] = "/_matrix/client/";
    size_t p = sizeof pre - 1, vs;
    if (!has_prefix(path, len, pre)) return -1;
    vs = p;
    while (p < len && path[p] != '/') p++;
    if (p >= len) return -1;
    {
        const char *v = path + vs;
        size_t vl = p - vs;
        if (vl == 2 && memcmp(v, "r0", 2) == 0) return (long)p;
        if (vl == 8 && memcmp(v, "unstable", 8) == 0) return (long)p;
        if (vl == 3 && memcmp(v, "api", 3) == 0) {
            if (has_prefix(path + p, len - p, "/v1/")) return (long)p + 3;
            return -1;
        }
        if (vl >= 2 && v[0] == 'v') {
            for (size_t i = 1; i < vl; i++)
                if (v[i] < '0' || v[i] > '9') return -1;
            return (long)p;
        }
    }
    return -1;
}

/* Percent-decode (not form: '+' stays) the segment following the first
 * "/<word>/" at or after `from`. */
static long segment_after(const char *path, size_t len, size_t from,
                          const char *const *words, size_t nwords,
                          char *dst, size_t dstcap)
{
    size_t p, best = len, bestw = 0, i;
    for (i = 0; i < nwords; i++) {
        size_t wl = strlen(words[i]);
        const char *f = find_mem(path + from, len - from, words[i], wl);
        if (f && (size_t)(f - path) < best) {
            best = (size_t)(f - path);
            bestw = wl;
        }
    }
    if (best == len) return 0;
    p = best + bestw;
    {
        size_t e = p, o = 0;
        while (e < len && path[e] != '/') e++;
        if (e == p) return 0;
        while (p < e) {
            int b = pct_next(path, e, &p, 0);
            if (b <= 0 || o >= dstcap) return -1;
            dst[o++] = (char)b;
        }
        return (long)o;
    }
}

/* The percent-decoded segment after the first /rooms/, /join/ or /knock/
 * following a client API version, into dst: its length, 0 when the path
 * has none, -1 when it does not decode or exceeds dstcap. */
long sr_room_from_path(const char *path, size_t len, char *dst, size_t dstcap)
{
    static const char *const words[] = { "/rooms/", "/join/", "/knock/" };
    long v;
    if (!path) return 0;
    len = path_len(path, len);
    v = client_version_end(path, len);
    if (v < 0) return 0;
    return segment_after(path, len, (size_t)v, words, 3, dst, dstcap);
}

/* The user of a client /profile/{userId} path, decoded and reduced to its
 * localpart, into dst; same returns as sr_room_from_path. */
long sr_profile_user_from_path(const char *path, size_t len, char *dst,
                               size_t dstcap)
{
    static const char *const words[] = { "/profile/" };
    char buf[SR_LOCALPART_MAX * 3 + 8];
    long v, n;
    if (!path) return 0;
    len = path_len(path, len);
    v = client_version_end(path, len);
    if (v < 0) return 0;
    n = segment_after(path, len, (size_t)v, words, 1, buf, sizeof buf);
    if (n <= 0) return n;
    return sr_localpart(buf, (size_t)n, dst, dstcap);
}
