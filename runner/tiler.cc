#include "tiler.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common.h"
#include "json.h"

namespace runner {

constexpr const char* kPlanKey = "scales_edge.tiling";
constexpr int kPlanFormat = 1;
constexpr double kTol = 3e-4;  // TiledRunner.tol

// ------------------------------------------------------------------ tile geometry
std::vector<std::pair<int, int>> cuts(int n, int tile, int align) {
  const int cells = (n + align - 1) / align;
  const int per = std::max(1, tile / align);
  const int parts = (cells + per - 1) / per;
  std::vector<int> bounds(parts + 1);
  for (int i = 0; i <= parts; ++i) {
    // Python: round(i * cells / parts): true division, round half to even
    const double q = static_cast<double>(static_cast<int64_t>(i) * cells) / static_cast<double>(parts);
    bounds[i] = std::min(n, static_cast<int>(std::nearbyint(q)) * align);
  }
  std::vector<std::pair<int, int>> out;
  for (int i = 0; i < parts; ++i) out.emplace_back(bounds[i], bounds[i + 1]);
  return out;
}

int aligned_overlap(int overlap, int align) { return (overlap + align - 1) / align * align; }

std::vector<Tile> tile_grid(int h, int w, int tile, int overlap, int align) {
  if (tile < 1 || overlap < 0 || align < 1) throw Error("bad tile geometry");
  const int ov = aligned_overlap(overlap, align);
  std::vector<Tile> tiles;
  for (const auto& [y0, y1] : cuts(h, tile, align))
    for (const auto& [x0, x1] : cuts(w, tile, align))
      tiles.push_back({y0, y1, x0, x1, std::max(0, y0 - ov), std::min(h, y1 + ov), std::max(0, x0 - ov), std::min(w, x1 + ov)});
  std::stable_sort(tiles.begin(), tiles.end(), [](const Tile& a, const Tile& b) { return a.area() > b.area(); });
  return tiles;
}

// ------------------------------------------------------------------ the plan
namespace {

std::vector<uint8_t> base64_decode(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  out.reserve(s.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const int v = val(c);
    if (v < 0) throw Error("the tiling plan's graph is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::vector<uint8_t> inflate_all(const std::vector<uint8_t>& in) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw Error("zlib: inflateInit failed");
  std::vector<uint8_t> out(in.size() * 4 + 1024);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (z.total_out == out.size()) out.resize(out.size() * 2);
    z.next_out = out.data() + z.total_out;
    z.avail_out = static_cast<uInt>(out.size() - z.total_out);
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      throw Error("the tiling plan's graph is corrupt (zlib)");
    }
  }
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

}  // namespace

Plan Plan::from_model(const ModelFile& model) {
  const std::string* raw = model.meta(kPlanKey);
  if (!raw)
    throw Error(model.path() + " has no tiling plan (" + kPlanKey + " metadata): export it again with "
                "`scales-edge export` (scales-edge 0.1+ stores one), or pass --tile 0 to run whole images");
  Plan p;
  const Json j = Json::parse(*raw);
  const int64_t format = j.at("format", "tiling plan").integer("tiling plan format");
  if (format != kPlanFormat)
    throw Error(model.path() + ": tiling plan format " + std::to_string(format) + " is not " +
                std::to_string(kPlanFormat) + "; use the scales-edge-run of the scales-edge that exported it");
  if (static_cast<uint32_t>(j.at("graph_crc32", "tiling plan").integer("graph_crc32")) != model.graph_crc32())
    throw Error(model.path() + ": the tiling plan was made for another graph (the model was changed after "
                "export); export it again, or pass --tile 0");
  p.input = j.at("input", "tiling plan").str("input");
  p.scale = static_cast<int>(j.at("scale", "tiling plan").integer("scale"));
  const Json& ov = j.at("exact_overlap", "tiling plan");
  p.exact = !ov.is_null();
  p.exact_overlap = p.exact ? static_cast<int>(ov.integer("exact_overlap")) : 0;
  p.window = static_cast<int>(j.at("window", "tiling plan").integer("window"));
  p.min_side = static_cast<int>(j.at("min_side", "tiling plan").integer("min_side"));
  for (const Json& pool : j.at("pools", "tiling plan").array("pools"))
    p.pools.push_back({pool.at("output", "pool").str("pool output"), pool.at("keepdims", "pool").flag("keepdims"),
                       pool.at("scale", "pool").num("pool scale")});
  const Json& tail = j.at("tail", "tiling plan");
  if (!tail.is_null()) {
    for (const Json& f : tail.at("features", "tail").array("tail features")) p.features.push_back(f.str("feature"));
    p.tail_overlap = static_cast<int>(tail.at("overlap", "tail").integer("tail overlap"));
  }
  for (const auto& [kind, g] : j.at("graphs", "tiling plan").members) {
    std::vector<std::string> names;
    for (const Json& n : g.at("initializers", "graph").array("initializers")) names.push_back(n.str("initializer"));
    p.graphs[kind] = {g.at("model", "graph").str("graph model"), names};
  }
  if (p.scale < 1 || p.window < 0 || p.min_side < 1 || (p.exact && p.exact_overlap < 0) || p.tail_overlap < 0)
    throw Error(model.path() + ": the tiling plan has impossible values");
  for (const char* kind : {"stats_local", "stats_override"})
    if (!p.pools.empty() && !p.graphs.count(kind)) throw Error(model.path() + ": the tiling plan lacks its " + kind + " graph");
  for (const char* kind : p.features.empty() ? std::vector<const char*>{"apply"} : std::vector<const char*>{"body", "tail"})
    if (!p.graphs.count(kind)) throw Error(model.path() + ": the tiling plan lacks its " + kind + " graph");
  return p;
}

int Plan::auto_overlap(int tile) const {
  const int cap = aligned_overlap(std::max(16, tile / 4), window ? window : 1);
  return exact ? std::min(exact_overlap, cap) : cap;
}

int Plan::stats_tile(int tile) const {
  if (window) return tile;
  double finest = 1.0;  // pools at a higher resolution (a binary upsampler's) shrink the factor
  for (const Pool& p : pools) finest = std::max(finest, p.scale);
  return tile * std::max(1, static_cast<int>(std::lround(scale / finest)));
}

int Plan::tail_tile(int tile) const { return std::max(1, 2 * tile / std::max(1, scale)); }

// ------------------------------------------------------------------ feeds and runs
namespace {

size_t element_size(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return 2;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return 8;
    default: throw Error("the tiling plan hands over a tensor of an element type this runner cannot crop");
  }
}

// Rows [y0, y1) x columns [x0, x1) of an NCHW tensor (N = 1) of `esize`-byte elements.
std::vector<uint8_t> crop(const void* src, int64_t c, int64_t h, int64_t w, size_t esize, int y0, int y1, int x0, int x1) {
  const int64_t ch = y1 - y0, cw = x1 - x0;
  std::vector<uint8_t> out(static_cast<size_t>(c * ch * cw) * esize);
  const auto* s = static_cast<const uint8_t*>(src);
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < ch; ++y)
      std::memcpy(out.data() + static_cast<size_t>((k * ch + y) * cw) * esize,
                  s + static_cast<size_t>((k * h + y0 + y) * w + x0) * esize, static_cast<size_t>(cw) * esize);
  return out;
}

// Named inputs of one run; the buffers live as long as the feed.
struct Feed {
  std::vector<std::string> names;
  std::vector<Ort::Value> values;
  std::vector<std::vector<uint8_t>> buffers;

  void add(const std::string& name, std::vector<uint8_t> data, std::vector<int64_t> shape, ONNXTensorElementDataType type) {
    buffers.push_back(std::move(data));
    static const Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<uint8_t>& b = buffers.back();
    values.push_back(Ort::Value::CreateTensor(mem, b.data(), b.size(), shape.data(), shape.size(), type));
    names.push_back(name);
  }
  void add_floats(const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) {
    std::vector<uint8_t> b(v.size() * sizeof(float));
    std::memcpy(b.data(), v.data(), b.size());
    add(name, std::move(b), std::move(shape), ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  }
  void add_pair(const std::string& name, int64_t a, int64_t b) {
    std::vector<uint8_t> d(2 * sizeof(int64_t));
    std::memcpy(d.data(), &a, sizeof a);
    std::memcpy(d.data() + sizeof a, &b, sizeof b);
    add(name, std::move(d), {2}, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64);
  }
};

// Runs `s` on the entries of `feed` it has inputs for; `outputs` empty: its first output.
std::vector<Ort::Value> run_session(Ort::Session& s, const Feed& feed, std::vector<std::string> outputs,
                            const std::vector<int64_t>& image_shape) {
  Ort::AllocatorWithDefaultOptions alloc;
  std::vector<std::string> wanted;
  for (size_t i = 0; i < s.GetInputCount(); ++i) wanted.push_back(s.GetInputNameAllocated(i, alloc).get());
  if (outputs.empty()) outputs.push_back(s.GetOutputNameAllocated(0, alloc).get());
  std::vector<const char*> in_names;
  std::vector<OrtValue*> in_values;  // laid out as Ort::Value[] (a Value is its OrtValue pointer)
  static_assert(sizeof(Ort::Value) == sizeof(OrtValue*), "Ort::Value wraps one pointer");
  for (size_t i = 0; i < feed.names.size(); ++i) {
    if (std::find(wanted.begin(), wanted.end(), feed.names[i]) == wanted.end()) continue;
    in_names.push_back(feed.names[i].c_str());
    in_values.push_back(const_cast<OrtValue*>(static_cast<const OrtValue*>(feed.values[i])));
  }
  std::vector<const char*> out_names;
  for (const std::string& o : outputs) out_names.push_back(o.c_str());
  try {
    return s.Run(Ort::RunOptions{nullptr}, in_names.data(), reinterpret_cast<const Ort::Value*>(in_values.data()),
                 in_names.size(), out_names.data(), out_names.size());
  } catch (const Ort::Exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    throw Error("ONNX Runtime failed on an input of shape " + shape_str(image_shape) + ": " + msg);
  }
}

std::string crop_input_tag(double scale) {  // tiling._crop_input: f"{scale:g}".replace(".", "_")
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", scale);
  std::string t = buf;
  std::replace(t.begin(), t.end(), '.', '_');
  return t;
}

}  // namespace

// ------------------------------------------------------------------ the tiler
Tiler::Tiler(const ModelFile& model, Plan plan, SessionFn make_session, PhaseFn end_phase)
    : model_(model), plan_(std::move(plan)), make_session_(std::move(make_session)), end_phase_(std::move(end_phase)) {}

Ort::Session& Tiler::session(const std::string& kind) {
  auto it = sessions_.find(kind);
  if (it == sessions_.end()) {
    const auto& [blob, names] = plan_.graphs.at(kind);
    const std::vector<uint8_t> bytes = model_.complete(inflate_all(base64_decode(blob)), names);
    it = sessions_.emplace(kind, std::make_unique<Ort::Session>(make_session_(bytes.data(), bytes.size(), kind))).first;
  }
  return *it->second;
}

void Tiler::prepare() {
  for (const auto& entry : plan_.graphs) session(entry.first);
}

Tiler::Means Tiler::global_means(const float* x, int channels, int h, int w, const std::vector<Tile>& tiles) {
  const auto& pools = plan_.pools;
  const int m = plan_.window ? plan_.window : 1;
  const int pad_h = (m - h % m) % m, pad_w = (m - w % m) % m;
  const int bound = tiles.size() == 1 ? 1 : static_cast<int>(pools.size()) + 1;
  Means means;
  bool have_means = false;
  std::vector<std::string> outputs;
  for (size_t k = 0; k < pools.size(); ++k) outputs.push_back("__pool_sum_" + std::to_string(k));
  for (int it = 0; it < bound; ++it) {
    Ort::Session& sess = session(have_means ? "stats_override" : "stats_local");
    std::vector<std::vector<double>> sums(pools.size());
    std::vector<std::vector<int64_t>> sum_shapes(pools.size());
    bool first = true;
    for (const Tile& t : tiles) {
      Feed feed;
      const std::vector<int64_t> shape = {1, channels, t.ry1 - t.ry0, t.rx1 - t.rx0};
      feed.add(plan_.input, crop(x, channels, h, w, sizeof(float), t.ry0, t.ry1, t.rx0, t.rx1), shape,
               ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      const int64_t ey = t.y1 - t.ry0 + (t.y1 == h ? pad_h : 0);
      const int64_t ex = t.x1 - t.rx0 + (t.x1 == w ? pad_w : 0);
      for (const Pool& p : pools) {
        const std::string tag = crop_input_tag(p.scale);
        if (std::find(feed.names.begin(), feed.names.end(), "__tile_starts_s" + tag) != feed.names.end()) continue;
        // np.array([a * scale, ...], np.int64): a float product truncated toward zero
        feed.add_pair("__tile_starts_s" + tag, static_cast<int64_t>((t.y0 - t.ry0) * p.scale),
                      static_cast<int64_t>((t.x0 - t.rx0) * p.scale));
        feed.add_pair("__tile_ends_s" + tag, static_cast<int64_t>(ey * p.scale), static_cast<int64_t>(ex * p.scale));
      }
      if (have_means)
        for (size_t k = 0; k < pools.size(); ++k) feed.add_floats(pools[k].output, means.values[k], means.shapes[k]);
      std::vector<Ort::Value> res = run_session(sess, feed, outputs, shape);
      for (size_t k = 0; k < pools.size(); ++k) {
        const auto info = res[k].GetTensorTypeAndShapeInfo();
        const size_t n = info.GetElementCount();
        const float* r = res[k].GetTensorData<float>();
        if (first) {
          sums[k].assign(r, r + n);  // r.astype(np.float64)
          sum_shapes[k] = info.GetShape();
        } else {
          if (n != sums[k].size()) throw Error("the statistics graph gave pool sums of changing size");
          for (size_t i = 0; i < n; ++i) sums[k][i] += static_cast<double>(r[i]);
        }
      }
      first = false;
      ++stats_.stats_tiles;
    }
    Means next;
    for (size_t k = 0; k < pools.size(); ++k) {
      const double sc = pools[k].scale;
      const double den = static_cast<double>(h + pad_h) * sc * static_cast<double>(w + pad_w) * sc;
      std::vector<float> mean(sums[k].size());
      for (size_t i = 0; i < mean.size(); ++i) mean[i] = static_cast<float>(sums[k][i] / den);
      std::vector<int64_t> shape = sum_shapes[k];
      if (pools[k].keepdims) {
        shape.push_back(1);
        shape.push_back(1);
      }
      next.values.push_back(std::move(mean));
      next.shapes.push_back(std::move(shape));
    }
    stats_.passes = it + 1;
    bool done = have_means;
    for (size_t k = 0; done && k < pools.size(); ++k) {
      // float(np.max(np.abs(a - b))) <= tol * max(1.0, float(np.max(np.abs(b)))), a - b in float32
      float diff = 0.0f, big = 0.0f;
      for (size_t i = 0; i < next.values[k].size(); ++i) {
        diff = std::max(diff, std::fabs(next.values[k][i] - means.values[k][i]));
        big = std::max(big, std::fabs(means.values[k][i]));
      }
      done = static_cast<double>(diff) <= kTol * std::max(1.0, static_cast<double>(big));
    }
    means = std::move(next);
    have_means = true;
    if (done) break;
  }
  return means;
}

void Tiler::apply_tile(const float* x, int channels, int h, int w, const Tile& t, int tile, const Means& means,
                       const WriteFn& write) {
  const int s = plan_.scale;
  const std::vector<int64_t> region_shape = {1, channels, t.ry1 - t.ry0, t.rx1 - t.rx0};
  auto add_means = [&](Feed& feed) {
    for (size_t k = 0; k < plan_.pools.size(); ++k) feed.add_floats(plan_.pools[k].output, means.values[k], means.shapes[k]);
  };
  // One (sub-)tile's output: its core to `write`.
  auto emit = [&](const Tile& sub, Ort::Value& y) {
    const auto shape = y.GetTensorTypeAndShapeInfo().GetShape();
    const int64_t want_h = static_cast<int64_t>(sub.ry1 - sub.ry0) * s, want_w = static_cast<int64_t>(sub.rx1 - sub.rx0) * s;
    if (shape.size() != 4 || shape[0] != 1 || shape[2] != want_h || shape[3] != want_w)
      throw Error("the model gave " + shape_str(shape) + " for a " + std::to_string(sub.rx1 - sub.rx0) + "x" +
                  std::to_string(sub.ry1 - sub.ry0) + " input, not x" + std::to_string(s) + " as its plan says");
    const int64_t oy = static_cast<int64_t>(sub.y0 - sub.ry0) * s, ox = static_cast<int64_t>(sub.x0 - sub.rx0) * s;
    write(sub.x0 * s, sub.y0 * s, y.GetTensorData<float>() + oy * shape[3] + ox, static_cast<int>(shape[1]),
          (sub.y1 - sub.y0) * s, (sub.x1 - sub.x0) * s, shape[3], shape[2] * shape[3]);
  };
  if (plan_.features.empty()) {
    Feed feed;
    feed.add(plan_.input, crop(x, channels, h, w, sizeof(float), t.ry0, t.ry1, t.rx0, t.rx1), region_shape,
             ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    add_means(feed);
    std::vector<Ort::Value> y = run_session(session("apply"), feed, {}, region_shape);
    emit(t, y[0]);
    return;
  }
  Feed body_feed;
  body_feed.add(plan_.input, crop(x, channels, h, w, sizeof(float), t.ry0, t.ry1, t.rx0, t.rx1), region_shape,
                ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  add_means(body_feed);
  std::vector<Ort::Value> feats = run_session(session("body"), body_feed, plan_.features, region_shape);
  body_feed = Feed();  // the region's copy is not needed any more
  for (size_t i = 0; i < feats.size(); ++i) {
    const auto shape = feats[i].GetTensorTypeAndShapeInfo().GetShape();
    if (shape.size() != 4 || shape[0] != 1 || shape[2] != t.ry1 - t.ry0 || shape[3] != t.rx1 - t.rx0)
      throw Error("the tiling plan's cut tensor '" + plan_.features[i] + "' is " + shape_str(shape) +
                  ", not at the input's resolution " + shape_str(region_shape));
  }
  const int side = plan_.tail_tile(tile), ov = plan_.tail_overlap;
  for (const auto& [cy0, cy1] : cuts(t.y1 - t.y0, side)) {
    for (const auto& [cx0, cx1] : cuts(t.x1 - t.x0, side)) {
      const int ya = t.y0 + cy0, yb = t.y0 + cy1, xa = t.x0 + cx0, xb = t.x0 + cx1;
      const Tile sub{ya, yb, xa, xb, std::max(t.ry0, ya - ov), std::min(t.ry1, yb + ov), std::max(t.rx0, xa - ov),
                     std::min(t.rx1, xb + ov)};
      Feed feed;
      const std::vector<int64_t> sub_shape = {1, channels, sub.ry1 - sub.ry0, sub.rx1 - sub.rx0};
      feed.add(plan_.input, crop(x, channels, h, w, sizeof(float), sub.ry0, sub.ry1, sub.rx0, sub.rx1), sub_shape,
               ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      for (size_t i = 0; i < feats.size(); ++i) {
        const auto info = feats[i].GetTensorTypeAndShapeInfo();
        const auto shape = info.GetShape();
        const auto type = info.GetElementType();
        feed.add(plan_.features[i],
                 crop(feats[i].GetTensorRawData(), shape[1], shape[2], shape[3], element_size(type), sub.ry0 - t.ry0,
                      sub.ry1 - t.ry0, sub.rx0 - t.rx0, sub.rx1 - t.rx0),
                 {1, shape[1], sub.ry1 - sub.ry0, sub.rx1 - sub.rx0}, type);
      }
      add_means(feed);
      std::vector<Ort::Value> y = run_session(session("tail"), feed, {}, sub_shape);
      emit(sub, y[0]);
      ++stats_.tail_tiles;
    }
  }
}

void Tiler::run(const float* x, int channels, int h, int w, int tile, int overlap, const WriteFn& write) {
  stats_ = TilingStats{};
  stats_.whole = false;
  const int align = plan_.window ? plan_.window : 1;
  const std::vector<Tile> tiles = tile_grid(h, w, tile, overlap, align);
  Means means;
  if (!plan_.pools.empty()) {
    means = global_means(x, channels, h, w, tile_grid(h, w, plan_.stats_tile(tile), overlap, align));
    end_phase_();
  }
  for (const Tile& t : tiles) {
    apply_tile(x, channels, h, w, t, tile, means, write);
    ++stats_.tiles;
  }
  end_phase_();
}

}  // namespace runner
