// scales_edge.ScalesConv2d (docs/ops.md, domain versions 2 and 3): BinaryConv2d fused with SCALES'
// spatial re-scaling, channel re-scaling and skip:
//   Y = ((BinaryConv2d(X) * S) * Cs) + X
// Pass 1 reads X once to binarize+pack it, compute S and the channel sums; pass 2 convolves and
// applies the whole output transform as each output row is stored. Version 3's pixel_shuffle r
// stores the M = r*r*F channels pixel-shuffled into [N, F, OH*r, OW*r] (an upsampling layer),
// with one channel scale per feature and the input repeated r*r times as the skip.
#include <algorithm>
#include <string>
#include <vector>

#include "ops.h"

namespace scales_edge {
namespace ort {

namespace {

constexpr const char* kOp = ScalesConv2dKernel::kName;

bool flag_attr(const Ort::ConstKernelInfo& info, const char* name) {
  const std::optional<int64_t> v = attr_int(info, kOp, name);
  if (!v) return false;
  if (*v != 0 && *v != 1)
    fail(kOp, std::string("attribute '") + name + "' = " + std::to_string(*v) + " is invalid; it must be 0 or 1");
  return *v == 1;
}

}  // namespace

ScalesConv2dKernel::ScalesConv2dKernel(const OrtKernelInfo* raw_info)
    : core_(raw_info, kName, kInputs) {
  Ort::ConstKernelInfo info(raw_info);
  skip_ = flag_attr(info, "skip");
  channel_from_input_ = !flag_attr(info, "channel_from_output");
  has_spatial_ = paired_inputs(info, kOp, 5, 6, "spatial_weight", "spatial_bias");
  has_channel_ = node_has_input(info, 7);
  if (const std::optional<int64_t> r = attr_int(info, kOp, "pixel_shuffle")) {
    if (*r < 1 || *r > 64)
      fail(kOp, "attribute 'pixel_shuffle' = " + std::to_string(*r) + " is invalid; it must be in [1, 64]");
    shuffle_ = *r;
  }
}

void ScalesConv2dKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);
  ConvCore::Call call;
  core_.prepare(ctx, call);
  const kernels::ConvGeometry& g = call.g;

  kernels::ScalesBranches b;
  b.skip = skip_;
  b.channel_from_input = channel_from_input_;
  b.shuffle = shuffle_;
  if (has_spatial_) {
    b.spatial_w = float_vector_input(ctx, 5, kOp, "spatial_weight", g.C, "C");
    b.spatial_b = *float_vector_input(ctx, 6, kOp, "spatial_bias", 1, "1");
  }
  if (has_channel_) b.channel_w = float_vector_input(ctx, 7, kOp, "channel_weight", -1, "k", &b.channel_k);
  const std::string problem = kernels::check_scales_branches(g, b);
  if (!problem.empty()) fail(kOp, problem + " (X " + shape_str(call.x_shape) + ")");

  const int64_t r = shuffle_, F = g.M / (r * r);  // output channels (M without a shuffle)
  Ort::UnownedValue y_value = ctx.GetOutput(0, std::vector<int64_t>{g.N, F, g.OH * r, g.OW * r});
  float* y = y_value.GetTensorMutableData<float>();
  const bool pool_input = b.channel_w && b.channel_from_input;
  const bool pool_output = b.channel_w && !b.channel_from_input;
  std::vector<uint64_t> xp(static_cast<size_t>(g.N * g.H * g.W * g.CW));
  std::vector<float> S(b.spatial_w ? static_cast<size_t>(g.N * g.OH * g.OW) : 0);
  std::vector<double> row_sums(pool_input ? static_cast<size_t>(g.N * g.H * g.C) : 0);
  std::vector<float> cs(b.channel_w ? static_cast<size_t>(g.N * F) : 0);
  // When the channel branch pools the output, the pool and Cs come before the skip
  // (Y = conv * S * Cs + X), so pass 2 leaves the skip to the pass after the pool.
  kernels::ScalesBranches pass2 = b;
  if (pool_output) pass2.skip = false;
  // Pass 2's store: rows in NCHW, or (pixel_shuffle r > 1) scattered into the shuffled layout.
  auto* store = r > 1 ? &kernels::scales_conv_rows_shuffled : &kernels::scales_conv_rows;

  // Rows of both passes on path kp (a measurement writes rows that the real run writes again).
  auto rows_on = [&](const kernels::IsaKernels& kp, int64_t rows) {
    const int64_t n = std::min(rows, g.OH), oh0 = (g.OH - n) / 2;
    kernels::pack_nchw_scales(kp, g, call.x, call.beta, b, xp.data(),
                              S.empty() ? nullptr : S.data(),
                              pool_input ? row_sums.data() : nullptr, 0, std::min(g.H, n * g.sH));
    store(kp, g, xp.data(), *call.weights, call.scale, call.bias, pass2, call.x,
          S.empty() ? nullptr : S.data(), pool_input ? cs.data() : nullptr, y, oh0, oh0 + n);
  };
  std::string what;  // the branches, which change the work: "S Cs(in) +X"
  if (b.spatial_w) what += "S";
  if (b.channel_w) what += std::string(what.empty() ? "" : " ") + (pool_input ? "Cs(in)" : "Cs(out)");
  if (b.skip) what += std::string(what.empty() ? "" : " ") + "+X";
  if (r > 1) what += std::string(what.empty() ? "" : " ") + "shuffle" + std::to_string(r);
  const kernels::IsaKernels& k = core_.pick(call, what, rows_on);

  // ---- pass 1: pack, S, per-row channel sums
  parallel_rows(ctx, kName, g.N * g.H, [&](int64_t begin, int64_t end) {
    kernels::pack_nchw_scales(k, g, call.x, call.beta, b, xp.data(), S.empty() ? nullptr : S.data(),
                              pool_input ? row_sums.data() : nullptr, begin, end);
  });
  if (pool_input) {
    // Whole-image channel sums, rows added in order (the result does not depend on threading).
    std::vector<double> sums(static_cast<size_t>(g.N * g.C), 0.0);
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t h = 0; h < g.H; ++h)
        for (int64_t c = 0; c < g.C; ++c) sums[n * g.C + c] += row_sums[(n * g.H + h) * g.C + c];
    kernels::channel_scales(b, sums.data(), g.N, g.C, static_cast<double>(g.H * g.W), cs.data());
  }

  // ---- pass 2: convolve and transform each output row
  parallel_rows(
      ctx, kName, g.N * g.OH,
      [&](int64_t begin, int64_t end) {
        store(k, g, xp.data(), *call.weights, call.scale, call.bias, pass2, call.x,
              S.empty() ? nullptr : S.data(), pool_input ? cs.data() : nullptr, y, begin, end);
      },
      kernels::kRowGrain);

  // ---- the channel branch pooling the output: one more pass over Y (F planes of P values),
  // then the skip (the input repeated over each r x r block when shuffled)
  if (pool_output) {
    const int64_t OW = g.OW * r, P = g.OH * r * OW;
    std::vector<double> sums(static_cast<size_t>(g.N * F));
    parallel_rows(ctx, kName, g.N * F, [&](int64_t begin, int64_t end) {
      kernels::plane_sums(y, P, sums.data(), begin, end);
    });
    kernels::channel_scales(b, sums.data(), g.N, F, static_cast<double>(P), cs.data());
    parallel_rows(ctx, kName, g.N * F, [&](int64_t begin, int64_t end) {
      kernels::scale_planes(y, P, cs.data(), begin, end);
      if (!b.skip) return;
      // F == C and OH, OW == H, W (check_scales_branches): plane p of Y takes plane p of X
      for (int64_t p = begin; p < end; ++p)
        for (int64_t row = 0; row < g.OH * r; ++row) {
          const float* xs = call.x + (p * g.H + row / r) * g.W;
          float* yr = y + p * P + row * OW;
          for (int64_t w = 0; w < g.W; ++w)
            for (int64_t j = 0; j < r; ++j) yr[w * r + j] += xs[w];
        }
    });
  }
}

}  // namespace ort
}  // namespace scales_edge
