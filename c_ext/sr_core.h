/*
 * sr_core.h - the pure C core of synroute (no lua_State anywhere in here).
 * This header is the contract; each definition repeats its own part of it.
 *
 * Conventions for every function below:
 *  - Inputs are (pointer, length) pairs; they need not be NUL-terminated and
 *    may contain NUL bytes. Nothing keeps a pointer to its input after it
 *    returns unless the contract says so.
 *  - Data errors (a bad pattern, a malformed header, invalid YAML) are
 *    returned: NULL / -1 / SR_NONE plus a message. The constructors of sets
 *    and routers fill an sr_error (where, and what is wrong); the YAML loader
 *    writes "file:line:col: problem" (or "file: problem" about the file as
 *    a whole) into a caller-supplied buffer `err` of size `errlen` (always
 *    NUL-terminated, may be NULL).
 *    Nothing here aborts, exits or prints. Out-of-memory is a data error.
 *  - No mutable static state: every object is owned by its creator and freed
 *    with its *_free function. Objects are immutable after construction
 *    ("compile once, then freeze") and may be shared read-only.
 */
#ifndef SR_CORE_H
#define SR_CORE_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* HTTP methods as bits. A mask of 0 or SR_M_ALL means "any method".         */
enum {
    SR_M_GET = 1,
    SR_M_HEAD = 2,
    SR_M_POST = 4,
    SR_M_PUT = 8,
    SR_M_DELETE = 16,
    SR_M_OPTIONS = 32,
    SR_M_PATCH = 64,
    SR_M_OTHER = 128,
    SR_M_ALL = 255
};
/* Method name -> bit (case-sensitive, as HTTP says). Unknown -> SR_M_OTHER. */
unsigned sr_method_bit(const char *m, size_t len);

/* ------------------------------------------------------------------------ */
/* Errors of the constructors (sr_rset_new, sr_router_new): which item of   */
/* the input is wrong, and what is wrong with it. Indices are 0-based; the  */
/* Lua binding turns them into 1-based messages.                             */
typedef enum {
    SR_AT_INPUT = 0, /* the input as a whole (no index)           */
    SR_AT_ENTRY,     /* patterns[index] / spec->entries[index]    */
    SR_AT_TARGET,    /* spec->targets[index]                      */
    SR_AT_AS_TOKEN   /* spec->as_tokens[index]                    */
} sr_err_at;

typedef struct {
    sr_err_at at;
    size_t index;     /* meaningful unless at == SR_AT_INPUT       */
    const char *name; /* the item's name (names[i], entry id) when
                         known, else NULL; points into the
                         caller's input, valid as long as it is    */
    char msg[256];    /* what is wrong, without the location, e.g.
                         "offset 7: missing closing parenthesis";
                         always NUL-terminated                      */
} sr_error;

/* ------------------------------------------------------------------------ */
/* Regex set: an ordered list of PCRE2 patterns, compiled once.              */
/* sr_rset_match returns the index of the FIRST entry (in list order) whose  */
/* pattern matches `subject` and whose method mask contains `mbit`, or -1.   */
/* Patterns must start with '^' (they are matched anchored at offset 0).     */
/* A non-match, or hitting the match limit, is -1, never an error.           */
/* A set keeps scratch space for matching: one caller at a time.             */
typedef struct sr_rset sr_rset;

/* Build from patterns[i] (NUL-terminated), masks[i] (SR_M_* bits, 0 = any;
 * masks may be NULL) and names[i] (for messages and sr_rset_dump; names or
 * names[i] may be NULL). The set copies what it keeps. On a bad pattern or
 * out of memory returns NULL and fills *err (may be NULL): at SR_AT_ENTRY,
 * index i, name names[i], msg "offset 7: <PCRE2's message>". Never raises. */
sr_rset *sr_rset_new(const char *const *patterns, const unsigned *masks,
                     const char *const *names, size_t n, sr_error *err);
int sr_rset_match(const sr_rset *s, const char *subject, size_t len,
                  unsigned mbit);
/* The same answer computed the slow way: one pcre2 match per entry, in order.
 * Exists for tests (equivalence) and for `make bench` (the baseline). */
int sr_rset_match_loop(const sr_rset *s, const char *subject, size_t len,
                       unsigned mbit);
int sr_rset_jit(const sr_rset *s); /* 1 if JIT is in use */
size_t sr_rset_size(const sr_rset *s);
void sr_rset_free(sr_rset *s);

/* How an entry is verified once the trie says one of its literal prefixes
 * starts the subject (sr_rset_entry_info.verify). */
typedef enum {
    SR_VERIFY_LITERAL = 0, /* the prefix is the whole pattern: a trie hit
                              is the match                               */
    SR_VERIFY_TAIL,        /* the rest is one literal run (maybe with '$'):
                              compared in place                          */
    SR_VERIFY_GLOB,        /* the rest is literal runs joined by ".*"
                              (maybe with '$'): matched without PCRE2,
                              runs found by the shared dictionary scan   */
    SR_VERIFY_REGEX,       /* PCRE2 on the rest at the prefix end, after
                              the quick rejects below                    */
    SR_VERIFY_FULL         /* PCRE2 on the whole pattern (see `why`)     */
} sr_verify;

/* How one entry compiled. Every pointer points into the set. */
typedef struct {
    const char *name; /* names[i] as given, or NULL                */
    const char *pattern;
    unsigned methods;      /* SR_M_* mask; SR_M_ALL = any method        */
    size_t n_prefixes;     /* literal prefixes in the trie; 0 = none, the
                              entry is a candidate for every subject     */
    const char *remainder; /* pattern text after the prefix ("" when the
                              prefix is all; the whole pattern when
                              n_prefixes is 0)                           */
    sr_verify verify;
    const char *why;     /* SR_VERIFY_FULL: the reason; else NULL     */
    unsigned n_required; /* quick reject: literal runs ("/foo") the
                            subject must contain, found for all entries
                            by one scan; 0 = none                      */
    int ending_reject;   /* SR_VERIFY_REGEX: the subject must end with
                            one of the literal endings before '$'      */
    int superset_reject; /* SR_VERIFY_REGEX: a glob that matches every
                            subject the rest matches is tried first    */
    size_t n_memo;       /* complete paths of this entry answered by
                            the exact-path memo (one hash probe)       */
} sr_rset_entry_info;

/* Fills *out for entry i. Returns 0, or -1 when i is out of range or s/out
 * is NULL. Never fails otherwise, never allocates. */
int sr_rset_entry(const sr_rset *s, size_t i, sr_rset_entry_info *out);

/* The whole set as a text table for whoever maintains the patterns: a
 * summary line, one line per entry (index 1-based, name, methods, prefixes,
 * memo paths, verification, remainder and notes), then a legend. Works like
 * snprintf: writes at most cap bytes (NUL-terminated when cap > 0; out may
 * be NULL when cap is 0) and returns the full length. Never fails. */
size_t sr_rset_dump(const sr_rset *s, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Decoding helpers (formats: docs/design.md).                              */

/* Percent-decode src into dst (dst must hold srclen bytes). If `form`,
 * '+' becomes ' ' first. Returns the decoded length, or -1 if an escape is
 * invalid (not two hex digits) or the result contains a NUL byte. */
long sr_pct_decode(const char *src, size_t srclen, char *dst, int form);

/* Find query parameter `name` in `query` (no leading '?'; '&'-separated,
 * names compared after form-decoding). The first occurrence wins. Writes the
 * form-decoded value into dst (capacity dstcap) and returns its length;
 * returns -1 if absent, -2 if present but undecodable or longer than dstcap.
 * "name" alone (no '=') is present with an empty value. */
long sr_query_param(const char *query, size_t qlen, const char *name,
                    char *dst, size_t dstcap);

/* Like sr_query_param, but without decoding the value: *val points at the
 * raw value inside query and its length is returned; -1 if absent. A raw
 * value is empty exactly when its decoded value is, which is all the
 * since/pos checks need. */
long sr_query_raw(const char *query, size_t qlen, const char *name,
                  const char **val);

/* Base64 decode, standard (+/) if url==0, url-safe (-_) if url==1; padding
 * optional. Returns decoded length or -1 on invalid input / dst too small. */
long sr_b64_decode(const char *src, size_t srclen, char *dst, size_t dstcap,
                   int url);

/* ------------------------------------------------------------------------ */
/* Access tokens.                                                            */
typedef enum {
    SR_TOK_NONE = 0, /* no token at all                                   */
    SR_TOK_SYT,      /* syt_ / syr_: key = decoded localpart              */
    SR_TOK_MACAROON, /* key = localpart of the `user_id` caveat           */
    SR_TOK_MAS,      /* mat_/mar_/mct_/mcr_/mpt_: no user inside          */
    SR_TOK_OPAQUE    /* anything else (incl. appservice as_tokens)        */
} sr_tok_kind;

/* Take the token from an Authorization value (exactly "Bearer " + token,
 * case-sensitive scheme, single space) or, if auth is NULL/empty/not Bearer,
 * from the query's access_token (form-decoded into tokbuf).
 * Sets *tok and *toklen to the raw token (pointing into auth or tokbuf).
 * Returns 1 if a token was found, 0 if not, -1 if present but undecodable. */
int sr_token_find(const char *auth, size_t alen, const char *query, size_t qlen,
                  char *tokbuf, size_t tokcap, const char **tok, size_t *toklen);

/* Classify a raw token and, for SYT/MACAROON, write the user's localpart
 * (no '@', no ':server') to key (capacity keycap), returning its length in
 * *keylen. A syt_/macaroon token whose user part cannot be decoded is
 * returned as SR_TOK_OPAQUE (so it is hashed, never used raw). */
sr_tok_kind sr_token_classify(const char *tok, size_t len,
                              char *key, size_t keycap, size_t *keylen);

/* User ID or localpart -> localpart: strips a leading '@' and everything from
 * the first ':'. Returns length written to dst (cap dstcap) or -1. */
long sr_localpart(const char *uid, size_t len, char *dst, size_t dstcap);

/* Full user ID -> localpart: "@alice:hs" -> "alice" when the part between
 * the '@' and the first ':' is usable as a key (non-empty, at most 255 bytes,
 * valid UTF-8, no control bytes, spaces, ':' or '@'). Length written to dst
 * (cap dstcap), or -1. The rule for a macaroon's user_id and MAS's whoami. */
long sr_user_localpart(const char *uid, size_t len, char *dst, size_t dstcap);

/* ------------------------------------------------------------------------ */
/* Federation: origin from an `Authorization: X-Matrix ...` value.           */
/* Scheme "X-Matrix" (case-insensitive) then 1+ spaces, then RFC 9110 params:*/
/* name=value, comma separated, OWS around commas, names case-insensitive,   */
/* quoted values with \-escapes, unquoted values may contain ':'.            */
/* Returns origin length written to dst, 0 if the header is not X-Matrix,    */
/* -1 if it is X-Matrix but malformed or has no origin.                      */
long sr_xmatrix_origin(const char *hdr, size_t len, char *dst, size_t dstcap);

/* ------------------------------------------------------------------------ */
/* Room ID or alias from a client path: the segment after /rooms/, /join/ or */
/* /knock/ (first occurrence after the API version), percent-decoded.        */
/* Returns its length in dst, 0 if the path has none, -1 if undecodable.     */
long sr_room_from_path(const char *path, size_t len, char *dst, size_t dstcap);
/* The user ID segment after /profile/, percent-decoded, then reduced to its
 * localpart. Same returns as above. */
long sr_profile_user_from_path(const char *path, size_t len, char *dst,
                               size_t dstcap);

/* ------------------------------------------------------------------------ */
/* Keyed hash: SipHash-2-4 with a 128-bit key, the "SipHash key" derived    */
/* from the deployment's secret. (An "hkey" is something else: the hex hash */
/* of a routing key that sr_route hands to HAProxy.)                         */
typedef struct {
    uint64_t k0, k1;
} sr_sipkey;
/* Derive a SipHash key from an arbitrary secret string (deterministic; NULL
 * is the empty secret). Never fails. */
sr_sipkey sr_sipkey_from_secret(const char *secret, size_t len);
/* SipHash-2-4 of data[0..len) under k. Pure, never fails. */
uint64_t sr_siphash(const sr_sipkey *k, const void *data, size_t len);
/* 16 lowercase hex digits + NUL into out[17]. */
void sr_hex64(uint64_t v, char out[17]);
/* XXH64 of data[0..len) with seed: what HAProxy's `xxh64(<seed>),hex`
 * prints, as a number (data may be NULL when len is 0). Never fails. */
uint64_t sr_xxh64(const void *data, size_t len, uint64_t seed);

/* ------------------------------------------------------------------------ */
/* Files: the paths matching a shell pattern (libc glob(3); flags and their */
/* reasons in sr_glob.c: no brace or tilde expansion, no match is an empty  */
/* list, wildcards skip hidden files, sorted bytewise).                      */
typedef struct {
    char **path; /* n NUL-terminated paths, sorted bytewise   */
    size_t n;
} sr_paths;
/* Fills *out (free with sr_paths_free). Returns 0 (out->n == 0: nothing
 * matches, including a directory on the way that does not exist), or -1
 * with "<pattern>: <problem>" in err when a directory cannot be read or
 * memory runs out (*out is then empty). Never raises. */
int sr_glob(const char *pattern, sr_paths *out, char *err, size_t errlen);
/* Frees the paths and empties *p; NULL is a no-op. */
void sr_paths_free(sr_paths *p);
/* 1 if a name (not a path: '/' is ordinary) matches the same pattern
 * language (fnmatch(3)), else 0. Pure. */
int sr_name_match(const char *pattern, const char *name);

/* ------------------------------------------------------------------------ */
/* YAML: libyaml -> an immutable node tree with line/column positions.       */
typedef enum {
    SR_Y_NULL,
    SR_Y_SCALAR,
    SR_Y_SEQ,
    SR_Y_MAP
} sr_ytype;
typedef struct sr_ynode sr_ynode;
struct sr_ynode {
    sr_ytype type;
    int line, col; /* 1-based position of the node's start      */
    int plain;     /* scalar: 1 if it was unquoted (plain)      */
    int shared;    /* 1 if an alias names it: it occurs more than
                      once in the tree                          */
    char *str;     /* scalar text (NUL-terminated copy)         */
    size_t len;
    size_t n;         /* SEQ: items; MAP: pairs                    */
    sr_ynode **items; /* SEQ: n items; MAP: 2n (key, value, ...)   */
};
typedef struct sr_ydoc sr_ydoc; /* owns every node; aliases share nodes */

/* Limits of one load; a field of 0 takes its default. Crossing one is a
 * data error naming the limit (messages below).
 *  - max_bytes: the file (or string) size. Synapse's own files are a few
 *    KiB (its old fully commented sample homeserver.yaml about 100 KiB);
 *    1 MiB leaves ten times that and keeps what the Lua side builds from
 *    one file to a few tens of MiB, within HAProxy's Lua memory.
 *  - max_nodes, max_text: the size of the tree once every alias is
 *    expanded (nodes, and bytes of scalar text). Aliases are never copied,
 *    but whoever walks the tree pays for each occurrence; a "billion
 *    laughs" document is refused at the alias that crosses the limit, in
 *    time linear in its text. */
#define SR_YAML_MAX_BYTES ((size_t)1 << 20)
#define SR_YAML_MAX_NODES ((size_t)1000000)
#define SR_YAML_MAX_TEXT  ((size_t)16 << 20)
typedef struct {
    size_t max_bytes, max_nodes, max_text;
} sr_yaml_limits;

/* A document's size with every alias expanded (see sr_ydoc_size). */
typedef struct {
    size_t nodes; /* nodes, an aliased subtree counted at each alias */
    size_t text;  /* bytes of scalar text, counted the same way      */
    size_t depth; /* sequences and mappings nested, at the deepest
                     (at most 256, through aliases too)             */
} sr_ysize;

/* Load the first document of a regular file. lim NULL: the defaults.
 * Never reads anything but a regular file: a FIFO, device, directory or
 * socket is refused before any read (opened O_NONBLOCK, checked with fstat
 * on the open descriptor). On error NULL and err =
 *   "<path>: cannot open: <strerror>"
 *   "<path>: is not a regular file (a FIFO)"  (a character device, ...)
 *   "<path>: is too large (N bytes; the limit is M bytes)"
 *   "<path>: cannot read: <strerror>" / "<path>: out of memory"
 *   "<path>:<line>:<col>: <problem>", a YAML or limit problem, e.g.
 *   "<path>:9:12: alias *a expands the document beyond 1000000 nodes (the
 *    limit on nodes with aliases expanded)"; sequences and mappings nest at
 *   most 256 deep, aliases expanded ("alias *a nests the document deeper
 *   than 256 levels"), so a recursive walk of the tree stays shallow.
 * Exactly the problems about the file as a whole have no line. An empty
 * file gives a doc whose root is SR_Y_NULL. Merge keys (<<) are kept as
 * ordinary pairs; aliases point to the anchored node. Never raises. */
sr_ydoc *sr_yaml_load_file(const char *path, const sr_yaml_limits *lim, char *err,
                           size_t errlen);
/* The same over buf[0..len) (name is used in messages, "<string>" when
 * NULL); a buffer over max_bytes is "<name>: is too large (...)". */
sr_ydoc *sr_yaml_load_string(const char *buf, size_t len, const char *name,
                             const sr_yaml_limits *lim, char *err, size_t errlen);
/* The expanded size, computed once at load; {0, 0} for NULL. */
sr_ysize sr_ydoc_size(const sr_ydoc *d);
const sr_ynode *sr_ydoc_root(const sr_ydoc *d);
void sr_ydoc_free(sr_ydoc *d);

/* ------------------------------------------------------------------------ */
/* The router: the whole per-request decision, from data built by the Lua    */
/* policy at load time. See docs/design.md "Router data".                    */
typedef enum {
    SR_KEY_NONE = 0, /* no stickiness                                     */
    SR_KEY_USER,     /* from the access token (or token hash)             */
    SR_KEY_ROOM,     /* from the path                                     */
    SR_KEY_ORIGIN,   /* X-Matrix origin, else the source address          */
    SR_KEY_PATH_USER /* the user in /profile/{userId}                     */
} sr_key_src;

typedef enum {
    SR_REFINE_NONE = 0,
    SR_REFINE_SINCE,
    SR_REFINE_POS
} sr_refine;

typedef struct {
    const char *cls;             /* class name, e.g. "event_send"             */
    const char *generic_backend; /* backend for the methods in generic_methods
                                    (those generic workers serve)            */
    const char *other_backend;   /* backend for every other method; NULL =
                                    generic_backend                          */
    unsigned generic_methods;    /* SR_M_* bits; 0 = every method             */
    sr_key_src key;              /* where the stickiness key comes from       */
    int as_ok;                   /* appservice override allowed               */
    const char *reason;          /* explain only; may be NULL                 */
} sr_target;

typedef struct {
    const char *id;      /* route id from routes.yaml                 */
    const char *pattern; /* PCRE2, starts with '^'                    */
    unsigned methods;    /* match filter, 0 = any                     */
    int target;          /* index into targets                        */
    sr_refine refine;
    int alt_target; /* used when the refine condition holds      */
} sr_entry;

typedef struct {
    const char *secret;
    size_t secret_len;
    const sr_entry *entries;
    size_t n_entries;
    const sr_target *targets;
    size_t n_targets;
    int fallback_target; /* for paths no entry matches (class main)   */
    const char *const *as_tokens;
    size_t n_as_tokens;            /* raw as_tokens    */
    const char *const *as_senders; /* their localparts */
    const char *as_backend;        /* NULL: no appservice pool                  */
} sr_router_spec;

typedef struct sr_router sr_router;
/* Copies everything it needs from spec (spec may be freed afterwards).
 * as_tokens are stored only as keyed hashes. On bad data or out of memory
 * returns NULL and fills *err (may be NULL) with the failing item: entry,
 * target or as_token index (0-based), or SR_AT_INPUT. Never raises. */
sr_router *sr_router_new(const sr_router_spec *spec, sr_error *err);
/* Frees the router and everything it owns; NULL is a no-op. */
void sr_router_free(sr_router *r);

/* Key kinds as printed: "none", "user", "syt" (the segment of a syt_ token
 * whose segment is not the canonical base64 of a localpart), "room",
 * "origin", "token-hash". */
typedef struct {
    int entry;                          /* matched entry index, -1 = fallback        */
    const char *route_id;               /* entry id or "default"                     */
    const char *cls, *backend, *reason; /* point into the router          */
    const char *key_kind;
    char key[512];  /* readable key ("" for none); never a token */
    char hkey[17];  /* the hkey: sr_router_hkey(key_kind, key),
                       "" when there is no key                   */
    int token_kind; /* sr_tok_kind                               */
    int appservice; /* 1 if the as_token override applied        */
} sr_decision;

/* `in` is the HAProxy-built string "METHOD SRC PATHQ AUTH" (AUTH is the rest
 * of the line, "-" or empty when absent). Never fails: malformed input gives
 * the fallback target (or "blocked" if the path says so) with no key. */
void sr_route(const sr_router *r, const char *in, size_t len, sr_decision *d);
/* Writes "backend|class|hkey" (hkey may be empty) into out; returns length.
 * If out is too small: out = "" (when outcap > 0) and 0. Never fails. */
size_t sr_route_packed(const sr_router *r, const char *in, size_t len,
                       char *out, size_t outcap);
/* The hkey of (kind, key), as sr_route computes it (used by MAS
 * resolution and `synroute show`): 16 lowercase hex digits of XXH64 under
 * the seed of the kind's family (sr_router_hkey_seed), over the key as
 * HAProxy sees it: kind "user" (a localpart) as unpadded standard base64
 * (a syt_ token's segment), kind "syt" (such a segment), "room", "origin"
 * and others as they are. HAProxy computes the same with
 * `<key>,xxh64(<seed>),hex,lower`. Never fails, never allocates. */
void sr_router_hkey(const sr_router *r, const char *kind, const char *key,
                    size_t keylen, char out[17]);
/* The XXH64 seed of kind's family (user and syt share one; room, origin,
 * and all others one each), below 2^63, derived from the secret; 0 for a
 * NULL router. Never fails. */
uint64_t sr_router_hkey_seed(const sr_router *r, const char *kind);

#endif
