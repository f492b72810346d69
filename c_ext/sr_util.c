/*
 * sr_util.c - the helpers of sr_util.h. No allocation except sr_strdup's
 * copy; no static state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_util.h"

/* Fills *e (NULL: nothing happens): where, and the formatted message
 * (truncated to sizeof e->msg - 1 bytes, NUL-terminated). Never fails. */
void sr_errf(sr_error *e, sr_err_at at, size_t index, const char *name,
             const char *fmt, ...)
{
    va_list ap;
    if (!e) return;
    e->at = at;
    e->index = index;
    e->name = name;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

/* Resets *e (NULL: nothing happens) to "no error". Never fails. */
void sr_err_clear(sr_error *e)
{
    if (!e) return;
    e->at = SR_AT_INPUT;
    e->index = 0;
    e->name = NULL;
    e->msg[0] = '\0';
}

/* Copy of s owned by the caller (free()); NULL for NULL or out of memory. */
char *sr_strdup(const char *s)
{
    size_t n;
    char *d;
    if (!s) return NULL;
    n = strlen(s);
    d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* free() each of ptrs[0..n); NULL entries are fine. */
void sr_free_all(void *const *ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++) free(ptrs[i]);
}
