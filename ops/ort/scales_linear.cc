// scales_edge.ScalesLinear (docs/ops.md, domain version 3): BinaryLinear fused with a LayerNorm of
// its input, SCALES' spatial re-scaling, an optional GELU and a residual add:
//   Y = act(BinaryLinear(X') * S) + R,   S = sigmoid(X' . spatial_weight + spatial_bias) per row,
//   X' = LayerNorm(X) (norm inputs given) or X
// One pass over the rows: each is normalised, binarized+packed, multiplied with the packed
// weights, and transformed as it is stored.
#include <algorithm>
#include <string>
#include <vector>

#include "ops.h"

namespace scales_edge {
namespace ort {

namespace {

constexpr const char* kOp = ScalesLinearKernel::kName;

kernels::Activation activation_attr(const Ort::ConstKernelInfo& info) {
  const std::optional<std::string> v = attr_string(info, kOp, "activation");
  if (!v || *v == "none") return kernels::Activation::kNone;
  if (*v == "gelu") return kernels::Activation::kGelu;
  fail(kOp, "attribute 'activation' = '" + *v + "' is invalid; it must be 'none' or 'gelu'");
}

}  // namespace

ScalesLinearKernel::ScalesLinearKernel(const OrtKernelInfo* raw_info)
    : core_(raw_info, kName, kInputs) {
  Ort::ConstKernelInfo info(raw_info);
  act_ = activation_attr(info);
  has_spatial_ = paired_inputs(info, kOp, 5, 6, "spatial_weight", "spatial_bias");
  has_residual_ = node_has_input(info, 7);
  has_norm_ = paired_inputs(info, kOp, 8, 9, "norm_weight", "norm_bias");
  if (const std::optional<float> eps = attr_float(info, kOp, "norm_epsilon")) {
    if (!(*eps > 0.0f) || *eps > 1.0f)
      fail(kOp, "attribute 'norm_epsilon' = " + std::to_string(*eps) + " is invalid; it must be in (0, 1]");
    norm_eps_ = *eps;
  }
}

void ScalesLinearKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);
  LinearCore::Call call;
  core_.prepare(ctx, call);
  const kernels::LinearWeights& w = *call.weights;

  kernels::LinearBranches b;
  b.act = act_;
  if (has_norm_) {
    b.norm_w = float_vector_input(ctx, 8, kOp, "norm_weight", w.K, "K");
    b.norm_b = float_vector_input(ctx, 9, kOp, "norm_bias", w.K, "K");
    b.norm_eps = norm_eps_;
  }
  if (has_spatial_) {
    b.spatial_w = float_vector_input(ctx, 5, kOp, "spatial_weight", w.K, "K");
    b.spatial_b = *float_vector_input(ctx, 6, kOp, "spatial_bias", 1, "1");
  }
  if (has_residual_) {
    const TensorRef r = tensor_ref(ctx.GetInput(7), kOp, "residual");
    expect_type(r, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, kOp, "residual");
    if (r.shape != call.y_shape)
      fail(kOp, "input 'residual' has shape " + shape_str(r.shape) + " but the output has shape " +
                    shape_str(call.y_shape) + "; they must be equal");
    b.residual = r.as<float>();
  }

  Ort::UnownedValue y_value = ctx.GetOutput(0, call.y_shape);
  float* y = y_value.GetTensorMutableData<float>();
  // An output larger than a last-level cache is written with streaming stores: SwinIR-light's qkv
  // at 320x180 (42 MB) ran 10-20% faster so (CPU time, Zen 4, cold buffers); its 14 MB outputs
  // (proj, fc2) ran 5-10% slower, through the extra staging copy.
  constexpr int64_t kStreamBytes = int64_t{32} << 20;
  b.stream = call.rows * w.M * static_cast<int64_t>(sizeof(float)) >= kStreamBytes;
  // The path is measured per geometry and options, as BinaryLinear's: the binary kernels' rows
  // with the float kernels of the same path.
  auto rows_on = [&](const kernels::IsaKernels& kp, int64_t units) {
    kernels::scales_linear_rows(kp, kernels::float_kernels(kp.path), call.x, call.beta, w,
                                call.scale, call.bias, b, y, 0,
                                std::min(call.rows, units * LinearCore::kTokens));
  };
  const std::string what = std::string(has_norm_ ? " norm" : "") + (has_spatial_ ? " spatial" : "") +
                           (act_ == kernels::Activation::kGelu ? " gelu" : "") +
                           (has_residual_ ? " residual" : "");
  const kernels::IsaKernels& k = core_.pick(call, what, rows_on);
  const kernels::FloatKernels& f = kernels::float_kernels(k.path);
  parallel_rows(
      ctx, kName, call.rows,
      [&](int64_t begin, int64_t end) {
        kernels::scales_linear_rows(k, f, call.x, call.beta, w, call.scale, call.bias, b, y, begin,
                                    end);
      },
      LinearCore::kTokens);
}

}  // namespace ort
}  // namespace scales_edge
