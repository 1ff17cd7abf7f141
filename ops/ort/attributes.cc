#include "attributes.h"

#include <cctype>
#include <cstring>
#include <set>
#include <utility>

#include "common.h"

namespace scales_edge {
namespace ort {

namespace {

// Names other engines and frameworks use for a convolution's or a linear layer's settings, with
// the attribute of ours each one means ("" when ours has no such thing).
const std::pair<const char*, const char*> kAliases[] = {
    {"stride", "strides"},         {"padding", "pads"},          {"pad", "pads"},
    {"paddings", "pads"},          {"kernel_size", "kernel_shape"}, {"kernel", "kernel_shape"},
    {"ksize", "kernel_shape"},     {"dilation", "dilations"},    {"dilation_rate", "dilations"},
    {"groups", "group"},           {"auto_pad", "pads"},
    {"output_padding", ""},        {"output_shape", ""},         {"padding_mode", ""},
    {"transA", ""},                {"transB", ""},               {"alpha", ""},
    {"beta", ""},                  {"bias", ""},                 {"residual", "skip"},
    {"skip_connection", "skip"},   {"channel_from_input", "channel_from_output"},
};

// Keys next to each letter on a QWERTY keyboard (a slipped finger).
const char* const kRows[] = {"qwertyuiop", "asdfghjkl", "zxcvbnm"};

std::string neighbours(char ch) {
  std::string out;
  for (int r = 0; r < 3; ++r) {
    const char* p = std::strchr(kRows[r], ch);
    if (!p) continue;
    const int c = static_cast<int>(p - kRows[r]);
    auto add = [&](int rr, int cc) {
      if (rr < 0 || rr > 2 || cc < 0 || cc >= static_cast<int>(std::strlen(kRows[rr]))) return;
      out += kRows[rr][cc];
    };
    add(r, c - 1);
    add(r, c + 1);
    add(r - 1, c);      // rows are staggered: the keys above are at c and c + 1,
    add(r - 1, c + 1);  // the keys below at c - 1 and c
    add(r + 1, c - 1);
    add(r + 1, c);
  }
  return out;
}

// Names one typo away from `a`, and its case, separator and number variants.
std::vector<std::string> variants(const std::string& a) {
  std::vector<std::string> out;
  const size_t n = a.size();
  for (size_t i = 0; i < n; ++i) {
    out.push_back(a.substr(0, i) + a.substr(i + 1));                 // dropped
    out.push_back(a.substr(0, i + 1) + a[i] + a.substr(i + 1));      // doubled
    if (i + 1 < n) {                                                 // swapped
      std::string s = a;
      std::swap(s[i], s[i + 1]);
      out.push_back(s);
    }
    for (char k : neighbours(a[i])) out.push_back(a.substr(0, i) + k + a.substr(i + 1));
  }
  for (size_t i = 0; i <= n; ++i) out.push_back(a.substr(0, i) + "_" + a.substr(i));
  // case and separators: kernelShape, KernelShape, KERNEL_SHAPE, Kernel_shape, kernel-shape,
  // kernelshape
  std::string camel, upper, dashed, joined;
  bool up = false;
  for (char ch : a) {
    if (ch == '_') {
      up = true;
      dashed += '-';
      upper += '_';
      continue;
    }
    camel += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(ch))) : ch;
    up = false;
    dashed += ch;
    joined += ch;
    upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  std::string pascal = camel, capital = a;
  if (!pascal.empty()) pascal[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(pascal[0])));
  if (!capital.empty()) capital[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(capital[0])));
  for (std::string s : {camel, pascal, upper, dashed, capital, joined}) out.push_back(std::move(s));
  // number: stride <-> strides, skips, paddings
  if (n && a.back() == 's') out.push_back(a.substr(0, n - 1));
  out.push_back(a + "s");
  out.push_back(a + "es");
  return out;
}

}  // namespace

std::vector<AttributeProbe> attribute_probes(const std::vector<std::string>& own,
                                             const std::vector<std::string>& domain) {
  const std::set<std::string> own_set(own.begin(), own.end());
  std::set<std::string> seen;
  std::vector<AttributeProbe> probes;
  auto add = [&](const std::string& name, const std::string& meant) {
    if (name.empty() || own_set.count(name) || !seen.insert(name).second) return;
    probes.push_back({name, own_set.count(meant) ? meant : std::string()});
  };
  for (const std::string& a : own)
    for (const std::string& v : variants(a)) add(v, a);
  for (const auto& [name, meant] : kAliases) add(name, meant);
  for (const std::string& a : domain) add(a, "");
  return probes;
}

bool has_attribute(const OrtKernelInfo* info, const char* name) {
  const OrtApi& api = Ort::GetApi();
  int64_t value = 0;
  OrtStatus* status = api.KernelInfoGetAttribute_int64(info, name, &value);
  if (status == nullptr) return true;
  const bool present = !is_missing_attribute(api.GetErrorMessage(status));
  api.ReleaseStatus(status);
  return present;
}

std::string attribute_list(const std::vector<std::string>& names) {
  if (names.empty()) return "no attributes";
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void reject_unknown_attributes(const OrtKernelInfo* info, const char* op,
                               const std::vector<std::string>& own,
                               const std::vector<AttributeProbe>& probes) {
  for (const AttributeProbe& p : probes) {
    if (!has_attribute(info, p.name.c_str())) continue;
    if (p.name == "auto_pad" && !p.meant.empty())  // ONNX Conv's; ours pads explicitly
      fail(op, "attribute 'auto_pad' is not supported; give explicit 'pads'");
    fail(op, "unknown attribute '" + p.name + "'" +
                 (p.meant.empty() ? std::string() : " (did you mean '" + p.meant + "'?)") + "; " +
                 op + " takes " + attribute_list(own));
  }
}

}  // namespace ort
}  // namespace scales_edge
