// The exported .onnx file as bytes, read with a few lines of protobuf wire format: its metadata,
// the serialized graph (for the tiling plan's check sum) and its initializers by name, so that the
// tiling plan's graphs (stored without the weights they share with the model, runtime/tileplan.py)
// can be completed into whole models for ONNX Runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace runner {

class ModelFile {
 public:
  explicit ModelFile(const std::string& path);  // throws Error for an unreadable / malformed file

  const std::string& path() const { return path_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  // metadata_props, key -> value
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string* meta(const std::string& key) const;
  // CRC-32 (zlib's) of the serialized GraphProto, as Python's zlib.crc32(model.graph.SerializeToString()).
  uint32_t graph_crc32() const;

  // `model` (a serialized ModelProto whose graph lacks some initializers) with the named
  // initializers of this model's graph added: protobuf merges a second occurrence of the graph
  // field into the first, so they are appended as one more graph field.
  std::vector<uint8_t> complete(const std::vector<uint8_t>& model, const std::vector<std::string>& names) const;

 private:
  struct Span {
    size_t begin = 0, end = 0;
  };
  std::string path_;
  std::vector<uint8_t> bytes_;
  std::map<std::string, std::string> metadata_;
  Span graph_;                               // the GraphProto's bytes
  std::map<std::string, Span> initializers_;  // whole field (tag, length, TensorProto) by name
};

}  // namespace runner
