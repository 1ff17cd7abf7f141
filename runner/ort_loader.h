// Finding ONNX Runtime at run time. The runner does not link libonnxruntime (so it needs no
// LD_LIBRARY_PATH and no copy under a fixed name): it opens the library with dlopen and hands its
// API to the C++ wrapper (ORT_API_MANUAL_INIT), as ONNX Runtime hands it to the op library.
#pragma once

#include <string>
#include <vector>

namespace runner {

struct OrtLibrary {
  std::string path;     // the file opened ("" if the dynamic linker found it by name)
  std::string version;  // ONNX Runtime's version string
};

// The directory of the running program (/proc/self/exe).
std::string program_dir();

// Opens ONNX Runtime and initialises the C++ API. Tried in order, first match wins:
//   1. `flag` (--ort-lib), else $SCALES_EDGE_ORT_LIB;
//   2. libonnxruntime.so.1 / libonnxruntime.so* beside the program (a runner folder on a board);
//   3. the onnxruntime wheel installed beside the scales_edge package the program is part of:
//      <program dir>/../onnxruntime/capi/libonnxruntime.so* (a pip install);
//   4. the dynamic linker's search for libonnxruntime.so.1 (LD_LIBRARY_PATH, ldconfig).
// Throws Error listing what was tried.
OrtLibrary load_onnxruntime(const std::string& flag);

}  // namespace runner
