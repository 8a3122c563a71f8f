// Perplexity and next-token top-1 accuracy of a model over a token sequence, with Hugging Face's
// sliding-window recipe (docs: "Perplexity of fixed-length models"): windows of `window` tokens start
// every `stride` tokens; each window scores only the tokens the previous one did not, each predicted
// from at most `window` - 1 tokens before it. With stride < window every token but the first is
// scored exactly once; stride == window gives disjoint chunks (fastest), whose first tokens are not
// scored (as in HF's recipe). compare() runs a model and a reference (say Q8 and F32 weights) over
// the same windows: top-1 agreement and mean KL divergence between their next-token distributions.
// Depends on gpt2.hpp.
#pragma once

#include <algorithm>   // std::min, std::max
#include <array>       // std::array
#include <cmath>       // std::exp, std::log
#include <cstddef>     // std::size_t
#include <functional>  // std::function
#include <utility>     // std::pair
#include <vector>      // std::vector

#include "gpt2.hpp"

namespace tinyllm {

struct PerplexityStats {
  double nll = 0;          // sum of -log p(token | context) over the scored tokens
  std::size_t tokens = 0;  // tokens scored
  std::size_t top1 = 0;    // tokens that were the model's most likely next token
  double perplexity() const { return tokens ? std::exp(nll / static_cast<double>(tokens)) : 0.0; }
  double accuracy() const { return tokens ? static_cast<double>(top1) / static_cast<double>(tokens) : 0.0; }
};

namespace detail {

// The extension point for evaluations: runs each model over the same windows and calls
// on_rows(logits, targets [rows], rows) for every scored token, in chunks, in order, where logits[m]
// is model m's [rows, V] logits that predicted each target. progress(done, total) after each window.
template <class Backend, std::size_t M, class OnRows>
void for_each_prediction(const std::array<const BasicGPT2<Backend>*, M>& models, const std::vector<int>& ids,
                         std::size_t window, std::size_t stride, OnRows&& on_rows,
                         const std::function<void(std::size_t, std::size_t)>& progress = {}) {
  const GPT2Config& c0 = models[0]->config();
  const std::size_t n = ids.size(), V = static_cast<std::size_t>(c0.vocab_size);
  const std::size_t chunk = 32;  // logits rows at a time: 32 x V floats per model
  std::array<std::vector<float>, M> logits;
  std::array<const float*, M> rows_of{};
  std::vector<InferenceState> states;
  for (std::size_t m = 0; m < M; ++m) {
    logits[m].resize(chunk * V);
    rows_of[m] = logits[m].data();
    states.emplace_back(models[m]->config());
  }
  std::size_t scored_to = 1;  // tokens [0, scored_to) are done (the first token has no prediction)
  for (std::size_t begin = 0; begin < n && scored_to < n; begin += stride) {
    const std::size_t end = std::min(begin + window, n);
    for (std::size_t m = 0; m < M; ++m) {  // ln_f(x) of each model: [end - begin, n_embd]
      states[m].cache.set_length(0);
      forward_hidden<Backend>(models[m]->config(), models[m]->weights(), states[m], ids.data() + begin, end - begin);
    }
    for (std::size_t t = std::max(scored_to, begin + 1); t < end; t += chunk) {  // target t, predicted by row t-1
      const std::size_t rows = std::min(chunk, end - t);
      for (std::size_t m = 0; m < M; ++m) {
        const std::size_t C = static_cast<std::size_t>(models[m]->config().n_embd);
        lm_head<Backend>(models[m]->weights(), states[m].x.data() + (t - 1 - begin) * C, rows, logits[m].data());
      }
      on_rows(rows_of, ids.data() + t, rows);
    }
    scored_to = std::max(scored_to, end);
    if (progress) progress(scored_to, n);
  }
}

// Checks window, stride and ids; returns {window, stride} with the defaults filled in.
inline std::pair<std::size_t, std::size_t> scoring_windows(const GPT2Config& c, const std::vector<int>& ids, int window,
                                                           int stride) {
  const int n_ctx = c.n_positions;
  if (window < 0 || window > n_ctx)
    fail("perplexity", "window is " + std::to_string(window) + ", must be in [2, n_positions = " +
                           std::to_string(n_ctx) + "] (0: n_positions)");
  if (window == 0) window = n_ctx;
  if (window < 2) fail("perplexity", "window is " + std::to_string(window) + ", must be at least 2");
  if (stride < 0 || stride > window)
    fail("perplexity", "stride is " + std::to_string(stride) + ", must be in [1, window = " +
                           std::to_string(window) + "] (0: window / 2)");
  if (stride == 0) stride = std::max(1, window / 2);
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.vocab_size)
      fail("perplexity", "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                             " is outside the vocabulary");
  return {static_cast<std::size_t>(window), static_cast<std::size_t>(stride)};
}

// Adds -log p(target) and whether the target is the argmax, for one row of logits; returns the row's
// log-normalizer and sets `best` to its argmax.
inline double score_row(const float* row, std::size_t V, int target, double& nll, std::size_t& top1, int& best) {
  const double log_z = log_normalizer(row, V);
  best = argmax(row, V);
  nll += log_z - static_cast<double>(row[target]);
  top1 += static_cast<std::size_t>(best == target);
  return log_z;
}

}  // namespace detail

// window: tokens per forward pass (0: the model's n_positions); stride: 0 means window / 2.
template <class Backend>
PerplexityStats perplexity(const BasicGPT2<Backend>& model, const std::vector<int>& ids, int window = 0, int stride = 0,
                           const std::function<void(std::size_t, std::size_t)>& progress = {}) {
  const auto [win, str] = detail::scoring_windows(model.config(), ids, window, stride);
  const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
  PerplexityStats st;
  detail::for_each_prediction(
      std::array<const BasicGPT2<Backend>*, 1>{&model}, ids, win, str,
      [&](const std::array<const float*, 1>& logits, const int* targets, std::size_t rows) {
        std::vector<PerplexityStats> per_row(rows);
        Backend::parallel_for(0, rows, [&](std::size_t b, std::size_t e) {
          for (std::size_t r = b; r < e; ++r) {
            int best;
            detail::score_row(logits[0] + r * V, V, targets[r], per_row[r].nll, per_row[r].top1, best);
          }
        });
        for (const PerplexityStats& r : per_row) {  // summed in order: the same on any thread count
          st.nll += r.nll;
          st.top1 += r.top1;
        }
        st.tokens += rows;
      },
      progress);
  return st;
}

// A model against a reference over the same text and windows (e.g. Q8 weights against F32): both
// perplexities, how often their most likely next tokens agree, and the mean KL divergence
// KL(reference || model) = sum_v p_ref(v) (log p_ref(v) - log p_model(v)) in nats per token.
struct ComparisonStats {
  PerplexityStats model, reference;
  std::size_t agree = 0;  // scored positions where both models' most likely next token is the same
  double kl = 0;          // KL(reference || model) summed over the scored positions
  double top1_agreement() const {
    return model.tokens ? static_cast<double>(agree) / static_cast<double>(model.tokens) : 0.0;
  }
  double mean_kl() const { return model.tokens ? kl / static_cast<double>(model.tokens) : 0.0; }
};

template <class Backend>
ComparisonStats compare(const BasicGPT2<Backend>& model, const BasicGPT2<Backend>& reference, const std::vector<int>& ids,
                        int window = 0, int stride = 0,
                        const std::function<void(std::size_t, std::size_t)>& progress = {}) {
  const GPT2Config &c = model.config(), &r = reference.config();
  if (c.vocab_size != r.vocab_size || c.n_positions != r.n_positions)
    detail::fail("compare", "the reference has vocab_size " + std::to_string(r.vocab_size) + " and n_positions " +
                                std::to_string(r.n_positions) + ", the model " + std::to_string(c.vocab_size) +
                                " and " + std::to_string(c.n_positions) + ": they must be equal");
  const auto [win, str] = detail::scoring_windows(c, ids, window, stride);
  const std::size_t V = static_cast<std::size_t>(c.vocab_size);
  ComparisonStats st;
  detail::for_each_prediction(
      std::array<const BasicGPT2<Backend>*, 2>{&model, &reference}, ids, win, str,
      [&](const std::array<const float*, 2>& logits, const int* targets, std::size_t rows) {
        std::vector<ComparisonStats> per_row(rows);
        Backend::parallel_for(0, rows, [&](std::size_t b, std::size_t e) {
          for (std::size_t i = b; i < e; ++i) {
            const float *q = logits[0] + i * V, *p = logits[1] + i * V;
            ComparisonStats& s = per_row[i];
            int best_q, best_p;
            const double log_zq = detail::score_row(q, V, targets[i], s.model.nll, s.model.top1, best_q);
            const double log_zp = detail::score_row(p, V, targets[i], s.reference.nll, s.reference.top1, best_p);
            s.agree = best_q == best_p;
            double kl = 0;
            for (std::size_t v = 0; v < V; ++v) {
              const double log_p = static_cast<double>(p[v]) - log_zp, log_q = static_cast<double>(q[v]) - log_zq;
              kl += std::exp(log_p) * (log_p - log_q);
            }
            s.kl = kl;
          }
        });
        for (const ComparisonStats& s : per_row) {  // summed in order: the same on any thread count
          st.model.nll += s.model.nll;
          st.model.top1 += s.model.top1;
          st.reference.nll += s.reference.nll;
          st.reference.top1 += s.reference.top1;
          st.agree += s.agree;
          st.kl += s.kl;
        }
        st.model.tokens += rows;
        st.reference.tokens += rows;
      },
      progress);
  return st;
}

}  // namespace tinyllm
