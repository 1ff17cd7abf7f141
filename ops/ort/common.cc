#include "common.h"

#include <cstring>

namespace scales_edge {
namespace ort {

int g_api_version = 0;

namespace {
bool is_missing_attribute(const Ort::Exception& e) {
  // ONNX Runtime reports an absent attribute as "No attribute with name:'x'is defined." (up to
  // 1.2x) or "No attribute with this name is defined." (newer); a present attribute of another
  // type gives a different message. The C API has no call to test for presence.
  return std::strstr(e.what(), "No attribute with") != nullptr;
}
}  // namespace

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
  try {
    return info.GetAttributes<int64_t>(name);
  } catch (const Ort::Exception& e) {
    if (is_missing_attribute(e)) return std::nullopt;
    fail(op, std::string("attribute '") + name + "' must be a list of ints (" + e.what() + ")");
  }
}

std::optional<int64_t> attr_int(const Ort::ConstKernelInfo& info, const char* op,
                                const char* name) {
  try {
    return info.GetAttribute<int64_t>(name);
  } catch (const Ort::Exception& e) {
    if (is_missing_attribute(e)) return std::nullopt;
    fail(op, std::string("attribute '") + name + "' must be an int (" + e.what() + ")");
  }
}

bool has_string_attr(const Ort::ConstKernelInfo& info, const char* name) {
  try {
    (void)info.GetAttribute<std::string>(name);
    return true;
  } catch (const Ort::Exception& e) {
    return !is_missing_attribute(e);
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

const kernels::IsaKernels& select_kernels_or_fail(const char* op) {
  std::string error;
  const kernels::IsaKernels* k = kernels::select_kernels(nullptr, &error);
  if (!k) fail(op, "cannot choose a kernel: " + error);
  return *k;
}

}  // namespace ort
}  // namespace scales_edge
