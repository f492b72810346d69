/* test_yaml_limits.c - sr_yaml's bounds: the expanded size counted at load,
 * the node and text limits (alias bombs refused at the alias that crosses),
 * nesting through aliases, the size limit, and files that are not regular
 * files (refused before any read, without blocking). */
#include "unit.h"
#include "sr_core.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static sr_ydoc *load_lim(const char *s, size_t max_bytes, size_t max_nodes, size_t max_text,
                         char *err, size_t errlen)
{
    sr_yaml_limits lim = { max_bytes, max_nodes, max_text };
    return sr_yaml_load_string(s, strlen(s), "t.yaml", &lim, err, errlen);
}

/* 1 if d loaded and its expanded size is (nodes, text). */
static int size_is(const sr_ydoc *d, size_t nodes, size_t text)
{
    sr_ysize z = sr_ydoc_size(d);
    if (!d || z.nodes != nodes || z.text != text)
        printf("# expanded size %zu nodes, %zu bytes; want %zu, %zu\n", z.nodes, z.text, nodes, text);
    return d && z.nodes == nodes && z.text == text;
}

static void test_counting(void)
{
    char err[256];
    sr_ydoc *d;
    /* root map, 3 keys, and x = [1, 2, {b: c}] (6 nodes, 4 bytes) 3 times */
    d = load_lim("a: &x [1, 2, {b: c}]\nb: *x\nc: *x\n", 0, 0, 0, err, sizeof err);
    CHECK("yaml_limits/size_container_alias", size_is(d, 1 + 3 + 3 * 6, 3 + 3 * 4));
    sr_ydoc_free(d);
    d = load_lim("a: &s hello\nb: *s\n", 0, 0, 0, err, sizeof err);
    CHECK("yaml_limits/size_scalar_alias", size_is(d, 5, 1 + 1 + 5 + 5));
    sr_ydoc_free(d);
    /* an alias to an anchor redefined later keeps the size it had */
    d = load_lim("a: &s [x]\nb: *s\nc: &s [y, z, w]\nd: *s\n", 0, 0, 0, err, sizeof err);
    CHECK("yaml_limits/size_redefined_anchor", size_is(d, 1 + 4 + 2 + 2 + 4 + 4, 4 + 1 + 1 + 3 + 3));
    sr_ydoc_free(d);
    /* nested anchors: y inside x, both aliased */
    d = load_lim("x: &x {k: &y [p, q]}\ny: *y\nz: *x\n", 0, 0, 0, err, sizeof err);
    CHECK("yaml_limits/size_nested_anchors", size_is(d, 1 + 3 + 5 + 3 + 5, 3 + 3 + 2 + 3));
    sr_ydoc_free(d);
    d = sr_yaml_load_string("", 0, "e.yaml", NULL, err, sizeof err);
    CHECK("yaml_limits/size_empty", size_is(d, 1, 0));
    sr_ydoc_free(d);
    CHECK("yaml_limits/size_null_doc", sr_ydoc_size(NULL).nodes == 0 && sr_ydoc_size(NULL).text == 0);
}

/* "[" * n + inner + "]" * n into buf at o; returns the new length. */
static size_t nest(char *buf, size_t o, int n, const char *inner)
{
    for (int i = 0; i < n; i++) buf[o++] = '[';
    o += (size_t)sprintf(buf + o, "%s", inner);
    for (int i = 0; i < n; i++) buf[o++] = ']';
    return o;
}

/* "a: &a" 200 levels around x, "b:" `around` levels around *a; loaded as
 * deep.yaml */
static sr_ydoc *load_deep_alias(int around, char *err, size_t errlen)
{
    char buf[2048];
    size_t o = (size_t)sprintf(buf, "a: &a ");
    o = nest(buf, o, 200, "x");
    o += (size_t)sprintf(buf + o, "\nb: ");
    o = nest(buf, o, around, "*a");
    buf[o++] = '\n';
    return sr_yaml_load_string(buf, o, "deep.yaml", NULL, err, errlen);
}

static void test_depth_through_aliases(void)
{
    char err[256];
    sr_ydoc *d;
    d = load_lim("a: &x [[1]]\nb: [[*x]]\nc: x\n", 0, 0, 0, err, sizeof err);
    CHECK("yaml_limits/depth_counts_aliases", d && sr_ydoc_size(d).depth == 5);
    sr_ydoc_free(d);
    d = load_lim("", 0, 0, 0, err, sizeof err);
    CHECK("yaml_limits/depth_empty", d && sr_ydoc_size(d).depth == 0);
    sr_ydoc_free(d);
    /* 200 levels anchored, then 55 (in the root map: 256 in all) around an
     * alias to them: at the limit, loads; 56 around it: refused there */
    d = load_deep_alias(55, err, sizeof err);
    CHECK("yaml_limits/depth_256_through_alias_loads", d && sr_ydoc_size(d).depth == 256);
    sr_ydoc_free(d);
    d = load_deep_alias(56, err, sizeof err);
    CHECK_STR("yaml_limits/depth_257_through_alias_refused", err, d ? 0 : strlen(err),
              "deep.yaml:2:60: alias *a nests the document deeper than 256 levels");
}

static void test_node_limit(void)
{
    char err[256];
    sr_ydoc *d;
    const char *doc = "a: [1, 2, 3]\nb: x\n"; /* 1 + a + seq + 3 + b + x = 8 nodes */
    d = load_lim(doc, 0, 8, 0, err, sizeof err);
    CHECK("yaml_limits/nodes_at_limit_loads", size_is(d, 8, 6));
    sr_ydoc_free(d);
    d = load_lim(doc, 0, 7, 0, err, sizeof err);
    CHECK_STR("yaml_limits/nodes_over_limit", err, d ? 0 : strlen(err),
              "t.yaml:2:4: the document has more than 7 nodes (the limit)");
    d = load_lim("a: &a [1, 2, 3]\nb: *a\n", 0, 8, 0, err, sizeof err);
    CHECK_STR("yaml_limits/nodes_alias_over_limit", err, d ? 0 : strlen(err),
              "t.yaml:2:4: alias *a expands the document beyond 8 nodes (the limit on nodes with aliases expanded)");
}

/* "l0: &l0 [lol, lol]" then levels l1.. of `fan` aliases to the level
 * below, into buf (cap bytes); returns the length. */
static size_t bomb(char *buf, size_t cap, int levels, int fan)
{
    size_t o = (size_t)snprintf(buf, cap, "l0: &l0 [lol, lol]\n");
    for (int lvl = 1; lvl <= levels && o < cap; lvl++) {
        o += (size_t)snprintf(buf + o, cap - o, "l%d: &l%d [", lvl, lvl);
        for (int j = 0; j < fan && o < cap; j++)
            o += (size_t)snprintf(buf + o, cap - o, "%s*l%d", j ? ", " : "", lvl - 1);
        if (o < cap) o += (size_t)snprintf(buf + o, cap - o, "]\n");
    }
    return o < cap ? o : 0;
}

static void test_bombs(void)
{
    char err[256], buf[8192];
    size_t n = bomb(buf, sizeof buf, 10, 10);
    sr_yaml_limits huge = { 0, (size_t)-1, (size_t)-1 };
    sr_ydoc *d;
    /* levels: l_k has 1 + 10 * |l_(k-1)| nodes, |l0| = 3; after l0..l5
     * (345,685 nodes with root and keys) and l6's key and sequence, the
     * third *l5 of l6 (311,111 each) is the first to take the total past
     * 1e6: line 7, column 20 */
    d = sr_yaml_load_string(buf, n, "bomb.yaml", NULL, err, sizeof err);
    CHECK_STR("yaml_limits/billion_laughs_refused", err, d ? 0 : strlen(err),
              "bomb.yaml:7:20: alias *l5 expands the document beyond 1000000 nodes (the limit on nodes with aliases expanded)");
    sr_ydoc_free(d);
    /* 10^40 nodes if expanded: limits past SIZE_MAX / 2 are clamped, so
     * the total never overflows and the bomb is still refused */
    n = bomb(buf, sizeof buf, 40, 10);
    d = sr_yaml_load_string(buf, n, "bomb40.yaml", &huge, err, sizeof err);
    CHECK("yaml_limits/bomb_huge_limit_no_overflow",
          d == NULL && n > 0 && strstr(err, "bomb40.yaml:20:") && strstr(err, ": alias *l18 expands the document"));
    sr_ydoc_free(d);
    /* the same shape with long strings: the text limit */
    {
        char *big = malloc(4096 + 4 * 1000);
        size_t o = 0;
        if (big) {
            o += (size_t)snprintf(big, 64, "a: &a ");
            memset(big + o, 'x', 1000);
            o += 1000;
            o += (size_t)snprintf(big + o, 64, "\nb: [");
            for (int i = 0; i < 20; i++) o += (size_t)snprintf(big + o, 16, "%s*a", i ? ", " : "");
            o += (size_t)snprintf(big + o, 16, "]\n");
            d = sr_yaml_load_string(big, o, "text.yaml", &(sr_yaml_limits){ 0, 0, 10000 }, err, sizeof err);
            CHECK_STR("yaml_limits/text_alias_over_limit", err, d ? 0 : strlen(err),
                      "text.yaml:2:37: alias *a expands the document's text beyond 10000 bytes (the limit on scalar text with aliases expanded)");
            sr_ydoc_free(d);
            d = sr_yaml_load_string(big, o, "text.yaml", NULL, err, sizeof err);
            CHECK("yaml_limits/text_default_loads", size_is(d, 1 + 2 + 1 + 1 + 20, 2 + 1000 * 21));
            sr_ydoc_free(d);
        }
        free(big);
    }
}

static void test_byte_limit(void)
{
    char err[256];
    sr_ydoc *d;
    d = load_lim("a: 12345\n", 9, 0, 0, err, sizeof err);
    CHECK("yaml_limits/bytes_at_limit_loads", d != NULL);
    sr_ydoc_free(d);
    d = load_lim("a: 123456\n", 9, 0, 0, err, sizeof err);
    CHECK_STR("yaml_limits/bytes_over_limit", err, d ? 0 : strlen(err),
              "t.yaml: is too large (10 bytes; the limit is 9 bytes)");
}

/* A fresh temporary directory name in dir (cap bytes), or 0. */
static int tmp_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/sr_test_limits_XXXXXX");
    return mkdtemp(dir) != NULL;
}

static void test_regular_file(const char *dir)
{
    char err[512], path[256], want[512];
    sr_yaml_limits lim = { 16, 0, 0 };
    sr_ydoc *d;
    FILE *f;
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    f = fopen(path, "w");
    if (f) {
        fputs("a: 1\nb: 2\nc: 3\nd: 4\n", f); /* 20 bytes */
        fclose(f);
    }
    d = sr_yaml_load_file(path, &lim, err, sizeof err);
    snprintf(want, sizeof want, "%s: is too large (20 bytes; the limit is 16 bytes)", path);
    CHECK_STR("yaml_limits/file_too_large", err, d ? 0 : strlen(err), want);
    lim.max_bytes = 20;
    d = sr_yaml_load_file(path, &lim, err, sizeof err);
    CHECK("yaml_limits/file_at_limit_loads", d && sr_ydoc_root(d)->n == 4);
    sr_ydoc_free(d);
    unlink(path);
    /* a file whose size says 0 but that has content (procfs): the read
     * itself stops at the limit */
    lim.max_bytes = 64;
    d = sr_yaml_load_file("/proc/self/status", &lim, err, sizeof err);
    CHECK_STR("yaml_limits/file_grows_past_limit", err, d ? 0 : strlen(err),
              "/proc/self/status: is too large (it grew past the limit of 64 bytes while being read)");
}

static void test_special_files(const char *dir)
{
    char err[512], path[100], want[512];
    struct sockaddr_un sa;
    sr_ydoc *d;
    int s;
    /* a FIFO without a writer: refused at once (an alarm ends a hang) */
    snprintf(path, sizeof path, "%s/fifo.yaml", dir);
    CHECK("yaml_limits/fifo_made", mkfifo(path, 0600) == 0);
    alarm(20);
    d = sr_yaml_load_file(path, NULL, err, sizeof err);
    alarm(0);
    snprintf(want, sizeof want, "%s: is not a regular file (a FIFO)", path);
    CHECK_STR("yaml_limits/fifo_refused", err, d ? 0 : strlen(err), want);
    unlink(path);
    d = sr_yaml_load_file("/dev/zero", NULL, err, sizeof err);
    CHECK_STR("yaml_limits/dev_zero_refused", err, d ? 0 : strlen(err),
              "/dev/zero: is not a regular file (a character device)");
    /* through a symlink: what it points to counts */
    snprintf(path, sizeof path, "%s/zero.yaml", dir);
    CHECK("yaml_limits/symlink_made", symlink("/dev/zero", path) == 0);
    d = sr_yaml_load_file(path, NULL, err, sizeof err);
    snprintf(want, sizeof want, "%s: is not a regular file (a character device)", path);
    CHECK_STR("yaml_limits/symlink_to_device_refused", err, d ? 0 : strlen(err), want);
    unlink(path);
    /* a Unix socket */
    snprintf(path, sizeof path, "%s/sock.yaml", dir);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("yaml_limits/socket_made", s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    d = sr_yaml_load_file(path, NULL, err, sizeof err);
    snprintf(want, sizeof want, "%s: is not a regular file (a socket)", path);
    CHECK_STR("yaml_limits/socket_refused", err, d ? 0 : strlen(err), want);
    if (s >= 0) close(s);
    unlink(path);
}

void test_yaml_limits(void)
{
    char dir[64];
    test_counting();
    test_depth_through_aliases();
    test_node_limit();
    test_bombs();
    test_byte_limit();
    CHECK("yaml_limits/tmp_dir", tmp_dir(dir, sizeof dir));
    test_regular_file(dir);
    test_special_files(dir);
    rmdir(dir);
}
