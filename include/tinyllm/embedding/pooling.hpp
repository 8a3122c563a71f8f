// What model.embed() takes and returns: the pooling of a text's hidden states into one vector (mean,
// SGPT's position-weighted mean, last token, or none: every token's vector), which hidden state,
// normalisation; and the pooling arithmetic itself. Depends on config.hpp and error.hpp only.
#pragma once

#include <cmath>        // std::sqrt
#include <cstddef>      // std::size_t
#include <string>       // std::string, std::to_string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include "../config.hpp"
#include "../error.hpp"

namespace tinyllm {

enum class Pooling {
  mean,           // the average of the text's token vectors
  weighted_mean,  // token t of T weighted t / (1 + ... + T), later tokens more (SGPT, Muennighoff 2022:
                  // in a causal model a later token has seen more of the text)
  last,           // the last token's vector (it alone has attended to the whole text)
  none,           // every token's vector, [tokens, n_embd]
};

inline const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::mean: return "mean";
    case Pooling::weighted_mean: return "weighted_mean";
    case Pooling::last: return "last";
    case Pooling::none: return "none";
  }
  return "?";
}

// "mean", "weighted_mean", "last", "none"; `where` names the argument in the error for anything else.
inline Pooling pooling_from_name(std::string_view name, const std::string& where = "pooling") {
  for (Pooling p : {Pooling::mean, Pooling::weighted_mean, Pooling::last, Pooling::none})
    if (name == pooling_name(p)) return p;
  detail::fail(where, "'" + std::string(name) + "' is not one of mean, weighted_mean, last, none");
}

struct EmbeddingOptions {
  Pooling pooling = Pooling::mean;
  // Which hidden state, indexed as Hugging Face's output_hidden_states: 0 is the embedding layer (wte +
  // wpe), l in [1, n_layer) the residual stream after block l - 1 (no ln_f), n_layer the output after
  // ln_f (HF's last_hidden_state). Negative counts from the end as in Python: -1 (the default) is
  // n_layer, -(n_layer + 1) is 0.
  int layer = -1;
  bool normalize = false;  // scale each vector to unit L2 norm (a zero vector stays zero)
  bool truncate = false;   // keep the first n_positions tokens of a longer text (default: an Error)

  // The hidden-state index `layer` names, in [0, n_layer]; throws Error naming the field otherwise.
  int hidden_state(const GPT2Config& c) const {
    if (layer < -(c.n_layer + 1) || layer > c.n_layer)
      detail::fail("EmbeddingOptions.layer", "is " + std::to_string(layer) + ", must be in [" +
                                                 std::to_string(-(c.n_layer + 1)) + ", " + std::to_string(c.n_layer) +
                                                 "] (hidden states of a " + std::to_string(c.n_layer) + "-layer model)");
    return layer < 0 ? c.n_layer + 1 + layer : layer;
  }
  void validate(const GPT2Config& c) const {
    const int p = static_cast<int>(pooling);
    if (p < 0 || p > static_cast<int>(Pooling::none))
      detail::fail("EmbeddingOptions.pooling", "is " + std::to_string(p) + ", not a Pooling");
    hidden_state(c);
  }
};

// The vectors of a batch of inputs, in input order: what a server's /v1/embeddings returns, with the
// token counts it reports as usage.
struct Embeddings {
  std::size_t dim = 0;               // floats per vector (n_embd)
  std::vector<float> data;           // every vector, row-major [rows, dim]
  std::vector<std::size_t> offsets;  // input i's vectors are rows [offsets[i], offsets[i + 1]): one each,
                                     // or one per token with Pooling::none
  std::vector<std::size_t> tokens;   // tokens of each input that ran (after truncation)

  std::size_t size() const { return tokens.size(); }  // inputs
  std::size_t rows(std::size_t i) const { return offsets[i + 1] - offsets[i]; }
  const float* operator[](std::size_t i) const { return data.data() + offsets[i] * dim; }  // input i's first vector
  std::vector<float> vector(std::size_t i) const {                                        // input i's vectors
    return std::vector<float>((*this)[i], (*this)[i] + rows(i) * dim);
  }
  std::size_t total_tokens() const {
    std::size_t n = 0;
    for (std::size_t t : tokens) n += t;
    return n;
  }
};

namespace detail {

// v[0:n] /= ||v||_2 (summed in double); a zero vector stays zero.
inline void normalize_l2(float* v, std::size_t n) {
  double sq = 0;
  for (std::size_t i = 0; i < n; ++i) sq += static_cast<double>(v[i]) * v[i];
  if (sq == 0) return;
  const double inv = 1.0 / std::sqrt(sq);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] * inv);
}

// out[C] = h[T, C] pooled (mean, weighted_mean or last; T >= 1), summed in double. `sums` is scratch.
inline void pool(Pooling p, const float* h, std::size_t T, std::size_t C, std::vector<double>& sums, float* out) {
  if (p == Pooling::last) {
    for (std::size_t c = 0; c < C; ++c) out[c] = h[(T - 1) * C + c];
    return;
  }
  sums.assign(C, 0.0);
  const bool weighted = p == Pooling::weighted_mean;
  for (std::size_t t = 0; t < T; ++t) {
    const double wt = weighted ? static_cast<double>(t + 1) : 1.0;  // SGPT: position t + 1 of 1..T
    for (std::size_t c = 0; c < C; ++c) sums[c] += wt * h[t * C + c];
  }
  const double total = weighted ? static_cast<double>(T) * static_cast<double>(T + 1) / 2 : static_cast<double>(T);
  for (std::size_t c = 0; c < C; ++c) out[c] = static_cast<float>(sums[c] / total);
}

}  // namespace detail
}  // namespace tinyllm
