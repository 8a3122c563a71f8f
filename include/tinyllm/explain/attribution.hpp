// Direct logit attribution: how much each part of the residual stream adds to one token's logit
// at one position, through the final layer norm with its scale frozen (Elhage et al., "A
// Mathematical Framework for Transformer Circuits", Anthropic, 2021; TransformerLens's
// decompose_resid / logit attributions). The final residual r is the sum of its parts: token and
// position embeddings, each layer's attention output (its heads, through their rows of c_proj,
// plus c_proj's bias) and each MLP's output. ln_f(r) . u = (r - mean r) . (gamma * u) / sigma
// + beta . u with u the target's row of the head and sigma the standard deviation of r at that
// position, so each part p adds (p - mean p) . (gamma * u) / sigma, and the parts plus beta . u add
// up to the logit. Depends on explain/common.hpp.
#pragma once

#include <algorithm>  // std::copy
#include <cmath>      // std::sqrt
#include <cstddef>    // std::size_t
#include <string>     // std::string
#include <vector>     // std::vector

#include "../generation/sampling.hpp"  // log_normalizer
#include "../kernels/kernels.hpp"      // dequantize_row, weight_at
#include "common.hpp"

namespace tinyllm {

struct LogitAttribution {
  int target = 0;              // the token whose logit is explained
  int position = 0;            // ... at this position (it predicts the token after ids[position])
  int n_layer = 0, n_head = 0;
  float logit = 0.0f;          // the target's logit there, as forward() gives it
  float logprob = 0.0f;        // its log-probability
  double sigma = 0.0;          // ln_f's frozen scale: sqrt(var(r) + eps) of the final residual r
  // Contributions to the logit (each (p - mean p) . (gamma * u) / sigma):
  double token_embedding = 0.0;    // wte[ids[position]]
  double position_embedding = 0.0; // wpe[position]
  std::vector<double> attn;        // [n_layer] each attention's output = its heads + attn_bias
  std::vector<double> heads;       // [n_layer, n_head] head h: its slice of merge_heads(att v) @ its rows of c_proj
  std::vector<double> attn_bias;   // [n_layer] attn.c_proj.bias
  std::vector<double> mlp;         // [n_layer] each MLP's output (c_proj's bias included)
  double ln_f_bias = 0.0;          // beta . u: not a part of the residual stream

  double head(int layer, int h) const {
    return heads[static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_head) + static_cast<std::size_t>(h)];
  }
  // Embeddings + attention and MLP outputs + ln_f_bias: the logit, up to rounding.
  double total() const {
    double s = token_embedding + position_embedding + ln_f_bias;
    for (std::size_t l = 0; l < attn.size(); ++l) s += attn[l] + mlp[l];
    return s;
  }
};

namespace detail {

// Records row `pos` of every part of the residual stream.
struct ResidualPartsRecorder : ObserverHooks {
  std::size_t pos, C;
  std::vector<float> embedding, merged, attn, mlp, final_residual_row;  // [C], [L, C], [L, C], [L, C], [C]
  ResidualPartsRecorder(std::size_t p, std::size_t c, std::size_t L)
      : pos(p), C(c), embedding(c), merged(L * c), attn(L * c), mlp(L * c), final_residual_row(c) {}
  void keep(const float* x, float* to) const { std::copy(x + pos * C, x + (pos + 1) * C, to); }
  void block_input(int l, const float* x) {
    if (l == 0) keep(x, embedding.data());
  }
  void attn_heads(int l, const float* a) { keep(a, merged.data() + static_cast<std::size_t>(l) * C); }
  void attn_output(int l, const float* y) { keep(y, attn.data() + static_cast<std::size_t>(l) * C); }
  void mlp_output(int l, const float* y) { keep(y, mlp.data() + static_cast<std::size_t>(l) * C); }
  void final_residual(const float* x) { keep(x, final_residual_row.data()); }
};

inline double dot(const float* p, const std::vector<double>& d) {
  double s = 0;
  for (std::size_t j = 0; j < d.size(); ++j) s += static_cast<double>(p[j]) * d[j];
  return s;
}

}  // namespace detail

// The attribution of `target`'s logit at `position` of ids (-1: the last position, which predicts
// the token after the sequence). One forward pass over ids[0..position].
template <class Backend>
LogitAttribution direct_logit_attribution(const BasicGPT2<Backend>& model, const std::vector<int>& ids, int target,
                                          int position = -1) {
  const GPT2Config& c = model.config();
  const GPT2Weights& w = model.weights();
  const std::string who = "direct_logit_attribution";
  detail::check_sequence(c, ids, who);
  detail::check_target(c, target, who);
  const std::size_t pos = detail::resolve_position(position, ids.size(), who);
  const std::size_t C = static_cast<std::size_t>(c.n_embd), L = static_cast<std::size_t>(c.n_layer);
  const std::size_t H = static_cast<std::size_t>(c.n_head), hd = C / H, V = static_cast<std::size_t>(c.vocab_size);

  detail::InferenceState s(c);
  detail::ResidualPartsRecorder rec(pos, C, L);
  detail::observed_forward<Backend>(c, w, s, ids.data(), pos + 1, rec);
  std::vector<float> logits(V);
  detail::lm_head<Backend>(w, s.x.data() + pos * C, 1, logits.data());

  LogitAttribution a;
  a.target = target, a.position = static_cast<int>(pos), a.n_layer = c.n_layer, a.n_head = c.n_head;
  a.logit = logits[static_cast<std::size_t>(target)];
  a.logprob = static_cast<float>(static_cast<double>(a.logit) - detail::log_normalizer(logits.data(), V));

  // d = gamma * u, centred (so that p . d = (p - mean p) . (gamma * u)); sigma of the final residual.
  std::vector<float> u(C), row(C);
  kernels::impl::dequantize_row(w.lm_head, static_cast<std::size_t>(target), u.data());
  std::vector<double> d(C);
  double mean_d = 0, mean_r = 0, var_r = 0;
  for (std::size_t j = 0; j < C; ++j) {
    d[j] = static_cast<double>(w.ln_f.weight[j]) * u[j];
    mean_d += d[j] / static_cast<double>(C);
    mean_r += static_cast<double>(rec.final_residual_row[j]) / static_cast<double>(C);
  }
  for (std::size_t j = 0; j < C; ++j) {
    d[j] -= mean_d;
    var_r += (rec.final_residual_row[j] - mean_r) * (rec.final_residual_row[j] - mean_r) / static_cast<double>(C);
  }
  a.sigma = std::sqrt(var_r + static_cast<double>(c.layer_norm_epsilon));
  const double inv = 1.0 / a.sigma;

  kernels::impl::dequantize_row(w.wte, static_cast<std::size_t>(ids[pos]), row.data());
  a.token_embedding = detail::dot(row.data(), d) * inv;
  a.position_embedding = detail::dot(w.wpe + pos * C, d) * inv;
  for (std::size_t j = 0; j < C; ++j) a.ln_f_bias += static_cast<double>(w.ln_f.bias[j]) * u[j];
  a.attn.resize(L), a.attn_bias.resize(L), a.mlp.resize(L), a.heads.assign(L * H, 0.0);
  std::vector<double> g(C);  // g = c_proj.weight @ d: what each input of c_proj adds per unit
  for (std::size_t l = 0; l < L; ++l) {
    const LinearWeights& proj = w.h[l].attn_c_proj;
    for (std::size_t i = 0; i < C; ++i) {
      double s_i = 0;
      for (std::size_t j = 0; j < C; ++j) s_i += static_cast<double>(kernels::weight_at(proj.weight, i, j)) * d[j];
      g[i] = s_i;
    }
    const float* m = rec.merged.data() + l * C;
    for (std::size_t h = 0; h < H; ++h) {
      double s_h = 0;
      for (std::size_t i = h * hd; i < (h + 1) * hd; ++i) s_h += static_cast<double>(m[i]) * g[i];
      a.heads[l * H + h] = s_h * inv;
    }
    a.attn_bias[l] = detail::dot(proj.bias, d) * inv;
    a.attn[l] = detail::dot(rec.attn.data() + l * C, d) * inv;
    a.mlp[l] = detail::dot(rec.mlp.data() + l * C, d) * inv;
  }
  return a;
}

}  // namespace tinyllm
