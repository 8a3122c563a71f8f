// Embeddings: BasicGPT2::embed, texts or token ids -> vectors pooled from a hidden state (options and
// pooling in embedding/pooling.hpp). A batch runs through the prompt kernels together: its inputs
// are packed one after another (no padding) into passes of up to embed_rows rows, the linear layers
// see all rows at once and attention runs per input (forward_packed), so each input's vectors are
// bitwise what it gives alone. An embedding is a prompt pass without the head; only the blocks up
// to the chosen hidden state run. Depends on gpt2.hpp.
//
//   auto v = model.embed("The whale", {tinyllm::Pooling::weighted_mean, -1, true});   // [n_embd], unit norm
//   tinyllm::Embeddings batch = model.embed({"Call me Ishmael.", "The whale"});      // batch[i], batch.tokens[i]
#pragma once

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <string>       // std::string, std::to_string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include "embedding/pooling.hpp"
#include "gpt2.hpp"

namespace tinyllm {

namespace detail {
// Rows per packed pass (a few of the GEMM's 1020-row blocks): activations of 10 x n_embd floats a row.
inline constexpr std::size_t embed_rows = 2048;
}  // namespace detail

template <class Backend>
Embeddings BasicGPT2<Backend>::embed(const std::vector<std::vector<int>>& inputs, const EmbeddingOptions& opts) const {
  opts.validate(config_);
  const int blocks = opts.hidden_state(config_);
  const std::size_t C = static_cast<std::size_t>(config_.n_embd), P = static_cast<std::size_t>(config_.n_positions);
  const std::size_t n = inputs.size();
  Embeddings out;
  out.dim = C;
  out.offsets.assign(1, 0);
  out.tokens.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::vector<int>& ids = inputs[i];
    const std::string who = "embed: input " + std::to_string(i);
    if (ids.empty()) detail::fail(who, "has no tokens (an empty text?)");
    if (ids.size() > P && !opts.truncate)
      detail::fail(who, "has " + std::to_string(ids.size()) + " tokens, more than the model's context of n_positions = " +
                            std::to_string(P) + " (EmbeddingOptions.truncate keeps the first " + std::to_string(P) + ")");
    out.tokens[i] = std::min(ids.size(), P);
    for (std::size_t t = 0; t < out.tokens[i]; ++t)
      if (ids[t] < 0 || ids[t] >= config_.vocab_size)
        detail::fail(who, "token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                              " is outside the vocabulary [0, " + std::to_string(config_.vocab_size) + ")");
  }
  const bool every_token = opts.pooling == Pooling::none;
  out.data.reserve((every_token ? out.total_tokens() : n) * C);

  detail::Activations act;
  std::vector<layers::KVCache> caches;
  std::vector<layers::KVCache*> cache_of;
  std::vector<int> ids;
  std::vector<std::size_t> lengths;
  std::vector<double> sums;
  for (std::size_t i0 = 0, i1 = 0; i0 < n; i0 = i1) {  // inputs [i0, i1) in one pass
    std::size_t rows = 0;
    ids.clear();
    lengths.clear();
    for (; i1 < n && (i1 == i0 || rows + out.tokens[i1] <= detail::embed_rows); ++i1) {
      rows += out.tokens[i1];
      lengths.push_back(out.tokens[i1]);
      ids.insert(ids.end(), inputs[i1].begin(), inputs[i1].begin() + static_cast<long>(out.tokens[i1]));
    }
    const std::size_t B = i1 - i0;
    while (caches.size() < B) caches.emplace_back(1, config_.n_head, config_.head_dim(), config_.n_positions);  // scratch
    cache_of.clear();
    for (std::size_t b = 0; b < B; ++b) {
      caches[b].set_length(0);
      cache_of.push_back(&caches[b]);
    }
    detail::forward_packed<Backend>(config_, store_->w, act, cache_of.data(), ids.data(), lengths.data(), B, blocks);
    const float* h = act.x.data();  // [rows, C]
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t T = lengths[b], first = out.data.size();
      if (every_token) {
        out.data.insert(out.data.end(), h, h + T * C);
      } else {
        out.data.resize(first + C);
        detail::pool(opts.pooling, h, T, C, sums, out.data.data() + first);
      }
      if (opts.normalize)
        for (std::size_t r = first; r < out.data.size(); r += C) detail::normalize_l2(out.data.data() + r, C);
      out.offsets.push_back(out.data.size() / C);
      h += T * C;
    }
  }
  return out;
}

template <class Backend>
Embeddings BasicGPT2<Backend>::embed(const std::vector<std::string>& texts, const EmbeddingOptions& opts) const {
  return embed(tokenizer().encode_batch(texts, Backend::num_threads()), opts);
}

template <class Backend>
std::vector<float> BasicGPT2<Backend>::embed(const std::vector<int>& ids, const EmbeddingOptions& opts) const {
  return std::move(embed(std::vector<std::vector<int>>{ids}, opts).data);
}

template <class Backend>
std::vector<float> BasicGPT2<Backend>::embed(std::string_view text, const EmbeddingOptions& opts) const {
  return embed(tokenizer().encode(text), opts);
}

}  // namespace tinyllm
