// Measured choice of a kernel path per op and geometry (kernels.h, choose_kernels): a newer
// instruction set is not automatically faster (on a Zen 4 the AVX2 conv beat the first AVX-512
// one), so each op times its own work on the candidate paths once per geometry, the way oneDNN
// and FFTW pick implementations by measurement. Compiled without instruction-set flags.
#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kernels.h"

namespace scales_edge {
namespace kernels {

namespace {

constexpr double kProcessBudgetMs = 60.0;  // all measurements of one process
// One timed repetition of a contender: short, so that on a busy machine some repetitions of each
// path run without being preempted (the least time per unit is kept).
constexpr double kRepTargetMs = 0.5;
constexpr int kReps = 5;
constexpr double kContender = 1.5;         // within this factor of the best single unit

struct Tuner {
  std::mutex mu;
  std::map<std::string, PathChoice> cache;
  double spent_ms = 0.0;
  int wins[kNumPaths] = {0, 0, 0, 0};
};

Tuner& tuner() {
  static Tuner t;
  return t;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* choice_how_name(ChoiceHow how) {
  switch (how) {
    case ChoiceHow::kForced: return "forced";
    case ChoiceHow::kOnly: return "only";
    case ChoiceHow::kMeasured: return "measured";
    case ChoiceHow::kCached: return "cached";
    case ChoiceHow::kBudget: return "budget";
  }
  return "?";
}

PathChoice choose_kernels(const std::string& key,
                          const std::function<void(const IsaKernels&, int64_t)>& run,
                          int64_t max_units) {
  Tuner& t = tuner();
  std::lock_guard<std::mutex> lock(t.mu);
  const auto hit = t.cache.find(key);
  if (hit != t.cache.end()) {
    PathChoice c = hit->second;
    if (c.how == ChoiceHow::kMeasured) c.how = ChoiceHow::kCached;
    return c;
  }
  const std::vector<Path> paths = supported_paths();
  PathChoice c;
  if (paths.size() == 1 || max_units < 1) {
    c.kernels = compiled_kernels(paths.back());
    c.how = ChoiceHow::kOnly;
    return c;  // not cached: nothing was measured
  }
  if (t.spent_ms >= kProcessBudgetMs) {
    // The path that won most measurements so far (the newest on a tie).
    Path best = paths.back();
    for (Path p : paths)
      if (t.wins[static_cast<int>(p)] > t.wins[static_cast<int>(best)]) best = p;
    c.kernels = compiled_kernels(best);
    c.how = ChoiceHow::kBudget;
    return c;
  }
  const double t0 = now_ms();
  auto time_units = [&](Path p, int64_t units) {
    const double a = now_ms();
    run(*compiled_kernels(p), units);
    return now_ms() - a;
  };
  // One unit on every path, twice (the first warms caches and scratch); a path far slower than
  // the best so far is not run a second time.
  double best_one = 1e300;
  double one[kNumPaths];
  for (Path p : paths) {
    double ms = time_units(p, 1);
    if (ms < 4.0 * best_one) ms = std::min(ms, time_units(p, 1));
    one[static_cast<int>(p)] = ms;
    c.unit_ms[static_cast<int>(p)] = ms;
    best_one = std::min(best_one, ms);
  }
  // The contenders: a few units, kReps times, alternating; the least time per unit.
  std::vector<Path> contenders;
  for (Path p : paths)
    if (one[static_cast<int>(p)] <= kContender * best_one) contenders.push_back(p);
  const int64_t units = std::max<int64_t>(
      1, std::min<int64_t>(max_units, static_cast<int64_t>(kRepTargetMs / std::max(best_one, 1e-3))));
  if (contenders.size() > 1) {
    double per_unit[kNumPaths] = {1e300, 1e300, 1e300, 1e300};
    for (int r = 0; r < kReps; ++r)
      for (Path p : contenders)
        per_unit[static_cast<int>(p)] =
            std::min(per_unit[static_cast<int>(p)], time_units(p, units) / units);
    for (Path p : contenders) c.unit_ms[static_cast<int>(p)] = per_unit[static_cast<int>(p)];
  }
  // The least time per unit recorded (a path that was not a contender keeps its single-unit time).
  Path best = contenders.front();
  for (Path p : paths)
    if (c.unit_ms[static_cast<int>(p)] < c.unit_ms[static_cast<int>(best)]) best = p;
  c.kernels = compiled_kernels(best);
  c.how = ChoiceHow::kMeasured;
  t.spent_ms += now_ms() - t0;
  ++t.wins[static_cast<int>(best)];
  t.cache.emplace(key, c);
  return c;
}

}  // namespace kernels
}  // namespace scales_edge
