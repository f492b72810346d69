/* test_util.c - the core's shared helpers: sr_errf (where + formatted
 * message, truncated and terminated), sr_err_clear, sr_strdup. */
#include <stdlib.h>
#include <string.h>

#include "sr_util.h"
#include "unit.h"

void test_util(void)
{
    sr_error e;
    char longer[600];
    char *d;
    sr_errf(&e, SR_AT_TARGET, 3, "x", "bad %s %d", "name", 7);
    CHECK("util/errf_fields", e.at == SR_AT_TARGET && e.index == 3 && strcmp(e.name, "x") == 0 &&
                                  strcmp(e.msg, "bad name 7") == 0);
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    sr_errf(&e, SR_AT_ENTRY, 0, NULL, "%s", longer);
    CHECK("util/errf_truncates", strlen(e.msg) == sizeof e.msg - 1);
    sr_errf(NULL, SR_AT_ENTRY, 0, NULL, "ignored");
    sr_err_clear(&e);
    CHECK("util/err_clear", e.at == SR_AT_INPUT && e.index == 0 && e.name == NULL && e.msg[0] == '\0');
    sr_err_clear(NULL);
    d = sr_strdup("abc");
    CHECK("util/strdup", d && strcmp(d, "abc") == 0);
    free(d);
    CHECK("util/strdup_null", sr_strdup(NULL) == NULL);
}
