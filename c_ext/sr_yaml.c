/*
 * sr_yaml.c - libyaml (event API) -> an immutable sr_ynode tree with 1-based
 * line/column positions.
 *
 * Ownership: an sr_ydoc owns every node it contains (listed in doc->all) and
 * frees them all in sr_ydoc_free. An alias is never expanded: it is the very
 * node its anchor names, so a node may appear several times in the tree (a
 * DAG, never a cycle: an alias to a node still being built is an error).
 * Building costs no more than the text, but whoever walks the tree pays for
 * every occurrence, so the expanded size is counted while building: one
 * running total of nodes and scalar bytes, to which a node adds itself and
 * an alias adds the expanded size of its anchored node (remembered with the
 * anchor: the total's growth between the node's start and end). The total
 * is the whole tree's expanded size at every step, so the node or alias
 * that crosses a limit is the one reported. The nesting limit holds with
 * aliases expanded too: an anchored node remembers its height.
 *
 * Files: only regular files are read, never more than the size limit. The
 * path is stat'ed first (so a device is not even opened), then opened with
 * O_NONBLOCK (a FIFO without a writer cannot block the open) and checked
 * again with fstat on the descriptor: that check decides, whatever the path
 * pointed to in between.
 *
 * Errors (returned as NULL + message, never printed): syntax errors
 * ("<name>:<line>:<col>: <libyaml problem> (<context> at line L)"), undefined
 * aliases, recursive aliases, nesting deeper than SR_YAML_MAX_DEPTH, the
 * limits (sr_core.h), out of memory, and for files the problems of the file
 * as a whole ("<path>: <problem>", no line).
 * Only the first document of a stream is read; the rest is not parsed.
 */
#include "sr_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define SR_YAML_MAX_DEPTH 256

struct sr_ydoc {
    sr_ynode *root;
    sr_ynode **all; /* every node, for freeing */
    size_t nall, capall;
    sr_ysize size; /* expanded size of the tree */
};

typedef struct { /* an open sequence or mapping */
    sr_ynode *node;
    size_t count, cap; /* items used / allocated */
    char *anchor;      /* registered when the node is complete */
    sr_ysize start;    /* the running total before this node */
    size_t height;     /* containers nested in the items so far */
} frame;

typedef struct { /* anchor -> node (open addressing) */
    char *name;
    sr_ynode *node;
    sr_ysize size; /* the node's expanded size (depth: its height) */
} anchor_slot;

typedef struct {
    sr_ydoc *doc;
    const char *name;
    char *err;
    size_t errlen;
    sr_yaml_limits lim; /* every field set (defaults applied) */
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

/* The expanded size counted at load (contract in sr_core.h). */
sr_ysize sr_ydoc_size(const sr_ydoc *d)
{
    sr_ysize z = { 0, 0, 0 };
    return d ? d->size : z;
}

/* lim with its zero fields replaced by the defaults. The totals are kept
 * below SIZE_MAX / 2 so that adding an anchored size never overflows. */
static sr_yaml_limits limits_of(const sr_yaml_limits *lim)
{
    sr_yaml_limits l = { SR_YAML_MAX_BYTES, SR_YAML_MAX_NODES, SR_YAML_MAX_TEXT };
    if (lim && lim->max_bytes) l.max_bytes = lim->max_bytes;
    if (lim && lim->max_nodes) l.max_nodes = lim->max_nodes;
    if (lim && lim->max_text) l.max_text = lim->max_text;
    if (l.max_nodes > SIZE_MAX / 2) l.max_nodes = SIZE_MAX / 2;
    if (l.max_text > SIZE_MAX / 2) l.max_text = SIZE_MAX / 2;
    return l;
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

/* Register (or redefine: YAML lets a later anchor shadow an earlier one)
 * node with its expanded size. Takes ownership of `name` on success.
 * Returns 0, or -1 (out of memory). */
static int anchor_set(builder *b, char *name, sr_ynode *node, sr_ysize size)
{
    anchor_slot *s = anchor_find(b, name);
    size_t i;
    if (s) {
        free(name);
        s->node = node;
        s->size = size;
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
    b->anchors[i].size = size;
    b->nanchors++;
    return 0;
}

/* Attach a finished node to the open container (or make it the root);
 * height: containers nested in it, itself included, aliases expanded.
 * Returns 0 or -1 (out of memory). */
static int attach(builder *b, sr_ynode *n, size_t height)
{
    frame *f;
    if (b->depth == 0) {
        if (!b->doc->root) {
            b->doc->root = n;
            b->doc->size.depth = height;
        }
        return 0;
    }
    f = &b->stack[b->depth - 1];
    if (height > f->height) f->height = height;
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

/* Add a node's expanded size (an alias: its anchored node's, alias names
 * it) to the running total; -1 with the message when a limit is crossed. */
static int grow(builder *b, const yaml_mark_t *m, sr_ysize add, const char *alias)
{
    sr_ysize *t = &b->doc->size;
    t->nodes += add.nodes; /* both below SIZE_MAX / 2: no overflow */
    t->text += add.text;
    if (t->nodes > b->lim.max_nodes && alias)
        return fail_at(b, m, "alias *%s expands the document beyond %zu nodes (the limit on nodes with aliases expanded)",
                       alias, b->lim.max_nodes);
    if (t->nodes > b->lim.max_nodes)
        return fail_at(b, m, "the document has more than %zu nodes (the limit)", b->lim.max_nodes);
    if (t->text > b->lim.max_text && alias)
        return fail_at(b, m, "alias *%s expands the document's text beyond %zu bytes (the limit on scalar text with aliases expanded)",
                       alias, b->lim.max_text);
    if (t->text > b->lim.max_text)
        return fail_at(b, m, "the document's text is more than %zu bytes (the limit)", b->lim.max_text);
    return 0;
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
    if (b->depth + s->size.depth > SR_YAML_MAX_DEPTH)
        return fail_at(b, &ev->start_mark, "alias *%s nests the document deeper than %d levels", a,
                       SR_YAML_MAX_DEPTH);
    if (grow(b, &ev->start_mark, s->size, a) < 0) return -1;
    s->node->shared = 1;
    return attach(b, s->node, s->size.depth) < 0 ? fail_oom(b) : 1;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
    size_t l = ev->data.scalar.length;
    sr_ysize size = { 1, l, 0 };
    sr_ynode *n;
    char *a = NULL;
    if (grow(b, &ev->start_mark, size, NULL) < 0) return -1;
    n = new_node(b->doc, SR_Y_SCALAR, &ev->start_mark);
    if (!n || !(n->str = malloc(l + 1))) return fail_oom(b);
    memcpy(n->str, ev->data.scalar.value, l);
    n->str[l] = '\0';
    n->len = l;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
               ev->data.scalar.plain_implicit;
    if (attach(b, n, 0) < 0) return fail_oom(b);
    if (!ev->data.scalar.anchor) return 1;
    a = sr_strdup((const char *)ev->data.scalar.anchor);
    if (!a || anchor_set(b, a, n, size) < 0) {
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
    sr_ysize one = { 1, 0, 0 }, start = b->doc->size;
    sr_ynode *n;
    frame *f;
    if (b->depth >= SR_YAML_MAX_DEPTH)
        return fail_at(b, &ev->start_mark, "nesting deeper than %d levels", SR_YAML_MAX_DEPTH);
    if (grow(b, &ev->start_mark, one, NULL) < 0) return -1;
    n = new_node(b->doc, seq ? SR_Y_SEQ : SR_Y_MAP, &ev->start_mark);
    if (!n) return fail_oom(b);
    f = &b->stack[b->depth];
    f->node = n;
    f->count = f->cap = 0;
    f->anchor = NULL;
    f->start = start;
    f->height = 0;
    if (anc && !(f->anchor = sr_strdup((const char *)anc))) return fail_oom(b);
    b->depth++;
    return 1;
}

/* A sequence or mapping ends: register its anchor, attach it. */
static int on_end(builder *b)
{
    frame *f = &b->stack[--b->depth];
    sr_ynode *n = f->node;
    size_t height = f->height + 1;
    n->n = n->type == SR_Y_MAP ? f->count / 2 : f->count;
    if (f->anchor) {
        char *a = f->anchor;
        sr_ysize size = { b->doc->size.nodes - f->start.nodes, b->doc->size.text - f->start.text,
                          height };
        f->anchor = NULL;
        if (anchor_set(b, a, n, size) < 0) {
            free(a);
            return fail_oom(b);
        }
    }
    return attach(b, n, height) < 0 ? fail_oom(b) : 1;
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

/* Parse the first document of buf[0..len) (name is used in messages)
 * within the limits lim (NULL: defaults). A document owned by the caller
 * (sr_ydoc_free), or NULL with "<name>:<line>:<col>: <problem>" (or
 * "<name>: is too large (...)") in err (may be NULL). Never raises. */
sr_ydoc *sr_yaml_load_string(const char *buf, size_t len, const char *name,
                             const sr_yaml_limits *lim, char *err, size_t errlen)
{
    builder b;
    int rc;
    if (err && errlen) err[0] = '\0';
    memset(&b, 0, sizeof b);
    b.name = name ? name : "<string>";
    b.err = err;
    b.errlen = errlen;
    b.lim = limits_of(lim);
    if (len > b.lim.max_bytes) {
        set_err(err, errlen, "%s: is too large (%zu bytes; the limit is %zu bytes)", b.name, len,
                b.lim.max_bytes);
        return NULL;
    }
    b.doc = calloc(1, sizeof *b.doc);
    if (!b.doc) {
        fail_oom(&b);
        return NULL;
    }
    rc = run_parser(&b, buf, len);
    builder_free(&b);
    /* an empty stream has a null root */
    if (rc == 0 && !b.doc->root) {
        if (!(b.doc->root = new_node(b.doc, SR_Y_NULL, NULL))) rc = fail_oom(&b);
        b.doc->size.nodes = 1;
    }
    if (rc < 0) {
        /* nodes still open are in doc->all too, so this frees everything */
        sr_ydoc_free(b.doc);
        return NULL;
    }
    return b.doc;
}

/* What a non-regular file is, for messages. */
static const char *file_kind(mode_t m)
{
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISSOCK(m)) return "a socket";
    return "not a file";
}

/* 0 if st is a regular file of at most max bytes, else -1 with the
 * message "<path>: <problem>" in err. */
static int check_file(const struct stat *st, const char *path, size_t max, char *err,
                      size_t errlen)
{
    if (!S_ISREG(st->st_mode)) {
        set_err(err, errlen, "%s: is not a regular file (%s)", path, file_kind(st->st_mode));
        return -1;
    }
    if (st->st_size < 0 || (unsigned long long)st->st_size > max) {
        set_err(err, errlen, "%s: is too large (%lld bytes; the limit is %zu bytes)", path,
                (long long)st->st_size, max);
        return -1;
    }
    return 0;
}

/* Read the open regular file fd (size hint `hint`) into a new buffer:
 * at most max bytes (a file that grew past max since fstat is too large).
 * Returns the buffer (owned by the caller, *len set), or NULL with the
 * message in err. */
static char *read_fd(int fd, const char *path, size_t hint, size_t max, size_t *len, char *err,
                     size_t errlen)
{
    size_t cap = hint < max ? hint + 1 : max + 1, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        ssize_t got;
        if (n == cap) {
            /* grew since fstat: room up to max + 1, to see "too large" */
            size_t nc = cap > (max + 1) / 2 ? max + 1 : cap * 2;
            char *nb = nc > cap ? realloc(buf, nc) : NULL;
            if (!nb) break;
            buf = nb;
            cap = nc;
        }
        got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            free(buf);
            return NULL;
        }
        if (got == 0) {
            *len = n;
            return buf;
        }
        n += (size_t)got;
    }
    if (buf && n > max)
        set_err(err, errlen, "%s: is too large (it grew past the limit of %zu bytes while being read)",
                path, max);
    else
        set_err(err, errlen, "%s: out of memory", path);
    free(buf);
    return NULL;
}

/* The contents of the regular file at path, at most max bytes, or NULL
 * with "<path>: <problem>" in err. */
static char *slurp(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    char *buf;
    int fd;
    /* refuse what is plainly not a file without opening it (opening a
     * device can have effects); fstat below is what decides */
    if (stat(path, &st) == 0 && check_file(&st, path, max, err, errlen) < 0) return NULL;
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (check_file(&st, path, max, err, errlen) < 0) {
        close(fd);
        return NULL;
    }
    buf = read_fd(fd, path, (size_t)st.st_size, max, len, err, errlen);
    close(fd);
    return buf;
}

/* sr_yaml_load_string over the contents of the regular file at path
 * (contract and messages in sr_core.h). Never raises. */
sr_ydoc *sr_yaml_load_file(const char *path, const sr_yaml_limits *lim, char *err,
                           size_t errlen)
{
    sr_yaml_limits l = limits_of(lim);
    size_t len = 0;
    char *buf;
    sr_ydoc *d;
    if (err && errlen) err[0] = '\0';
    if (!path) {
        set_err(err, errlen, "(null): cannot open: %s", strerror(EINVAL));
        return NULL;
    }
    buf = slurp(path, l.max_bytes, &len, err, errlen);
    if (!buf) return NULL;
    d = sr_yaml_load_string(buf, len, path, &l, err, errlen);
    free(buf);
    return d;
}
