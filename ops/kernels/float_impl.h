// The float row kernels of float_kernels.h, written once over a small vector type; included once
// by each of float_portable.cc, float_avx2.cc, float_avx512.cc, float_neon.cc, which are compiled
// with different instruction-set flags.
//
// Before including, a translation unit defines
//   SCALES_EDGE_FLOAT_NS  a namespace name unique to the variant (everything below lives in it, so
//                         the linker cannot merge copies compiled with different -m flags), and
//   struct F              in that namespace, the variant's vector of floats:
//     static constexpr int kLanes;       floats per vector
//     static constexpr int kKeyBlock;    keys per block of the score products (registers: 2*kKeyBlock + 3)
//     static constexpr int kValueBlock;  value channels per block of the output products (<= 12;
//                                        registers: 2*kValueBlock + 3)
//     using V;
//     static V load(const float*); static void store(float*, V);       (unaligned)
//     static V load_int(const int32_t*);                                int32 -> float
//     static V set1(float); static V zero();
//     static V add(V, V); static V sub(V, V); static V mul(V, V); static V div(V, V);
//     static V max(V, V);
//     static V fma(V a, V b, V c);        a * b + c (fused where the ISA has it)
//     static V min(V, V);                 (both min and max return NaN for a NaN second operand)
//     static V round(V);                  to the nearest integer (ties to even)
//     static V ldexp(V p, V n);           p * 2^n for integral n in [-126, 127]
//     static V abs(V);
//     static V select_le(V a, V b, V x, V y);   a <= b ? x : y, per lane (false for NaN)
//     static void transpose(V* rows);     rows[0..kLanes) as a kLanes x kLanes block, transposed
//     static V ne_value(V a, V b, V value);     a != b ? value : 0, per lane
//     static float hsum(V);
//
// This file must not use standard-library templates or other inline functions with external
// linkage (see isa_impl.h): everything here is static or in the variant's namespace.
#ifndef SCALES_EDGE_FLOAT_NS
#error "define SCALES_EDGE_FLOAT_NS before including float_impl.h"
#endif

#include <cstdint>
#include <limits>
#include <cstring>

namespace scales_edge {
namespace kernels {
namespace SCALES_EDGE_FLOAT_NS {

using V = F::V;
constexpr int L = F::kLanes;
// Queries per block: two vectors of queries, so each broadcast key or value feeds two products.
constexpr int64_t kQueryBlock = 2 * L;
// docs/ops.md: tokens of different regions get -100, here in base 2 (the logits are log2(e) x)
constexpr float kMaskValue2 = -100.0f * kLog2e;

static inline int64_t round_up_to(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Region of position v of a shifted map of `size` pixels: 0, 1 or 2 (docs/ops.md).
static inline int64_t band(int64_t v, int64_t size, int64_t ws, int64_t shift) {
  return (v >= size - ws ? 1 : 0) + (v >= size - shift ? 1 : 0);
}

// ---------------------------------------------------------------- exponentials

// 2^x = 2^n * P(x - n), n = round(x): relative error within 2 ulp (P: float_kernels.h). For
// x < -126 it gives 2^-126 (a normal float, for a softmax's far tail); NaN stays NaN.
static inline V exp2_v(V x) {
  x = F::max(F::set1(-126.0f), x);
  const V n = F::round(x);
  const V r = F::sub(x, n);
  V p = F::set1(kExp2c5);
  p = F::fma(p, r, F::set1(kExp2c4));
  p = F::fma(p, r, F::set1(kExp2c3));
  p = F::fma(p, r, F::set1(kExp2c2));
  p = F::fma(p, r, F::set1(kExp2c1));
  return F::ldexp(F::fma(p, r, F::set1(1.0f)), n);
}

// e^x = 2^n * P(r), n = round(x log2 e), r = x - n ln 2 (ln 2 in two parts): within 2 ulp for
// -87 <= x <= 88 (x < -87 gives e^-87, x > 88 gives e^88); NaN stays NaN.
static inline V exp_v(V x) {
  x = F::min(F::set1(88.0f), F::max(F::set1(-87.0f), x));
  const V n = F::round(F::mul(x, F::set1(kLog2e)));
  V r = F::fma(n, F::set1(-kLn2Hi), x);
  r = F::fma(n, F::set1(-kLn2Lo), r);
  V p = F::set1(kExp5);
  p = F::fma(p, r, F::set1(kExp4));
  p = F::fma(p, r, F::set1(kExp3));
  p = F::fma(p, r, F::set1(kExp2));
  p = F::fma(p, r, F::set1(kExp1));
  return F::ldexp(F::fma(p, r, F::set1(1.0f)), n);
}

// ---------------------------------------------------------------- erf and GELU

// GELU(x) = x * Phi(x), Phi the normal distribution's CDF: Phi = 1 - E/2 for x >= 0 and E/2 for
// x < 0, E = erfc(z) = exp(-z^2) * t * Q(t), z = |x| / sqrt(2), t = 1 / (1 + z/2). Q (degree 10)
// is a least-squares fit of exp(z^2) erfc(z) / t on [0, 10] made for this library with numpy
// against math.erfc (relative error 1.9e-8). One expression for every x (no branches to blend),
// and more accurate in the negative tail than 1 + erf(x / sqrt 2), which cancels in float32.
static inline V gelu_v(V x) {
  const V z = F::mul(F::abs(x), F::set1(0.70710678118654752f));
  const V t = F::div(F::set1(1.0f), F::fma(z, F::set1(0.5f), F::set1(1.0f)));
  V q = F::set1(0.04106707498431206f);
  q = F::fma(q, t, F::set1(-0.22041349112987518f));
  q = F::fma(q, t, F::set1(0.45246049761772156f));
  q = F::fma(q, t, F::set1(-0.3880000114440918f));
  q = F::fma(q, t, F::set1(0.06428162008523941f));
  q = F::fma(q, t, F::set1(-0.014412896707654f));
  q = F::fma(q, t, F::set1(0.0740341767668724f));
  q = F::fma(q, t, F::set1(0.18076637387275696f));
  q = F::fma(q, t, F::set1(0.24594099819660187f));
  q = F::fma(q, t, F::set1(0.28218457102775574f));
  q = F::fma(q, t, F::set1(0.2820911109447479f));
  const V half_e = F::mul(F::mul(exp_v(F::mul(F::sub(F::zero(), z), z)), F::mul(t, q)), F::set1(0.5f));
  const V phi = F::select_le(F::zero(), x, F::sub(F::set1(1.0f), half_e), half_e);
  return F::mul(x, phi);
}

// ---------------------------------------------------------------- ScalesLinear

// (the last K % L products through zero-padded lane buffers: no scalar chain after the lanes)
static float dot_impl(const float* x, const float* w, int64_t K) {
  V a0 = F::zero(), a1 = F::zero();
  int64_t k = 0;
  for (; k + 2 * L <= K; k += 2 * L) {
    a0 = F::fma(F::load(x + k), F::load(w + k), a0);
    a1 = F::fma(F::load(x + k + L), F::load(w + k + L), a1);
  }
  for (; k + L <= K; k += L) a0 = F::fma(F::load(x + k), F::load(w + k), a0);
  if (k < K) {
    float xt[L], wt[L];
    for (int l = 0; l < L; ++l) {
      xt[l] = k + l < K ? x[k + l] : 0.0f;
      wt[l] = k + l < K ? w[k + l] : 0.0f;
    }
    a1 = F::fma(F::load(xt), F::load(wt), a1);
  }
  return F::hsum(F::add(a0, a1));
}

template <bool kSpatial, bool kGelu, bool kResidual>
static inline V linear_vec(V acc, V sc, V bi, V s, V res) {
  const V prod = F::mul(acc, sc);  // float32 multiply, then add (BinaryLinear's formula)
  V v = F::add(prod, bi);
  if (kSpatial) v = F::mul(v, s);
  if (kGelu) v = gelu_v(v);
  if (kResidual) v = F::add(v, res);
  return v;
}

template <bool kSpatial, bool kGelu, bool kResidual>
static void linear_row_t(const int32_t* acc, int64_t M, const float* scale, const float* bias,
                         float s, const float* residual, float* y) {
  const V sv = F::set1(s);
  int64_t m = 0;
  for (; m + L <= M; m += L) {
    const V bi = bias ? F::load(bias + m) : F::zero();
    const V res = kResidual ? F::load(residual + m) : F::zero();
    F::store(y + m, linear_vec<kSpatial, kGelu, kResidual>(F::load_int(acc + m), F::load(scale + m),
                                                           bi, sv, res));
  }
  if (m == M) return;
  // The last M % L outputs through lane buffers (the same arithmetic, lane by lane).
  int32_t a[L];
  float sc[L], bi[L], res[L], out[L];
  for (int l = 0; l < L; ++l) {
    const bool in = m + l < M;
    a[l] = in ? acc[m + l] : 0;
    sc[l] = in ? scale[m + l] : 0.0f;
    bi[l] = in && bias ? bias[m + l] : 0.0f;
    res[l] = in && kResidual ? residual[m + l] : 0.0f;
  }
  F::store(out, linear_vec<kSpatial, kGelu, kResidual>(F::load_int(a), F::load(sc), F::load(bi),
                                                       sv, F::load(res)));
  for (int64_t l = 0; m + l < M; ++l) y[m + l] = out[l];
}

// GELU over a run of floats, two vectors at a time (two independent chains of its long
// polynomial evaluations), then the residual.
static void gelu_impl(float* y, int64_t n, const float* residual) {
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    V a = gelu_v(F::load(y + i)), b = gelu_v(F::load(y + i + L));
    if (residual) {
      a = F::add(a, F::load(residual + i));
      b = F::add(b, F::load(residual + i + L));
    }
    F::store(y + i, a);
    F::store(y + i + L, b);
  }
  for (; i < n; i += L) {
    float buf[L], res[L];
    for (int l = 0; l < L; ++l) {
      buf[l] = i + l < n ? y[i + l] : 0.0f;
      res[l] = i + l < n && residual ? residual[i + l] : 0.0f;
    }
    F::store(buf, F::add(gelu_v(F::load(buf)), F::load(res)));
    for (int64_t l = 0; l < L && i + l < n; ++l) y[i + l] = buf[l];
  }
}

// LayerNorm of one row: the mean, then the mean of squared deviations (two passes in float
// lanes; the last K % L features through a zero-padded lane buffer, so no scalar tail lengthens
// the row's chain of dependent operations).
static void layer_norm_impl(const float* x, int64_t K, const float* w, const float* b, float eps,
                            float* out) {
  static const float kIota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const int64_t full = K / L * L, tail = K - full;
  float xt[L], wt[L], bt[L];
  for (int l = 0; l < L; ++l) {
    xt[l] = l < tail ? x[full + l] : 0.0f;
    wt[l] = l < tail ? w[full + l] : 0.0f;
    bt[l] = l < tail ? b[full + l] : 0.0f;
  }
  V a = F::load(xt);
  for (int64_t k = 0; k < full; k += L) a = F::add(a, F::load(x + k));
  const float mean = F::hsum(a) / static_cast<float>(K);
  const V mv = F::set1(mean);
  const V in_tail = F::set1(static_cast<float>(tail) - 0.5f);
  V dt = F::select_le(F::load(kIota), in_tail, F::sub(F::load(xt), mv), F::zero());
  a = F::mul(dt, dt);
  for (int64_t k = 0; k < full; k += L) {
    const V dv = F::sub(F::load(x + k), mv);
    a = F::fma(dv, dv, a);
  }
  const float var = F::hsum(a) / static_cast<float>(K);
  const V iv = F::set1(1.0f / __builtin_sqrtf(var + eps));  // (no std:: inline function here)
  for (int64_t k = 0; k < full; k += L)
    F::store(out + k, F::fma(F::mul(F::sub(F::load(x + k), mv), iv), F::load(w + k), F::load(b + k)));
  if (tail) {
    F::store(xt, F::fma(F::mul(dt, iv), F::load(wt), F::load(bt)));
    for (int64_t l = 0; l < tail; ++l) out[full + l] = xt[l];
  }
}

// v[i] = sigmoid(v[i] + bias) = 1 / (1 + exp(-(v[i] + bias))) for i < n.
static void sigmoid_impl(float* v, int64_t n, float bias) {
  const V one = F::set1(1.0f), bv = F::set1(bias);
  for (int64_t i = 0; i < n; i += L) {
    float buf[L];
    for (int l = 0; l < L; ++l) buf[l] = i + l < n ? v[i + l] : 0.0f;
    const V e = exp_v(F::sub(F::zero(), F::add(F::load(buf), bv)));
    F::store(buf, F::div(one, F::add(one, e)));
    for (int64_t l = 0; l < L && i + l < n; ++l) v[i + l] = buf[l];
  }
}

static void linear_row_impl(const int32_t* acc, int64_t M, const float* scale, const float* bias,
                            float s, Activation act, const float* residual, float* y) {
  const bool spatial = s != 1.0f, gelu = act == Activation::kGelu, res = residual != nullptr;
  // (s == 1 multiplies by 1, which is exact: leaving it out changes nothing)
  if (spatial) {
    if (gelu) {
      res ? linear_row_t<true, true, true>(acc, M, scale, bias, s, residual, y)
          : linear_row_t<true, true, false>(acc, M, scale, bias, s, residual, y);
    } else {
      res ? linear_row_t<true, false, true>(acc, M, scale, bias, s, residual, y)
          : linear_row_t<true, false, false>(acc, M, scale, bias, s, residual, y);
    }
  } else {
    if (gelu) {
      res ? linear_row_t<false, true, true>(acc, M, scale, bias, s, residual, y)
          : linear_row_t<false, true, false>(acc, M, scale, bias, s, residual, y);
    } else {
      res ? linear_row_t<false, false, true>(acc, M, scale, bias, s, residual, y)
          : linear_row_t<false, false, false>(acc, M, scale, bias, s, residual, y);
    }
  }
}

// ---------------------------------------------------------------- WindowAttention

// Scratch layout (floats): qt [C][Nqp] (q * scale, transposed: queries fastest), zeros [C] (the
// keys and values of positions outside the map), st [Nk][kQueryBlock] (scores, then
// exponentials, of one block of queries), ot [d][kQueryBlock] (its outputs), ob [Nqp][C + L]
// (the window's outputs, copied out pixel by pixel at the end; the L extra floats of a row take
// the spill of the last head's transposed blocks), labels of the queries [Nqp] and keys [Nk].
static int64_t attention_scratch_impl(const AttentionGeometry& g) {
  const int64_t Nqp = round_up_to(g.Nq, kQueryBlock);
  return g.C * Nqp + g.C + g.Nk * kQueryBlock + g.d * kQueryBlock + Nqp * (g.C + L) + Nqp + g.Nk;
}

// Issues a window's prefetches a few at a time between blocks of its work (in one burst they
// fill the CPU's miss queue and stall it instead of overlapping the arithmetic).
struct Prefetcher {
  const Prefetch& p;
  int64_t row = 0, off = 0, wrow = 0, woff = 0;
  explicit Prefetcher(const Prefetch& pf) : p(pf) {}
  int64_t lines() const { return p.count * ((p.bytes + 63) / 64) + p.wcount * ((p.wbytes + 63) / 64); }
  void issue(int64_t n) {
    for (; n > 0 && row < p.count; --n) {
      __builtin_prefetch(p.rows[row] + off, 0, 2);
      if ((off += 64) >= p.bytes) off = 0, ++row;
    }
    for (; n > 0 && wrow < p.wcount; --n) {
      __builtin_prefetch(p.wrows[wrow] + woff, 1, 3);
      if ((woff += 64) >= p.wbytes) woff = 0, ++wrow;
    }
  }
};

// Scores of KB keys against one block of queries, in base 2: st[k][q] = bias + sum_e qt[e][q] *
// key[k][e] (+ the mask), all times log2(e) (qt and bias carry the factor), and the running
// maximum of each query. krow[k]: key k's channels of this head, where qkv holds them.
template <int KB>
static inline void score_keys(const float* qt, int64_t Nqp, const float* const* krow, int64_t hd, int64_t d,
                              const float* bias, const float* labq, const float* labk, bool masked,
                              float* st, V* mx) {
  V acc[KB][2];
  for (int kk = 0; kk < KB; ++kk) {
    acc[kk][0] = F::load(bias + kk * Nqp);
    acc[kk][1] = F::load(bias + kk * Nqp + L);
  }
  for (int64_t e = 0; e < d; ++e) {
    const V q0 = F::load(qt + e * Nqp), q1 = F::load(qt + e * Nqp + L);
    for (int kk = 0; kk < KB; ++kk) {
      const V kv = F::set1(krow[kk][hd + e]);
      acc[kk][0] = F::fma(q0, kv, acc[kk][0]);
      acc[kk][1] = F::fma(q1, kv, acc[kk][1]);
    }
  }
  for (int kk = 0; kk < KB; ++kk)
    for (int r = 0; r < 2; ++r) {
      V v = acc[kk][r];
      if (masked) v = F::add(v, F::ne_value(F::load(labq + r * L), F::set1(labk[kk]), F::set1(kMaskValue2)));
      F::store(st + kk * kQueryBlock + r * L, v);
      mx[r] = F::max(mx[r], v);
    }
}

// EB output channels of one block of queries: ot[e][q] = sum_k p[k][q] * value[k][e] * inv[q]
// (inv = 1 / the softmax's sum).
template <int EB>
static inline void weigh_values(const float* st, int64_t Nk, const float* const* vrow, int64_t he,
                                const V* inv, float* ot) {
  V acc[EB][2];
  for (int ee = 0; ee < EB; ++ee) acc[ee][0] = acc[ee][1] = F::zero();
  for (int64_t k = 0; k < Nk; ++k) {
    const V p0 = F::load(st + k * kQueryBlock), p1 = F::load(st + k * kQueryBlock + L);
    const float* vk = vrow[k] + he;
    for (int ee = 0; ee < EB; ++ee) {
      const V vv = F::set1(vk[ee]);
      acc[ee][0] = F::fma(p0, vv, acc[ee][0]);
      acc[ee][1] = F::fma(p1, vv, acc[ee][1]);
    }
  }
  for (int ee = 0; ee < EB; ++ee)
    for (int r = 0; r < 2; ++r) F::store(ot + ee * kQueryBlock + r * L, F::mul(acc[ee][r], inv[r]));
}

static void attend_window_impl(const AttentionGeometry& g, const float* qkv,
                               const AttentionBias& bias, int64_t n, int64_t wy, int64_t wx,
                               float* y, int64_t* pix, const float** rows, float* scratch,
                               const Prefetch& prefetch) {
  const int64_t C = g.C, C3 = g.C3, d = g.d, Nq = g.Nq, Nk = g.Nk, Nqp = bias.Nqp;
  const int64_t H = g.H, W = g.W, ws = g.ws, kws = g.kws, s = g.shift;
  float* qt = scratch;
  float* zeros = qt + C * Nqp;
  float* st = zeros + C;
  const float** krow = rows;
  const float** vrow = rows + Nk;
  float* ot = st + Nk * kQueryBlock;
  float* ob = ot + d * kQueryBlock;
  const int64_t Cp = C + L;  // ob's row stride
  float* labq = ob + Nqp * Cp;
  float* labk = labq + Nqp;
  int64_t* qpix = pix;
  int64_t* kpix = pix + Nq;

  // Positions in the (shifted) map and the pixels they hold: pixel = (position + shift) mod size.
  for (int64_t i = 0, q = 0; i < ws; ++i) {
    const int64_t ry = wy * ws + i;
    const int64_t oy = ry + s >= H ? ry + s - H : ry + s;
    for (int64_t j = 0; j < ws; ++j, ++q) {
      const int64_t rx = wx * ws + j;
      const int64_t ox = rx + s >= W ? rx + s - W : rx + s;
      qpix[q] = (n * H + oy) * W + ox;
      labq[q] = s ? static_cast<float>(3 * band(ry, H, ws, s) + band(rx, W, ws, s)) : 0.0f;
    }
  }
  for (int64_t q = Nq; q < Nqp; ++q) labq[q] = 0.0f;
  for (int64_t i = 0, k = 0; i < kws; ++i) {
    const int64_t ry = wy * ws - g.pad + i;
    const int64_t oy = ry + s >= H ? ry + s - H : ry + s;
    for (int64_t j = 0; j < kws; ++j, ++k) {
      const int64_t rx = wx * ws - g.pad + j;
      if (ry < 0 || ry >= H || rx < 0 || rx >= W) {
        kpix[k] = -1;
        labk[k] = 0.0f;
        continue;
      }
      const int64_t ox = rx + s >= W ? rx + s - W : rx + s;
      kpix[k] = (n * H + oy) * W + ox;
      labk[k] = s ? static_cast<float>(3 * band(ry, H, ws, s) + band(rx, W, ws, s)) : 0.0f;
    }
  }

  // Gather q * scale * log2(e) (the logits in base 2), transposed in blocks of L queries x L
  // channels (padding queries are zeros); then keys and values.
  const V sv = F::set1(g.scale * kLog2e);
  for (int64_t q0 = 0; q0 < Nqp; q0 += L) {
    const float* src[L];
    for (int i = 0; i < L; ++i) src[i] = q0 + i < Nq ? qkv + qpix[q0 + i] * C3 : nullptr;
    for (int64_t c0 = 0; c0 < C; c0 += L) {
      V rows[L];
      const bool inside = c0 + L <= C3;  // L floats from c0 stay inside the pixel's q|k|v
      for (int i = 0; i < L; ++i) {
        if (!src[i]) {
          rows[i] = F::zero();
        } else if (inside) {
          rows[i] = F::load(src[i] + c0);
        } else {
          float buf[L];
          for (int l = 0; l < L; ++l) buf[l] = c0 + l < C ? src[i][c0 + l] : 0.0f;
          rows[i] = F::load(buf);
        }
      }
      F::transpose(rows);
      for (int64_t j = 0; j < L && c0 + j < C; ++j) F::store(qt + (c0 + j) * Nqp + q0, F::mul(rows[j], sv));
    }
  }
  // keys and values are read where qkv holds them (zeros outside the map)
  std::memset(zeros, 0, static_cast<size_t>(C) * sizeof(float));
  for (int64_t k = 0; k < Nk; ++k) {
    krow[k] = kpix[k] < 0 ? zeros : qkv + kpix[k] * C3 + C;
    vrow[k] = kpix[k] < 0 ? zeros : qkv + kpix[k] * C3 + 2 * C;
  }

  // Only windows where the shifted map wraps hold tokens of different regions.
  bool masked = false;
  if (s != 0) {
    for (int64_t q = 1; q < Nq && !masked; ++q) masked = labq[q] != labq[0];
    for (int64_t k = 0; k < Nk && !masked; ++k) masked = kpix[k] >= 0 && labk[k] != labq[0];
  }
  constexpr int KB = F::kKeyBlock;
  // The next window's memory, requested a share at a time between the blocks of work below.
  Prefetcher pf(prefetch);
  const int64_t per_step = pf.lines() / (g.heads * (Nqp / kQueryBlock) * (Nk / KB + 1)) + 1;
  for (int64_t h = 0; h < g.heads; ++h) {
    const float* qt_h = qt + h * d * Nqp;
    const int64_t hd = h * d;
    const float* bias_h = bias.data.data() + h * Nk * Nqp;
    for (int64_t q0 = 0; q0 < Nqp; q0 += kQueryBlock) {
      // (from -inf: a query whose logits are all -inf gets NaN, 0/0, as the reference's softmax)
      const float lowest = -std::numeric_limits<float>::infinity();
      V mx[2] = {F::set1(lowest), F::set1(lowest)};
      int64_t k = 0;
      for (; k + KB <= Nk; k += KB) {
        pf.issue(per_step);
        score_keys<KB>(qt_h + q0, Nqp, krow + k, hd, d, bias_h + k * Nqp + q0, labq + q0,
                       labk + k, masked, st + k * kQueryBlock, mx);
      }
      for (; k < Nk; ++k)
        score_keys<1>(qt_h + q0, Nqp, krow + k, hd, d, bias_h + k * Nqp + q0, labq + q0,
                      labk + k, masked, st + k * kQueryBlock, mx);
      V sum[2] = {F::zero(), F::zero()};
      for (k = 0; k < Nk; ++k)
        for (int r = 0; r < 2; ++r) {
          float* p = st + k * kQueryBlock + r * L;
          const V e = exp2_v(F::sub(F::load(p), mx[r]));
          F::store(p, e);
          sum[r] = F::add(sum[r], e);
        }
      const V one = F::set1(1.0f);
      V sum_inv[2] = {F::div(one, sum[0]), F::div(one, sum[1])};
      const V* inv = sum_inv;
      for (int64_t e0 = 0; e0 < d;) {  // the widest blocks of channels the registers hold
        const int64_t left = d - e0;
        const int64_t v0 = hd + e0;
        float* o0 = ot + e0 * kQueryBlock;
        if (F::kValueBlock >= 12 && left >= 12) {
          weigh_values<12>(st, Nk, vrow, v0, inv, o0);
          e0 += 12;
        } else if (F::kValueBlock >= 10 && left == 10) {
          weigh_values<10>(st, Nk, vrow, v0, inv, o0);
          e0 += 10;
        } else if (F::kValueBlock >= 8 && left >= 8) {
          weigh_values<8>(st, Nk, vrow, v0, inv, o0);
          e0 += 8;
        } else if (F::kValueBlock >= 6 && left >= 6) {
          weigh_values<6>(st, Nk, vrow, v0, inv, o0);
          e0 += 6;
        } else if (left >= 4) {
          weigh_values<4>(st, Nk, vrow, v0, inv, o0);
          e0 += 4;
        } else if (left >= 2) {
          weigh_values<2>(st, Nk, vrow, v0, inv, o0);
          e0 += 2;
        } else {
          weigh_values<1>(st, Nk, vrow, v0, inv, o0);
          e0 += 1;
        }
      }
      // into ob, transposed in blocks of L queries x L channels: a block's lanes past the head's
      // d channels spill into the next head's (written after, in order) or into the row's pad
      for (int64_t qb = 0; qb < kQueryBlock && q0 + qb < Nq; qb += L)
        for (int64_t e0 = 0; e0 < d; e0 += L) {
          V rows[L];
          for (int j = 0; j < L; ++j)
            rows[j] = e0 + j < d ? F::load(ot + (e0 + j) * kQueryBlock + qb) : F::zero();
          F::transpose(rows);
          for (int64_t i = 0; i < L && q0 + qb + i < Nq; ++i) F::store(ob + (q0 + qb + i) * Cp + h * d + e0, rows[i]);
        }
    }
  }
  pf.issue(pf.lines());  // whatever is left
  for (int64_t q = 0; q < Nq; ++q)
    std::memcpy(y + qpix[q] * C, ob + q * Cp, static_cast<size_t>(C) * sizeof(float));
}

}  // namespace SCALES_EDGE_FLOAT_NS
}  // namespace kernels
}  // namespace scales_edge
