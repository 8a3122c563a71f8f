// Scalar twins of every SIMD kernel: the plainest correct loops, same signatures, used as the test
// oracle for kernels/*.hpp and as the code path of TINYLLM_NO_SIMD builds.
// Kernels take pointers, sizes, strides and ranges: never a config or a model type.
#pragma once

#include <algorithm>  // std::max, std::copy
#include <cmath>      // std::tanh, std::erf, std::exp, std::sqrt
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int32_t, std::uint8_t
#include <vector>     // std::vector

#include "../detail/half.hpp"   // f16_to_f32, bf16_to_f32
#include "../weight_type.hpp"  // WeightView

namespace tinyllm::kernels {

// What a matrix kernel applies to each output after adding the bias.
enum class Epilogue { none, gelu_new, gelu };

// Q8 element (k, o) (reduction index k, output o): its position in the packed data and its block.
inline std::size_t q8_index(const WeightView& w, std::size_t k, std::size_t o) {
  return ((k / q8_group) * w.o_pad() + o) * q8_group + k % q8_group;
}
inline std::size_t q8_block_index(const WeightView& w, std::size_t k, std::size_t o) {
  return (k / q8_block) * w.o_pad() + o;
}

// The float value of element (r, c) of w: the scalar definition every kernel agrees with.
inline float weight_at(const WeightView& w, std::size_t r, std::size_t c) {
  const std::size_t i = r * w.cols + c;
  switch (w.type) {
    case WeightType::F32: return w.f32()[i];
    case WeightType::F16: return detail::f16_to_f32(w.u16()[i]);
    case WeightType::BF16: return detail::bf16_to_f32(w.u16()[i]);
    case WeightType::Q8: {
      const std::size_t k = w.outputs_are_rows ? c : r, o = w.outputs_are_rows ? r : c;
      return static_cast<float>(w.i8()[q8_index(w, k, o)]) * w.scale[q8_block_index(w, k, o)];
    }
  }
  return 0.0f;
}

namespace scalar {

// Activations for products with Q8 weights: per block of 32, xs[b] = max |x| / 127 and
// xq[k] = round(x[k] / xs[b]) + 128 (unsigned, for vpdpbusd); K is padded to K_pad with 128 (zero).
inline void quantize_activations(const float* x, std::size_t K, std::size_t K_pad, std::uint8_t* xq, float* xs) {
  for (std::size_t b = 0; b * q8_block < K_pad; ++b) {
    const std::size_t k0 = b * q8_block, k1 = std::min(K, k0 + q8_block);
    float amax = 0.0f;
    for (std::size_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(x[k]));
    const float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    xs[b] = s;
    for (std::size_t k = k0; k < k0 + q8_block; ++k)
      xq[k] = static_cast<std::uint8_t>(k < k1 ? static_cast<int>(std::nearbyint(x[k] * inv)) + 128 : 128);
  }
}

// Index of the largest of x[0:n], the first on ties (torch.argmax's choice); a NaN is passed over
// (no comparison with it holds), unless x[0] is one. 0 when n is 0.
inline std::size_t argmax(const float* x, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

inline float gelu_new(float x) {  // GPT-2's tanh approximation
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}
inline float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f)); }
inline float apply(Epilogue ep, float v) {
  return ep == Epilogue::gelu_new ? gelu_new(v) : ep == Epilogue::gelu ? gelu_erf(v) : v;
}

// y[0:n] = (x - mean) / sqrt(var + eps) * gamma + beta; x, y: [n]; may alias.
inline void layer_norm(const float* x, const float* gamma, const float* beta, float* y, std::size_t n, float eps) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  double sq = 0;
  for (std::size_t i = 0; i < n; ++i) sq += double(x[i] - mean) * double(x[i] - mean);
  const float rstd = 1.0f / std::sqrt(static_cast<float>(sq / static_cast<double>(n)) + eps);
  for (std::size_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}

// x[0:n] = act(x), in place.
inline void activate(float* x, std::size_t n, Epilogue ep) {
  for (std::size_t i = 0; i < n; ++i) x[i] = apply(ep, x[i]);
}

// x[0:n] = softmax(x), in place.
inline void softmax(float* x, std::size_t n) {
  float m = x[0];
  for (std::size_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  for (std::size_t i = 0; i < n; ++i) x[i] /= s;
}

// y[0:n] += x[0:n]
inline void add(float* y, const float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] += x[i];
}

// Every matrix kernel computes each output element as one chain, bias first, then k = 0, 1, ... in
// order, whatever the number of rows or the column range: so one row alone and the same row in a
// batch give bitwise the same result (the SIMD kernels keep this too). Weights are WeightViews of
// any WeightType; weight_at gives an element's float value.

// Products with Q8 weights: y[o] = act(bias[o] + sum_b (xs[b] * scale[b, o]) * (sum_{k in b} (xq[k] - 128) * q[k, o]))
// over blocks b in order; the integer sums are exact, so the SIMD kernels give bitwise the same.
// xq: [K_pad] from quantize_activations; xs: [K_pad / 32]; outputs [o_begin, o_end).
inline void q8_gemv(const std::uint8_t* xq, const float* xs, const WeightView& w, const float* bias, float* y,
                    std::size_t o_begin, std::size_t o_end, Epilogue ep = Epilogue::none) {
  for (std::size_t o = o_begin; o < o_end; ++o) {
    float acc = bias ? bias[o] : 0.0f;
    for (std::size_t b = 0; b < w.k_blocks(); ++b) {
      std::int32_t dot = 0;  // exact: |sum| <= 32 * 127 * 127
      for (std::size_t k = b * q8_block; k < (b + 1) * q8_block; ++k)
        dot += (static_cast<std::int32_t>(xq[k]) - 128) * w.i8()[q8_index(w, k, o)];
      const std::size_t bi = q8_block_index(w, b * q8_block, o);
      acc = std::fma(xs[b] * w.scale[bi], static_cast<float>(dot), acc);
    }
    y[o] = apply(ep, acc);
  }
}

// Blocks [b0, b1) of a Q8 w added into running sums sums[o - o_begin], o in [o_begin, o_end), by
// q8_gemv's steps: xq / xs hold the activations of those blocks (quantize_activations of x[32 b0 ..]).
inline void q8_accumulate(const std::uint8_t* xq, const float* xs, const WeightView& w, float* sums, std::size_t b0,
                          std::size_t b1, std::size_t o_begin, std::size_t o_end) {
  for (std::size_t o = o_begin; o < o_end; ++o) {
    float acc = sums[o - o_begin];
    for (std::size_t b = b0; b < b1; ++b) {
      std::int32_t dot = 0;
      for (std::size_t k = b * q8_block; k < (b + 1) * q8_block; ++k)
        dot += (static_cast<std::int32_t>(xq[k - b0 * q8_block]) - 128) * w.i8()[q8_index(w, k, o)];
      acc = std::fma(xs[b - b0] * w.scale[q8_block_index(w, b * q8_block, o)], static_cast<float>(dot), acc);
    }
    sums[o - o_begin] = acc;
  }
}

// Rows [k0, k1) of w added into running sums: a[n] = fma(x[k], w[k, n], a[n]) for k in order and n
// in [n_begin, n_end); Q8: those rows' blocks by q8_gemv's steps. Each sum stays the one chain gemv
// computes.
inline void gemv_accumulate(const float* x, const WeightView& w, float* a, std::size_t k0, std::size_t k1,
                            std::size_t n_begin, std::size_t n_end) {
  if (w.type == WeightType::Q8) {  // whole blocks (k0 a multiple of 32; k1 too, or w's last row)
    const std::size_t b0 = k0 / q8_block, b1 = (k1 + q8_block - 1) / q8_block;
    std::vector<std::uint8_t> xq((b1 - b0) * q8_block);
    std::vector<float> xs(b1 - b0);
    quantize_activations(x + k0, k1 - k0, xq.size(), xq.data(), xs.data());
    q8_accumulate(xq.data(), xs.data(), w, a + n_begin, b0, b1, n_begin, n_end);
    return;
  }
  for (std::size_t k = k0; k < k1; ++k)
    for (std::size_t n = n_begin; n < n_end; ++n) a[n] = std::fma(x[k], weight_at(w, k, n), a[n]);
}

// Matrix-vector, weight in HF Conv1D layout (w: [K, N], in x out), columns [n_begin, n_end):
// y[n] = act(bias[n] + sum_k x[k] * w[k, n])
// x: [K]; bias: [N] or null; y: [N]. (Q8: see q8_gemv.)
inline void gemv(const float* x, const WeightView& w, const float* bias, float* y, std::size_t K, std::size_t n_begin,
                 std::size_t n_end, Epilogue ep = Epilogue::none) {
  if (w.type == WeightType::Q8) {
    std::vector<std::uint8_t> xq(w.k_pad());
    std::vector<float> xs(w.k_blocks());
    quantize_activations(x, K, w.k_pad(), xq.data(), xs.data());
    q8_gemv(xq.data(), xs.data(), w, bias, y, n_begin, n_end, ep);
    return;
  }
  for (std::size_t n = n_begin; n < n_end; ++n) y[n] = bias ? bias[n] : 0.0f;
  gemv_accumulate(x, w, y, 0, K, n_begin, n_end);  // row by row: w is read in memory order
  for (std::size_t n = n_begin; n < n_end; ++n) y[n] = apply(ep, y[n]);
}

// Matrix-matrix over columns [n_begin, n_end): c[m, n] = act(bias[n] + sum_k a[m, k] * b[k, n]).
// a: [M, lda]; b: [K, N] (HF Conv1D: in x out); c: [M, ldc]; bias: [N] or null.
inline void gemm(std::size_t M, std::size_t K, const float* a, std::size_t lda, const WeightView& b, const float* bias,
                 float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  for (std::size_t m = 0; m < M; ++m) gemv(a + m * lda, b, bias, c + m * ldc, K, n_begin, n_end, ep);
}

// gemm with A prepared once and shared by threads (the SIMD kernel packs it in tiles; here it is A's
// rows copied as they are): pack_a_rows fills rows [r0, r1) of packed_a_size(M, K) floats.
inline constexpr std::size_t packed_a_rows = 1;
inline std::size_t packed_a_size(std::size_t M, std::size_t K) { return M * K; }
inline void pack_a_rows(const float* a, std::size_t lda, std::size_t /*M*/, std::size_t K, std::size_t r0,
                        std::size_t r1, float* ap) {
  for (std::size_t m = r0; m < r1; ++m) std::copy(a + m * lda, a + m * lda + K, ap + m * K);
}
inline void gemm_packed(std::size_t M, std::size_t K, const float* ap, const WeightView& b, const float* bias, float* c,
                        std::size_t ldc, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  gemm(M, K, ap, K, b, bias, c, ldc, n_begin, n_end, ep);
}

// The AMX kernel's arithmetic (kernels/amx.hpp): a and b rounded to bf16 (nearest even), products
// exact in f32, summed in f32 (here in k order; the tiles sum pairs of k first, so results agree to
// f32 rounding, not bitwise), then bias and activation.
inline void gemm_bf16(std::size_t M, std::size_t K, const float* a, std::size_t lda, const WeightView& b,
                      const float* bias, float* c, std::size_t ldc, std::size_t n_begin, std::size_t n_end,
                      Epilogue ep = Epilogue::none) {
  auto round = [](float v) { return detail::bf16_to_f32(detail::f32_to_bf16(v)); };
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = n_begin; n < n_end; ++n) {
      float s = 0.0f;
      for (std::size_t k = 0; k < K; ++k) s = std::fma(round(a[m * lda + k]), round(weight_at(b, k, n)), s);
      c[m * ldc + n] = apply(ep, s + (bias ? bias[n] : 0.0f));
    }
}

// Up to a few rows at a time in the SIMD kernels (one sweep of the weights); here, row by row.
inline void gemv_rows(std::size_t M, const float* x, std::size_t ldx, const WeightView& w, const float* bias, float* y,
                      std::size_t ldy, std::size_t K, std::size_t n_begin, std::size_t n_end, Epilogue ep = Epilogue::none) {
  for (std::size_t m = 0; m < M; ++m) gemv(x + m * ldx, w, bias, y + m * ldy, K, n_begin, n_end, ep);
}

// Rows of x against a matrix stored row per output, rows [n_begin, n_end) of it:
// y[m, n] = sum_k x[m, k] * w[n, k].   x: [M, ldx]; w: [N, K]; y: [M, ldy]. (The tied head: h @ wte^T.)
inline void gemv_t(std::size_t M, const float* x, std::size_t ldx, const WeightView& w, float* y, std::size_t ldy,
                   std::size_t K, std::size_t n_begin, std::size_t n_end) {
  for (std::size_t m = 0; m < M; ++m) {
    if (w.type == WeightType::Q8) {
      gemv(x + m * ldx, w, nullptr, y + m * ldy, K, n_begin, n_end);
      continue;
    }
    for (std::size_t n = n_begin; n < n_end; ++n) {
      float s = 0;
      for (std::size_t k = 0; k < K; ++k) s += x[m * ldx + k] * weight_at(w, n, k);
      y[m * ldy + n] = s;
    }
  }
}

// out[0:cols] = row r of w as floats (the embedding lookup).
inline void dequantize_row(const WeightView& w, std::size_t r, float* out) {
  for (std::size_t c = 0; c < w.cols; ++c) out[c] = weight_at(w, r, c);
}

// One query against T cached positions of one head (the oracle for layers/attention.hpp):
// out[0:hd] = softmax(scale * q . k[t]) over t < T, weighting v[t].
// q: [hd]; k, v: [T, ld] (row t at k + t*ld); scores: [T] scratch; out: [hd].
inline void attention(const float* q, const float* k, const float* v, std::size_t ld, std::size_t T, std::size_t hd,
                      float scale, float* scores, float* out) {
  for (std::size_t t = 0; t < T; ++t) {
    float s = 0;
    for (std::size_t i = 0; i < hd; ++i) s += q[i] * k[t * ld + i];
    scores[t] = s * scale;
  }
  softmax(scores, T);
  for (std::size_t i = 0; i < hd; ++i) out[i] = 0;
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < hd; ++i) out[i] += scores[t] * v[t * ld + i];
}

}  // namespace scalar
}  // namespace tinyllm::kernels
