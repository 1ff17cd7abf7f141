// Float kernels of the Transformer ops of the scales_edge domain (version 3, docs/ops.md):
// window attention (WindowAttention) and the float parts of the fused SCALES linear layer
// (ScalesLinear: the spatial re-scaling's dot product, and the output transform with GELU and the
// residual). Pure C++17, no ONNX Runtime types.
//
// Like the binary kernels (kernels.h), every ISA variant exposes the same table of row functions
// (FloatKernels), compiled once per variant with its own flags from float_impl.h
// (float_portable.cc, float_avx2.cc, float_avx512.cc, float_neon.cc); the range drivers below
// call them for a contiguous range of work items, so a caller can split the work over threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"

namespace scales_edge {
namespace kernels {

// The exponential of the SIMD variants: e^x = 2^n * P(r), n = round(x * log2(e)), r = x - n ln 2
// (ln 2 in two parts, so n * kLn2Hi is exact), P of degree 5 with P(0) = 1 fitted for this library
// (least squares, relative error 1.0e-7 on [-ln2/2, ln2/2]; 1.6e-7 evaluated in float32).
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693145751953125f;
constexpr float kLn2Lo = 1.428606765330187e-06f;
constexpr float kExp1 = 0.9999995231628418f;
constexpr float kExp2 = 0.49999141693115234f;
constexpr float kExp3 = 0.16668114066123962f;
constexpr float kExp4 = 0.041898731142282486f;
constexpr float kExp5 = 0.00826153066009283f;
// 2^r for r in [-1/2, 1/2]: degree 5, P(0) = 1, fitted the same way (1.0e-7; 1.6e-7 in float32).
constexpr float kExp2c1 = 0.6931468844413757f;
constexpr float kExp2c2 = 0.24022237956523895f;
constexpr float kExp2c3 = 0.05550893023610115f;
constexpr float kExp2c4 = 0.009671698324382305f;
constexpr float kExp2c5 = 0.0013218672247603536f;

// ---- WindowAttention ----
// Shape of one WindowAttention call. Fill the inputs, then call check_attention_geometry().
struct AttentionGeometry {
  int64_t N = 0, H = 0, W = 0, C3 = 0;  // QKV: [N, H, W, 3C]
  int64_t heads = 0;                    // num_heads
  int64_t ws = 0;                       // window_size
  int64_t shift = 0;                    // shift_size (0: no roll, no mask)
  int64_t kws = 0;                      // key_window_size (>= ws)
  float scale = 1.0f;                   // q is multiplied by it before the products
  // derived
  int64_t C = 0, d = 0;                 // channels per q/k/v and per head
  int64_t Nq = 0, Nk = 0;               // tokens of a query window (ws^2) and a key window (kws^2)
  int64_t pad = 0;                      // (kws - ws) / 2: how far a key window reaches out
  int64_t windows = 0;                  // windows per image: (H / ws) * (W / ws)
};
// Validates the geometry and fills the derived fields. Returns "" when valid, else a description
// of the problem (without an op-name prefix).
std::string check_attention_geometry(AttentionGeometry& g);

// The relative position bias of every head, query and key, laid out for the kernels:
// [heads][Nk][Nqp] (queries fastest, padded with zeros to Nqp = round_up(Nq, query_block)), and
// multiplied by log2(e): the kernels compute the logits in base 2 (softmax with powers of 2).
struct AttentionBias {
  int64_t heads = 0, Nq = 0, Nk = 0, Nqp = 0;
  std::vector<float> data;
};
// table: [T][heads] floats; index: [Nq][Nk] int64 in [-T, T) (a negative entry counts from the
// end, as Python indexing does). Returns "" or the problem (an index out of range).
std::string expand_attention_bias(const AttentionGeometry& g, const float* table, int64_t T,
                                  const int64_t* index, int64_t query_block, AttentionBias* out);

// Runs of memory to prefetch: rows[i] .. rows[i] + bytes, i < count, to read (the next window's
// q|k|v) and wrows[i] .. wrows[i] + wbytes, i < wcount, to write (its outputs).
struct Prefetch {
  static constexpr int kMaxRows = 64;
  const char* rows[kMaxRows];
  int64_t count = 0;
  int64_t bytes = 0;
  char* wrows[kMaxRows];
  int64_t wcount = 0;
  int64_t wbytes = 0;
};

// ---- ScalesLinear ----
enum class Activation : int { kNone = 0, kGelu = 1 };

// The row functions of one ISA variant.
struct FloatKernels {
  Path path;
  const char* name;
  // Queries per block of attend_window (the padding of AttentionBias::Nqp).
  int64_t query_block;
  // Scratch floats attend_window needs for geometry g (the caller owns them, reused per window).
  int64_t (*attention_scratch)(const AttentionGeometry& g);
  // One window (n, wy, wx): reads qkv [N, H, W, 3C], writes the window's C outputs of each of its
  // Nq pixels into y [N, H, W, C]. pix: 2*Nq + Nk int64 scratch; rows: 2*Nk pointers of scratch;
  // scratch: attention_scratch(g) floats. While it computes, it asks the CPU to fetch `prefetch`
  // (the memory the next window reads and writes).
  void (*attend_window)(const AttentionGeometry& g, const float* qkv, const AttentionBias& bias,
                        int64_t n, int64_t wy, int64_t wx, float* y, int64_t* pix,
                        const float** rows, float* scratch, const struct Prefetch& prefetch);
  // sum_k x[k] * w[k] (the order of the additions is the variant's).
  float (*dot)(const float* x, const float* w, int64_t K);
  // One output row of ScalesLinear: y[m] = act((float(acc[m]) * scale[m] + bias[m]) * s)
  // + residual[m] for m < M (float32 multiply, then add, as BinaryLinear; then the products in
  // the order written). bias and residual may be null (0); s = 1 means no spatial factor.
  void (*linear_row)(const int32_t* acc, int64_t M, const float* scale, const float* bias,
                     float s, Activation act, const float* residual, float* y);
  // y[i] = gelu(y[i]) for i < n (exact form, as linear_row's), then + residual[i] if non-null.
  void (*gelu)(float* y, int64_t n, const float* residual);
  // out[k] = (x[k] - mean) / sqrt(var + eps) * w[k] + b[k] over the K features of one row (mean
  // and biased variance of x; float32 sums in the variant's order).
  void (*layer_norm)(const float* x, int64_t K, const float* w, const float* b, float eps, float* out);
  // v[i] = sigmoid(v[i] + bias) for i < n.
  void (*sigmoid)(float* v, int64_t n, float bias);
  // dst[i] = src[i] for i < n, with non-temporal (streaming) stores where the ISA has them: no read
  // of dst's cache lines before they are written. Follow a range of these with stream_fence().
  void (*stream_copy)(float* dst, const float* src, int64_t n);
  void (*stream_fence)();
};

// The float kernels for binary-kernel path p: its variant when compiled in and the CPU runs it
// (the AVX2 variant also needs FMA), else the portable one.
const FloatKernels& float_kernels(Path p);

// ---- range drivers (any thread, any sub-range) ----
// WindowAttention; work items are windows r = n * windows + window, r in [begin, end).
void window_attention(const FloatKernels& k, const AttentionGeometry& g, const float* qkv,
                      const AttentionBias& bias, float* y, int64_t begin, int64_t end);

// The float inputs of ScalesLinear besides X and the binary layer's own.
struct LinearBranches {
  const float* norm_w = nullptr;     // [K] LayerNorm weight, or null: X is used as it is
  const float* norm_b = nullptr;     // [K] its bias (given with norm_w)
  float norm_eps = 1e-5f;
  const float* spatial_w = nullptr;  // [K], or null: no spatial re-scaling
  float spatial_b = 0.0f;
  Activation act = Activation::kNone;
  const float* residual = nullptr;   // [rows, M], or null
  // Write Y with streaming stores (for an output too large to stay in the caches anyway: it
  // saves reading every line of Y from memory before writing it).
  bool stream = false;
};
// ScalesLinear over rows [begin, end) of X [rows, K]: the optional LayerNorm of each row, then
// binarize+pack (k.pack_row), the binary product (k.gemm_row), S = sigmoid(dot(X, spatial_w) +
// spatial_b), the output transform.
void scales_linear_rows(const IsaKernels& k, const FloatKernels& f, const float* x,
                        const float* beta, const LinearWeights& w, const float* scale,
                        const float* bias, const LinearBranches& b, float* y, int64_t begin,
                        int64_t end);

}  // namespace kernels
}  // namespace scales_edge
