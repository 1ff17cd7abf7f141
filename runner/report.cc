#include "report.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <thread>

namespace runner {

JsonObject machine_info(const std::string& onnxruntime_version) {
  struct utsname u {};
  uname(&u);
  std::string model, flags_line;
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    auto value = [&] {
      const size_t c = line.find(':');
      std::string v = c == std::string::npos ? "" : line.substr(c + 1);
      const size_t s = v.find_first_not_of(" \t");
      return s == std::string::npos ? std::string() : v.substr(s);
    };
    if (model.empty() && line.rfind("model name", 0) == 0) model = value();
    if (flags_line.empty() && (line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0))
      flags_line = " " + value() + " ";
  }
  static const char* kInteresting[] = {"avx2", "avx512f", "avx512bw", "avx512_vpopcntdq",
                                       "avx512_vnni", "amx_int8", "asimd", "neon"};
  std::string flags = "[";
  for (const char* name : kInteresting)
    if (flags_line.find(std::string(" ") + name + " ") != std::string::npos)
      flags += (flags.size() > 1 ? ", " : "") + json_string(name);
  flags += "]";
  const unsigned cores = std::thread::hardware_concurrency();
  JsonObject m;
  m.add("machine", std::string(u.machine)).add("cpu", model);
  if (cores) m.add("cores", static_cast<int64_t>(cores));
  else m.add_null("cores");
  return m.add_raw("cpu_flags", flags).add("onnxruntime", onnxruntime_version).add_null("python");
}

namespace {

// numpy.percentile with linear interpolation.
double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

double add_latency(JsonObject& result, const std::vector<double>& t) {
  double mean = 0.0;
  for (double v : t) mean += v;
  mean /= static_cast<double>(t.size());
  const double median = percentile(t, 50.0);
  result.add("median_ms", median)
      .add("p10_ms", percentile(t, 10.0))
      .add("p90_ms", percentile(t, 90.0))
      .add("min_ms", *std::min_element(t.begin(), t.end()))
      .add("mean_ms", mean);
  return median;
}

double median_of(const std::vector<double>& values) { return percentile(values, 50.0); }

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace runner
