// The fused SCALES linear layer (ScalesLinear, op-domain version 3, docs/ops.md): the range
// driver that runs the float kernels' LayerNorm, the binary kernels' pack_row and gemm_row and the
// float kernels' dot product and output transform on each row. Compiled without instruction-set
// flags.
#include <cstdint>
#include <vector>

#include "float_kernels.h"

namespace scales_edge {
namespace kernels {

void scales_linear_rows(const IsaKernels& k, const FloatKernels& f, const float* x,
                        const float* beta, const LinearWeights& w, const float* scale,
                        const float* bias, const LinearBranches& b, float* y, int64_t begin,
                        int64_t end) {
  // Rows go in blocks, each step over the whole block before the next: the per-row chains of
  // dependent operations (a LayerNorm's two reductions and square root, the spatial dot product's
  // reduction, GELU's long polynomials) are independent from row to row, so the CPU overlaps
  // those of a block instead of waiting for each in turn between the binary products.
  constexpr int64_t kBlock = 16;
  const int64_t K = w.K, M = w.M;
  const bool gelu = b.act == Activation::kGelu;
  std::vector<uint64_t> packed(static_cast<size_t>(w.KW));
  std::vector<int32_t> acc(static_cast<size_t>(w.Mp));
  std::vector<float> normed(b.norm_w ? static_cast<size_t>(kBlock * K) : 0);
  std::vector<float> staged(b.stream ? static_cast<size_t>(kBlock * M) : 0);
  float s[kBlock];
  for (int64_t r0 = begin; r0 < end; r0 += kBlock) {
    const int64_t n = r0 + kBlock < end ? kBlock : end - r0;
    // a streamed output is computed into an L1 block first, then written out in one run
    float* yb = b.stream ? staged.data() : y + r0 * M;
    const float* xb = x + r0 * K;
    if (b.norm_w) {  // the rows' LayerNorm, in L1, in place of X
      for (int64_t i = 0; i < n; ++i)
        f.layer_norm(xb + i * K, K, b.norm_w, b.norm_b, b.norm_eps, normed.data() + i * K);
      xb = normed.data();
    }
    if (b.spatial_w) {
      for (int64_t i = 0; i < n; ++i) s[i] = f.dot(xb + i * K, b.spatial_w, K);
      f.sigmoid(s, n, b.spatial_b);
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = r0 + i;
      k.pack_row(xb + i * K, beta, K, packed.data());
      k.gemm_row(packed.data(), K, w.KW, w.data.data(), w.Mp, acc.data());
      const float* res = b.residual && !gelu ? b.residual + r * M : nullptr;
      f.linear_row(acc.data(), M, scale, bias, b.spatial_w ? s[i] : 1.0f, Activation::kNone, res, yb + i * M);
    }
    if (gelu) f.gelu(yb, n * M, b.residual ? b.residual + r0 * M : nullptr);
    if (b.stream) f.stream_copy(y + r0 * M, staged.data(), n * M);
  }
  if (b.stream) f.stream_fence();
}

}  // namespace kernels
}  // namespace scales_edge
