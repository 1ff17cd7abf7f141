// The scales_edge custom ops (docs/ops.md) as ONNX Runtime custom ops.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common.h"
#include "float_kernels.h"
#include "kernels.h"

namespace scales_edge {
namespace ort {

constexpr const char* kDomain = "scales_edge";
// The domain's current version (docs/ops.md). BinaryConv2d and BinaryLinear are unchanged since
// version 1; ScalesConv2d exists from version 2; ScalesLinear and WindowAttention from version 3.
constexpr int kDomainVersion = 3;

// ---------------------------------------------------------------- BinaryConv2d
// The convolution part shared by BinaryConv2d and ScalesConv2d: attributes, the inputs X, beta,
// W, scale, bias, and the geometry of one call.
class ConvCore {
 public:
  ConvCore(const OrtKernelInfo* info, const char* op, size_t max_inputs);

  struct Call {
    kernels::ConvGeometry g;
    const float* x = nullptr;
    const float* beta = nullptr;
    const kernels::ConvWeights* weights = nullptr;
    kernels::ConvWeights local_weights;  // when W is not a constant
    const float* scale = nullptr;
    const float* bias = nullptr;  // null: no bias
    std::vector<int64_t> x_shape;
  };
  // Reads and checks the inputs of one call; fills `call` (the geometry is validated).
  void prepare(Ort::KernelContext& ctx, Call& call) const;

  const char* op_;
  const kernels::IsaKernels* kernels_ = nullptr;
  int64_t kH_ = 0, kW_ = 0, sH_ = 1, sW_ = 1, pT_ = 0, pL_ = 0, pB_ = 0, pR_ = 0, dH_ = 1, dW_ = 1;
  ConstParams params_;                           // beta [C], scale [M], bias [M]
  std::optional<kernels::ConvWeights> weights_;  // re-laid-out constant W (needs constant beta)
};

class BinaryConv2dKernel {
 public:
  static constexpr const char* kName = "BinaryConv2d";
  static constexpr size_t kInputs = 5;
  static constexpr int kSinceVersion = 1;
  explicit BinaryConv2dKernel(const OrtKernelInfo* info) : core_(info, kName, kInputs) {}
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;
  ConvCore core_;
};

// ---------------------------------------------------------------- ScalesConv2d (version 2)
// BinaryConv2d fused with the SCALES spatial and channel re-scalings and the skip.
// Inputs: X, beta, W, scale, bias?, spatial_weight? [C], spatial_bias? [1], channel_weight? [k].
class ScalesConv2dKernel {
 public:
  static constexpr const char* kName = "ScalesConv2d";
  static constexpr size_t kInputs = 8;
  static constexpr int kSinceVersion = 2;
  explicit ScalesConv2dKernel(const OrtKernelInfo* info);
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;
  ConvCore core_;
  bool skip_ = false;
  bool channel_from_input_ = true;
  bool has_spatial_ = false, has_channel_ = false;
};

// ---------------------------------------------------------------- BinaryLinear
// The linear part shared by BinaryLinear and ScalesLinear: the inputs X, beta, W, scale, bias,
// and the shapes of one call.
class LinearCore {
 public:
  LinearCore(const OrtKernelInfo* info, const char* op, size_t max_inputs);

  struct Call {
    const float* x = nullptr;
    std::vector<int64_t> x_shape, y_shape;
    int64_t rows = 0;  // X's rows of K features
    const float* beta = nullptr;
    const kernels::LinearWeights* weights = nullptr;
    kernels::LinearWeights local_weights;  // when W is not a constant
    const float* scale = nullptr;
    const float* bias = nullptr;  // null: no bias
  };
  // Reads and checks the inputs of one call; fills `call`.
  void prepare(Ort::KernelContext& ctx, Call& call) const;

  const char* op_;
  const kernels::IsaKernels* kernels_ = nullptr;
  ConstParams params_;                             // beta [K], scale [M], bias [M]
  std::optional<kernels::LinearWeights> weights_;  // re-laid-out constant W (needs constant beta)
};

class BinaryLinearKernel {
 public:
  static constexpr const char* kName = "BinaryLinear";
  static constexpr size_t kInputs = 5;
  static constexpr int kSinceVersion = 1;
  explicit BinaryLinearKernel(const OrtKernelInfo* info) : core_(info, kName, kInputs) {}
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;
  LinearCore core_;
};

// ---------------------------------------------------------------- ScalesLinear (version 3)
// BinaryLinear fused with a LayerNorm of its input, the SCALES spatial re-scaling, an optional
// GELU and a residual add. Inputs: X, beta, W, scale, bias?, spatial_weight? [K], spatial_bias? [1],
// residual? (Y's shape), norm_weight? [K], norm_bias? [K].
class ScalesLinearKernel {
 public:
  static constexpr const char* kName = "ScalesLinear";
  static constexpr size_t kInputs = 10;
  static constexpr int kSinceVersion = 3;
  explicit ScalesLinearKernel(const OrtKernelInfo* info);
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;
  LinearCore core_;
  const kernels::FloatKernels* floats_ = nullptr;
  kernels::Activation act_ = kernels::Activation::kNone;
  float norm_eps_ = 1e-5f;
  bool has_spatial_ = false, has_residual_ = false, has_norm_ = false;
};

// ---------------------------------------------------------------- WindowAttention (version 3)
// Multi-head attention inside (shifted or enlarged) windows of a [N, H, W, 3C] map of q|k|v.
// Inputs: QKV (float), bias_table (float [T, heads]), bias_index (int64 [ws^2, kws^2]).
class WindowAttentionKernel {
 public:
  static constexpr const char* kName = "WindowAttention";
  explicit WindowAttentionKernel(const OrtKernelInfo* info);
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;
  // The bias laid out for the kernels, for geometry g (from the constants, or from this call's).
  const kernels::AttentionBias& bias_for(Ort::KernelContext& ctx, const kernels::AttentionGeometry& g,
                                         kernels::AttentionBias& local) const;
  const kernels::FloatKernels* floats_ = nullptr;
  kernels::AttentionGeometry attrs_;       // the attributes (heads, ws, shift, kws, scale)
  std::optional<kernels::AttentionBias> bias_;  // from constant bias_table and bias_index
};

// ---------------------------------------------------------------- the ORT op
// Every op has the inputs X (float), beta (float), W (uint64), scale (float), then optional float
// inputs (bias, and ScalesConv2d's branch weights), and one float output. Each is registered for
// the domain versions from the one that introduced it to the current one.
template <class Kernel>
struct BinaryOp : Ort::CustomOpBase<BinaryOp<Kernel>, Kernel, /*WithStatus=*/true> {
  explicit BinaryOp(int api_version) {
    OrtCustomOp::version = static_cast<uint32_t>(api_version);
    this->start_ver_ = Kernel::kSinceVersion;
    this->end_ver_ = kDomainVersion;
  }
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    *kernel = nullptr;
    return guarded(Kernel::kName, [&] { *kernel = new Kernel(info); });
  }
  const char* GetName() const { return Kernel::kName; }
  size_t GetInputTypeCount() const { return Kernel::kInputs; }
  ONNXTensorElementDataType GetInputType(size_t index) const {
    return index == 2 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t index) const {
    return index >= 4 ? OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL
                      : OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

using BinaryConv2dOp = BinaryOp<BinaryConv2dKernel>;
using BinaryLinearOp = BinaryOp<BinaryLinearKernel>;
using ScalesConv2dOp = BinaryOp<ScalesConv2dKernel>;
using ScalesLinearOp = BinaryOp<ScalesLinearKernel>;

// WindowAttention: inputs QKV (float), bias_table (float), bias_index (int64); one float output.
struct WindowAttentionOp
    : Ort::CustomOpBase<WindowAttentionOp, WindowAttentionKernel, /*WithStatus=*/true> {
  explicit WindowAttentionOp(int api_version) {
    OrtCustomOp::version = static_cast<uint32_t>(api_version);
    this->start_ver_ = 3;
    this->end_ver_ = kDomainVersion;
  }
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    *kernel = nullptr;
    return guarded(WindowAttentionKernel::kName, [&] { *kernel = new WindowAttentionKernel(info); });
  }
  const char* GetName() const { return WindowAttentionKernel::kName; }
  size_t GetInputTypeCount() const { return 3; }
  ONNXTensorElementDataType GetInputType(size_t index) const {
    return index == 2 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace ort
}  // namespace scales_edge
