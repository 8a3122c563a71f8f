// Causal multi-head self-attention with a KV cache. The new tokens' keys and values are appended to
// the cache; then, per head and block of queries, scores = q k^T (a matrix product against the
// transposed keys), a causal softmax per row, and out = p v (a matrix product against the values).
// One query (decoding) uses the matrix-vector kernels, which give bitwise the same rows.
// Depends on kernels/, layers/kv_cache.hpp.
#pragma once

#include <algorithm>  // std::min, std::fill
#include <cstddef>    // std::size_t
#include <cstring>    // std::memcpy

#include "../detail/aligned.hpp"
#include "../kernels/kernels.hpp"
#include "kv_cache.hpp"
#include "../backend/backend.hpp"  // parallel_for_each
#include "linear.hpp"              // min_parallel_work

namespace tinyllm::layers {

// Queries per block (a multiple of the GEMM's 6- and 12-row panels): the scores of a block
// ([query_block, positions]) stay in L2, and each head's keys and values, packed once per block,
// serve that many queries.
inline constexpr std::size_t query_block = 96;

// qkv: [T, 3*C] (q | k | v, heads side by side in each); queries sit at positions pos0..pos0+T-1
// and the cache holds positions [0, pos0). out: [T, C] = merge_heads(softmax(q k^T * scale) v).
// probs, when not null: [n_head, T, pos0 + T] receives the softmax probabilities (HF's attentions;
// zero where the causal mask hides a position).
template <class Backend>
void causal_self_attention(const float* qkv, std::size_t T, std::size_t n_head, std::size_t head_dim,
                           KVCache& cache, int layer, std::size_t pos0, float scale, float* out,
                           float* probs = nullptr) {
  const std::size_t C = n_head * head_dim, hd = head_dim;
  cache.reserve(static_cast<int>(pos0 + T));
  const std::size_t cap = static_cast<std::size_t>(cache.capacity());
  // Appends head h's keys (transposed) and values of the new positions, keys in tiles of 16
  // positions: 16 rows of qkv are read while 16 consecutive floats of each key row are written (a
  // position at a time would write hd cache lines per position).
  auto append = [&](std::size_t h) {
    float* kt = cache.k_t(layer, static_cast<int>(h)) + pos0;
    float* vc = cache.v(layer, static_cast<int>(h)) + pos0 * hd;
    const float* k = qkv + C + h * hd;
    for (std::size_t t0 = 0; t0 < T; t0 += 16)
      for (std::size_t i = 0, t1 = std::min(T, t0 + 16); i < hd; ++i)
        for (std::size_t t = t0; t < t1; ++t) kt[i * cap + t] = k[t * 3 * C + i];
    for (std::size_t t = 0; t < T; ++t) std::memcpy(vc + t * hd, qkv + t * 3 * C + 2 * C + h * hd, hd * sizeof(float));
  };
  const KVCache& kv = cache;
  const std::size_t blocks = (T + query_block - 1) / query_block;
  // Short contexts of a prompt run on one thread (see min_parallel_work). One query (decoding) goes
  // to the threads at any length: its heads' cached keys and values are cold (the weights have
  // streamed through the caches since the layer last ran), so even a few positions mostly wait on
  // memory, which two cores do side by side.
  const double work = 2.0 * static_cast<double>(T) * static_cast<double>(pos0 + T) * static_cast<double>(C);
  const std::size_t items = T > 1 && work < 2 * min_parallel_work ? 1 : n_head * blocks;
  if (blocks > 1) {  // a head's query blocks may run on different threads: append every head first
    auto heads = [&](std::size_t h0, std::size_t h1) {
      for (std::size_t h = h0; h < h1; ++h) append(h);
    };
    if (items == 1)
      heads(0, n_head);
    else
      Backend::parallel_for(0, n_head, heads);
  }
  auto run = [&](std::size_t b, std::size_t e) {
    thread_local detail::AlignedBuffer q_buf, o_buf, p_buf;
    q_buf.resize(query_block * hd);
    o_buf.resize(query_block * hd);
    p_buf.resize(std::min(query_block, T) * cap);  // cap, not pos0 + T: decoding does not grow it every step
    for (std::size_t item = b; item < e; ++item) {
      const std::size_t h = item / blocks, t0 = item % blocks * query_block, nq = std::min(query_block, T - t0);
      if (blocks == 1) append(h);  // one item per head: its thread appends it
      const std::size_t keys = pos0 + t0 + nq;  // positions the block's last query sees
      const WeightView kt = f32_matrix(kv.k_t(layer, static_cast<int>(h)), hd, cap);  // [hd, cap]
      const WeightView v = f32_matrix(kv.v(layer, static_cast<int>(h)), keys, hd);     // [keys, hd]
      float* q = q_buf.data();
      float* p = p_buf.data();
      float* o = o_buf.data();
      for (std::size_t i = 0; i < nq; ++i) std::memcpy(q + i * hd, qkv + (t0 + i) * 3 * C + h * hd, hd * sizeof(float));
      // scores: p[nq, keys] = q[nq, hd] @ k_t[hd, keys]
      if (nq == 1)
        kernels::impl::gemv(q, kt, nullptr, p, hd, 0, keys);
      else
        kernels::impl::gemm(nq, hd, q, hd, kt, nullptr, p, keys, 0, keys);
      for (std::size_t i = 0; i < nq; ++i) {  // causal softmax: query t0+i sees pos0+t0+i+1 positions
        float* row = p + i * keys;
        const std::size_t seen = pos0 + t0 + i + 1;
        for (std::size_t j = 0; j < seen; ++j) row[j] *= scale;
        kernels::impl::softmax(row, seen);
        for (std::size_t j = seen; j < keys; ++j) row[j] = 0.0f;
        if (probs) {
          float* dst = probs + (h * T + t0 + i) * (pos0 + T);
          std::memcpy(dst, row, seen * sizeof(float));
          std::fill(dst + seen, dst + pos0 + T, 0.0f);
        }
      }
      // out[nq, hd] = p[nq, keys] @ v[keys, hd]
      if (nq == 1)
        kernels::impl::gemv(p, v, nullptr, o, keys, 0, hd);
      else
        kernels::impl::gemm(nq, keys, p, keys, v, nullptr, o, hd, 0, hd);
      for (std::size_t i = 0; i < nq; ++i) std::memcpy(out + (t0 + i) * C + h * hd, o + i * hd, hd * sizeof(float));
    }
  };
  if (items == 1) {
    run(0, n_head * blocks);
    return;
  }
  // Items taken by whichever thread is free, the last query blocks (the most keys) of every head first.
  parallel_for_each<Backend>(items, [&](std::size_t i) {
    const std::size_t item = i % n_head * blocks + (blocks - 1 - i / n_head);
    run(item, item + 1);
  });
}

}  // namespace tinyllm::layers
