/*
 * sr_yaml.c - libyaml (event API) -> an immutable sr_ynode tree with 1-based
 * line/column positions.
 *
 * Ownership: an sr_ydoc owns every node it contains (listed in doc->all) and
 * frees them all in sr_ydoc_free. An alias is never expanded: it is the very
 * node its anchor names, so a node may appear several times in the tree (a
 * DAG, never a cycle: an alias to a node still being built is an error).
 * That makes "billion laughs" documents cost no more than their text.
 *
 * Errors (returned as NULL + message, never printed): syntax errors
 * ("<name>:<line>:<col>: <libyaml problem> (<context> at line L)"), undefined
 * aliases, recursive aliases, nesting deeper than SR_YAML_MAX_DEPTH, out of
 * memory, and for files "<path>: cannot open: <strerror>".
 * Only the first document of a stream is read; the rest is not parsed.
 */
#include "sr_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SR_YAML_MAX_DEPTH 256

struct sr_ydoc {
    sr_ynode *root;
    sr_ynode **all; /* every node, for freeing */
    size_t nall, capall;
};

typedef struct { /* an open sequence or mapping */
    sr_ynode *node;
    size_t count, cap; /* items used / allocated */
    char *anchor;      /* registered when the node is complete */
} frame;

typedef struct { /* anchor -> node (open addressing) */
    char *name;
    sr_ynode *node;
} anchor_slot;

typedef struct {
    sr_ydoc *doc;
    const char *name;
    char *err;
    size_t errlen;
    frame stack[SR_YAML_MAX_DEPTH];
    size_t depth;
    anchor_slot *anchors;
    size_t nanchors, capanchors; /* capanchors: 0 or a power of two */
} builder;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    SR_PRINTF(3, 4);

/* Format a message into err (NULL or errlen 0: nothing); never fails. */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void free_node(sr_ynode *n)
{
    free(n->str);
    free(n->items);
    free(n);
}

/* Frees the document and every node in it; NULL is a no-op. */
void sr_ydoc_free(sr_ydoc *d)
{
    size_t i;
    if (!d) return;
    for (i = 0; i < d->nall; i++) free_node(d->all[i]);
    free(d->all);
    free(d);
}

/* The root node (owned by d; SR_Y_NULL for an empty document), NULL for a
 * NULL d. */
const sr_ynode *sr_ydoc_root(const sr_ydoc *d)
{
    return d ? d->root : NULL;
}

/* A new node owned by the doc, or NULL (out of memory). */
static sr_ynode *new_node(sr_ydoc *d, sr_ytype t, const yaml_mark_t *m)
{
    sr_ynode *n;
    if (d->nall == d->capall) {
        size_t nc = d->capall ? d->capall * 2 : 64;
        sr_ynode **na = realloc(d->all, nc * sizeof *na);
        if (!na) return NULL;
        d->all = na;
        d->capall = nc;
    }
    n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->type = t;
    n->line = m ? (int)m->line + 1 : 1;
    n->col = m ? (int)m->column + 1 : 1;
    d->all[d->nall++] = n;
    return n;
}

/* FNV-1a, only to spread anchor names over the table. */
static size_t name_hash(const char *s)
{
    size_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static anchor_slot *anchor_find(builder *b, const char *name)
{
    size_t i;
    if (!b->capanchors) return NULL;
    for (i = name_hash(name) & (b->capanchors - 1); b->anchors[i].name;
         i = (i + 1) & (b->capanchors - 1))
        if (strcmp(b->anchors[i].name, name) == 0) return &b->anchors[i];
    return NULL;
}

/* Register (or redefine: YAML lets a later anchor shadow an earlier one).
 * Takes ownership of `name` on success. Returns 0, or -1 (out of memory). */
static int anchor_set(builder *b, char *name, sr_ynode *node)
{
    anchor_slot *s = anchor_find(b, name);
    size_t i;
    if (s) {
        free(name);
        s->node = node;
        return 0;
    }
    if ((b->nanchors + 1) * 2 > b->capanchors) {
        size_t nc = b->capanchors ? b->capanchors * 2 : 16, j;
        anchor_slot *na = calloc(nc, sizeof *na);
        if (!na) return -1;
        for (j = 0; j < b->capanchors; j++) {
            if (!b->anchors[j].name) continue;
            for (i = name_hash(b->anchors[j].name) & (nc - 1); na[i].name;
                 i = (i + 1) & (nc - 1)) {}
            na[i] = b->anchors[j];
        }
        free(b->anchors);
        b->anchors = na;
        b->capanchors = nc;
    }
    for (i = name_hash(name) & (b->capanchors - 1); b->anchors[i].name;
         i = (i + 1) & (b->capanchors - 1)) {}
    b->anchors[i].name = name;
    b->anchors[i].node = node;
    b->nanchors++;
    return 0;
}

/* Attach a finished node to the open container (or make it the root).
 * Returns 0 or -1 (out of memory). */
static int attach(builder *b, sr_ynode *n)
{
    frame *f;
    if (b->depth == 0) {
        if (!b->doc->root) b->doc->root = n;
        return 0;
    }
    f = &b->stack[b->depth - 1];
    if (f->count == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 4;
        sr_ynode **ni = realloc(f->node->items, nc * sizeof *ni);
        if (!ni) return -1;
        f->node->items = ni;
        f->cap = nc;
    }
    f->node->items[f->count++] = n;
    return 0;
}

static void yaml_problem(builder *b, const yaml_parser_t *p)
{
    const yaml_mark_t *m = &p->problem_mark;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR || p->error == YAML_MEMORY_ERROR)
        m = &p->mark; /* the reader does not set problem_mark */
    if (p->context)
        set_err(b->err, b->errlen, "%s:%lu:%lu: %s (%s at line %lu)", b->name,
                (unsigned long)m->line + 1, (unsigned long)m->column + 1,
                problem, p->context, (unsigned long)p->context_mark.line + 1);
    else
        set_err(b->err, b->errlen, "%s:%lu:%lu: %s", b->name,
                (unsigned long)m->line + 1, (unsigned long)m->column + 1,
                problem);
}

/* Report a problem at mark m ("<name>:<line>:<col>: <message>"); -1. */
static int fail_at(builder *b, const yaml_mark_t *m, const char *fmt, ...)
    SR_PRINTF(3, 4);

static int fail_at(builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!b->err || b->errlen == 0) return -1;
    n = snprintf(b->err, b->errlen, "%s:%lu:%lu: ", b->name, (unsigned long)m->line + 1,
                 (unsigned long)m->column + 1);
    if (n < 0 || (size_t)n >= b->errlen) return -1;
    va_start(ap, fmt);
    vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_oom(builder *b)
{
    set_err(b->err, b->errlen, "%s: out of memory", b->name);
    return -1;
}

/* 1 if a node still open (being built) carries anchor a. */
static int anchor_open(const builder *b, const char *a)
{
    for (size_t i = 0; i < b->depth; i++)
        if (b->stack[i].anchor && strcmp(b->stack[i].anchor, a) == 0) return 1;
    return 0;
}

/* An alias: the anchored node itself. An anchor on a node still open is
 * not registered yet, and a redefinition by an enclosing open node shadows
 * an earlier one: both are recursive aliases. */
static int on_alias(builder *b, const yaml_event_t *ev)
{
    const char *a = (const char *)ev->data.alias.anchor;
    anchor_slot *s = anchor_find(b, a);
    if (anchor_open(b, a))
        return fail_at(b, &ev->start_mark, "alias *%s refers to an enclosing node (recursive alias)", a);
    if (!s) return fail_at(b, &ev->start_mark, "undefined alias *%s", a);
    return attach(b, s->node) < 0 ? fail_oom(b) : 1;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    size_t l = ev->data.scalar.length;
    sr_ynode *n = new_node(b->doc, SR_Y_SCALAR, &ev->start_mark);
    char *a = NULL;
    if (!n || !(n->str = malloc(l + 1))) return fail_oom(b);
    memcpy(n->str, ev->data.scalar.value, l);
    n->str[l] = '\0';
    n->len = l;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
               ev->data.scalar.plain_implicit;
    if (attach(b, n) < 0) return fail_oom(b);
    if (!ev->data.scalar.anchor) return 1;
    a = sr_strdup((const char *)ev->data.scalar.anchor);
    if (!a || anchor_set(b, a, n) < 0) {
        free(a);
        return fail_oom(b);
    }
    return 1;
}

/* A sequence or mapping starts: a new open frame. */
static int on_start(builder *b, const yaml_event_t *ev)
{
    int seq = ev->type == YAML_SEQUENCE_START_EVENT;
    const yaml_char_t *anc = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    sr_ynode *n;
    frame *f;
    if (b->depth >= SR_YAML_MAX_DEPTH)
        return fail_at(b, &ev->start_mark, "nesting deeper than %d levels", SR_YAML_MAX_DEPTH);
    n = new_node(b->doc, seq ? SR_Y_SEQ : SR_Y_MAP, &ev->start_mark);
    if (!n) return fail_oom(b);
    f = &b->stack[b->depth];
    f->node = n;
    f->count = f->cap = 0;
    f->anchor = NULL;
    if (anc && !(f->anchor = sr_strdup((const char *)anc))) return fail_oom(b);
    b->depth++;
    return 1;
}

/* A sequence or mapping ends: register its anchor, attach it. */
static int on_end(builder *b)
{
    frame *f = &b->stack[--b->depth];
    sr_ynode *n = f->node;
    n->n = n->type == SR_Y_MAP ? f->count / 2 : f->count;
    if (f->anchor) {
        char *a = f->anchor;
        f->anchor = NULL;
        if (anchor_set(b, a, n) < 0) {
            free(a);
            return fail_oom(b);
        }
    }
    return attach(b, n) < 0 ? fail_oom(b) : 1;
}

/* Handle one event. Returns 1 to go on, 0 when done, -1 on error (message
 * written). */
static int on_event(builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_END_EVENT:
    case YAML_STREAM_END_EVENT:
        return 0;
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b);
    default: /* stream/document start, no event */
        return 1;
    }
}

/* Feed the parser's events for buf[0..len) to the builder until the first
 * document ends. 0 done, -1 on error (message written). */
static int run_parser(builder *b, const char *buf, size_t len)
{
    yaml_parser_t parser;
    int rc = 1;
    if (!yaml_parser_initialize(&parser)) return fail_oom(b);
    yaml_parser_set_input_string(&parser, (const unsigned char *)(buf ? buf : ""),
                                 buf ? len : 0);
    while (rc > 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_problem(b, &parser);
            rc = -1;
            break;
        }
        rc = on_event(b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* Frees what the builder holds besides the document. */
static void builder_free(builder *b)
{
    for (size_t i = 0; i < b->depth; i++) free(b->stack[i].anchor);
    for (size_t i = 0; i < b->capanchors; i++) free(b->anchors[i].name);
    free(b->anchors);
}

/* Parse the first document of buf[0..len) (name is used in messages). A
 * document owned by the caller (sr_ydoc_free), or NULL with
 * "<name>:<line>:<col>: <problem>" in err (may be NULL). Never raises. */
sr_ydoc *sr_yaml_load_string(const char *buf, size_t len, const char *name,
                             char *err, size_t errlen)
{
    builder b;
    int rc;
    if (err && errlen) err[0] = '\0';
    memset(&b, 0, sizeof b);
    b.name = name ? name : "<string>";
    b.err = err;
    b.errlen = errlen;
    b.doc = calloc(1, sizeof *b.doc);
    if (!b.doc) {
        fail_oom(&b);
        return NULL;
    }
    rc = run_parser(&b, buf, len);
    builder_free(&b);
    /* an empty stream has a null root */
    if (rc == 0 && !b.doc->root && !(b.doc->root = new_node(b.doc, SR_Y_NULL, NULL)))
        rc = fail_oom(&b);
    if (rc < 0) {
        /* nodes still open are in doc->all too, so this frees everything */
        sr_ydoc_free(b.doc);
        return NULL;
    }
    return b.doc;
}

/* sr_yaml_load_string over the contents of the file at path; NULL with
 * "<path>: cannot open: <reason>" (or cannot read, out of memory, or a
 * parse error) in err. Never raises. */
sr_ydoc *sr_yaml_load_file(const char *path, char *err, size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    sr_ydoc *d;

    if (!path) {
        set_err(err, errlen, "(null): cannot open: %s", strerror(EINVAL));
        return NULL;
    }
    f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, nc);
            if (!nb) {
                set_err(err, errlen, "%s: out of memory", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    d = sr_yaml_load_string(buf, len, path, err, errlen);
    free(buf);
    return d;
}
