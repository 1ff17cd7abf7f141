// The memory the tiling plan's sessions compute in: an OrtAllocator registered with the ONNX
// Runtime environment (sessions opt in with session.use_env_allocators).
//
// Why not ONNX Runtime's own arena: its regions never merge, so graphs with tensors of several
// sizes and tiles of a few shapes leave it holding far more than is ever in use. Why not plain
// malloc (no arena): each large tensor is then a fresh mmap, faulted in and zeroed page by page on
// every run. Demo model, 1280x720 input, default tile, no output image (peak RSS, system time):
// shared ORT arena 567 MB, 0.4 s; no arena 358 MB, 75 s; TileMemory 405 MB, 0.5 s.
//
// So: large blocks are mapped once and kept for reuse by a later request of the same size or up
// to half as large again, while the blocks kept plus those in use stay within 5/4 of the most that
// has ever been in use at once; beyond that, kept blocks go back to the system, oldest first.
// release() (between the statistics passes and the output tiles, and after them) returns every
// kept block: a phase's blocks rarely suit the next.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#include "onnxruntime_cxx_api.h"

namespace runner {

class TileMemory {
 public:
  TileMemory();
  ~TileMemory();
  TileMemory(const TileMemory&) = delete;
  TileMemory& operator=(const TileMemory&) = delete;

  OrtAllocator* ort() { return &api_.base; }
  void release();  // every kept block back to the system

 private:
  struct Api {
    OrtAllocator base;  // first member: ONNX Runtime's OrtAllocator* is a TileMemory::Api*
    TileMemory* self;
  };
  struct Block {
    size_t size;
    uint64_t stamp;  // when it was freed (for oldest-first eviction)
  };
  void* alloc(size_t n);
  void free(void* p);
  void evict_oldest();

  Api api_{};
  Ort::MemoryInfo info_{nullptr};
  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;     // large blocks in use -> size
  std::multimap<size_t, void*> kept_by_size_;  // large blocks kept for reuse
  std::unordered_map<void*, Block> kept_;
  size_t live_bytes_ = 0, kept_bytes_ = 0, peak_live_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace runner
