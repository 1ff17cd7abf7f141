// The row function IsaKernels::pack_nchw_row around a variant's
//   template <bool kSums, bool kDot, int kN> pack_group(x, plane, beta, c0, n, W, CW, out, sums, sw, dot)
// (8 channels over a whole row, kN = 8 or 0 for a last group of n < 8; pack_avx2.h,
// pack_avx512.h), and the sums a group finishes with. Include inside the variant's namespace
// before defining pack_group (compiled with AVX: the groups keep 8 float lanes per channel).

template <bool kSums, bool kDot, int kN>
static inline void pack_group(const float* x, int64_t plane, const float* beta, int64_t c0,
                              int64_t n_arg, int64_t W, int64_t CW, uint64_t* out, double* sums,
                              const float* sw, float* dot);

// sums[c0 + j] for the group's n channels from their 8 float lanes acc[j] (the first W8 pixels)
// and the remaining pixels of each channel's row xg + j*plane, in the order of reductions.h.
static inline void finish_group_sums(const __m256* acc, int64_t n, const float* xg, int64_t plane,
                                     int64_t W8, int64_t W, int64_t c0, double* sums) {
  for (int64_t j = 0; j < n; ++j) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc[j]);
    sums[c0 + j] = finish_lane_sum(lanes, xg + j * plane + W8, W - W8);
  }
}

template <bool kSums, bool kDot>
static void pack_nchw_fused(const float* x, int64_t plane, const float* beta, int64_t C,
                            int64_t W, uint64_t* out, double* sums, const float* sw, float* dot) {
  const int64_t CW = (C + 63) / 64;
  int64_t c0 = 0;
  for (; c0 + 8 <= C; c0 += 8)
    pack_group<kSums, kDot, 8>(x, plane, beta, c0, 8, W, CW, out, sums, sw, dot);
  if (c0 < C) pack_group<kSums, kDot, 0>(x, plane, beta, c0, C - c0, W, CW, out, sums, sw, dot);
}

// IsaKernels::pack_nchw_row. A strided spatial dot is left to the generic sweep.
[[maybe_unused]] static void pack_nchw_row_impl(const float* x, int64_t plane, const float* beta,
                                                int64_t C, int64_t W, uint64_t* out,
                                                uint64_t* /*scratch*/, double* sums,
                                                const float* spatial_w, int64_t sW, float* dot) {
  const bool fused_dot = dot && sW == 1;
  auto* fn = sums ? (fused_dot ? &pack_nchw_fused<true, true> : &pack_nchw_fused<true, false>)
                  : (fused_dot ? &pack_nchw_fused<false, true> : &pack_nchw_fused<false, false>);
  fn(x, plane, beta, C, W, out, sums, spatial_w, dot);
  if (dot && !fused_dot) spatial_dot(x, plane, C, W, spatial_w, sW, dot);
}
