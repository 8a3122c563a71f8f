// Q8 products for a few to 64 rows of activations (batch steps, short prompts, speculative
// verification) by int8 dot products (AVX-512 VNNI vpdpbusd), register-blocked like rows_product:
// each weight is read from memory once per pass and its dot products for all rows run while it is in
// a register. Per block of 32 the integer sums are exact and the float steps those of the scalar twin
// (scalar::q8_gemv), so every row is bitwise what one row alone gives.
// vpdpbusd multiplies unsigned by signed bytes: here the weights take the unsigned side (q + 128, a
// flip of the top bit) and the activations the signed one, and 128 x (the block's activation sum)
// comes off each sum again: one correction per row of x and block, not per output.
// Scalar twin: scalar::q8_gemv row by row. Depends on kernels/q8.hpp, kernels/rows.hpp.
#pragma once

#include <algorithm>  // std::min, std::max
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int8_t, std::int32_t, std::uint8_t

#include "../detail/aligned.hpp"  // AlignedBuffer
#include "elementwise.hpp"        // activate
#include "q8.hpp"                 // quantize_activations, load_i32, TINYLLM_Q8_VNNI
#include "reference.hpp"          // Epilogue
#include "rows.hpp"               // rows_detail::with_count, max_group, tile_vectors

namespace tinyllm::kernels::simd {

#if TINYLLM_Q8_VNNI

namespace q8_rows_detail {

constexpr std::size_t G = q8_block / q8_group;  // packed rows of w per block
constexpr std::size_t blocks_per_tile = 2;       // blocks of 32 a tile takes in turn (64 reduction indices)

// The activations of M rows as vpdpbusd's signed operand: xs8 [M][K_pad] (x quantized, as int8),
// corr[m][b] = 128 x the sum of block b's int8 values of row m, xs[m][b] the blocks' scales.
struct Activations {
  const std::int8_t* xs8;
  const std::int32_t* corr;
  const float* xs;
  std::size_t K_pad, nb;
};

// Sums y[m, o .. o + 16 NV) for m < MX over blocks [b0, b1): per block, the integer sums of MX x NV
// vectors in registers, then each float sum continued by the twin's step (fma of xs * scale and the
// exact integer sum); only the outputs in `mask` are read and written (all but a sweep's edge vectors).
// `ahead`: if set, the tile asks for its rows' lines that many outputs on.
template <std::size_t MX, std::size_t NV>
inline void tile(const Activations& a, std::size_t m0, const WeightView& w, std::size_t b0, std::size_t b1,
                 std::size_t o, __mmask16 mask, bool first, const float* bias, float* y, std::size_t ldy,
                 std::size_t ahead) {
  const std::size_t O_pad = w.o_pad();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  if (first)
    for (std::size_t m = 0; m < MX; ++m)
      for (std::size_t v = 0; v < NV; ++v)
        _mm512_mask_storeu_ps(y + m * ldy + o + 16 * v, mask, bias ? _mm512_maskz_loadu_ps(mask, bias + o + 16 * v) : _mm512_setzero_ps());
  std::size_t b = b0;
  do {  // b0 < b1 (see rows_detail::tile)
    __m512i acc[MX][NV];
    for (std::size_t m = 0; m < MX; ++m)
      for (std::size_t v = 0; v < NV; ++v) acc[m][v] = _mm512_setzero_si512();
    const std::int8_t* q = w.i8() + (b * G * O_pad + o) * q8_group;
    for (std::size_t g = 0; g < G; ++g) {
      if (ahead)
        for (std::size_t v = 0; v < NV; ++v) prefetch_line(q + (g * O_pad + ahead) * q8_group + 64 * v);
      __m512i wv[NV];
      for (std::size_t v = 0; v < NV; ++v)
        wv[v] = _mm512_xor_si512(_mm512_loadu_si512(q + g * O_pad * q8_group + 64 * v), flip);  // q + 128
      for (std::size_t m = 0; m < MX; ++m) {
        const __m512i xm = _mm512_set1_epi32(q8_detail::load_i32(
            reinterpret_cast<const std::uint8_t*>(a.xs8 + (m0 + m) * a.K_pad + (b * G + g) * q8_group)));
        for (std::size_t v = 0; v < NV; ++v) acc[m][v] = _mm512_dpbusd_epi32(acc[m][v], wv[v], xm);
      }
    }
    const float* sc = w.scale + b * O_pad + o;
    for (std::size_t m = 0; m < MX; ++m) {
      const __m512i corr = _mm512_set1_epi32(a.corr[(m0 + m) * a.nb + b]);
      const __m512 sx = _mm512_set1_ps(a.xs[(m0 + m) * a.nb + b]);
      for (std::size_t v = 0; v < NV; ++v) {
        float* out = y + m * ldy + o + 16 * v;
        const __m512 dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[m][v], corr));
        const __m512 s = _mm512_mul_ps(sx, _mm512_loadu_ps(sc + 16 * v));
        _mm512_mask_storeu_ps(out, mask, _mm512_fmadd_ps(s, dot, _mm512_maskz_loadu_ps(mask, out)));
      }
    }
  } while (++b < b1);
}

// Blocks [b0, b1) over outputs [o_lo, o1) (vectors of 16 from o0 = o_lo rounded down to 16; the
// first and last masked to the range) for all M rows, strip by strip, each strip in groups of A or
// A - 1 rows (the strip's weights stay in L1 for the groups after the first).
template <std::size_t A>
inline void block(std::size_t M, const Activations& a, const WeightView& w, std::size_t b0, std::size_t b1,
                  std::size_t o_lo, std::size_t o1, bool first, const float* bias, float* y, std::size_t ldy) {
  constexpr std::size_t NV = rows_detail::tile_vectors<A>(), S = 16 * NV;
  const std::size_t groups = (M + A - 1) / A, big = M - groups * (A - 1);
  const std::size_t distance = std::max<std::size_t>(1, rows_detail::ahead_bytes / (S * q8_group)) * S;
  auto strip = [&](std::size_t o, auto nv, __mmask16 mask) {
    constexpr std::size_t V = decltype(nv)::value;
    std::size_t ahead = o + distance + S <= o1 ? distance : 0;  // the first group asks for the lines ahead
    std::size_t m = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t mx = g < big ? A : A - 1;
      auto run = [&](auto rows) {
        tile<decltype(rows)::value, V>(a, m, w, b0, b1, o, mask, first, bias, y + m * ldy, ldy, ahead);
      };
      if constexpr (A > 1)
        if (mx == A - 1) run(std::integral_constant<std::size_t, A - 1>{});
      if (mx == A) run(std::integral_constant<std::size_t, A>{});
      ahead = 0;
      m += mx;
    }
  };
  auto lanes = [](std::size_t lo, std::size_t hi) {  // mask of lanes [lo, hi) of a vector
    return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
  };
  using one = std::integral_constant<std::size_t, 1>;
  std::size_t o = o_lo / 16 * 16;
  if (o < o_lo) {  // the first vector starts before the range
    strip(o, one{}, lanes(o_lo - o, std::min<std::size_t>(16, o1 - o)));
    o += 16;
  }
  const std::size_t whole = o < o1 ? o + (o1 - o) / 16 * 16 : o;
  for (; o + S <= whole; o += S) strip(o, std::integral_constant<std::size_t, NV>{}, __mmask16(0xffff));
  if (o < whole) rows_detail::with_count<NV>((whole - o) / 16, [&](auto nv) { strip(o, nv, __mmask16(0xffff)); });
  if (whole < o1) strip(whole, one{}, lanes(0, o1 - whole));
}

}  // namespace q8_rows_detail

// c[m, o] for m < M and o in [o_begin, o_end) (see scalar::q8_gemv): rows of x ([M, lda], K of them)
// quantized per block of 32, then the int8 products by register tiles. Outputs go in sweeps whose
// float sums (in c) stay in L2, each sweep's blocks two at a time, strip by strip.
inline void q8_rows(std::size_t M, const float* x, std::size_t ldx, std::size_t K, const WeightView& w,
                    const float* bias, float* c, std::size_t ldc, std::size_t o_begin, std::size_t o_end, Epilogue ep) {
  using namespace q8_rows_detail;
  if (M == 0 || o_begin >= o_end) return;
  const std::size_t K_pad = w.k_pad(), nb = w.k_blocks();
  // the activations, once per call
  thread_local detail::AlignedBuffer xbuf, sbuf, cbuf;
  xbuf.resize(M * K_pad / 4 + 16);
  sbuf.resize(M * nb + 16);
  cbuf.resize(M * nb + 16);
  auto* xs8 = reinterpret_cast<std::int8_t*>(xbuf.data());
  auto* corr = reinterpret_cast<std::int32_t*>(cbuf.data());
  float* xs = sbuf.data();
  for (std::size_t m = 0; m < M; ++m) {
    auto* xq = reinterpret_cast<std::uint8_t*>(xs8 + m * K_pad);
    quantize_activations(x + m * ldx, K, K_pad, xq, xs + m * nb);
    for (std::size_t b = 0; b < nb; ++b) {
      std::int32_t sum = 0;
      for (std::size_t k = b * q8_block; k < (b + 1) * q8_block; ++k) {
        const std::int32_t v = static_cast<std::int32_t>(xq[k]) - 128;
        xs8[m * K_pad + k] = static_cast<std::int8_t>(v);
        sum += v;
      }
      corr[m * nb + b] = 128 * sum;
    }
  }
  const Activations act{xs8, corr, xs, K_pad, nb};
  const std::size_t groups = (M + rows_detail::max_group - 1) / rows_detail::max_group;
  const std::size_t A = (M + groups - 1) / groups;
  rows_detail::with_count<rows_detail::max_group>(A, [&](auto a) {
    const std::size_t first_o = o_begin / 16 * 16;  // vectors of 16 outputs from here (w is padded to 32: in bounds)
    const std::size_t vectors = (o_end - first_o + 15) / 16;
    const std::size_t chunk = std::max<std::size_t>(1, rows_detail::sweep_bytes / (sizeof(float) * M) / 16);
    const std::size_t sweeps = (vectors + chunk - 1) / chunk, per_sweep = (vectors + sweeps - 1) / sweeps;
    const std::size_t width = per_sweep * 16;
    for (std::size_t i = 0; i < sweeps; ++i) {  // sweep i: outputs [o0, o1)
      const std::size_t o0 = std::max(o_begin, first_o + i * width), o1 = std::min(o_end, first_o + (i + 1) * width);
      for (std::size_t b0 = 0; b0 < nb; b0 += blocks_per_tile)
        q8_rows_detail::block<decltype(a)::value>(M, act, w, b0, std::min(nb, b0 + blocks_per_tile), o0, o1, b0 == 0,
                                                  bias, c, ldc);
      if (ep != Epilogue::none)
        for (std::size_t m = 0; m < M; ++m) activate(c + m * ldc + o0, o1 - o0, ep);
    }
  });
}

#else  // no AVX-512 VNNI: the scalar twin

inline void q8_rows(std::size_t M, const float* x, std::size_t ldx, std::size_t K, const WeightView& w,
                    const float* bias, float* c, std::size_t ldc, std::size_t o_begin, std::size_t o_end, Epilogue ep) {
  q8_gemm(M, x, ldx, K, w, bias, c, ldc, o_begin, o_end, ep);
}

#endif

}  // namespace tinyllm::kernels::simd
