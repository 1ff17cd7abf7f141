// scales_edge.WindowAttention (docs/ops.md, domain version 3): multi-head attention inside the
// (shifted, or enlarged) windows of a [N, H, W, 3C] map of per-pixel q | k | v, written back in
// the same pixel layout. The windows, the roll of shifted windows and the zero padding of
// enlarged key windows are all indexing: no partition, roll or reverse of the map is ever stored.
#include <algorithm>
#include <string>
#include <vector>

#include "ops.h"

namespace scales_edge {
namespace ort {

namespace {

constexpr const char* kOp = WindowAttentionKernel::kName;

int64_t required_int(const Ort::ConstKernelInfo& info, const char* name) {
  const std::optional<int64_t> v = attr_int(info, kOp, name);
  if (!v) fail(kOp, std::string("attribute '") + name + "' is required");
  return *v;
}

void check_table(const TensorRef& t, int64_t heads) {
  expect_type(t, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, kOp, "bias_table");
  if (t.shape.size() != 2 || t.shape[0] < 1 || (heads >= 1 && t.shape[1] != heads))
    fail(kOp, "input 'bias_table' must be [T, num_heads] = [T, " + std::to_string(heads) +
                  "] with T >= 1, got shape " + shape_str(t.shape));
}

void check_index(const TensorRef& t, const kernels::AttentionGeometry& g) {
  expect_type(t, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, kOp, "bias_index");
  if (t.shape != std::vector<int64_t>{g.Nq, g.Nk})
    fail(kOp, "input 'bias_index' must have shape [window_size^2, key_window_size^2] = " +
                  shape_str({g.Nq, g.Nk}) + ", got " + shape_str(t.shape));
}

// The geometry of the attributes alone (the map's size taken as one window), for checks and for
// laying out a constant bias at kernel creation.
kernels::AttentionGeometry one_window(const kernels::AttentionGeometry& attrs) {
  kernels::AttentionGeometry g = attrs;
  g.N = 1;
  g.H = g.W = attrs.ws;
  g.C3 = 3 * attrs.heads;
  return g;
}

}  // namespace

WindowAttentionKernel::WindowAttentionKernel(const OrtKernelInfo* raw_info)
    : picker_(Ort::ConstKernelInfo(raw_info), kOp) {
  Ort::ConstKernelInfo info(raw_info);
  if (info.GetInputCount() != 3)
    fail(kOp, "expects 3 inputs (QKV, bias_table, bias_index), got " +
                  std::to_string(info.GetInputCount()));
  attrs_.heads = required_int(info, "num_heads");
  attrs_.ws = required_int(info, "window_size");
  attrs_.shift = attr_int(info, kOp, "shift_size").value_or(0);
  attrs_.kws = attr_int(info, kOp, "key_window_size").value_or(attrs_.ws);
  const std::optional<float> scale = attr_float(info, kOp, "scale");
  if (!scale) fail(kOp, "attribute 'scale' is required");
  attrs_.scale = *scale;
  kernels::AttentionGeometry g = one_window(attrs_);
  const std::string problem = kernels::check_attention_geometry(g);
  if (!problem.empty()) fail(kOp, problem);

  std::optional<TensorRef> table = constant_input(info, 1, kOp, "bias_table");
  std::optional<TensorRef> index = constant_input(info, 2, kOp, "bias_index");
  if (table) check_table(*table, attrs_.heads);
  if (index) check_index(*index, g);
  if (table && index) {
    // laid out for every path that may run (the forced one, or each one measured)
    for (kernels::Path p : kernels::supported_paths()) {
      if (picker_.forced() && picker_.forced()->path != p) continue;
      const kernels::FloatKernels& f = kernels::float_kernels(p);
      std::optional<kernels::AttentionBias>& bias = biases_[static_cast<int>(f.path)];
      bias.emplace();
      const std::string bad = kernels::expand_attention_bias(
          g, table->as<float>(), table->shape[0], index->as<int64_t>(), f.query_block, &*bias);
      if (!bad.empty()) fail(kOp, bad);
    }
  }
}

const kernels::AttentionBias& WindowAttentionKernel::bias_for(Ort::KernelContext& ctx,
                                                              const kernels::AttentionGeometry& g,
                                                              const kernels::FloatKernels& f,
                                                              kernels::AttentionBias& local) const {
  if (const std::optional<kernels::AttentionBias>& b = biases_[static_cast<int>(f.path)]) return *b;
  const TensorRef table = tensor_ref(ctx.GetInput(1), kOp, "bias_table");
  const TensorRef index = tensor_ref(ctx.GetInput(2), kOp, "bias_index");
  check_table(table, g.heads);
  check_index(index, g);
  const std::string bad = kernels::expand_attention_bias(
      g, table.as<float>(), table.shape[0], index.as<int64_t>(), f.query_block, &local);
  if (!bad.empty()) fail(kOp, bad);
  return local;
}

void WindowAttentionKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext ctx(raw_context);
  if (ctx.GetInputCount() != 3)
    fail(kOp, "expects 3 inputs (QKV, bias_table, bias_index), got " +
                  std::to_string(ctx.GetInputCount()));
  const TensorRef x = tensor_ref(ctx.GetInput(0), kOp, "QKV");
  expect_type(x, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, kOp, "QKV");
  if (x.shape.size() != 4)
    fail(kOp, "input 'QKV' must be 4-D [N, H, W, 3C], got shape " + shape_str(x.shape));
  kernels::AttentionGeometry g = attrs_;
  g.N = x.shape[0];
  g.H = x.shape[1];
  g.W = x.shape[2];
  g.C3 = x.shape[3];
  if (g.N < 1) fail(kOp, "the output would be empty: input 'QKV' has batch size 0");
  const std::string problem = kernels::check_attention_geometry(g);
  if (!problem.empty()) fail(kOp, problem + " (QKV " + shape_str(x.shape) + ")");

  Ort::UnownedValue y_value = ctx.GetOutput(0, std::vector<int64_t>{g.N, g.H, g.W, g.C});
  float* y = y_value.GetTensorMutableData<float>();
  const float* qkv = x.as<float>();
  const int64_t windows = g.N * g.windows;
  // The path is measured per geometry (a window per unit; a measurement writes windows that the
  // real run writes again), or forced.
  auto windows_on = [&](const kernels::IsaKernels& kp, int64_t units) {
    const kernels::FloatKernels& f = kernels::float_kernels(kp.path);
    kernels::AttentionBias local;
    kernels::window_attention(f, g, qkv, bias_for(ctx, g, f, local), y, 0,
                              std::min(windows, units));
  };
  const std::string shape = "heads=" + std::to_string(g.heads) + " ws=" + std::to_string(g.ws) +
                            " shift=" + std::to_string(g.shift) + " kws=" + std::to_string(g.kws) +
                            " C=" + std::to_string(g.C);
  const kernels::IsaKernels& k =
      picker_.pick(std::string(kOp) + " " + shape, shape, windows_on, windows);
  const kernels::FloatKernels& f = kernels::float_kernels(k.path);
  kernels::AttentionBias local;
  const kernels::AttentionBias& bias = bias_for(ctx, g, f, local);
  parallel_rows(ctx, kOp, windows, [&](int64_t begin, int64_t end) {
    kernels::window_attention(f, g, qkv, bias, y, begin, end);
  });
}

}  // namespace ort
}  // namespace scales_edge
