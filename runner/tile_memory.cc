#include "tile_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace runner {

namespace {

constexpr size_t kLarge = size_t{1} << 20;  // smaller requests go to malloc
constexpr size_t kPage = 4096;
constexpr size_t kHuge = size_t{2} << 20;

}  // namespace

TileMemory::TileMemory() : info_(Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeDefault)) {
  api_.self = this;
  api_.base.version = ORT_API_VERSION;
  api_.base.Alloc = [](OrtAllocator* a, size_t n) -> void* { return reinterpret_cast<Api*>(a)->self->alloc(n); };
  api_.base.Free = [](OrtAllocator* a, void* p) { reinterpret_cast<Api*>(a)->self->free(p); };
  api_.base.Info = [](const OrtAllocator* a) -> const OrtMemoryInfo* {
    return reinterpret_cast<const Api*>(a)->self->info_;
  };
  api_.base.Reserve = api_.base.Alloc;  // initializers: the same path
}

TileMemory::~TileMemory() {
  release();
  for (const auto& [p, size] : live_) munmap(p, size);  // outlived by nothing after the Env is gone
}

void* TileMemory::alloc(size_t n) {
  if (n < kLarge) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, n ? n : 1) != 0) return nullptr;
    return p;
  }
  n = (n + kPage - 1) / kPage * kPage;
  std::lock_guard<std::mutex> lock(mu_);
  // A kept block of this size or up to half as large again: reused, nothing to fault in.
  const auto it = kept_by_size_.lower_bound(n);
  if (it != kept_by_size_.end() && it->first <= n + n / 2) {
    void* p = it->second;
    const size_t size = it->first;
    kept_by_size_.erase(it);
    kept_.erase(p);
    kept_bytes_ -= size;
    live_[p] = size;
    live_bytes_ += size;
    peak_live_ = std::max(peak_live_, live_bytes_);
    return p;
  }
  // Room for a new block: kept ones go (oldest first) while the total would pass 5/4 of the most
  // ever in use at once.
  const size_t cap = std::max(peak_live_ + peak_live_ / 4, live_bytes_ + n);
  while (!kept_.empty() && live_bytes_ + kept_bytes_ + n > cap) evict_oldest();
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  if (n >= kHuge) madvise(p, n, MADV_HUGEPAGE);  // fewer, larger page faults where THP allows
#endif
  live_[p] = n;
  live_bytes_ += n;
  peak_live_ = std::max(peak_live_, live_bytes_);
  return p;
}

void TileMemory::free(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = live_.find(p);
    if (it != live_.end()) {
      const size_t size = it->second;
      live_.erase(it);
      live_bytes_ -= size;
      kept_[p] = {size, ++clock_};
      kept_by_size_.emplace(size, p);
      kept_bytes_ += size;
      return;
    }
  }
  std::free(p);
}

void TileMemory::evict_oldest() {
  auto oldest = kept_.begin();
  for (auto it = kept_.begin(); it != kept_.end(); ++it)
    if (it->second.stamp < oldest->second.stamp) oldest = it;
  void* p = oldest->first;
  const size_t size = oldest->second.size;
  for (auto it = kept_by_size_.lower_bound(size); it != kept_by_size_.end() && it->first == size; ++it) {
    if (it->second == p) {
      kept_by_size_.erase(it);
      break;
    }
  }
  kept_.erase(oldest);
  kept_bytes_ -= size;
  munmap(p, size);
}

void TileMemory::release() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!kept_.empty()) evict_oldest();
}

}  // namespace runner
