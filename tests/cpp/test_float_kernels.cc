// Tests of the float kernels of the Transformer ops (no ONNX Runtime): for every float-kernel
// variant this CPU runs, window attention must match a scalar double-precision reference written
// here from docs/ops.md (WindowAttention: windows by index, the cyclic shift and its mask,
// enlarged key windows zero outside the map) over a sweep of geometries, and ScalesLinear's
// output transform must match the contract's float32 formula exactly (GELU within a few ulp; its
// LayerNorm and dot product within float rounding).
// Prints "N passed, M failed"; exits 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "float_kernels.h"

namespace sk = scales_edge::kernels;

namespace {

using test::check;

std::mt19937_64 rng(20241206);

int64_t rand_int(int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

std::vector<float> normal_floats(size_t n, float sd) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// The variants to test: the float kernels of every supported binary-kernel path, each once.
std::vector<const sk::FloatKernels*> variants() {
  std::vector<const sk::FloatKernels*> out;
  for (sk::Path p : sk::supported_paths()) {
    const sk::FloatKernels* k = &sk::float_kernels(p);
    bool seen = false;
    for (const sk::FloatKernels* o : out) seen = seen || o == k;
    if (!seen) out.push_back(k);
  }
  return out;
}

// ---------------------------------------------------------------- WindowAttention

int64_t band(int64_t v, int64_t size, int64_t ws, int64_t shift) {
  return (v >= size - ws ? 1 : 0) + (v >= size - shift ? 1 : 0);
}

// docs/ops.md, literally, in double: y [N, H, W, C].
std::vector<double> attention_reference(const sk::AttentionGeometry& g, const std::vector<float>& qkv,
                                        const std::vector<float>& table, int64_t T,
                                        const std::vector<int64_t>& index) {
  const int64_t C = g.C, d = g.d, ws = g.ws, kws = g.kws, s = g.shift, p = g.pad;
  std::vector<double> y(static_cast<size_t>(g.N * g.H * g.W * C), 0.0);
  std::vector<double> logit(static_cast<size_t>(g.Nk));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t a = 0; a < g.H / ws; ++a)
      for (int64_t b = 0; b < g.W / ws; ++b)
        for (int64_t h = 0; h < g.heads; ++h)
          for (int64_t q = 0; q < g.Nq; ++q) {
            const int64_t qy = a * ws + q / ws, qx = b * ws + q % ws;
            const int64_t qpix = (n * g.H + (qy + s) % g.H) * g.W + (qx + s) % g.W;
            double mx = -1e300;
            for (int64_t k = 0; k < g.Nk; ++k) {
              const int64_t ky = a * ws - p + k / kws, kx = b * ws - p + k % kws;
              const bool inside = ky >= 0 && ky < g.H && kx >= 0 && kx < g.W;
              double dot = 0.0;
              if (inside) {
                const int64_t kpix = (n * g.H + (ky + s) % g.H) * g.W + (kx + s) % g.W;
                for (int64_t e = 0; e < d; ++e)
                  dot += static_cast<double>(qkv[qpix * 3 * C + h * d + e] * g.scale) *
                         qkv[kpix * 3 * C + C + h * d + e];
              }
              int64_t t = index[q * g.Nk + k];
              if (t < 0) t += T;
              double v = dot + table[t * g.heads + h];
              if (s && 3 * band(qy, g.H, ws, s) + band(qx, g.W, ws, s) !=
                           3 * band(ky, g.H, ws, s) + band(kx, g.W, ws, s))
                v += -100.0;
              logit[k] = v;
              mx = std::max(mx, v);
            }
            double sum = 0.0;
            for (int64_t k = 0; k < g.Nk; ++k) sum += (logit[k] = std::exp(logit[k] - mx));
            for (int64_t k = 0; k < g.Nk; ++k) {
              const int64_t ky = a * ws - p + k / kws, kx = b * ws - p + k % kws;
              if (ky < 0 || ky >= g.H || kx < 0 || kx >= g.W) continue;
              const int64_t kpix = (n * g.H + (ky + s) % g.H) * g.W + (kx + s) % g.W;
              for (int64_t e = 0; e < d; ++e)
                y[qpix * C + h * d + e] += logit[k] / sum * qkv[kpix * 3 * C + 2 * C + h * d + e];
            }
          }
  return y;
}

void test_attention_case(const std::vector<const sk::FloatKernels*>& ks, int64_t N, int64_t H,
                         int64_t W, int64_t heads, int64_t d, int64_t ws, int64_t shift,
                         int64_t kws) {
  sk::AttentionGeometry g;
  g.N = N;
  g.H = H;
  g.W = W;
  g.C3 = 3 * heads * d;
  g.heads = heads;
  g.ws = ws;
  g.shift = shift;
  g.kws = kws;
  g.scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::string label = "attention N" + std::to_string(N) + " " + std::to_string(H) + "x" +
                            std::to_string(W) + " heads " + std::to_string(heads) + " d " +
                            std::to_string(d) + " ws " + std::to_string(ws) + " shift " +
                            std::to_string(shift) + " kws " + std::to_string(kws);
  const std::string problem = sk::check_attention_geometry(g);
  check(problem.empty(), label + ": geometry rejected: " + problem);
  if (!problem.empty()) return;
  const std::vector<float> qkv = normal_floats(static_cast<size_t>(N * H * W * g.C3), 1.0f);
  const int64_t T = (ws + kws - 1) * (ws + kws - 1);
  const std::vector<float> table = normal_floats(static_cast<size_t>(T * heads), 0.5f);
  std::vector<int64_t> index(static_cast<size_t>(g.Nq * g.Nk));
  for (int64_t& t : index) t = rand_int(-T, T - 1);  // negative entries count from the end
  const std::vector<double> want = attention_reference(g, qkv, table, T, index);
  for (const sk::FloatKernels* k : ks) {
    sk::AttentionBias bias;
    const std::string bad = sk::expand_attention_bias(g, table.data(), T, index.data(), k->query_block, &bias);
    check(bad.empty(), label + " [" + k->name + "]: bias rejected: " + bad);
    std::vector<float> y(static_cast<size_t>(N * H * W * g.C), std::nanf(""));
    // two ranges of windows, as two threads would take them
    const int64_t total = N * g.windows, mid = total / 2;
    sk::window_attention(*k, g, qkv.data(), bias, y.data(), 0, mid);
    sk::window_attention(*k, g, qkv.data(), bias, y.data(), mid, total);
    double worst = 0.0;
    for (size_t i = 0; i < y.size(); ++i) {
      const double err = std::fabs(y[i] - want[i]) / (1.0 + std::fabs(want[i]));
      worst = std::isnan(y[i]) ? 1e9 : std::max(worst, err);
    }
    check(worst < 2e-5, label + " [" + k->name + "]: worst relative error " + std::to_string(worst));
  }
}

void test_bias_index_range() {
  sk::AttentionGeometry g;
  g.N = 1;
  g.H = g.W = 2;
  g.C3 = 3;
  g.heads = 1;
  g.ws = g.kws = 2;
  g.scale = 1.0f;
  check(sk::check_attention_geometry(g).empty(), "bias range: geometry");
  const std::vector<float> table(9, 0.5f);
  std::vector<int64_t> index(16, 0);
  sk::AttentionBias bias;
  index[5] = 9;
  check(!sk::expand_attention_bias(g, table.data(), 9, index.data(), 8, &bias).empty(),
        "bias index 9 of a 9-entry table is rejected");
  index[5] = -10;
  check(!sk::expand_attention_bias(g, table.data(), 9, index.data(), 8, &bias).empty(),
        "bias index -10 of a 9-entry table is rejected");
  index[5] = -9;
  check(sk::expand_attention_bias(g, table.data(), 9, index.data(), 8, &bias).empty(),
        "bias index -9 of a 9-entry table is accepted");
}

void test_geometry_errors() {
  auto bad = [](int64_t H, int64_t W, int64_t C3, int64_t heads, int64_t ws, int64_t shift,
                int64_t kws, const char* what) {
    sk::AttentionGeometry g;
    g.N = 1;
    g.H = H;
    g.W = W;
    g.C3 = C3;
    g.heads = heads;
    g.ws = ws;
    g.shift = shift;
    g.kws = kws;
    check(!sk::check_attention_geometry(g).empty(), std::string("geometry rejected: ") + what);
  };
  bad(8, 8, 18, 2, 4, 4, 4, "shift == window");
  bad(8, 8, 18, 2, 4, -1, 4, "negative shift");
  bad(8, 8, 18, 2, 4, 0, 5, "odd enlargement");
  bad(8, 8, 18, 2, 4, 0, 2, "key window smaller");
  bad(8, 8, 18, 2, 4, 2, 6, "shift with enlarged keys");
  bad(8, 8, 18, 4, 4, 0, 4, "channels not 3 * heads * d");
  bad(8, 6, 18, 2, 4, 0, 4, "width not a window multiple");
  bad(8, 8, 18, 0, 4, 0, 4, "no heads");
  bad(0, 8, 18, 2, 4, 0, 4, "empty map");
}

// ---------------------------------------------------------------- ScalesLinear's float parts

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// What x * 0.5 * (1 + erf(x / sqrt 2)) in float32 can be off by, with erf within 2.5 ulp of 1:
// 0.5 |x| times the error of 1 + erf (absolute, so it dominates where the sum cancels, x < -2),
// plus a few ulp of the result (and of a residual added to it).
double gelu_tolerance(double x, double gelu, double residual) {
  return 0.5 * std::fabs(x) * 1.6e-7 + 4e-7 * (std::fabs(gelu) + std::fabs(residual)) + 1e-30;
}

void test_linear_row(const std::vector<const sk::FloatKernels*>& ks) {
  for (const sk::FloatKernels* k : ks) {
    for (int64_t M : {1, 3, 8, 15, 16, 17, 60, 120, 181}) {
      std::vector<int32_t> acc(static_cast<size_t>(M));
      for (int32_t& a : acc) a = static_cast<int32_t>(rand_int(-200, 200));
      const std::vector<float> scale = normal_floats(static_cast<size_t>(M), 0.05f);
      const std::vector<float> bias = normal_floats(static_cast<size_t>(M), 0.5f);
      const std::vector<float> res = normal_floats(static_cast<size_t>(M), 1.0f);
      for (int variant = 0; variant < 8; ++variant) {
        const bool spatial = variant & 1, with_bias = variant & 2, with_res = variant & 4;
        const float s = spatial ? 0.3718f : 1.0f;
        std::vector<float> y(static_cast<size_t>(M));
        k->linear_row(acc.data(), M, scale.data(), with_bias ? bias.data() : nullptr, s,
                      sk::Activation::kNone, with_res ? res.data() : nullptr, y.data());
        bool exact = true;
        for (int64_t m = 0; m < M; ++m) {
          // float32 multiply, then add; then the products and sums in the contract's order
          volatile float prod = static_cast<float>(acc[m]) * scale[m];
          volatile float v = prod + (with_bias ? bias[m] : 0.0f);
          if (spatial) v = v * s;
          if (with_res) v = v + res[m];
          exact = exact && y[m] == v;
        }
        check(exact, std::string("linear_row [") + k->name + "] M " + std::to_string(M) +
                         " variant " + std::to_string(variant) + " is the float32 formula");
        std::vector<float> g(static_cast<size_t>(M));
        k->linear_row(acc.data(), M, scale.data(), bias.data(), s, sk::Activation::kGelu,
                      with_res ? res.data() : nullptr, g.data());
        double worst = 0.0;
        for (int64_t m = 0; m < M; ++m) {
          volatile float prod = static_cast<float>(acc[m]) * scale[m];
          volatile float v = (prod + bias[m]) * s;
          const double r = with_res ? res[m] : 0.0, want = gelu_ref(v) + r;
          worst = std::max(worst, std::fabs(g[m] - want) / gelu_tolerance(v, gelu_ref(v), r));
        }
        check(worst <= 1.0, std::string("linear_row gelu [") + k->name + "] M " +
                                std::to_string(M) + ": worst error / tolerance " + std::to_string(worst));
      }
    }
  }
}

void test_gelu_sweep(const std::vector<const sk::FloatKernels*>& ks) {
  std::vector<float> x;
  for (double v = -12.0; v <= 12.0; v += 1.0 / 1024) x.push_back(static_cast<float>(v));
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, 0.999999f, 1.000001f, 3.99999f, 4.00001f,
                  1e30f, -1e30f})
    x.push_back(v);
  for (const sk::FloatKernels* k : ks) {
    std::vector<float> y = x;
    k->gelu(y.data(), static_cast<int64_t>(y.size()), nullptr);
    double worst = 0.0;
    float at = 0.0f;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = gelu_ref(x[i]);
      const double r = std::fabs(y[i] - want) / gelu_tolerance(x[i], want, 0.0);
      if (!(r <= worst)) {
        worst = r;
        at = x[i];
      }
    }
    check(worst <= 1.0, std::string("gelu sweep [") + k->name + "]: worst error / tolerance " +
                            std::to_string(worst) + " at x = " + std::to_string(at));
    float nan = std::numeric_limits<float>::quiet_NaN();
    k->gelu(&nan, 1, nullptr);
    check(std::isnan(nan), std::string("gelu(NaN) is NaN [") + k->name + "]");
  }
}

void test_layer_norm(const std::vector<const sk::FloatKernels*>& ks) {
  for (const sk::FloatKernels* k : ks)
    for (int64_t K : {1, 2, 15, 16, 17, 60, 120, 144, 288}) {
      std::vector<float> x = normal_floats(static_cast<size_t>(K), 2.0f);
      for (float& v : x) v += 3.0f;  // an offset: the mean matters
      const std::vector<float> w = normal_floats(static_cast<size_t>(K), 1.0f);
      const std::vector<float> b = normal_floats(static_cast<size_t>(K), 1.0f);
      double mean = 0.0, var = 0.0;
      for (float v : x) mean += v;
      mean /= static_cast<double>(K);
      for (float v : x) var += (v - mean) * (v - mean);
      var /= static_cast<double>(K);
      std::vector<float> out(static_cast<size_t>(K));
      k->layer_norm(x.data(), K, w.data(), b.data(), 1e-5f, out.data());
      double worst = 0.0;
      for (int64_t i = 0; i < K; ++i) {
        const double z = (x[i] - mean) / std::sqrt(var + 1e-5);
        const double want = z * w[i] + b[i];
        worst = std::max(worst, std::fabs(out[i] - want) / (1e-6 + std::fabs(z * w[i]) + std::fabs(b[i])));
      }
      // float32 sums of K features (the mean's error, times 1 / std): a few 1e-6 of the value
      check(worst < 5e-6, std::string("layer_norm [") + k->name + "] K " + std::to_string(K) +
                              ": worst relative error " + std::to_string(worst));
    }
}

// ScalesLinear's driver: streaming the output (as the op does for a large one) changes nothing,
// and neither does the range split; stream_copy copies exactly at every alignment.
void test_linear_driver() {
  for (sk::Path p : sk::supported_paths()) {
    const sk::IsaKernels& k = *sk::compiled_kernels(p);
    const sk::FloatKernels& f = sk::float_kernels(p);
    for (int64_t n = 0; n < 40; ++n)
      for (int64_t offset = 0; offset < 17; offset += 5) {
        const std::vector<float> src = normal_floats(static_cast<size_t>(n), 1.0f);
        std::vector<float> dst(static_cast<size_t>(n + 17), -1.0f);
        f.stream_copy(dst.data() + offset, src.data(), n);
        f.stream_fence();
        bool same = dst[static_cast<size_t>(offset + n)] == -1.0f;
        for (int64_t i = 0; i < n; ++i) same = same && dst[static_cast<size_t>(offset + i)] == src[i];
        check(same, std::string("stream_copy [") + f.name + "] n " + std::to_string(n) + " offset " +
                        std::to_string(offset));
      }
    const int64_t rows = 37, K = 60, M = 70;
    const std::vector<float> x = normal_floats(static_cast<size_t>(rows * K), 1.0f);
    const std::vector<float> beta = normal_floats(static_cast<size_t>(K), 0.2f);
    const std::vector<float> scale = normal_floats(static_cast<size_t>(M), 0.05f);
    const std::vector<float> bias = normal_floats(static_cast<size_t>(M), 0.5f);
    const std::vector<float> sw = normal_floats(static_cast<size_t>(K), 0.3f);
    const std::vector<float> nw = normal_floats(static_cast<size_t>(K), 1.0f);
    const std::vector<float> nb = normal_floats(static_cast<size_t>(K), 0.2f);
    const std::vector<float> res = normal_floats(static_cast<size_t>(rows * M), 1.0f);
    std::vector<uint64_t> wp(static_cast<size_t>(M));
    for (uint64_t& v : wp) v = rng();
    const sk::LinearWeights w = sk::relayout_linear_weights(wp.data(), M, K);
    for (int gelu = 0; gelu < 2; ++gelu) {
      sk::LinearBranches b;
      b.norm_w = nw.data();
      b.norm_b = nb.data();
      b.spatial_w = sw.data();
      b.spatial_b = 0.1f;
      b.act = gelu ? sk::Activation::kGelu : sk::Activation::kNone;
      b.residual = res.data();
      std::vector<float> plain(static_cast<size_t>(rows * M)), streamed(plain.size());
      sk::scales_linear_rows(k, f, x.data(), beta.data(), w, scale.data(), bias.data(), b, plain.data(), 0, rows);
      b.stream = true;
      sk::scales_linear_rows(k, f, x.data(), beta.data(), w, scale.data(), bias.data(), b, streamed.data(), 0, 20);
      sk::scales_linear_rows(k, f, x.data(), beta.data(), w, scale.data(), bias.data(), b, streamed.data(), 20, rows);
      check(plain == streamed, std::string("scales_linear_rows [") + sk::path_name(p) +
                                   "]: streamed output and split ranges give the same bits (gelu " +
                                   std::to_string(gelu) + ")");
    }
  }
}

void test_dot(const std::vector<const sk::FloatKernels*>& ks) {
  for (const sk::FloatKernels* k : ks)
    for (int64_t K : {1, 5, 16, 31, 32, 33, 60, 144, 288}) {
      const std::vector<float> x = normal_floats(static_cast<size_t>(K), 1.0f);
      const std::vector<float> w = normal_floats(static_cast<size_t>(K), 1.0f);
      double want = 0.0, mag = 0.0;
      for (int64_t i = 0; i < K; ++i) {
        want += static_cast<double>(x[i]) * w[i];
        mag += std::fabs(static_cast<double>(x[i]) * w[i]);
      }
      const double got = k->dot(x.data(), w.data(), K);
      check(std::fabs(got - want) <= 1e-6 * mag + 1e-12,
            std::string("dot [") + k->name + "] K " + std::to_string(K));
    }
}

}  // namespace

int main() {
  const std::vector<const sk::FloatKernels*> ks = variants();
  std::printf("float kernels:");
  for (const sk::FloatKernels* k : ks) std::printf(" %s", k->name);
  std::printf("\n");
  test_geometry_errors();
  test_bias_index_range();
  // The model zoo's geometries (SwinIR window 8, d 10; HAT window 16 with OCAB's 24, d 24), small
  // and odd ones (a window of 1, head widths around the kernels' channel blocks), batches of 2.
  test_attention_case(ks, 1, 16, 24, 6, 10, 8, 0, 8);
  test_attention_case(ks, 1, 16, 24, 6, 10, 8, 4, 8);
  test_attention_case(ks, 1, 16, 32, 2, 24, 16, 8, 16);
  test_attention_case(ks, 1, 16, 32, 2, 24, 16, 0, 24);
  test_attention_case(ks, 2, 12, 8, 3, 7, 4, 2, 4);
  test_attention_case(ks, 2, 12, 8, 2, 5, 4, 0, 8);
  test_attention_case(ks, 1, 3, 5, 1, 1, 1, 0, 1);
  test_attention_case(ks, 1, 3, 5, 1, 3, 1, 0, 3);
  for (int it = 0; it < 40; ++it) {
    const int64_t ws = rand_int(1, 6);
    const int64_t kws = rand_int(0, 2) == 0 ? ws + 2 * rand_int(1, 2) : ws;
    const int64_t shift = kws == ws ? rand_int(0, ws - 1) : 0;
    test_attention_case(ks, rand_int(1, 2), ws * rand_int(1, 3), ws * rand_int(1, 3),
                        rand_int(1, 3), rand_int(1, 26), ws, shift, kws);
  }
  test_linear_row(ks);
  test_gelu_sweep(ks);
  test_dot(ks);
  test_layer_norm(ks);
  test_linear_driver();
  return test::finish();
}
