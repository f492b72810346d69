/* test_glob.c - sr_glob over a scratch directory: sorted bytewise, no match
 * is an empty list, hidden files and literal braces/tildes, escapes, a
 * missing directory, and a directory that cannot be read (a symlink loop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sr_core.h"
#include "unit.h"

static char root[64];

/* Create root/rel (directories as needed are made by the caller). */
static void touch(const char *rel)
{
    char p[256];
    FILE *f;
    snprintf(p, sizeof p, "%s/%s", root, rel);
    f = fopen(p, "w");
    if (f) fclose(f);
}

/* sr_glob(root/rel) joined as "a|b|c" (paths relative to root), or
 * "ERR:<msg>". */
static const char *glob_rel(const char *rel, char *out, size_t cap)
{
    char pat[256], err[256];
    sr_paths p;
    size_t o = 0, rl = strlen(root) + 1;
    snprintf(pat, sizeof pat, "%s/%s", root, rel);
    out[0] = '\0';
    if (sr_glob(pat, &p, err, sizeof err) != 0) {
        snprintf(out, cap, "ERR:%s", err);
        return out;
    }
    for (size_t i = 0; i < p.n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "|" : "", p.path[i] + rl);
    sr_paths_free(&p);
    return out;
}

/* Kept as written; clang-format would spread each macro over many lines. */
/* clang-format off */
#define GLOB_IS(name, rel, want) do { char b_[1024]; \
    const char *g_ = glob_rel((rel), b_, sizeof b_); CHECK_STR((name), g_, strlen(g_), (want)); } while (0)
/* clang-format on */

void test_glob(void)
{
    char p[256], out[1024];
    snprintf(root, sizeof root, "/tmp/sr-glob-test.%ld", (long)getpid());
    mkdir(root, 0700);
    snprintf(p, sizeof p, "%s/conf.d", root);
    mkdir(p, 0700);
    touch("conf.d/b.yaml");
    touch("conf.d/a.yaml");
    touch("conf.d/B.yaml");
    touch("conf.d/10-x.yaml");
    touch("conf.d/.hidden.yaml");
    touch("conf.d/{a,b}.yaml");
    touch("conf.d/~c.yaml");
    touch("conf.d/star*.yaml");
    touch("conf.d/stars.yaml");
    touch("conf.d/notes.txt");
    GLOB_IS("glob/sorted_bytewise", "conf.d/*.yaml",
            "conf.d/10-x.yaml|conf.d/B.yaml|conf.d/a.yaml|conf.d/b.yaml|conf.d/star*.yaml|"
            "conf.d/stars.yaml|conf.d/{a,b}.yaml|conf.d/~c.yaml");
    GLOB_IS("glob/no_match_is_empty", "conf.d/*.json", "");
    GLOB_IS("glob/literal_missing_is_empty", "conf.d/none.yaml", "");
    GLOB_IS("glob/literal_existing", "conf.d/a.yaml", "conf.d/a.yaml");
    GLOB_IS("glob/hidden_explicit", "conf.d/.*.yaml", "conf.d/.hidden.yaml");
    GLOB_IS("glob/no_brace_expansion", "conf.d/{a,b}.yaml", "conf.d/{a,b}.yaml");
    GLOB_IS("glob/no_tilde_expansion", "conf.d/~c.yaml", "conf.d/~c.yaml");
    GLOB_IS("glob/escaped_star", "conf.d/star\\*.yaml", "conf.d/star*.yaml");
    GLOB_IS("glob/class", "conf.d/[ab].yaml", "conf.d/a.yaml|conf.d/b.yaml");
    GLOB_IS("glob/missing_dir_is_empty", "nodir/*.yaml", "");
    /* a directory on the way that cannot be read: a symlink loop */
    snprintf(p, sizeof p, "%s/loop", root);
    if (symlink(p, p) == 0) {
        glob_rel("loop/*.yaml", out, sizeof out);
        CHECK("glob/unreadable_dir_is_error", strncmp(out, "ERR:", 4) == 0 &&
                                                  strstr(out, "cannot read a directory") != NULL &&
                                                  strstr(out, "loop/*.yaml") != NULL);
    } else {
        CHECK("glob/unreadable_dir_is_error_setup", 0);
    }
    {
        sr_paths none;
        CHECK("glob/null_pattern_empty", sr_glob(NULL, &none, NULL, 0) == 0 && none.n == 0);
        sr_paths_free(&none);
        sr_paths_free(NULL);
    }
    CHECK("glob/name_star", sr_name_match("synchrotron-*", "synchrotron-12"));
    CHECK("glob/name_question", sr_name_match("sync-?", "sync-1") && !sr_name_match("sync-?", "sync-10"));
    CHECK("glob/name_class", sr_name_match("w[12]", "w2") && !sr_name_match("w[12]", "w3"));
    CHECK("glob/name_negated_class", sr_name_match("w[!12]", "w3") && !sr_name_match("w[!12]", "w1"));
    CHECK("glob/name_slash_ordinary", sr_name_match("a*", "a/b"));
    CHECK("glob/name_escape", sr_name_match("a\\*", "a*") && !sr_name_match("a\\*", "ab"));
    CHECK("glob/name_literal", sr_name_match("main", "main") && !sr_name_match("main", "main2"));
    CHECK("glob/name_null", !sr_name_match(NULL, "x") && !sr_name_match("x", NULL));
    snprintf(p, sizeof p, "rm -rf '%s'", root);
    if (system(p) != 0) printf("# could not remove %s\n", root);
}
