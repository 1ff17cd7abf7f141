// scales_edge.BinaryConv2d (docs/ops.md):
//   Y = conv2d(sign(X - beta), sign(W)) * scale[m] + bias[m], exact zero padding.
#include <string>
#include <vector>

#include "ops.h"

namespace scales_edge {
namespace ort {

namespace {

constexpr const char* kOp = BinaryConv2dKernel::kName;

std::vector<int64_t> ints_or(const Ort::ConstKernelInfo& info, const char* name, size_t count,
                             int64_t fallback, int64_t min_value) {
  std::optional<std::vector<int64_t>> v = attr_ints(info, kOp, name);
  if (!v) return std::vector<int64_t>(count, fallback);
  if (v->size() != count)
    fail(kOp, std::string("attribute '") + name + "' must have " + std::to_string(count) +
                  " values, got " + shape_str(*v));
  for (int64_t x : *v)
    if (x < min_value)
      fail(kOp, std::string("attribute '") + name + "' = " + shape_str(*v) +
                    " is invalid; each value must be >= " + std::to_string(min_value));
  return *v;
}

int64_t words_for(int64_t bits) { return (bits + 63) / 64; }

// Checks a packed-weight tensor against the attributes and (when known, c >= 1) the channel count.
void check_weights(const TensorRef& w, int64_t kh, int64_t kw, int64_t c) {
  expect_type(w, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, kOp, "W");
  if (w.shape.size() != 4)
    fail(kOp, "input 'W' must be 4-D [M, kH, kW, ceil(C/64)], got shape " + shape_str(w.shape));
  if (w.shape[0] < 1)
    fail(kOp, "input 'W' has shape " + shape_str(w.shape) + ": needs at least one output channel");
  if (w.shape[1] != kh || w.shape[2] != kw)
    fail(kOp, "input 'W' has shape " + shape_str(w.shape) + " whose kernel dims (1-2) " +
                  shape_str({w.shape[1], w.shape[2]}) + " differ from kernel_shape " +
                  shape_str({kh, kw}));
  if (c >= 1 && w.shape[3] != words_for(c))
    fail(kOp, "input 'W' has shape " + shape_str(w.shape) + " but its last dim must be ceil(C/64) = " +
                  std::to_string(words_for(c)) + " for C = " + std::to_string(c) +
                  " input channels (packed-weight size mismatch)");
}

}  // namespace

BinaryConv2dKernel::BinaryConv2dKernel(const OrtKernelInfo* raw_info) {
  Ort::ConstKernelInfo info(raw_info);
  kernels_ = &select_kernels_or_fail(kOp);

  // ---- attributes
  std::optional<std::vector<int64_t>> ks = attr_ints(info, kOp, "kernel_shape");
  if (!ks) fail(kOp, "attribute 'kernel_shape' is required");
  if (ks->size() != 2 || (*ks)[0] < 1 || (*ks)[1] < 1)
    fail(kOp, "attribute 'kernel_shape' = " + shape_str(*ks) + " is invalid; need [kH, kW], each >= 1");
  kH_ = (*ks)[0];
  kW_ = (*ks)[1];
  const std::vector<int64_t> strides = ints_or(info, "strides", 2, 1, 1);
  const std::vector<int64_t> pads = ints_or(info, "pads", 4, 0, 0);
  const std::vector<int64_t> dilations = ints_or(info, "dilations", 2, 1, 1);
  sH_ = strides[0];
  sW_ = strides[1];
  pT_ = pads[0];
  pL_ = pads[1];
  pB_ = pads[2];
  pR_ = pads[3];
  dH_ = dilations[0];
  dW_ = dilations[1];
  if (std::optional<int64_t> group = attr_int(info, kOp, "group"); group && *group != 1)
    fail(kOp, "attribute 'group' = " + std::to_string(*group) + " is not supported; only group = 1");
  if (has_string_attr(info, "auto_pad"))
    fail(kOp, "attribute 'auto_pad' is not supported; give explicit 'pads'");

  // ---- inputs
  const size_t inputs = info.GetInputCount();
  if (inputs < 4 || inputs > 5)
    fail(kOp, "expects 4 or 5 inputs (X, beta, W, scale[, bias]), got " + std::to_string(inputs));
  bias_input_ = node_has_input(info, 4);

  // ---- constant initializers: read and check once, re-lay out W once
  int64_t c = -1;
  if (std::optional<TensorRef> beta = constant_input(info, 1, kOp, "beta")) {
    expect_vector(*beta, -1, kOp, "beta", "C");
    c = beta->shape[0];
    if (c < 1) fail(kOp, "input 'beta' is empty; need [C] with C >= 1");
    beta_.present = true;
    beta_.values.assign(beta->as<float>(), beta->as<float>() + c);
  }
  if (std::optional<TensorRef> w = constant_input(info, 2, kOp, "W")) {
    check_weights(*w, kH_, kW_, c);
    const_m_ = w->shape[0];
    if (c >= 1) weights_ = kernels::relayout_conv_weights(w->as<uint64_t>(), const_m_, kH_, kW_, c);
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

void BinaryConv2dKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);
  const size_t inputs = ctx.GetInputCount();
  if (inputs < 4)
    fail(kOp, "expects 4 or 5 inputs (X, beta, W, scale[, bias]), got " + std::to_string(inputs));

  // ---- X
  const TensorRef x = tensor_ref(ctx.GetInput(0), kOp, "X");
  expect_type(x, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, kOp, "X");
  if (x.shape.size() != 4)
    fail(kOp, "input 'X' must be 4-D [N, C, H, W], got " + std::to_string(x.shape.size()) +
                  "-D shape " + shape_str(x.shape));
  kernels::ConvGeometry g;
  g.N = x.shape[0];
  g.C = x.shape[1];
  g.H = x.shape[2];
  g.W = x.shape[3];
  if (g.C < 1 || g.H < 1 || g.W < 1)
    fail(kOp, "input 'X' has shape " + shape_str(x.shape) + "; C, H and W must be >= 1");
  if (g.N < 1) fail(kOp, "the output would be empty: input 'X' has batch size 0");

  // ---- beta
  const float* beta = nullptr;
  if (beta_.present) {
    if (static_cast<int64_t>(beta_.values.size()) != g.C)
      fail(kOp, "input 'beta' has shape [" + std::to_string(beta_.values.size()) +
                    "] but X " + shape_str(x.shape) + " has C = " + std::to_string(g.C) +
                    " channels; beta must be [C]");
    beta = beta_.values.data();
  } else {
    const TensorRef b = tensor_ref(ctx.GetInput(1), kOp, "beta");
    expect_type(b, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, kOp, "beta");
    if (b.shape.size() != 1 || b.shape[0] != g.C)
      fail(kOp, "input 'beta' has shape " + shape_str(b.shape) + " but X " + shape_str(x.shape) +
                    " has C = " + std::to_string(g.C) + " channels; beta must be [C]");
    beta = b.as<float>();
  }

  // ---- W
  kernels::ConvWeights local_weights;
  const kernels::ConvWeights* weights = nullptr;
  if (weights_) {
    weights = &*weights_;  // relaid out at creation for C = len(beta), checked equal above
  } else {
    const TensorRef w = tensor_ref(ctx.GetInput(2), kOp, "W");
    check_weights(w, kH_, kW_, g.C);
    local_weights = kernels::relayout_conv_weights(w.as<uint64_t>(), w.shape[0], kH_, kW_, g.C);
    weights = &local_weights;
  }
  g.M = weights->M;

  // ---- scale, bias
  const float* scale = nullptr;
  if (scale_.present) {
    if (static_cast<int64_t>(scale_.values.size()) != g.M)
      fail(kOp, "input 'scale' must have shape [M] = [" + std::to_string(g.M) + "], got [" +
                    std::to_string(scale_.values.size()) + "]");
    scale = scale_.values.data();
  } else {
    const TensorRef s = tensor_ref(ctx.GetInput(3), kOp, "scale");
    expect_vector(s, g.M, kOp, "scale", "M");
    scale = s.as<float>();
  }
  const float* bias = nullptr;
  if (bias_.present) {
    if (static_cast<int64_t>(bias_.values.size()) != g.M)
      fail(kOp, "input 'bias' must have shape [M] = [" + std::to_string(g.M) + "], got [" +
                    std::to_string(bias_.values.size()) + "]");
    bias = bias_.values.data();
  } else if (inputs > 4) {
    const Ort::ConstValue bv = ctx.GetInput(4);
    if (bv) {
      const TensorRef b = tensor_ref(bv, kOp, "bias");
      expect_vector(b, g.M, kOp, "bias", "M");
      bias = b.as<float>();
    }
  }

  // ---- geometry
  g.kH = kH_;
  g.kW = kW_;
  g.sH = sH_;
  g.sW = sW_;
  g.pT = pT_;
  g.pL = pL_;
  g.pB = pB_;
  g.pR = pR_;
  g.dH = dH_;
  g.dW = dW_;
  const std::string problem = kernels::check_conv_geometry(g);
  if (!problem.empty()) fail(kOp, problem + " (X " + shape_str(x.shape) + ")");

  // ---- run: pack X to [N, H, W, CW] bits, then convolve; both split over ORT's thread pool
  Ort::UnownedValue y_value = ctx.GetOutput(0, std::vector<int64_t>{g.N, g.M, g.OH, g.OW});
  float* y = y_value.GetTensorMutableData<float>();
  std::vector<uint64_t> xp(static_cast<size_t>(g.N * g.H * g.W * g.CW));
  const kernels::IsaKernels& k = *kernels_;
  const float* xdata = x.as<float>();
  parallel_rows(ctx, kOp, g.N * g.H, [&](int64_t begin, int64_t end) {
    kernels::pack_nchw(k, xdata, beta, g.N, g.C, g.H, g.W, xp.data(), begin, end);
  });
  parallel_rows(ctx, kOp, g.N * g.OH, [&](int64_t begin, int64_t end) {
    kernels::conv_float(k, g, xp.data(), *weights, scale, bias, y, begin, end);
  });
}

OrtStatusPtr BinaryConv2dOp::CreateKernelV2(const OrtApi&, const OrtKernelInfo* info,
                                            void** kernel) const {
  *kernel = nullptr;
  return guarded(BinaryConv2dKernel::kName, [&] { *kernel = new BinaryConv2dKernel(info); });
}

}  // namespace ort
}  // namespace scales_edge
