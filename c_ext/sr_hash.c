/*
 * sr_hash.c - SipHash-2-4 (64-bit output, 128-bit key), key derivation from
 * a secret string, XXH64 (the hash HAProxy's xxh64 converter computes) and
 * hex formatting. Written from the algorithm descriptions (Aumasson &
 * Bernstein, "SipHash: a fast short-input PRF"; Collet, "xxHash fast digest
 * algorithm", XXH64).
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

/* ------------------------------------------------------------------------ */
/* XXH64.                                                                    */
#define XP1 0x9E3779B185EBCA87ULL
#define XP2 0xC2B2AE3D27D4EB4FULL
#define XP3 0x165667B19E3779F9ULL
#define XP4 0x85EBCA77C2B2AE63ULL
#define XP5 0x27D4EB2F165667C5ULL

static uint64_t load32le(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24;
}

static uint64_t xxh_round(uint64_t acc, uint64_t lane)
{
    acc += lane * XP2;
    acc = ROTL(acc, 31);
    return acc * XP1;
}

static uint64_t xxh_merge(uint64_t h, uint64_t acc)
{
    h ^= xxh_round(0, acc);
    return h * XP1 + XP4;
}

/* The 32-byte stripes of XXH64: the running hash after them; *done is set
 * to the number of bytes consumed (a multiple of 32, 0 for short input). */
static uint64_t xxh64_stripes(const unsigned char *in, size_t len, uint64_t seed,
                              size_t *done)
{
    uint64_t v1 = seed + XP1 + XP2, v2 = seed + XP2, v3 = seed, v4 = seed - XP1, h;
    size_t i = 0;
    *done = 0;
    if (len < 32) return seed + XP5;
    for (; i + 32 <= len; i += 32) {
        v1 = xxh_round(v1, load64le(in + i));
        v2 = xxh_round(v2, load64le(in + i + 8));
        v3 = xxh_round(v3, load64le(in + i + 16));
        v4 = xxh_round(v4, load64le(in + i + 24));
    }
    *done = i;
    h = ROTL(v1, 1) + ROTL(v2, 7) + ROTL(v3, 12) + ROTL(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    return xxh_merge(h, v4);
}

/* XXH64 of data[0..len) with seed (data may be NULL when len is 0): the
 * value HAProxy's `xxh64(<seed>)` converter gives (as an unsigned 64-bit
 * number). Pure, never fails. */
uint64_t sr_xxh64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *in = data;
    size_t i;
    uint64_t h = xxh64_stripes(in, len, seed, &i);
    h += (uint64_t)len;
    for (; i + 8 <= len; i += 8) {
        h ^= xxh_round(0, load64le(in + i));
        h = ROTL(h, 27) * XP1 + XP4;
    }
    if (i + 4 <= len) {
        h ^= load32le(in + i) * XP1;
        h = ROTL(h, 23) * XP2 + XP3;
        i += 4;
    }
    for (; i < len; i++) {
        h ^= (uint64_t)in[i] * XP5;
        h = ROTL(h, 11) * XP1;
    }
    h ^= h >> 33;
    h *= XP2;
    h ^= h >> 29;
    h *= XP3;
    h ^= h >> 32;
    return h;
}
