/*
 * rset_bench.c - micro-benchmark of the regex set against the naive loop.
 *
 * Loads every route's pattern and methods from routes/routes.yaml (with
 * sr_yaml; exit 1 if it cannot), then classifies (path without query, method) of every line of mix.tsv
 * many times, with sr_rset_match and with sr_rset_match_loop. Prints the
 * median nanoseconds per classification of each, their ratio, and whether
 * both gave the same answer for every line. Targets (reported, not
 * asserted): set median <= 150 ns, set >= 10x faster than the loop.
 *
 * usage: rset_bench [routes.yaml] [mix.tsv]
 *   defaults: routes/routes.yaml; $BENCH_DIR/mix.tsv (bench.sh sets it).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sr_core.h"

#define ROUNDS_SET  31
#define ROUNDS_LOOP 11
#define MAX_REQ     100000


typedef struct { char *path; size_t len; unsigned mbit; char kind[32]; char *in; size_t inlen; } req;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const sr_ynode *map_get(const sr_ynode *m, const char *k)
{
    if (!m || m->type != SR_Y_MAP) return NULL;
    for (size_t i = 0; i < m->n; i++) {
        const sr_ynode *key = m->items[2 * i];
        if (key->type == SR_Y_SCALAR && strcmp(key->str, k) == 0) return m->items[2 * i + 1];
    }
    return NULL;
}

/* Fill pats/masks from routes.yaml; returns the count, or -1. */
static long load_routes(const char *path, const char ***pats, unsigned **masks,
                        const char ***names, sr_ydoc **docp)
{
    char err[512];
    sr_ydoc *d = sr_yaml_load_file(path, NULL, err, sizeof err);
    const sr_ynode *routes;
    size_t n = 0;
    if (!d) { fprintf(stderr, "rset_bench: %s\n", err); return -1; }
    routes = map_get(sr_ydoc_root(d), "routes");
    if (!routes || routes->type != SR_Y_SEQ) {
        fprintf(stderr, "rset_bench: %s: no routes list\n", path);
        sr_ydoc_free(d);
        return -1;
    }
    *pats = calloc(routes->n + 1, sizeof **pats);
    *masks = calloc(routes->n + 1, sizeof **masks);
    *names = calloc(routes->n + 1, sizeof **names);
    for (size_t i = 0; i < routes->n; i++) {
        const sr_ynode *r = routes->items[i];
        const sr_ynode *p = map_get(r, "pattern"), *m = map_get(r, "methods"),
                       *id = map_get(r, "id");
        unsigned mask = 0;
        if (!p || p->type != SR_Y_SCALAR) continue;
        if (m && m->type == SR_Y_SEQ)
            for (size_t j = 0; j < m->n; j++)
                if (m->items[j]->type == SR_Y_SCALAR)
                    mask |= sr_method_bit(m->items[j]->str, m->items[j]->len);
        (*pats)[n] = p->str;
        (*masks)[n] = mask;
        (*names)[n] = (id && id->type == SR_Y_SCALAR) ? id->str : NULL;
        n++;
    }
    *docp = d;
    return (long)n;
}

static long load_mix(const char *path, req *reqs)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    long n = 0;
    if (!f) return -1;
    while (n < MAX_REQ && fgets(line, sizeof line, f)) {
        char *cols[6], *p = line;
        int c = 0;
        if (line[0] == '#' || line[0] == '\n') continue;
        cols[c++] = p;
        while (c < 6 && (p = strchr(p, '\t'))) { *p++ = '\0'; cols[c++] = p; }
        if (c < 4) continue;
        {
            char *path_ = cols[3];
            size_t len = strcspn(path_, "?\t\n");
            reqs[n].path = malloc(len + 1);
            memcpy(reqs[n].path, path_, len);
            reqs[n].path[len] = '\0';
            reqs[n].len = len;
            reqs[n].mbit = sr_method_bit(cols[2], strlen(cols[2]));
            snprintf(reqs[n].kind, sizeof reqs[n].kind, "%.31s", cols[0]);
            /* the converter's input: METHOD SP SRC SP PATHQ SP AUTH */
            {
                const char *auth = c >= 5 ? cols[4] : "-";
                size_t al = strcspn(auth, "\t\n"), pl = strcspn(cols[3], "\t\n");
                size_t ml = strlen(cols[2]);
                reqs[n].in = malloc(ml + pl + al + 16);
                reqs[n].inlen = (size_t)sprintf(reqs[n].in, "%s 127.0.0.1 %.*s %.*s", cols[2],
                                                (int)pl, cols[3], (int)al, auth);
            }
            n++;
        }
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    const char *routes_path = argc > 1 ? argv[1] : "routes/routes.yaml";
    char mixbuf[4096];
    const char *mix_path;
    const char **pats = NULL, **names = NULL;
    unsigned *masks = NULL;
    sr_ydoc *doc = NULL;
    long np, nr;
    req *reqs = calloc(MAX_REQ, sizeof *reqs);
    sr_error serr;
    sr_rset *s;
    double t_set[ROUNDS_SET], t_loop[ROUNDS_LOOP], med_set, med_loop;
    volatile long sink = 0;
    long mismatches = 0, matched = 0;

    if (argc > 2) mix_path = argv[2];
    else if (getenv("BENCH_DIR")) {
        snprintf(mixbuf, sizeof mixbuf, "%s/mix.tsv", getenv("BENCH_DIR"));
        mix_path = mixbuf;
    } else mix_path = "mix.tsv";

    np = load_routes(routes_path, &pats, &masks, &names, &doc);
    if (np < 0) {
        fprintf(stderr, "rset_bench: cannot load the route patterns from %s\n", routes_path);
        return 1;
    }
    printf("routes: %ld patterns from %s\n", np, routes_path);
    nr = load_mix(mix_path, reqs);
    if (nr <= 0) {
        fprintf(stderr, "rset_bench: cannot read requests from %s (set BENCH_DIR)\n", mix_path);
        return 1;
    }
    printf("requests: %ld from %s\n", nr, mix_path);

    s = sr_rset_new(pats, masks, names, (size_t)np, &serr);
    if (!s) { fprintf(stderr, "rset_bench: entry %zu: %s\n", serr.index + 1, serr.msg); return 1; }
    printf("jit: %s\n", sr_rset_jit(s) ? "yes" : "no");

    for (long i = 0; i < nr; i++) {
        int a = sr_rset_match(s, reqs[i].path, reqs[i].len, reqs[i].mbit);
        int b = sr_rset_match_loop(s, reqs[i].path, reqs[i].len, reqs[i].mbit);
        if (a != b) {
            if (mismatches < 5) printf("MISMATCH set=%d loop=%d %s\n", a, b, reqs[i].path);
            mismatches++;
        }
        if (a >= 0) matched++;
    }
    printf("set == loop on every request: %s (%ld mismatches); %ld of %ld matched an entry\n",
           mismatches ? "NO" : "yes", mismatches, matched, nr);

    for (int r = 0; r < ROUNDS_SET; r++) {
        double t0 = now_ns();
        for (int rep = 0; rep < 20; rep++)
            for (long i = 0; i < nr; i++)
                sink += sr_rset_match(s, reqs[i].path, reqs[i].len, reqs[i].mbit);
        t_set[r] = (now_ns() - t0) / (20.0 * (double)nr);
    }
    for (int r = 0; r < ROUNDS_LOOP; r++) {
        double t0 = now_ns();
        for (int rep = 0; rep < 2; rep++)
            for (long i = 0; i < nr; i++)
                sink += sr_rset_match_loop(s, reqs[i].path, reqs[i].len, reqs[i].mbit);
        t_loop[r] = (now_ns() - t0) / (2.0 * (double)nr);
    }
    qsort(t_set, ROUNDS_SET, sizeof t_set[0], cmp_double);
    qsort(t_loop, ROUNDS_LOOP, sizeof t_loop[0], cmp_double);
    med_set = t_set[ROUNDS_SET / 2];
    med_loop = t_loop[ROUNDS_LOOP / 2];
    printf("set:   median %.1f ns/classification (min %.1f, max %.1f; %d rounds x 20 x %ld)\n",
           med_set, t_set[0], t_set[ROUNDS_SET - 1], ROUNDS_SET, nr);
    printf("loop:  median %.1f ns/classification (min %.1f, max %.1f; %d rounds x 2 x %ld)\n",
           med_loop, t_loop[0], t_loop[ROUNDS_LOOP - 1], ROUNDS_LOOP, nr);
    printf("ratio: set is %.1fx faster than the loop\n", med_loop / med_set);
    printf("targets: set <= 150 ns: %s; >= 10x faster: %s\n",
           med_set <= 150.0 ? "met" : "MISSED", med_loop / med_set >= 10.0 ? "met" : "MISSED");
    /* the whole decision (sr_route_packed) with a router over the same
     * entries: one target per entry, user keys for sync-like classes */
    {
        sr_entry *ents = calloc((size_t)np + 1, sizeof *ents);
        sr_target *tg = calloc((size_t)np + 2, sizeof *tg);
        sr_router_spec sp;
        sr_router *rt;
        double t_rt[ROUNDS_SET];
        char out[600];
        memset(&sp, 0, sizeof sp);
        for (long i = 0; i < np; i++) {
            char *id = malloc(24);
            snprintf(id, 24, "r%ld", i);
            ents[i].id = id;
            ents[i].pattern = pats[i];
            ents[i].methods = masks ? masks[i] : 0;
            ents[i].target = (int)i;
            tg[i].cls = "generic";
            tg[i].generic_backend = tg[i].other_backend = "generic";
            tg[i].key = strstr(pats[i], "sync") ? SR_KEY_USER :
                        strstr(pats[i], "/rooms/") ? SR_KEY_ROOM :
                        strstr(pats[i], "federation/v1/send/") ? SR_KEY_ORIGIN : SR_KEY_NONE;
        }
        tg[np].cls = "main";
        tg[np].generic_backend = tg[np].other_backend = "main";
        sp.secret = "bench"; sp.secret_len = 5;
        sp.entries = ents; sp.n_entries = (size_t)np;
        sp.targets = tg; sp.n_targets = (size_t)np + 1;
        sp.fallback_target = (int)np;
        rt = sr_router_new(&sp, &serr);
        if (!rt) {
            printf("router: %s\n", serr.msg);
        } else {
            for (int r = 0; r < ROUNDS_SET; r++) {
                double t0 = now_ns();
                for (int rep = 0; rep < 5; rep++)
                    for (long i = 0; i < nr; i++)
                        sink += (long)sr_route_packed(rt, reqs[i].in, reqs[i].inlen, out, sizeof out);
                t_rt[r] = (now_ns() - t0) / (5.0 * (double)nr);
            }
            qsort(t_rt, ROUNDS_SET, sizeof t_rt[0], cmp_double);
            printf("route: median %.1f ns per whole decision (sr_route_packed: parse, block check, "
                   "set, refine, key, hkey)\n", t_rt[ROUNDS_SET / 2]);
            sr_router_free(rt);
        }
        for (long i = 0; i < np; i++) free((char *)ents[i].id);
        free(ents);
        free(tg);
    }

    /* per request kind (mix.tsv column 1): mean ns over repeated runs */
    printf("per kind (mean ns/classification):  kind  count  set  loop\n");
    for (long i = 0; i < nr; i++) {
        int seen = 0;
        long cnt = 0;
        double ts = 0, tl = 0, t0;
        for (long j = 0; j < i && !seen; j++) seen = strcmp(reqs[j].kind, reqs[i].kind) == 0;
        if (seen) continue;
        for (long j = i; j < nr; j++) {
            if (strcmp(reqs[j].kind, reqs[i].kind) != 0) continue;
            cnt++;
            t0 = now_ns();
            for (int rep = 0; rep < 50; rep++)
                sink += sr_rset_match(s, reqs[j].path, reqs[j].len, reqs[j].mbit);
            ts += now_ns() - t0;
            t0 = now_ns();
            for (int rep = 0; rep < 50; rep++)
                sink += sr_rset_match_loop(s, reqs[j].path, reqs[j].len, reqs[j].mbit);
            tl += now_ns() - t0;
        }
        printf("  %-16s %5ld %8.1f %8.1f\n", reqs[i].kind, cnt, ts / (50.0 * (double)cnt),
               tl / (50.0 * (double)cnt));
    }
    (void)sink;

    sr_rset_free(s);
    for (long i = 0; i < nr; i++) { free(reqs[i].path); free(reqs[i].in); }
    free(reqs);
    if (doc) {
        free(pats);
        free(masks);
        free(names);
        sr_ydoc_free(doc);
    }
    return mismatches ? 1 : 0;
}
