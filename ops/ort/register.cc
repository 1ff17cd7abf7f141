// Entry point ONNX Runtime calls when the library is registered
// (SessionOptions.register_custom_ops_library / RegisterCustomOpsLibrary): adds the custom-op
// domain `scales_edge` (versions 1 to 3) with BinaryConv2d, BinaryLinear, ScalesConv2d (from 2;
// its pixel_shuffle from 3), ScalesLinear and WindowAttention (from 3).
//
// The library is built against one set of ORT headers (ORT_API_VERSION) but must run inside
// whichever ONNX Runtime loads it, older or newer. It asks that runtime for the highest C API
// version both know, needing at least kMinApiVersion, and tags its ops with that version so an
// older runtime never reads fields it does not know.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "c_api.h"
#include "ops.h"

namespace scales_edge {
namespace ort {
namespace {

std::mutex g_mutex;
// Shared by every session options object the library is registered with. ONNX Runtime keeps
// pointers to them for the lifetime of its sessions, so they are intentionally never freed.
OrtCustomOpDomain* g_domain = nullptr;
BinaryConv2dOp* g_conv_op = nullptr;
BinaryLinearOp* g_linear_op = nullptr;
ScalesConv2dOp* g_scales_conv_op = nullptr;
ScalesLinearOp* g_scales_linear_op = nullptr;
WindowAttentionOp* g_window_attention_op = nullptr;

// "1.32.0" -> 32 (for ONNX Runtime 1.x the C API version equals the minor version).
int api_version_hint(const OrtApiBase* base) {
  const char* v = base->GetVersionString ? base->GetVersionString() : nullptr;
  int major = 0, minor = 0;
  if (v && std::sscanf(v, "%d.%d", &major, &minor) == 2 && major == 1 && minor > 0) return minor;
  return ORT_API_VERSION;
}

const OrtApi* negotiate(const OrtApiBase* base, int* version) {
  int v = api_version_hint(base);
  if (v > ORT_API_VERSION) v = ORT_API_VERSION;
  for (; v >= kMinApiVersion; --v) {
    if (const OrtApi* api = base->GetApi(static_cast<uint32_t>(v))) {
      *version = v;
      return api;
    }
  }
  // The hint may have been wrong: try every version from the headers' down.
  for (v = ORT_API_VERSION; v >= kMinApiVersion; --v) {
    if (const OrtApi* api = base->GetApi(static_cast<uint32_t>(v))) {
      *version = v;
      return api;
    }
  }
  return nullptr;
}

OrtStatus* make_domain(const OrtApi* api, int version) {
  const std::vector<std::string> names =
      domain_attributes<BinaryConv2dKernel, BinaryLinearKernel, ScalesConv2dKernel,
                        ScalesLinearKernel, WindowAttentionKernel>();
  g_conv_op = new BinaryConv2dOp(version, names);
  g_linear_op = new BinaryLinearOp(version, names);
  g_scales_conv_op = new ScalesConv2dOp(version, names);
  g_scales_linear_op = new ScalesLinearOp(version, names);
  g_window_attention_op = new WindowAttentionOp(version, names);
  OrtCustomOpDomain* domain = nullptr;
  if (OrtStatus* s = api->CreateCustomOpDomain(kDomain, &domain)) return s;
  if (OrtStatus* s = api->CustomOpDomain_Add(domain, g_conv_op)) return s;
  if (OrtStatus* s = api->CustomOpDomain_Add(domain, g_linear_op)) return s;
  if (OrtStatus* s = api->CustomOpDomain_Add(domain, g_scales_conv_op)) return s;
  if (OrtStatus* s = api->CustomOpDomain_Add(domain, g_scales_linear_op)) return s;
  if (OrtStatus* s = api->CustomOpDomain_Add(domain, g_window_attention_op)) return s;
  g_domain = domain;
  return nullptr;
}

}  // namespace
}  // namespace ort
}  // namespace scales_edge

extern "C" {

SCALES_EDGE_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                             const OrtApiBase* api_base) {
  namespace so = scales_edge::ort;
  if (api_base == nullptr) return nullptr;  // nothing to report through
  int version = 0;
  const OrtApi* api = so::negotiate(api_base, &version);
  if (api == nullptr) {
    const OrtApi* any = api_base->GetApi(1);
    if (any == nullptr) return nullptr;
    const std::string msg = std::string("scales_edge: the custom-op library needs ONNX Runtime ") +
                            "with C API version >= " + std::to_string(so::kMinApiVersion) +
                            " (1." + std::to_string(so::kMinApiVersion) + "+); this is " +
                            (api_base->GetVersionString ? api_base->GetVersionString() : "?");
    return any->CreateStatus(ORT_FAIL, msg.c_str());
  }
  try {
    std::lock_guard<std::mutex> lock(so::g_mutex);
    if (so::g_domain == nullptr) {
      Ort::InitApi(api);
      so::g_api_version = version;
      if (OrtStatus* s = so::make_domain(api, version)) return s;
    }
    return api->AddCustomOpDomain(options, so::g_domain);
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, (std::string("scales_edge: ") + e.what()).c_str());
  } catch (...) {
    return api->CreateStatus(ORT_FAIL, "scales_edge: unknown error while registering the ops");
  }
}

SCALES_EDGE_EXPORT int scales_edge_ort_api_version(void) {
  return scales_edge::ort::g_api_version;
}

// The newest scales_edge domain version the library implements (it implements 1 to this one).
// ONNX Runtime does not tell a custom kernel which version a model imports, so the loaders that
// read the model (runtime/contract.py) compare it with this.
SCALES_EDGE_EXPORT int scales_edge_domain_version(void) { return scales_edge::ort::kDomainVersion; }

}  // extern "C"
