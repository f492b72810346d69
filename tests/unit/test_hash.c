/* test_hash.c - SipHash-2-4 reference vectors, key derivation, hex. */
#include "unit.h"
#include "sr_core.h"

#include <stdint.h>

static sr_sipkey ref_key(void)
{
    /* key bytes 00 01 .. 0f, read little-endian as the algorithm says */
    sr_sipkey k;
    k.k0 = 0x0706050403020100ULL;
    k.k1 = 0x0f0e0d0c0b0a0908ULL;
    return k;
}

void test_hash(void)
{
    sr_sipkey k = ref_key(), a, b, c;
    unsigned char msg[64];
    char hex[17];
    size_t i;
    uint64_t h1, h2;

    for (i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)i;

    /* Reference vectors from the SipHash paper / reference implementation */
    CHECK("hash/siphash_vector_15", sr_siphash(&k, msg, 15) == 0xa129ca6149be45e5ULL);
    CHECK("hash/siphash_vector_0", sr_siphash(&k, msg, 0) == 0x726fdb47dd0e0e31ULL);
    /* boundaries around 8-byte blocks must all differ and be stable */
    h1 = sr_siphash(&k, msg, 7);
    h2 = sr_siphash(&k, msg, 8);
    CHECK("hash/siphash_7_vs_8_differ", h1 != h2);
    CHECK("hash/siphash_deterministic", sr_siphash(&k, msg, 8) == h2);
    CHECK("hash/siphash_16_vs_17_differ",
          sr_siphash(&k, msg, 16) != sr_siphash(&k, msg, 17));
    /* unaligned input gives the same answer as aligned */
    {
        unsigned char buf[80];
        memcpy(buf + 3, msg, 15);
        CHECK("hash/siphash_unaligned", sr_siphash(&k, buf + 3, 15) == 0xa129ca6149be45e5ULL);
    }
    /* NUL bytes count */
    CHECK("hash/siphash_nul_bytes_count",
          sr_siphash(&k, "a\0b", 3) != sr_siphash(&k, "a\0c", 3));

    /* key derivation: deterministic, secret-sensitive, length-sensitive */
    a = sr_sipkey_from_secret("s3cret", 6);
    b = sr_sipkey_from_secret("s3cret", 6);
    c = sr_sipkey_from_secret("s3creT", 6);
    CHECK("hash/sipkey_deterministic", a.k0 == b.k0 && a.k1 == b.k1);
    CHECK("hash/sipkey_secret_sensitive", a.k0 != c.k0 && a.k1 != c.k1);
    CHECK("hash/sipkey_halves_differ", a.k0 != a.k1);
    c = sr_sipkey_from_secret("s3cret\0", 7);
    CHECK("hash/sipkey_length_sensitive", a.k0 != c.k0);
    c = sr_sipkey_from_secret("", 0);
    CHECK("hash/sipkey_empty_ok", c.k0 != 0 || c.k1 != 0);
    c = sr_sipkey_from_secret(NULL, 0);
    b = sr_sipkey_from_secret("", 0);
    CHECK("hash/sipkey_null_is_empty", c.k0 == b.k0 && c.k1 == b.k1);
    CHECK("hash/keyed_differs",
          sr_siphash(&a, "user:alice", 10) != sr_siphash(&k, "user:alice", 10));

    /* XXH64: the published vectors (seed 0), and seeded values that
     * HAProxy's xxh64(<seed>) converter gives (2.6 and 3.0) */
    CHECK("hash/xxh64_empty", sr_xxh64(NULL, 0, 0) == 0xef46db3751d8e999ULL);
    CHECK("hash/xxh64_a", sr_xxh64("a", 1, 0) == 0xd24ec4f1a98c6e5bULL);
    CHECK("hash/xxh64_abc", sr_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ULL);
    CHECK("hash/xxh64_seeded_short", sr_xxh64("u:dXNlcjAwMDg", 13, 1234567890123ULL) == 0xd35c94148386a20eULL);
    CHECK("hash/xxh64_seeded_max", sr_xxh64("u:dXNlcjAwMDg", 13, 9223372036854775807ULL) == 0xcbdb982c6fa80764ULL);
    {
        char y[100];
        memset(y, 'y', sizeof y);
        CHECK("hash/xxh64_seeded_stripes", sr_xxh64(y, sizeof y, 1234567890123ULL) == 0x4014f93661b76cd7ULL);
    }

    /* hex */
    sr_hex64(0xa129ca6149be45e5ULL, hex);
    CHECK_STR("hash/hex_vector", hex, strlen(hex), "a129ca6149be45e5");
    sr_hex64(0, hex);
    CHECK_STR("hash/hex_zero_padded", hex, strlen(hex), "0000000000000000");
    sr_hex64(UINT64_MAX, hex);
    CHECK_STR("hash/hex_max", hex, strlen(hex), "ffffffffffffffff");
    sr_hex64(0x0102030405060708ULL, hex);
    CHECK_STR("hash/hex_order", hex, strlen(hex), "0102030405060708");
}
