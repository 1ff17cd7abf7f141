// scales_edge.BinaryConv2d (docs/ops.md):
//   Y = conv2d(sign(X - beta), sign(W)) * scale[m] + bias[m], exact zero padding.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "ops.h"

namespace scales_edge {
namespace ort {

namespace {

// Every size attribute is below 2^31 (docs/ops.md), so sums and products of them stay in int64.
constexpr int64_t kMaxAttribute = (int64_t{1} << 31) - 1;

std::string bounds_str(int64_t min_value) {
  return "from " + std::to_string(min_value) + " to " + std::to_string(kMaxAttribute);
}

std::vector<int64_t> ints_or(const Ort::ConstKernelInfo& info, const char* kOp, const char* name,
                             size_t count, int64_t fallback, int64_t min_value) {
  std::optional<std::vector<int64_t>> v = attr_ints(info, kOp, name);
  if (!v) return std::vector<int64_t>(count, fallback);
  if (v->size() != count)
    fail(kOp, std::string("attribute '") + name + "' must have " + std::to_string(count) +
                  " values, got " + shape_str(*v));
  for (int64_t x : *v)
    if (x < min_value || x > kMaxAttribute)
      fail(kOp, std::string("attribute '") + name + "' = " + shape_str(*v) + " is invalid; each value must be " +
                    bounds_str(min_value));
  return *v;
}

int64_t words_for(int64_t bits) { return (bits + 63) / 64; }

// Checks a packed-weight tensor against the attributes and (when known, c >= 1) the channel count.
void check_weights(const char* kOp, const TensorRef& w, int64_t kh, int64_t kw, int64_t c) {
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

ConvCore::ConvCore(const OrtKernelInfo* raw_info, const char* op, size_t max_inputs)
    : op_(op), params_{op, "C", "channels", max_inputs},
      picker_(Ort::ConstKernelInfo(raw_info), op) {
  const char* kOp = op;
  Ort::ConstKernelInfo info(raw_info);
  kernels_ = &kernels::layout_kernels(picker_.forced());

  // ---- attributes
  std::optional<std::vector<int64_t>> ks = attr_ints(info, kOp, "kernel_shape");
  if (!ks) fail(kOp, "attribute 'kernel_shape' is required");
  if (ks->size() != 2 || (*ks)[0] < 1 || (*ks)[1] < 1 || (*ks)[0] > kMaxAttribute || (*ks)[1] > kMaxAttribute)
    fail(kOp, "attribute 'kernel_shape' = " + shape_str(*ks) + " is invalid; need [kH, kW], each " + bounds_str(1));
  kH_ = (*ks)[0];
  kW_ = (*ks)[1];
  const std::vector<int64_t> strides = ints_or(info, kOp, "strides", 2, 1, 1);
  const std::vector<int64_t> pads = ints_or(info, kOp, "pads", 4, 0, 0);
  const std::vector<int64_t> dilations = ints_or(info, kOp, "dilations", 2, 1, 1);
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

  // ---- inputs
  params_.check_node_inputs(info);

  // ---- constant initializers: read and check once, re-lay out W once
  const int64_t c = params_.read_beta(info);  // -1 unless beta is constant
  int64_t m = -1;                             // M of a constant W
  if (std::optional<TensorRef> w = constant_input(info, 2, kOp, "W")) {
    check_weights(kOp, *w, kH_, kW_, c);
    m = w->shape[0];
    if (c >= 1)
      weights_ = kernels::relayout_conv_weights(*kernels_, w->as<uint64_t>(), m, kH_, kW_, c);
  }
  params_.read_scale_bias(info, m);
}

void ConvCore::prepare(Ort::KernelContext& ctx, Call& call) const {
  const char* kOp = op_;
  // ---- X
  const TensorRef x = params_.input_x(ctx);
  if (x.shape.size() != 4)
    fail(kOp, "input 'X' must be 4-D [N, C, H, W], got " + std::to_string(x.shape.size()) +
                  "-D shape " + shape_str(x.shape));
  kernels::ConvGeometry& g = call.g;
  g.N = x.shape[0];
  g.C = x.shape[1];
  g.H = x.shape[2];
  g.W = x.shape[3];
  if (g.C < 1 || g.H < 1 || g.W < 1)
    fail(kOp, "input 'X' has shape " + shape_str(x.shape) + "; C, H and W must be >= 1");
  if (g.N < 1) fail(kOp, "the output would be empty: input 'X' has batch size 0");
  call.x = x.as<float>();
  call.x_shape = x.shape;

  // ---- beta
  call.beta = params_.beta(ctx, g.C, x.shape);

  // ---- W
  if (weights_) {
    call.weights = &*weights_;  // relaid out at creation for C = len(beta), checked equal above
  } else {
    const TensorRef w = tensor_ref(ctx.GetInput(2), kOp, "W");
    check_weights(kOp, w, kH_, kW_, g.C);
    call.local_weights =
        kernels::relayout_conv_weights(*kernels_, w.as<uint64_t>(), w.shape[0], kH_, kW_, g.C);
    call.weights = &call.local_weights;
  }
  g.M = call.weights->M;

  // ---- scale, bias
  call.scale = params_.scale(ctx, g.M);
  call.bias = params_.bias(ctx, g.M);

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
}

const kernels::IsaKernels& ConvCore::pick(
    const Call& call, const std::string& what,
    const std::function<void(const kernels::IsaKernels&, int64_t)>& run) const {
  const kernels::ConvGeometry& g = call.g;
  char shape[320];
  std::snprintf(shape, sizeof shape,
                "C=%lld M=%lld k=%lldx%lld s=%lld,%lld p=%lld,%lld,%lld,%lld d=%lld,%lld H=%lld W=%lld%s%s",
                (long long)g.C, (long long)g.M, (long long)g.kH, (long long)g.kW, (long long)g.sH,
                (long long)g.sW, (long long)g.pT, (long long)g.pL, (long long)g.pB, (long long)g.pR,
                (long long)g.dH, (long long)g.dW, (long long)g.H, (long long)g.W,
                what.empty() ? "" : " ", what.c_str());
  return picker_.pick(std::string(op_) + " " + shape, shape, run, g.OH);
}

void BinaryConv2dKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);
  ConvCore::Call call;
  core_.prepare(ctx, call);
  const kernels::ConvGeometry& g = call.g;

  // ---- run: pack X to [N, H, W, CW] bits, then convolve; both split over ORT's thread pool
  Ort::UnownedValue y_value = ctx.GetOutput(0, std::vector<int64_t>{g.N, g.M, g.OH, g.OW});
  float* y = y_value.GetTensorMutableData<float>();
  std::vector<uint64_t> xp(static_cast<size_t>(g.N * g.H * g.W * g.CW));
  // Rows of the op on path kp: the packing of the input rows they read, then the rows (a
  // measurement writes rows that the real run writes again).
  auto rows_on = [&](const kernels::IsaKernels& kp, int64_t rows) {
    const int64_t r = std::min(rows, g.OH), oh0 = (g.OH - r) / 2;
    kernels::pack_nchw(kp, call.x, call.beta, 1, g.C, g.H, g.W, xp.data(), 0,
                       std::min(g.H, r * g.sH));
    kernels::conv_float(kp, g, xp.data(), *call.weights, call.scale, call.bias, y, oh0, oh0 + r);
  };
  const kernels::IsaKernels& k = core_.pick(call, "", rows_on);
  parallel_rows(ctx, kName, g.N * g.H, [&](int64_t begin, int64_t end) {
    kernels::pack_nchw(k, call.x, call.beta, g.N, g.C, g.H, g.W, xp.data(), begin, end);
  });
  parallel_rows(
      ctx, kName, g.N * g.OH,
      [&](int64_t begin, int64_t end) {
        kernels::conv_float(k, g, xp.data(), *call.weights, call.scale, call.bias, y, begin, end);
      },
      kernels::kRowGrain);
}

}  // namespace ort
}  // namespace scales_edge
