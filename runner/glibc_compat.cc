// libpng's static library calls pow(), and glibc 2.29 gave pow a new symbol version: linked
// against a newer glibc, the runner would need glibc >= 2.29 where ONNX Runtime's wheels need
// 2.28 (aarch64) or less. Every call to pow goes through __wrap_pow (the linker's --wrap=pow, set in
// runner/CMakeLists.txt), which calls the first version of pow, with the same results.
#include <cmath>

#if defined(__GLIBC__) && defined(__aarch64__)
__asm__(".symver scales_edge_pow_base,pow@GLIBC_2.17");
#define SCALES_EDGE_POW scales_edge_pow_base
#elif defined(__GLIBC__) && defined(__x86_64__)
__asm__(".symver scales_edge_pow_base,pow@GLIBC_2.2.5");
#define SCALES_EDGE_POW scales_edge_pow_base
#else
#define SCALES_EDGE_POW __real_pow  // another libc: pow itself
#endif

extern "C" double SCALES_EDGE_POW(double, double);
extern "C" double __wrap_pow(double x, double y) { return SCALES_EDGE_POW(x, y); }
