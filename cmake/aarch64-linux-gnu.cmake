# CMake toolchain file: cross-build scales-edge (op library, kernel tests, native runner) for
# 64-bit ARM Linux (aarch64, glibc) with the GNU cross compiler of Debian/Ubuntu
# (apt-get install g++-aarch64-linux-gnu; bash scripts/arm-setup.sh does it). See docs/arm.md.
#
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DAARCH64_SYSROOT=.cache/arm/sysroot-bullseye \
#         -DSCALES_EDGE_BUILD_RUNNER=ON -DONNXRUNTIME_LIBRARY=<aarch64 libonnxruntime.so.1.x>
#
# Variables (cache or environment):
#   AARCH64_CROSS_PREFIX  compiler prefix (default aarch64-linux-gnu-)
#   AARCH64_SYSROOT       a Debian-layout aarch64 root (usr/include, usr/lib/aarch64-linux-gnu,
#                         usr/include/c++/<N>, usr/lib/gcc/aarch64-linux-gnu/<N>) to build against
#                         INSTEAD of the cross compiler's own glibc and libstdc++: its C and C++
#                         headers and libraries are used, so the binaries need no newer glibc or
#                         libstdc++ than that root has (scripts/arm-setup.sh makes one from Debian 11:
#                         the results need GLIBC_2.17 and GLIBCXX_3.4.21 symbols only). Unset: the
#                         compiler's own root (Debian 12: the results need glibc >= 2.34).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

# try_compile projects see these too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AARCH64_CROSS_PREFIX AARCH64_SYSROOT)

if(NOT AARCH64_CROSS_PREFIX)
  if(DEFINED ENV{AARCH64_CROSS_PREFIX} AND NOT "$ENV{AARCH64_CROSS_PREFIX}" STREQUAL "")
    set(AARCH64_CROSS_PREFIX "$ENV{AARCH64_CROSS_PREFIX}")
  else()
    set(AARCH64_CROSS_PREFIX "aarch64-linux-gnu-")
  endif()
endif()

find_program(SCALES_EDGE_AARCH64_CXX NAMES "${AARCH64_CROSS_PREFIX}g++")
if(NOT SCALES_EDGE_AARCH64_CXX)
  message(FATAL_ERROR
    "aarch64 cross compiler '${AARCH64_CROSS_PREFIX}g++' not found. Install it "
    "(Debian/Ubuntu: apt-get install g++-aarch64-linux-gnu, or bash scripts/arm-setup.sh) "
    "or set AARCH64_CROSS_PREFIX.")
endif()
set(CMAKE_CXX_COMPILER "${SCALES_EDGE_AARCH64_CXX}")

if(NOT AARCH64_SYSROOT AND DEFINED ENV{AARCH64_SYSROOT} AND NOT "$ENV{AARCH64_SYSROOT}" STREQUAL "")
  set(AARCH64_SYSROOT "$ENV{AARCH64_SYSROOT}")
endif()
if(AARCH64_SYSROOT)
  include("${CMAKE_CURRENT_LIST_DIR}/debian-sysroot.cmake")
  scales_edge_debian_sysroot("${AARCH64_SYSROOT}" aarch64-linux-gnu "${SCALES_EDGE_AARCH64_CXX}")
endif()

# Headers and libraries of the target only; programs (python, ...) of the build machine.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# How to run target programs on the build machine (ctest): SCALES_EDGE_QEMU=<qemu-aarch64>
# (scripts/arm-setup.sh writes it to .cache/arm/env.sh).
if(DEFINED ENV{SCALES_EDGE_QEMU} AND NOT "$ENV{SCALES_EDGE_QEMU}" STREQUAL "")
  set(_qemu_root "/usr/${AARCH64_CROSS_PREFIX}")
  string(REGEX REPLACE "-$" "" _qemu_root "${_qemu_root}")
  if(AARCH64_SYSROOT)
    set(_qemu_root "${AARCH64_SYSROOT}")
  endif()
  set(CMAKE_CROSSCOMPILING_EMULATOR "$ENV{SCALES_EDGE_QEMU};-L;${_qemu_root}")
endif()
