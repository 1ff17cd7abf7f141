// scales-edge-run: run and time an exported scales-edge ONNX model with ONNX Runtime and the
// scales_edge op library, without Python. Works on x86-64 and AArch64 (docs/arm.md).
//
//   scales-edge-run MODEL.onnx [--input IN.ppm|IN.pgm|IN.npy | --size WxH] [--output OUT.ppm|.pgm|.npy]
//                   [--threads N] [--runs N] [--warmup N] [--ops LIB] [--kernel NAME] [--json FILE]
//
// Images: binary PPM (P6, RGB) / PGM (P5, gray), 8 or 16 bit, read as [1, C, H, W] float32 on [0, 1]
// (value / maxval) and written clipped to [0, 1] and rounded (like scales_edge.runtime.infer);
// or raw float32 .npy tensors ([N, C, H, W] or [C, H, W], little-endian, C order) in and out.
// Without --input, the input is uniform random on [0, 1) of --size (default 320x180, seed --seed).
// Prints latency statistics as JSON on stdout in the schema of `scales-edge bench --json`
// ("scales-edge.bench/1"); progress and a one-line summary go to stderr. Exit code 0 on success,
// 2 on any error (one line on stderr).
#include <dlfcn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "onnxruntime_cxx_api.h"

namespace {

constexpr const char* kProgram = "scales-edge-run";
constexpr const char* kSchema = "scales-edge.bench/1";
constexpr const char* kOpsLibName = "libscales_edge_ops.so";
constexpr const char* kKernelEnv = "SCALES_EDGE_KERNEL";
constexpr const char* kOpsEnv = "SCALES_EDGE_OPS_LIB";

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kUsage =
    "usage: scales-edge-run MODEL.onnx [options]\n"
    "\n"
    "Runs an ONNX model (e.g. exported by `scales-edge export`) in ONNX Runtime with the\n"
    "scales_edge op library, times it and prints latency statistics as JSON (the schema of\n"
    "`scales-edge bench --json`).\n"
    "\n"
    "options:\n"
    "  --input FILE     input image: binary PPM (P6, RGB) or PGM (P5, gray), values / maxval;\n"
    "                   or a float32 .npy tensor [N, C, H, W] or [C, H, W]\n"
    "  --size WxH       random input of this size when no --input (default 320x180)\n"
    "  --seed N         seed of the random input (default 0)\n"
    "  --output FILE    write the output: .ppm (3 channels) / .pgm (1 channel) / .pnm, clipped to\n"
    "                   [0, 1] and rounded to 8 bits; or .npy (float32, the raw output tensor)\n"
    "  --threads N      ONNX Runtime intra-op threads (default 1)\n"
    "  --runs N         timed runs (default 20)\n"
    "  --warmup N       untimed warm-up runs (default 3)\n"
    "  --ops LIB        the op library (default: $SCALES_EDGE_OPS_LIB, else libscales_edge_ops.so\n"
    "                   beside this program)\n"
    "  --kernel NAME    kernel path: auto, portable, avx2, avx512, neon (sets SCALES_EDGE_KERNEL)\n"
    "  --json FILE      also write the JSON to FILE\n"
    "  -q, --quiet      no progress or summary on stderr\n"
    "  -h, --help       this help\n"
    "\n"
    "example: scales-edge-run model.onnx --input lr.ppm --output sr.ppm --runs 1 --warmup 0\n"
    "         scales-edge-run model.onnx --size 320x180 --threads 4 --runs 20 --json bench.json\n";

// ------------------------------------------------------------------ arguments
struct Args {
  std::string model, input, output, ops, kernel, json;
  int64_t width = 320, height = 180;
  uint64_t seed = 0;
  int threads = 1, runs = 20, warmup = 3;
  bool quiet = false;
};

long long parse_int(const std::string& flag, const std::string& v, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    throw Error(flag + " expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], got '" + v + "'");
  return x;
}

Args parse_args(int argc, char** argv) {
  Args a;
  bool have_size = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (flag == "-q" || flag == "--quiet") {
      a.quiet = true;
      continue;
    }
    std::string value;
    bool has_value = false;
    const size_t eq = flag.find('=');
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    if (flag.rfind("-", 0) != 0 || flag == "-") {
      if (!a.model.empty()) throw Error("more than one model given ('" + a.model + "', '" + flag + "')");
      a.model = flag;
      continue;
    }
    auto need = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) throw Error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--input") a.input = need();
    else if (flag == "--output") a.output = need();
    else if (flag == "--ops") a.ops = need();
    else if (flag == "--kernel") a.kernel = need();
    else if (flag == "--json") a.json = need();
    else if (flag == "--threads") a.threads = static_cast<int>(parse_int(flag, need(), 1, 1024));
    else if (flag == "--runs") a.runs = static_cast<int>(parse_int(flag, need(), 1, 1000000));
    else if (flag == "--warmup") a.warmup = static_cast<int>(parse_int(flag, need(), 0, 1000000));
    else if (flag == "--seed") a.seed = static_cast<uint64_t>(parse_int(flag, need(), 0, INT64_MAX));
    else if (flag == "--size") {
      const std::string v = need();
      const size_t x = v.find_first_of("xX");
      if (x == std::string::npos) throw Error("--size expects WxH, e.g. 320x180, got '" + v + "'");
      a.width = parse_int("--size width", v.substr(0, x), 1, 1 << 20);
      a.height = parse_int("--size height", v.substr(x + 1), 1, 1 << 20);
      have_size = true;
    } else {
      throw Error("unknown option '" + flag + "' (see --help)");
    }
  }
  if (a.model.empty()) throw Error("no model given (see --help)");
  if (have_size && !a.input.empty()) throw Error("--size and --input exclude each other");
  return a;
}

std::string lower_ext(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string e = path.substr(dot + 1);
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

// ------------------------------------------------------------------ tensors and files
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error(path + ": write failed");
}

// .npy (format 1.0-3.0), float32 little-endian, C order.
Tensor read_npy(const std::string& path) {
  const std::vector<char> b = read_file(path);
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0)
    throw Error(path + ": not a .npy file");
  const int major = static_cast<unsigned char>(b[6]);
  size_t hlen = 0, off = 0;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | (static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw Error(path + ": truncated .npy header");
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
    off = 12;
  } else {
    throw Error(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (off + hlen > b.size()) throw Error(path + ": truncated .npy header");
  const std::string h(b.data() + off, hlen);
  auto field = [&](const std::string& key) {
    const size_t k = h.find("'" + key + "'");
    if (k == std::string::npos) throw Error(path + ": .npy header has no '" + key + "'");
    const size_t colon = h.find(':', k);
    return h.substr(colon + 1);
  };
  std::string descr = field("descr");
  descr = descr.substr(descr.find('\'') + 1);
  descr = descr.substr(0, descr.find('\''));
  if (descr != "<f4")
    throw Error(path + ": dtype '" + descr + "' is not supported; save float32 (np.float32, '<f4')");
  const std::string fo = field("fortran_order");
  if (fo.find("True") < fo.find(','))
    throw Error(path + ": Fortran-order arrays are not supported; save np.ascontiguousarray(x)");
  std::string sh = field("shape");
  sh = sh.substr(sh.find('(') + 1);
  sh = sh.substr(0, sh.find(')'));
  Tensor t;
  std::stringstream ss(sh);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
    if (item.empty()) continue;
    t.shape.push_back(parse_int(path + " shape", item, 0, INT64_MAX / 2));
  }
  size_t count = 1;
  for (int64_t d : t.shape) count *= static_cast<size_t>(d);
  const size_t data_off = off + hlen;
  if (b.size() - data_off < count * sizeof(float))
    throw Error(path + ": holds fewer values than its shape " + shape_str(t.shape) + " needs");
  t.data.resize(count);
  if (count) std::memcpy(t.data.data(), b.data() + data_off, count * sizeof(float));
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  std::string shape = "(";  // Python tuple syntax: (), (a,), (a, b, ...)
  for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
  shape += t.shape.size() == 1 ? ",)" : ")";
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  out += h;
  out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  write_file(path, out);
}

// Binary PNM: P5 (gray) / P6 (RGB), maxval 1..65535 (16-bit samples are big-endian).
Tensor read_pnm(const std::string& path) {
  const std::vector<char> b = read_file(path);
  size_t p = 0;
  auto skip_space = [&] {
    while (p < b.size()) {
      if (b[p] == '#') {
        while (p < b.size() && b[p] != '\n') ++p;
      } else if (std::isspace(static_cast<unsigned char>(b[p]))) {
        ++p;
      } else {
        break;
      }
    }
  };
  auto number = [&](const char* what) {
    skip_space();
    long long v = 0;
    size_t digits = 0;
    while (p < b.size() && b[p] >= '0' && b[p] <= '9' && digits < 10) {
      v = v * 10 + (b[p++] - '0');
      ++digits;
    }
    if (digits == 0) throw Error(path + ": bad PNM header (" + what + ")");
    return v;
  };
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6'))
    throw Error(path + ": not a binary PPM/PGM file (P6/P5); convert it, e.g. `convert in.png in.ppm` "
                       "or cv2.imwrite('in.ppm', img)");
  const int channels = b[1] == '6' ? 3 : 1;
  p = 2;
  const long long w = number("width"), h = number("height"), maxval = number("maxval");
  if (w < 1 || h < 1 || maxval < 1 || maxval > 65535) throw Error(path + ": bad PNM header values");
  if (p >= b.size() || !std::isspace(static_cast<unsigned char>(b[p])))
    throw Error(path + ": bad PNM header (no whitespace after maxval)");
  ++p;
  const size_t bps = maxval > 255 ? 2 : 1;
  const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h) * channels;
  if (b.size() - p < n * bps) throw Error(path + ": truncated PNM pixel data");
  Tensor t;
  t.shape = {1, channels, h, w};
  t.data.resize(n);
  const unsigned char* px = reinterpret_cast<const unsigned char*>(b.data() + p);
  const float mv = static_cast<float>(maxval);
  for (long long y = 0; y < h; ++y)
    for (long long x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) {
        const size_t i = (static_cast<size_t>(y) * w + x) * channels + c;
        const unsigned v = bps == 1 ? px[i] : (static_cast<unsigned>(px[2 * i]) << 8) | px[2 * i + 1];
        // float32 divide, as scales_edge.runtime.infer does (uint8 / 255.0 in float32)
        t.data[(static_cast<size_t>(c) * h + y) * w + x] = static_cast<float>(v) / mv;
      }
  return t;
}

void write_pnm(const std::string& path, const Tensor& t, const std::string& ext) {
  if (t.shape.size() != 4 || t.shape[0] != 1)
    throw Error("output " + shape_str(t.shape) + " is not one image [1, C, H, W]; write .npy instead");
  const int64_t C = t.shape[1], H = t.shape[2], W = t.shape[3];
  if (!(C == 3 || C == 1) || (ext == "ppm" && C != 3) || (ext == "pgm" && C != 1))
    throw Error("output has " + std::to_string(C) + " channels: write ." +
                (C == 3 ? "ppm" : C == 1 ? "pgm" : "npy") + " instead of ." + ext);
  std::string out = (C == 3 ? "P6\n" : "P5\n") + std::to_string(W) + " " + std::to_string(H) + "\n255\n";
  const size_t header = out.size();
  out.resize(header + static_cast<size_t>(C * H * W));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c) {
        float v = t.data[static_cast<size_t>((c * H + y) * W + x)];
        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);  // NaN stays NaN -> 0 below
        const float s = v * 255.0f;                     // float32, then round half to even
        const float r = std::nearbyint(s);
        out[header + static_cast<size_t>((y * W + x) * C + c)] =
            static_cast<char>(static_cast<unsigned char>(r >= 0.0f && r <= 255.0f ? r : 0.0f));
      }
  write_file(path, out);
}

// ------------------------------------------------------------------ machine, stats, JSON
std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      r += buf;
    } else {
      r += static_cast<char>(c);
    }
  }
  return r + "\"";
}

std::string json_num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {  // the shortest text that reads back exactly (as Python)
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string json_shape(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// The fields of scales_edge.runtime.bench.machine_info(); "python" is null here.
std::string machine_json() {
  struct utsname u {};
  uname(&u);
  std::string model, flags_line;
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    auto value = [&] {
      const size_t c = line.find(':');
      std::string v = c == std::string::npos ? "" : line.substr(c + 1);
      const size_t s = v.find_first_not_of(" \t");
      return s == std::string::npos ? std::string() : v.substr(s);
    };
    if (model.empty() && line.rfind("model name", 0) == 0) model = value();
    if (flags_line.empty() && (line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0))
      flags_line = " " + value() + " ";
  }
  static const char* kInteresting[] = {"avx2", "avx512f", "avx512bw", "avx512_vpopcntdq",
                                       "avx512_vnni", "amx_int8", "asimd", "neon"};
  std::string flags = "[";
  bool first = true;
  for (const char* name : kInteresting) {
    if (flags_line.find(std::string(" ") + name + " ") != std::string::npos) {
      flags += (first ? "" : ", ") + json_str(name);
      first = false;
    }
  }
  flags += "]";
  const unsigned cores = std::thread::hardware_concurrency();
  return "{\"machine\": " + json_str(u.machine) + ", \"cpu\": " + json_str(model) +
         ", \"cores\": " + (cores ? std::to_string(cores) : std::string("null")) +
         ", \"cpu_flags\": " + flags + ", \"onnxruntime\": " + json_str(Ort::GetVersionString()) +
         ", \"python\": null}";
}

// numpy.percentile with linear interpolation.
double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// ------------------------------------------------------------------ the op library
std::string self_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  std::string p(buf);
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool is_file(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

// dlopen (ours and ONNX Runtime's) searches the library path for a name without '/': resolve it.
std::string absolute(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string find_ops_library(const std::string& flag) {
  if (!flag.empty()) {
    if (!is_file(flag)) throw Error("--ops " + flag + ": no such file");
    return absolute(flag);
  }
  if (const char* env = std::getenv(kOpsEnv)) {
    if (*env) {
      if (!is_file(env)) throw Error(std::string(kOpsEnv) + "=" + env + ": no such file");
      return absolute(env);
    }
  }
  const std::string beside = self_dir() + "/" + kOpsLibName;
  if (is_file(beside)) return beside;
  throw Error(std::string(kOpsLibName) + " not found beside " + kProgram + " (" + beside +
              "); pass --ops LIB or set " + kOpsEnv);
}

// The kernel path the library will use (its plain-C ABI); "" if it cannot say.
std::string resolve_kernel(const std::string& lib) {
  void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) throw Error(lib + ": cannot load the op library: " + dlerror());
  using Resolve = int (*)(const char*, char*, size_t, char*, size_t);
  auto fn = reinterpret_cast<Resolve>(dlsym(h, "scales_edge_kernel_resolve"));
  if (!fn) return "";  // not ours, or an old build: ORT will tell if it is unusable
  char name[64] = {0}, err[1024] = {0};
  if (fn(nullptr, name, sizeof name, err, sizeof err) != 0) throw Error(lib + ": " + err);
  return name;  // the handle stays open: ONNX Runtime loads the same library
}

// ------------------------------------------------------------------ main
int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (!is_file(a.model)) throw Error(a.model + ": no such ONNX model file");
  if (!a.kernel.empty()) setenv(kKernelEnv, a.kernel.c_str(), 1);
  const std::string ops = find_ops_library(a.ops);
  const std::string kernel = resolve_kernel(ops);
  auto say = [&](const std::string& s) {
    if (!a.quiet) std::fprintf(stderr, "%s: %s\n", kProgram, s.c_str());
  };

  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, kProgram);
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(a.threads);
  so.SetInterOpNumThreads(1);
  so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  so.RegisterCustomOpsLibrary(ops.c_str());
  Ort::Session session(nullptr);
  try {
    session = Ort::Session(env, a.model.c_str(), so);
  } catch (const Ort::Exception& e) {
    throw Error(a.model + ": ONNX Runtime cannot load it: " + e.what());
  }
  if (session.GetInputCount() < 1 || session.GetOutputCount() < 1)
    throw Error(a.model + ": the model needs at least one input and one output");
  if (session.GetInputCount() > 1)
    throw Error(a.model + ": the model has " + std::to_string(session.GetInputCount()) +
                " inputs; " + kProgram + " feeds one");
  Ort::AllocatorWithDefaultOptions alloc;
  const std::string in_name = session.GetInputNameAllocated(0, alloc).get();
  const std::string out_name = session.GetOutputNameAllocated(0, alloc).get();
  const Ort::TypeInfo in_type = session.GetInputTypeInfo(0);  // owns what in_info points to
  const auto in_info = in_type.GetTensorTypeAndShapeInfo();
  if (in_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    throw Error(a.model + ": input '" + in_name + "' is not float32");
  const std::vector<int64_t> model_shape = in_info.GetShape();

  Tensor input;
  if (!a.input.empty()) {
    const std::string ext = lower_ext(a.input);
    if (ext == "npy") {
      input = read_npy(a.input);
      if (input.shape.size() == 3) input.shape.insert(input.shape.begin(), 1);
    } else if (ext == "ppm" || ext == "pgm" || ext == "pnm") {
      input = read_pnm(a.input);
    } else {
      throw Error(a.input + ": unknown input format; use .ppm, .pgm, .pnm or .npy");
    }
  } else {
    int64_t channels = 3;
    if (model_shape.size() == 4 && model_shape[1] > 0) channels = model_shape[1];
    input.shape = {1, channels, a.height, a.width};
    input.data.resize(static_cast<size_t>(channels * a.height * a.width));
    std::mt19937_64 rng(a.seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& v : input.data) v = u(rng);
  }
  if (model_shape.size() != input.shape.size())
    throw Error("input " + shape_str(input.shape) + " does not fit the model's input '" + in_name +
                "' " + shape_str(model_shape) + " (-1: any size)");
  for (size_t i = 0; i < model_shape.size(); ++i)
    if (model_shape[i] > 0 && model_shape[i] != input.shape[i])
      throw Error("input " + shape_str(input.shape) + " does not fit the model's input '" + in_name +
                  "' " + shape_str(model_shape) + " (-1: any size)");

  const Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value in_value = Ort::Value::CreateTensor<float>(mem, input.data.data(), input.data.size(),
                                                        input.shape.data(), input.shape.size());
  const char* in_names[] = {in_name.c_str()};
  const char* out_names[] = {out_name.c_str()};
  auto run_once = [&] {
    return session.Run(Ort::RunOptions{nullptr}, in_names, &in_value, 1, out_names, 1);
  };

  say("model " + a.model + ", input " + shape_str(input.shape) + ", kernel " +
      (kernel.empty() ? "?" : kernel) + ", " + std::to_string(a.threads) + " thread(s), " +
      std::to_string(a.warmup) + " warm-up + " + std::to_string(a.runs) + " timed runs");
  std::vector<Ort::Value> first;
  for (int i = 0; i < a.warmup; ++i) {
    auto out = run_once();
    if (first.empty()) first = std::move(out);
  }
  std::vector<double> times, cpu_times;
  times.reserve(static_cast<size_t>(a.runs));
  // CPU time of this thread per run: with 1 thread ORT runs the graph on it (as bench reports it)
  auto thread_cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
  };
  for (int i = 0; i < a.runs; ++i) {
    const double c0 = thread_cpu_ms();
    const auto t0 = std::chrono::steady_clock::now();
    auto out = run_once();
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    cpu_times.push_back(thread_cpu_ms() - c0);
    if (first.empty()) first = std::move(out);
  }

  const auto out_info = first[0].GetTensorTypeAndShapeInfo();
  if (out_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    throw Error(a.model + ": output '" + out_name + "' is not float32");
  Tensor output;
  output.shape = out_info.GetShape();
  const float* od = first[0].GetTensorData<float>();
  output.data.assign(od, od + out_info.GetElementCount());
  if (!a.output.empty()) {
    const std::string ext = lower_ext(a.output);
    if (ext == "npy") write_npy(a.output, output);
    else if (ext == "ppm" || ext == "pgm" || ext == "pnm") write_pnm(a.output, output, ext);
    else throw Error(a.output + ": unknown output format; use .ppm, .pgm, .pnm or .npy");
    say("wrote " + a.output + " " + shape_str(output.shape));
  }

  double mean = 0.0;
  for (double t : times) mean += t;
  mean /= static_cast<double>(times.size());
  const double median = percentile(times, 50.0);
  const double mp = output.shape.size() == 4
                        ? static_cast<double>(output.shape[2] * output.shape[3]) / 1e6
                        : 0.0;
  long long file_bytes = 0;
  {
    std::ifstream f(a.model, std::ios::binary | std::ios::ate);
    file_bytes = static_cast<long long>(f.tellg());
  }
  const std::string result =
      "{\"model\": " + json_str(a.model) + ", \"file_bytes\": " + std::to_string(file_bytes) +
      ", \"input_shape\": " + json_shape(input.shape) + ", \"output_shape\": " +
      json_shape(output.shape) + ", \"threads\": " + std::to_string(a.threads) +
      ", \"runs\": " + std::to_string(a.runs) + ", \"warmup\": " + std::to_string(a.warmup) +
      ", \"median_ms\": " + json_num(median) + ", \"p10_ms\": " + json_num(percentile(times, 10.0)) +
      ", \"p90_ms\": " + json_num(percentile(times, 90.0)) + ", \"min_ms\": " +
      json_num(*std::min_element(times.begin(), times.end())) + ", \"mean_ms\": " + json_num(mean) +
      ", \"megapixels_per_s\": " + json_num(median > 0 ? mp / (median / 1e3) : 0.0) +
      ", \"profile\": null" +  // the runner does not profile (scales-edge bench --profile does)
      ", \"cpu_median_ms\": " + (a.threads == 1 ? json_num(percentile(cpu_times, 50.0)) : std::string("null")) +
      "}";
  const std::string payload =
      "{\n  \"schema\": " + json_str(kSchema) + ",\n  \"machine\": " + machine_json() +
      ",\n  \"peak_rss_mb\": " + json_num(peak_rss_mb()) + ",\n  \"results\": [" + result +
      "],\n  \"runner\": {\"program\": " + json_str(kProgram) + ", \"ops_library\": " +
      json_str(ops) + ", \"kernel\": " + (kernel.empty() ? "null" : json_str(kernel)) + "}\n}\n";
  std::fputs(payload.c_str(), stdout);
  std::fflush(stdout);
  if (!a.json.empty()) write_file(a.json, payload);
  char line[256];
  std::snprintf(line, sizeof line, "median %.2f ms (p10 %.2f, p90 %.2f, min %.2f), %.3f MP/s", median,
                percentile(times, 10.0), percentile(times, 90.0),
                *std::min_element(times.begin(), times.end()), median > 0 ? mp / (median / 1e3) : 0.0);
  say(line);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", kProgram, e.what());
  } catch (const Ort::Exception& e) {
    std::fprintf(stderr, "%s: error: ONNX Runtime: %s\n", kProgram, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", kProgram, e.what());
  }
  return 2;
}
