#include "common.h"

#include <cstring>

namespace scales_edge {
namespace ort {

int g_api_version = 0;

bool is_missing_attribute(const char* message) {
  // ONNX Runtime reports an absent attribute as "No attribute with name:'x'is defined." (up to
  // 1.2x) or "No attribute with this name is defined." (newer); a present attribute of another
  // type gives a different message. The C API has no call to test for presence.
  return message != nullptr && std::strstr(message, "No attribute with") != nullptr;
}

const char* type_name(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return "uint16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return "string";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return "uint32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return "uint64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    default: return "an unsupported element type";
  }
}

std::optional<std::vector<int64_t>> attr_ints(const Ort::ConstKernelInfo& info, const char* op,
                                              const char* name) {
  std::vector<int64_t> values;
  try {
    values = info.GetAttributes<int64_t>(name);
  } catch (const Ort::Exception& e) {
    if (is_missing_attribute(e.what())) return std::nullopt;
    fail(op, std::string("attribute '") + name + "' must be a list of ints (" + e.what() + ")");
  }
  if (values.empty()) {
    // ORT reads the ints field of whatever attribute has the name: a float list, a single int or a
    // string come back as an empty list. Say which.
    const std::string what = std::string("attribute '") + name + "' must be a list of ints, got ";
    if (attr_int(info, op, name, /*quiet=*/true)) fail(op, what + "a single int");
    bool floats = false;
    try {
      floats = !info.GetAttributes<float>(name).empty();
    } catch (const Ort::Exception&) {
    }
    fail(op, what + (floats ? "floats" : "an empty list or a value of another type"));
  }
  return values;
}

std::optional<int64_t> attr_int(const Ort::ConstKernelInfo& info, const char* op,
                                const char* name, bool quiet) {
  try {
    return info.GetAttribute<int64_t>(name);
  } catch (const Ort::Exception& e) {
    if (quiet || is_missing_attribute(e.what())) return std::nullopt;
    fail(op, std::string("attribute '") + name + "' must be an int (" + e.what() + ")");
  }
}

std::optional<float> attr_float(const Ort::ConstKernelInfo& info, const char* op,
                                const char* name) {
  try {
    return info.GetAttribute<float>(name);
  } catch (const Ort::Exception& e) {
    if (is_missing_attribute(e.what())) return std::nullopt;
    fail(op, std::string("attribute '") + name + "' must be a float (" + e.what() + ")");
  }
}

std::optional<std::string> attr_string(const Ort::ConstKernelInfo& info, const char* op,
                                       const char* name) {
  try {
    return info.GetAttribute<std::string>(name);
  } catch (const Ort::Exception& e) {
    if (is_missing_attribute(e.what())) return std::nullopt;
    fail(op, std::string("attribute '") + name + "' must be a string (" + e.what() + ")");
  }
}

TensorRef tensor_ref(const Ort::ConstValue& v, const char* op, const char* input_name) {
  if (!v || !v.IsTensor()) fail(op, std::string("input '") + input_name + "' must be a tensor");
  TensorRef t;
  const auto info = v.GetTensorTypeAndShapeInfo();
  t.type = info.GetElementType();
  t.shape = info.GetShape();
  t.size = static_cast<int64_t>(info.GetElementCount());
  t.data = v.GetTensorRawData();
  return t;
}

std::optional<TensorRef> constant_input(const Ort::ConstKernelInfo& info, size_t index,
                                        const char* op, const char* input_name) {
  int is_constant = 0;
  Ort::ConstValue v = info.GetTensorConstantInput(index, &is_constant);
  if (!is_constant || !v) return std::nullopt;
  return tensor_ref(v, op, input_name);
}

bool node_has_input(const Ort::ConstKernelInfo& info, size_t index) {
  if (info.GetInputCount() <= index) return false;
  return !info.GetInputName(index).empty();
}

void expect_type(const TensorRef& t, ONNXTensorElementDataType type, const char* op,
                 const char* input_name) {
  if (t.type != type)
    fail(op, std::string("input '") + input_name + "' must be " + type_name(type) + ", got " +
                 type_name(t.type));
}

void expect_vector(const TensorRef& t, int64_t n, const char* op, const char* input_name,
                   const char* what) {
  expect_type(t, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, op, input_name);
  if (t.shape.size() != 1 || (n >= 0 && t.shape[0] != n))
    fail(op, std::string("input '") + input_name + "' must have shape [" + what + "]" +
                 (n >= 0 ? " = [" + std::to_string(n) + "]" : std::string()) + ", got " +
                 shape_str(t.shape));
}

const float* float_vector_input(Ort::KernelContext& ctx, size_t index, const char* op,
                                const char* input_name, int64_t n, const char* what,
                                int64_t* length) {
  const TensorRef t = tensor_ref(ctx.GetInput(index), op, input_name);
  expect_vector(t, n, op, input_name, what);
  if (t.shape[0] < 1) fail(op, std::string("input '") + input_name + "' is empty");
  if (length) *length = t.shape[0];
  return t.as<float>();
}

bool paired_inputs(const Ort::ConstKernelInfo& info, const char* op, size_t i, size_t j,
                   const char* name_i, const char* name_j) {
  const bool given = node_has_input(info, i);
  if (node_has_input(info, j) != given)
    fail(op, std::string("inputs '") + name_i + "' (" + std::to_string(i) + ") and '" + name_j +
                 "' (" + std::to_string(j) + ") must be given together");
  return given;
}

// ---- ConstParams

namespace {
[[noreturn]] void fail_input_count(const char* op, size_t inputs, size_t max_inputs) {
  fail(op, max_inputs == 5
               ? "expects 4 or 5 inputs (X, beta, W, scale[, bias]), got " + std::to_string(inputs)
               : "expects 4 to " + std::to_string(max_inputs) +
                     " inputs (X, beta, W, scale[, bias, ...]), got " + std::to_string(inputs));
}
}  // namespace

void ConstParams::check_node_inputs(const Ort::ConstKernelInfo& info) {
  const size_t inputs = info.GetInputCount();
  if (inputs < 4 || inputs > max_inputs_) fail_input_count(op_, inputs, max_inputs_);
  bias_input_ = node_has_input(info, 4);
}

int64_t ConstParams::read_beta(const Ort::ConstKernelInfo& info) {
  std::optional<TensorRef> beta = constant_input(info, 1, op_, "beta");
  if (!beta) return -1;
  expect_vector(*beta, -1, op_, "beta", dim_);
  const int64_t n = beta->shape[0];
  if (n < 1)
    fail(op_, std::string("input 'beta' is empty; need [") + dim_ + "] with " + dim_ + " >= 1");
  beta_.present = true;
  beta_.values.assign(beta->as<float>(), beta->as<float>() + n);
  return n;
}

void ConstParams::read_scale_bias(const Ort::ConstKernelInfo& info, int64_t m) {
  if (std::optional<TensorRef> s = constant_input(info, 3, op_, "scale")) {
    expect_vector(*s, m, op_, "scale", "M");
    scale_.present = true;
    scale_.values.assign(s->as<float>(), s->as<float>() + s->size);
  }
  if (bias_input_) {
    if (std::optional<TensorRef> b = constant_input(info, 4, op_, "bias")) {
      expect_vector(*b, m, op_, "bias", "M");
      bias_.present = true;
      bias_.values.assign(b->as<float>(), b->as<float>() + b->size);
    }
  }
  if (scale_.present && bias_.present && scale_.values.size() != bias_.values.size())
    fail(op_, "inputs 'scale' [" + std::to_string(scale_.values.size()) + "] and 'bias' [" +
                  std::to_string(bias_.values.size()) + "] must both have shape [M]");
}

TensorRef ConstParams::input_x(const Ort::KernelContext& ctx) const {
  const size_t inputs = ctx.GetInputCount();
  if (inputs < 4) fail_input_count(op_, inputs, max_inputs_);
  const TensorRef x = tensor_ref(ctx.GetInput(0), op_, "X");
  expect_type(x, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, op_, "X");
  return x;
}

const float* ConstParams::beta(const Ort::KernelContext& ctx, int64_t n,
                               const std::vector<int64_t>& x_shape) const {
  auto mismatch = [&](const std::vector<int64_t>& beta_shape) {
    fail(op_, "input 'beta' has shape " + shape_str(beta_shape) + " but X " + shape_str(x_shape) +
                  " has " + dim_ + " = " + std::to_string(n) + " " + dim_noun_ +
                  "; beta must be [" + dim_ + "]");
  };
  if (beta_.present) {
    const int64_t size = static_cast<int64_t>(beta_.values.size());
    if (size != n) mismatch({size});
    return beta_.values.data();
  }
  const TensorRef b = tensor_ref(ctx.GetInput(1), op_, "beta");
  expect_type(b, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, op_, "beta");
  if (b.shape.size() != 1 || b.shape[0] != n) mismatch(b.shape);
  return b.as<float>();
}

const float* ConstParams::scale(const Ort::KernelContext& ctx, int64_t m) const {
  return vector_m(ctx, scale_, 3, "scale", m);
}

const float* ConstParams::bias(const Ort::KernelContext& ctx, int64_t m) const {
  if (!bias_.present && (ctx.GetInputCount() <= 4 || !ctx.GetInput(4))) return nullptr;
  return vector_m(ctx, bias_, 4, "bias", m);
}

// A float input [m]: the constant copied at creation, else input `index` of this call.
const float* ConstParams::vector_m(const Ort::KernelContext& ctx, const Floats& constant,
                                   size_t index, const char* name, int64_t m) const {
  if (constant.present) {
    if (static_cast<int64_t>(constant.values.size()) != m)
      fail(op_, std::string("input '") + name + "' must have shape [M] = [" + std::to_string(m) +
                    "], got [" + std::to_string(constant.values.size()) + "]");
    return constant.values.data();
  }
  const TensorRef t = tensor_ref(ctx.GetInput(index), op_, name);
  expect_vector(t, m, op_, name, "M");
  return t.as<float>();
}

const kernels::IsaKernels& select_kernels_or_fail(const char* op) {
  std::string error;
  const kernels::IsaKernels* k = kernels::select_kernels(nullptr, &error);
  if (!k) fail(op, "cannot choose a kernel: " + error);
  return *k;
}

}  // namespace ort
}  // namespace scales_edge
