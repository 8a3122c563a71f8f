// Products with Q8 weights by int8 dot products (AVX-512 VNNI vpdpbusd: 64 multiply-adds per
// instruction): activations quantized per block of 32 (quantize_activations), integer sums per
// block, then the same float steps as the scalar twin (scalar::q8_gemv), so results are bitwise equal
// to it and between one row and a batch. Without AVX-512 VNNI the scalar twin runs.
// vpdpbusd multiplies unsigned by signed bytes, and activations are signed: the matrix-vector kernel
// multiplies |x| by the weights negated where x < 0 (weights are in [-127, 127]); the GEMM adds
// 128 to x and takes 128 x (the block's weight sum, found while packing) off again. Both give the
// exact integer sum of x * q, so no per-block sum is stored with the weights.
// Depends on kernels/reference.hpp, kernels/elementwise.hpp, detail/aligned.hpp.
#pragma once

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int32_t, std::uint8_t, std::uintptr_t
#include <cstring>    // std::memcpy

#include "../detail/aligned.hpp"
#include "elementwise.hpp"  // activate
#include "reference.hpp"    // quantize_activations, scalar::q8_gemv
#include "typed_load.hpp"   // prefetch_line

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define TINYLLM_Q8_VNNI 1
#else
#define TINYLLM_Q8_VNNI 0
#endif

namespace tinyllm::kernels::simd {

namespace q8_detail {

inline std::int32_t load_i32(const std::uint8_t* p) {  // four activation bytes as one int32
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Per-thread buffers for quantized activations, grown once.
inline std::uint8_t* xq_buffer(std::size_t n) {
  thread_local detail::AlignedBuffer buf;
  buf.resize((n + 3) / 4 + 16);
  return reinterpret_cast<std::uint8_t*>(buf.data());
}
inline float* xs_buffer(std::size_t n) {
  thread_local detail::AlignedBuffer buf;
  buf.resize(n + 16);
  return buf.data();
}

}  // namespace q8_detail

#if TINYLLM_Q8_VNNI

using q8_detail::load_i32;

// The scalar twin's quantize_activations, a whole block of 32 at a time in two vectors: the same
// max |x| (a NaN passed over, as std::max passes it), scale and reciprocal, and x * inv rounded to
// nearest even as nearbyint does; a last partial block and the padding go through the twin.
inline void quantize_activations(const float* x, std::size_t K, std::size_t K_pad, std::uint8_t* xq, float* xs) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i c128 = _mm512_set1_epi32(128);
  std::size_t b = 0;
  for (; (b + 1) * q8_block <= K; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + b * q8_block), x1 = _mm512_loadu_ps(x + b * q8_block + 16);
    // max_ps(a, m) gives m where a is NaN; m starts at 0, so it never is
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x1), _mm512_max_ps(_mm512_abs_ps(x0), zero)));
    const float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    xs[b] = s;
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i q0 = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x0, vinv)), c128);  // round to nearest even
    const __m512i q1 = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x1, vinv)), c128);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + b * q8_block), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + b * q8_block + 16), _mm512_cvtepi32_epi8(q1));
  }
  if (b * q8_block < K_pad)
    scalar::quantize_activations(x + b * q8_block, K - b * q8_block, K_pad - b * q8_block, xq + b * q8_block, xs + b);
}

// Blocks [b0, b1) of w added into running sums: sums[o - o_begin] for o in [o_begin, o_end)
// (o_begin a multiple of 16). xq / xs: the activations of those blocks. Each vector of 16 outputs
// takes a block's eight packed rows (four reduction indices each) into an int32 sum held in a
// register, then scale and add into the float sums; the block's eight row slices are read front to
// back side by side, the next block's lines asked for on the way: the line of each load's first
// byte, and of its last where a load spans two (a mapped pre-quantized file's rows may start
// mid-line; in a converted buffer each load is one line, and asking for it twice costs time).
// Integer sums are exact, so the order within a block changes nothing, and a reduction cut at any
// block gives the same results.
inline void q8_accumulate(const std::uint8_t* xq, const float* xs, const WeightView& w, float* sums, std::size_t b0,
                          std::size_t b1, std::size_t o_begin, std::size_t o_end) {
  constexpr std::size_t G = q8_block / q8_group;  // packed rows per block
  const std::size_t O_pad = w.o_pad(), nb = w.k_blocks(), row_bytes = O_pad * q8_group;
  const std::size_t nv = (o_end - o_begin + 15) / 16, rest = (o_end - o_begin) % 16;
  const std::int8_t* q = w.i8();
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80)), zero = _mm512_setzero_si512();
  // every load sits at the same place in its line: 64 * v and row_bytes are multiples of 64 or not
  const bool two_lines = (reinterpret_cast<std::uintptr_t>(q + o_begin * q8_group) | row_bytes) % 64 != 0;
  for (std::size_t b = b0; b < b1; ++b) {
    // four signed activations in every lane: |x| as the unsigned operand, their signs on the weights
    __m512i ax[G];
    __mmask64 negative[G];
    for (std::size_t g = 0; g < G; ++g) {
      const __m512i xg = _mm512_xor_si512(_mm512_set1_epi32(load_i32(xq + ((b - b0) * G + g) * q8_group)), offset);
      negative[g] = _mm512_movepi8_mask(xg);
      ax[g] = _mm512_abs_epi8(xg);
    }
    const std::int8_t* src = q + (b * G * O_pad + o_begin) * q8_group;
    const bool ahead = b + 1 < nb;
    const __m512 sx = _mm512_set1_ps(xs[b - b0]);
    const float* sc = w.scale + b * O_pad + o_begin;
    for (std::size_t v = 0; v < nv; ++v) {
      __m512i sum = zero;
      for (std::size_t g = 0; g < G; ++g) {
        const std::int8_t* r = src + g * row_bytes + 64 * v;
        if (ahead) {  // the lines of the load's first and last byte (see above)
          prefetch_line(r + G * row_bytes);
          if (two_lines) prefetch_line(r + G * row_bytes + 63);
        }
        const __m512i wv = _mm512_loadu_si512(r);
        sum = _mm512_dpbusd_epi32(sum, ax[g], _mm512_mask_sub_epi8(wv, negative[g], zero, wv));  // q * sign(x)
      }
      const __m512 s = _mm512_mul_ps(sx, _mm512_loadu_ps(sc + 16 * v));
      const __mmask16 m = v + 1 < nv || rest == 0 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << rest) - 1u);
      float* out = sums + 16 * v;
      _mm512_mask_storeu_ps(out, m, _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(sum), _mm512_maskz_loadu_ps(m, out)));
    }
  }
}

// y[o] for o in [o_begin, o_end) (see scalar::q8_gemv): the 16-aligned range that covers them in
// sweeps of 4096 outputs, every block into float sums that stay in L1 (q8_accumulate), rather than
// sums kept in memory between rows; a sweep reads 16 KB runs of each packed row.
inline void q8_gemv(const std::uint8_t* xq, const float* xs, const WeightView& w, const float* bias, float* y,
                    std::size_t o_begin, std::size_t o_end, Epilogue ep = Epilogue::none) {
  constexpr std::size_t chunk = 4096;  // outputs per sweep (16 KB of float results)
  alignas(64) float accf[chunk];
  for (std::size_t a0 = o_begin / 16 * 16; a0 < o_end; a0 += chunk) {
    const std::size_t a1 = std::min(round_up(o_end, 16), a0 + chunk);
    for (std::size_t j = 0; j < a1 - a0; ++j) accf[j] = bias && a0 + j < o_end && a0 + j >= o_begin ? bias[a0 + j] : 0.0f;
    q8_accumulate(xq, xs, w, accf, 0, w.k_blocks(), a0, a1);
    activate(accf, a1 - a0, ep);
    for (std::size_t o = std::max(a0, o_begin); o < std::min(a1, o_end); ++o) y[o] = accf[o - a0];
  }
}

// c[m, o] for m < M and o in [o_begin, o_end): the rows of xq ([M, K_pad]) against w, a register
// tile of 6 rows x 32 outputs (12 int32 sums, 12 float results); the weights of 32 outputs are
// packed contiguous per depth block so they stay in L1 while every row passes.
inline void q8_gemm(std::size_t M, const std::uint8_t* xq, const float* xs, const WeightView& w, const float* bias,
                    float* c, std::size_t ldc, std::size_t o_begin, std::size_t o_end, Epilogue ep = Epilogue::none) {
  constexpr std::size_t MR = 6, NR = 32, KB = 32;  // KB: blocks per depth block (1024 reduction indices)
  const std::size_t O_pad = w.o_pad(), nb = w.k_blocks(), K_pad = w.k_pad();
  const std::size_t rows_per_block = q8_block / q8_group;
  thread_local detail::AlignedBuffer panel_buf;
  panel_buf.resize(KB * rows_per_block * NR * q8_group / 4);
  std::int8_t* panel = reinterpret_cast<std::int8_t*>(panel_buf.data());
  alignas(64) std::int32_t qsum[KB][NR];  // 128 x the weight sum of each block and output of the panel
  const __m512i c128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (std::size_t o0 = o_begin / NR * NR; o0 < o_end; o0 += NR) {
    for (std::size_t b0 = 0; b0 < nb; b0 += KB) {
      const std::size_t b1 = std::min(nb, b0 + KB);
      // pack: panel[row][0..128) = the 32 outputs' 4-index groups of packed row `row`
      for (std::size_t b = b0; b < b1; ++b) {
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        for (std::size_t row = b * rows_per_block; row < (b + 1) * rows_per_block; ++row) {
          const std::int8_t* src = w.i8() + (row * O_pad + o0) * q8_group;
          std::int8_t* dst = panel + (row - b0 * rows_per_block) * NR * q8_group;
          const __m512i w0 = _mm512_loadu_si512(src), w1 = _mm512_loadu_si512(src + 64);
          _mm512_store_si512(dst, w0);
          _mm512_store_si512(dst + 64, w1);
          s0 = _mm512_dpbusd_epi32(s0, c128, w0);
          s1 = _mm512_dpbusd_epi32(s1, c128, w1);
        }
        _mm512_store_si512(qsum[b - b0], s0);
        _mm512_store_si512(qsum[b - b0] + 16, s1);
      }
      for (std::size_t m0 = 0; m0 < M; m0 += MR) {
        const std::size_t mr = std::min(MR, M - m0);
        const std::uint8_t* xr[MR];
        for (std::size_t r = 0; r < MR; ++r) xr[r] = xq + (m0 + std::min(r, mr - 1)) * K_pad;
        __m512 accf[MR][2];
        for (std::size_t r = 0; r < MR; ++r)
          for (std::size_t v = 0; v < 2; ++v) {
            const std::size_t o = o0 + 16 * v;
            if (b0 == 0) {
              alignas(64) float init[16];
              for (std::size_t j = 0; j < 16; ++j) init[j] = bias && o + j < o_end && o + j >= o_begin ? bias[o + j] : 0.0f;
              accf[r][v] = _mm512_load_ps(init);
            } else {
              alignas(64) float prev[16];
              for (std::size_t j = 0; j < 16; ++j)
                prev[j] = r < mr && o + j < o_end && o + j >= o_begin ? c[(m0 + r) * ldc + o + j] : 0.0f;
              accf[r][v] = _mm512_load_ps(prev);
            }
          }
        for (std::size_t b = b0; b < b1; ++b) {
          __m512i acci[MR][2];
          for (std::size_t r = 0; r < MR; ++r) acci[r][0] = acci[r][1] = _mm512_setzero_si512();
          const std::int8_t* p = panel + (b - b0) * rows_per_block * NR * q8_group;
          for (std::size_t g = 0; g < rows_per_block; ++g, p += NR * q8_group) {
            const __m512i w0 = _mm512_load_si512(p), w1 = _mm512_load_si512(p + 64);
            const std::size_t k = b * q8_block + g * q8_group;
            for (std::size_t r = 0; r < MR; ++r) {
              const __m512i xg = _mm512_set1_epi32(load_i32(xr[r] + k));
              acci[r][0] = _mm512_dpbusd_epi32(acci[r][0], xg, w0);
              acci[r][1] = _mm512_dpbusd_epi32(acci[r][1], xg, w1);
            }
          }
          const float* sc = w.scale + b * O_pad + o0;
          const __m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_loadu_ps(sc + 16);
          const __m512i q0 = _mm512_load_si512(qsum[b - b0]), q1 = _mm512_load_si512(qsum[b - b0] + 16);
          for (std::size_t r = 0; r < MR; ++r) {
            const __m512 sx = _mm512_set1_ps(xs[(m0 + std::min(r, mr - 1)) * nb + b]);
            accf[r][0] = _mm512_fmadd_ps(_mm512_mul_ps(sx, s0), _mm512_cvtepi32_ps(_mm512_sub_epi32(acci[r][0], q0)), accf[r][0]);
            accf[r][1] = _mm512_fmadd_ps(_mm512_mul_ps(sx, s1), _mm512_cvtepi32_ps(_mm512_sub_epi32(acci[r][1], q1)), accf[r][1]);
          }
        }
        const bool last = b1 == nb;
        for (std::size_t r = 0; r < mr; ++r) {
          alignas(64) float out[NR];
          _mm512_store_ps(out, accf[r][0]);
          _mm512_store_ps(out + 16, accf[r][1]);
          if (last) activate(out, NR, ep);
          for (std::size_t j = 0; j < NR; ++j)
            if (o0 + j >= o_begin && o0 + j < o_end) c[(m0 + r) * ldc + o0 + j] = out[j];
        }
      }
    }
  }
}

#else  // no AVX-512 VNNI: the scalar twins (bitwise the same results, slower)

using scalar::quantize_activations;

inline void q8_gemv(const std::uint8_t* xq, const float* xs, const WeightView& w, const float* bias, float* y,
                    std::size_t o_begin, std::size_t o_end, Epilogue ep = Epilogue::none) {
  scalar::q8_gemv(xq, xs, w, bias, y, o_begin, o_end, Epilogue::none);
  activate(y + o_begin, o_end - o_begin, ep);
}
inline void q8_accumulate(const std::uint8_t* xq, const float* xs, const WeightView& w, float* sums, std::size_t b0,
                          std::size_t b1, std::size_t o_begin, std::size_t o_end) {
  scalar::q8_accumulate(xq, xs, w, sums, b0, b1, o_begin, o_end);
}
inline void q8_gemm(std::size_t M, const std::uint8_t* xq, const float* xs, const WeightView& w, const float* bias,
                    float* c, std::size_t ldc, std::size_t o_begin, std::size_t o_end, Epilogue ep = Epilogue::none) {
  for (std::size_t m = 0; m < M; ++m)
    q8_gemv(xq + m * w.k_pad(), xs + m * w.k_blocks(), w, bias, c + m * ldc, o_begin, o_end, ep);
}

#endif

// The float-activation entry points: quantize x's rows, then the int8 products.
inline void q8_gemv(const float* x, std::size_t K, const WeightView& w, const float* bias, float* y,
                    std::size_t o_begin, std::size_t o_end, Epilogue ep) {
  std::uint8_t* xq = q8_detail::xq_buffer(w.k_pad());
  float* xs = q8_detail::xs_buffer(w.k_blocks());
  quantize_activations(x, K, w.k_pad(), xq, xs);
  q8_gemv(xq, xs, w, bias, y, o_begin, o_end, ep);
}
inline void q8_gemm(std::size_t M, const float* a, std::size_t lda, std::size_t K, const WeightView& w,
                    const float* bias, float* c, std::size_t ldc, std::size_t o_begin, std::size_t o_end,
                    Epilogue ep) {
  std::uint8_t* xq = q8_detail::xq_buffer(M * w.k_pad());
  float* xs = q8_detail::xs_buffer(M * w.k_blocks());
  for (std::size_t m = 0; m < M; ++m)
    quantize_activations(a + m * lda, K, w.k_pad(), xq + m * w.k_pad(), xs + m * w.k_blocks());
  q8_gemm(M, xq, xs, w, bias, c, ldc, o_begin, o_end, ep);
}

}  // namespace tinyllm::kernels::simd
