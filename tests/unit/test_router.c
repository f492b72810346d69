/* test_router.c - sr_route decisions on a hand-built spec: refine, method
 * masks, keys of every kind, appservice tokens, the built-in block of
 * internal paths, hostile inputs, and that a raw token never reaches the
 * decision. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_core.h"
#include "unit.h"

/* Kept packed as a table; clang-format would put one item per line. */
/* clang-format off */
enum { T_SYNC, T_INIT, T_SLIDING, T_SLIDING_INIT, T_SEND, T_MSGS, T_FED_SEND, T_FED,
       T_PUSH, T_PROFILE, T_CLIENT, T_MAIN, T_BLOCKED_DATA, N_T };
/* clang-format on */

/* Kept packed as a table; clang-format would put one item per line. */
/* clang-format off */
static const sr_target targets[N_T] = {
    [T_SYNC]          = { "sync", "sync", "sync", 0, SR_KEY_USER, 1, NULL },
    [T_INIT]          = { "initial_sync", "initial_sync", "initial_sync", 0, SR_KEY_USER, 1, NULL },
    [T_SLIDING]       = { "sync", "sync", "sync", 0, SR_KEY_USER, 0, NULL },
    [T_SLIDING_INIT]  = { "initial_sync", "initial_sync", "initial_sync", 0, SR_KEY_USER, 0, NULL },
    [T_SEND]          = { "event_send", "event_send", "event_send", 0, SR_KEY_ROOM, 1, NULL },
    [T_MSGS]          = { "messages", "client", "client", 0, SR_KEY_ROOM, 0, NULL },
    [T_FED_SEND]      = { "federation_send", "federation_send", "federation_send", 0, SR_KEY_ORIGIN, 0, NULL },
    [T_FED]           = { "federation", "generic", "generic", 0, SR_KEY_NONE, 0, NULL },
    [T_PUSH]          = { "push_rules", "client", "push_rules", SR_M_GET | SR_M_HEAD, SR_KEY_NONE, 0, NULL },
    [T_PROFILE]       = { "event_send", "event_send", "event_send", 0, SR_KEY_PATH_USER, 0, NULL },
    [T_CLIENT]        = { "client", "client", "client", 0, SR_KEY_NONE, 1, NULL },
    [T_MAIN]          = { "main", "main", "main", 0, SR_KEY_NONE, 0, "no route matches" },
    [T_BLOCKED_DATA]  = { "blocked", "deny", "deny", 0, SR_KEY_NONE, 0, "data says blocked" },
};
/* clang-format on */

static const sr_entry entries[] = {
    { "sync", "^/_matrix/client/(r0|v3)/sync$", 0, T_SYNC, SR_REFINE_SINCE, T_INIT },
    { "sliding_sync", "^/_matrix/client/unstable/org.matrix.simplified_msc3575/sync$", 0,
      T_SLIDING, SR_REFINE_POS, T_SLIDING_INIT },
    { "fed_send", "^/_matrix/federation/v1/send/", 0, T_FED_SEND, SR_REFINE_NONE, 0 },
    { "fed_event", "^/_matrix/federation/v1/event/", 0, T_FED, SR_REFINE_NONE, 0 },
    { "messages", "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$", SR_M_GET,
      T_MSGS, SR_REFINE_NONE, 0 },
    { "send", "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send", 0, T_SEND, SR_REFINE_NONE, 0 },
    { "join", "^/_matrix/client/(api/v1|r0|v3|unstable)/join/", 0, T_SEND, SR_REFINE_NONE, 0 },
    { "profile", "^/_matrix/client/(api/v1|r0|v3|unstable)/profile/", 0, T_PROFILE, SR_REFINE_NONE, 0 },
    { "pushrules", "^/_matrix/client/(api/v1|r0|v3|unstable)/pushrules/", 0, T_PUSH, SR_REFINE_NONE, 0 },
    { "whoami", "^/_matrix/client/(r0|v3|unstable)/account/whoami$", 0, T_CLIENT, SR_REFINE_NONE, 0 },
};
#define N_E (sizeof entries / sizeof entries[0])

static const char *const as_tokens[] = { "wfghWEGh3wgWHEf3478sHFWE", "as-token-two" };
static const char *const as_senders[] = { "@bridgebot:hs.example", "otherbot" };

/* syt_ + base64("alice") + _ + 20 letters + _ + crc */
#define TOK_ALICE "syt_YWxpY2U_abcdefghijklmnopqrst_1a2b3c"
#define TOK_MAS   "mat_abcdefghijklmnopqrstuvwxyz0123_AbC123"
#define TOK_OPQ   "someOpaqueToken12345"

static sr_router *make_router(int with_blocked_target)
{
    sr_router_spec sp;
    sr_error err;
    sr_router *r;
    memset(&sp, 0, sizeof sp);
    sp.secret = "test-secret";
    sp.secret_len = strlen(sp.secret);
    sp.entries = entries;
    sp.n_entries = N_E;
    sp.targets = targets;
    sp.n_targets = with_blocked_target ? N_T : N_T - 1;
    sp.fallback_target = T_MAIN;
    sp.as_tokens = as_tokens;
    sp.as_senders = as_senders;
    sp.n_as_tokens = 2;
    sp.as_backend = "appservice";
    r = sr_router_new(&sp, &err);
    if (!r) printf("# router: %s\n", err.msg);
    return r;
}

static sr_decision route(const sr_router *r, const char *in)
{
    sr_decision d;
    sr_route(r, in, strlen(in), &d);
    return d;
}

/* Is needle (len n) anywhere in hay (len hn)? */
static int contains(const char *hay, size_t hn, const char *needle, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i + n <= hn; i++)
        if (memcmp(hay + i, needle, n) == 0) return 1;
    return 0;
}

static void test_decisions(void)
{
    sr_router *r = make_router(0);
    sr_decision d;
    char hk[17];
    CHECK("router/builds", r != NULL);
    if (!r) return;

    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=s1_2&timeout=30000 Bearer " TOK_ALICE);
    CHECK_STR("router/sync_class", d.cls, strlen(d.cls), "sync");
    CHECK_STR("router/sync_backend", d.backend, strlen(d.backend), "sync");
    CHECK_STR("router/sync_route", d.route_id, strlen(d.route_id), "sync");
    CHECK_STR("router/sync_key_kind", d.key_kind, strlen(d.key_kind), "user");
    CHECK_STR("router/sync_key", d.key, strlen(d.key), "alice");
    CHECK("router/sync_entry", d.entry == 0);
    CHECK("router/sync_token_kind", d.token_kind == SR_TOK_SYT);
    sr_router_hkey(r, "user", "alice", 5, hk);
    CHECK_STR("router/sync_hkey_matches_router_hkey", d.hkey, strlen(d.hkey), hk);
    CHECK("router/sync_hkey_16_hex", strlen(d.hkey) == 16 && strspn(d.hkey, "0123456789abcdef") == 16);

    {
        /* the native fast path hashes the token's segment as sent: the same
         * hkey from the header, the query (with %2B-style escapes decoded)
         * and for the user's localpart (macaroon, MAS, `synroute show`) */
        char want[17];
        sr_decision q = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=s1&access_token=" TOK_ALICE " -");
        CHECK_STR("router/sync_query_token_same_hkey", q.hkey, strlen(q.hkey), d.hkey);
        snprintf(want, sizeof want, "%016llx",
                 (unsigned long long)sr_xxh64("YWxpY2U", 7, sr_router_hkey_seed(r, "user")));
        CHECK_STR("router/sync_hkey_is_xxh64_of_segment", d.hkey, strlen(d.hkey), want);
        /* a segment that is not canonical base64 of a localpart: kind syt,
         * still hashed as sent (what HAProxy hashes) */
        q = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=s1 Bearer syt_YWxpY2V_abc_def");
        snprintf(want, sizeof want, "%016llx",
                 (unsigned long long)sr_xxh64("YWxpY2V", 7, sr_router_hkey_seed(r, "user")));
        CHECK("router/sync_noncanonical_segment_kind", !strcmp(q.key_kind, "syt") && !strcmp(q.key, "YWxpY2V"));
        CHECK_STR("router/sync_noncanonical_segment_hkey", q.hkey, strlen(q.hkey), want);
        q = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=s1 Bearer syt_YWxpY2U__x");
        CHECK("router/sync_empty_random_not_segment", strcmp(q.key_kind, "syt") != 0 && strcmp(q.hkey, d.hkey) != 0);
        CHECK("router/seeds_differ_by_family",
              sr_router_hkey_seed(r, "user") != sr_router_hkey_seed(r, "room") &&
                  sr_router_hkey_seed(r, "syt") == sr_router_hkey_seed(r, "user") &&
                  sr_router_hkey_seed(r, "origin") < 0x8000000000000000ULL);
    }
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?timeout=0 Bearer " TOK_ALICE);
    CHECK_STR("router/initial_sync_no_since", d.cls, strlen(d.cls), "initial_sync");
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since= Bearer " TOK_ALICE);
    CHECK_STR("router/initial_sync_empty_since", d.cls, strlen(d.cls), "initial_sync");
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=x&full_state=true Bearer " TOK_ALICE);
    CHECK_STR("router/initial_sync_full_state", d.cls, strlen(d.cls), "initial_sync");
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=x&full%5Fstate=true Bearer " TOK_ALICE);
    CHECK_STR("router/initial_sync_full_state_encoded", d.cls, strlen(d.cls), "initial_sync");
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?%73ince=x Bearer " TOK_ALICE);
    CHECK_STR("router/sync_since_encoded_name", d.cls, strlen(d.cls), "sync");
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?xsince=x Bearer " TOK_ALICE);
    CHECK_STR("router/sync_since_substring_only", d.cls, strlen(d.cls), "initial_sync");
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=x&full_state=false Bearer " TOK_ALICE);
    CHECK_STR("router/sync_full_state_false", d.cls, strlen(d.cls), "sync");
    d = route(r, "GET 10.0.0.1 /_matrix/client/r0/sync?since=x&access_token=" TOK_ALICE " -");
    CHECK_STR("router/sync_query_token_key", d.key, strlen(d.key), "alice");

    d = route(r, "POST 10.0.0.1 /_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=3 -");
    CHECK_STR("router/sliding_pos", d.cls, strlen(d.cls), "sync");
    d = route(r, "POST 10.0.0.1 /_matrix/client/unstable/org.matrix.simplified_msc3575/sync -");
    CHECK_STR("router/sliding_no_pos", d.cls, strlen(d.cls), "initial_sync");
    CHECK_STR("router/no_token_no_key", d.key_kind, strlen(d.key_kind), "none");
    CHECK("router/no_token_empty_hkey", d.hkey[0] == '\0');

    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync Bearer " TOK_MAS);
    CHECK_STR("router/mas_token_hash_kind", d.key_kind, strlen(d.key_kind), "token-hash");
    CHECK("router/mas_token_hash_key", strncmp(d.key, "th:", 3) == 0 && strlen(d.key) == 19);
    CHECK("router/mas_token_kind", d.token_kind == SR_TOK_MAS);
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync Bearer " TOK_OPQ);
    CHECK_STR("router/opaque_token_hash_kind", d.key_kind, strlen(d.key_kind), "token-hash");

    d = route(r, "PUT 10.0.0.1 /_matrix/client/v3/rooms/%21room%3Ahs.example/send/m.room.message/t1 Bearer " TOK_ALICE);
    CHECK_STR("router/send_class", d.cls, strlen(d.cls), "event_send");
    CHECK_STR("router/send_room_key_decoded", d.key, strlen(d.key), "!room:hs.example");
    CHECK_STR("router/send_room_kind", d.key_kind, strlen(d.key_kind), "room");
    {
        sr_decision d2 = route(r, "PUT 10.0.0.9 /_matrix/client/r0/rooms/!room:hs.example/send/x/t2 -");
        CHECK_STR("router/room_encoded_or_not_same_hkey", d2.hkey, strlen(d2.hkey), d.hkey);
    }
    d = route(r, "POST 10.0.0.1 /_matrix/client/v3/join/%23alias%3Ahs -");
    CHECK_STR("router/join_alias_key", d.key, strlen(d.key), "#alias:hs");

    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/rooms/!r:hs/messages?dir=b -");
    CHECK_STR("router/messages_get", d.cls, strlen(d.cls), "messages");
    CHECK_STR("router/messages_backend", d.backend, strlen(d.backend), "client");
    d = route(r, "POST 10.0.0.1 /_matrix/client/v3/rooms/!r:hs/messages -");
    CHECK_STR("router/messages_post_is_main", d.cls, strlen(d.cls), "main");
    CHECK_STR("router/fallback_route_id", d.route_id, strlen(d.route_id), "default");
    CHECK("router/fallback_entry", d.entry == -1);
    CHECK("router/fallback_reason", d.reason && strcmp(d.reason, "no route matches") == 0);

    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/pushrules/global/ -");
    CHECK_STR("router/pushrules_get_generic_backend", d.backend, strlen(d.backend), "client");
    d = route(r, "HEAD 10.0.0.1 /_matrix/client/v3/pushrules/global/ -");
    CHECK_STR("router/pushrules_head_generic_backend", d.backend, strlen(d.backend), "client");
    d = route(r, "PUT 10.0.0.1 /_matrix/client/v3/pushrules/global/override/x -");
    CHECK_STR("router/pushrules_put_other_backend", d.backend, strlen(d.backend), "push_rules");
    CHECK_STR("router/pushrules_put_class", d.cls, strlen(d.cls), "push_rules");

    d = route(r, "PUT 10.0.0.1 /_matrix/client/v3/profile/%40bob%3Ahs.example/displayname -");
    CHECK_STR("router/profile_path_user", d.key, strlen(d.key), "bob");
    CHECK_STR("router/profile_kind_user", d.key_kind, strlen(d.key_kind), "user");

    d = route(r, "PUT 192.0.2.7 /_matrix/federation/v1/send/1234 X-Matrix origin=\"remote.example\",destination=\"hs\",key=\"ed25519:a\",sig=\"abc\"");
    CHECK_STR("router/fed_send_origin", d.key, strlen(d.key), "remote.example");
    CHECK_STR("router/fed_send_kind", d.key_kind, strlen(d.key_kind), "origin");
    d = route(r, "PUT 192.0.2.7 /_matrix/federation/v1/send/1234 -");
    CHECK_STR("router/fed_send_src", d.key, strlen(d.key), "src:192.0.2.7");
    {
        /* the first-parameter shape is taken raw up to its quote (as HAProxy
         * does); the full parser gives the same origin for other shapes */
        char want[17];
        sr_decision o = route(r, "PUT 192.0.2.7 /_matrix/federation/v1/send/1 X-Matrix origin=\"a\\b.example\",sig=\"x\"");
        CHECK("router/xmatrix_fast_raw", !strcmp(o.key, "a\\b.example"));
        o = route(r, "PUT 192.0.2.7 /_matrix/federation/v1/send/1 X-Matrix sig=\"x\",origin=remote.example");
        snprintf(want, sizeof want, "%016llx",
                 (unsigned long long)sr_xxh64("remote.example", 14, sr_router_hkey_seed(r, "origin")));
        CHECK("router/xmatrix_other_order", !strcmp(o.key, "remote.example"));
        CHECK_STR("router/xmatrix_hkey_is_xxh64", o.hkey, strlen(o.hkey), want);
    }
    {
        /* a NUL byte ends a key: an origin that starts with one is no key
         * (found by the router fuzzer: key_kind said origin, the key was empty) */
        static const char in[] = "PUT 192.0.2.7 /_matrix/federation/v1/send/t1 X-Matrix origin=\"\0\0\0Kk\\slaln\"";
        sr_decision o;
        sr_route(r, in, sizeof in - 1, &o);
        CHECK("router/xmatrix_nul_origin_consistent",
              !o.key[0] == !o.hkey[0] && !o.key[0] == !strcmp(o.key_kind, "none"));
        CHECK_STR("router/xmatrix_nul_origin_src", o.key, strlen(o.key), "src:192.0.2.7");
    }
    d = route(r, "PUT 192.0.2.7 /_matrix/federation/v1/send/1234 X-Matrix garbage");
    CHECK_STR("router/fed_send_malformed_src", d.key, strlen(d.key), "src:192.0.2.7");
    d = route(r, "GET 192.0.2.7 /_matrix/federation/v1/event/$e X-Matrix origin=a.b");
    CHECK_STR("router/fed_event_no_key", d.key_kind, strlen(d.key_kind), "none");

    /* packed form */
    {
        char out[600];
        const char *in = "GET 10.0.0.1 /_matrix/client/v3/sync?since=1 Bearer " TOK_ALICE;
        size_t n = sr_route_packed(r, in, strlen(in), out, sizeof out);
        char want[64];
        d = route(r, in);
        snprintf(want, sizeof want, "sync|sync|%s", d.hkey);
        CHECK_STR("router/packed", out, n, want);
        n = sr_route_packed(r, "GET 1.1.1.1 /x -", 16, out, sizeof out);
        CHECK_STR("router/packed_no_key", out, n, "main|main|");
        n = sr_route_packed(r, in, strlen(in), out, 5);
        CHECK("router/packed_small_buffer", n == 0 && out[0] == '\0');
    }
    sr_router_free(r);
}

static void test_appservice(void)
{
    sr_router *r = make_router(0);
    sr_decision d;
    if (!r) return;
    d = route(r, "PUT 10.0.0.1 /_matrix/client/v3/rooms/!r:hs/send/m.x/1?user_id=%40alice_irc%3Ahs.example Bearer wfghWEGh3wgWHEf3478sHFWE");
    CHECK("router/as_applies", d.appservice == 1);
    CHECK_STR("router/as_backend", d.backend, strlen(d.backend), "appservice");
    CHECK_STR("router/as_class_kept", d.cls, strlen(d.cls), "event_send");
    CHECK_STR("router/as_user_id_key", d.key, strlen(d.key), "alice_irc");
    CHECK_STR("router/as_kind_user", d.key_kind, strlen(d.key_kind), "user");
    d = route(r, "PUT 10.0.0.1 /_matrix/client/v3/rooms/!r:hs/send/m.x/1 Bearer wfghWEGh3wgWHEf3478sHFWE");
    CHECK_STR("router/as_sender_key", d.key, strlen(d.key), "bridgebot");
    d = route(r, "GET 10.0.0.1 /_matrix/client/v3/sync?since=1&access_token=as-token-two -");
    CHECK("router/as_query_token", d.appservice == 1);
    CHECK_STR("router/as_query_token_sender", d.key, strlen(d.key), "otherbot");
    d = route(r, "GET 10.0.0.1 /_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=1 Bearer as-token-two");
    CHECK("router/as_not_ok_target", d.appservice == 0);
    CHECK_STR("router/as_not_ok_backend", d.backend, strlen(d.backend), "sync");
    CHECK_STR("router/as_not_ok_still_user_key", d.key, strlen(d.key), "otherbot");
    d = route(r, "PUT 10.0.0.1 /_matrix/client/v3/rooms/!r:hs/send/m.x/1 Bearer as-token-twoX");
    CHECK("router/as_near_miss_token", d.appservice == 0);
    d = route(r, "PUT 10.0.0.1 /_matrix/client/v3/rooms/!r:hs/send/m.x/1 Bearer as-token-tw");
    CHECK("router/as_prefix_token", d.appservice == 0);
    sr_router_free(r);
}

static void test_blocked(void)
{
    static const char *const blocked[] = {
        "GET 1.2.3.4 /_synapse/replication/send_event/x -",
        "POST 1.2.3.4 /_synapse/mas/sync_devices -",
        "GET 1.2.3.4 /_synapse/%72eplication/x -",
        "GET 1.2.3.4 /_synapse/%2572eplication/x -",
        "GET 1.2.3.4 /_synapse/REPLICATION/x -",
        "GET 1.2.3.4 /_Synapse/Mas/x -",
        "GET 1.2.3.4 //_synapse//replication/x -",
        "GET 1.2.3.4 /_synapse/./replication/x -",
        "GET 1.2.3.4 /_matrix/../_synapse/replication/x -",
        "GET 1.2.3.4 /_synapse%2Freplication/x -",
        "GET 1.2.3.4 /_synapse/replication -",
        "GET 1.2.3.4 /_synapse/mas -",
        "GET 1.2.3.4 /_synapse/mas?x=1 -",
        "GET 1.2.3.4 %2F_synapse/mas/x -",
        "GET 1.2.3.4 /_synapse\\replication\\x -",
        "GET 1.2.3.4 /_%73ynapse/replication/x -",
        "GET 1.2.3.4 /%5fsynapse/replication/x -",
        "GET 1.2.3.4 /%5Fsynapse/mas/x -",
        "GET 1.2.3.4 /%255fsynapse/replication/x -",
        "GET 1.2.3.4 /_%2573ynapse/mas/x -",
        "GET 1.2.3.4 /_SYNAPSE/replication/x -",
        "GET 1.2.3.4 /_matrix/client/../../_synapse/mas/x?a=b Bearer x",
    };
    static const char *const not_blocked[] = {
        "GET 1.2.3.4 /_synapse/client/pick_idp -",
        "GET 1.2.3.4 /_synapse/admin/v1/replication -",
        "GET 1.2.3.4 /_synapse/massive -",
        "GET 1.2.3.4 /_matrix/client/v3/rooms/%21r/send/_synapse/replication/x -",
    };
    sr_router *r = make_router(0), *rb = make_router(1);
    char name[64];
    if (!r || !rb) {
        sr_router_free(r);
        sr_router_free(rb);
        return;
    }
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        sr_decision d = route(r, blocked[i]);
        snprintf(name, sizeof name, "router/blocked_%zu", i);
        CHECK_STR(name, d.cls, strlen(d.cls), "blocked");
        snprintf(name, sizeof name, "router/blocked_%zu_nokey", i);
        CHECK(name, d.hkey[0] == '\0' && d.reason != NULL);
    }
    for (size_t i = 0; i < sizeof not_blocked / sizeof not_blocked[0]; i++) {
        sr_decision d = route(r, not_blocked[i]);
        snprintf(name, sizeof name, "router/not_blocked_%zu", i);
        CHECK(name, strcmp(d.cls, "blocked") != 0);
    }
    /* deep paths: many segments, then as many dot-dot segments, plain or
     * encoded; only the resolved first two segments count, at any depth */
    for (int n = 250; n <= 300; n += 50) {
        char buf[4096];
        size_t o = (size_t)snprintf(buf, sizeof buf, "POST 1.2.3.4 /_synapse/");
        sr_decision d;
        for (int k = 0; k < n; k++) o += (size_t)snprintf(buf + o, sizeof buf - o, "a/");
        for (int k = 0; k < n; k++) o += (size_t)snprintf(buf + o, sizeof buf - o, k % 2 ? "../" : "%%2e%%2e/");
        o += (size_t)snprintf(buf + o, sizeof buf - o, "replication/send_event/x -");
        d = route(r, buf);
        snprintf(name, sizeof name, "router/blocked_deep_%d", n);
        CHECK_STR(name, d.cls, o < sizeof buf ? strlen(d.cls) : 0, "blocked");
        buf[o - 26] = 'x'; /* ".../xeplication/...": not internal */
        d = route(r, buf);
        snprintf(name, sizeof name, "router/not_blocked_deep_%d", n);
        CHECK(name, strcmp(d.cls, "blocked") != 0);
    }
    {
        sr_decision d = route(rb, "GET 1.2.3.4 /_synapse/replication/x -");
        CHECK_STR("router/blocked_data_target_backend", d.backend, strlen(d.backend), "deny");
        CHECK_STR("router/blocked_data_target_reason", d.reason, strlen(d.reason), "data says blocked");
        d = route(r, "GET 1.2.3.4 /_synapse/replication/x Bearer " TOK_ALICE);
        CHECK_STR("router/blocked_builtin_backend", d.backend, strlen(d.backend), "blocked");
    }
    sr_router_free(r);
    sr_router_free(rb);
}

static void test_hostile(void)
{
    sr_router *r = make_router(0);
    /* Kept packed as a table; clang-format would put one item per line. */
    /* clang-format off */
    static const char *const inputs[] = {
        "", " ", "   ", "GET", "GET ", "GET  ", "GET 1.2.3.4", "GET 1.2.3.4 ", "GET 1.2.3.4  -",
        "GET 1.2.3.4 x -", "GET 1.2.3.4 ? -", "GET 1.2.3.4 /? -", "GET 1.2.3.4 ?/_matrix -",
        "GET - /_matrix/federation/v1/send/ -", "PUT  /_matrix/federation/v1/send/x ",
        "GET 1.2.3.4 /_matrix/client/v3/sync?since Bearer", "GET 1.2.3.4 /_matrix/client/v3/sync Bearer ",
        "GET 1.2.3.4 /_matrix/client/v3/sync Bearer  x", "GET 1.2.3.4 /_matrix/client/v3/sync?access_token=%zz -",
        "GET 1.2.3.4 /_matrix/client/v3/rooms/%zz/send -", "GET 1.2.3.4 /_matrix/client/v3/profile/%00/x -",
        "get 1.2.3.4 /_matrix/client/v3/pushrules/ -", "GET 1.2.3.4 http://h/_matrix/client/v3/sync -",
        "GET 1.2.3.4 /_synapse/% -", "GET 1.2.3.4 /_synapse/%7 -", "GET 1.2.3.4 /../../.. -",
    };
    /* clang-format on */
    char name[64];
    char *big;
    sr_decision d;
    if (!r) return;
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        d = route(r, inputs[i]);
        snprintf(name, sizeof name, "router/hostile_%zu_decides", i);
        CHECK(name, d.cls && d.backend && d.key_kind && d.route_id &&
                        strlen(d.key) < sizeof d.key && strlen(d.hkey) <= 16);
    }
    d = route(r, "");
    CHECK_STR("router/empty_is_main", d.cls, strlen(d.cls), "main");
    d = route(r, "GET 1.2.3.4 _synapse/replication/x -");
    CHECK("router/no_slash_not_crash", d.cls != NULL);
    sr_route(r, NULL, 10, &d);
    CHECK_STR("router/null_input_main", d.cls, strlen(d.cls), "main");
    sr_route(NULL, "GET", 3, &d);
    CHECK_STR("router/null_router_main", d.cls, strlen(d.cls), "main");
    {
        const char in[] = "GET 1.2.3.4 /_synapse/rep\0lication/x -";
        sr_route(r, in, sizeof in - 1, &d);
        CHECK("router/nul_in_path", d.cls != NULL && strcmp(d.cls, "blocked") != 0);
        const char in2[] = "GET 1.2.3.4 /_matrix/client/v3/sync?since=1 Bearer syt_YWxp\0Y2U_abcdefghijklmnopqrst_1a2b3c";
        sr_route(r, in2, sizeof in2 - 1, &d);
        CHECK("router/nul_in_token", d.cls != NULL && strcmp(d.key, "alice") != 0);
        const char in3[] = "GET\0 1.2.3.4 /_synapse/replication/x -";
        sr_route(r, in3, sizeof in3 - 1, &d);
        CHECK_STR("router/nul_in_method_still_blocked", d.cls, strlen(d.cls), "blocked");
    }
    /* 64 KiB: long path, long room, long token, long query */
    big = malloc(70000);
    if (big) {
        size_t n;
        n = (size_t)sprintf(big, "PUT 1.2.3.4 /_matrix/client/v3/rooms/!");
        while (n < 65536) big[n++] = 'r';
        n += (size_t)sprintf(big + n, "/send/m.x/1 -");
        sr_route(r, big, n, &d);
        CHECK_STR("router/64k_room_class", d.cls, strlen(d.cls), "event_send");
        CHECK("router/64k_room_key_capped", strlen(d.key) <= sizeof d.key - 1);
        n = (size_t)sprintf(big, "GET 1.2.3.4 /_matrix/client/v3/sync?since=1 Bearer syt_");
        while (n < 65536) big[n++] = 'A';
        sr_route(r, big, n, &d);
        CHECK("router/64k_token_no_crash", d.cls != NULL && strlen(d.key) < sizeof d.key);
        n = (size_t)sprintf(big, "GET 1.2.3.4 /_matrix/client/v3/sync?");
        while (n < 65536) {
            big[n] = (n % 5 == 0) ? '&' : 'a';
            n++;
        }
        sr_route(r, big, n, &d);
        CHECK_STR("router/64k_query", d.cls, strlen(d.cls), "initial_sync");
        n = (size_t)sprintf(big, "GET 1.2.3.4 /");
        while (n < 65536) {
            big[n] = (n % 2) ? '.' : '/';
            n++;
        }
        n += (size_t)sprintf(big + n, "../_synapse/replication/x -");
        sr_route(r, big, n, &d);
        CHECK("router/64k_dotdot_no_crash", d.cls != NULL);
        n = (size_t)sprintf(big, "GET 1.2.3.4 /");
        while (n < 65536) {
            memcpy(big + n, "a/..", 4);
            n += 4;
        }
        n += (size_t)sprintf(big + n, "/_synapse/replication/x -");
        sr_route(r, big, n, &d);
        CHECK_STR("router/64k_dotdot_blocked", d.cls, strlen(d.cls), "blocked");
        n = (size_t)sprintf(big, "PUT 1.2.3.4 /_matrix/federation/v1/send/x ");
        n += (size_t)sprintf(big + n, "X-Matrix origin=");
        while (n < 65536) big[n++] = 'o';
        sr_route(r, big, n, &d);
        CHECK("router/64k_origin_capped", strlen(d.key) < sizeof d.key);
        for (size_t i = 0; i < 65536; i++) big[i] = (char)(i * 131 + 7);
        sr_route(r, big, 65536, &d);
        CHECK("router/64k_random_bytes", d.cls != NULL);
        free(big);
    }
    sr_router_free(r);
}

/* Route many request shapes carrying each token; the raw token (and its
 * secret middle part) must appear in no field of the decision nor in the
 * packed output. */
static void test_token_never_in_output(void)
{
    static const char *const toks[] = {
        TOK_ALICE,
        TOK_MAS,
        TOK_OPQ,
        "wfghWEGh3wgWHEf3478sHFWE",
        "as-token-two",
        "MDAxY2xvY2F0aW9uIGhzCjAwMTZpZGVudGlmaWVyIGtleQowMDJmY2lkIHVzZXJfaWQgPSBAYm9iOmhzCg",
    };
    static const char *const shapes[] = {
        "GET 1.1.1.1 /_matrix/client/v3/sync?since=1 Bearer %s",
        "GET 1.1.1.1 /_matrix/client/v3/sync Bearer %s",
        "GET 1.1.1.1 /_matrix/client/v3/sync?access_token=%s -",
        "POST 1.1.1.1 /_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=1&access_token=%s -",
        "PUT 1.1.1.1 /_matrix/client/v3/rooms/!r:hs/send/x/1 Bearer %s",
        "PUT 1.1.1.1 /_matrix/client/v3/profile/@u:hs/displayname Bearer %s",
        "PUT 1.1.1.1 /_matrix/federation/v1/send/1 Bearer %s",
        "GET 1.1.1.1 /_synapse/replication/x Bearer %s",
        "GET 1.1.1.1 /unknown Bearer %s",
    };
    sr_router *r = make_router(0);
    int ok = 1;
    if (!r) return;
    for (size_t t = 0; t < sizeof toks / sizeof toks[0]; t++) {
        const char *secret_part = toks[t];
        size_t slen;
        /* for syt_ tokens the random middle is the secret; else all of it */
        if (strncmp(toks[t], "syt_", 4) == 0) secret_part = strchr(toks[t] + 4, '_') + 1;
        slen = strlen(secret_part) > 12 ? 12 : strlen(secret_part);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            char in[1024], out[600];
            sr_decision d;
            size_t n;
            snprintf(in, sizeof in, shapes[s], toks[t]);
            sr_route(r, in, strlen(in), &d);
            n = sr_route_packed(r, in, strlen(in), out, sizeof out);
            if (contains(d.key, strlen(d.key), secret_part, slen) ||
                contains(d.hkey, strlen(d.hkey), secret_part, slen) ||
                contains(d.backend, strlen(d.backend), secret_part, slen) ||
                contains(d.cls, strlen(d.cls), secret_part, slen) ||
                (d.reason && contains(d.reason, strlen(d.reason), secret_part, slen)) ||
                contains(d.route_id, strlen(d.route_id), secret_part, slen) ||
                contains(out, n, secret_part, slen) ||
                contains(d.key, strlen(d.key), toks[t], strlen(toks[t]))) {
                printf("# token leaked: '%s' in '%s'\n", toks[t], in);
                ok = 0;
            }
        }
    }
    CHECK("router/token_never_in_decision", ok);
    /* the token-hash key depends on the secret (keyed), not the raw bytes */
    {
        sr_decision d1 = route(r, "GET 1.1.1.1 /_matrix/client/v3/sync Bearer " TOK_MAS);
        sr_router_spec sp;
        sr_router *r2;
        memset(&sp, 0, sizeof sp);
        sp.secret = "other-secret";
        sp.secret_len = 12;
        sp.entries = entries;
        sp.n_entries = N_E;
        sp.targets = targets;
        sp.n_targets = N_T - 1;
        sp.fallback_target = T_MAIN;
        r2 = sr_router_new(&sp, NULL);
        if (r2) {
            sr_decision d2 = route(r2, "GET 1.1.1.1 /_matrix/client/v3/sync Bearer " TOK_MAS);
            CHECK("router/token_hash_is_keyed", strcmp(d1.key, d2.key) != 0 && strcmp(d1.hkey, d2.hkey) != 0);
            sr_router_free(r2);
        }
    }
    sr_router_free(r);
}

static void test_new_errors(void)
{
    sr_router_spec sp;
    sr_error err;
    sr_entry bad[2];
    sr_target tg[2];
    memset(&sp, 0, sizeof sp);
    memcpy(bad, entries, sizeof bad);
    memcpy(tg, targets, sizeof tg);
    sp.secret = "s";
    sp.secret_len = 1;
    sp.entries = bad;
    sp.n_entries = 2;
    sp.targets = tg;
    sp.n_targets = 2;
    sp.fallback_target = 0;
    bad[1].pattern = "^/_matrix/(a|b";
    bad[1].id = "keys_upload";
    bad[1].refine = SR_REFINE_NONE;
    bad[1].target = 0;
    CHECK("router/new_bad_pattern", sr_router_new(&sp, &err) == NULL && err.at == SR_AT_ENTRY &&
                                        err.index == 1 && err.name && !strcmp(err.name, "keys_upload") &&
                                        !strncmp(err.msg, "offset 14: ", 11));
    bad[1] = entries[1];
    bad[1].target = 5;
    CHECK("router/new_target_range", sr_router_new(&sp, &err) == NULL && err.at == SR_AT_ENTRY &&
                                         err.index == 1 && !strcmp(err.msg, "target out of range") &&
                                         err.name && !strcmp(err.name, entries[1].id));
    bad[1] = entries[0];
    bad[1].alt_target = -1;
    CHECK("router/new_alt_range", sr_router_new(&sp, &err) == NULL && err.at == SR_AT_ENTRY &&
                                      !strcmp(err.msg, "alt_target out of range"));
    bad[1] = entries[1];
    bad[1].id = "";
    CHECK("router/new_bad_id_unnamed", sr_router_new(&sp, &err) == NULL && err.at == SR_AT_ENTRY &&
                                           err.index == 1 && err.name == NULL && !strcmp(err.msg, "bad id"));
    bad[1] = entries[1];
    sp.fallback_target = 2;
    CHECK("router/new_fallback_range", sr_router_new(&sp, &err) == NULL && err.at == SR_AT_INPUT &&
                                           !strcmp(err.msg, "fallback_target out of range"));
    sp.fallback_target = 0;
    tg[1].generic_backend = "bad|name";
    CHECK("router/new_bad_backend_name", sr_router_new(&sp, &err) == NULL && err.at == SR_AT_TARGET &&
                                             err.index == 1 && !strcmp(err.msg, "bad backend name"));
    tg[1] = targets[1];
    tg[1].other_backend = "bad name";
    CHECK("router/new_bad_other_backend_name", sr_router_new(&sp, &err) == NULL &&
                                                   err.at == SR_AT_TARGET && err.index == 1);
    tg[1] = targets[1];
    bad[1] = entries[0];
    {
        static const char *const toks[] = { "tok-one", "" };
        sp.as_tokens = toks;
        sp.n_as_tokens = 2;
        CHECK("router/new_empty_as_token", sr_router_new(&sp, &err) == NULL &&
                                               err.at == SR_AT_AS_TOKEN && err.index == 1 &&
                                               !strcmp(err.msg, "empty"));
        sp.n_as_tokens = 0;
        sp.as_tokens = NULL;
    }
    sp.n_targets = 0;
    CHECK("router/new_no_targets", sr_router_new(&sp, &err) == NULL && err.at == SR_AT_INPUT &&
                                       !strcmp(err.msg, "no targets"));
    CHECK("router/new_null_spec", sr_router_new(NULL, &err) == NULL && !strcmp(err.msg, "no spec"));
    CHECK("router/new_null_err_ok", sr_router_new(NULL, NULL) == NULL);
    sp.n_targets = 2;
    sp.n_entries = 0;
    {
        sr_router *r = sr_router_new(&sp, &err);
        sr_decision d;
        CHECK("router/new_no_entries_ok", r != NULL && err.msg[0] == '\0');
        if (r) {
            sr_route(r, "GET 1.1.1.1 /_matrix/client/v3/sync -", 37, &d);
            CHECK_STR("router/no_entries_fallback", d.cls, strlen(d.cls), targets[0].cls);
            sr_router_free(r);
        }
    }
    sr_router_free(NULL);
}

void test_router(void)
{
    test_decisions();
    test_appservice();
    test_blocked();
    test_hostile();
    test_token_never_in_output();
    test_new_errors();
}
