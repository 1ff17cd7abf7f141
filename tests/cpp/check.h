// The pass/fail bookkeeping shared by the C++ test programs: check() counts, prints each failure,
// and finish() prints "N passed, M failed" and gives the exit status (1 on any failure).
#pragma once

#include <cstdio>
#include <string>

namespace test {

inline int g_passed = 0;
inline int g_failed = 0;

inline void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

inline int finish() {
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}

}  // namespace test
