// Plain-C test/benchmark interface (see c_api.h).
#include "c_api.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <algorithm>
#include <string>
#include <vector>

#include "kernels.h"

namespace sk = scales_edge::kernels;

namespace {

int fail(char* err, size_t cap, const std::string& msg) {
  if (err && cap > 0) {
    const size_t n = msg.size() < cap - 1 ? msg.size() : cap - 1;
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
  }
  return 1;
}

const sk::IsaKernels* kernels_or_fail(const char* path, char* err, size_t cap) {
  std::string error;
  const sk::IsaKernels* k = sk::select_kernels(path, &error);
  if (!k) fail(err, cap, error);
  return k;
}

std::string join(const std::vector<sk::Path>& v) {
  std::string s;
  for (sk::Path p : v) {
    if (!s.empty()) s += ",";
    s += sk::path_name(p);
  }
  return s;
}

bool fill_geometry(sk::ConvGeometry* g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t m,
                   int64_t kh, int64_t kw, const int64_t* strides, const int64_t* pads,
                   const int64_t* dilations, std::string* error) {
  g->N = n;
  g->C = c;
  g->H = h;
  g->W = w;
  g->M = m;
  g->kH = kh;
  g->kW = kw;
  if (strides) { g->sH = strides[0]; g->sW = strides[1]; }
  if (pads) { g->pT = pads[0]; g->pL = pads[1]; g->pB = pads[2]; g->pR = pads[3]; }
  if (dilations) { g->dH = dilations[0]; g->dW = dilations[1]; }
  *error = sk::check_conv_geometry(*g);
  return error->empty();
}

// The path for `path`: the requested one, or for "auto" the one choose_kernels measures fastest
// on run(k, units) under `key`.
const sk::IsaKernels* kernels_for(const char* path, const std::string& key,
                                  const std::function<void(const sk::IsaKernels&, int64_t)>& run,
                                  int64_t max_units, char* err, size_t cap) {
  const sk::IsaKernels* k = kernels_or_fail(path, err, cap);
  if (!k || !sk::auto_requested(path)) return k;
  return sk::choose_kernels(key, run, max_units).kernels;
}

// The weights of a conv call laid out for path k, each layout built once: the AVX2 lookup tables
// only if a path that reads them is measured or chosen (they cost as much as a small conv).
class CallWeights {
 public:
  CallWeights(const uint64_t* wp, int64_t m, int64_t kh, int64_t kw, int64_t c)
      : wp_(wp), m_(m), kh_(kh), kw_(kw), c_(c) {}
  const sk::ConvWeights& for_path(const sk::IsaKernels& k) {
    std::unique_ptr<sk::ConvWeights>& slot = k.conv_tables ? tables_ : plain_;
    if (!slot)
      slot.reset(new sk::ConvWeights(sk::relayout_conv_weights(k, wp_, m_, kh_, kw_, c_)));
    return *slot;
  }

 private:
  const uint64_t* wp_;
  int64_t m_, kh_, kw_, c_;
  std::unique_ptr<sk::ConvWeights> plain_, tables_;
};

std::string conv_key(const char* what, const sk::ConvGeometry& g) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "c_api %s C=%lld M=%lld k=%lldx%lld s=%lld,%lld p=%lld,%lld,%lld,%lld d=%lld,%lld "
                "H=%lld W=%lld",
                what, (long long)g.C, (long long)g.M, (long long)g.kH, (long long)g.kW,
                (long long)g.sH, (long long)g.sW, (long long)g.pT, (long long)g.pL, (long long)g.pB,
                (long long)g.pR, (long long)g.dH, (long long)g.dW, (long long)g.H, (long long)g.W);
  return buf;
}

// Runs f, turning any C++ exception into an error return (nothing may cross the C boundary).
template <class F>
int guarded(char* err, size_t cap, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return fail(err, cap, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(err, cap, "internal error");
  }
}

}  // namespace

extern "C" {

const char* scales_edge_kernel_paths(void) {
  static const std::string s = join(sk::supported_paths());
  return s.c_str();
}

const char* scales_edge_kernel_paths_compiled(void) {
  static const std::string s = [] {
    std::vector<sk::Path> v;
    for (int i = 0; i < sk::kNumPaths; ++i)
      if (sk::compiled_kernels(static_cast<sk::Path>(i))) v.push_back(static_cast<sk::Path>(i));
    return join(v);
  }();
  return s.c_str();
}

int scales_edge_kernel_resolve(const char* path, char* name, size_t name_cap, char* err,
                               size_t err_cap) {
  return guarded(err, err_cap, [&] {
    const sk::IsaKernels* k = kernels_or_fail(path, err, err_cap);
    if (!k) return 1;
    if (name && name_cap > 0) {
      std::snprintf(name, name_cap, "%s", sk::auto_requested(path) ? "auto" : k->name);
    }
    return 0;
  });
}

int scales_edge_pack_nchw(const char* path, const float* x, const float* beta, int64_t n,
                          int64_t c, int64_t h, int64_t w, uint64_t* out, char* err,
                          size_t err_cap) {
  return guarded(err, err_cap, [&] {
    const sk::IsaKernels* k = kernels_or_fail(path, err, err_cap);
    if (!k) return 1;
    if (n < 0 || c < 1 || h < 0 || w < 0) return fail(err, err_cap, "invalid shape");
    sk::pack_nchw(*k, x, beta, n, c, h, w, out, 0, n * h);
    return 0;
  });
}

int scales_edge_pack_rows(const char* path, const float* x, const float* beta, int64_t rows,
                          int64_t k_, uint64_t* out, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    const sk::IsaKernels* k = kernels_or_fail(path, err, err_cap);
    if (!k) return 1;
    if (rows < 0 || k_ < 1) return fail(err, err_cap, "invalid shape");
    sk::pack_rows(*k, x, beta, k_, out, 0, rows);
    return 0;
  });
}

int scales_edge_conv_output_size(int64_t h, int64_t w, int64_t kh, int64_t kw,
                                 const int64_t* strides, const int64_t* pads,
                                 const int64_t* dilations, int64_t* oh, int64_t* ow, char* err,
                                 size_t err_cap) {
  return guarded(err, err_cap, [&] {
    sk::ConvGeometry g;
    std::string error;
    if (!fill_geometry(&g, 1, 1, h, w, 1, kh, kw, strides, pads, dilations, &error))
      return fail(err, err_cap, error);
    *oh = g.OH;
    *ow = g.OW;
    return 0;
  });
}

int scales_edge_bconv_int32(const char* path, const uint64_t* xp, int64_t n, int64_t c, int64_t h,
                            int64_t w, const uint64_t* wp, int64_t m, int64_t kh, int64_t kw,
                            const int64_t* strides, const int64_t* pads, const int64_t* dilations,
                            int32_t* acc, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    if (!kernels_or_fail(path, err, err_cap)) return 1;
    sk::ConvGeometry g;
    std::string error;
    if (!fill_geometry(&g, n, c, h, w, m, kh, kw, strides, pads, dilations, &error))
      return fail(err, err_cap, error);
    CallWeights cw(wp, m, kh, kw, c);
    const sk::IsaKernels* k = kernels_for(
        path, conv_key("bconv_int32", g),
        [&](const sk::IsaKernels& kp, int64_t rows) {
          const int64_t r = std::min(rows, g.OH), oh0 = (g.OH - r) / 2;
          sk::conv_int32(kp, g, xp, cw.for_path(kp), acc, oh0, oh0 + r);
        },
        g.OH, err, err_cap);
    sk::conv_int32(*k, g, xp, cw.for_path(*k), acc, 0, g.N * g.OH);
    return 0;
  });
}

int scales_edge_bgemm_int32(const char* path, const uint64_t* xp, int64_t rows, int64_t k_,
                            const uint64_t* wp, int64_t m, int32_t* acc, char* err,
                            size_t err_cap) {
  return guarded(err, err_cap, [&] {
    if (!kernels_or_fail(path, err, err_cap)) return 1;
    if (rows < 0 || k_ < 1 || m < 1 || k_ > 2147483647)
      return fail(err, err_cap, "invalid shape");
    const sk::LinearWeights lw = sk::relayout_linear_weights(wp, m, k_);
    constexpr int64_t kTokens = 64;
    const sk::IsaKernels* k = kernels_for(
        path, "c_api bgemm_int32 K=" + std::to_string(k_) + " M=" + std::to_string(m),
        [&](const sk::IsaKernels& kp, int64_t units) {
          sk::gemm_int32(kp, xp, lw, acc, 0, std::min(rows, units * kTokens));
        },
        (rows + kTokens - 1) / kTokens, err, err_cap);
    sk::gemm_int32(*k, xp, lw, acc, 0, rows);
    return 0;
  });
}

int scales_edge_binary_conv2d(const char* path, const float* x, const float* beta, int64_t n,
                              int64_t c, int64_t h, int64_t w, const uint64_t* wp, int64_t m,
                              int64_t kh, int64_t kw, const int64_t* strides, const int64_t* pads,
                              const int64_t* dilations, const float* scale, const float* bias,
                              float* y, int repeat, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    if (!kernels_or_fail(path, err, err_cap)) return 1;
    sk::ConvGeometry g;
    std::string error;
    if (!fill_geometry(&g, n, c, h, w, m, kh, kw, strides, pads, dilations, &error))
      return fail(err, err_cap, error);
    CallWeights cw(wp, m, kh, kw, c);
    std::vector<uint64_t> xp(static_cast<size_t>(g.N * g.H * g.W * g.CW));
    const sk::IsaKernels* k = kernels_for(
        path, conv_key("binary_conv2d", g),
        [&](const sk::IsaKernels& kp, int64_t rows) {
          const int64_t r = std::min(rows, g.OH), oh0 = (g.OH - r) / 2;
          sk::pack_nchw(kp, x, beta, 1, g.C, g.H, g.W, xp.data(), 0, std::min(g.H, r * g.sH));
          sk::conv_float(kp, g, xp.data(), cw.for_path(kp), scale, bias, y, oh0, oh0 + r);
        },
        g.OH, err, err_cap);
    for (int i = 0; i < (repeat < 1 ? 1 : repeat); ++i) {
      sk::pack_nchw(*k, x, beta, g.N, g.C, g.H, g.W, xp.data(), 0, g.N * g.H);
      sk::conv_float(*k, g, xp.data(), cw.for_path(*k), scale, bias, y, 0, g.N * g.OH);
    }
    return 0;
  });
}

}  // extern "C"
