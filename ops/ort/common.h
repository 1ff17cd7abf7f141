// Helpers shared by the scales_edge ONNX Runtime custom ops: error reporting, attribute and tensor
// access, and running work on ORT's intra-op thread pool.
//
// Errors are thrown as Ort::Exception whose message starts with "scales_edge.<Op>: "; the
// CreateKernelV2 / ComputeV2 entry points (see guarded()) turn every exception into an OrtStatus,
// so nothing is thrown across the C boundary into ONNX Runtime and nothing aborts.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "kernels.h"

namespace scales_edge {
namespace ort {

// ORT C API version negotiated by RegisterCustomOps (written once before any op is created).
extern int g_api_version;
// Oldest ORT C API version this library can work with (KernelContext_ParallelFor is 1.17).
constexpr int kMinApiVersion = 17;

[[noreturn]] inline void fail(const char* op, const std::string& msg,
                              OrtErrorCode code = ORT_INVALID_ARGUMENT) {
  throw Ort::Exception(std::string("scales_edge.") + op + ": " + msg, code);
}

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

const char* type_name(ONNXTensorElementDataType t);

// Runs body, returning nullptr on success or an OrtStatus describing the error.
template <class F>
OrtStatus* guarded(const char* op, F&& body) noexcept {
  try {
    body();
    return nullptr;
  } catch (const Ort::Exception& e) {
    return Ort::GetApi().CreateStatus(e.GetOrtErrorCode(), e.what());
  } catch (const std::bad_alloc&) {
    return Ort::GetApi().CreateStatus(
        ORT_RUNTIME_EXCEPTION, (std::string("scales_edge.") + op + ": out of memory").c_str());
  } catch (const std::exception& e) {
    return Ort::GetApi().CreateStatus(
        ORT_RUNTIME_EXCEPTION, (std::string("scales_edge.") + op + ": " + e.what()).c_str());
  } catch (...) {
    return Ort::GetApi().CreateStatus(
        ORT_RUNTIME_EXCEPTION, (std::string("scales_edge.") + op + ": unknown error").c_str());
  }
}

// ---- attributes ----
// An int-list attribute, or nullopt when the node does not have it. Present with the wrong type
// is an error.
std::optional<std::vector<int64_t>> attr_ints(const Ort::ConstKernelInfo& info, const char* op,
                                              const char* name);
// An int attribute, or nullopt when absent (or, with `quiet`, of another type).
std::optional<int64_t> attr_int(const Ort::ConstKernelInfo& info, const char* op,
                                const char* name, bool quiet = false);
// True if `message` is ORT's error for an attribute the node does not have.
bool is_missing_attribute(const char* message);
// A float / string attribute, or nullopt when absent; present with another type is an error.
std::optional<float> attr_float(const Ort::ConstKernelInfo& info, const char* op,
                                const char* name);
std::optional<std::string> attr_string(const Ort::ConstKernelInfo& info, const char* op,
                                       const char* name);

// ---- tensors ----
// A borrowed view of a tensor input (data owned by ORT for the duration of the call, or by the
// session for a constant initializer).
struct TensorRef {
  const void* data = nullptr;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;
  int64_t size = 0;
  template <class T>
  const T* as() const {
    return static_cast<const T*>(data);
  }
};
TensorRef tensor_ref(const Ort::ConstValue& v, const char* op, const char* input_name);
// The constant initializer behind input `index`, if it is one.
std::optional<TensorRef> constant_input(const Ort::ConstKernelInfo& info, size_t index,
                                        const char* op, const char* input_name);
// True if the node has input `index` (optional inputs may be missing or have an empty name).
bool node_has_input(const Ort::ConstKernelInfo& info, size_t index);

void expect_type(const TensorRef& t, ONNXTensorElementDataType type, const char* op,
                 const char* input_name);
// A float vector [n] (beta, scale, bias).
void expect_vector(const TensorRef& t, int64_t n, const char* op, const char* input_name,
                   const char* what);
// The float vector input `index` of length n (n < 0: any length >= 1; its length in *length).
const float* float_vector_input(Ort::KernelContext& ctx, size_t index, const char* op,
                                const char* input_name, int64_t n, const char* what,
                                int64_t* length = nullptr);
// Whether the optional inputs i and j (which go together) are given; one without the other fails.
bool paired_inputs(const Ort::ConstKernelInfo& info, const char* op, size_t i, size_t j,
                   const char* name_i, const char* name_j);

// ---- beta, scale, bias
// The float parameters both ops take besides X and W (inputs X, beta, W, scale[, bias]): beta
// (input 1, [C] for BinaryConv2d, [K] for BinaryLinear), scale (input 3, [M]) and the optional
// bias (input 4, [M]). Those that are constant initializers are copied and checked once at kernel
// creation; the others are read from the context in every Compute.
class ConstParams {
 public:
  // `dim` names beta's length ("C", "K") and `dim_noun` what it counts ("channels", "features").
  ConstParams(const char* op, const char* dim, const char* dim_noun, size_t max_inputs = 5)
      : op_(op), dim_(dim), dim_noun_(dim_noun), max_inputs_(max_inputs) {}

  // -- kernel creation, in this order (the op reads a constant W between beta and scale)
  // Checks that the node has 4 to max_inputs inputs.
  void check_node_inputs(const Ort::ConstKernelInfo& info);
  // Copies a constant beta (a non-empty float vector); returns its length, or -1 if not constant.
  int64_t read_beta(const Ort::ConstKernelInfo& info);
  // Copies a constant scale and bias, each a float vector [m] (m < 0: M not known), and checks
  // that they have the same length.
  void read_scale_bias(const Ort::ConstKernelInfo& info, int64_t m);

  // -- Compute
  // Checks the input count and returns X, which must be float32.
  TensorRef input_x(const Ort::KernelContext& ctx) const;
  // beta, which must be [n] for an X of shape x_shape with n channels (features).
  const float* beta(const Ort::KernelContext& ctx, int64_t n,
                    const std::vector<int64_t>& x_shape) const;
  const float* scale(const Ort::KernelContext& ctx, int64_t m) const;
  // nullptr when the node has no bias.
  const float* bias(const Ort::KernelContext& ctx, int64_t m) const;

 private:
  // A float vector copied out of a constant initializer at kernel creation.
  struct Floats {
    bool present = false;
    std::vector<float> values;
  };
  const float* vector_m(const Ort::KernelContext& ctx, const Floats& constant, size_t index,
                        const char* name, int64_t m) const;

  const char* op_;
  const char* dim_;
  const char* dim_noun_;
  size_t max_inputs_;
  bool bias_input_ = false;  // the node has a (non-empty) bias input
  Floats beta_, scale_, bias_;
};

// ---- threading ----
// Runs fn(begin, end) over [0, total) in contiguous chunks of about `grain` items or more on
// ORT's intra-op thread pool. Exceptions thrown by fn are caught on the worker and rethrown here
// as an error of `op`.
template <class F>
void parallel_rows(const Ort::KernelContext& ctx, const char* op, int64_t total, F&& fn,
                   int64_t grain = 1) {
  if (total <= 0) return;
  constexpr int64_t kMaxChunks = 256;
  const int64_t by_grain = (total + grain - 1) / (grain < 1 ? 1 : grain);
  const int64_t chunks = by_grain < kMaxChunks ? by_grain : kMaxChunks;
  if (chunks == 1) {
    fn(int64_t{0}, total);
    return;
  }
  struct Job {
    Job(F* f, int64_t t, int64_t c) : fn(f), total(t), chunks(c) {}
    F* fn;
    int64_t total, chunks;
    std::atomic<bool> failed{false};
    std::atomic<bool> out_of_memory{false};
    std::mutex mu;
    std::string message;
  } job(&fn, total, chunks);
  auto run = [](void* user, size_t i) {
    Job* j = static_cast<Job*>(user);
    if (j->failed.load(std::memory_order_relaxed)) return;
    const int64_t c = static_cast<int64_t>(i);
    const int64_t begin = j->total * c / j->chunks;
    const int64_t end = j->total * (c + 1) / j->chunks;
    try {
      (*j->fn)(begin, end);
    } catch (const std::bad_alloc&) {
      j->out_of_memory = true;
      j->failed = true;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(j->mu);
      if (!j->failed.exchange(true)) j->message = e.what();
    } catch (...) {
      std::lock_guard<std::mutex> lock(j->mu);
      if (!j->failed.exchange(true)) j->message = "unknown error";
    }
  };
  ctx.ParallelFor(run, static_cast<size_t>(chunks), 0, &job);
  if (job.out_of_memory.load()) throw std::bad_alloc();  // guarded() says "out of memory"
  if (job.failed.load()) fail(op, "worker failed: " + job.message, ORT_RUNTIME_EXCEPTION);
}

// The kernel path for a new kernel (SCALES_EDGE_KERNEL or the fastest supported one).
const kernels::IsaKernels& select_kernels_or_fail(const char* op);

}  // namespace ort
}  // namespace scales_edge
