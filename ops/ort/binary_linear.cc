// scales_edge.BinaryLinear (docs/ops.md):
//   Y[..., m] = float(sum_k sign(X[..., k] - beta[k]) * Wsign[m, k]) * scale[m] + bias[m]
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

BinaryLinearKernel::BinaryLinearKernel(const OrtKernelInfo* raw_info) {
  Ort::ConstKernelInfo info(raw_info);
  kernels_ = &select_kernels_or_fail(kOp);

  const size_t inputs = info.GetInputCount();
  if (inputs < 4 || inputs > 5)
    fail(kOp, "expects 4 or 5 inputs (X, beta, W, scale[, bias]), got " + std::to_string(inputs));
  bias_input_ = node_has_input(info, 4);

  int64_t k = -1;
  if (std::optional<TensorRef> beta = constant_input(info, 1, kOp, "beta")) {
    expect_vector(*beta, -1, kOp, "beta", "K");
    k = beta->shape[0];
    if (k < 1) fail(kOp, "input 'beta' is empty; need [K] with K >= 1");
    if (k > std::numeric_limits<int32_t>::max())
      fail(kOp, "K = " + std::to_string(k) + " exceeds the int32 accumulator range");
    beta_.present = true;
    beta_.values.assign(beta->as<float>(), beta->as<float>() + k);
  }
  if (std::optional<TensorRef> w = constant_input(info, 2, kOp, "W")) {
    check_weights(*w, k);
    const_m_ = w->shape[0];
    if (k >= 1) weights_ = kernels::relayout_linear_weights(w->as<uint64_t>(), const_m_, k);
  }
  if (std::optional<TensorRef> s = constant_input(info, 3, kOp, "scale")) {
    expect_vector(*s, const_m_, kOp, "scale", "M");
    scale_.present = true;
    scale_.values.assign(s->as<float>(), s->as<float>() + s->size);
  }
  if (bias_input_) {
    if (std::optional<TensorRef> b = constant_input(info, 4, kOp, "bias")) {
      expect_vector(*b, const_m_, kOp, "bias", "M");
      bias_.present = true;
      bias_.values.assign(b->as<float>(), b->as<float>() + b->size);
    }
  }
  if (scale_.present && bias_.present && scale_.values.size() != bias_.values.size())
    fail(kOp, "inputs 'scale' [" + std::to_string(scale_.values.size()) + "] and 'bias' [" +
                  std::to_string(bias_.values.size()) + "] must both have shape [M]");
}

void BinaryLinearKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);
  const size_t inputs = ctx.GetInputCount();
  if (inputs < 4)
    fail(kOp, "expects 4 or 5 inputs (X, beta, W, scale[, bias]), got " + std::to_string(inputs));

  // ---- X [..., K]
  const TensorRef x = tensor_ref(ctx.GetInput(0), kOp, "X");
  expect_type(x, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, kOp, "X");
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
  const float* beta = nullptr;
  if (beta_.present) {
    if (static_cast<int64_t>(beta_.values.size()) != k)
      fail(kOp, "input 'beta' has shape [" + std::to_string(beta_.values.size()) + "] but X " +
                    shape_str(x.shape) + " has K = " + std::to_string(k) +
                    " features; beta must be [K]");
    beta = beta_.values.data();
  } else {
    const TensorRef b = tensor_ref(ctx.GetInput(1), kOp, "beta");
    expect_type(b, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, kOp, "beta");
    if (b.shape.size() != 1 || b.shape[0] != k)
      fail(kOp, "input 'beta' has shape " + shape_str(b.shape) + " but X " + shape_str(x.shape) +
                    " has K = " + std::to_string(k) + " features; beta must be [K]");
    beta = b.as<float>();
  }

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
  const float* scale = nullptr;
  if (scale_.present) {
    if (static_cast<int64_t>(scale_.values.size()) != m)
      fail(kOp, "input 'scale' must have shape [M] = [" + std::to_string(m) + "], got [" +
                    std::to_string(scale_.values.size()) + "]");
    scale = scale_.values.data();
  } else {
    const TensorRef s = tensor_ref(ctx.GetInput(3), kOp, "scale");
    expect_vector(s, m, kOp, "scale", "M");
    scale = s.as<float>();
  }
  const float* bias = nullptr;
  if (bias_.present) {
    if (static_cast<int64_t>(bias_.values.size()) != m)
      fail(kOp, "input 'bias' must have shape [M] = [" + std::to_string(m) + "], got [" +
                    std::to_string(bias_.values.size()) + "]");
    bias = bias_.values.data();
  } else if (inputs > 4) {
    const Ort::ConstValue bv = ctx.GetInput(4);
    if (bv) {
      const TensorRef b = tensor_ref(bv, kOp, "bias");
      expect_vector(b, m, kOp, "bias", "M");
      bias = b.as<float>();
    }
  }

  // ---- run
  std::vector<int64_t> y_shape = x.shape;
  y_shape.back() = m;
  Ort::UnownedValue y_value = ctx.GetOutput(0, y_shape);
  float* y = y_value.GetTensorMutableData<float>();
  std::vector<uint64_t> xp(static_cast<size_t>(rows * weights->KW));
  const kernels::IsaKernels& kern = *kernels_;
  const float* xdata = x.as<float>();
  parallel_rows(ctx, kOp, rows, [&](int64_t begin, int64_t end) {
    kernels::pack_rows(kern, xdata, beta, k, xp.data(), begin, end);
  });
  parallel_rows(ctx, kOp, rows, [&](int64_t begin, int64_t end) {
    kernels::gemm_float(kern, xp.data(), *weights, scale, bias, y, begin, end);
  });
}

OrtStatusPtr BinaryLinearOp::CreateKernelV2(const OrtApi&, const OrtKernelInfo* info,
                                            void** kernel) const {
  *kernel = nullptr;
  return guarded(BinaryLinearKernel::kName, [&] { *kernel = new BinaryLinearKernel(info); });
}

}  // namespace ort
}  // namespace scales_edge
