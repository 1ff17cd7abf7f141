#include "paths.h"

#include <cstdio>
#include <cstring>

#include "c_api.h"
#include "common.h"

namespace scales_edge {
namespace ort {

namespace {

struct Record {
  std::string op, node, shape;
  kernels::PathChoice choice;
};

std::mutex g_mu;
std::vector<Record> g_records;  // in the order the choices were made

std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      r += '\\';
      r += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      r += buf;
    } else {
      r += ch;
    }
  }
  return r + "\"";
}

std::string to_json(const Record& r) {
  std::string s = "{\"op\": " + json_str(r.op) + ", \"node\": " + json_str(r.node) +
                  ", \"shape\": " + json_str(r.shape) + ", \"path\": " +
                  json_str(r.choice.kernels->name) + ", \"how\": " +
                  json_str(kernels::choice_how_name(r.choice.how)) + ", \"unit_ms\": {";
  bool first = true;
  for (int i = 0; i < kernels::kNumPaths; ++i) {
    if (r.choice.unit_ms[i] < 0) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s\"%s\": %.6g", first ? "" : ", ",
                  kernels::path_name(static_cast<kernels::Path>(i)), r.choice.unit_ms[i]);
    s += buf;
    first = false;
  }
  return s + "}}";
}

}  // namespace

PathPicker::PathPicker(const Ort::ConstKernelInfo& info, const char* op) : op_(op) {
  try {
    node_ = info.GetNodeName();
  } catch (const Ort::Exception&) {
    node_ = "";  // a runtime that cannot say: the record shows an empty name
  }
  std::string error;
  if (!kernels::forced_kernels(&forced_, &error) && !error.empty())
    fail(op, "cannot choose a kernel: " + error);
}

const kernels::IsaKernels& PathPicker::pick(
    const std::string& key, const std::string& shape,
    const std::function<void(const kernels::IsaKernels&, int64_t)>& run,
    int64_t max_units) const {
  kernels::PathChoice c;
  if (forced_) {
    c.kernels = forced_;
    c.how = kernels::ChoiceHow::kForced;
  } else {
    c = kernels::choose_kernels(key, run, max_units);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& k : recorded_)
      if (k == key) return *c.kernels;
    recorded_.push_back(key);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_records.push_back(Record{op_, node_, shape, c});
  return *c.kernels;
}

}  // namespace ort
}  // namespace scales_edge

extern "C" {

SCALES_EDGE_EXPORT size_t scales_edge_kernel_choices(char* buf, size_t cap) {
  namespace so = scales_edge::ort;
  std::string s;
  try {
    std::lock_guard<std::mutex> lock(so::g_mu);
    s = "[";
    for (size_t i = 0; i < so::g_records.size(); ++i)
      s += (i ? ",\n " : "") + so::to_json(so::g_records[i]);
    s += "]";
  } catch (...) {
    s = "[]";
  }
  if (buf && cap > 0) {
    const size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  return s.size();
}

}  // extern "C"
