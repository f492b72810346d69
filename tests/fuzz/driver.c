/*
 * driver.c - a deterministic random-input main for the fuzz targets, used
 * when libFuzzer (clang -fsanitize=fuzzer) is not available. Build it with
 * gcc -fsanitize=address,undefined together with fuzz_targets.c.
 *
 *   driver [-runs=N] [-seconds=S] [-seed=X] [-max_len=L] [-dict=FILE] DIR...
 *
 * Every file in DIR... is run once as is, then N inputs (or until S seconds
 * have passed) are derived from them by random mutations (byte flips,
 * inserts, deletes, duplications, splices, dictionary words), with a fixed
 * PRNG seed so that a failure is reproducible. When a sanitizer reports an
 * error, the input being run is written to ./driver-last-input (through the
 * sanitizer death callback; an abort() in a target does the same via SIGABRT).
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct { uint8_t *p; size_t n; } blob;
typedef struct { blob *v; size_t n, cap; } blobs;

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void push(blobs *b, const uint8_t *p, size_t n)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
        if (!b->v) exit(2);
    }
    b->v[b->n].p = malloc(n ? n : 1);
    if (!b->v[b->n].p) exit(2);
    memcpy(b->v[b->n].p, p, n);
    b->v[b->n].n = n;
    b->n++;
}

static int read_file(const char *path, blobs *b)
{
    FILE *f = fopen(path, "rb");
    uint8_t buf[1 << 16];
    size_t n;
    if (!f) return -1;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    push(b, buf, n);
    return 0;
}

static void read_dir(const char *dir, blobs *b)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        read_file(path, b);
    }
    closedir(d);
}

/* libFuzzer dictionary lines: name="value" with \xNN and \\ \" escapes. */
static void read_dict(const char *path, blobs *b)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *q = strchr(line, '"'), *e;
        uint8_t out[1024];
        size_t o = 0;
        if (line[0] == '#' || !q) continue;
        e = strrchr(line, '"');
        if (e == q) continue;
        for (q++; q < e; q++) {
            if (*q == '\\' && q + 1 < e) {
                q++;
                if (*q == 'x' && q + 2 < e) {
                    char hx[3] = { q[1], q[2], 0 };
                    out[o++] = (uint8_t)strtoul(hx, NULL, 16);
                    q += 2;
                    continue;
                }
            }
            out[o++] = (uint8_t)*q;
        }
        push(b, out, o);
    }
    fclose(f);
}

/* provided by the ASan/UBSan runtimes */
void __sanitizer_set_death_callback(void (*callback)(void));

static const uint8_t *cur_in;
static size_t cur_n;

static void save_input(void)
{
    FILE *f = fopen("driver-last-input", "wb");
    if (f) { fwrite(cur_in, 1, cur_n, f); fclose(f); }
}

static void on_abort(int sig)
{
    save_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_one(const uint8_t *p, size_t n)
{
    cur_in = p;
    cur_n = n;
    LLVMFuzzerTestOneInput(p, n);
}

int main(int argc, char **argv)
{
    long runs = 200000, seconds = 0, max_len = 4096, i;
    uint64_t seed = 0x5eedf00dULL;
    blobs corpus = { 0 }, dict = { 0 };
    uint8_t *buf;
    time_t start = time(NULL);
    int a;

    for (a = 1; a < argc; a++) {
        if (!strncmp(argv[a], "-runs=", 6)) runs = atol(argv[a] + 6);
        else if (!strncmp(argv[a], "-seconds=", 9)) seconds = atol(argv[a] + 9);
        else if (!strncmp(argv[a], "-seed=", 6)) seed = strtoull(argv[a] + 6, NULL, 0);
        else if (!strncmp(argv[a], "-max_len=", 9)) max_len = atol(argv[a] + 9);
        else if (!strncmp(argv[a], "-dict=", 6)) read_dict(argv[a] + 6, &dict);
        else read_dir(argv[a], &corpus);
    }
    rng_state = seed ? seed : 1;
    __sanitizer_set_death_callback(save_input);
    signal(SIGABRT, on_abort);
    remove("driver-last-input");
    if (corpus.n == 0) push(&corpus, (const uint8_t *)"", 0);
    buf = malloc((size_t)max_len * 2 + 1024);
    if (!buf) return 2;

    for (i = 0; i < (long)corpus.n; i++) run_one(corpus.v[i].p, corpus.v[i].n);

    for (i = 0; i < runs; i++) {
        const blob *base = &corpus.v[rndn(corpus.n)];
        size_t n = base->n < (size_t)max_len ? base->n : (size_t)max_len;
        int m, muts = 1 + (int)rndn(8);
        if ((i & 1023) == 0 && seconds && time(NULL) - start >= seconds) break;
        memcpy(buf, base->p, n);
        for (m = 0; m < muts; m++) {
            size_t pos = rndn(n + 1), len;
            switch (rndn(8)) {
            case 0: if (n) buf[rndn(n)] ^= (uint8_t)(1u << rndn(8)); break;
            case 1: if (n) buf[rndn(n)] = (uint8_t)rnd(); break;
            case 2:                                   /* insert a byte */
                if (n < (size_t)max_len) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = "\0\t\n \"\\%+/=,:_@!#&?\x7f\xc3\xff"[rndn(20)];
                    n++;
                }
                break;
            case 3:                                   /* delete a range */
                len = rndn(n - (pos < n ? pos : n) + 1);
                memmove(buf + pos, buf + pos + len, n - pos - len);
                n -= len;
                break;
            case 4:                                   /* duplicate a range */
                if (n && n < (size_t)max_len) {
                    size_t s = rndn(n);
                    len = 1 + rndn(n - s);
                    if (len > (size_t)max_len - n) len = (size_t)max_len - n;
                    memmove(buf + pos + len, buf + pos, n - pos);
                    memmove(buf + pos, buf + (s < pos ? s : s + len), len);
                    n += len;
                }
                break;
            case 5:                                   /* truncate */
                n = rndn(n + 1);
                break;
            case 6: case 7:                           /* dictionary / splice */
            {
                const blob *w = (dict.n && rndn(2)) ? &dict.v[rndn(dict.n)]
                                                    : &corpus.v[rndn(corpus.n)];
                len = w->n;
                if (len > (size_t)max_len - n) len = (size_t)max_len - n;
                memmove(buf + pos + len, buf + pos, n - pos);
                memcpy(buf + pos, w->p, len);
                n += len;
                break;
            }
            }
        }
        {
            /* exact-size copy so ASan catches one-byte overreads */
            uint8_t *in = malloc(n ? n : 1);
            if (!in) return 2;
            memcpy(in, buf, n);
            run_one(in, n);
            free(in);
        }
    }
    printf("driver: %ld runs, %zu seeds, seed=0x%llx\n", i, corpus.n,
           (unsigned long long)seed);
    for (i = 0; i < (long)corpus.n; i++) free(corpus.v[i].p);
    for (i = 0; i < (long)dict.n; i++) free(dict.v[i].p);
    free(corpus.v); free(dict.v); free(buf);
    return 0;
}
