// The GPT-2 forward pass over loaded weights, in the order of Hugging Face's GPT2LMHeadModel: for
// one sequence (forward_hidden), several sequences of any lengths in one pass (forward_packed), or one
// new token of each of B sequences (forward_batch, forward_packed's one-token case).
// Layers do the work; this file only composes them. Depends on layers/ and model/weights.hpp.
#pragma once

#include <algorithm>  // std::sort
#include <cmath>      // std::sqrt
#include <cstddef>    // std::size_t
#include <cstring>    // std::memcpy
#include <vector>     // std::vector

#include "../backend/backend.hpp"  // Serial
#include "../config.hpp"
#include "../detail/aligned.hpp"
#include "../layers/attention.hpp"
#include "../layers/embedding.hpp"
#include "../layers/kv_cache.hpp"
#include "../layers/layer_norm.hpp"
#include "../layers/linear.hpp"
#include "../layers/mlp.hpp"
#include "weights.hpp"

namespace tinyllm::detail {

// Activation buffers for T rows of one forward pass.
struct Activations {
  AlignedBuffer x, a, y, qkv, h;  // [T, C], [T, C], [T, C], [T, 3C], [T, n_inner]
  void reserve(const GPT2Config& c, std::size_t T) {
    const std::size_t C = static_cast<std::size_t>(c.n_embd);
    x.resize(T * C);
    a.resize(T * C);
    y.resize(T * C);
    qkv.resize(T * 3 * C);
    h.resize(T * static_cast<std::size_t>(c.inner_dim()));
  }
};

// Everything one sequence needs while it runs: its KV cache and activation buffers.
struct InferenceState : Activations {
  layers::KVCache cache;

  explicit InferenceState(const GPT2Config& c) : cache(c.n_layer, c.n_head, c.head_dim(), c.n_positions) {}
};

// What the forward pass shows an observer (model/inspect.hpp records HF's hidden states and the
// parts of the residual stream with one): each call sees T rows of n_embd. NoHooks's empty calls
// compile to nothing, so plain decoding runs the same code as without them.
struct NoHooks {
  void block_input(int /*layer*/, const float* /*x*/) {}        // x before block l: HF hidden_states[l]
  void attn_heads(int /*layer*/, const float* /*merged*/) {}     // merge_heads(att v), c_proj's input
  void attn_output(int /*layer*/, const float* /*y*/) {}         // c_proj's output, added to x
  void mlp_output(int /*layer*/, const float* /*y*/) {}          // the MLP's output, added to x
  void final_residual(const float* /*x*/) {}                    // x after the last block, before ln_f
};

// The n_layer blocks and ln_f over T embedded rows in s.x; attend(l, scale, qkv, out) is the causal
// attention of layer l (qkv: [T, 3C] -> out: [T, C]). Leaves ln_f(x) in s.x; with 0 <= blocks <
// n_layer, only the first `blocks` blocks run and s.x is the residual stream before block `blocks`
// (HF's hidden_states[blocks], no ln_f).
template <class Backend, class Attend, class Hooks = NoHooks>
void transformer(const GPT2Config& c, const GPT2Weights& w, Activations& s, std::size_t T, Attend&& attend,
                 int blocks = -1, Hooks&& hooks = Hooks{}) {
  const std::size_t C = static_cast<std::size_t>(c.n_embd);
  const kernels::Epilogue act = c.activation_function == Activation::gelu ? kernels::Epilogue::gelu : kernels::Epilogue::gelu_new;
  float *x = s.x.data(), *a = s.a.data(), *y = s.y.data(), *qkv = s.qkv.data(), *h = s.h.data();
  const int n_blocks = blocks < 0 || blocks > c.n_layer ? c.n_layer : blocks;
  for (int l = 0; l < n_blocks; ++l) {
    const BlockWeights& b = w.h[static_cast<std::size_t>(l)];
    const float scale = (c.scale_attn_weights ? 1.0f / std::sqrt(static_cast<float>(c.head_dim())) : 1.0f) /
                        (c.scale_attn_by_inverse_layer_idx ? static_cast<float>(l + 1) : 1.0f);
    hooks.block_input(l, x);
    layers::layer_norm<Backend>(b.ln_1, x, T, C, c.layer_norm_epsilon, a);  // a = ln_1(x)
    layers::linear<Backend>(b.attn_c_attn, a, T, qkv);                    // q|k|v = a @ c_attn + b    [T, 3C]
    attend(l, scale, qkv, a);                                            // a = softmax(q k^T) v      [T, C]
    hooks.attn_heads(l, a);
    layers::linear<Backend>(b.attn_c_proj, a, T, y);                      // y = a @ c_proj + b
    hooks.attn_output(l, y);
    layers::residual_add<Backend>(x, y, T * C);                           // x += y
    layers::layer_norm<Backend>(b.ln_2, x, T, C, c.layer_norm_epsilon, a);  // a = ln_2(x)
    layers::mlp<Backend>(b.mlp_c_fc, b.mlp_c_proj, act, a, T, h, y);       // y = gelu(a @ c_fc) @ c_proj
    hooks.mlp_output(l, y);
    layers::residual_add<Backend>(x, y, T * C);                           // x += y
  }
  if (n_blocks < c.n_layer) return;
  hooks.final_residual(x);
  layers::layer_norm<Backend>(w.ln_f, x, T, C, c.layer_norm_epsilon, x);  // x = ln_f(x)
}

// Runs ids[0..T) at positions cache.length() onwards; leaves ln_f(x) in s.x ([T, n_embd]) and
// extends the cache by T. The caller has checked the ids and the context length.
template <class Backend>
void forward_hidden(const GPT2Config& c, const GPT2Weights& w, InferenceState& s, const int* ids, std::size_t T) {
  const std::size_t pos0 = static_cast<std::size_t>(s.cache.length());
  s.reserve(c, T);
  layers::embed(w.wte, w.wpe, ids, T, pos0, s.x.data());                 // x = wte[ids] + wpe[pos]   [T, C]
  transformer<Backend>(c, w, s, T, [&](int l, float scale, const float* qkv, float* out) {
    layers::causal_self_attention<Backend>(qkv, T, static_cast<std::size_t>(c.n_head),
                                           static_cast<std::size_t>(c.head_dim()), s.cache, l, pos0, scale, out);
  });
  s.cache.set_length(static_cast<int>(pos0 + T));
}

// Attention of T new rows of one sequence at positions pos.. against its cache; Run splits the work.
template <class Run>
void attend_sequence(const GPT2Config& c, const float* qkv, std::size_t T, layers::KVCache& cache, int layer,
                     std::size_t pos, float scale, float* out) {
  layers::causal_self_attention<Run>(qkv, T, static_cast<std::size_t>(c.n_head), static_cast<std::size_t>(c.head_dim()),
                                     cache, layer, pos, scale, out);
}

// B sequences in one pass: sequence b runs its lengths[b] ids (the sequences' ids one after another
// in `ids`) at positions caches[b]->length() onwards, against its own cache. The linear layers see
// the rows of all sequences at once, so each weight is read once for all of them; attention runs per
// sequence, with its own positions. Every row comes out bitwise equal to forward_hidden of its
// sequence alone (each kernel computes a row as one chain, whatever rows surround it), so padding
// never exists and nothing leaks between sequences. Leaves the hidden states in s.x ([sum of
// lengths, n_embd]: ln_f(x), or with 0 <= blocks < n_layer the residual stream before block
// `blocks`, see transformer) and extends each cache by its length. A cache of one layer serves every
// layer in turn (each overwrites the last's keys and values): for a pass that is not continued, such
// as an embedding's, it takes 1 / n_layer of the memory.
template <class Backend>
void forward_packed(const GPT2Config& c, const GPT2Weights& w, Activations& s, layers::KVCache* const* caches,
                    const int* ids, const std::size_t* lengths, std::size_t B, int blocks = -1) {
  const std::size_t C = static_cast<std::size_t>(c.n_embd);
  std::vector<std::size_t> row(B + 1, 0), pos(B);
  for (std::size_t b = 0; b < B; ++b) {
    row[b + 1] = row[b] + lengths[b];
    pos[b] = static_cast<std::size_t>(caches[b]->length());
  }
  s.reserve(c, row[B]);
  for (std::size_t b = 0; b < B; ++b)  // x[rows of b] = wte[ids] + wpe[pos..]
    layers::embed(w.wte, w.wpe, ids + row[b], lengths[b], pos[b], s.x.data() + row[b] * C);
  // Attention: with fewer sequences than threads, or for one whose attention outweighs a thread's
  // share of the whole, each on all threads (its heads split); the others one per free thread,
  // longest first. The arithmetic of a sequence is the same either way.
  std::vector<double> work(B);
  double total = 0;
  for (std::size_t b = 0; b < B; ++b) total += work[b] = static_cast<double>(lengths[b]) * static_cast<double>(pos[b] + lengths[b]);
  const double threads = static_cast<double>(Backend::num_threads());
  std::vector<std::size_t> alone, shared;
  for (std::size_t b = 0; b < B; ++b)
    (B < static_cast<std::size_t>(threads) || work[b] * threads > total ? alone : shared).push_back(b);
  std::sort(shared.begin(), shared.end(), [&](std::size_t i, std::size_t j) { return work[i] > work[j]; });
  transformer<Backend>(
      c, w, s, row[B],
      [&](int l, float scale, const float* qkv, float* out) {
        auto layer = [&](std::size_t b) { return caches[b]->n_layers() == 1 ? 0 : l; };
        for (std::size_t b : alone)
          attend_sequence<Backend>(c, qkv + row[b] * 3 * C, lengths[b], *caches[b], layer(b), pos[b], scale, out + row[b] * C);
        if (!shared.empty())
          parallel_for_each<Backend>(shared.size(), [&](std::size_t i) {
            const std::size_t b = shared[i];
            attend_sequence<Serial>(c, qkv + row[b] * 3 * C, lengths[b], *caches[b], layer(b), pos[b], scale,
                                    out + row[b] * C);
          });
      },
      blocks);
  for (std::size_t b = 0; b < B; ++b) caches[b]->set_length(static_cast<int>(pos[b] + lengths[b]));
}

// One decoding step for B sequences at once: ids[b] runs at position caches[b]->length() against
// its own cache (forward_packed with one row per sequence). Leaves ln_f(x) in s.x ([B, n_embd]) and
// extends each cache by one.
template <class Backend>
void forward_batch(const GPT2Config& c, const GPT2Weights& w, Activations& s, layers::KVCache* const* caches,
                   const int* ids, std::size_t B) {
  const std::vector<std::size_t> one(B, 1);
  forward_packed<Backend>(c, w, s, caches, ids, one.data(), B);
}

// to = a copy of what from caches (to's buffers are reused when big enough).
inline void copy_cache(const GPT2Config& c, const layers::KVCache& from, layers::KVCache& to) {
  const int n = from.length();
  const std::size_t len = static_cast<std::size_t>(n), hd = static_cast<std::size_t>(c.head_dim());
  to.reserve(n);
  const std::size_t from_cap = static_cast<std::size_t>(from.capacity()), to_cap = static_cast<std::size_t>(to.capacity());
  for (int l = 0; l < c.n_layer && n > 0; ++l)
    for (int h = 0; h < c.n_head; ++h) {
      for (std::size_t i = 0; i < hd; ++i)  // keys are stored transposed: rows of capacity
        std::memcpy(to.k_t(l, h) + i * to_cap, from.k_t(l, h) + i * from_cap, len * sizeof(float));
      std::memcpy(to.v(l, h), from.v(l, h), len * hd * sizeof(float));
    }
  to.set_length(n);
}

// logits[rows, V] = x[rows, C] @ lm_head^T for `rows` rows of hidden states (ln_f already applied).
template <class Backend>
void lm_head(const GPT2Weights& w, const float* x, std::size_t rows, float* logits) {
  layers::linear_transposed<Backend>(w.lm_head, x, rows, logits);
}

// The same for a greedy verification pass, whose row i < rows - 1 ends in proposals[i]: rows after
// the first one that does not choose its proposal are skipped (layers::linear_transposed_greedy).
// `likely` ids are tried first. Returns how many rows from the first hold complete logits.
template <class Backend>
std::size_t lm_head_greedy(const GPT2Weights& w, const float* x, std::size_t rows, const int* proposals,
                           const std::vector<int>& ignored, float* logits, const std::vector<int>& likely = {}) {
  return layers::linear_transposed_greedy<Backend>(w.lm_head, x, rows, proposals, ignored, logits, likely);
}

}  // namespace tinyllm::detail
