// Run-time choice of the kernel path: CPU feature detection (x86-64: cpuid + xgetbv for OS support
// of the vector state; AArch64: the kernel's HWCAP_ASIMD) and the SCALES_EDGE_KERNEL override.
// Compiled without instruction-set flags.
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define SCALES_EDGE_X86_64 1
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace scales_edge {
namespace kernels {

extern const IsaKernels kPortableKernels;
#if defined(SCALES_EDGE_HAVE_AVX2)
extern const IsaKernels kAvx2Kernels;
#endif
#if defined(SCALES_EDGE_HAVE_AVX512)
extern const IsaKernels kAvx512Kernels;
#endif
#if defined(SCALES_EDGE_HAVE_NEON)
extern const IsaKernels kNeonKernels;
#endif

namespace {

struct CpuFeatures {
  bool avx2 = false;    // AVX2 + POPCNT, with OS support of the YMM state
  bool avx512 = false;  // AVX-512 F/BW/VL/DQ + VPOPCNTDQ (+ AVX2), with OS support of the ZMM state
  bool neon = false;    // AArch64 Advanced SIMD (ASIMD)
};

#if defined(SCALES_EDGE_X86_64)
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect_cpu() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool popcnt = (c >> 23) & 1;
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
  __cpuid_count(7, 0, a7, b7, c7, d7);
  const bool avx2 = (b7 >> 5) & 1;
  const bool avx512f = (b7 >> 16) & 1;
  const bool avx512dq = (b7 >> 17) & 1;
  const bool avx512bw = (b7 >> 30) & 1;
  const bool avx512vl = (b7 >> 31) & 1;
  const bool vpopcntdq = (c7 >> 14) & 1;
  f.avx2 = os_ymm && avx2 && popcnt;
  f.avx512 = f.avx2 && os_zmm && avx512f && avx512dq && avx512bw && avx512vl && vpopcntdq;
  // Cross-check with the compiler runtime's view (it also checks the OS state).
  __builtin_cpu_init();
  f.avx2 = f.avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
  f.avx512 = f.avx512 && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vpopcntdq");
  return f;
}
#elif defined(__aarch64__)
CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(__linux__)
  // Advanced SIMD is part of the AArch64 base ISA; still ask the kernel (HWCAP_ASIMD = bit 1).
  f.neon = (getauxval(AT_HWCAP) & (1ul << 1)) != 0;
#else
  f.neon = true;
#endif
  return f;
}
#else
CpuFeatures detect_cpu() { return CpuFeatures{}; }
#endif

const CpuFeatures& cpu() {
  static const CpuFeatures features = detect_cpu();  // thread-safe initialisation
  return features;
}

std::string join_names(const std::vector<Path>& paths) {
  std::string s;
  for (Path p : paths) {
    if (!s.empty()) s += ", ";
    s += path_name(p);
  }
  return s;
}

std::vector<Path> compiled_paths() {
  std::vector<Path> v;
  for (int i = 0; i < kNumPaths; ++i)
    if (compiled_kernels(static_cast<Path>(i))) v.push_back(static_cast<Path>(i));
  return v;
}

std::string lower_trimmed(const char* s) {
  std::string out;
  for (; *s; ++s)
    if (!std::isspace(static_cast<unsigned char>(*s)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(*s)));
  return out;
}

}  // namespace

const char* path_name(Path p) {
  switch (p) {
    case Path::kPortable: return "portable";
    case Path::kAvx2: return "avx2";
    case Path::kAvx512: return "avx512";
    case Path::kNeon: return "neon";
  }
  return "?";
}

bool parse_path(const std::string& name, Path* out) {
  for (int i = 0; i < kNumPaths; ++i) {
    if (name == path_name(static_cast<Path>(i))) {
      *out = static_cast<Path>(i);
      return true;
    }
  }
  return false;
}

const IsaKernels* compiled_kernels(Path p) {
  switch (p) {
    case Path::kPortable: return &kPortableKernels;
    case Path::kAvx2:
#if defined(SCALES_EDGE_HAVE_AVX2)
      return &kAvx2Kernels;
#else
      return nullptr;
#endif
    case Path::kAvx512:
#if defined(SCALES_EDGE_HAVE_AVX512)
      return &kAvx512Kernels;
#else
      return nullptr;
#endif
    case Path::kNeon:
#if defined(SCALES_EDGE_HAVE_NEON)
      return &kNeonKernels;
#else
      return nullptr;
#endif
  }
  return nullptr;
}

bool path_supported(Path p) {
  if (!compiled_kernels(p)) return false;
  switch (p) {
    case Path::kPortable: return true;
    case Path::kAvx2: return cpu().avx2;
    case Path::kAvx512: return cpu().avx512;
    case Path::kNeon: return cpu().neon;
  }
  return false;
}

std::vector<Path> supported_paths() {
  std::vector<Path> v;
  for (int i = 0; i < kNumPaths; ++i)
    if (path_supported(static_cast<Path>(i))) v.push_back(static_cast<Path>(i));
  return v;
}

bool auto_requested(const char* name) {
  std::string requested;
  if (name && *name) {
    requested = lower_trimmed(name);
  } else if (const char* env = std::getenv(kKernelEnvVar)) {
    requested = lower_trimmed(env);
  }
  return requested.empty() || requested == "auto";
}

bool forced_kernels(const IsaKernels** k, std::string* error) {
  *k = nullptr;
  const char* env = std::getenv(kKernelEnvVar);
  if (!env || lower_trimmed(env).empty() || lower_trimmed(env) == "auto") return false;
  *k = select_kernels(nullptr, error);
  return *k != nullptr;
}

const IsaKernels& layout_kernels(const IsaKernels* forced) {
  if (forced) return *forced;
  const std::vector<Path> paths = supported_paths();
  for (Path p : paths)
    if (compiled_kernels(p)->conv_tables) return *compiled_kernels(p);
  return *compiled_kernels(paths.back());
}

const IsaKernels* select_kernels(const char* name, std::string* error) {
  std::string source = "kernel path";
  std::string requested;
  if (name && *name) {
    requested = lower_trimmed(name);
  } else if (const char* env = std::getenv(kKernelEnvVar)) {
    requested = lower_trimmed(env);
    source = std::string(kKernelEnvVar);
  }
  const std::vector<Path> supported = supported_paths();
  if (requested.empty() || requested == "auto") return compiled_kernels(supported.back());

  Path p;
  if (!parse_path(requested, &p)) {
    if (error)
      *error = source + " '" + requested +
               "' is unknown; expected one of: auto, portable, avx2, avx512, neon (supported here: " +
               join_names(supported) + ")";
    return nullptr;
  }
  if (!compiled_kernels(p)) {
    if (error)
      *error = source + " '" + requested + "' is not built into this library (built: " +
               join_names(compiled_paths()) + "; supported here: " + join_names(supported) + ")";
    return nullptr;
  }
  if (!path_supported(p)) {
    if (error) {
      *error = source + " '" + requested + "' is not supported by this CPU";
      if (p == Path::kAvx512)
        *error += " (needs AVX-512 F/BW/VL/DQ and VPOPCNTDQ with OS support)";
      else if (p == Path::kAvx2)
        *error += " (needs AVX2 and POPCNT with OS support)";
      else if (p == Path::kNeon)
        *error += " (needs AArch64 Advanced SIMD)";
      *error += "; supported here: " + join_names(supported);
    }
    return nullptr;
  }
  return compiled_kernels(p);
}

}  // namespace kernels
}  // namespace scales_edge
