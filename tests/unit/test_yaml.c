/* test_yaml.c - sr_yaml: tree shape, positions, plain flag, aliases, errors,
 * alias bombs, nesting limit, files. */
#include "unit.h"
#include "sr_core.h"

#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

static sr_ydoc *load(const char *s, char *err, size_t errlen)
{
    return sr_yaml_load_string(s, strlen(s), "t.yaml", NULL, err, errlen);
}

/* Value of key `k` in map m, or NULL. */
static const sr_ynode *get(const sr_ynode *m, const char *k)
{
    size_t i;
    if (!m || m->type != SR_Y_MAP) return NULL;
    for (i = 0; i < m->n; i++)
        if (m->items[2 * i]->type == SR_Y_SCALAR && strcmp(m->items[2 * i]->str, k) == 0)
            return m->items[2 * i + 1];
    return NULL;
}

static int err_has(const char *err, const char *sub)
{
    return strstr(err, sub) != NULL;
}

static void test_basic(void)
{
    char err[256];
    const char *src =
        "version: 1\n"
        "name: \"quoted\"\n"
        "single: 'x'\n"
        "list:\n"
        "  - a\n"
        "  - 2\n"
        "  - [x, y]\n"
        "empty:\n"
        "nested: {k: v}\n";
    sr_ydoc *d = load(src, err, sizeof err);
    const sr_ynode *r, *v;
    CHECK("yaml/basic_loads", d != NULL);
    if (!d) {
        printf("# %s\n", err);
        return;
    }
    r = sr_ydoc_root(d);
    CHECK("yaml/basic_root_map", r->type == SR_Y_MAP && r->n == 6);
    CHECK("yaml/basic_root_pos", r->line == 1 && r->col == 1);
    v = get(r, "version");
    CHECK("yaml/basic_scalar", v && v->type == SR_Y_SCALAR && strcmp(v->str, "1") == 0 && v->len == 1);
    CHECK("yaml/basic_plain", v && v->plain == 1);
    CHECK("yaml/basic_scalar_pos", v && v->line == 1 && v->col == 10);
    CHECK("yaml/basic_key_pos", r->items[2]->line == 2 && r->items[2]->col == 1);
    v = get(r, "name");
    CHECK("yaml/basic_double_quoted_not_plain", v && v->plain == 0 && strcmp(v->str, "quoted") == 0);
    v = get(r, "single");
    CHECK("yaml/basic_single_quoted_not_plain", v && v->plain == 0);
    v = get(r, "list");
    CHECK("yaml/basic_seq", v && v->type == SR_Y_SEQ && v->n == 3);
    CHECK("yaml/basic_seq_item_pos", v && v->items[1]->line == 6 && v->items[1]->col == 5);
    CHECK("yaml/basic_flow_seq", v && v->items[2]->type == SR_Y_SEQ && v->items[2]->n == 2);
    v = get(r, "empty");
    CHECK("yaml/basic_empty_value_plain_scalar", v && v->type == SR_Y_SCALAR && v->len == 0 && v->plain);
    v = get(get(r, "nested"), "k");
    CHECK("yaml/basic_flow_map", v && strcmp(v->str, "v") == 0);
    sr_ydoc_free(d);
}

static void test_scalars(void)
{
    char err[256];
    sr_ydoc *d;
    const sr_ynode *r;
    /* tagged plain scalars are not "plain" (they must not become booleans) */
    d = load("a: !!str true\nb: true\nc: \"a\\x00b\"\n", err, sizeof err);
    CHECK("yaml/tagged_loads", d != NULL);
    if (d) {
        r = sr_ydoc_root(d);
        CHECK("yaml/tagged_not_plain", get(r, "a") && get(r, "a")->plain == 0);
        CHECK("yaml/untagged_plain", get(r, "b") && get(r, "b")->plain == 1);
        CHECK("yaml/embedded_nul_len", get(r, "c") && get(r, "c")->len == 3 && get(r, "c")->str[1] == '\0');
        sr_ydoc_free(d);
    }
    /* block scalar keeps newlines */
    d = load("s: |\n  line1\n  line2\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/block_scalar", r && get(r, "s") && strcmp(get(r, "s")->str, "line1\nline2\n") == 0);
    sr_ydoc_free(d);
    /* a scalar document */
    d = load("hello\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/scalar_root", r && r->type == SR_Y_SCALAR && strcmp(r->str, "hello") == 0);
    sr_ydoc_free(d);
    /* merge keys are ordinary pairs */
    d = load("base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/merge_key_kept", r && get(get(r, "d"), "<<") == get(r, "base") && get(get(r, "d"), "y"));
    sr_ydoc_free(d);
    /* UTF-8 content */
    d = load("k: \"caf\xc3\xa9\"\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/utf8_value", r && get(r, "k") && strcmp(get(r, "k")->str, "caf\xc3\xa9") == 0);
    sr_ydoc_free(d);
}

static void test_empty_and_docs(void)
{
    char err[256];
    sr_ydoc *d;
    const sr_ynode *r;
    d = sr_yaml_load_string("", 0, "e.yaml", NULL, err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/empty_string_null_root", r && r->type == SR_Y_NULL);
    sr_ydoc_free(d);
    d = sr_yaml_load_string(NULL, 0, NULL, NULL, err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/null_buffer_null_root", r && r->type == SR_Y_NULL);
    sr_ydoc_free(d);
    d = load("# only a comment\n\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/comment_only_null_root", r && r->type == SR_Y_NULL);
    sr_ydoc_free(d);
    /* first document only: the second (even a broken one) is not read */
    d = load("a: 1\n---\nb: [\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/first_document_only", r && r->type == SR_Y_MAP && r->n == 1 && get(r, "a"));
    sr_ydoc_free(d);
    d = load("---\n- x\n...\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/explicit_document", r && r->type == SR_Y_SEQ && r->n == 1 && r->line == 2);
    sr_ydoc_free(d);
    CHECK("yaml/root_of_null_doc", sr_ydoc_root(NULL) == NULL);
    sr_ydoc_free(NULL);
}

static void test_errors(void)
{
    char err[256];
    sr_ydoc *d;
    err[0] = 'x';
    d = load("a: 1\nb: [1, 2\n", err, sizeof err);
    CHECK("yaml/error_unclosed_flow", d == NULL);
    CHECK("yaml/error_has_name_line", err_has(err, "t.yaml:3:1: "));
    CHECK("yaml/error_has_context", err_has(err, "while parsing a flow sequence"));
    d = load("a: 1\n  b: 2\n", err, sizeof err);
    CHECK("yaml/error_bad_indent", d == NULL && err_has(err, "t.yaml:2:4: mapping values are not allowed"));
    d = load("a: *nope\n", err, sizeof err);
    CHECK("yaml/error_undefined_alias", d == NULL && err_has(err, "t.yaml:1:4: undefined alias *nope"));
    d = load("a: &x [1, *x]\n", err, sizeof err);
    CHECK("yaml/error_recursive_alias", d == NULL && err_has(err, "recursive alias"));
    d = load("a: &x 1\nb: &x [2, *x]\n", err, sizeof err);
    CHECK("yaml/error_recursive_alias_shadowing", d == NULL && err_has(err, "recursive alias"));
    d = load("a: \"unterminated\n", err, sizeof err);
    CHECK("yaml/error_unterminated_quote", d == NULL && err_has(err, "t.yaml:"));
    d = sr_yaml_load_string("a: \xff\xfe\n", 6, "bin.yaml", NULL, err, sizeof err);
    CHECK("yaml/error_invalid_utf8", d == NULL && err_has(err, "bin.yaml:"));
    d = sr_yaml_load_string("a: b\0c\n", 7, "nul.yaml", NULL, err, sizeof err);
    CHECK("yaml/error_nul_byte", d == NULL && err_has(err, "nul.yaml:"));
    /* tiny and absent error buffers are safe */
    d = sr_yaml_load_string("[", 1, "t", NULL, err, 4);
    CHECK("yaml/error_small_buffer_terminated", d == NULL && strlen(err) == 3);
    d = sr_yaml_load_string("[", 1, "t", NULL, NULL, 0);
    CHECK("yaml/error_null_buffer", d == NULL);
}

static void test_aliases(void)
{
    char err[256];
    sr_ydoc *d;
    const sr_ynode *r;
    d = load("a: &anc {k: v}\nb: *anc\nc: &s hello\nd: *s\nc2: &s again\ne: *s\n", err, sizeof err);
    r = d ? sr_ydoc_root(d) : NULL;
    CHECK("yaml/alias_shares_node", r && get(r, "a") == get(r, "b"));
    CHECK("yaml/alias_keeps_anchor_pos", r && get(r, "b") && get(r, "b")->line == 1);
    CHECK("yaml/alias_scalar", r && get(r, "d") && strcmp(get(r, "d")->str, "hello") == 0);
    CHECK("yaml/alias_redefined_anchor", r && get(r, "e") && strcmp(get(r, "e")->str, "again") == 0);
    sr_ydoc_free(d);

    /* billion laughs: 10 levels of 10 aliases each (10^10 if expanded):
     * refused by default (tests/unit/test_yaml_limits.c), and with the node
     * limit raised it loads as a DAG, its nodes shared, not copied */
    {
        sr_yaml_limits lim = { 0, (size_t)1 << 40, (size_t)1 << 40 };
        char buf[4096];
        size_t o = 0;
        int lvl, j;
        o += (size_t)snprintf(buf + o, sizeof buf - o, "l0: &l0 [lol, lol]\n");
        for (lvl = 1; lvl <= 10; lvl++) {
            o += (size_t)snprintf(buf + o, sizeof buf - o, "l%d: &l%d [", lvl, lvl);
            for (j = 0; j < 10; j++)
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%s*l%d", j ? ", " : "", lvl - 1);
            o += (size_t)snprintf(buf + o, sizeof buf - o, "]\n");
        }
        d = sr_yaml_load_string(buf, o, "bomb.yaml", &lim, err, sizeof err);
        r = d ? sr_ydoc_root(d) : NULL;
        CHECK("yaml/alias_bomb_loads_shared",
              r && get(r, "l10") && get(r, "l10")->n == 10 &&
                  get(r, "l10")->items[0] == get(r, "l9") && get(r, "l10")->items[9] == get(r, "l9"));
        sr_ydoc_free(d);
    }
    /* many anchors (hash table growth) */
    {
        size_t cap = 200000, o = 0;
        char *big = malloc(cap);
        int i, ok = 1;
        for (i = 0; i < 3000 && big; i++)
            o += (size_t)snprintf(big + o, cap - o, "k%d: &a%d v%d\n", i, i, i);
        for (i = 0; i < 3000 && big; i++)
            o += (size_t)snprintf(big + o, cap - o, "r%d: *a%d\n", i, 2999 - i);
        d = big ? sr_yaml_load_string(big, o, "many.yaml", NULL, err, sizeof err) : NULL;
        r = d ? sr_ydoc_root(d) : NULL;
        if (!r || r->n != 6000) ok = 0;
        for (i = 0; ok && i < 3000; i++)
            if (r->items[2 * (3000 + i) + 1] != r->items[2 * (2999 - i) + 1]) ok = 0;
        CHECK("yaml/many_anchors", ok);
        sr_ydoc_free(d);
        free(big);
    }
}

static void test_depth(void)
{
    char err[256];
    char buf[2 * 300 + 2];
    sr_ydoc *d;
    int i;
    for (i = 0; i < 256; i++) {
        buf[i] = '[';
        buf[256 + i] = ']';
    }
    d = sr_yaml_load_string(buf, 512, "deep.yaml", NULL, err, sizeof err);
    CHECK("yaml/depth_256_ok", d != NULL);
    sr_ydoc_free(d);
    for (i = 0; i < 300; i++) {
        buf[i] = '[';
        buf[300 + i] = ']';
    }
    d = sr_yaml_load_string(buf, 600, "deep.yaml", NULL, err, sizeof err);
    CHECK("yaml/depth_300_error", d == NULL && err_has(err, "deep.yaml:1:257: nesting deeper than 256"));
    /* unclosed deep nesting: error path frees open nodes */
    d = sr_yaml_load_string(buf, 200, "open.yaml", NULL, err, sizeof err);
    CHECK("yaml/unclosed_deep_error", d == NULL && err_has(err, "open.yaml:"));
}

static void test_files(void)
{
    char err[512], path[] = "/tmp/sr_test_yaml_XXXXXX";
    sr_ydoc *d;
    const sr_ynode *r;
    int fd = mkstemp(path);
    CHECK("yaml/file_tmp_created", fd >= 0);
    if (fd >= 0) {
        const char *s = "routes:\n  - id: sync\n    pattern: '^/x$'\n";
        CHECK("yaml/file_written", write(fd, s, strlen(s)) == (ssize_t)strlen(s));
        close(fd);
        d = sr_yaml_load_file(path, NULL, err, sizeof err);
        r = d ? sr_ydoc_root(d) : NULL;
        CHECK("yaml/file_loads", r && get(r, "routes") && get(r, "routes")->n == 1);
        CHECK("yaml/file_positions", r && get(get(r, "routes")->items[0], "pattern")->line == 3 &&
                                         get(get(r, "routes")->items[0], "pattern")->col == 14);
        sr_ydoc_free(d);
        /* syntax error names the path */
        fd = open(path, O_WRONLY | O_TRUNC);
        if (fd >= 0) {
            CHECK("yaml/file_rewritten", write(fd, "a: [\n", 5) == 5);
            close(fd);
        }
        d = sr_yaml_load_file(path, NULL, err, sizeof err);
        CHECK("yaml/file_error_has_path",
              d == NULL && strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':' &&
                  err[strlen(path) + 1] >= '0' && err[strlen(path) + 1] <= '9');
        unlink(path);
    }
    d = sr_yaml_load_file("/nonexistent/dir/x.yaml", NULL, err, sizeof err);
    CHECK_STR("yaml/file_cannot_open", err, d ? 0 : strlen(err),
              "/nonexistent/dir/x.yaml: cannot open: No such file or directory");
    d = sr_yaml_load_file("/tmp", NULL, err, sizeof err);
    CHECK_STR("yaml/file_directory_error", err, d ? 0 : strlen(err),
              "/tmp: is not a regular file (a directory)");
    d = sr_yaml_load_file(NULL, NULL, err, sizeof err);
    CHECK("yaml/file_null_path", d == NULL);
}

void test_yaml(void)
{
    test_basic();
    test_scalars();
    test_empty_and_docs();
    test_errors();
    test_aliases();
    test_depth();
    test_files();
}
