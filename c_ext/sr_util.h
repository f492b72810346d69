/*
 * sr_util.h - small helpers the core's own files share (not part of the
 * public contract in sr_core.h): error reporting and string copies.
 */
#ifndef SR_UTIL_H
#define SR_UTIL_H

#include "sr_core.h"

/* Internal functions are not exported from the module: calls between the
 * core's files stay direct (no PLT) in the shared object. */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(hidden)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SR_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define SR_PRINTF(fmt, first)
#endif

/* Fill *e (NULL: no-op) with the failing item (at, 0-based index, name or
 * NULL) and a printf-formatted message, truncated to fit. Never fails. */
void sr_errf(sr_error *e, sr_err_at at, size_t index, const char *name,
             const char *fmt, ...) SR_PRINTF(5, 6);

/* *e (NULL: no-op) says "no error": at SR_AT_INPUT, empty message. */
void sr_err_clear(sr_error *e);

/* sr_errf for the input as a whole (no index, no name). */
#define sr_err_input(e, ...) sr_errf((e), SR_AT_INPUT, 0, NULL, __VA_ARGS__)

/* A malloc'ed copy of the NUL-terminated s. NULL when s is NULL or out of
 * memory (callers tell the two apart by s). Never raises. */
char *sr_strdup(const char *s);

/* free() each of the n pointers (NULLs are fine): for the arrays a core
 * object owns, listed once where the object is freed. */
void sr_free_all(void *const *ptrs, size_t n);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#endif
