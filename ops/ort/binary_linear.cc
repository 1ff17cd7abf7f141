// scales_edge.BinaryLinear (docs/ops.md):
//   Y[..., m] = float(sum_k sign(X[..., k] - beta[k]) * Wsign[m, k]) * scale[m] + bias[m]
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "ops.h"

namespace scales_edge {
namespace ort {

namespace {

constexpr const char* kOp = BinaryLinearKernel::kName;

int64_t words_for(int64_t bits) { return (bits + 63) / 64; }

void check_weights(const TensorRef& w, int64_t k) {
  expect_type(w, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, kOp, "W");
  if (w.shape.size() != 2)
    fail(kOp, "input 'W' must be 2-D [M, ceil(K/64)], got shape " + shape_str(w.shape));
  if (w.shape[0] < 1)
    fail(kOp, "input 'W' has shape " + shape_str(w.shape) + ": needs at least one output feature");
  if (k >= 1 && w.shape[1] != words_for(k))
    fail(kOp, "input 'W' has shape " + shape_str(w.shape) + " but its last dim must be ceil(K/64) = " +
                  std::to_string(words_for(k)) + " for K = " + std::to_string(k) +
                  " input features (packed-weight size mismatch)");
}

}  // namespace

BinaryLinearKernel::BinaryLinearKernel(const OrtKernelInfo* raw_info)
    : picker_(Ort::ConstKernelInfo(raw_info), kOp) {
  Ort::ConstKernelInfo info(raw_info);

  params_.check_node_inputs(info);

  const int64_t k = params_.read_beta(info);  // -1 unless beta is constant
  if (k > std::numeric_limits<int32_t>::max())
    fail(kOp, "K = " + std::to_string(k) + " exceeds the int32 accumulator range");
  int64_t m = -1;  // M of a constant W
  if (std::optional<TensorRef> w = constant_input(info, 2, kOp, "W")) {
    check_weights(*w, k);
    m = w->shape[0];
    if (k >= 1) weights_ = kernels::relayout_linear_weights(w->as<uint64_t>(), m, k);
  }
  params_.read_scale_bias(info, m);
}

void BinaryLinearKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);

  // ---- X [..., K]
  const TensorRef x = params_.input_x(ctx);
  if (x.shape.size() < 2)
    fail(kOp, "input 'X' must have rank >= 2 [..., K], got shape " + shape_str(x.shape));
  const int64_t k = x.shape.back();
  if (k < 1) fail(kOp, "input 'X' has shape " + shape_str(x.shape) + "; K must be >= 1");
  if (k > std::numeric_limits<int32_t>::max())
    fail(kOp, "K = " + std::to_string(k) + " exceeds the int32 accumulator range");
  const int64_t rows = x.size / k;
  if (rows < 1)
    fail(kOp, "the output would be empty: input 'X' has shape " + shape_str(x.shape));

  // ---- beta
  const float* beta = params_.beta(ctx, k, x.shape);

  // ---- W
  kernels::LinearWeights local_weights;
  const kernels::LinearWeights* weights = nullptr;
  if (weights_) {
    weights = &*weights_;
  } else {
    const TensorRef w = tensor_ref(ctx.GetInput(2), kOp, "W");
    check_weights(w, k);
    local_weights = kernels::relayout_linear_weights(w.as<uint64_t>(), w.shape[0], k);
    weights = &local_weights;
  }
  const int64_t m = weights->M;

  // ---- scale, bias
  const float* scale = params_.scale(ctx, m);
  const float* bias = params_.bias(ctx, m);

  // ---- run
  std::vector<int64_t> y_shape = x.shape;
  y_shape.back() = m;
  Ort::UnownedValue y_value = ctx.GetOutput(0, y_shape);
  float* y = y_value.GetTensorMutableData<float>();
  const float* xdata = x.as<float>();
  // kTokens rows per unit on path kp (a measurement writes rows that the real run writes again).
  constexpr int64_t kTokens = 64;
  auto rows_on = [&](const kernels::IsaKernels& kp, int64_t units) {
    kernels::linear_float(kp, xdata, beta, *weights, scale, bias, y, 0,
                          std::min(rows, units * kTokens));
  };
  const std::string shape = "K=" + std::to_string(k) + " M=" + std::to_string(m);
  const kernels::IsaKernels& kern = picker_.pick(std::string(kOp) + " " + shape, shape, rows_on,
                                                 (rows + kTokens - 1) / kTokens);
  // One pass: each row is packed, multiplied and transformed before the next.
  parallel_rows(
      ctx, kOp, rows,
      [&](int64_t begin, int64_t end) {
        kernels::linear_float(kern, xdata, beta, *weights, scale, bias, y, begin, end);
      },
      kTokens);
}

}  // namespace ort
}  // namespace scales_edge
