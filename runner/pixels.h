// The pixel arithmetic around the model, bit for bit as runtime/pixels.py and
// scales_edge.runtime.infer.Upscaler.upscale_image define it (built with -ffp-contract=off: no
// fused multiply-add, every float operation rounded as numpy rounds it).
#pragma once

#include <cstdint>
#include <vector>

#include "image_io.h"

namespace runner {

// The model's input [channels, H, W] float32: v / maxval, gray replicated to RGB for a 3-channel
// model, alpha left out. Error if a 1-channel model gets a colour image.
std::vector<float> model_input(const Image& img, int channels);

// Writes model output (planar float32, ~[0, 1], `channels` planes of `h` x `w` with row stride
// `stride` and plane stride `plane`) into `out` at (x0, y0): clipped, * peak (255 / 65535, float32),
// rounded half to even; an RGB output into a gray image as (0.299 R + 0.587 G) + 0.114 B first.
// RGBA images get their first three channels (alpha: resize_cubic).
void store_output(Image& out, int x0, int y0, const float* y, int channels, int h, int w, int64_t stride,
                  int64_t plane);

// `src`'s alpha channel upscaled by `s` into `dst`'s (both RGBA of the same depth, dst s times
// larger): OpenCV's INTER_CUBIC kernel, separable passes in float64 (runtime/pixels.py).
void resize_alpha_cubic(const Image& src, Image& dst, int s);

}  // namespace runner
