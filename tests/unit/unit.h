/* unit.h - the tiny assertion kit of the C unit tests.
 * Every CHECK prints "ok <name>" or "FAIL <name>: <why>" (tests/run.sh counts
 * those lines), so one failed check never hides the others. */
#ifndef SR_UNIT_H
#define SR_UNIT_H
#include <stdio.h>
#include <string.h>

extern int unit_failed;

#define CHECK(name, cond) \
    do { \
        if (cond) printf("ok unit/%s\n", (name)); \
        else { \
            printf("FAIL unit/%s: %s (%s:%d)\n", (name), #cond, __FILE__, __LINE__); \
            unit_failed++; \
        } \
    } while (0)

/* Compare a (pointer, length) result with an expected C string. */
#define CHECK_STR(name, got, gotlen, want) \
    do { \
        const char *w_ = (want); \
        long gl_ = (long)(gotlen); \
        if (gl_ >= 0 && (size_t)gl_ == strlen(w_) && memcmp((got), w_, (size_t)gl_) == 0) \
            printf("ok unit/%s\n", (name)); \
        else { \
            printf("FAIL unit/%s: got %ld:'%.*s' want '%s' (%s:%d)\n", (name), gl_, \
                   gl_ > 0 ? (int)gl_ : 0, gl_ > 0 ? (const char *)(got) : "", w_, __FILE__, __LINE__); \
            unit_failed++; \
        } \
    } while (0)

void test_parse(void);       /* tests/unit/test_parse.c  */
void test_hash(void);        /* tests/unit/test_hash.c   */
void test_yaml(void);        /* tests/unit/test_yaml.c   */
void test_yaml_limits(void); /* tests/unit/test_yaml_limits.c */
void test_rset(void);        /* tests/unit/test_rset.c   */
void test_router(void);      /* tests/unit/test_router.c */
void test_glob(void);        /* tests/unit/test_glob.c   */
void test_util(void);        /* tests/unit/test_util.c   */
#endif
