// scales_edge.BinaryLinear (docs/ops.md):
//   Y[..., m] = float(sum_k sign(X[..., k] - beta[k]) * Wsign[m, k]) * scale[m] + bias[m]
// and LinearCore, the part of it that ScalesLinear (version 3) shares.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "ops.h"

namespace scales_edge {
namespace ort {

namespace {

int64_t words_for(int64_t bits) { return (bits + 63) / 64; }

void check_weights(const char* kOp, const TensorRef& w, int64_t k) {
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

LinearCore::LinearCore(const OrtKernelInfo* raw_info, const char* op, size_t max_inputs)
    : op_(op), params_{op, "K", "features", max_inputs}, picker_(Ort::ConstKernelInfo(raw_info), op) {
  Ort::ConstKernelInfo info(raw_info);

  params_.check_node_inputs(info);

  const int64_t k = params_.read_beta(info);  // -1 unless beta is constant
  if (k > std::numeric_limits<int32_t>::max())
    fail(op, "K = " + std::to_string(k) + " exceeds the int32 accumulator range");
  int64_t m = -1;  // M of a constant W
  if (std::optional<TensorRef> w = constant_input(info, 2, op, "W")) {
    check_weights(op, *w, k);
    m = w->shape[0];
    if (k >= 1) weights_ = kernels::relayout_linear_weights(w->as<uint64_t>(), m, k);
  }
  params_.read_scale_bias(info, m);
}

void LinearCore::prepare(Ort::KernelContext& ctx, Call& call) const {
  const char* kOp = op_;
  // ---- X [..., K]
  const TensorRef x = params_.input_x(ctx);
  if (x.shape.size() < 2)
    fail(kOp, "input 'X' must have rank >= 2 [..., K], got shape " + shape_str(x.shape));
  const int64_t k = x.shape.back();
  if (k < 1) fail(kOp, "input 'X' has shape " + shape_str(x.shape) + "; K must be >= 1");
  if (k > std::numeric_limits<int32_t>::max())
    fail(kOp, "K = " + std::to_string(k) + " exceeds the int32 accumulator range");
  call.rows = x.size / k;
  if (call.rows < 1)
    fail(kOp, "the output would be empty: input 'X' has shape " + shape_str(x.shape));
  call.x = x.as<float>();
  call.x_shape = x.shape;

  // ---- beta
  call.beta = params_.beta(ctx, k, x.shape);

  // ---- W
  if (weights_) {
    call.weights = &*weights_;
  } else {
    const TensorRef w = tensor_ref(ctx.GetInput(2), kOp, "W");
    check_weights(kOp, w, k);
    call.local_weights = kernels::relayout_linear_weights(w.as<uint64_t>(), w.shape[0], k);
    call.weights = &call.local_weights;
  }

  // ---- scale, bias
  call.scale = params_.scale(ctx, call.weights->M);
  call.bias = params_.bias(ctx, call.weights->M);
  call.y_shape = x.shape;
  call.y_shape.back() = call.weights->M;
}

const kernels::IsaKernels& LinearCore::pick(
    const Call& call, const std::string& what,
    const std::function<void(const kernels::IsaKernels&, int64_t)>& run) const {
  const std::string shape = "K=" + std::to_string(call.weights->K) +
                            " M=" + std::to_string(call.weights->M) + what;
  return picker_.pick(std::string(op_) + " " + shape, shape, run,
                      (call.rows + kTokens - 1) / kTokens);
}

void BinaryLinearKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);
  LinearCore::Call call;
  core_.prepare(ctx, call);
  const kernels::LinearWeights& w = *call.weights;

  Ort::UnownedValue y_value = ctx.GetOutput(0, call.y_shape);
  float* y = y_value.GetTensorMutableData<float>();
  const float* xdata = call.x;
  const int64_t rows = call.rows;
  // kTokens rows per unit on path kp (a measurement writes rows that the real run writes again).
  constexpr int64_t kTokens = LinearCore::kTokens;
  auto rows_on = [&](const kernels::IsaKernels& kp, int64_t units) {
    kernels::linear_float(kp, xdata, call.beta, w, call.scale, call.bias, y, 0,
                          std::min(rows, units * kTokens));
  };
  const kernels::IsaKernels& kern = core_.pick(call, "", rows_on);
  // One pass: each row is packed, multiplied and transformed before the next.
  parallel_rows(
      ctx, kName, rows,
      [&](int64_t begin, int64_t end) {
        kernels::linear_float(kern, xdata, call.beta, w, call.scale, call.bias, y, begin, end);
      },
      kTokens);
}

}  // namespace ort
}  // namespace scales_edge
