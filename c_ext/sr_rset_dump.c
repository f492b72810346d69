/*
 * sr_rset_dump.c - how each entry of a set compiled, as data
 * (sr_rset_entry) and as a table for whoever maintains the patterns
 * (sr_rset_dump). Read-only over a finished set; no allocation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sr_rset_int.h"

/* Fills *out with how entry i compiled. 0, or -1 for a NULL argument or i
 * out of range. Pointers in *out point into the set. */
int sr_rset_entry(const sr_rset *s, size_t i, sr_rset_entry_info *out)
{
    const rs_entry *e;
    if (!s || !out || i >= s->n) return -1;
    e = &s->e[i];
    out->name = e->name;
    out->pattern = e->pattern;
    out->methods = e->mask;
    out->n_prefixes = e->nprefix;
    out->remainder = e->pattern + e->roff;
    out->verify = e->verify;
    out->why = e->verify == SR_VERIFY_FULL ? e->why : NULL;
    out->n_required = (unsigned)__builtin_popcountll(e->req);
    out->ending_reject = e->suffix != NULL;
    out->superset_reject = e->pre != NULL;
    out->n_memo = e->nmemo;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The table.                                                                */

/* An snprintf-like writer: len counts every byte asked for, out gets what
 * fits (always NUL-terminated when cap > 0). */
typedef struct {
    char *out;
    size_t cap, len;
} rs_out;

static void put(rs_out *w, const char *fmt, ...) SR_PRINTF(2, 3);

static void put(rs_out *w, const char *fmt, ...)
{
    va_list ap;
    size_t room = w->len < w->cap ? w->cap - w->len : 0;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(room ? w->out + w->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) w->len += (size_t)n;
}

/* The methods of mask m as "any" or "GET,HEAD,...", into buf (64 bytes
 * hold every method name). */
static const char *methods_text(unsigned m, char buf[64])
{
    static const char *const names[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
                                         "OPTIONS", "PATCH", "other" };
    size_t o = 0;
    if ((m & SR_M_ALL) == SR_M_ALL) return "any";
    buf[0] = '\0';
    for (unsigned b = 0; b < 8; b++)
        if (m & (1u << b))
            o += (size_t)snprintf(buf + o, 64 - o, "%s%s", o ? "," : "", names[b]);
    return buf;
}

static const char *verify_word(sr_verify v)
{
    switch (v) {
    case SR_VERIFY_LITERAL: return "literal";
    case SR_VERIFY_TAIL: return "tail";
    case SR_VERIFY_GLOB: return "glob";
    case SR_VERIFY_REGEX: return "regex";
    default: return "full";
    }
}

/* Widths of the name and methods columns. */
typedef struct {
    int name, methods;
} rs_widths;

static rs_widths column_widths(const sr_rset *s)
{
    rs_widths w = { 4, 7 }; /* "name", "methods" */
    char buf[64];
    for (size_t i = 0; i < s->n; i++) {
        size_t nl = s->e[i].name ? strlen(s->e[i].name) : 1;
        size_t ml = strlen(methods_text(s->e[i].mask, buf));
        if (nl > (size_t)w.name) w.name = nl > 40 ? 40 : (int)nl;
        if (ml > (size_t)w.methods) w.methods = (int)ml;
    }
    return w;
}

/* word for n == 1, else words. */
static const char *plural(size_t n, const char *word, const char *words)
{
    return n == 1 ? word : words;
}

/* The first line: what the whole set is made of. */
static void put_summary(rs_out *w, const sr_rset *s)
{
    size_t with_prefix = 0, prefixes = 0;
    for (size_t i = 0; i < s->n; i++) {
        with_prefix += s->e[i].nprefix > 0;
        prefixes += s->e[i].nprefix;
    }
    put(w, "regex set: %zu %s, %zu with a literal prefix (%zu %s in a trie of %zu %s); "
           "%zu dictionary %s; %zu memoized %s; JIT %s\n",
        s->n, plural(s->n, "entry", "entries"), with_prefix, prefixes,
        plural(prefixes, "prefix", "prefixes"), s->n_cn, plural(s->n_cn, "node", "nodes"),
        s->dict.n, plural(s->dict.n, "run", "runs"), s->memo_n, plural(s->memo_n, "path", "paths"),
        s->jit ? "on" : "off");
}

/* What else a maintainer should know about one entry, after the remainder:
 * why the whole pattern is used, or the quick rejects tried first. */
static void put_notes(rs_out *w, const sr_rset_entry_info *in)
{
    const char *item[3];
    char runs[48];
    size_t n = 0;
    if (in->verify == SR_VERIFY_FULL) {
        put(w, "  [%s%s]", in->why ? in->why : "",
            in->n_prefixes ? "" : ": tried for every request");
        return;
    }
    if (in->n_required) {
        snprintf(runs, sizeof runs, "%u dictionary run%s", in->n_required,
                 in->n_required == 1 ? "" : "s");
        item[n++] = runs;
    }
    if (in->ending_reject) item[n++] = "ending";
    if (in->superset_reject) item[n++] = "superset";
    if (in->verify == SR_VERIFY_REGEX && n == 0) put(w, "  [no quick reject]");
    if (n == 0) return;
    put(w, "  [%s", in->verify == SR_VERIFY_REGEX ? "quick rejects: " : "");
    for (size_t k = 0; k < n; k++) put(w, "%s%s", k ? ", " : "", item[k]);
    put(w, "]");
}

/* One line for entry i: the columns, then the remainder and notes. */
static void put_entry(rs_out *w, const sr_rset *s, size_t i, rs_widths cw)
{
    sr_rset_entry_info in;
    char buf[64], memo[24];
    sr_rset_entry(s, i, &in);
    snprintf(memo, sizeof memo, "%zu", in.n_memo);
    put(w, "%5zu  %-*.*s  %-*s  %-7s  %8zu  %4s", i + 1, cw.name, cw.name,
        in.name ? in.name : "-", cw.methods, methods_text(in.methods, buf),
        verify_word(in.verify), in.n_prefixes, in.n_memo ? memo : "-");
    if (in.n_prefixes == 0) put(w, "  (whole pattern)");
    else if (in.remainder[0]) put(w, "  %s", in.remainder);
    put_notes(w, &in);
    put(w, "\n");
}

static void put_legend(rs_out *w)
{
    put(w, "verify: literal  the prefix is the whole pattern: a trie hit is the match\n"
           "        tail     the rest is literal text (and '$'): compared in place\n"
           "        glob     the rest is literal runs joined by '.*': matched without PCRE2\n"
           "        regex    PCRE2 on the rest at the prefix end, after the quick rejects\n"
           "        full     PCRE2 on the whole pattern, for the reason given\n"
           "prefixes: literal prefixes in the trie (0: the entry is tried for every request)\n"
           "memo: complete paths answered by one hash probe\n"
           "dictionary runs: '/...' texts the path must contain, found for all entries in one pass\n");
}

/* The whole set as a text table (contract in sr_core.h): snprintf-like,
 * returns the full length, writes at most cap bytes. Never fails. */
size_t sr_rset_dump(const sr_rset *s, char *out, size_t cap)
{
    rs_out w = { out, out ? cap : 0, 0 };
    rs_widths cw;
    if (w.cap) out[0] = '\0';
    if (!s) return 0;
    cw = column_widths(s);
    put_summary(&w, s);
    put(&w, "entry  %-*s  %-*s  verify   prefixes  memo  remainder\n", cw.name, "name",
        cw.methods, "methods");
    for (size_t i = 0; i < s->n; i++) put_entry(&w, s, i, cw);
    put_legend(&w);
    return w.len;
}
