// The kernel path of each op: forced by SCALES_EDGE_KERNEL, or measured per geometry
// (kernels::choose_kernels), and the record of every choice that scales_edge_kernel_choices()
// (c_api.h) returns, so that benchmarks and the runner can say which path each op ran.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "kernels.h"

namespace scales_edge {
namespace ort {

class PathPicker {
 public:
  // Reads SCALES_EDGE_KERNEL (a value naming no usable path fails the kernel's creation) and
  // the node's name.
  PathPicker(const Ort::ConstKernelInfo& info, const char* op);
  PathPicker(const PathPicker&) = delete;
  PathPicker& operator=(const PathPicker&) = delete;

  // The path SCALES_EDGE_KERNEL forces, or null (measured per geometry).
  const kernels::IsaKernels* forced() const { return forced_; }

  // The path for one geometry of this op: the forced one, or kernels::choose_kernels(key, run,
  // max_units). `shape` describes the geometry for the record; the first pick of each key by
  // this node is recorded.
  const kernels::IsaKernels& pick(const std::string& key, const std::string& shape,
                                  const std::function<void(const kernels::IsaKernels&, int64_t)>& run,
                                  int64_t max_units) const;

 private:
  const char* op_;
  std::string node_;
  const kernels::IsaKernels* forced_ = nullptr;
  mutable std::mutex mu_;
  mutable std::vector<std::string> recorded_;  // keys this node has recorded
};

}  // namespace ort
}  // namespace scales_edge
