// The GPT-2 forward pass over loaded weights, in the order of Hugging Face's GPT2LMHeadModel.
// Layers do the work; this file only composes them. Depends on layers/ and model/weights.hpp.
#pragma once

#include <cmath>    // std::sqrt
#include <cstddef>  // std::size_t

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

// Everything one sequence needs while it runs: its KV cache and activation buffers.
struct InferenceState {
  layers::KVCache cache;
  AlignedBuffer x, a, y, qkv, h;  // [T, C], [T, C], [T, C], [T, 3C], [T, n_inner]
  AlignedBuffer logits;        // [T, V] or [V]

  explicit InferenceState(const GPT2Config& c) : cache(c.n_layer, c.n_head, c.head_dim(), c.n_positions) {}
  void reserve(const GPT2Config& c, std::size_t T) {
    const std::size_t C = static_cast<std::size_t>(c.n_embd);
    x.resize(T * C);
    a.resize(T * C);
    y.resize(T * C);
    qkv.resize(T * 3 * C);
    h.resize(T * static_cast<std::size_t>(c.inner_dim()));
  }
};

// Runs ids[0..T) at positions cache.length() onwards; leaves ln_f(x) in s.x ([T, n_embd]) and
// extends the cache by T. The caller has checked the ids and the context length.
template <class Backend>
void forward_hidden(const GPT2Config& c, const GPT2Weights& w, InferenceState& s, const int* ids, std::size_t T) {
  const std::size_t C = static_cast<std::size_t>(c.n_embd), pos0 = static_cast<std::size_t>(s.cache.length());
  const kernels::Epilogue act = c.activation_function == Activation::gelu ? kernels::Epilogue::gelu : kernels::Epilogue::gelu_new;
  s.reserve(c, T);
  float *x = s.x.data(), *a = s.a.data(), *y = s.y.data(), *qkv = s.qkv.data(), *h = s.h.data();

  layers::embed(w.wte, w.wpe, ids, T, pos0, x);                           // x = wte[ids] + wpe[pos]   [T, C]
  for (int l = 0; l < c.n_layer; ++l) {
    const BlockWeights& b = w.h[static_cast<std::size_t>(l)];
    const float scale = (c.scale_attn_weights ? 1.0f / std::sqrt(static_cast<float>(c.head_dim())) : 1.0f) /
                        (c.scale_attn_by_inverse_layer_idx ? static_cast<float>(l + 1) : 1.0f);
    layers::layer_norm<Backend>(b.ln_1, x, T, C, c.layer_norm_epsilon, a);  // a = ln_1(x)
    layers::linear<Backend>(b.attn_c_attn, a, T, qkv);                    // q|k|v = a @ c_attn + b    [T, 3C]
    layers::causal_self_attention<Backend>(qkv, T, static_cast<std::size_t>(c.n_head),
                                           static_cast<std::size_t>(c.head_dim()), s.cache, l, pos0, scale, a);
                                                                         // a = softmax(q k^T) v      [T, C]
    layers::linear<Backend>(b.attn_c_proj, a, T, y);                      // y = a @ c_proj + b
    layers::residual_add<Backend>(x, y, T * C);                           // x += y
    layers::layer_norm<Backend>(b.ln_2, x, T, C, c.layer_norm_epsilon, a);  // a = ln_2(x)
    layers::mlp<Backend>(b.mlp_c_fc, b.mlp_c_proj, act, a, T, h, y);       // y = gelu(a @ c_fc) @ c_proj
    layers::residual_add<Backend>(x, y, T * C);                           // x += y
  }
  layers::layer_norm<Backend>(w.ln_f, x, T, C, c.layer_norm_epsilon, x);  // x = ln_f(x)
  s.cache.set_length(static_cast<int>(pos0 + T));
}

// logits[rows, V] = x[rows, C] @ lm_head^T for `rows` rows of hidden states (ln_f already applied).
template <class Backend>
void lm_head(const GPT2Config& c, const GPT2Weights& w, const float* x, std::size_t rows, float* logits) {
  (void)c;
  layers::linear_transposed<Backend>(w.lm_head, x, rows, logits);
}

}  // namespace tinyllm::detail
