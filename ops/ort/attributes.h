// Checking the attribute *names* of a node against what its op takes (docs/ops.md, "Validation").
//
// What ONNX Runtime offers at kernel creation (C API up to version 24, ORT 1.24): an attribute
// can be read by name (KernelInfoGetAttribute_*), but OrtKernelInfo has no call that lists a
// node's attributes, and the schema ORT builds for a custom op accepts any attribute
// (AllowUncheckedAttributes). So a kernel cannot find an arbitrary unknown attribute. What it can
// do is look up the names a mistaken attribute most likely has and refuse the node if one is
// there: for each attribute the op takes, its single-typo variants (a letter dropped, doubled,
// swapped with the next, replaced by a neighbouring key, an '_' added or dropped), its singular or
// plural, its case and separator variants (camelCase, PascalCase, UPPER, '-'), plus the
// attributes the domain's other ops take and the usual names from ONNX Conv/Gemm and PyTorch
// (stride, padding, kernel_size, groups, ...). That is a few hundred lookups per node, done once
// per session. Names outside that set stay invisible to the kernel; scales-edge's own loaders
// (runtime/contract.py) read the whole node from the model file and refuse any unknown name.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <string>
#include <vector>

namespace scales_edge {
namespace ort {

// A name to look up, and the attribute of the op it is a likely mistake for ("" if none).
struct AttributeProbe {
  std::string name;
  std::string meant;
};

// The probes for an op that takes `own` attributes in a domain whose ops take `domain` (every
// op's attribute names). Never contains a name in `own`; deterministic order.
std::vector<AttributeProbe> attribute_probes(const std::vector<std::string>& own,
                                             const std::vector<std::string>& domain);

// True if the node has an attribute `name`, of any type.
bool has_attribute(const OrtKernelInfo* info, const char* name);

// Fails with "unknown attribute 'x' (did you mean 'y'?); <op> takes a, b" (an ORT error naming the
// op) if the node has an attribute named by one of `probes`.
void reject_unknown_attributes(const OrtKernelInfo* info, const char* op,
                               const std::vector<std::string>& own,
                               const std::vector<AttributeProbe>& probes);

// "kernel_shape, strides" (or "no attributes").
std::string attribute_list(const std::vector<std::string>& names);

}  // namespace ort
}  // namespace scales_edge
