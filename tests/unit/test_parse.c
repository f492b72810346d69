/* test_parse.c - sr_parse: methods, percent/form decoding, query params,
 * base64, token discovery and classification (syt_, macaroons, MAS),
 * localparts, X-Matrix, room / profile user from paths. Hostile input
 * included: truncations, bad escapes, NUL bytes, 64 KiB values. */
#include "unit.h"
#include "sr_core.h"

#include <stdlib.h>

#define BIG (64 * 1024)

/* ---- fixture builders ---------------------------------------------------- */

/* Base64-encode n bytes; url selects the alphabet, pad adds '='. */
static size_t b64enc(const void *data, size_t n, char *out, int url, int pad)
{
    const char *std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *urls = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *al = url ? urls : std;
    const unsigned char *s = data;
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63];
        if (pad) out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* A Synapse-shaped access token: syt_<b64(localpart)>_<20 letters>_<6>. */
static size_t make_syt(const char *prefix, const char *localpart, size_t lplen,
                       char *out)
{
    size_t o = strlen(prefix);
    memcpy(out, prefix, o);
    o += b64enc(localpart, lplen, out + o, 0, 0);
    memcpy(out + o, "_AbCdEfGhIjKlMnOpQrSt_1a2B3c", 28);
    o += 28;
    out[o] = '\0';
    return o;
}

/* Append one macaroon v1 packet "<4 hex len>key value\n" (len includes the
 * 4 length bytes). */
static size_t packet(char *buf, size_t o, const char *key, const char *val,
                     size_t vlen)
{
    size_t plen = 4 + strlen(key) + 1 + vlen + 1;
    snprintf(buf + o, 5, "%04zx", plen);
    o += 4;
    memcpy(buf + o, key, strlen(key));
    o += strlen(key);
    buf[o++] = ' ';
    memcpy(buf + o, val, vlen);
    o += vlen;
    buf[o++] = '\n';
    return o;
}

/* A Synapse-style macaroon: location, identifier, caveats, 32-byte binary
 * signature; url-safe base64 without '='. Returns the raw length in *rawlen
 * and fills raw too (for corrupting it). */
static size_t make_macaroon(const char *uid_caveat, char *raw, size_t *rawlen,
                            char *out)
{
    unsigned char sig[32];
    size_t o = 0, i;
    for (i = 0; i < sizeof sig; i++) sig[i] = (unsigned char)(i * 37 + 10); /* has '\n' (10) */
    o = packet(raw, o, "location", "hs.example", 10);
    o = packet(raw, o, "identifier", "key", 3);
    o = packet(raw, o, "cid", "gen = 1", 7);
    if (uid_caveat) o = packet(raw, o, "cid", uid_caveat, strlen(uid_caveat));
    o = packet(raw, o, "cid", "type = access", 13);
    o = packet(raw, o, "cid", "nonce = ~a/b+c", 14);
    o = packet(raw, o, "signature", (const char *)sig, sizeof sig);
    *rawlen = o;
    return b64enc(raw, o, out, 1, 0);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_methods(void)
{
    CHECK("parse/method_get", sr_method_bit("GET", 3) == SR_M_GET);
    CHECK("parse/method_head", sr_method_bit("HEAD", 4) == SR_M_HEAD);
    CHECK("parse/method_post", sr_method_bit("POST", 4) == SR_M_POST);
    CHECK("parse/method_put", sr_method_bit("PUT", 3) == SR_M_PUT);
    CHECK("parse/method_delete", sr_method_bit("DELETE", 6) == SR_M_DELETE);
    CHECK("parse/method_options", sr_method_bit("OPTIONS", 7) == SR_M_OPTIONS);
    CHECK("parse/method_patch", sr_method_bit("PATCH", 5) == SR_M_PATCH);
    CHECK("parse/method_lowercase_other", sr_method_bit("get", 3) == SR_M_OTHER);
    CHECK("parse/method_prefix_other", sr_method_bit("GETX", 4) == SR_M_OTHER);
    CHECK("parse/method_len_respected", sr_method_bit("GETX", 3) == SR_M_GET);
    CHECK("parse/method_empty_other", sr_method_bit("", 0) == SR_M_OTHER);
    CHECK("parse/method_null_other", sr_method_bit(NULL, 0) == SR_M_OTHER);
    CHECK("parse/method_nul_inside", sr_method_bit("GE\0", 3) == SR_M_OTHER);
}

static void test_pct(void)
{
    char d[64];
    long n;
    n = sr_pct_decode("%21abc%3Ahs", 11, d, 0);
    CHECK_STR("parse/pct_room", d, n, "!abc:hs");
    n = sr_pct_decode("%21abc%3ahs", 11, d, 0);
    CHECK_STR("parse/pct_lower_hex", d, n, "!abc:hs");
    n = sr_pct_decode("a+b%2Bc", 7, d, 0);
    CHECK_STR("parse/pct_plus_kept", d, n, "a+b+c");
    n = sr_pct_decode("a+b%2Bc", 7, d, 1);
    CHECK_STR("parse/pct_form_plus_space", d, n, "a b+c");
    n = sr_pct_decode("", 0, d, 0);
    CHECK("parse/pct_empty", n == 0);
    CHECK("parse/pct_truncated_1", sr_pct_decode("ab%", 3, d, 0) == -1);
    CHECK("parse/pct_truncated_2", sr_pct_decode("ab%4", 4, d, 0) == -1);
    CHECK("parse/pct_truncated_by_len", sr_pct_decode("ab%41", 4, d, 0) == -1);
    CHECK("parse/pct_bad_hex", sr_pct_decode("%zz", 3, d, 0) == -1);
    CHECK("parse/pct_half_hex", sr_pct_decode("%4g", 3, d, 0) == -1);
    CHECK("parse/pct_nul_escape", sr_pct_decode("a%00b", 5, d, 0) == -1);
    CHECK("parse/pct_raw_nul", sr_pct_decode("a\0b", 3, d, 0) == -1);
    n = sr_pct_decode("%E2%82%AC%25", 12, d, 0);
    CHECK_STR("parse/pct_utf8_and_percent", d, n, "\xe2\x82\xac%");
    n = sr_pct_decode("%2541", 5, d, 0);
    CHECK_STR("parse/pct_no_double_decode", d, n, "%41");
}

static void test_query(void)
{
    char d[256];
    long n;
    const char *q;

    q = "a=1&access_token=tok&a=2";
    n = sr_query_param(q, strlen(q), "a", d, sizeof d);
    CHECK_STR("parse/query_first_wins", d, n, "1");
    n = sr_query_param(q, strlen(q), "access_token", d, sizeof d);
    CHECK_STR("parse/query_middle", d, n, "tok");
    CHECK("parse/query_absent", sr_query_param(q, strlen(q), "b", d, sizeof d) == -1);
    CHECK("parse/query_prefix_not_match", sr_query_param("ab=1", 4, "a", d, sizeof d) == -1);
    CHECK("parse/query_longer_name_not_match", sr_query_param("a=1", 3, "ab", d, sizeof d) == -1);
    q = "acc%65ss_token=x";
    n = sr_query_param(q, strlen(q), "access_token", d, sizeof d);
    CHECK_STR("parse/query_name_decoded", d, n, "x");
    q = "a+b=1&a%20b=2";
    n = sr_query_param(q, strlen(q), "a b", d, sizeof d);
    CHECK_STR("parse/query_name_form_plus", d, n, "1");
    q = "since&x=1";
    n = sr_query_param(q, strlen(q), "since", d, sizeof d);
    CHECK("parse/query_no_equals_empty", n == 0);
    q = "since=&x=1";
    CHECK("parse/query_equals_empty", sr_query_param(q, strlen(q), "since", d, sizeof d) == 0);
    q = "x=a+b%2Bc";
    n = sr_query_param(q, strlen(q), "x", d, sizeof d);
    CHECK_STR("parse/query_value_form", d, n, "a b+c");
    q = "x=a=b=c";
    n = sr_query_param(q, strlen(q), "x", d, sizeof d);
    CHECK_STR("parse/query_value_keeps_equals", d, n, "a=b=c");
    q = "x=%zz&x=ok";
    CHECK("parse/query_undecodable_first", sr_query_param(q, strlen(q), "x", d, sizeof d) == -2);
    q = "x=a%00b";
    CHECK("parse/query_nul_escape", sr_query_param(q, strlen(q), "x", d, sizeof d) == -2);
    q = "%zz=1&x=2";
    n = sr_query_param(q, strlen(q), "x", d, sizeof d);
    CHECK_STR("parse/query_bad_name_skipped", d, n, "2");
    q = "&&x=1&&";
    n = sr_query_param(q, strlen(q), "x", d, sizeof d);
    CHECK_STR("parse/query_empty_parts", d, n, "1");
    CHECK("parse/query_empty_query", sr_query_param("", 0, "x", d, sizeof d) == -1);
    CHECK("parse/query_null_query", sr_query_param(NULL, 0, "x", d, sizeof d) == -1);
    q = "x=abcd";
    CHECK("parse/query_too_long", sr_query_param(q, strlen(q), "x", d, 3) == -2);
    n = sr_query_param(q, strlen(q), "x", d, 4);
    CHECK_STR("parse/query_exact_fit", d, n, "abcd");
    q = "x=%41%42";
    n = sr_query_param(q, strlen(q), "x", d, 2);
    CHECK_STR("parse/query_decoded_fits", d, n, "AB");
    q = "x=1\0&y=2";
    CHECK("parse/query_raw_nul_value", sr_query_param(q, 8, "x", d, sizeof d) == -2);
    n = sr_query_param(q, 8, "y", d, sizeof d);
    CHECK_STR("parse/query_after_nul", d, n, "2");
    q = "x=1&y=2";
    CHECK("parse/query_len_respected", sr_query_param(q, 5, "y", d, sizeof d) == 0);

    /* 64 KiB values */
    {
        char *big = malloc(BIG + 16), *out = malloc(BIG + 1);
        if (big && out) {
            memcpy(big, "x=", 2);
            memset(big + 2, 'v', BIG);
            n = sr_query_param(big, BIG + 2, "x", out, BIG);
            CHECK("parse/query_64k_value", n == BIG && out[BIG - 1] == 'v');
            CHECK("parse/query_64k_value_too_long",
                  sr_query_param(big, BIG + 2, "x", out, BIG - 1) == -2);
            memset(big, 'n', BIG);
            memcpy(big + BIG, "=1&x=2", 6);
            n = sr_query_param(big, BIG + 6, "x", out, BIG);
            CHECK_STR("parse/query_64k_name_skipped", out, n, "2");
        }
        free(big);
        free(out);
    }
}

static void test_b64(void)
{
    char d[64];
    long n;
    n = sr_b64_decode("YWxpY2U", 7, d, sizeof d, 0);
    CHECK_STR("parse/b64_unpadded", d, n, "alice");
    n = sr_b64_decode("YWxpY2U=", 8, d, sizeof d, 0);
    CHECK_STR("parse/b64_padded", d, n, "alice");
    n = sr_b64_decode("QQ==", 4, d, sizeof d, 0);
    CHECK_STR("parse/b64_two_pad", d, n, "A");
    n = sr_b64_decode("QQ", 2, d, sizeof d, 0);
    CHECK_STR("parse/b64_two_chars", d, n, "A");
    n = sr_b64_decode("QUJD", 4, d, sizeof d, 0);
    CHECK_STR("parse/b64_full_group", d, n, "ABC");
    CHECK("parse/b64_empty", sr_b64_decode("", 0, d, sizeof d, 0) == 0);
    CHECK("parse/b64_4n_plus_1", sr_b64_decode("QUJDR", 5, d, sizeof d, 0) == -1);
    CHECK("parse/b64_single_char", sr_b64_decode("Q", 1, d, sizeof d, 0) == -1);
    CHECK("parse/b64_wrong_pad_len", sr_b64_decode("QQ=", 3, d, sizeof d, 0) == -1);
    CHECK("parse/b64_too_much_pad", sr_b64_decode("YWxpY2U==", 9, d, sizeof d, 0) == -1);
    CHECK("parse/b64_pad_only", sr_b64_decode("====", 4, d, sizeof d, 0) == -1);
    CHECK("parse/b64_pad_one", sr_b64_decode("=", 1, d, sizeof d, 0) == -1);
    CHECK("parse/b64_pad_in_middle", sr_b64_decode("QQ==QQ==", 8, d, sizeof d, 0) == -1);
    CHECK("parse/b64_three_pad", sr_b64_decode("Q===", 4, d, sizeof d, 0) == -1);
    n = sr_b64_decode("+/+/", 4, d, sizeof d, 0);
    CHECK("parse/b64_std_plus_slash", n == 3 && (unsigned char)d[0] == 0xfb && (unsigned char)d[1] == 0xff && (unsigned char)d[2] == 0xbf);
    CHECK("parse/b64_std_rejects_url", sr_b64_decode("-_-_", 4, d, sizeof d, 0) == -1);
    n = sr_b64_decode("-_-_", 4, d, sizeof d, 1);
    CHECK("parse/b64_url_dash_underscore", n == 3 && (unsigned char)d[0] == 0xfb);
    CHECK("parse/b64_url_rejects_std", sr_b64_decode("+/+/", 4, d, sizeof d, 1) == -1);
    CHECK("parse/b64_invalid_char", sr_b64_decode("YW*p", 4, d, sizeof d, 0) == -1);
    CHECK("parse/b64_space", sr_b64_decode("YW xp", 5, d, sizeof d, 0) == -1);
    CHECK("parse/b64_embedded_nul", sr_b64_decode("YW\0p", 4, d, sizeof d, 0) == -1);
    CHECK("parse/b64_high_byte", sr_b64_decode("YW\xc3\xa9", 4, d, sizeof d, 0) == -1);
    CHECK("parse/b64_dst_too_small", sr_b64_decode("YWxpY2U", 7, d, 4, 0) == -1);
    n = sr_b64_decode("YWxpY2U", 7, d, 5, 0);
    CHECK_STR("parse/b64_dst_exact", d, n, "alice");
    /* round trip of every byte value */
    {
        unsigned char all[256];
        char enc[400], dec[256];
        size_t i, el;
        for (i = 0; i < 256; i++) all[i] = (unsigned char)i;
        el = b64enc(all, 256, enc, 1, 0);
        n = sr_b64_decode(enc, el, dec, sizeof dec, 1);
        CHECK("parse/b64_roundtrip_url", n == 256 && memcmp(dec, all, 256) == 0);
        el = b64enc(all, 256, enc, 0, 1);
        n = sr_b64_decode(enc, el, dec, sizeof dec, 0);
        CHECK("parse/b64_roundtrip_std_padded", n == 256 && memcmp(dec, all, 256) == 0);
    }
}

static void test_token_find(void)
{
    char buf[256];
    const char *tok;
    size_t tl;
    const char *a, *q;
    int r;

    a = "Bearer syt_YWxpY2U_x_y";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_bearer", r == 1 && tok == a + 7);
    CHECK_STR("parse/find_bearer_value", tok, tl, "syt_YWxpY2U_x_y");
    a = "Bearer abc+/def==";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK_STR("parse/find_bearer_plus_slash_raw", tok, r == 1 ? tl : 0, "abc+/def==");
    q = "access_token=qtok";
    r = sr_token_find(a, strlen(a), q, strlen(q), buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_bearer_beats_query", r == 1 && tok == a + 7);
    a = "bearer lower";
    r = sr_token_find(a, strlen(a), q, strlen(q), buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_scheme_case_sensitive", r == 1 && tok == buf);
    CHECK_STR("parse/find_falls_back_to_query", tok, tl, "qtok");
    a = "bearer lower";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_lowercase_no_query", r == 0 && tok == NULL && tl == 0);
    a = "Bearer  two";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_two_spaces_not_bearer", r == 0);
    a = "Bearer ";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_bearer_empty", r == 0);
    a = "Bearer a b";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_bearer_space_inside", r == 0);
    a = "Bearer a\0b";
    r = sr_token_find(a, 10, NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_bearer_nul_inside", r == 0);
    a = "Bearer\tx";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_bearer_tab", r == 0);
    a = "Bearerx";
    r = sr_token_find(a, strlen(a), NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_bearer_no_space", r == 0);
    a = "-";
    r = sr_token_find(a, 1, q, strlen(q), buf, sizeof buf, &tok, &tl);
    CHECK_STR("parse/find_dash_auth_query", tok, r == 1 ? tl : 0, "qtok");
    r = sr_token_find(NULL, 0, NULL, 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_nothing", r == 0 && tok == NULL);
    r = sr_token_find("", 0, "", 0, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_empty_strings", r == 0);
    q = "access_token=";
    r = sr_token_find(NULL, 0, q, strlen(q), buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_query_empty_value", r == 0);
    q = "access_token";
    r = sr_token_find(NULL, 0, q, strlen(q), buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_query_no_value", r == 0);
    q = "access_token=%zz";
    r = sr_token_find(NULL, 0, q, strlen(q), buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_query_undecodable", r == -1);
    q = "access_token=abcdef";
    r = sr_token_find(NULL, 0, q, strlen(q), buf, 4, &tok, &tl);
    CHECK("parse/find_query_too_long", r == -1);
    q = "x=1&access_token=a+b%2Bc%2F&access_token=second";
    r = sr_token_find(NULL, 0, q, strlen(q), buf, sizeof buf, &tok, &tl);
    CHECK_STR("parse/find_query_form_decoded", tok, r == 1 ? tl : 0, "a b+c/");
    q = "   ";
    r = sr_token_find("   ", 3, q, 3, buf, sizeof buf, &tok, &tl);
    CHECK("parse/find_only_spaces", r == 0);
}

static void test_classify(void)
{
    char tok[BIG + 64], key[512], lp[400];
    size_t tl, kl;
    sr_tok_kind k;

    tl = make_syt("syt_", "alice", 5, tok);
    k = sr_token_classify(tok, tl, key, sizeof key, &kl);
    CHECK("parse/syt_kind", k == SR_TOK_SYT);
    CHECK_STR("parse/syt_localpart", key, k == SR_TOK_SYT ? kl : 0, "alice");
    tl = make_syt("syr_", "bob", 3, tok);
    k = sr_token_classify(tok, tl, key, sizeof key, &kl);
    CHECK_STR("parse/syr_localpart", key, k == SR_TOK_SYT ? kl : 0, "bob");
    /* localpart whose base64 has '+' and '/' ("~~~" -> "fn5+", "???" -> "Pz8/") */
    tl = make_syt("syt_", "~~~???", 6, tok);
    CHECK("parse/syt_fixture_has_plus_slash", memchr(tok, '+', tl) && memchr(tok, '/', tl));
    k = sr_token_classify(tok, tl, key, sizeof key, &kl);
    CHECK_STR("parse/syt_plus_slash", key, k == SR_TOK_SYT ? kl : 0, "~~~???");
    /* the same token through a query: '+' must be sent as %2B ... */
    {
        char q[300], buf[300];
        const char *t;
        size_t ql = 0, i, tlen;
        memcpy(q, "access_token=", 13);
        ql = 13;
        for (i = 0; i < tl; i++) {
            if (tok[i] == '+') {
                memcpy(q + ql, "%2B", 3);
                ql += 3;
            } else q[ql++] = tok[i];
        }
        CHECK("parse/syt_query_encoded_found",
              sr_token_find(NULL, 0, q, ql, buf, sizeof buf, &t, &tlen) == 1);
        k = sr_token_classify(t, tlen, key, sizeof key, &kl);
        CHECK_STR("parse/syt_query_encoded_plus", key, k == SR_TOK_SYT ? kl : 0, "~~~???");
        /* ... a raw '+' becomes a space (form decoding), so the token no
         * longer decodes: opaque (hashed), never a wrong localpart */
        memcpy(q + 13, tok, tl);
        CHECK("parse/syt_query_raw_plus_found",
              sr_token_find(NULL, 0, q, 13 + tl, buf, sizeof buf, &t, &tlen) == 1);
        CHECK("parse/syt_query_raw_plus_opaque",
              sr_token_classify(t, tlen, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    }
    tl = make_syt("syt_", "caf\xc3\xa9", 5, tok);
    k = sr_token_classify(tok, tl, key, sizeof key, &kl);
    CHECK_STR("parse/syt_utf8", key, k == SR_TOK_SYT ? kl : 0, "caf\xc3\xa9");
    tl = make_syt("syt_", "a\xc3", 2, tok);
    CHECK("parse/syt_bad_utf8_opaque", sr_token_classify(tok, tl, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    tl = make_syt("syt_", "a\x01z", 3, tok);
    CHECK("parse/syt_control_opaque", sr_token_classify(tok, tl, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    tl = make_syt("syt_", "a\0z", 3, tok);
    CHECK("parse/syt_nul_opaque", sr_token_classify(tok, tl, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    tl = make_syt("syt_", "a:hs", 4, tok);
    CHECK("parse/syt_colon_opaque", sr_token_classify(tok, tl, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    tl = make_syt("syt_", "a b", 3, tok);
    CHECK("parse/syt_space_opaque", sr_token_classify(tok, tl, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    memset(lp, 'x', 255);
    tl = make_syt("syt_", lp, 255, tok);
    k = sr_token_classify(tok, tl, key, sizeof key, &kl);
    CHECK("parse/syt_255_ok", k == SR_TOK_SYT && kl == 255);
    CHECK("parse/syt_keycap_small_opaque", sr_token_classify(tok, tl, key, 100, &kl) == SR_TOK_OPAQUE);
    memset(lp, 'x', 300);
    tl = make_syt("syt_", lp, 300, tok);
    CHECK("parse/syt_too_long_opaque", sr_token_classify(tok, tl, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    /* structural damage */
    tok[0] = 0;
#define OPQ(name, s) CHECK(name, sr_token_classify(s, strlen(s), key, sizeof key, &kl) == SR_TOK_OPAQUE)
    OPQ("parse/syt_bad_b64", "syt_YW*pY2U_AbCdEfGhIjKlMnOpQrSt_1a2B3c");
    OPQ("parse/syt_4n1_b64", "syt_YWxpY_AbCdEfGhIjKlMnOpQrSt_1a2B3c");
    OPQ("parse/syt_empty_segment", "syt__AbCdEfGhIjKlMnOpQrSt_1a2B3c");
    OPQ("parse/syt_no_tail", "syt_YWxpY2U");
    OPQ("parse/syt_one_tail", "syt_YWxpY2U_AbCdEfGhIjKlMnOpQrSt");
    OPQ("parse/syt_empty_random", "syt_YWxpY2U__1a2B3c");
    OPQ("parse/syt_empty_crc", "syt_YWxpY2U_AbCd_");
    OPQ("parse/syt_prefix_only", "syt_");
    OPQ("parse/syt_url_alphabet", "syt_fn5-_AbCdEfGhIjKlMnOpQrSt_1a2B3c");
    OPQ("parse/syt_uppercase_prefix", "SYT_YWxpY2U_AbCdEfGhIjKlMnOpQrSt_1a2B3c");
    k = sr_token_classify("syt_YWxpY2U=_AbCd_1a2B3c", 24, key, sizeof key, &kl);
    CHECK_STR("parse/syt_padded_ok", key, k == SR_TOK_SYT ? kl : 0, "alice");

    /* MAS */
    CHECK("parse/mas_mat", sr_token_classify("mat_abcdefghijklmnopqrstuvwxyz0123_AbC123", 41, key, sizeof key, &kl) == SR_TOK_MAS);
    CHECK("parse/mas_mar", sr_token_classify("mar_x", 5, key, sizeof key, &kl) == SR_TOK_MAS);
    CHECK("parse/mas_mct", sr_token_classify("mct_x", 5, key, sizeof key, &kl) == SR_TOK_MAS);
    CHECK("parse/mas_mcr", sr_token_classify("mcr_x", 5, key, sizeof key, &kl) == SR_TOK_MAS);
    CHECK("parse/mas_mpt", sr_token_classify("mpt_x", 5, key, sizeof key, &kl) == SR_TOK_MAS);
    CHECK("parse/mas_no_key", sr_token_classify("mat_x", 5, key, sizeof key, &kl) == SR_TOK_MAS && kl == 0);
    OPQ("parse/mas_no_underscore", "matx");
    OPQ("parse/mas_uppercase", "Mat_x");
    OPQ("parse/mas_prefix_truncated", "ma");

    /* other */
    CHECK("parse/tok_empty_none", sr_token_classify("", 0, key, sizeof key, &kl) == SR_TOK_NONE);
    CHECK("parse/tok_null_none", sr_token_classify(NULL, 0, key, sizeof key, &kl) == SR_TOK_NONE);
    OPQ("parse/tok_random_opaque", "4f8e0c3b2a1d");
    OPQ("parse/tok_spaces_opaque", "   ");
    memset(tok, 'A', BIG);
    CHECK("parse/tok_64k_opaque", sr_token_classify(tok, BIG, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    memcpy(tok, "syt_", 4);
    CHECK("parse/tok_64k_syt_opaque", sr_token_classify(tok, BIG, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    memcpy(tok, "MDAx", 4);
    CHECK("parse/tok_64k_macaroon_opaque", sr_token_classify(tok, BIG, key, sizeof key, &kl) == SR_TOK_OPAQUE);
#undef OPQ
}

static void test_macaroons(void)
{
    char raw[1024], enc[2048], bad[1024];
    char key[512];
    size_t rl, el, kl, i;
    sr_tok_kind k;

    el = make_macaroon("user_id = @alice:hs.example", raw, &rl, enc);
    CHECK("parse/mac_fixture_prefix", strncmp(enc, "MDAx", 4) == 0);
    k = sr_token_classify(enc, el, key, sizeof key, &kl);
    CHECK("parse/mac_kind", k == SR_TOK_MACAROON);
    CHECK_STR("parse/mac_localpart", key, k == SR_TOK_MACAROON ? kl : 0, "alice");
    /* padded form is accepted too */
    {
        char padded[2100];
        size_t pl = b64enc(raw, rl, padded, 1, 1);
        k = sr_token_classify(padded, pl, key, sizeof key, &kl);
        CHECK_STR("parse/mac_padded", key, k == SR_TOK_MACAROON ? kl : 0, "alice");
        /* standard alphabet is not a macaroon encoding */
        pl = b64enc(raw, rl, padded, 0, 0);
        if (memchr(padded, '+', pl) || memchr(padded, '/', pl))
            CHECK("parse/mac_std_alphabet_opaque",
                  sr_token_classify(padded, pl, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    }
    /* guest-style user id, unusual characters in the localpart */
    el = make_macaroon("user_id = @=2e.-_/x:hs", raw, &rl, enc);
    k = sr_token_classify(enc, el, key, sizeof key, &kl);
    CHECK_STR("parse/mac_odd_localpart", key, k == SR_TOK_MACAROON ? kl : 0, "=2e.-_/x");
    /* no user_id caveat */
    el = make_macaroon(NULL, raw, &rl, enc);
    CHECK("parse/mac_no_user_opaque", sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    /* user_id without '@' / empty localpart / bad chars */
    el = make_macaroon("user_id = alice:hs", raw, &rl, enc);
    CHECK("parse/mac_no_at_opaque", sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    el = make_macaroon("user_id = @:hs", raw, &rl, enc);
    CHECK("parse/mac_empty_localpart_opaque", sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    el = make_macaroon("user_id = @a\x01:hs", raw, &rl, enc);
    CHECK("parse/mac_control_opaque", sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    el = make_macaroon("user_id=@alice:hs", raw, &rl, enc);
    CHECK("parse/mac_caveat_spacing_opaque", sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE);

    /* corruptions of a good one */
    el = make_macaroon("user_id = @alice:hs", raw, &rl, enc);
#define CORRUPT(name, stmt) \
    do { \
        memcpy(bad, raw, rl); \
        { \
            size_t bl = rl; \
            stmt; \
            el = b64enc(bad, bl, enc, 1, 0); \
        } \
        CHECK(name, sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE); \
    } while (0)
    CORRUPT("parse/mac_len_too_long", bad[3] = (char)(bad[3] + 1)); /* 0019 -> 001a */
    CORRUPT("parse/mac_len_too_short", bad[3] = (char)(bad[3] - 1));
    CORRUPT("parse/mac_len_not_hex", bad[0] = 'g');
    CORRUPT("parse/mac_len_huge", memcpy(bad, "ffff", 4));
    CORRUPT("parse/mac_len_zero", memcpy(bad, "0000", 4));
    CORRUPT("parse/mac_truncated_raw", bl -= 5);
    CORRUPT("parse/mac_trailing_garbage", (bad[bl] = 'x', bad[bl + 1] = 'y', bl += 2));
    CORRUPT("parse/mac_missing_newline", bad[0x18 - 1] = ' ');
    CORRUPT("parse/mac_no_space_in_packet", memcpy(bad + 4, "locationXhs.example", 19));
    /* truncated base64 (drop one char, then two) */
    el = make_macaroon("user_id = @alice:hs", raw, &rl, enc);
    for (i = 1; i <= 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "parse/mac_truncated_b64_%zu", i);
        CHECK(name, sr_token_classify(enc, el - i, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    }
    CHECK("parse/mac_prefix_only", sr_token_classify("MDAx", 4, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    CHECK("parse/mac_invalid_b64", sr_token_classify("MDAx!!!!", 8, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    /* a first cid that is not user_id, and user_id caveat taken first-wins */
    {
        size_t o = 0;
        o = packet(raw, o, "location", "hs", 2);
        o = packet(raw, o, "cid", "user_id = @first:hs", 19);
        o = packet(raw, o, "cid", "user_id = @second:hs", 20);
        el = b64enc(raw, o, enc, 1, 0);
        k = sr_token_classify(enc, el, key, sizeof key, &kl);
        CHECK_STR("parse/mac_first_user_id_wins", key, k == SR_TOK_MACAROON ? kl : 0, "first");
        /* hex letters in a length: lowercase only ("001a", not "001A") */
        o = 0;
        o = packet(raw, o, "location", "hs.example12", 12);
        o = packet(raw, o, "cid", "user_id = @hex:hs", 17);
        CHECK("parse/mac_fixture_hex_letter", memcmp(raw, "001a", 4) == 0);
        el = b64enc(raw, o, enc, 1, 0);
        k = sr_token_classify(enc, el, key, sizeof key, &kl);
        CHECK_STR("parse/mac_len_lowercase_hex", key, k == SR_TOK_MACAROON ? kl : 0, "hex");
        raw[3] = 'A';
        el = b64enc(raw, o, enc, 1, 0);
        CHECK("parse/mac_len_uppercase_hex", sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE);
        o = 0;
        o = packet(raw, o, "location", "hs", 2);
        o = packet(raw, o, "vid", "user_id = @v:hs", 15);
        el = b64enc(raw, o, enc, 1, 0);
        CHECK("parse/mac_vid_not_cid", sr_token_classify(enc, el, key, sizeof key, &kl) == SR_TOK_OPAQUE);
    }
#undef CORRUPT
}

static void test_localpart(void)
{
    char d[16];
    long n;
    n = sr_localpart("@alice:hs.example", 17, d, sizeof d);
    CHECK_STR("parse/localpart_full", d, n, "alice");
    n = sr_localpart("alice", 5, d, sizeof d);
    CHECK_STR("parse/localpart_bare", d, n, "alice");
    n = sr_localpart("@alice", 6, d, sizeof d);
    CHECK_STR("parse/localpart_no_server", d, n, "alice");
    n = sr_localpart("@a:b:c", 6, d, sizeof d);
    CHECK_STR("parse/localpart_first_colon", d, n, "a");
    CHECK("parse/localpart_empty", sr_localpart("@:hs", 4, d, sizeof d) == 0);
    CHECK("parse/localpart_empty_input", sr_localpart("", 0, d, sizeof d) == 0);
    CHECK("parse/localpart_too_long", sr_localpart("@abcdefghijklmnopq:hs", 21, d, sizeof d) == -1);
    n = sr_localpart("@@x:hs", 6, d, sizeof d);
    CHECK_STR("parse/localpart_one_at_only", d, n, "@x");
}

/* sr_user_localpart: the rule for whole user IDs (macaroons, whoami). */
static void test_user_localpart(void)
{
    char d[300], big[300];
    long n;
#define ULP(s) sr_user_localpart((s), strlen(s), d, sizeof d)
    n = ULP("@alice:hs.example");
    CHECK_STR("parse/user_localpart", d, n, "alice");
    n = ULP("@bob.x=y:hs.example:8448");
    CHECK_STR("parse/user_localpart_port", d, n, "bob.x=y");
    n = ULP("@alice");
    CHECK_STR("parse/user_localpart_no_server", d, n, "alice");
    CHECK("parse/user_localpart_no_at", ULP("alice:hs") == -1);
    CHECK("parse/user_localpart_empty", ULP("@:hs") == -1);
    CHECK("parse/user_localpart_bare_at", ULP("@") == -1);
    CHECK("parse/user_localpart_space", ULP("@a b:hs") == -1);
    CHECK("parse/user_localpart_control", ULP("@a\nb:hs") == -1);
    CHECK("parse/user_localpart_second_at", ULP("@@x:hs") == -1);
    CHECK("parse/user_localpart_bad_utf8", ULP("@a\xff:hs") == -1);
    n = ULP("@z\xc3\xab:hs");
    CHECK_STR("parse/user_localpart_utf8", d, n, "z\xc3\xab");
    big[0] = '@';
    memset(big + 1, 'a', 256);
    memcpy(big + 257, ":hs", 4);
    CHECK("parse/user_localpart_too_long", ULP(big) == -1);
    CHECK("parse/user_localpart_null", sr_user_localpart(NULL, 0, d, sizeof d) == -1);
    CHECK("parse/user_localpart_small_dst", sr_user_localpart("@alice:hs", 9, d, 3) == -1);
#undef ULP
}

static void test_xmatrix(void)
{
    char d[256];
    long n;
    const char *h;
    /* Kept as written; clang-format would spread each macro over many lines. */
    /* clang-format off */
#define XM(name, hdr, want) do { h = (hdr); n = sr_xmatrix_origin(h, strlen(h), d, sizeof d); \
        CHECK_STR(name, d, n, want); } while (0)
#define XMR(name, hdr, want) do { h = (hdr); n = sr_xmatrix_origin(h, strlen(h), d, sizeof d); \
        CHECK(name, n == (want)); } while (0)
    /* clang-format on */

    XM("parse/xmatrix_basic",
       "X-Matrix origin=\"remote.example\",destination=\"hs.example\",key=\"ed25519:a1\",sig=\"c2ln\"",
       "remote.example");
    XM("parse/xmatrix_unquoted", "X-Matrix origin=remote.example,key=\"ed25519:a1\",sig=\"x\"", "remote.example");
    XM("parse/xmatrix_unquoted_colon", "X-Matrix origin=remote.example:8448,key=ed25519:a1,sig=ab/c+d", "remote.example:8448");
    XM("parse/xmatrix_unquoted_ipv6", "X-Matrix origin=[::1]:8448,key=k,sig=s", "[::1]:8448");
    XM("parse/xmatrix_scheme_lower", "x-matrix origin=a.example,key=k", "a.example");
    XM("parse/xmatrix_scheme_upper", "X-MATRIX origin=a.example,key=k", "a.example");
    XM("parse/xmatrix_name_case", "X-Matrix key=\"k\",ORIGIN=\"b.example\",sig=\"s\"", "b.example");
    XM("parse/xmatrix_name_mixed_case", "X-Matrix Origin=c.example", "c.example");
    XM("parse/xmatrix_origin_last", "X-Matrix sig=\"s\",key=\"k\",destination=\"d\",origin=\"last.example\"", "last.example");
    XM("parse/xmatrix_many_spaces", "X-Matrix     origin=\"sp.example\"", "sp.example");
    XM("parse/xmatrix_tabs_around_commas", "X-Matrix key=\"k\"\t,\torigin=\"t.example\" ,  sig=\"s\"", "t.example");
    XM("parse/xmatrix_bws_around_equals", "X-Matrix origin = \"bws.example\" , key=k", "bws.example");
    XM("parse/xmatrix_quoted_escape", "X-Matrix origin=\"a\\\"b\\\\c\\d\"", "a\"b\\cd");
    XM("parse/xmatrix_quoted_comma_space", "X-Matrix key=\"a, b\",origin=\"o.example\"", "o.example");
    XM("parse/xmatrix_unknown_ignored", "X-Matrix foo=bar,origin=o.example,baz=\"q\\\"x\"", "o.example");
    XM("parse/xmatrix_duplicate_other_ok", "X-Matrix key=a,key=b,origin=o.example", "o.example");
    XM("parse/xmatrix_trailing_comma", "X-Matrix origin=o.example,", "o.example");
    XM("parse/xmatrix_empty_elements", "X-Matrix , ,origin=o.example,,key=k", "o.example");
    XM("parse/xmatrix_leading_space", "  X-Matrix origin=o.example", "o.example");
    XM("parse/xmatrix_trailing_ows", "X-Matrix origin=o.example \t", "o.example");
    XM("parse/xmatrix_utf8_quoted", "X-Matrix origin=\"\xc3\xa9.example\"", "\xc3\xa9.example");
    XM("parse/xmatrix_originx_not_origin", "X-Matrix originx=no,origin=yes", "yes");

    /* two Authorization headers merged into one line: the first one's origin */
    XM("parse/xmatrix_merged_headers", "X-Matrix origin=a.example,key=\"k1\",sig=\"s\", X-Matrix origin=a.example,key=\"k2\",sig=\"t\"", "a.example");
    XMR("parse/xmatrix_merged_first_lacks_origin", "X-Matrix key=k1, X-Matrix origin=a.example", -1);
    XMR("parse/xmatrix_scheme_word_as_param", "X-Matrix origin=a, X-Matrixy b=c", -1);
    XMR("parse/xmatrix_missing_origin", "X-Matrix key=\"k\",sig=\"s\"", -1);
    XMR("parse/xmatrix_duplicate_origin", "X-Matrix origin=a,key=k,origin=b", -1);
    XMR("parse/xmatrix_duplicate_origin_same", "X-Matrix origin=a,Origin=a", -1);
    XMR("parse/xmatrix_bearer", "Bearer syt_x", 0);
    XMR("parse/xmatrix_other_scheme_prefix", "X-Matrixx origin=a", 0);
    XMR("parse/xmatrix_short_scheme", "X-Matri origin=a", 0);
    XMR("parse/xmatrix_empty", "", 0);
    XMR("parse/xmatrix_only_spaces", "    ", 0);
    XMR("parse/xmatrix_dash", "-", 0);
    XMR("parse/xmatrix_scheme_only", "X-Matrix", -1);
    XMR("parse/xmatrix_scheme_space_only", "X-Matrix   ", -1);
    XMR("parse/xmatrix_tab_after_scheme", "X-Matrix\torigin=a", -1);
    XMR("parse/xmatrix_unterminated_quote", "X-Matrix origin=\"abc", -1);
    XMR("parse/xmatrix_trailing_backslash", "X-Matrix origin=\"abc\\", -1);
    XMR("parse/xmatrix_empty_quoted", "X-Matrix origin=\"\"", -1);
    XMR("parse/xmatrix_empty_unquoted", "X-Matrix origin=,key=k", -1);
    XMR("parse/xmatrix_empty_at_end", "X-Matrix origin=", -1);
    XMR("parse/xmatrix_no_equals", "X-Matrix origin", -1);
    XMR("parse/xmatrix_token68", "X-Matrix b3JpZ2lu==", -1);
    XMR("parse/xmatrix_space_in_unquoted", "X-Matrix origin=a b", -1);
    XMR("parse/xmatrix_garbage_after_quote", "X-Matrix origin=\"a\"x", -1);
    XMR("parse/xmatrix_quote_in_unquoted", "X-Matrix origin=a\"b\"", -1);
    XM("parse/xmatrix_semicolon_in_unquoted", "X-Matrix origin=a;key=k", "a;key=k"); /* lenient: any visible char but , " \\ */
    XMR("parse/xmatrix_bad_name", "X-Matrix ,=x,origin=a", -1);
    XMR("parse/xmatrix_control_in_quoted", "X-Matrix origin=\"a\x01\"", -1);
    h = "X-Matrix origin=\"a\0b\"";
    CHECK("parse/xmatrix_nul_in_quoted", sr_xmatrix_origin(h, 21, d, sizeof d) == -1);
    h = "X-Matrix origin=a\0b";
    CHECK("parse/xmatrix_nul_in_unquoted", sr_xmatrix_origin(h, 19, d, sizeof d) == -1);
    h = "X-Matrix origin=ab,key=k";
    n = sr_xmatrix_origin(h, 18, d, sizeof d);
    CHECK_STR("parse/xmatrix_len_respected", d, n, "ab");
    CHECK("parse/xmatrix_null", sr_xmatrix_origin(NULL, 0, d, sizeof d) == 0);
    h = "X-Matrix origin=\"abcdef\"";
    CHECK("parse/xmatrix_dst_small_quoted", sr_xmatrix_origin(h, strlen(h), d, 5) == -1);
    h = "X-Matrix origin=abcdef";
    CHECK("parse/xmatrix_dst_small_unquoted", sr_xmatrix_origin(h, strlen(h), d, 5) == -1);
    n = sr_xmatrix_origin(h, strlen(h), d, 6);
    CHECK_STR("parse/xmatrix_dst_exact", d, n, "abcdef");

    /* 64 KiB values: a huge unknown param is skipped, a huge origin fits
     * only a huge buffer */
    {
        char *big = malloc(BIG + 64), *out = malloc(BIG);
        size_t o;
        if (big && out) {
            o = (size_t)sprintf(big, "X-Matrix sig=\"");
            memset(big + o, 'S', BIG);
            o += BIG;
            o += (size_t)sprintf(big + o, "\",origin=big.example");
            n = sr_xmatrix_origin(big, o, out, BIG);
            CHECK_STR("parse/xmatrix_64k_sig", out, n, "big.example");
            o = (size_t)sprintf(big, "X-Matrix origin=");
            memset(big + o, 'o', BIG);
            o += BIG;
            CHECK("parse/xmatrix_64k_origin_small_dst", sr_xmatrix_origin(big, o, d, sizeof d) == -1);
            CHECK("parse/xmatrix_64k_origin_big_dst", sr_xmatrix_origin(big, o, out, BIG) == BIG);
        }
        free(big);
        free(out);
    }
#undef XM
#undef XMR
}

static void test_paths(void)
{
    char d[256];
    long n;
    const char *p;
    /* Kept as written; clang-format would spread each macro over many lines. */
    /* clang-format off */
#define ROOM(name, path, want) do { p = (path); n = sr_room_from_path(p, strlen(p), d, sizeof d); \
        CHECK_STR(name, d, n, want); } while (0)
#define ROOMR(name, path, want) do { p = (path); n = sr_room_from_path(p, strlen(p), d, sizeof d); \
        CHECK(name, n == (want)); } while (0)
    /* clang-format on */

    ROOM("parse/room_raw", "/_matrix/client/v3/rooms/!abc:hs/send/m.room.message/1", "!abc:hs");
    ROOM("parse/room_encoded", "/_matrix/client/v3/rooms/%21abc%3Ahs/send/m.room.message/1", "!abc:hs");
    ROOM("parse/room_encoded_lower", "/_matrix/client/v3/rooms/%21abc%3ahs/messages", "!abc:hs");
    ROOM("parse/room_alias_encoded", "/_matrix/client/v3/join/%23alias%3Ahs", "#alias:hs");
    ROOM("parse/room_alias_raw_hash_encoded_only", "/_matrix/client/v3/join/%23a%3Ahs?server_name=x", "#a:hs");
    ROOM("parse/room_knock", "/_matrix/client/v3/knock/!k:hs", "!k:hs");
    ROOM("parse/room_r0", "/_matrix/client/r0/rooms/!r0:hs/state", "!r0:hs");
    ROOM("parse/room_v1", "/_matrix/client/v1/rooms/!v1:hs/hierarchy", "!v1:hs");
    ROOM("parse/room_api_v1", "/_matrix/client/api/v1/rooms/!a:hs/initialSync", "!a:hs");
    ROOM("parse/room_unstable", "/_matrix/client/unstable/rooms/!u:hs/x", "!u:hs");
    ROOM("parse/room_unstable_msc", "/_matrix/client/unstable/org.matrix.msc2432/rooms/!m:hs/aliases", "!m:hs");
    ROOM("parse/room_after_user", "/_matrix/client/v3/user/%40u%3Ahs/rooms/!t:hs/tags", "!t:hs");
    ROOM("parse/room_first_occurrence", "/_matrix/client/v3/rooms/!a:hs/join/x", "!a:hs");
    ROOM("parse/room_join_before_rooms", "/_matrix/client/v3/join/!j:hs/rooms/x", "!j:hs");
    ROOM("parse/room_plus_kept", "/_matrix/client/v3/rooms/!a+b:hs/x", "!a+b:hs");
    ROOM("parse/room_encoded_slash", "/_matrix/client/v3/rooms/!a%2Fb:hs/x", "!a/b:hs");
    ROOM("parse/room_no_trailing", "/_matrix/client/v3/rooms/!end:hs", "!end:hs");
    ROOMR("parse/room_none_sync", "/_matrix/client/v3/sync", 0);
    ROOMR("parse/room_none_federation", "/_matrix/federation/v1/send/123", 0);
    ROOMR("parse/room_none_media", "/_matrix/media/v3/download/hs/rooms/x", 0);
    ROOMR("parse/room_unknown_version", "/_matrix/client/foo/rooms/!x:hs", 0);
    ROOMR("parse/room_api_without_v1", "/_matrix/client/api/rooms/!x:hs", 0);
    ROOMR("parse/room_empty_segment", "/_matrix/client/v3/rooms//send", 0);
    ROOMR("parse/room_ends_after_rooms", "/_matrix/client/v3/rooms/", 0);
    ROOMR("parse/room_rooms_no_slash", "/_matrix/client/v3/rooms", 0);
    ROOMR("parse/room_version_only", "/_matrix/client/v3", 0);
    ROOMR("parse/room_roomsx_not_rooms", "/_matrix/client/v3/roomsx/!a:hs", 0);
    ROOMR("parse/room_prefix_not_at_start", "/x/_matrix/client/v3/rooms/!a:hs", 0);
    ROOMR("parse/room_bad_escape", "/_matrix/client/v3/rooms/%zz/send", -1);
    ROOMR("parse/room_truncated_escape", "/_matrix/client/v3/rooms/!a%3", -1);
    ROOMR("parse/room_nul_escape", "/_matrix/client/v3/rooms/%00/x", -1);
    ROOMR("parse/room_empty", "", 0);
    ROOMR("parse/room_query_only", "/_matrix/client/v3/sync?x=/rooms/!a:hs", 0);
    p = "/_matrix/client/v3/rooms/!a\0b:hs/x";
    CHECK("parse/room_raw_nul", sr_room_from_path(p, 34, d, sizeof d) == -1);
    p = "/_matrix/client/v3/rooms/!abcdef:hs/x";
    CHECK("parse/room_dst_small", sr_room_from_path(p, strlen(p), d, 4) == -1);
    CHECK("parse/room_null", sr_room_from_path(NULL, 0, d, sizeof d) == 0);
    {
        char *big = malloc(BIG + 64), *out = malloc(BIG);
        size_t o;
        if (big && out) {
            o = (size_t)sprintf(big, "/_matrix/client/v3/rooms/");
            memset(big + o, 'r', BIG);
            o += BIG;
            CHECK("parse/room_64k_dst_small", sr_room_from_path(big, o, d, sizeof d) == -1);
            CHECK("parse/room_64k_dst_big", sr_room_from_path(big, o, out, BIG) == BIG);
        }
        free(big);
        free(out);
    }

    /* profile */
    /* Kept as written; clang-format would spread each macro over many lines. */
    /* clang-format off */
#define PROF(name, path, want) do { p = (path); n = sr_profile_user_from_path(p, strlen(p), d, sizeof d); \
        CHECK_STR(name, d, n, want); } while (0)
#define PROFR(name, path, want) do { p = (path); n = sr_profile_user_from_path(p, strlen(p), d, sizeof d); \
        CHECK(name, n == (want)); } while (0)
    /* clang-format on */
    PROF("parse/profile_encoded", "/_matrix/client/v3/profile/%40alice%3Ahs.example/displayname", "alice");
    PROF("parse/profile_raw", "/_matrix/client/v3/profile/@bob:hs", "bob");
    PROF("parse/profile_r0", "/_matrix/client/r0/profile/@carol:hs/avatar_url", "carol");
    PROF("parse/profile_bare_localpart", "/_matrix/client/v3/profile/dave", "dave");
    PROFR("parse/profile_none", "/_matrix/client/v3/sync", 0);
    PROFR("parse/profile_empty_localpart", "/_matrix/client/v3/profile/%40%3Ahs", 0);
    PROFR("parse/profile_empty_segment", "/_matrix/client/v3/profile//displayname", 0);
    PROFR("parse/profile_bad_escape", "/_matrix/client/v3/profile/%4/displayname", -1);
    PROFR("parse/profile_nul", "/_matrix/client/v3/profile/%00/displayname", -1);
    p = "/_matrix/client/v3/profile/@abcdefgh:hs";
    CHECK("parse/profile_dst_small", sr_profile_user_from_path(p, strlen(p), d, 4) == -1);
    {
        char *big = malloc(BIG + 64);
        size_t o;
        if (big) {
            o = (size_t)sprintf(big, "/_matrix/client/v3/profile/@");
            memset(big + o, 'u', BIG);
            o += BIG;
            CHECK("parse/profile_64k", sr_profile_user_from_path(big, o, d, sizeof d) == -1);
        }
        free(big);
    }
#undef ROOM
#undef ROOMR
#undef PROF
#undef PROFR
}

/* sr_query_raw: found by form-decoded name, value returned raw. */
static void test_query_raw(void)
{
    const char *v = NULL;
    const char *q = "filter=1&since=s1%5F2&full_state=true&pos=&n%61me=x&a+b=y&flag";
    CHECK_STR("parse/query_raw_value", v, (sr_query_raw(q, strlen(q), "since", &v)), "s1%5F2");
    CHECK("parse/query_raw_empty", sr_query_raw(q, strlen(q), "pos", &v) == 0);
    CHECK("parse/query_raw_absent", sr_query_raw(q, strlen(q), "missing", &v) == -1);
    CHECK("parse/query_raw_encoded_name", sr_query_raw(q, strlen(q), "name", &v) == 1 && v[0] == 'x');
    CHECK("parse/query_raw_plus_name", sr_query_raw(q, strlen(q), "a b", &v) == 1 && v[0] == 'y');
    CHECK("parse/query_raw_bare_name", sr_query_raw(q, strlen(q), "flag", &v) == 0);
    CHECK("parse/query_raw_prefix_not_name", sr_query_raw("sinc=1&sincex=2", 15, "since", &v) == -1);
    CHECK("parse/query_raw_empty_query", sr_query_raw("", 0, "since", &v) == -1);
    CHECK("parse/query_raw_first_wins", sr_query_raw("since=&since=s9", 15, "since", &v) == 0);
}

void test_parse(void)
{
    test_query_raw();
    test_methods();
    test_pct();
    test_query();
    test_b64();
    test_token_find();
    test_classify();
    test_macaroons();
    test_user_localpart();
    test_localpart();
    test_xmatrix();
    test_paths();
}
