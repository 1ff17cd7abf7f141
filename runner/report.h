// The runner's JSON report: the schema of `scales-edge bench --json` ("scales-edge.bench/1") plus
// a "runner" object. Built with JsonObject, so a new field is one add() call.
#pragma once

#include <string>
#include <vector>

#include "json.h"

namespace runner {

constexpr const char* kSchema = "scales-edge.bench/1";

// The fields of scales_edge.runtime.bench.machine_info(); "python" is null here.
JsonObject machine_info(const std::string& onnxruntime_version);

// Latency statistics of `times_ms` as scales_edge.runtime.bench.BenchResult's fields
// (median_ms, p10_ms, p90_ms, min_ms, mean_ms) added to `result`; returns the median.
double add_latency(JsonObject& result, const std::vector<double>& times_ms);

// The median of `values` (numpy.median's; values not empty).
double median_of(const std::vector<double>& values);

// CPU time of the calling thread (ms). With 1 thread ONNX Runtime runs the graph on the thread
// that calls Run, so per run this leaves out the time the process waited for a core (as
// `scales-edge bench` reports it, cpu_median_ms).
double thread_cpu_ms();

double peak_rss_mb();

}  // namespace runner
