# CMake toolchain file: a portable x86-64 Linux (glibc) build of scales-edge with the build
# machine's own g++, against the glibc and libstdc++ of an older Debian root, so the op library
# needs no newer symbols than that root has. scripts/build-wheels.sh uses it for the manylinux
# wheel with the Debian 11 root that scripts/lib/private-apt.sh fetches (glibc 2.31, GCC 10's
# libstdc++): the result needs only GLIBC_2.27 / GLIBCXX_3.4.21-era symbols (the wheel's checked
# bound: manylinux_2_28, GLIBCXX <= 3.4.25 = GCC 8). Not a cross build: the results run here.
#
#   cmake -S . -B build/x86_64-compat -DCMAKE_TOOLCHAIN_FILE=cmake/x86_64-linux-gnu.cmake \
#         -DX86_64_SYSROOT=.cache/x86_64/sysroot-bullseye
#
# Variables (cache or environment):
#   X86_64_SYSROOT   the Debian-layout x86-64 root (required; see cmake/debian-sysroot.cmake)
#   X86_64_CXX       the compiler (default: g++)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES X86_64_SYSROOT X86_64_CXX)

foreach(_var X86_64_SYSROOT X86_64_CXX)
  if(NOT ${_var} AND DEFINED ENV{${_var}} AND NOT "$ENV{${_var}}" STREQUAL "")
    set(${_var} "$ENV{${_var}}")
  endif()
endforeach()
if(NOT X86_64_SYSROOT)
  message(FATAL_ERROR "cmake/x86_64-linux-gnu.cmake needs X86_64_SYSROOT (a Debian x86-64 root; "
                      "scripts/build-wheels.sh fetches one)")
endif()
find_program(SCALES_EDGE_X86_64_CXX NAMES ${X86_64_CXX} g++ x86_64-linux-gnu-g++)
if(NOT SCALES_EDGE_X86_64_CXX)
  message(FATAL_ERROR "no g++ found (apt-get install g++, or set X86_64_CXX)")
endif()
set(CMAKE_CXX_COMPILER "${SCALES_EDGE_X86_64_CXX}")
include("${CMAKE_CURRENT_LIST_DIR}/debian-sysroot.cmake")
scales_edge_debian_sysroot("${X86_64_SYSROOT}" x86_64-linux-gnu "${SCALES_EDGE_X86_64_CXX}")
