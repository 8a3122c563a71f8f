// Register-blocked matrix kernel for 4 to 64 rows of x (batch steps, short prompts, speculative
// verification passes): each weight is read from memory once per pass, and the multiply-adds of all
// rows run on it while it sits in a register. Each output is one fused chain (bias, then k in order),
// so every row is bitwise what the one-row kernel (gemv_row) and the GEMM give it.
// Scalar twin: scalar::gemv_rows (kernels/reference.hpp). Depends on kernels/simd.hpp,
// kernels/typed_load.hpp, kernels/elementwise.hpp, detail/aligned.hpp.
#pragma once

#include <algorithm>    // std::min, std::max
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uintptr_t
#include <type_traits>  // std::integral_constant, std::true_type, std::false_type

#include "../detail/aligned.hpp"  // AlignedBuffer
#include "elementwise.hpp"        // activate
#include "reference.hpp"          // Epilogue, scalar::apply
#include "simd.hpp"
#include "typed_load.hpp"  // LoadF32, LoadF16, LoadBF16

namespace tinyllm::kernels::simd {

// The first column from c whose elements start a vector's bytes in memory in every row of w (rows a
// whole number of vectors apart), else the first multiple of the vector width from c.
template <class Load>
inline std::size_t first_vector_column(const Load& w, std::size_t c) {
  constexpr std::size_t W = simd_width, vector_bytes = W * Load::bytes;
  const std::size_t past = reinterpret_cast<std::uintptr_t>(w.p + c) % vector_bytes;
  if (w.ld * Load::bytes % vector_bytes != 0 || past % Load::bytes != 0) return (c + W - 1) / W * W;
  return c + (vector_bytes - past) % vector_bytes / Load::bytes;
}

namespace rows_detail {

constexpr std::size_t W = simd_width;
// Rows of x per register tile: their sums, a tile's weights and a broadcast fill the vector registers
// (32 with AVX-512, 16 otherwise).
constexpr std::size_t max_group = W >= 16 ? 8 : 4;
// Vectors of columns per tile for MX rows of x (MX x NV sums + NV weights + 1 broadcast).
template <std::size_t MX>
constexpr std::size_t tile_vectors() {
  if constexpr (W >= 16) return MX <= 2 ? 8 : MX <= 3 ? 6 : MX <= 4 ? 5 : MX <= 6 ? 4 : 3;
  return MX <= 1 ? 6 : MX <= 2 ? 4 : MX <= 3 ? 3 : 2;
}
// Running sums of a sweep (all rows of x over a range of columns, kept in y): they stay in L2.
constexpr std::size_t sweep_bytes = 96 * 1024;
// Rows of w per block: a tile's sums are loaded and stored once per block.
constexpr std::size_t block_rows = 64;
// A strip's weights packed for the groups of rows after the first: in L1 beside the sums.
constexpr std::size_t pack_bytes = 16 * 1024;
// How far along its rows a tile asks for the weights of the strips after it: memory's latency covered
// at the rate the tiles take weights in.
constexpr std::size_t ahead_bytes = 768;

// fn(std::integral_constant<std::size_t, n>{}) for a run-time n in [1, Max].
template <std::size_t Max, class Fn>
inline void with_count(std::size_t n, Fn&& fn) {
  if constexpr (Max > 1)
    if (n < Max) return with_count<Max - 1>(n, fn);
  fn(std::integral_constant<std::size_t, Max>{});
}

#if TINYLLM_SIMD_512
// Lanes [0, n) of the vector at column c of row r (the rest zero, their memory not touched).
inline fbatch load_part(const LoadF32& w, std::size_t r, std::size_t c, __mmask16 m) {
  return fbatch(_mm512_maskz_loadu_ps(m, w.p + r * w.ld + c));
}
inline fbatch load_part(const LoadF16& w, std::size_t r, std::size_t c, __mmask16 m) {
  return fbatch(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w.p + r * w.ld + c)));
}
inline fbatch load_part(const LoadBF16& w, std::size_t r, std::size_t c, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, w.p + r * w.ld + c);
  return fbatch(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
}
#endif

// A tile's weights straight from w: NV vectors from column c (Part: the first lanes of one, `mask`).
template <class Load, bool Part>
struct FromMatrix {
  const Load& w;
  std::size_t c;
#if TINYLLM_SIMD_512
  __mmask16 mask;
#endif
  fbatch get(std::size_t k, std::size_t v) const {
#if TINYLLM_SIMD_512
    if constexpr (Part) return load_part(w, k, c, mask);
#endif
    return w.load(k, c + v * W);
  }
  // the lines of row k over `span` columns from c + dc
  void prefetch(std::size_t k, std::size_t dc, std::size_t span) const {
    constexpr std::size_t line = std::max(W, 64 / Load::bytes);
    for (std::size_t j = 0; j < span; j += line) w.prefetch(k, c + dc + j);
  }
};
// The same weights as floats, packed by the first group of rows for the others ([k - k0][NV]): rows
// of w a multiple of 4 KB apart would share L1 sets, and two-byte weights are widened once.
struct FromPack {
  const float* p;
  std::size_t k0, nv;
  fbatch get(std::size_t k, std::size_t v) const { return fbatch::load_aligned(p + ((k - k0) * nv + v) * W); }
  void prefetch(std::size_t, std::size_t, std::size_t) const {}
};

// What a tile does besides its multiply-adds.
struct TileJob {
  std::size_t k0, k1, c;   // rows [k0, k1) of w, columns from c
  std::size_t part;        // Part tiles: the columns [c, c + part) of one vector
  const float* bias;       // first block: sums start from bias[c..] (or 0 when null); else from y
  bool first;              // the sweep's first block of rows
  float* pack;             // if set, the tile's weights are stored here as floats (FromPack)
  std::size_t ahead;       // if set, the tile asks for its rows' lines this many columns on
};

// Sums y[m, c .. c + NV*W) for m < MX over rows [k0, k1) of w, in registers (rows of x and y ldx /
// ldy apart). Part tiles (AVX-512, NV == 1) take only the first `part` columns.
template <std::size_t MX, std::size_t NV, bool Part, class Source>
inline void tile(const float* x, std::size_t ldx, const Source& src, float* y, std::size_t ldy, const TileJob& j) {
#if TINYLLM_SIMD_512
  const __mmask16 mask = Part ? static_cast<__mmask16>((1u << j.part) - 1u) : __mmask16(0xffff);
  auto load_y = [&](const float* p) { return Part ? fbatch(_mm512_maskz_loadu_ps(mask, p)) : load(p); };
  auto store_y = [&](float* p, const fbatch& v) {
    if (Part)
      _mm512_mask_storeu_ps(p, mask, v);
    else
      store(p, v);
  };
#else
  static_assert(!Part, "partial vectors need AVX-512 masks");
  auto load_y = [](const float* p) { return load(p); };
  auto store_y = [](float* p, const fbatch& v) { store(p, v); };
#endif
  // The sums start from y, or (the first block) from the bias or zero. One loop without branches, and
  // one around the rows that runs at least once: the compiler then keeps the sums in registers.
  alignas(64) static constexpr float zero[W] = {};
  const float* from = !j.first ? y + j.c : j.bias ? j.bias + j.c : zero;
  const std::size_t m_step = j.first ? 0 : ldy, v_step = j.first && !j.bias ? 0 : W;
  fbatch acc[MX][NV];
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t v = 0; v < NV; ++v) acc[m][v] = load_y(from + m * m_step + v * v_step);
  std::size_t k = j.k0;
  do {
    if (j.ahead) src.prefetch(k, j.ahead, NV * W);
    fbatch wv[NV];
    for (std::size_t v = 0; v < NV; ++v) wv[v] = src.get(k, v);
    if (j.pack)
      for (std::size_t v = 0; v < NV; ++v) wv[v].store_aligned(j.pack + ((k - j.k0) * NV + v) * W);
    const float* xk = x + k;
    for (std::size_t m = 0; m < MX; ++m) {
      const fbatch xm(xk[m * ldx]);
      for (std::size_t v = 0; v < NV; ++v) acc[m][v] = fmadd(xm, wv[v], acc[m][v]);
    }
  } while (++k < j.k1);
  for (std::size_t m = 0; m < MX; ++m)
    for (std::size_t v = 0; v < NV; ++v) store_y(y + m * ldy + j.c + v * W, acc[m][v]);
}

// Columns [c, c_end) one at a time (the edges of a sweep where there are no masks), the same chains.
template <class Load>
inline void scalar_columns(const float* x, std::size_t ldx, std::size_t M, const Load& w, std::size_t c,
                           std::size_t c_end, float* y, std::size_t ldy, const TileJob& j) {
  for (; c < c_end; ++c)
    for (std::size_t m = 0; m < M; ++m) {
      float a = j.first ? (j.bias ? j.bias[c] : 0.0f) : y[m * ldy + c];
      for (std::size_t k = j.k0; k < j.k1; ++k) a = fmadd(x[m * ldx + k], w.at(k, c), a);
      y[m * ldy + c] = a;
    }
}

// A sweep's block: rows [k0, k1) of w over columns [c0, c1) (whole vectors over [v0, v1)) for all M
// rows of x, strip by strip, each strip in groups of A or A - 1 rows of x. The first group reads w,
// asks for the lines of the strips ahead, and (when there are more groups) packs the weights for the
// others.
template <std::size_t A, class Load>
inline void block(std::size_t M, const float* x, std::size_t ldx, const Load& w, std::size_t c0, std::size_t v0,
                  std::size_t v1, std::size_t c1, float* y, std::size_t ldy, TileJob job, float* pack) {
  constexpr std::size_t NV = tile_vectors<A>(), S = NV * W;
  const std::size_t groups = (M + A - 1) / A, big = M - groups * (A - 1);  // groups of A rows, then A - 1
  const std::size_t ahead = std::max<std::size_t>(1, ahead_bytes / (S * Load::bytes)) * S;
  auto strip = [&](std::size_t c, auto nv, auto part, std::size_t columns) {
    constexpr std::size_t V = decltype(nv)::value;
    constexpr bool P = decltype(part)::value;
    TileJob j = job;
    j.c = c;
    j.part = columns;
    j.pack = groups > 1 ? pack : nullptr;
    j.ahead = !P && c + ahead + S <= v1 ? ahead : 0;
#if TINYLLM_SIMD_512
    const FromMatrix<Load, P> from{w, c, static_cast<__mmask16>(P ? (1u << columns) - 1u : 0xffffu)};
#else
    const FromMatrix<Load, P> from{w, c};
#endif
    const FromPack packed{pack, job.k0, V};
    std::size_t m = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t mx = g < big ? A : A - 1;
      auto run = [&](auto tile_rows) {
        constexpr std::size_t MX = decltype(tile_rows)::value;
        if (g == 0)
          tile<MX, V, P>(x + m * ldx, ldx, from, y + m * ldy, ldy, j);
        else
          tile<MX, V, P>(x + m * ldx, ldx, packed, y + m * ldy, ldy, j);
      };
      if constexpr (A > 1)
        if (mx == A - 1) run(std::integral_constant<std::size_t, A - 1>{});
      if (mx == A) run(std::integral_constant<std::size_t, A>{});
      j.pack = nullptr;
      j.ahead = 0;
      m += mx;
    }
  };
  using whole = std::false_type;
  std::size_t c = v0;
  for (; c + S <= v1; c += S) strip(c, std::integral_constant<std::size_t, NV>{}, whole{}, 0);
  if (c < v1) with_count<NV>((v1 - c) / W, [&](auto nv) { strip(c, nv, whole{}, 0); });
#if TINYLLM_SIMD_512
  using one = std::integral_constant<std::size_t, 1>;
  if (v0 > c0) strip(c0, one{}, std::true_type{}, v0 - c0);
  if (c1 > v1) strip(v1, one{}, std::true_type{}, c1 - v1);
#else
  scalar_columns(x, ldx, M, w, c0, v0, y, ldy, job);
  scalar_columns(x, ldx, M, w, v1, c1, y, ldy, job);
#endif
}

}  // namespace rows_detail

// y[m, n] = act(bias[n] + sum_k x[m, k] * w[k, n]) for m < M and n in [n_begin, n_end).
// x: [M, ldx]; w: [K, N] (HF Conv1D: in x out), F32 / F16 / BF16; bias: [N] or null; y: [M, ldy].
//
// The columns go in sweeps whose running sums (kept in y) stay in L2, each sweep's vectors starting
// where w's rows reach a vector boundary in memory (mapped F32 rows start mid-line); a sweep takes
// w's rows in blocks, and a block in strips of NV vectors whose MX x NV sums stay in registers over
// the block's rows. Rows of x go in groups of up to max_group; groups after the first read the
// strip's weights packed in L1.
template <class Load>
inline void rows_product(std::size_t M, const float* x, std::size_t ldx, const Load& w, const float* bias, float* y,
                         std::size_t ldy, std::size_t K, std::size_t n_begin, std::size_t n_end, Epilogue ep) {
  using namespace rows_detail;
  if (M == 0 || n_begin >= n_end) return;
  if (K == 0) {  // no rows of w: the bias alone
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = n_begin; n < n_end; ++n) y[m * ldy + n] = bias ? bias[n] : 0.0f;
  }
  const std::size_t groups = (M + max_group - 1) / max_group, A = (M + groups - 1) / groups;
  with_count<max_group>(A, [&](auto a) {
    constexpr std::size_t NV = tile_vectors<decltype(a)::value>(), S = NV * W;
    const std::size_t v_first = std::min(n_end, first_vector_column(w, n_begin));  // sweeps after the first start here
    const std::size_t vectors = (n_end - v_first) / W;
    const std::size_t chunk = std::max(sweep_bytes / (sizeof(float) * M) / W, 8 * NV);  // vectors per sweep
    const std::size_t sweeps = std::max<std::size_t>(1, (vectors + chunk - 1) / chunk);
    const std::size_t width = std::max<std::size_t>(1, (vectors + sweeps - 1) / sweeps) * W;  // sweeps of equal width
    const std::size_t KB = groups > 1 ? std::min(block_rows, pack_bytes / (S * sizeof(float))) : block_rows;
    thread_local detail::AlignedBuffer pack_buffer;
    pack_buffer.resize(groups > 1 ? KB * S : 1);
    for (std::size_t i = 0; i < sweeps; ++i) {  // sweep i: columns [c0, c1), whole vectors over [v0, v1)
      const std::size_t v0 = std::min(n_end, v_first + i * width);
      const std::size_t v1 = std::min(v_first + vectors * W, v0 + width);
      const std::size_t c0 = i == 0 ? n_begin : v0, c1 = i + 1 == sweeps ? n_end : v1;
      for (std::size_t k0 = 0; k0 < K; k0 += KB) {
        const TileJob job{k0, std::min(K, k0 + KB), 0, 0, bias, k0 == 0, nullptr, 0};
        block<decltype(a)::value>(M, x, ldx, w, c0, v0, v1, c1, y, ldy, job, pack_buffer.data());
      }
      if (ep != Epilogue::none)
        for (std::size_t m = 0; m < M; ++m) activate(y + m * ldy + c0, c1 - c0, ep);
    }
  });
}

}  // namespace tinyllm::kernels::simd
