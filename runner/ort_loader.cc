#include "ort_loader.h"

#include <dlfcn.h>
#include <glob.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "common.h"
#include "onnxruntime_cxx_api.h"

namespace runner {

std::string program_dir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  std::string p(buf);
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

namespace {

std::vector<std::string> glob_files(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;  // sorted by glob
}

}  // namespace

OrtLibrary load_onnxruntime(const std::string& flag) {
  std::vector<std::string> candidates;
  std::string chosen = flag;
  if (chosen.empty()) {
    const char* env = std::getenv("SCALES_EDGE_ORT_LIB");
    if (env && *env) chosen = env;
  }
  const bool explicit_path = !chosen.empty();
  if (explicit_path) {
    if (access(chosen.c_str(), R_OK) != 0)
      throw Error(chosen + ": no such file (the ONNX Runtime library, --ort-lib / SCALES_EDGE_ORT_LIB)");
    char real[PATH_MAX];
    candidates.push_back(realpath(chosen.c_str(), real) ? std::string(real) : chosen);  // dlopen: a path, not a name
  } else {
    const std::string dir = program_dir();
    candidates.push_back(dir + "/libonnxruntime.so.1");
    for (const std::string& p : glob_files(dir + "/libonnxruntime.so*")) candidates.push_back(p);
    for (const std::string& p : glob_files(dir + "/../onnxruntime/capi/libonnxruntime.so*")) candidates.push_back(p);
    candidates.push_back("libonnxruntime.so.1");  // the dynamic linker's search
  }
  std::string tried;
  for (const std::string& c : candidates) {
    const bool by_name = !explicit_path && c.find('/') == std::string::npos;
    if (!by_name && access(c.c_str(), R_OK) != 0) {
      if (explicit_path) throw Error(c + ": no such file (the ONNX Runtime library, --ort-lib / SCALES_EDGE_ORT_LIB)");
      continue;
    }
    // RTLD_GLOBAL, as if linked: the aarch64 build of ONNX Runtime crashes in CreateEnv when its
    // symbols are not global (seen with 1.32 under qemu).
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
      const char* why = dlerror();
      tried += "; " + c + ": " + (why ? why : "cannot load");
      if (explicit_path) throw Error(c + ": cannot load ONNX Runtime: " + (why ? why : "?"));
      continue;
    }
    using GetApiBase = const OrtApiBase* (*)();
    auto get_base = reinterpret_cast<GetApiBase>(dlsym(h, "OrtGetApiBase"));
    if (!get_base) {
      tried += "; " + c + ": no OrtGetApiBase (not ONNX Runtime)";
      dlclose(h);
      if (explicit_path) throw Error(c + ": not the ONNX Runtime library (no OrtGetApiBase)");
      continue;
    }
    const OrtApiBase* base = get_base();
    const OrtApi* api = base->GetApi(ORT_API_VERSION);
    const std::string version = base->GetVersionString();
    if (!api)
      throw Error(c + ": ONNX Runtime " + version + " is older than this program needs (C API version " +
                  std::to_string(ORT_API_VERSION) + "); install a newer onnxruntime");
    Ort::InitApi(api);  // the library stays loaded for the life of the process
    char real[PATH_MAX];
    std::string path = by_name ? "" : (realpath(c.c_str(), real) ? std::string(real) : c);
    if (by_name) {
      Dl_info info{};
      if (dladdr(reinterpret_cast<void*>(get_base), &info) && info.dli_fname) path = info.dli_fname;
    }
    return {path, version};
  }
  throw Error("cannot find ONNX Runtime (libonnxruntime.so.1): install the onnxruntime wheel "
              "(pip install onnxruntime), put libonnxruntime.so.1 beside " + std::string(kProgram) +
              ", or pass --ort-lib PATH / set SCALES_EDGE_ORT_LIB (tried: beside the program, the onnxruntime wheel, the library path" +
              tried + ")");
}

}  // namespace runner
