/*
 * sr_hash.c - SipHash-2-4 (64-bit output, 128-bit key), key derivation from
 * a secret string, and hex formatting. Written from the algorithm
 * description (Aumasson & Bernstein, "SipHash: a fast short-input PRF").
 *
 * Pure functions: no allocation, no static state; none of them can fail.
 */
#include "sr_core.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* Little-endian 64-bit load, independent of host byte order/alignment. */
static uint64_t load64le(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

typedef struct {
    uint64_t v0, v1, v2, v3;
} sip_state;

static void sip_round(sip_state *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static void sip_compress(sip_state *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s); /* c = 2 compression rounds */
    sip_round(s);
    s->v0 ^= m;
}

/* SipHash-2-4 of data[0..len) under k (data may be NULL when len is 0).
 * Pure, never fails. */
uint64_t sr_siphash(const sr_sipkey *k, const void *data, size_t len)
{
    const unsigned char *in = data;
    sip_state s;
    size_t i, full = len & ~(size_t)7;
    uint64_t last = (uint64_t)(len & 0xff) << 56;

    s.v0 = k->k0 ^ 0x736f6d6570736575ULL; /* "somepseu" */
    s.v1 = k->k1 ^ 0x646f72616e646f6dULL; /* "dorandom" */
    s.v2 = k->k0 ^ 0x6c7967656e657261ULL; /* "lygenera" */
    s.v3 = k->k1 ^ 0x7465646279746573ULL; /* "tedbytes" */

    for (i = 0; i < full; i += 8)
        sip_compress(&s, load64le(in + i));
    for (i = 0; i < (len & 7); i++)
        last |= (uint64_t)in[full + i] << (8 * i);
    sip_compress(&s, last);

    s.v2 ^= 0xff;
    sip_round(&s); /* d = 4 finalization rounds */
    sip_round(&s);
    sip_round(&s);
    sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

/* Two SipHash passes over the secret under two fixed, unrelated keys (the
 * constants are arbitrary; changing them changes every hash). Deterministic;
 * an empty secret is allowed (callers warn about weak secrets). */
sr_sipkey sr_sipkey_from_secret(const char *secret, size_t len)
{
    static const sr_sipkey ka = { 0x73796e726f757465ULL, 0x2d6b65792d412d31ULL };
    static const sr_sipkey kb = { 0x73796e726f757465ULL, 0x2d6b65792d422d32ULL };
    sr_sipkey out;
    if (!secret) {
        secret = "";
        len = 0;
    }
    out.k0 = sr_siphash(&ka, secret, len);
    out.k1 = sr_siphash(&kb, secret, len);
    return out;
}

/* v as 16 lowercase hex digits and a NUL in out. Never fails. */
void sr_hex64(uint64_t v, char out[17])
{
    static const char digits[] = "0123456789abcdef";
    int i;
    for (i = 15; i >= 0; i--) {
        out[i] = digits[v & 0xf];
        v >>= 4;
    }
    out[16] = '\0';
}
