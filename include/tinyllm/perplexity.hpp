// Perplexity and next-token top-1 accuracy of a model over a token sequence, with Hugging Face's
// sliding-window recipe (docs: "Perplexity of fixed-length models"): windows of `window` tokens start
// every `stride` tokens; each window scores only the tokens the previous one did not, each predicted
// from at most `window` - 1 tokens before it. With stride < window every token but the first is
// scored exactly once; stride == window gives disjoint chunks (fastest), whose first tokens are not
// scored (as in HF's recipe).
// Depends on gpt2.hpp.
#pragma once

#include <algorithm>   // std::min, std::max
#include <cmath>       // std::exp, std::log
#include <cstddef>     // std::size_t
#include <functional>  // std::function
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

// The extension point for evaluations (perplexity here; comparisons between models later): calls
// on_rows(logits [rows, V], targets [rows], rows) for every scored token, in chunks, in order, with
// the logits that predicted each target. progress(done, total) after each window.
template <class Backend, class OnRows>
void for_each_prediction(const BasicGPT2<Backend>& model, const std::vector<int>& ids, std::size_t window,
                         std::size_t stride, OnRows&& on_rows,
                         const std::function<void(std::size_t, std::size_t)>& progress = {}) {
  const GPT2Config& c = model.config();
  const std::size_t n = ids.size(), V = static_cast<std::size_t>(c.vocab_size), C = static_cast<std::size_t>(c.n_embd);
  const std::size_t chunk = 32;  // logits rows at a time: 32 x V floats
  std::vector<float> logits(chunk * V);
  InferenceState s(c);
  std::size_t scored_to = 1;  // tokens [0, scored_to) are done (the first token has no prediction)
  for (std::size_t begin = 0; begin < n && scored_to < n; begin += stride) {
    const std::size_t end = std::min(begin + window, n);
    s.cache.set_length(0);
    forward_hidden<Backend>(c, model.weights(), s, ids.data() + begin, end - begin);  // ln_f(x): [end - begin, C]
    for (std::size_t t = std::max(scored_to, begin + 1); t < end; t += chunk) {       // target t, predicted by row t-1
      const std::size_t rows = std::min(chunk, end - t);
      lm_head<Backend>(c, model.weights(), s.x.data() + (t - 1 - begin) * C, rows, logits.data());
      on_rows(static_cast<const float*>(logits.data()), ids.data() + t, rows);
    }
    scored_to = std::max(scored_to, end);
    if (progress) progress(scored_to, n);
  }
}

}  // namespace detail

// window: tokens per forward pass (0: the model's n_positions); stride: 0 means window / 2.
template <class Backend>
PerplexityStats perplexity(const BasicGPT2<Backend>& model, const std::vector<int>& ids, int window = 0, int stride = 0,
                           const std::function<void(std::size_t, std::size_t)>& progress = {}) {
  const int n_ctx = model.config().n_positions;
  if (window < 0 || window > n_ctx)
    detail::fail("perplexity", "window is " + std::to_string(window) +
                                   ", must be in [2, n_positions = " + std::to_string(n_ctx) + "] (0: n_positions)");
  if (window == 0) window = n_ctx;
  if (window < 2) detail::fail("perplexity", "window is " + std::to_string(window) + ", must be at least 2");
  if (stride < 0 || stride > window)
    detail::fail("perplexity", "stride is " + std::to_string(stride) +
                                   ", must be in [1, window = " + std::to_string(window) + "] (0: window / 2)");
  if (stride == 0) stride = std::max(1, window / 2);
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= model.config().vocab_size)
      detail::fail("perplexity", "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                     " is outside the vocabulary");
  const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
  PerplexityStats st;
  detail::for_each_prediction(
      model, ids, static_cast<std::size_t>(window), static_cast<std::size_t>(stride),
      [&](const float* logits, const int* targets, std::size_t rows) {
        std::vector<double> nll(rows);
        std::vector<char> top1(rows);
        Backend::parallel_for(0, rows, [&](std::size_t b, std::size_t e) {
          for (std::size_t r = b; r < e; ++r) {
            const float* row = logits + r * V;
            nll[r] = detail::log_normalizer(row, V) - static_cast<double>(row[targets[r]]);
            top1[r] = detail::argmax(row, V) == targets[r];
          }
        });
        for (std::size_t r = 0; r < rows; ++r) {  // summed in order: the same on any thread count
          st.nll += nll[r];
          st.top1 += static_cast<std::size_t>(top1[r]);
        }
        st.tokens += rows;
      },
      progress);
  return st;
}

}  // namespace tinyllm
