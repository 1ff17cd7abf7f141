# Build against the glibc and libstdc++ of a Debian-layout root instead of the compiler's own, so
# the binaries need no newer glibc / libstdc++ symbols than that root has. Used by the toolchain
# files cmake/aarch64-linux-gnu.cmake (AARCH64_SYSROOT) and cmake/x86_64-linux-gnu.cmake
# (X86_64_SYSROOT); scripts/lib/private-apt.sh (fetch_sysroot) makes such a root from Debian 11.
#
#   scales_edge_debian_sysroot(ROOT TRIPLE CXX)
#     ROOT    usr/include, usr/lib/<TRIPLE>, usr/include/c++/<N>, usr/lib/gcc/<TRIPLE>/<N>
#             (libc6-dev, libstdc++-<N>-dev, libgcc-<N>-dev of that architecture)
#     TRIPLE  aarch64-linux-gnu, x86_64-linux-gnu
#     CXX     the g++ in use (its own headers, stddef.h, arm_neon.h, immintrin.h ..., stay)
# Sets CMAKE_SYSROOT and the *_FLAGS_INIT of compiling and linking.
macro(scales_edge_debian_sysroot _root _triple _cxx)
  get_filename_component(_sr "${_root}" ABSOLUTE)
  if(NOT EXISTS "${_sr}/usr/lib/${_triple}/libc.so")
    message(FATAL_ERROR "sysroot ${_sr} has no usr/lib/${_triple}/libc.so (libc6-dev)")
  endif()
  # The root's libstdc++ headers: usr/include/c++/<N> (libstdc++-<N>-dev), highest N.
  file(GLOB _cxx_dirs LIST_DIRECTORIES true "${_sr}/usr/include/c++/*")
  set(_cxx_ver "")
  foreach(_d ${_cxx_dirs})
    get_filename_component(_v "${_d}" NAME)
    if(_v MATCHES "^[0-9]+$" AND (NOT _cxx_ver OR _v GREATER _cxx_ver))
      set(_cxx_ver "${_v}")
    endif()
  endforeach()
  if(NOT _cxx_ver)
    message(FATAL_ERROR "sysroot ${_sr} has no usr/include/c++/<N> (libstdc++-<N>-dev)")
  endif()
  # The compiler's own headers stay; its libc/libstdc++ headers, which a Debian compiler
  # searches before any sysroot, must not be seen.
  execute_process(COMMAND "${_cxx}" -print-file-name=include
                  OUTPUT_VARIABLE _gcc_inc OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(CMAKE_SYSROOT "${_sr}")
  set(_inc "-nostdinc"
    "-isystem ${_sr}/usr/include/c++/${_cxx_ver}"
    "-isystem ${_sr}/usr/include/${_triple}/c++/${_cxx_ver}"
    "-isystem ${_sr}/usr/include/c++/${_cxx_ver}/backward"
    "-isystem ${_gcc_inc}"
    "-isystem ${_sr}/usr/include/${_triple}"
    "-isystem ${_sr}/usr/include")
  string(JOIN " " _inc ${_inc})
  set(CMAKE_CXX_FLAGS_INIT "${_inc}")
  # Start files, libc, libstdc++ and libgcc_s of the root, found before the compiler's own.
  set(_ld "-B${_sr}/usr/lib/${_triple}/ -L${_sr}/usr/lib/gcc/${_triple}/${_cxx_ver}"
          " -L${_sr}/usr/lib/${_triple} -L${_sr}/lib/${_triple}")
  string(JOIN "" _ld ${_ld})
  set(CMAKE_EXE_LINKER_FLAGS_INIT "${_ld}")
  set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_ld}")
  set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_ld}")
endmacro()
