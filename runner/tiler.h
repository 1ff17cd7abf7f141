// Tiled super-resolution with bounded memory, exactly as `scales-edge upscale` does it
// (runtime/tilerun.py, TiledRunner): the tiling plan `scales-edge export` stores in the model
// (runtime/tileplan.py) gives the graphs; this file runs them with the same tile grids, feeds,
// tile order, float64 statistics sums and convergence test, so the floats it hands out are the
// Python tiler's, bit for bit.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model_file.h"
#include "onnxruntime_cxx_api.h"

namespace runner {

struct Tile {  // core [y0, y1) x [x0, x1) and the region run [ry0, ry1) x [rx0, rx1), LR pixels
  int y0, y1, x0, x1, ry0, ry1, rx0, rx1;
  int64_t area() const { return static_cast<int64_t>(ry1 - ry0) * (rx1 - rx0); }
};

// `ceil(n / tile)` near-equal spans of [0, n), starting on multiples of `align` (tiling._cuts).
std::vector<std::pair<int, int>> cuts(int n, int tile, int align = 1);
int aligned_overlap(int overlap, int align);
// tiling.tile_grid: cores of at most tile x tile, grown by overlap, clipped; largest region first.
std::vector<Tile> tile_grid(int h, int w, int tile, int overlap, int align = 1);

struct Pool {
  std::string output;
  bool keepdims = false;
  double scale = 1.0;
};

// The plan as stored in the model's metadata (format 1, see runtime/tileplan.py).
struct Plan {
  std::string input;
  int scale = 0;
  bool exact = false;  // the receptive field is bounded
  int exact_overlap = 0;
  int window = 0;
  int min_side = 1;
  std::vector<Pool> pools;
  std::vector<std::string> features;  // body -> tail tensors; empty: no cut (the "apply" graph)
  int tail_overlap = 0;
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> graphs;  // kind -> (zlib'd model, shared weights)

  // Reads the plan of `model`; Error if it is missing (says how to get one), stale or malformed.
  static Plan from_model(const ModelFile& model);
  int auto_overlap(int tile) const;  // Upscaler.auto_overlap
  int stats_tile(int tile) const;    // TilingPlan.stats_tile
  int tail_tile(int tile) const;     // TilingPlan.tail_tile
};

// What the last run did (for the report).
struct TilingStats {
  int tiles = 0, tail_tiles = 0, stats_tiles = 0, passes = 0;
  bool whole = true;
};

// Receives each tile's kept output: planar float32 [channels, h, w] at output pixel (x0, y0), with
// row stride `stride` and plane stride `plane` (elements).
using WriteFn = std::function<void(int x0, int y0, const float* y, int channels, int h, int w, int64_t stride, int64_t plane)>;
using SessionFn = std::function<Ort::Session(const void* model, size_t size, const std::string& kind)>;
using PhaseFn = std::function<void()>;

class Tiler {
 public:
  // `make_session(bytes, size, kind)` creates the session of one plan graph; `end_phase()` is
  // called after the statistics passes and after the output tiles (TileMemory::release).
  Tiler(const ModelFile& model, Plan plan, SessionFn make_session, PhaseFn end_phase);

  // Creates the sessions of every graph the plan runs (else each is created on first use).
  void prepare();
  // x: [1, C, h, w] float32. Tiles of `tile` LR pixels (> 0) with `overlap` (aligned to the window).
  void run(const float* x, int channels, int h, int w, int tile, int overlap, const WriteFn& write);
  const TilingStats& stats() const { return stats_; }
  const Plan& plan() const { return plan_; }

 private:
  struct Means {
    std::vector<std::vector<float>> values;  // per pool
    std::vector<std::vector<int64_t>> shapes;
  };
  Ort::Session& session(const std::string& kind);
  Means global_means(const float* x, int channels, int h, int w, const std::vector<Tile>& tiles);
  void apply_tile(const float* x, int channels, int h, int w, const Tile& t, int tile, const Means& means,
                  const WriteFn& write);

  const ModelFile& model_;
  Plan plan_;
  SessionFn make_session_;
  PhaseFn end_phase_;
  std::map<std::string, std::unique_ptr<Ort::Session>> sessions_;
  TilingStats stats_;
};

}  // namespace runner
