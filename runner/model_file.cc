#include "model_file.h"

#include <zlib.h>

#include <algorithm>

#include "common.h"

namespace runner {

namespace {

// Field numbers of onnx.proto.
constexpr uint32_t kModelGraph = 7, kModelMetadata = 14;
constexpr uint32_t kGraphInitializer = 5;
constexpr uint32_t kTensorName = 8;
constexpr uint32_t kEntryKey = 1, kEntryValue = 2;
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

// One field of a protobuf message: [begin, end) the whole field, [data, data + size) the payload
// of a length-delimited one.
struct Field {
  uint32_t number = 0, wire = 0;
  size_t begin = 0, end = 0, data = 0, size = 0;
};

class Reader {
 public:
  Reader(const std::vector<uint8_t>& b, size_t begin, size_t end, const std::string& what)
      : b_(b), i_(begin), end_(end), what_(what) {}

  bool next(Field& f) {
    if (i_ >= end_) return false;
    f.begin = i_;
    const uint64_t tag = varint();
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire = static_cast<uint32_t>(tag & 7);
    f.data = f.size = 0;
    switch (f.wire) {
      case kVarint: varint(); break;
      case kFixed64: skip(8); break;
      case kFixed32: skip(4); break;
      case kLengthDelimited: {
        const uint64_t n = varint();
        if (n > end_ - i_) bad();
        f.data = i_;
        f.size = static_cast<size_t>(n);
        skip(f.size);
        break;
      }
      default: bad();
    }
    f.end = i_;
    return true;
  }

 private:
  const std::vector<uint8_t>& b_;
  size_t i_, end_;
  const std::string& what_;

  [[noreturn]] void bad() const { throw Error(what_ + ": not an ONNX model (malformed protobuf)"); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i_ >= end_) bad();
      const uint8_t byte = b_[i_++];
      v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return v;
    }
    bad();
  }
  void skip(size_t n) {
    if (n > end_ - i_) bad();
    i_ += n;
  }
};

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

}  // namespace

ModelFile::ModelFile(const std::string& path) : path_(path), bytes_(read_file(path)) {
  Reader model(bytes_, 0, bytes_.size(), path_);
  Field f;
  bool have_graph = false;
  while (model.next(f)) {
    if (f.wire != kLengthDelimited) continue;
    if (f.number == kModelGraph) {
      if (have_graph) throw Error(path_ + ": the model has two graph fields");
      graph_ = {f.data, f.data + f.size};
      have_graph = true;
    } else if (f.number == kModelMetadata) {
      Reader entry(bytes_, f.data, f.data + f.size, path_);
      Field e;
      std::string key, value;
      while (entry.next(e)) {
        if (e.wire != kLengthDelimited) continue;
        const std::string s(reinterpret_cast<const char*>(bytes_.data() + e.data), e.size);
        if (e.number == kEntryKey) key = s;
        else if (e.number == kEntryValue) value = s;
      }
      metadata_[key] = value;
    }
  }
  if (!have_graph) throw Error(path_ + ": not an ONNX model (no graph)");
  Reader graph(bytes_, graph_.begin, graph_.end, path_);
  while (graph.next(f)) {
    if (f.number != kGraphInitializer || f.wire != kLengthDelimited) continue;
    Reader tensor(bytes_, f.data, f.data + f.size, path_);
    Field t;
    while (tensor.next(t)) {
      if (t.number == kTensorName && t.wire == kLengthDelimited) {
        initializers_[std::string(reinterpret_cast<const char*>(bytes_.data() + t.data), t.size)] = {f.begin, f.end};
        break;
      }
    }
  }
}

const std::string* ModelFile::meta(const std::string& key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

uint32_t ModelFile::graph_crc32() const {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t i = graph_.begin;
  while (i < graph_.end) {  // crc32 takes a uInt length
    const size_t n = std::min<size_t>(graph_.end - i, 1u << 30);
    crc = crc32(crc, bytes_.data() + i, static_cast<uInt>(n));
    i += n;
  }
  return static_cast<uint32_t>(crc);
}

std::vector<uint8_t> ModelFile::complete(const std::vector<uint8_t>& model, const std::vector<std::string>& names) const {
  size_t total = 0;
  for (const std::string& n : names) {
    const auto it = initializers_.find(n);
    if (it == initializers_.end())
      throw Error(path_ + ": the tiling plan needs the weight '" + n + "', which the model does not have; "
                  "re-export the model");
    total += it->second.end - it->second.begin;
  }
  std::vector<uint8_t> out(model);
  out.reserve(model.size() + total + 16);
  put_varint(out, (kModelGraph << 3) | kLengthDelimited);
  put_varint(out, total);
  for (const std::string& n : names) {
    const Span s = initializers_.at(n);
    out.insert(out.end(), bytes_.begin() + static_cast<std::ptrdiff_t>(s.begin),
               bytes_.begin() + static_cast<std::ptrdiff_t>(s.end));
  }
  return out;
}

}  // namespace runner
