// The fused SCALES linear layer (ScalesLinear, op-domain version 3, docs/ops.md): the range
// driver that runs the float kernels' LayerNorm, the binary kernels' pack_row and gemm_row and the
// float kernels' dot product and output transform on each row. Compiled without instruction-set
// flags.
#include <cmath>
#include <cstdint>
#include <vector>

#include "float_kernels.h"

namespace scales_edge {
namespace kernels {

void scales_linear_rows(const IsaKernels& k, const FloatKernels& f, const float* x,
                        const float* beta, const LinearWeights& w, const float* scale,
                        const float* bias, const LinearBranches& b, float* y, int64_t begin,
                        int64_t end) {
  // GELU (long polynomials) runs over blocks of rows at once, after their products: a long run of
  // independent vectors instead of one short row at a time between the scalar steps.
  constexpr int64_t kGeluRows = 16;
  const bool gelu = b.act == Activation::kGelu;
  std::vector<uint64_t> packed(static_cast<size_t>(w.KW));
  std::vector<int32_t> acc(static_cast<size_t>(w.Mp));
  std::vector<float> normed(b.norm_w ? static_cast<size_t>(w.K) : 0);
  for (int64_t r0 = begin; r0 < end; r0 += kGeluRows) {
    const int64_t r1 = r0 + kGeluRows < end ? r0 + kGeluRows : end;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * w.K;
      if (b.norm_w) {  // the row's LayerNorm, in L1, in place of X
        f.layer_norm(xr, w.K, b.norm_w, b.norm_b, b.norm_eps, normed.data());
        xr = normed.data();
      }
      k.pack_row(xr, beta, w.K, packed.data());
      k.gemm_row(packed.data(), w.K, w.KW, w.data.data(), w.Mp, acc.data());
      float s = 1.0f;
      if (b.spatial_w) s = 1.0f / (1.0f + std::exp(-(f.dot(xr, b.spatial_w, w.K) + b.spatial_b)));
      const float* res = b.residual && !gelu ? b.residual + r * w.M : nullptr;
      f.linear_row(acc.data(), w.M, scale, bias, s, Activation::kNone, res, y + r * w.M);
    }
    if (gelu)
      f.gelu(y + r0 * w.M, (r1 - r0) * w.M, b.residual ? b.residual + r0 * w.M : nullptr);
  }
}

}  // namespace kernels
}  // namespace scales_edge
