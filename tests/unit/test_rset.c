/* test_rset.c - the regex set: set == naive loop on many subjects, first
 * match in list order, method masks, bad patterns, match limits, and the
 * JIT result against PCRE2's interpreter. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_core.h"
#include "unit.h"

/* Every worker route regex of Synapse's docs/workers.md, plus those of
 * later releases, in document order. */
static const char *const ref_patterns[] = {
    "^/_matrix/client/v3/keys/upload",
    "^/_matrix/client/(r0|v3)/sync$",
    "^/_matrix/client/(api/v1|r0|v3)/events$",
    "^/_matrix/client/(api/v1|r0|v3)/initialSync$",
    "^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$",
    "^/_matrix/federation/v1/event/",
    "^/_matrix/federation/v1/state/",
    "^/_matrix/federation/v1/state_ids/",
    "^/_matrix/federation/v1/backfill/",
    "^/_matrix/federation/v1/get_missing_events/",
    "^/_matrix/federation/v1/publicRooms",
    "^/_matrix/federation/v1/query/",
    "^/_matrix/federation/v1/make_join/",
    "^/_matrix/federation/v1/make_leave/",
    "^/_matrix/federation/(v1|v2)/send_join/",
    "^/_matrix/federation/(v1|v2)/send_leave/",
    "^/_matrix/federation/v1/make_knock/",
    "^/_matrix/federation/v1/send_knock/",
    "^/_matrix/federation/(v1|v2)/invite/",
    "^/_matrix/federation/v1/event_auth/",
    "^/_matrix/federation/v1/timestamp_to_event/",
    "^/_matrix/federation/v1/exchange_third_party_invite/",
    "^/_matrix/federation/v1/user/devices/",
    "^/_matrix/key/v2/query",
    "^/_matrix/federation/v1/hierarchy/",
    "^/_matrix/federation/v1/send/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$",
    "^/_matrix/client/v1/rooms/.*/hierarchy$",
    "^/_matrix/client/(v1|unstable)/rooms/.*/relations/",
    "^/_matrix/client/v1/rooms/.*/threads$",
    "^/_matrix/client/unstable/im.nheko.summary/summary/.*$",
    "^/_matrix/client/(r0|v3|unstable)/account/3pid$",
    "^/_matrix/client/(r0|v3|unstable)/account/whoami$",
    "^/_matrix/client/(r0|v3|unstable)/devices$",
    "^/_matrix/client/versions$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$",
    "^/_matrix/client/v1/rooms/.*/timestamp_to_event$",
    "^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/.*/aliases",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/search$",
    "^/_matrix/client/(r0|v3|unstable)/user/.*/filter(/|$)",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/directory/room/.*$",
    "^/_matrix/client/(r0|v3|unstable)/capabilities$",
    "^/_matrix/client/(r0|v3|unstable)/notifications$",
    "^/_matrix/client/(r0|v3|unstable)/keys/query$",
    "^/_matrix/client/(r0|v3|unstable)/keys/changes$",
    "^/_matrix/client/(r0|v3|unstable)/keys/claim$",
    "^/_matrix/client/(r0|v3|unstable)/room_keys/",
    "^/_matrix/client/(r0|v3|unstable)/keys/upload/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
    "^/_matrix/client/(r0|v3|unstable)/register$",
    "^/_matrix/client/(r0|v3|unstable)/register/available$",
    "^/_matrix/client/v1/register/m.login.registration_token/validity$",
    "^/_matrix/client/(r0|v3|unstable)/password_policy$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/join/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/knock/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
    "^/_matrix/client/(r0|v3|unstable)/.*/tags",
    "^/_matrix/client/(r0|v3|unstable)/.*/account_data",
    "^/_matrix/client/(r0|v3|unstable)/rooms/.*/receipt",
    "^/_matrix/client/(r0|v3|unstable)/rooms/.*/read_markers",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/presence/",
    "^/_matrix/client/(r0|v3|unstable)/user_directory/search$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/",
    "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/login/sso/redirect",
    "^/_synapse/client/pick_idp$",
    "^/_synapse/client/pick_username",
    "^/_synapse/client/new_user_consent$",
    "^/_synapse/client/sso_register$",
    "^/_synapse/client/oidc/callback$",
    "^/_synapse/client/saml2/authn_response$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/login/cas/ticket$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/typing",
    "^/_matrix/client/(r0|v3|unstable)/sendToDevice/",
    "^/_synapse/admin/v1/purge_media_cache$",
    "^/_synapse/admin/v1/room/.*/media.*$",
    "^/_synapse/admin/v1/user/.*/media.*$",
    "^/_synapse/admin/v1/media/.*$",
    "^/_synapse/admin/v1/quarantine_media/.*$",
    "^/_synapse/admin/v1/users/.*/media$",
    "^/_matrix/federation/v1/version$",
    "^/_matrix/client/v1/room_summary/.*$",
    "^/_matrix/client/(r0|v3|unstable)/account/deactivate$",
    "^/_matrix/client/(r0|v3)/delete_devices$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/devices(/|$)",
    "^/_synapse/admin/v1/rooms/[^/]+$",
    "^/_matrix/client/(r0|v3|unstable)/keys/upload",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/keys/device_signing/upload$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/keys/signatures/upload$",
    "^/_matrix/client/unstable/org.matrix.msc4140/delayed_events(/.*/restart)?$",
    "^/_synapse/admin/v2/users/[^/]+$",
    "^/_matrix/client/unstable/io.element.msc4306/.*",
    "^/_matrix/client/unstable/org.matrix.simplified_msc3575/sync$",
    "^/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device(/.*)?$",
    "^/_matrix/client/unstable/org.matrix.msc4143/rtc/transports$",
};
#define N_REF (sizeof ref_patterns / sizeof ref_patterns[0])

/* Hand-picked subjects: real paths, near misses and hostile ones. */
/* Kept packed as a table; clang-format would put one item per line. */
/* clang-format off */
static const char *const subjects[] = {
    "/_matrix/client/v3/sync", "/_matrix/client/r0/sync", "/_matrix/client/v3/sync/",
    "/_matrix/client/api/v1/sync", "/_matrix/client/v3/events", "/_matrix/client/api/v1/initialSync",
    "/_matrix/client/v3/rooms/!abc:hs/initialSync", "/_matrix/client/v3/rooms/!a/b/initialSync",
    "/_matrix/federation/v1/event/$x", "/_matrix/federation/v2/send_join/!r/$e",
    "/_matrix/federation/v1/send/123", "/_matrix/federation/v1/send", "/_matrix/federation/v1/version",
    "/_matrix/key/v2/query", "/_matrix/key/v2/query/x", "/_matrix/key/v2/server",
    "/_matrix/client/v3/createRoom", "/_matrix/client/unstable/createRoom",
    "/_matrix/client/v3/rooms/!r:hs/joined_members", "/_matrix/client/v3/rooms/!r:hs/context/$e",
    "/_matrix/client/v3/rooms/!r:hs/members", "/_matrix/client/v3/rooms/!r:hs/state",
    "/_matrix/client/v3/rooms/!r:hs/state/m.room.name/", "/_matrix/client/v1/rooms/!r/hierarchy",
    "/_matrix/client/v1/rooms/!r/relations/$e", "/_matrix/client/unstable/rooms/!r/relations/$e",
    "/_matrix/client/unstable/im.nheko.summary/summary/x", "/_matrix/client/v3/account/3pid",
    "/_matrix/client/v3/account/whoami", "/_matrix/client/v3/devices", "/_matrix/client/v3/devices/ABC",
    "/_matrix/client/api/v1/devices", "/_matrix/client/versions", "/_matrix/client/v3/voip/turnServer",
    "/_matrix/client/v3/rooms/!r/event/$e", "/_matrix/client/v3/joined_rooms",
    "/_matrix/client/unstable/foo/rooms/!r/aliases", "/_matrix/client/v3/search",
    "/_matrix/client/v3/user/@a:hs/filter", "/_matrix/client/v3/user/@a:hs/filter/1",
    "/_matrix/client/v3/user/@a:hs/filterx", "/_matrix/client/v3/directory/room/%23a:hs",
    "/_matrix/client/v3/keys/query", "/_matrix/client/v3/keys/upload", "/_matrix/client/v3/keys/upload/",
    "/_matrix/client/r0/keys/upload/x", "/_matrix/client/v3/keys/device_signing/upload",
    "/_matrix/client/v3/login", "/_matrix/client/v3/login/sso/redirect/oidc",
    "/_matrix/client/v3/register", "/_matrix/client/v3/register/available",
    "/_matrix/client/v1/register/m.login.registration_token/validity",
    "/_matrix/client/v3/rooms/!r:hs/send/m.room.message/txn1", "/_matrix/client/v3/rooms/!r:hs/redact/$e/t",
    "/_matrix/client/v3/rooms/!r:hs/join", "/_matrix/client/v3/rooms/!r:hs/kick",
    "/_matrix/client/v3/rooms/!r:hs/kickx", "/_matrix/client/v3/join/%23a:hs", "/_matrix/client/v3/knock/!r",
    "/_matrix/client/v3/profile/@a:hs/displayname", "/_matrix/client/v3/user/@a:hs/account_data/x",
    "/_matrix/client/v3/user/@a:hs/rooms/!r/tags/u.x", "/_matrix/client/v3/rooms/!r/receipt/m.read/$e",
    "/_matrix/client/v3/rooms/!r/read_markers", "/_matrix/client/v3/presence/@a:hs/status",
    "/_matrix/client/v3/user_directory/search", "/_matrix/client/v3/pushrules/global/",
    "/_matrix/client/unstable/org.matrix.msc4140/delayed_events",
    "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/x/restart",
    "/_matrix/client/v3/rooms/!r/messages", "/_matrix/client/v3/rooms/!r/messagesx",
    "/_synapse/client/pick_idp", "/_synapse/client/pick_username/account", "/_synapse/client/oidc/callback",
    "/_synapse/client/saml2/authn_response", "/_matrix/client/v3/login/cas/ticket",
    "/_matrix/client/v3/rooms/!r/typing/@a:hs", "/_matrix/client/v3/sendToDevice/m.x/1",
    "/_synapse/admin/v1/purge_media_cache", "/_synapse/admin/v1/room/!r/media", "/_synapse/admin/v1/media/x",
    "/_synapse/admin/v1/users/@a:hs/media", "/_synapse/admin/v1/rooms/!r", "/_synapse/admin/v1/rooms/!r/x",
    "/_synapse/admin/v2/users/@a:hs", "/_matrix/client/v1/room_summary/!r",
    "/_matrix/client/unstable/io.element.msc4306/x", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
    "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device",
    "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_devicex",
    "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", "/_matrix/media/v3/download/x",
    "/", "", "_matrix/client/v3/sync", "//_matrix/client/v3/sync", "/_MATRIX/client/v3/sync",
    "/_matrix/client/v3/sync\n", "/_matrix/client/v3/sync?since=x", "/_matrix", "/_matrix/client/",
    "/_synapse/replication/send_event/x", "/_synapse/mas/x", "/_matrix/client/v3/rooms/",
    "/_matrix/client/v3/rooms//send", "/_matrix/client/unstable/x/y/z/rooms/a/aliases",
};
/* clang-format on */
#define N_SUBJ (sizeof subjects / sizeof subjects[0])

static const unsigned mbits[] = {
    0, SR_M_GET, SR_M_HEAD, SR_M_POST, SR_M_PUT, SR_M_DELETE, SR_M_OPTIONS, SR_M_PATCH, SR_M_OTHER,
    SR_M_GET | SR_M_HEAD, SR_M_ALL
};
#define N_MBITS (sizeof mbits / sizeof mbits[0])

/* Deterministic PRNG (xorshift64*), local state only. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* A random path made of segments that occur in the route patterns. */
static size_t random_path(uint64_t *st, char *buf, size_t cap)
{
    /* Kept packed as a table; clang-format would put one item per line. */
    /* clang-format off */
    static const char *const seg[] = {
        "_matrix", "client", "federation", "key", "v2", "query", "r0", "v3", "v1", "api/v1",
        "unstable", "rooms", "!r:hs", "%21r%3Ahs", "send", "sync", "state", "keys", "upload",
        "events", "initialSync", "join", "kick", "messages", "tags", "account_data", "user",
        "@a:hs", "profile", "typing", "receipt", "pushrules", "devices", "_synapse", "admin",
        "media", "client", "login", "sso", "redirect", "filter", "x", "", "send_join",
        "org.matrix.msc4140", "delayed_events", "restart", "io.element.msc4306", "presence",
        "directory", "room", "aliases", "relations", "hierarchy", "context", "search",
    };
    /* clang-format on */
    size_t n = 0, k = 1 + rnd(st) % 8;
    const size_t nseg = sizeof seg / sizeof seg[0];
    int real_start = (int)(rnd(st) % 4);
    if (real_start) {
        const char *pre = (rnd(st) & 1) ? "/_matrix/client/v3" : "/_matrix/client/r0";
        if (real_start == 3) pre = "/_matrix/federation/v1";
        n = strlen(pre);
        memcpy(buf, pre, n);
    }
    for (size_t i = 0; i < k; i++) {
        const char *s = seg[rnd(st) % nseg];
        size_t l = strlen(s);
        if (n + l + 2 >= cap) break;
        buf[n++] = '/';
        memcpy(buf + n, s, l);
        n += l;
    }
    if (rnd(st) % 5 == 0 && n + 2 < cap) buf[n++] = '/';
    return n;
}

/* 1 if set and loop agree for subject on every method bit. */
static int agree(const sr_rset *s, const char *subj, size_t len)
{
    for (size_t m = 0; m < N_MBITS; m++)
        if (sr_rset_match(s, subj, len, mbits[m]) != sr_rset_match_loop(s, subj, len, mbits[m]))
            return 0;
    return 1;
}

/* Every string of length <= maxlen over alphabet a: set == loop. */
static int agree_exhaustive(const sr_rset *s, const char *a, size_t maxlen)
{
    size_t na = strlen(a);
    char buf[16];
    size_t idx[16];
    for (size_t len = 0; len <= maxlen; len++) {
        memset(idx, 0, sizeof idx);
        for (;;) {
            size_t i;
            for (i = 0; i < len; i++) buf[i] = a[idx[i]];
            if (!agree(s, buf, len)) {
                printf("# disagree on '%.*s'\n", (int)len, buf);
                return 0;
            }
            for (i = 0; i < len; i++) {
                if (++idx[i] < na) break;
                idx[i] = 0;
            }
            if (i == len) break;
        }
    }
    return 1;
}

static void test_reference_equivalence(void)
{
    sr_error err;
    sr_rset *s = sr_rset_new(ref_patterns, NULL, NULL, N_REF, &err);
    unsigned *masks = calloc(N_REF, sizeof *masks);
    int ok = 1, hits = 0;
    uint64_t st = 0x5eed1234abcdULL;
    CHECK("rset/ref_builds", s != NULL);
    if (!s) {
        printf("# %s\n", err.msg);
        free(masks);
        return;
    }
    CHECK("rset/ref_size", sr_rset_size(s) == N_REF);
    for (size_t i = 0; i < N_SUBJ; i++) {
        if (!agree(s, subjects[i], strlen(subjects[i]))) {
            printf("# disagree on '%s'\n", subjects[i]);
            ok = 0;
        }
        if (sr_rset_match(s, subjects[i], strlen(subjects[i]), 0) >= 0) hits++;
    }
    CHECK("rset/ref_subjects_set_equals_loop", ok);
    CHECK("rset/ref_subjects_mostly_match", hits > (int)(N_SUBJ * 2 / 3));
    ok = 1;
    for (int i = 0; i < 30000 && ok; i++) {
        char buf[256];
        size_t n = random_path(&st, buf, sizeof buf);
        if (!agree(s, buf, n)) {
            printf("# disagree on '%.*s'\n", (int)n, buf);
            ok = 0;
        }
    }
    CHECK("rset/ref_random_paths_set_equals_loop", ok);
    /* each pattern's own text (minus '^') is a plausible subject too */
    ok = 1;
    for (size_t i = 0; i < N_REF; i++)
        if (!agree(s, ref_patterns[i] + 1, strlen(ref_patterns[i]) - 1)) ok = 0;
    CHECK("rset/ref_pattern_texts_set_equals_loop", ok);
    sr_rset_free(s);

    /* the same with method masks: every third entry GET-only, every fifth PUT|POST */
    for (size_t i = 0; i < N_REF; i++)
        masks[i] = i % 3 == 0 ? SR_M_GET : (i % 5 == 0 ? (SR_M_PUT | SR_M_POST) : 0);
    s = sr_rset_new(ref_patterns, masks, NULL, N_REF, &err);
    CHECK("rset/ref_masked_builds", s != NULL);
    if (s) {
        ok = 1;
        st = 77;
        for (size_t i = 0; i < N_SUBJ; i++)
            if (!agree(s, subjects[i], strlen(subjects[i]))) ok = 0;
        for (int i = 0; i < 20000 && ok; i++) {
            char buf[256];
            size_t n = random_path(&st, buf, sizeof buf);
            if (!agree(s, buf, n)) ok = 0;
        }
        CHECK("rset/ref_masked_set_equals_loop", ok);
        sr_rset_free(s);
    }
    free(masks);
}

/* Patterns that stress the prefix extraction: quantified literals and
 * groups, top-level alternation, escapes, backreferences, lookbehind,
 * inline options, prefixes that are prefixes of each other, literal-only. */
static void test_tricky_equivalence(void)
{
    /* Kept packed as a table; clang-format would put one item per line. */
    /* clang-format off */
    static const char *const pats[] = {
        "^/a(b|bc)d", "^/ab?c", "^/x|^/y", "^/a\\.b", "^/a{2}b", "^/(a|ab)(c|bcd)",
        "^/q(?i)x", "^/r(x)\\1", "^/s[ab]c", "^/t(a|b)?z", "^/lit", "^/lit$", "^/(a|b|)c",
        "^/\\Qa.b\\E", "^/c(?<=/c)d", "^/d(a|b)+", "^/e(a|b)*x", "^/f(ab|a)b", "^/g\\/h",
        "^(/a|/b)c", "^/h\\d", "^/i(?:a|b)c", "^/j(a|(b))c", "^/k.", "^/(x)(y)\\2",
        "^/ab", "^/a", "^/", "^", "^/b\\b", "^/c\\Gd", "^/(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)x",
        "^/{", "^/a}", "^/abc(d|e)$",
        /* remainders verified natively (globs, superset and suffix rejects) */
        "^/a.*b$", "^/a.*b", "^/a.*/b.*$", "^/a[^/]+/b$", "^/a.*(b|cd)$", "^/a(b|c)$",
        "^/a.*b.*c", "^/ab.*", "^/a.*$", "^/a$", "^/(x|y).*/a", "^/a.*\\.b$", "^/a.*(/|$)",
        "^/a(/.*)?$", "^/a.*b\\$", "^/a.*b$x", "^/a.*?b$", "^/a.*+b", "^/b.*/c/.*$",
        "^/c(/|$)", "^/d.*/x/.*/y$", "^/x[^/]+$", "^/y.*d$", "^/z.*[ab]/c$", "^/ab.c$",
        "^/a.*(?:b|c)d$", "^/a.*/(b|/c)$", "^/a/.*a/b$", "^/b.*//", "^/c.*c.*c$",
        /* POSIX classes inside a class (the superset glob must skip them) */
        "^/a[[:alpha:]x]", "^/a[[:alpha:]x]/c$", "^/b([[:digit:]]|x)y", "^/c[]x]d",
    };
    /* clang-format on */
    const size_t n = sizeof pats / sizeof pats[0];
    sr_error err;
    sr_rset *s = sr_rset_new(pats, NULL, NULL, n, &err);
    CHECK("rset/tricky_builds", s != NULL);
    if (!s) {
        printf("# %s\n", err.msg);
        return;
    }
    CHECK("rset/tricky_exhaustive_set_equals_loop", agree_exhaustive(s, "/abcdxyz.{", 5));
    CHECK("rset/tricky_exhaustive_newline", agree_exhaustive(s, "/abcd\n", 6));
    sr_rset_free(s);
    /* each pattern alone (so earlier entries do not shadow later ones) */
    {
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            sr_rset *one = sr_rset_new(&pats[i], NULL, NULL, 1, &err);
            if (!one) {
                ok = 0;
                printf("# %s\n", err.msg);
                break;
            }
            if (!agree_exhaustive(one, "/abcdexyz", 4) || !agree_exhaustive(one, "/abc\n", 6)) {
                printf("# pattern %s\n", pats[i]);
                ok = 0;
            }
            sr_rset_free(one);
        }
        CHECK("rset/tricky_each_alone_set_equals_loop", ok);
    }
}

static void test_order_and_methods(void)
{
    static const char *const pats[] = {
        "^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/", /* GET only */
        "^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/", /* any */
        "^/_matrix/client/v3/.*",
        "^/_matrix/client/v3/sync$",
    };
    static const unsigned masks[] = { SR_M_GET | SR_M_HEAD, 0, SR_M_POST, 0 };
    sr_error err;
    sr_rset *s = sr_rset_new(pats, masks, NULL, 4, &err);
    const char *pr = "/_matrix/client/v3/pushrules/global/";
    const char *sy = "/_matrix/client/v3/sync";
    CHECK("rset/order_builds", s != NULL);
    if (!s) return;
    CHECK("rset/method_get_first", sr_rset_match(s, pr, strlen(pr), SR_M_GET) == 0);
    CHECK("rset/method_head_first", sr_rset_match(s, pr, strlen(pr), SR_M_HEAD) == 0);
    CHECK("rset/method_put_second", sr_rset_match(s, pr, strlen(pr), SR_M_PUT) == 1);
    CHECK("rset/method_any_first", sr_rset_match(s, pr, strlen(pr), 0) == 0);
    CHECK("rset/order_first_wins_post", sr_rset_match(s, sy, strlen(sy), SR_M_POST) == 2);
    CHECK("rset/order_mask_skips", sr_rset_match(s, sy, strlen(sy), SR_M_GET) == 3);
    CHECK("rset/loop_same_get", sr_rset_match_loop(s, pr, strlen(pr), SR_M_GET) == 0);
    CHECK("rset/loop_same_put", sr_rset_match_loop(s, pr, strlen(pr), SR_M_PUT) == 1);
    CHECK("rset/no_match", sr_rset_match(s, "/nope", 5, SR_M_GET) == -1);
    CHECK("rset/null_subject", sr_rset_match(s, NULL, 0, SR_M_GET) == -1);
    sr_rset_free(s);

    s = sr_rset_new(NULL, NULL, NULL, 0, &err);
    CHECK("rset/empty_set_builds", s != NULL);
    CHECK("rset/empty_set_no_match", sr_rset_match(s, "/", 1, 0) == -1);
    CHECK("rset/empty_set_size", sr_rset_size(s) == 0);
    sr_rset_free(s);
    sr_rset_free(NULL);
}

static void test_errors(void)
{
    static const char *const pats[] = { "^/ok", "^/fine$", "^/_matrix/(a|b" };
    static const char *const names[] = { "ok", "fine", "keys_upload" };
    sr_error err;
    sr_rset *s = sr_rset_new(pats, NULL, names, 3, &err);
    CHECK("rset/bad_pattern_null", s == NULL);
    CHECK("rset/bad_pattern_names_entry", err.at == SR_AT_ENTRY && err.index == 2 && err.name &&
                                              strcmp(err.name, "keys_upload") == 0);
    CHECK("rset/bad_pattern_offset", strncmp(err.msg, "offset 14: ", 11) == 0);
    CHECK("rset/bad_pattern_says_missing", strstr(err.msg, "missing") != NULL);
    s = sr_rset_new(pats, NULL, NULL, 3, &err);
    CHECK("rset/bad_pattern_no_name", s == NULL && err.at == SR_AT_ENTRY && err.index == 2 &&
                                          err.name == NULL);
    s = sr_rset_new(pats, NULL, NULL, 3, NULL);
    CHECK("rset/bad_pattern_no_err", s == NULL);
    s = sr_rset_new(NULL, NULL, NULL, 2, &err);
    CHECK("rset/no_patterns", s == NULL && err.at == SR_AT_INPUT && strcmp(err.msg, "no patterns") == 0);
    {
        static const char *const p2[] = { "^/a", NULL };
        s = sr_rset_new(p2, NULL, NULL, 2, &err);
        CHECK("rset/null_pattern", s == NULL && err.at == SR_AT_ENTRY && err.index == 1 &&
                                       strcmp(err.msg, "no pattern") == 0);
    }
    s = sr_rset_new(pats, NULL, names, 2, &err);
    CHECK("rset/ok_clears_err", s != NULL && err.msg[0] == '\0' && err.at == SR_AT_INPUT);
    sr_rset_free(s);
}

static void test_limits(void)
{
    static const char *const pats[] = {
        "^/_matrix/(a+)+$", /* catastrophic backtracking */
        "^/_matrix/client/(r0|v3)/.*/tags",
        "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$",
        "^/_matrix/.*$",
    };
    sr_error err;
    sr_rset *s = sr_rset_new(pats, NULL, NULL, 4, &err);
    char *big = malloc(65536 + 64);
    size_t n;
    CHECK("rset/limits_builds", s != NULL && big != NULL);
    if (!s || !big) {
        free(big);
        sr_rset_free(s);
        return;
    }
    /* "/_matrix/" + 40 'a' + "!" : (a+)+$ explodes; must stop at the limit */
    n = (size_t)sprintf(big, "/_matrix/");
    memset(big + n, 'a', 40);
    n += 40;
    big[n++] = '!';
    CHECK("rset/limit_hit_set_is_minus1", sr_rset_match(s, big, n, 0) == -1);
    CHECK("rset/limit_hit_loop_is_minus1", sr_rset_match_loop(s, big, n, 0) == -1);
    /* 64 KiB subjects with '.*' patterns: no crash, same answer */
    n = (size_t)sprintf(big, "/_matrix/client/v3/rooms/");
    while (n < 65536) {
        big[n] = (char)(n % 7 == 0 ? '/' : 'a' + (int)(n % 26));
        n++;
    }
    CHECK("rset/64k_set_equals_loop", sr_rset_match(s, big, n, 0) == sr_rset_match_loop(s, big, n, 0));
    memcpy(big + n - 5, "/kick", 5);
    CHECK("rset/64k_kick_matches", sr_rset_match(s, big, n, 0) == 2);
    CHECK("rset/64k_kick_set_equals_loop", sr_rset_match(s, big, n, 0) == sr_rset_match_loop(s, big, n, 0));
    /* NUL bytes inside the subject */
    memcpy(big, "/_matrix/client/v3/x\0y/tags", 27);
    CHECK("rset/nul_in_subject", sr_rset_match(s, big, 27, 0) == 1);
    CHECK("rset/nul_in_subject_loop", sr_rset_match_loop(s, big, 27, 0) == 1);
    free(big);
    sr_rset_free(s);
}

/* The set (JIT when available) against PCRE2's interpreter on the reference
 * patterns: first match in order computed with PCRE2_NO_JIT. */
static void test_jit_vs_interpreter(void)
{
    sr_error err;
    sr_rset *s = sr_rset_new(ref_patterns, NULL, NULL, N_REF, &err);
    pcre2_code *codes[N_REF];
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    uint64_t st = 4242;
    int ok = 1;
    uint32_t has_jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &has_jit);
    CHECK("rset/jit_flag_matches_pcre2", s && sr_rset_jit(s) == (has_jit ? 1 : 0));
    for (size_t i = 0; i < N_REF; i++) {
        int ec;
        PCRE2_SIZE eo;
        codes[i] = pcre2_compile((PCRE2_SPTR)ref_patterns[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_ANCHORED, &ec, &eo, NULL);
    }
    for (int k = 0; k < 20000 && s && ok; k++) {
        char buf[256];
        size_t n = k < (int)N_SUBJ ? strlen(subjects[k]) : random_path(&st, buf, sizeof buf);
        const char *subj = k < (int)N_SUBJ ? subjects[k] : buf;
        int want = -1;
        for (size_t i = 0; i < N_REF; i++)
            if (codes[i] && pcre2_match(codes[i], (PCRE2_SPTR)subj, n, 0, PCRE2_NO_JIT, md, NULL) >= 0) {
                want = (int)i;
                break;
            }
        if (sr_rset_match(s, subj, n, 0) != want) {
            printf("# jit/interp differ on '%.*s'\n", (int)n, subj);
            ok = 0;
        }
    }
    CHECK("rset/jit_equals_interpreter", ok);
    for (size_t i = 0; i < N_REF; i++) pcre2_code_free(codes[i]);
    pcre2_match_data_free(md);
    sr_rset_free(s);
}

/* How entries compiled (sr_rset_entry): one pattern per verification
 * kind, and the reasons for the whole-pattern fallback. */
static void test_entry_info(void)
{
    static const char *const pats[] = {
        "^/_matrix/federation/v1/send/",                     /* literal */
        "^/_matrix/client/(r0|v3)/sync$",                    /* tail + memo */
        "^/_matrix/client/(r0|v3)/rooms/.*/send/.*$",        /* glob */
        "^/_matrix/client/(r0|v3)/rooms/[^/]+/initialSync$", /* regex + rejects */
        "^/_matrix/client/(r0|v3)/x(?i)y",                   /* full: option */
        "^/(a|ab)",                                          /* full: nesting */
        "^/x|^/w",                                           /* full: no prefix */
        "/nocaret",                                          /* full: no '^' */
        "^.*/tags",                                          /* full: non-literal start */
        "^/_matrix/client/v3/.*(b|cd)$",                     /* regex: ending group */
    };
    static const unsigned masks[] = { 0, SR_M_GET | SR_M_HEAD, 0, 0, 0, 0, 0, 0, 0, SR_M_PUT };
    static const char *const names[] = { "fed_send", "sync", NULL, "room_initial_sync", "opt",
                                         "nest", "alt", "nocaret", "tags", "ending" };
    const size_t n = sizeof pats / sizeof pats[0];
    sr_error err;
    sr_rset *s = sr_rset_new(pats, masks, names, n, &err);
    sr_rset_entry_info in[sizeof pats / sizeof pats[0]];
    int ok = 1;
    CHECK("rset/info_builds", s != NULL);
    if (!s) return;
    for (size_t i = 0; i < n; i++) ok = ok && sr_rset_entry(s, i, &in[i]) == 0;
    CHECK("rset/info_every_entry", ok);
    CHECK("rset/info_out_of_range", sr_rset_entry(s, n, &in[0]) == -1 && sr_rset_entry(NULL, 0, &in[0]) == -1);
    CHECK("rset/info_literal", in[0].verify == SR_VERIFY_LITERAL && in[0].n_prefixes == 1 &&
                                   in[0].remainder[0] == '\0' && in[0].why == NULL);
    CHECK("rset/info_names_copied", in[0].name && strcmp(in[0].name, "fed_send") == 0 &&
                                        in[0].name != names[0] && in[2].name == NULL);
    CHECK("rset/info_pattern_copied", strcmp(in[3].pattern, pats[3]) == 0 && in[3].pattern != pats[3]);
    CHECK("rset/info_methods", in[1].methods == (SR_M_GET | SR_M_HEAD) && in[0].methods == SR_M_ALL);
    CHECK("rset/info_tail_memo", in[1].verify == SR_VERIFY_TAIL && in[1].n_prefixes == 2 &&
                                     strcmp(in[1].remainder, "$") == 0 && in[1].n_memo == 2);
    CHECK("rset/info_glob", in[2].verify == SR_VERIFY_GLOB && in[2].n_prefixes == 2 &&
                                strcmp(in[2].remainder, ".*/send/.*$") == 0 && in[2].n_required == 1 &&
                                in[2].n_memo == 0);
    CHECK("rset/info_regex_rejects", in[3].verify == SR_VERIFY_REGEX && in[3].ending_reject &&
                                         in[3].superset_reject && in[3].n_required == 1);
    CHECK("rset/info_full_option", in[4].verify == SR_VERIFY_FULL && in[4].n_prefixes == 2 &&
                                       in[4].why && strstr(in[4].why, "whole pattern"));
    CHECK("rset/info_full_nesting", in[5].verify == SR_VERIFY_FULL && in[5].why &&
                                        strstr(in[5].why, "starts another"));
    CHECK("rset/info_no_prefix_alt", in[6].verify == SR_VERIFY_FULL && in[6].n_prefixes == 0 &&
                                         strstr(in[6].why, "top-level '|'") &&
                                         strcmp(in[6].remainder, pats[6]) == 0);
    CHECK("rset/info_no_prefix_caret", in[7].n_prefixes == 0 && strstr(in[7].why, "no leading '^'"));
    CHECK("rset/info_no_prefix_nonliteral", in[8].n_prefixes == 0 && strstr(in[8].why, "non-literal"));
    CHECK("rset/info_regex_ending_group", in[9].verify == SR_VERIFY_REGEX && in[9].ending_reject &&
                                              in[9].n_memo == 0);
    sr_rset_free(s);
}

/* The dump: a summary, a header, one line per entry, a legend; snprintf
 * semantics on small buffers. */
static void test_dump(void)
{
    static const char *const pats[] = { "^/_matrix/client/(r0|v3)/sync$", "^/a.*/b$", "^/x|^/y" };
    static const unsigned masks[] = { SR_M_GET, 0, SR_M_PUT | SR_M_POST };
    static const char *const names[] = { "sync", "glob", NULL };
    sr_error err;
    sr_rset *s = sr_rset_new(pats, masks, names, 3, &err);
    char buf[4096], small[16];
    size_t n, n2;
    const char *want_lines[] = {
        "regex set: 3 entries, 2 with a literal prefix (3 prefixes in a trie of ",
        "entry  name  methods   verify   prefixes  memo  remainder\n",
        "    1  sync  GET       tail            2     2  $\n",
        "    2  glob  any       glob            1     -  .*/b$  [1 dictionary run]\n",
        "    3  -     POST,PUT  full            0     -  (whole pattern)  "
        "[no literal prefix (a top-level '|'): tried for every request]\n",
        "verify: literal  the prefix is the whole pattern",
    };
    int ok = 1;
    CHECK("rset/dump_builds", s != NULL);
    if (!s) return;
    n = sr_rset_dump(s, buf, sizeof buf);
    CHECK("rset/dump_fits", n > 0 && n < sizeof buf && strlen(buf) == n && buf[n - 1] == '\n');
    for (size_t i = 0; i < sizeof want_lines / sizeof want_lines[0]; i++)
        if (!strstr(buf, want_lines[i])) {
            printf("# missing in dump: %s\n", want_lines[i]);
            ok = 0;
        }
    CHECK("rset/dump_lines", ok);
    if (!ok) printf("# dump:\n%s", buf);
    n2 = sr_rset_dump(s, small, sizeof small);
    CHECK("rset/dump_truncates", n2 == n && strlen(small) == sizeof small - 1 &&
                                     memcmp(small, buf, sizeof small - 1) == 0);
    CHECK("rset/dump_length_only", sr_rset_dump(s, NULL, 0) == n);
    CHECK("rset/dump_null_set", sr_rset_dump(NULL, small, sizeof small) == 0 && small[0] == '\0');
    sr_rset_free(s);
}

void test_rset(void)
{
    test_reference_equivalence();
    test_tricky_equivalence();
    test_order_and_methods();
    test_errors();
    test_limits();
    test_jit_vs_interpreter();
    test_entry_info();
    test_dump();
}
