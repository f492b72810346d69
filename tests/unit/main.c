/* main.c - runs every C unit test group; exit status 1 if any check failed. */
#include "unit.h"

int unit_failed;

int main(void)
{
    test_parse();
    test_hash();
    test_yaml();
    test_yaml_limits();
    test_rset();
    test_router();
    test_glob();
    test_util();
    return unit_failed ? 1 : 0;
}
