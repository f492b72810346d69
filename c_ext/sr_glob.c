/*
 * sr_glob.c - file names matching a shell pattern, through libc glob(3).
 *
 * Flags, chosen so that a pattern means what a shell user expects of a
 * plain pattern and nothing more:
 *  - no GLOB_NOCHECK: no match is an empty list, never the pattern itself;
 *  - no GLOB_BRACE, no GLOB_TILDE: '{a,b}' and '~' are ordinary characters;
 *  - no GLOB_PERIOD: wildcards do not match a leading '.' (hidden files,
 *    editor backups such as ".x.yaml.swp" stay out);
 *  - backslash escapes a wildcard (no GLOB_NOESCAPE);
 *  - GLOB_NOSORT, then a bytewise sort here: the order does not depend on
 *    the locale (glob(3) itself sorts with strcoll).
 * A directory on the way that does not exist just matches nothing; any
 * other directory that cannot be read (a symlink loop, a name too long,
 * permission denied for non-root) is an error.
 *
 * Names that are not files (worker names in `pools:`) match the same
 * pattern language through fnmatch(3), with the same flags: no FNM_PERIOD
 * is needed (names have no hidden form), backslash escapes.
 */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_util.h"

/* glob(3)'s error callback: stop on anything but "no such directory". */
static int stop_on_error(const char *path, int eerrno)
{
    (void)path;
    return eerrno != ENOENT && eerrno != ENOTDIR;
}

/* qsort order of two path pointers: bytewise. */
static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Frees the paths of *p and empties it; NULL is a no-op. */
void sr_paths_free(sr_paths *p)
{
    if (!p) return;
    for (size_t i = 0; p->path && i < p->n; i++) free(p->path[i]);
    free(p->path);
    p->path = NULL;
    p->n = 0;
}

/* Copy glob's result into *out, sorted. 0 on out of memory. */
static int copy_sorted(const glob_t *g, sr_paths *out)
{
    out->path = calloc(g->gl_pathc ? g->gl_pathc : 1, sizeof *out->path);
    if (!out->path) return 0;
    for (size_t i = 0; i < g->gl_pathc; i++) {
        out->path[i] = sr_strdup(g->gl_pathv[i]);
        if (!out->path[i]) return 0;
        out->n = i + 1;
    }
    qsort(out->path, out->n, sizeof *out->path, cmp_path);
    return 1;
}

/* The existing paths matching pattern, sorted bytewise, into *out (owned
 * by the caller: sr_paths_free). Returns 0 (out->n may be 0: no match), or
 * -1 with "<pattern>: <problem>" in err (may be NULL) and *out empty when a
 * directory cannot be read or memory runs out. Never raises. */
int sr_glob(const char *pattern, sr_paths *out, char *err, size_t errlen)
{
    glob_t g;
    int rc, saved, ok = 0;
    if (err && errlen) err[0] = '\0';
    out->path = NULL;
    out->n = 0;
    memset(&g, 0, sizeof g);
    errno = 0;
    rc = glob(pattern ? pattern : "", GLOB_NOSORT, stop_on_error, &g);
    saved = errno;
    if (rc == 0 || rc == GLOB_NOMATCH) ok = copy_sorted(&g, out);
    globfree(&g);
    if (ok) return 0;
    sr_paths_free(out);
    if (err && errlen && rc == GLOB_ABORTED)
        snprintf(err, errlen, "%s: cannot read a directory: %s", pattern ? pattern : "",
                 saved ? strerror(saved) : "read error");
    else if (err && errlen)
        snprintf(err, errlen, "%s: out of memory", pattern ? pattern : "");
    return -1;
}

/* 1 if name matches the shell pattern, else 0 (fnmatch(3), flags 0: '*',
 * '?', '[...]' with '!' or '^' negation, backslash escapes; '/' is an
 * ordinary character). NULL matches nothing. Pure. */
int sr_name_match(const char *pattern, const char *name)
{
    if (!pattern || !name) return 0;
    return fnmatch(pattern, name, 0) == 0;
}
