// Binary (1-bit) kernels of the scales_edge operator domain: binarize+pack, binary convolution and
// binary matrix product on bit-packed operands. Pure C++17, no ONNX Runtime types.
//
// Conventions (docs/ops.md): sign(v) = +1 if v >= 0, else -1 (also for NaN); a -1 is stored as bit 1,
// a +1 as bit 0; 64 signs per little-endian uint64 word, bit j of word w = element 64*w + j; padding
// bits 0. The binary dot product of two packed vectors of length K is K - 2*popcount(a XOR b).
//
// Every ISA variant ("path") exposes the same small table of row functions (IsaKernels); the range
// drivers below call them for a contiguous range of work items, so a caller can split the work over
// threads. No function here keeps mutable state: all of them are safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace scales_edge {
namespace kernels {

// kNeon: AArch64 Advanced SIMD (neon.cc, compiled on AArch64 only).
enum class Path : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3 };
constexpr int kNumPaths = 4;

// Output channels are processed in vectors of up to 8 lanes, so weights are re-laid out with the
// output-channel count rounded up to a multiple of this (the extra lanes hold zeros).
constexpr int64_t kChannelPad = 8;

inline int64_t words_for(int64_t bits) { return (bits + 63) / 64; }
inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Shape of one BinaryConv2d. Fill the inputs, then call check_conv_geometry() which derives the rest.
struct ConvGeometry {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input X: [N, C, H, W]
  int64_t M = 0, kH = 0, kW = 0;       // weights: [M, kH, kW, CW]
  int64_t sH = 1, sW = 1;              // strides
  int64_t pT = 0, pL = 0, pB = 0, pR = 0;  // pads: top, left, bottom, right
  int64_t dH = 1, dW = 1;              // dilations
  // derived
  int64_t CW = 0;  // words per input pixel = ceil(C/64)
  int64_t OH = 0, OW = 0;
  int64_t Mp = 0;  // M rounded up to kChannelPad
};

// Output pixels per block of the AVX2 stride-1 convolution (its byte planes are padded to it).
constexpr int64_t kConvPixelBlock = 64;

struct IsaKernels;
// Scratch words k.conv_row needs (k.conv_scratch_words, or 0): at most the valid tap rows of one
// output row in the path's layout, bounded by a small multiple of min(kH, H) input rows.
int64_t conv_row_scratch_words(const IsaKernels& k, const ConvGeometry& g);

// Validates the geometry and fills CW, OH, OW, Mp. Returns "" when valid, else a description of
// the problem (without an op-name prefix).
std::string check_conv_geometry(ConvGeometry& g);

// Weights of a BinaryConv2d re-laid out for the kernels: [kH*kW][CW][Mp] (output channel fastest).
// Only for a path with conv_tables (AVX2's stride-1 kernel), otherwise empty: `tables`, for each
// nibble n (bits 4n..4n+3) of each word, a 16-byte lookup table popcount(x ^ nibble) for
// x = 0..15, laid out [Mp/4][kH*kW][CW][16 nibbles][4 channels][16]; `tap_pops` [kH*kW][Mp]:
// popcount of each tap's CW words.
struct ConvWeights {
  int64_t M = 0, Mp = 0, kH = 0, kW = 0, CW = 0;
  std::vector<uint64_t> data;
  std::vector<uint8_t> tables;
  std::vector<int32_t> tap_pops;
};
// w: packed weights in the ONNX layout [M, kH, kW, CW]. Bits past C in the last word are cleared
// (readers must not depend on them), which needs C. The result is for path k's conv_row.
ConvWeights relayout_conv_weights(const IsaKernels& k, const uint64_t* w, int64_t M, int64_t kH,
                                  int64_t kW, int64_t C);

// Weights of a BinaryLinear re-laid out for the kernels: [KW][Mp].
struct LinearWeights {
  int64_t M = 0, Mp = 0, K = 0, KW = 0;
  std::vector<uint64_t> data;
};
// w: packed weights in the ONNX layout [M, KW].
LinearWeights relayout_linear_weights(const uint64_t* w, int64_t M, int64_t K);

// The float output transform of convolution accumulators acc for output rows [oh0, oh1) of one
// image (docs/ops.md): for channel m < M, row r = oh - oh0 and pixel ow < OW,
//   y[m*y_ldm + r*y_row_stride + ow] = ((float(acc) * scale[m] + bias[m]) * s[r*s_row_stride + ow])
//                                      * cs[m] + skip[m*skip_ldm + r*skip_row_stride + ow]
// each float32 operation rounded in that order (no FMA); bias null: + 0.0f; s null: no multiply;
// cs null: * 1.0f; skip null: no add. The pointers are at row oh0.
struct ConvTransform {
  const float* scale = nullptr;
  const float* bias = nullptr;
  const float* cs = nullptr;
  const float* s = nullptr;
  int64_t s_row_stride = 0;
  const float* skip = nullptr;
  int64_t skip_ldm = 0, skip_row_stride = 0;
  float* y = nullptr;
  int64_t y_ldm = 0, y_row_stride = 0;
};

// The row functions of one ISA variant.
struct IsaKernels {
  Path path;
  const char* name;
  // conv_row reads ConvWeights::tables and tap_pops, and uses scratch (see those).
  bool conv_tables;
  // Binarize+pack one image row: x points at X[n, 0, h, 0]; channel c of that row is
  // x[c*plane .. c*plane + W). Writes out[W][CW]. scratch: W words. Optionally (null: skipped),
  // in the order of reductions.h (the same bits on every path):
  //  * sums[c] = sum_floats(x + c*plane, W) for c < C;
  //  * dot = spatial_dot(x, plane, C, W, spatial_w, sW, dot), ceil(W/sW) floats (spatial_w and
  //    dot both given or both null).
  void (*pack_nchw_row)(const float* x, int64_t plane, const float* beta, int64_t C, int64_t W,
                        uint64_t* out, uint64_t* scratch, double* sums, const float* spatial_w,
                        int64_t sW, float* dot);
  // Binarize+pack one row of K features into KW = ceil(K/64) words.
  void (*pack_row)(const float* x, const float* beta, int64_t K, uint64_t* out);
  // Accumulators of one output row: x_img = packed image n ([H][W][CW]).
  // Writes acc[m * ldm + ow] for m < Mp, ow < OW (channel-major; ldm >= OW; lanes m >= M hold
  // garbage). scratch: conv_row_scratch_words(g) words the caller owns (reused across rows).
  void (*conv_row)(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& w, int64_t oh,
                   int32_t* acc, int64_t ldm, uint64_t* scratch);
  // Accumulators of one row of a binary matmul: x = [KW] packed, w = LinearWeights::data [KW][Mp].
  // Writes acc[Mp] = K - 2*popcount(x ^ w_m).
  void (*gemm_row)(const uint64_t* x, int64_t K, int64_t KW, const uint64_t* w, int64_t Mp,
                   int32_t* acc);
  // Scratch words conv_row needs for geometry g (null: none). Only called on a geometry that
  // passed check_conv_geometry.
  int64_t (*conv_scratch_words)(const ConvGeometry& g);
  // True when conv_row stores each channel's row with contiguous vector stores for g, so that a
  // driver may point it straight at the output planes (ldm = OH*OW; needs M == Mp) instead of a
  // row buffer (null: never).
  bool (*conv_rows_contiguous)(const ConvGeometry& g);
  // conv_row over the output rows [oh0, oh1) of one image with the output transform t applied as
  // the accumulators leave the registers, so each output float is written once and no int32 row
  // is stored and read back (null: none; only called when conv_rows_contiguous(g)). The same
  // bits as conv_row followed by the transform. scratch: conv_row_scratch_words(g) words.
  void (*conv_rows_float)(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& w,
                          int64_t oh0, int64_t oh1, const ConvTransform& t, uint64_t* scratch);
  // The whole BinaryLinear on float rows [begin, end) of X [rows, K]: y[r*M + m] =
  // float(acc) * scale[m] + bias[m] (bias null: + 0.0f), each row packed, multiplied and
  // transformed in registers (null: none). words: w.KW words of scratch.
  void (*linear_rows_float)(const float* x, const float* beta, const LinearWeights& w,
                            const float* scale, const float* bias, float* y, int64_t begin,
                            int64_t end, uint64_t* words);
  // The output transform of one row of one channel, n pixels from an int32 row (null: the
  // drivers' scalar loop; the same bits either way):
  //   dst[i] = ((float(src[i]) * sc + bi) * s_row[i]) * c + xs[i]   (s_row, xs null: left out)
  void (*transform_row)(const int32_t* src, int64_t n, float sc, float bi, const float* s_row,
                        float c, const float* xs, float* dst);
};

// ---- paths and run-time dispatch ----
const char* path_name(Path p);
// Parses "portable" | "avx2" | "avx512" | "neon". Returns false for anything else.
bool parse_path(const std::string& name, Path* out);
// Kernels of a path compiled into this build (nullptr if not compiled in).
const IsaKernels* compiled_kernels(Path p);
// True if the path is compiled in and the CPU and OS support it.
bool path_supported(Path p);
// Supported paths, slowest first (portable always first).
std::vector<Path> supported_paths();
// The kernels to use: `name` (if non-null and non-empty), else the environment variable
// SCALES_EDGE_KERNEL (if set and non-empty), else the newest supported path. "auto" means the
// newest supported path here (the ops measure instead: choose_kernels). Returns nullptr and sets
// *error for an unknown or unavailable path.
const IsaKernels* select_kernels(const char* name, std::string* error);
// True when `name` (if non-null and non-empty), else SCALES_EDGE_KERNEL, leaves the choice to
// the ops ("auto", empty or unset).
bool auto_requested(const char* name);
constexpr const char* kKernelEnvVar = "SCALES_EDGE_KERNEL";
// The path SCALES_EDGE_KERNEL forces: true and *k set when it names a path; false and *k null
// when it is unset, empty or "auto" (then each op measures, choose_kernels); false and *error
// set when it names an unknown or unavailable path.
bool forced_kernels(const IsaKernels** k, std::string* error);
// Weights re-laid out for this path serve every path that may run (the AVX2 lookup tables are
// built when any supported path reads them): `forced` if non-null, else such a path.
const IsaKernels& layout_kernels(const IsaKernels* forced);

// ---- measured choice of a path (autotune.cc) ----
// How the path of an op and geometry was chosen: forced by SCALES_EDGE_KERNEL, the only
// supported path, measured, taken from an earlier measurement of the same key, or (once the
// process has spent its measurement budget) the path measured fastest most often so far.
enum class ChoiceHow { kForced, kOnly, kMeasured, kCached, kBudget };
const char* choice_how_name(ChoiceHow how);
struct PathChoice {
  const IsaKernels* kernels = nullptr;
  ChoiceHow how = ChoiceHow::kOnly;
  // Measured milliseconds per work unit of each path (indexed by Path; < 0: not measured).
  double unit_ms[kNumPaths] = {-1, -1, -1, -1};
};
// The fastest supported path for the work `key` describes (an op and its geometry), timed by
// run(k, units), which must run `units` work units (e.g. output rows) of that work on path k
// (1 <= units <= max_units) on the calling thread. Every supported path runs a unit twice; those
// within 1.5x of the best then run ~0.5 ms of units five times, alternating, and the least time
// per unit wins. About 10 ms per key; the result is cached for the process under `key`, and the
// process spends at most ~60 ms measuring in all (after that: ChoiceHow::kBudget).
// Thread-safe (measurements are serialised, so two never disturb each other).
PathChoice choose_kernels(const std::string& key,
                          const std::function<void(const IsaKernels&, int64_t)>& run,
                          int64_t max_units);

// ---- range drivers (any thread, any sub-range) ----
// Output rows a thread should take at a time, at least, for the convolution drivers: the
// AVX-512 kernel lays out and sweeps 8 rows per channel block.
constexpr int64_t kRowGrain = 8;
// Pack X [N, C, H, W] into [N, H, W, CW]; work items are image rows r = n*H + h, r in [begin, end).
void pack_nchw(const IsaKernels& k, const float* x, const float* beta, int64_t N, int64_t C,
               int64_t H, int64_t W, uint64_t* out, int64_t begin, int64_t end);
// Pack X [rows, K] into [rows, KW]; work items are rows.
void pack_rows(const IsaKernels& k, const float* x, const float* beta, int64_t K, uint64_t* out,
               int64_t begin, int64_t end);
// Binary convolution on packed input xp [N, H, W, CW]; work items are output rows r = n*OH + oh.
// acc: int32 [N, M, OH, OW].
void conv_int32(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                const ConvWeights& w, int32_t* acc, int64_t begin, int64_t end);
// Same, writing Y = float(acc) * scale[m] + bias[m] as float [N, M, OH, OW]; bias may be null (0).
void conv_float(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                const ConvWeights& w, const float* scale, const float* bias, float* y,
                int64_t begin, int64_t end);
// Binary matmul of packed rows xp [rows, KW] with w; work items are rows. acc: int32 [rows, M].
void gemm_int32(const IsaKernels& k, const uint64_t* xp, const LinearWeights& w, int32_t* acc,
                int64_t begin, int64_t end);
// Same, writing Y = float(acc) * scale[m] + bias[m] as float [rows, M]; bias may be null (0).
void gemm_float(const IsaKernels& k, const uint64_t* xp, const LinearWeights& w,
                const float* scale, const float* bias, float* y, int64_t begin, int64_t end);
// The whole BinaryLinear on float rows [begin, end) of X [rows, K] (binarize+pack, matmul, output
// transform): k.linear_rows_float when the path has it, else row by row with pack_row, gemm_row
// and the transform, so each row's floats are read and written once.
void linear_float(const IsaKernels& k, const float* x, const float* beta, const LinearWeights& w,
                  const float* scale, const float* bias, float* y, int64_t begin, int64_t end);

// ---- the fused SCALES convolution (ScalesConv2d, op-domain version 2; docs/ops.md) ----
// Y = ((float(acc) * scale[m] + bias[m]) * S[n, oh, ow]) * Cs[n, m] + X[n, m, oh, ow], where
//   S  = sigmoid(sum_c spatial_w[c] * X[n, c, oh*sH, ow*sW] + spatial_b)        (spatial branch)
//   Cs = sigmoid(conv1d over the channel axis of the per-channel mean, k taps)  (channel branch)
// and each factor or term is left out when its branch is absent. The channel mean is taken over
// X (channel_from_input) or over the output after the spatial multiply.
struct ScalesBranches {
  const float* spatial_w = nullptr;  // [C], or null: no spatial branch
  float spatial_b = 0.0f;
  const float* channel_w = nullptr;  // [channel_k] (odd), or null: no channel branch
  int64_t channel_k = 0;
  bool channel_from_input = true;  // pool X (needs C == M) or the spatially scaled output
  bool skip = false;               // add X (needs C == M, OH == H, OW == W)
  // Version 3's pixel_shuffle r: the M = r*r*F channels are stored pixel-shuffled, Y [N, F,
  // OH*r, OW*r]; Cs has F entries (one per feature), the skip adds X[n, m / (r*r)] (needs C == F).
  int64_t shuffle = 1;
};
// Returns "" if the branches fit the geometry, else the problem.
std::string check_scales_branches(const ConvGeometry& g, const ScalesBranches& b);

// Pass 1, work items are input rows r = n*H + h: binarize+pack as pack_nchw, and
//  * with spatial_w: S[n, oh, ow] for the output rows oh whose source row h = oh*sH (S: [N, OH, OW]);
//  * with row_sums (non-null): row_sums[r*C + c] = sum over w of X[n, c, h, w] (double),
// both summed in the order of reductions.h, in one sweep over the row where the path can. The
// branches must have passed check_scales_branches.
void pack_nchw_scales(const IsaKernels& k, const ConvGeometry& g, const float* x,
                      const float* beta, const ScalesBranches& b, uint64_t* xp, float* S,
                      double* row_sums, int64_t begin, int64_t end);
// Cs[n*M + m] from per-channel sums over `count` elements each (sums: [N][M], summed in order).
void channel_scales(const ScalesBranches& b, const double* sums, int64_t N, int64_t M,
                    double count, float* cs);
// Pass 2, work items are output rows r = n*OH + oh: Y as above with the given S (null: no spatial)
// and Cs (null: not applied here); X is read for the skip.
void scales_conv_rows(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                      const ConvWeights& w, const float* scale, const float* bias,
                      const ScalesBranches& b, const float* x, const float* S, const float* cs,
                      float* y, int64_t begin, int64_t end);
// Pass 2 of an upsampling layer (b.shuffle = r > 1), work items are output rows r = n*OH + oh:
// each transformed value of channel m = f*r*r + i*r + j, pixel (oh, ow) is stored at
// Y[n, f, oh*r + i, ow*r + j] (the pixel shuffle), with Cs[n*F + f] (null: not applied here) and
// the skip X[n, f, oh, ow]; the arithmetic per value is scales_conv_rows'.
void scales_conv_rows_shuffled(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                               const ConvWeights& w, const float* scale, const float* bias,
                               const ScalesBranches& b, const float* x, const float* S,
                               const float* cs, float* y, int64_t begin, int64_t end);
// For the channel branch pooling the output: plane sums of y [N, M, P] (work items: planes
// n*M + m) into sums[n*M + m], then y *= Cs per plane.
void plane_sums(const float* y, int64_t P, double* sums, int64_t begin, int64_t end);
void scale_planes(float* y, int64_t P, const float* cs, int64_t begin, int64_t end);

}  // namespace kernels
}  // namespace scales_edge
