/*
 * fuzz_spec.h - the router spec as data, written by gen_spec.lua from the
 * repository's route table and a real deployment, in the shape the Lua
 * binding reads it (names of methods and key sources, 0-based indices);
 * fuzz_router.c turns it into an sr_router_spec the way the binding does.
 */
#ifndef FUZZ_SPEC_H
#define FUZZ_SPEC_H
#include <stddef.h>

typedef struct {
    const char *cls, *generic_backend, *other_backend; /* other: NULL = generic */
    const char *generic_methods;                       /* "GET,HEAD"; NULL = any */
    const char *key;                                   /* none|user|room|origin|path_user */
    int as_ok;
    const char *reason;
} fz_target;

typedef struct {
    const char *id, *pattern;
    const char *methods; /* "GET,POST"; NULL = any */
    int target;
    const char *refine; /* NULL, "since" or "pos" */
    int alt_target;
} fz_entry;

typedef struct {
    const char *input; /* "METHOD SRC PATHQ AUTH" */
    size_t len;
    const char *packed; /* what the Lua binding's router answered */
} fz_check;

extern const fz_target fz_targets[];
extern const size_t fz_n_targets;
extern const fz_entry fz_entries[];
extern const size_t fz_n_entries;
extern const int fz_fallback;
extern const char fz_secret[];
extern const size_t fz_secret_len;
extern const char *const fz_as_tokens[], *const fz_as_senders[];
extern const size_t fz_n_as_tokens;
extern const char *const fz_as_backend;
extern const char *const fz_backends[]; /* NULL-terminated */
extern const fz_check fz_checks[];
extern const size_t fz_n_checks;
#endif
