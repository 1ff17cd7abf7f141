// The scales_edge custom ops (docs/ops.md) as ONNX Runtime custom ops.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attributes.h"
#include "common.h"
#include "float_kernels.h"
#include "kernels.h"
#include "paths.h"

namespace scales_edge {
namespace ort {

constexpr const char* kDomain = "scales_edge";
// The domain's current version (docs/ops.md): the library implements versions 1 to this one.
// BinaryConv2d and BinaryLinear are unchanged since version 1; ScalesConv2d exists from version 2
// (version 3: its pixel_shuffle attribute); ScalesLinear and WindowAttention from version 3.
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
  // The path for this call's geometry (picker_): forced, or measured once per geometry by
  // run(k, rows), which runs `rows` output rows of the op on path k.
  const kernels::IsaKernels& pick(const Call& call, const std::string& what,
                                  const std::function<void(const kernels::IsaKernels&, int64_t)>& run) const;

  const char* op_;
  // The path the weights are laid out for (kernels::layout_kernels): any path may run with them.
  const kernels::IsaKernels* kernels_ = nullptr;
  int64_t kH_ = 0, kW_ = 0, sH_ = 1, sW_ = 1, pT_ = 0, pL_ = 0, pB_ = 0, pR_ = 0, dH_ = 1, dW_ = 1;
  ConstParams params_;                           // beta [C], scale [M], bias [M]
  std::optional<kernels::ConvWeights> weights_;  // re-laid-out constant W (needs constant beta)
  PathPicker picker_;
};

class BinaryConv2dKernel {
 public:
  static constexpr const char* kName = "BinaryConv2d";
  // Its attributes (docs/ops.md); a node with a likely-mistaken other name is refused.
  static constexpr std::array<const char*, 5> kAttributes{"kernel_shape", "strides", "pads",
                                                          "dilations", "group"};
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
// BinaryConv2d fused with the SCALES spatial and channel re-scalings and the skip; version 3
// adds pixel_shuffle (an upsampling layer's output stored depth-to-space).
// Inputs: X, beta, W, scale, bias?, spatial_weight? [C], spatial_bias? [1], channel_weight? [k].
class ScalesConv2dKernel {
 public:
  static constexpr const char* kName = "ScalesConv2d";
  static constexpr std::array<const char*, 8> kAttributes{
      "kernel_shape", "strides", "pads", "dilations", "group", "skip", "channel_from_output",
      "pixel_shuffle"};
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
  int64_t shuffle_ = 1;  // version 3's pixel_shuffle
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
  // Rows per work unit of a path measurement and of the thread split.
  static constexpr int64_t kTokens = 64;
  // The path for this call's geometry (K, M, and `what`: the op's other options): forced, or
  // measured once per geometry by run(k, units), which runs units * kTokens rows on path k.
  const kernels::IsaKernels& pick(const Call& call, const std::string& what,
                                  const std::function<void(const kernels::IsaKernels&, int64_t)>& run) const;

  const char* op_;
  ConstParams params_;                             // beta [K], scale [M], bias [M]
  std::optional<kernels::LinearWeights> weights_;  // re-laid-out constant W (needs constant beta)
  PathPicker picker_;
};

class BinaryLinearKernel {
 public:
  static constexpr const char* kName = "BinaryLinear";
  static constexpr std::array<const char*, 0> kAttributes{};
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
  static constexpr std::array<const char*, 2> kAttributes{"activation", "norm_epsilon"};
  static constexpr size_t kInputs = 10;
  static constexpr int kSinceVersion = 3;
  explicit ScalesLinearKernel(const OrtKernelInfo* info);
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;
  LinearCore core_;
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
  static constexpr std::array<const char*, 5> kAttributes{
      "num_heads", "window_size", "shift_size", "key_window_size", "scale"};
  static constexpr size_t kInputs = 3;
  static constexpr int kSinceVersion = 3;
  explicit WindowAttentionKernel(const OrtKernelInfo* info);
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;
  // The bias laid out for float kernels f, for geometry g (from the constants, or from this
  // call's inputs into `local`).
  const kernels::AttentionBias& bias_for(Ort::KernelContext& ctx, const kernels::AttentionGeometry& g,
                                         const kernels::FloatKernels& f,
                                         kernels::AttentionBias& local) const;
  kernels::AttentionGeometry attrs_;  // the attributes (heads, ws, shift, kws, scale)
  // From constant bias_table and bias_index, laid out for each supported path's float kernels
  // (their query blocks differ), indexed by kernels::Path.
  std::array<std::optional<kernels::AttentionBias>, kernels::kNumPaths> biases_;
  PathPicker picker_;
};

// ---------------------------------------------------------------- the ORT op
// The binary ops have the inputs X (float), beta (float), W (uint64), scale (float), then optional
// float inputs (bias, and the fused ops' branch weights and residual); WindowAttention has QKV
// (float), bias_table (float), bias_index (int64). Every op has one float output. Each is
// registered for the domain versions from the one that introduced it to the current one. Kernel
// creation first refuses a node with a likely-mistaken attribute name (attributes.h), then the
// kernel checks the attributes' values and the constant inputs.
template <class Kernel>
struct OpInputs {  // the binary ops'
  static constexpr size_t kRequired = 4;
  static ONNXTensorElementDataType type(size_t index) {
    return index == 2 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
};
template <>
struct OpInputs<WindowAttentionKernel> {
  static constexpr size_t kRequired = 3;
  static ONNXTensorElementDataType type(size_t index) {
    return index == 2 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
};

template <class Kernel>
struct DomainOp : Ort::CustomOpBase<DomainOp<Kernel>, Kernel, /*WithStatus=*/true> {
  // `domain_attributes`: the attribute names of every op of the domain (domain_attributes()).
  DomainOp(int api_version, const std::vector<std::string>& domain_attributes)
      : own_(Kernel::kAttributes.begin(), Kernel::kAttributes.end()),
        probes_(attribute_probes(own_, domain_attributes)) {
    OrtCustomOp::version = static_cast<uint32_t>(api_version);
    this->start_ver_ = Kernel::kSinceVersion;
    this->end_ver_ = kDomainVersion;
  }
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    *kernel = nullptr;
    return guarded(Kernel::kName, [&] {
      reject_unknown_attributes(info, Kernel::kName, own_, probes_);
      *kernel = new Kernel(info);
    });
  }
  const char* GetName() const { return Kernel::kName; }
  size_t GetInputTypeCount() const { return Kernel::kInputs; }
  ONNXTensorElementDataType GetInputType(size_t index) const { return OpInputs<Kernel>::type(index); }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t index) const {
    return index >= OpInputs<Kernel>::kRequired
               ? OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL
               : OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }

 private:
  std::vector<std::string> own_;
  std::vector<AttributeProbe> probes_;
};

// The attribute names of the kernels' ops, together.
template <class... Kernels>
std::vector<std::string> domain_attributes() {
  std::vector<std::string> names;
  (names.insert(names.end(), Kernels::kAttributes.begin(), Kernels::kAttributes.end()), ...);
  return names;
}

using BinaryConv2dOp = DomainOp<BinaryConv2dKernel>;
using BinaryLinearOp = DomainOp<BinaryLinearKernel>;
using ScalesConv2dOp = DomainOp<ScalesConv2dKernel>;
using ScalesLinearOp = DomainOp<ScalesLinearKernel>;
using WindowAttentionOp = DomainOp<WindowAttentionKernel>;

}  // namespace ort
}  // namespace scales_edge
