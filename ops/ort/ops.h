// The scales_edge custom ops (docs/ops.md) as ONNX Runtime custom ops.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common.h"
#include "kernels.h"

namespace scales_edge {
namespace ort {

constexpr const char* kDomain = "scales_edge";
constexpr int kDomainVersion = 1;

// ---------------------------------------------------------------- BinaryConv2d
class BinaryConv2dKernel {
 public:
  static constexpr const char* kName = "BinaryConv2d";
  explicit BinaryConv2dKernel(const OrtKernelInfo* info);
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;

  const kernels::IsaKernels* kernels_ = nullptr;
  int64_t kH_ = 0, kW_ = 0, sH_ = 1, sW_ = 1, pT_ = 0, pL_ = 0, pB_ = 0, pR_ = 0, dH_ = 1, dW_ = 1;
  ConstParams params_{kName, "C", "channels"};   // beta [C], scale [M], bias [M]
  std::optional<kernels::ConvWeights> weights_;  // re-laid-out constant W (needs constant beta)
};

// ---------------------------------------------------------------- BinaryLinear
class BinaryLinearKernel {
 public:
  static constexpr const char* kName = "BinaryLinear";
  explicit BinaryLinearKernel(const OrtKernelInfo* info);
  OrtStatusPtr ComputeV2(OrtKernelContext* context) const {
    return guarded(kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;

  const kernels::IsaKernels* kernels_ = nullptr;
  ConstParams params_{kName, "K", "features"};     // beta [K], scale [M], bias [M]
  std::optional<kernels::LinearWeights> weights_;  // re-laid-out constant W (needs constant beta)
};

// ---------------------------------------------------------------- the ORT op
// Both ops have the inputs X (float), beta (float), W (uint64), scale (float) and an optional
// bias (float), and one float output.
template <class Kernel>
struct BinaryOp : Ort::CustomOpBase<BinaryOp<Kernel>, Kernel, /*WithStatus=*/true> {
  explicit BinaryOp(int api_version) {
    OrtCustomOp::version = static_cast<uint32_t>(api_version);
    this->start_ver_ = kDomainVersion;
    this->end_ver_ = kDomainVersion;
  }
  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const {
    *kernel = nullptr;
    return guarded(Kernel::kName, [&] { *kernel = new Kernel(info); });
  }
  const char* GetName() const { return Kernel::kName; }
  size_t GetInputTypeCount() const { return 5; }
  ONNXTensorElementDataType GetInputType(size_t index) const {
    return index == 2 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t index) const {
    return index == 4 ? OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL
                      : OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

using BinaryConv2dOp = BinaryOp<BinaryConv2dKernel>;
using BinaryLinearOp = BinaryOp<BinaryLinearKernel>;

}  // namespace ort
}  // namespace scales_edge
