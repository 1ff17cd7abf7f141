// Pass 2 of an upsampling ScalesConv2d (op-domain version 3, pixel_shuffle r > 1): each output
// row of the M = r*r*F convolution channels is transformed, then scattered into the pixel-shuffled
// output Y [N, F, OH*r, OW*r] with the skip X[n, f] added (the input repeated r*r times).
//
// The transform ((prod + bias) * S) * Cs comes from the path's fused float loop when it has one
// (into a row buffer of M x OW floats, in cache), else from the int32 row buffer and the scalar
// transform; the skip is added as each value is stored, the last operation of the contract's
// order, so both ways give the same bits. Compiled like drivers.cc (no ISA flags,
// -ffp-contract=off).
#include <vector>

#include "drivers_rows.h"
#include "kernels.h"

namespace scales_edge {
namespace kernels {

namespace {

// Y row (oh*r + i) of feature f from the r transformed channel rows f*r*r + i*r + j (j < r) of
// z (z[j * OW + ow]): dst[ow*r + j] = z[j][ow] (+ xs[ow]). R > 0: r known at compile time.
template <int R, bool kSkip>
void scatter_rows(const float* z, int64_t OW, int64_t r_dyn, const float* xs, float* dst) {
  const int64_t r = R > 0 ? R : r_dyn;
  for (int64_t ow = 0; ow < OW; ++ow) {
    const float x = kSkip ? xs[ow] : 0.0f;
    for (int64_t j = 0; j < r; ++j) {
      const float v = z[j * OW + ow];
      dst[ow * r + j] = kSkip ? v + x : v;
    }
  }
}

using ScatterFn = void (*)(const float*, int64_t, int64_t, const float*, float*);

ScatterFn scatter_for(int64_t r, bool skip) {
  switch (r) {
    case 2: return skip ? &scatter_rows<2, true> : &scatter_rows<2, false>;
    case 3: return skip ? &scatter_rows<3, true> : &scatter_rows<3, false>;
    case 4: return skip ? &scatter_rows<4, true> : &scatter_rows<4, false>;
    default: return skip ? &scatter_rows<0, true> : &scatter_rows<0, false>;
  }
}

// The transform of one int32 channel row without the skip (the drivers' scalar order).
void transform_no_skip(const IsaKernels& k, const int32_t* src, int64_t OW, float sc, float bi,
                       const float* s_row, float c, float* dst) {
  if (k.transform_row) {
    k.transform_row(src, OW, sc, bi, s_row, c, nullptr, dst);
    return;
  }
  for (int64_t ow = 0; ow < OW; ++ow) {
    const float prod = static_cast<float>(src[ow]) * sc;
    float v = prod + bi;
    if (s_row) v = v * s_row[ow];
    dst[ow] = v * c;
  }
}

}  // namespace

void scales_conv_rows_shuffled(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                               const ConvWeights& w, const float* scale, const float* bias,
                               const ScalesBranches& b, const float* x, const float* S,
                               const float* cs, float* y, int64_t begin, int64_t end) {
  const int64_t r = b.shuffle, OW = g.OW, F = g.M / (r * r);
  const int64_t YH = g.OH * r, YW = OW * r;  // output plane
  const ScatterFn scatter = scatter_for(r, b.skip);
  std::vector<float> z(static_cast<size_t>(g.M * OW));  // one output row, M channels
  // Y's rows of LR row (n, oh) from z: row oh*r + i of feature f takes channels (f*r + i)*r + j.
  auto store = [&](int64_t n, int64_t oh) {
    for (int64_t f = 0; f < F; ++f) {
      const float* xs = b.skip ? x + ((n * g.C + f) * g.H + oh) * g.W : nullptr;
      for (int64_t i = 0; i < r; ++i)
        scatter(z.data() + (f * r + i) * r * OW, OW, r, xs, y + ((n * F + f) * YH + oh * r + i) * YW);
    }
  };
  if (fused_rows(k, g)) {
    // Cs per conv channel (the fused loop scales channel m by cs[m]): feature m / r^2's.
    std::vector<float> cs_m(cs ? static_cast<size_t>(g.M) : 0);
    std::vector<uint64_t> scratch(static_cast<size_t>(conv_row_scratch_words(k, g)));
    int64_t cs_n = -1;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.OH, oh = row % g.OH;
      if (cs && n != cs_n) {
        for (int64_t m = 0; m < g.M; ++m) cs_m[m] = cs[n * F + m / (r * r)];
        cs_n = n;
      }
      ConvTransform t;
      t.scale = scale;
      t.bias = bias;
      t.cs = cs ? cs_m.data() : nullptr;
      t.s = S ? S + (n * g.OH + oh) * OW : nullptr;
      t.s_row_stride = OW;
      t.y = z.data();
      t.y_ldm = OW;
      t.y_row_stride = OW;
      k.conv_rows_float(g, xp + n * g.H * g.W * g.CW, w, oh, oh + 1, t, scratch.data());
      store(n, oh);
    }
    return;
  }
  for_each_acc_row(k, g, xp, w, begin, end, [&](int64_t n, int64_t oh, const int32_t* row) {
    const float* s_row = S ? S + (n * g.OH + oh) * OW : nullptr;
    for (int64_t m = 0; m < g.M; ++m)
      transform_no_skip(k, row + m * OW, OW, scale[m], bias ? bias[m] : 0.0f, s_row,
                        cs ? cs[n * F + m / (r * r)] : 1.0f, z.data() + m * OW);
    store(n, oh);
  });
}

}  // namespace kernels
}  // namespace scales_edge
