// scales-edge-run: super-resolve an image, or time a model, with ONNX Runtime and the scales_edge
// op library, without Python; x86-64 and AArch64 (runner/README.md, docs/arm.md).
//
//   scales-edge-run MODEL.onnx --input IN.png --output OUT.png [--tile 256] [--overlap N] [--threads N]
//   scales-edge-run MODEL.onnx [--size WxH] [--runs 20] [--warmup 3] [--json FILE]
//
// An image is read and written as `scales-edge upscale` does (gray, RGB, RGBA, 8 or 16 bit; image_io.h,
// pixels.h) and tiled as it does, from the tiling plan `scales-edge export` stores in the model
// (tiler.h): the output bytes are the same. stdout gets the JSON of `scales-edge bench --json` plus a
// "runner" object (report.h); stderr progress and a summary. Exit code 0, or 2 with a one-line error.
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "image_io.h"
#include "json.h"
#include "model_file.h"
#include "onnxruntime_cxx_api.h"
#include "ort_loader.h"
#include "pixels.h"
#include "report.h"
#include "tile_memory.h"
#include "tiler.h"

namespace runner {
namespace {

constexpr const char* kOpsLibName = "libscales_edge_ops.so";
constexpr const char* kKernelEnv = "SCALES_EDGE_KERNEL";
constexpr const char* kOpsEnv = "SCALES_EDGE_OPS_LIB";
constexpr int kDefaultTile = 256;  // scales_edge.runtime.infer.DEFAULT_TILE

const char* kUsage =
    "usage: scales-edge-run MODEL.onnx [options]\n"
    "\n"
    "Super-resolves an image with an exported scales-edge model in ONNX Runtime, tiled with bounded\n"
    "memory exactly as `scales-edge upscale` does (same output bytes), or times the model; prints\n"
    "the JSON of `scales-edge bench --json`.\n"
    "\n"
    "options:\n"
    "  --input FILE     PNG, JPEG or binary PPM/PGM image (gray, RGB, RGBA; 8 or 16 bit), or a\n"
    "                   float32 .npy tensor [N, C, H, W] / [C, H, W]\n"
    "  --output FILE    .png (the input's layout and depth; as `scales-edge upscale`), .ppm / .pgm,\n"
    "                   or .npy (the raw float32 output tensor)\n"
    "  --overwrite      replace an existing output file\n"
    "  --tile N         tile side in LR pixels (default 256); 0 = whole image at once\n"
    "  --overlap N      extra LR pixels each tile sees (default: the model's receptive field, at\n"
    "                   most a quarter of the tile, at least 16)\n"
    "  --size WxH       random input of this size when no --input (default 320x180)\n"
    "  --seed N         seed of the random input (default 0)\n"
    "  --threads N      ONNX Runtime intra-op threads (default 1)\n"
    "  --runs N         timed runs (default 1 with --input, else 20)\n"
    "  --warmup N       untimed runs first (default 0 with --input, else 3)\n"
    "  --ops LIB        the op library (default: $SCALES_EDGE_OPS_LIB, else libscales_edge_ops.so\n"
    "                   beside this program)\n"
    "  --ort-lib LIB    libonnxruntime (default: $SCALES_EDGE_ORT_LIB, else beside this program,\n"
    "                   else the onnxruntime wheel beside the scales_edge package, else the system's)\n"
    "  --kernel NAME    kernel path: auto, portable, avx2, avx512, neon (sets SCALES_EDGE_KERNEL)\n"
    "  --json FILE      also write the JSON to FILE\n"
    "  -q, --quiet      no progress or summary on stderr\n"
    "  -h, --help       this help\n"
    "\n"
    "example: scales-edge-run model.onnx --input photo.png --output photo_x4.png\n"
    "         scales-edge-run model.onnx --size 320x180 --tile 0 --threads 4 --json bench.json\n";

struct Args {
  std::string model, input, output, ops, ort_lib, kernel, json;
  int64_t width = 320, height = 180;
  uint64_t seed = 0;
  int threads = 1, runs = -1, warmup = -1, tile = kDefaultTile, overlap = -1;
  bool quiet = false, overwrite = false;
};

long long parse_int(const std::string& flag, const std::string& v, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    throw Error(flag + " expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
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
    if (flag == "--overwrite") {
      a.overwrite = true;
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
    else if (flag == "--ort-lib") a.ort_lib = need();
    else if (flag == "--kernel") a.kernel = need();
    else if (flag == "--json") a.json = need();
    else if (flag == "--threads") a.threads = static_cast<int>(parse_int(flag, need(), 1, 1024));
    else if (flag == "--runs") a.runs = static_cast<int>(parse_int(flag, need(), 1, 1000000));
    else if (flag == "--warmup") a.warmup = static_cast<int>(parse_int(flag, need(), 0, 1000000));
    else if (flag == "--tile") a.tile = static_cast<int>(parse_int(flag, need(), 0, 1 << 20));
    else if (flag == "--overlap") a.overlap = static_cast<int>(parse_int(flag, need(), 0, 1 << 20));
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
  if (a.runs < 0) a.runs = a.input.empty() ? 20 : 1;
  if (a.warmup < 0) a.warmup = a.input.empty() ? 3 : 0;
  return a;
}

bool is_file(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

std::string absolute(const std::string& p) {  // dlopen searches the library path for a bare name
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string find_ops_library(const std::string& flag) {
  if (!flag.empty()) {
    if (!is_file(flag)) throw Error("--ops " + flag + ": no such file");
    return absolute(flag);
  }
  if (const char* env = std::getenv(kOpsEnv); env && *env) {
    if (!is_file(env)) throw Error(std::string(kOpsEnv) + "=" + env + ": no such file");
    return absolute(env);
  }
  const std::string beside = program_dir() + "/" + kOpsLibName;
  if (is_file(beside)) return beside;
  throw Error(std::string(kOpsLibName) + " not found beside " + kProgram + " (" + beside + "); pass --ops LIB or set " + kOpsEnv);
}

// The kernel path each op node of the library chose (its plain-C ABI: a JSON array), or "null"
// when the library cannot say (an older library).
std::string kernel_choices(const std::string& lib) {
  void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (!h) return "null";
  using Choices = size_t (*)(char*, size_t);
  auto fn = reinterpret_cast<Choices>(dlsym(h, "scales_edge_kernel_choices"));
  if (!fn) return "null";
  std::string buf(fn(nullptr, 0) + 1, '\0');
  buf.resize(fn(&buf[0], buf.size()));
  return buf;
}

// The kernel path the op library will use (its plain-C ABI): a path name, or "auto" when each op
// measures its own; "" if it cannot say.
std::string resolve_kernel(const std::string& lib) {
  void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) throw Error(lib + ": cannot load the op library: " + dlerror());
  using Resolve = int (*)(const char*, char*, size_t, char*, size_t);
  auto fn = reinterpret_cast<Resolve>(dlsym(h, "scales_edge_kernel_resolve"));
  if (!fn) return "";
  char name[64] = {0}, err[1024] = {0};
  if (fn(nullptr, name, sizeof name, err, sizeof err) != 0) throw Error(lib + ": " + err);
  return name;  // the handle stays open: ONNX Runtime loads the same library
}

std::string describe(const Image& img) {
  return std::to_string(img.width) + "x" + std::to_string(img.height) + " " + img.layout_name() + " " +
         std::to_string(img.depth) + "-bit";
}

int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (!is_file(a.model)) throw Error(a.model + ": no such ONNX model file");
  const std::string out_ext = lower_ext(a.output);
  if (!a.output.empty()) {
    if (out_ext != "npy" && !is_image_path(a.output))
      throw Error(a.output + ": unknown output format; write .png (or .ppm / .pgm, or .npy for the raw tensor)");
    if (!a.input.empty() && absolute(a.output) == absolute(a.input))
      throw Error(a.output + " is the input; refusing to overwrite it");
    if (is_file(a.output) && !a.overwrite) throw Error(a.output + " exists; pass --overwrite to replace it");
  }
  if (!a.kernel.empty()) setenv(kKernelEnv, a.kernel.c_str(), 1);
  const OrtLibrary ort = load_onnxruntime(a.ort_lib);
  const std::string ops = find_ops_library(a.ops);
  const std::string kernel = resolve_kernel(ops);
  auto say = [&](const std::string& s) {
    if (!a.quiet) std::fprintf(stderr, "%s: %s\n", kProgram, s.c_str());
  };

  const ModelFile model(a.model);
  TileMemory memory;  // outlives the environment and every session
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, kProgram);
  Ort::ThrowOnError(Ort::GetApi().RegisterAllocator(env, memory.ort()));
  // Sessions as scales_edge.runtime.session.make_session (whole images) and infer._tile_session
  // (plan graphs: no per-shape memory pattern); the plan's graphs take turns in one TileMemory.
  auto options = [&](bool tile) {
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(a.threads);
    so.SetInterOpNumThreads(1);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    if (tile) {
      so.DisableMemPattern();
      so.AddConfigEntry("session.use_env_allocators", "1");
    }
    so.RegisterCustomOpsLibrary(ops.c_str());
    return so;
  };
  Ort::Session full(nullptr);
  try {
    full = Ort::Session(env, model.bytes().data(), model.bytes().size(), options(false));
  } catch (const Ort::Exception& e) {
    std::string msg = e.what();
    throw Error(a.model + ": ONNX Runtime cannot load it: " + msg.substr(0, msg.find('\n')));
  }
  if (full.GetInputCount() != 1 || full.GetOutputCount() < 1)
    throw Error(a.model + ": the model has " + std::to_string(full.GetInputCount()) + " inputs; " + kProgram + " feeds one");
  Ort::AllocatorWithDefaultOptions alloc;
  const std::string in_name = full.GetInputNameAllocated(0, alloc).get();
  const std::string out_name = full.GetOutputNameAllocated(0, alloc).get();
  const Ort::TypeInfo in_type = full.GetInputTypeInfo(0);
  const auto in_info = in_type.GetTensorTypeAndShapeInfo();
  if (in_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) throw Error(a.model + ": input '" + in_name + "' is not float32");
  const std::vector<int64_t> model_shape = in_info.GetShape();
  const int channels = model_shape.size() == 4 && model_shape[1] > 0 ? static_cast<int>(model_shape[1]) : 3;

  // ---------------------------------------------------------------- input
  Image image;  // the input as read (and the layout/depth the output keeps)
  Tensor x;
  if (!a.input.empty() && lower_ext(a.input) == "npy") {
    x = read_npy(a.input);
    if (x.shape.size() == 3) x.shape.insert(x.shape.begin(), 1);
    image = Image(0, 0, x.shape.size() == 4 && x.shape[1] == 1 ? Layout::Gray : Layout::RGB, 8);
  } else if (!a.input.empty()) {
    image = read_image(a.input);
    x.data = model_input(image, channels);
    x.shape = {1, channels, image.height, image.width};
  } else {
    x.shape = {1, channels, a.height, a.width};
    x.data.resize(static_cast<size_t>(channels * a.height * a.width));
    std::mt19937_64 rng(a.seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& v : x.data) v = u(rng);
    image = Image(0, 0, channels == 1 ? Layout::Gray : Layout::RGB, 8);
  }
  bool fits = model_shape.size() == x.shape.size();
  for (size_t i = 0; fits && i < model_shape.size(); ++i) fits = model_shape[i] <= 0 || model_shape[i] == x.shape[i];
  if (!fits)
    throw Error("input " + shape_str(x.shape) + " does not fit the model's input '" + in_name + "' " + shape_str(model_shape) +
                " (-1: any size)");
  const int h = static_cast<int>(x.shape[2]), w = static_cast<int>(x.shape[3]);
  const bool whole = a.tile == 0 || (h <= a.tile && w <= a.tile) || x.shape[0] != 1;

  // ---------------------------------------------------------------- tiler
  std::optional<Tiler> tiler;
  int overlap = 0;
  double sessions_ms = 0.0;
  if (!whole) {
    Plan plan = Plan::from_model(model);
    if (std::min(h, w) < plan.min_side)
      throw Error("the image is " + std::to_string(w) + "x" + std::to_string(h) + " px; this model needs at least " +
                  std::to_string(plan.min_side) + "x" + std::to_string(plan.min_side) + " px");
    const int align = plan.window ? plan.window : 1;
    overlap = aligned_overlap(a.overlap < 0 ? plan.auto_overlap(a.tile) : a.overlap, align);
    std::string note = !plan.exact                          ? "receptive field unknown: approximate near tile borders"
                       : overlap >= plan.exact_overlap      ? "covers the receptive field"
                       : plan.window                        ? "below the receptive field: approximate"
                                                            : "below the receptive field: near-exact";
    say("tiles of " + std::to_string(a.tile) + " px + " + std::to_string(overlap) + " px overlap (" + note + ")");
    const auto t0 = std::chrono::steady_clock::now();
    tiler.emplace(
        model, std::move(plan),
        [&](const void* bytes, size_t size, const std::string& kind) {
          try {
            return Ort::Session(env, bytes, size, options(true));
          } catch (const Ort::Exception& e) {
            std::string msg = e.what();
            throw Error(a.model + ": ONNX Runtime cannot load the tiling plan's " + kind + " graph: " +
                        msg.substr(0, msg.find('\n')));
          }
        },
        [&] { memory.release(); });
    tiler->prepare();
    sessions_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

  // ---------------------------------------------------------------- runs
  say("model " + a.model + ", input " + (a.input.empty() ? "random " : a.input + " ") + shape_str(x.shape) + ", kernel " +
      (kernel.empty() ? "?" : kernel) + ", " + std::to_string(a.threads) + " thread(s), " + std::to_string(a.warmup) +
      " warm-up + " + std::to_string(a.runs) + " timed run(s)");
  const bool want_image = !a.output.empty() && out_ext != "npy";
  Image out;
  Tensor out_t;
  int scale = 0;
  auto write = [&](int x0, int y0, const float* y, int c, int hh, int ww, int64_t stride, int64_t plane) {
    if (out_ext == "npy") {
      for (int k = 0; k < c; ++k)
        for (int r = 0; r < hh; ++r)
          std::memcpy(&out_t.data[(static_cast<size_t>(k) * out_t.shape[2] + y0 + r) * out_t.shape[3] + x0],
                      y + k * plane + r * stride, static_cast<size_t>(ww) * sizeof(float));
    } else if (want_image) {
      store_output(out, x0, y0, y, c, hh, ww, stride, plane);
    }
  };
  auto allocate = [&](int s, int c) {
    scale = s;
    if (out_ext == "npy" && out_t.data.empty()) {
      out_t.shape = {1, c, static_cast<int64_t>(h) * s, static_cast<int64_t>(w) * s};
      out_t.data.assign(static_cast<size_t>(c) * h * s * w * s, 0.0f);
    } else if (want_image && out.data.empty()) {
      out = Image(w * s, h * s, image.layout, image.depth);
    }
  };
  std::vector<int64_t> out_shape;
  auto run_once = [&] {
    if (whole) {
      static const Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
      Ort::Value in = Ort::Value::CreateTensor<float>(mem, x.data.data(), x.data.size(), x.shape.data(), x.shape.size());
      const char* in_names[] = {in_name.c_str()};
      const char* out_names[] = {out_name.c_str()};
      std::vector<Ort::Value> y = full.Run(Ort::RunOptions{nullptr}, in_names, &in, 1, out_names, 1);
      const auto info = y[0].GetTensorTypeAndShapeInfo();
      if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) throw Error(a.model + ": output '" + out_name + "' is not float32");
      out_shape = info.GetShape();
      if (out_ext == "npy") {  // the raw tensor, any batch
        out_t.shape = out_shape;
        const float* d = y[0].GetTensorData<float>();
        out_t.data.assign(d, d + info.GetElementCount());
        return;
      }
      if (out_shape.size() != 4 || out_shape[0] != 1 || out_shape[2] % h || out_shape[3] % w || out_shape[2] / h != out_shape[3] / w)
        throw Error("the model gave " + shape_str(out_shape) + " for input " + shape_str(x.shape) + ": not one image scaled by an integer");
      allocate(static_cast<int>(out_shape[2] / h), static_cast<int>(out_shape[1]));
      write(0, 0, y[0].GetTensorData<float>(), static_cast<int>(out_shape[1]), static_cast<int>(out_shape[2]),
            static_cast<int>(out_shape[3]), out_shape[3], out_shape[2] * out_shape[3]);
    } else {
      allocate(tiler->plan().scale, channels);
      tiler->run(x.data.data(), channels, h, w, a.tile, overlap, write);
      out_shape = {1, channels, static_cast<int64_t>(h) * scale, static_cast<int64_t>(w) * scale};
    }
  };
  for (int i = 0; i < a.warmup; ++i) run_once();
  std::vector<double> times, cpu_times;
  for (int i = 0; i < a.runs; ++i) {
    const double c0 = thread_cpu_ms();
    const auto t0 = std::chrono::steady_clock::now();
    run_once();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cpu_times.push_back(thread_cpu_ms() - c0);
  }

  // ---------------------------------------------------------------- output
  if (!a.output.empty()) {
    if (out_ext == "npy") {
      write_npy(a.output, out_t);
      say("wrote " + a.output + " " + shape_str(out_t.shape));
    } else {
      if (out.layout == Layout::RGBA) resize_alpha_cubic(image, out, scale);
      write_image(a.output, out);
      say("wrote " + a.output + " (" + describe(out) + ")");
    }
  }

  // ---------------------------------------------------------------- report
  JsonObject result;
  result.add("model", a.model)
      .add("file_bytes", static_cast<int64_t>(model.bytes().size()))
      .add("input_shape", x.shape)
      .add("output_shape", out_shape)
      .add("threads", a.threads)
      .add("runs", a.runs)
      .add("warmup", a.warmup);
  const double median = add_latency(result, times);
  const double mp = out_shape.size() == 4 ? static_cast<double>(out_shape[2] * out_shape[3]) / 1e6 : 0.0;
  result.add("megapixels_per_s", median > 0 ? mp / (median / 1e3) : 0.0).add_null("profile");
  if (a.threads == 1) result.add("cpu_median_ms", median_of(cpu_times));
  else result.add_null("cpu_median_ms");
  result.add_raw("kernels", kernel_choices(ops));
  JsonObject tiling;
  if (tiler) {
    const TilingStats& st = tiler->stats();
    tiling.add("tile", a.tile).add("overlap", overlap).add("tiles", st.tiles).add("tail_tiles", st.tail_tiles)
        .add("statistics_tiles", st.stats_tiles).add("statistics_passes", st.passes).add("sessions_ms", sessions_ms);
  }
  JsonObject runner_info;
  runner_info.add("program", kProgram).add("ops_library", ops).add("kernel", kernel.empty() ? nullptr : kernel.c_str())
      .add("onnxruntime_library", ort.path).add("input", a.input.empty() ? nullptr : a.input.c_str())
      .add("output", a.output.empty() ? nullptr : a.output.c_str());
  JsonObject codecs;
  for (const auto& [name, version] : codec_versions()) codecs.add(name, version);
  runner_info.add("codecs", codecs);
  if (tiler) runner_info.add("tiling", tiling);
  else runner_info.add_null("tiling");
  JsonObject report;
  report.add("schema", kSchema)
      .add("machine", machine_info(ort.version))
      .add("peak_rss_mb", peak_rss_mb())
      .add_raw("results", "[" + result.str() + "]")
      .add("runner", runner_info);
  const std::string payload = report.str(true) + "\n";
  std::fputs(payload.c_str(), stdout);
  std::fflush(stdout);
  if (!a.json.empty()) write_file_atomic(a.json, payload.data(), payload.size());
  char line[256];
  std::snprintf(line, sizeof line, "median %.2f ms, %.3f MP/s, peak RSS %.0f MB", median, median > 0 ? mp / (median / 1e3) : 0.0,
                peak_rss_mb());
  say(line);
  return 0;
}

}  // namespace
}  // namespace runner

int main(int argc, char** argv) {
  try {
    return runner::run(argc, argv);
  } catch (const runner::Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", runner::kProgram, e.what());
  } catch (const Ort::Exception& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "%s: error: ONNX Runtime: %s\n", runner::kProgram, msg.substr(0, msg.find('\n')).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", runner::kProgram, e.what());
  }
  return 2;
}
