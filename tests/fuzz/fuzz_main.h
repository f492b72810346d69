/* fuzz_main.h - the libFuzzer entry point of a fuzz target file: it calls
 * fuzz_<FUZZ_TARGET>(data, size), the target chosen with -DFUZZ_TARGET=name.
 * Include it once, at the end of the file that defines the fuzz_* functions. */
#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET=<a fuzz_* function of this file, without fuzz_>"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b)  CAT_(a, b)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CAT(fuzz_, FUZZ_TARGET)(data, size);
    return 0;
}
