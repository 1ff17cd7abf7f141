// Shared by the runner's files: the one error type (main() prints it as one line, exit code 2) and
// file helpers.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace runner {

constexpr const char* kProgram = "scales-edge-run";

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The whole file; Error naming the path if it cannot be read.
std::vector<uint8_t> read_file(const std::string& path);

// Writes `bytes` to a temporary file in the target's folder, then renames it over `path`, so a
// failed write never leaves a truncated file (and never half-overwrites an existing one).
void write_file_atomic(const std::string& path, const void* bytes, size_t size);

// Lower-case extension without the dot ("" if none).
std::string lower_ext(const std::string& path);

// "[1, 3, 720, 1280]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace runner
