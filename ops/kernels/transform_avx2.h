// The output transform of one row of one channel with 8-float AVX vectors (IsaKernels::
// transform_row), for avx2.cc and avx512.cc (both compiled with -mavx2). Include inside the
// variant's namespace, with transform.h included. The float32 operations of the scalar transform,
// in the same order (no FMA: -ffp-contract=off), so the same bits.

// The row with the factors given by the template flags.
struct TransformRow8 {
  template <bool kSpatial, bool kSkip>
  static void row(const int32_t* src, int64_t n, float sc, float bi, const float* s_row, float c,
                  const float* xs, float* dst) {
    const __m256 vsc = _mm256_set1_ps(sc), vbi = _mm256_set1_ps(bi), vc = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_mul_ps(
          _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))), vsc);
      v = _mm256_add_ps(v, vbi);
      if (kSpatial) v = _mm256_mul_ps(v, _mm256_loadu_ps(s_row + i));
      v = _mm256_mul_ps(v, vc);
      if (kSkip) v = _mm256_add_ps(v, _mm256_loadu_ps(xs + i));
      _mm256_storeu_ps(dst + i, v);
    }
    transform_row_scalar<kSpatial, kSkip>(src + i, n - i, sc, bi, kSpatial ? s_row + i : nullptr, c,
                                          kSkip ? xs + i : nullptr, dst + i);
  }
};

// IsaKernels::transform_row.
static void transform_row_impl(const int32_t* src, int64_t n, float sc, float bi,
                               const float* s_row, float c, const float* xs, float* dst) {
  transform_row_for<TransformRow8>(src, n, sc, bi, s_row, c, xs, dst);
}
