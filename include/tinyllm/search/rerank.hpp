// Relevance by the language model (SGPT's cross-encoder, Muennighoff 2022): a document's score for a
// query is log p(query | prompt around the document), summed over the query's tokens, in nats; it
// needs no training. The prompt's text before {document} runs once; each document (with the prompt up
// to {query}) runs once on a copy of that cache, and each (query, document) pair continues a copy of
// its document's cache with the query's tokens: every pass packs many documents or pairs
// (forward_packed). Depends on gpt2.hpp.
#pragma once

#include <algorithm>  // std::min, std::max
#include <cstddef>    // std::size_t
#include <string>     // std::string
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "../gpt2.hpp"

namespace tinyllm {

// SGPT's prompt for scoring a document by the query's log-probability. {query}'s tokens (and any
// text after it) are the ones scored.
inline constexpr const char* default_rerank_prompt =
    "Documents are searched to find matches with the same content.\nThe document \"{document}\" is a good search "
    "result for \"{query}";

namespace detail {

struct RerankPrompt {
  std::string head, middle, tail;  // before {document}, between it and {query}, after {query}

  explicit RerankPrompt(const std::string& prompt) {
    const std::size_t d = prompt.find("{document}"), q = prompt.find("{query}");
    if (d == std::string::npos || q == std::string::npos || q < d)
      fail("rerank prompt", "must contain {document} and then {query} (got \"" + prompt + "\")");
    head = prompt.substr(0, d);
    middle = prompt.substr(d + 10, q - d - 10);
    tail = prompt.substr(q + 7);
  }
};

// Bytes of KV cache that sequences of `positions` positions in all take (the budget of one group).
inline double cache_bytes(const GPT2Config& c, std::size_t positions) {
  return 2.0 * 4.0 * c.n_layer * static_cast<double>(c.n_embd) * static_cast<double>(positions) * 1.25;
}
inline constexpr double rerank_cache_budget = 256.0 * (1 << 20);

}  // namespace detail

// log p(queries[i] | documents[j], prompt) in nats for each pair (i, j). A document too long to fit
// the model's context with the prompt and its longest query keeps its first tokens; a query that
// cannot fit even with an empty document is an Error.
template <class Backend>
std::vector<double> rerank_scores(const BasicGPT2<Backend>& model, const std::vector<std::string>& queries,
                                  const std::vector<std::string>& documents,
                                  const std::vector<std::pair<std::size_t, std::size_t>>& pairs,
                                  const std::string& prompt = default_rerank_prompt) {
  const GPT2Config& c = model.config();
  const Tokenizer& tok = model.tokenizer();
  const detail::RerankPrompt parts(prompt);
  const std::size_t P = static_cast<std::size_t>(c.n_positions), C = static_cast<std::size_t>(c.n_embd);
  const std::size_t V = static_cast<std::size_t>(c.vocab_size);
  std::vector<int> head = tok.encode(parts.head);
  const std::vector<int> middle = tok.encode(parts.middle), tail = tok.encode(parts.tail);
  if (head.empty() && c.bos_token_id >= 0) head.push_back(c.bos_token_id);  // the first token needs a context
  std::vector<std::vector<int>> q(queries.size());
  for (std::size_t i = 0; i < queries.size(); ++i) {
    q[i] = tok.encode(queries[i]);
    q[i].insert(q[i].end(), tail.begin(), tail.end());
    if (q[i].empty()) detail::fail("rerank: query " + std::to_string(i), "has no tokens");
    if (head.size() + middle.size() + q[i].size() > P)
      detail::fail("rerank: query " + std::to_string(i),
                   "takes " + std::to_string(head.size() + middle.size() + q[i].size()) +
                       " tokens with the prompt, more than the model's context of n_positions = " + std::to_string(P));
  }
  // Each paired document's tokens after the head (its text, then the prompt up to the query),
  // shortened to leave room for its longest query.
  std::vector<std::size_t> longest(documents.size(), 0);
  for (const auto& [i, j] : pairs) {
    if (i >= queries.size() || j >= documents.size())
      detail::fail("rerank", "pair (" + std::to_string(i) + ", " + std::to_string(j) + ") names no query or document");
    longest[j] = std::max(longest[j], q[i].size());
  }
  std::vector<std::vector<int>> rest(documents.size());
  std::vector<std::size_t> used;  // documents that are paired
  for (std::size_t j = 0; j < documents.size(); ++j) {
    if (longest[j] == 0) continue;
    used.push_back(j);
    rest[j] = tok.encode(documents[j]);
    rest[j].resize(std::min(rest[j].size(), P - head.size() - middle.size() - longest[j]));
    rest[j].insert(rest[j].end(), middle.begin(), middle.end());
  }
  std::vector<std::vector<std::size_t>> pairs_of(documents.size());
  for (std::size_t p = 0; p < pairs.size(); ++p) pairs_of[pairs[p].second].push_back(p);

  const GPT2Weights& w = model.weights();
  std::vector<double> score(pairs.size(), 0.0);
  detail::Activations act;
  layers::KVCache head_cache(c.n_layer, c.n_head, c.head_dim(), c.n_positions);
  std::vector<float> head_last(C);
  {
    const std::size_t n = head.size();
    layers::KVCache* cache = &head_cache;
    detail::forward_packed<Backend>(c, w, act, &cache, head.data(), &n, 1);
    std::copy(act.x.data() + (n - 1) * C, act.x.data() + n * C, head_last.data());
  }
  std::vector<float> logits;
  // Adds log p(targets[r]) under the logits of hidden rows x[r] to score[to[r]], 32 rows at a time.
  auto add_logprobs = [&](const float* x, std::size_t rows, const int* targets, const std::size_t* to) {
    for (std::size_t r0 = 0; r0 < rows; r0 += 32) {
      const std::size_t n = std::min<std::size_t>(32, rows - r0);
      logits.resize(n * V);
      detail::lm_head<Backend>(w, x + r0 * C, n, logits.data());
      std::vector<double> lp(n);
      Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
        for (std::size_t r = b; r < e; ++r)
          lp[r] = static_cast<double>(logits[r * V + static_cast<std::size_t>(targets[r0 + r])]) -
                  detail::log_normalizer(logits.data() + r * V, V);
      });
      for (std::size_t r = 0; r < n; ++r) score[to[r0 + r]] += lp[r];  // in order: any thread count alike
    }
  };

  std::vector<layers::KVCache> doc_caches, pair_caches;
  std::vector<layers::KVCache*> ptrs;
  std::vector<int> ids, targets;
  std::vector<std::size_t> lengths, to;
  std::vector<float> last;  // each document's last hidden row
  for (std::size_t g0 = 0, g1 = 0; g0 < used.size(); g0 = g1) {
    // a group of documents whose caches fit the budget
    double bytes = 0;
    for (g1 = g0; g1 < used.size() && (g1 == g0 || bytes < detail::rerank_cache_budget); ++g1)
      bytes += detail::cache_bytes(c, head.size() + rest[used[g1]].size() + longest[used[g1]]);
    const std::size_t B = g1 - g0;
    while (doc_caches.size() < B) doc_caches.emplace_back(c.n_layer, c.n_head, c.head_dim(), c.n_positions);
    ptrs.clear();
    ids.clear();
    lengths.clear();
    std::vector<std::size_t> runs;  // the group's documents with tokens after the head
    for (std::size_t b = 0; b < B; ++b) {
      const std::vector<int>& r = rest[used[g0 + b]];
      doc_caches[b].reserve(static_cast<int>(head.size() + r.size() + longest[used[g0 + b]]));
      detail::copy_cache(c, head_cache, doc_caches[b]);
      if (r.empty()) continue;
      runs.push_back(b);
      ptrs.push_back(&doc_caches[b]);
      ids.insert(ids.end(), r.begin(), r.end());
      lengths.push_back(r.size());
    }
    last.assign(B * C, 0.0f);
    for (std::size_t b = 0; b < B; ++b) std::copy(head_last.begin(), head_last.end(), last.begin() + b * C);
    if (!runs.empty()) {
      detail::forward_packed<Backend>(c, w, act, ptrs.data(), ids.data(), lengths.data(), runs.size());
      std::size_t row = 0;
      for (std::size_t k = 0; k < runs.size(); ++k) {
        row += lengths[k];
        std::copy(act.x.data() + (row - 1) * C, act.x.data() + row * C, last.begin() + runs[k] * C);
      }
    }
    // The first token of every query, from its document's last row.
    targets.clear();
    to.clear();
    std::vector<float> rows;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t p : pairs_of[used[g0 + b]]) {
        rows.insert(rows.end(), last.begin() + b * C, last.begin() + (b + 1) * C);
        targets.push_back(q[pairs[p].first][0]);
        to.push_back(p);
      }
    add_logprobs(rows.data(), to.size(), targets.data(), to.data());
    // The rest of every query, on a copy of its document's cache, pairs packed until their caches fill the budget.
    std::vector<std::pair<std::size_t, std::size_t>> todo;  // (pair, document slot b)
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t p : pairs_of[used[g0 + b]])
        if (q[pairs[p].first].size() > 1) todo.push_back({p, b});
    for (std::size_t t0 = 0, t1 = 0; t0 < todo.size(); t0 = t1) {
      double pair_bytes = 0;
      std::size_t rows_in = 0;
      for (t1 = t0; t1 < todo.size() && (t1 == t0 || (pair_bytes < detail::rerank_cache_budget &&
                                                       rows_in < detail::embed_rows));
           ++t1) {
        const std::size_t b = todo[t1].second, n = q[pairs[todo[t1].first].first].size() - 1;
        pair_bytes += detail::cache_bytes(c, static_cast<std::size_t>(doc_caches[b].length()) + n);
        rows_in += n;
      }
      const std::size_t n_pairs = t1 - t0;
      while (pair_caches.size() < n_pairs) pair_caches.emplace_back(c.n_layer, c.n_head, c.head_dim(), c.n_positions);
      ptrs.clear();
      ids.clear();
      lengths.clear();
      targets.clear();
      to.clear();
      for (std::size_t k = 0; k < n_pairs; ++k) {
        const auto [p, b] = todo[t0 + k];
        const std::vector<int>& query = q[pairs[p].first];
        pair_caches[k].reserve(doc_caches[b].length() + static_cast<int>(query.size()));
        detail::copy_cache(c, doc_caches[b], pair_caches[k]);
        ptrs.push_back(&pair_caches[k]);
        ids.insert(ids.end(), query.begin(), query.end() - 1);  // each predicts the next
        targets.insert(targets.end(), query.begin() + 1, query.end());
        lengths.push_back(query.size() - 1);
        to.insert(to.end(), query.size() - 1, p);
      }
      detail::forward_packed<Backend>(c, w, act, ptrs.data(), ids.data(), lengths.data(), n_pairs);
      add_logprobs(act.x.data(), ids.size(), targets.data(), to.data());
    }
  }
  return score;
}

}  // namespace tinyllm
