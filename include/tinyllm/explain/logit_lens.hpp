// The logit lens (nostalgebraist, "interpreting GPT: the logit lens", LessWrong, 2020): the model's
// own final layer norm and head applied to the residual stream after each block, read as if the
// model stopped there. Row l of the lens is the stream after l blocks (row 0: the embeddings); the
// last row, after every block, is the model's output distribution. Depends on explain/common.hpp.
#pragma once

#include <algorithm>  // std::min, std::copy
#include <cstddef>    // std::size_t
#include <string>     // std::string, std::to_string
#include <vector>     // std::vector

#include "../detail/aligned.hpp"       // AlignedBuffer
#include "../generation/sampling.hpp"  // log_normalizer, top_logprobs
#include "common.hpp"

namespace tinyllm {

struct LogitLensOptions {
  int top_k = 5;    // most likely tokens kept per row and position
  int target = -1;  // also keep this token's log-probability everywhere (-1: none)
};

struct LogitLens {
  int n_rows = 0;       // n_layer + 1: row l = the residual stream after l blocks
  int n_positions = 0;  // T: row l, position t predicts the token after ids[t]
  int top_k = 0;
  int target = -1;
  std::vector<TokenLogprob> top;       // [n_rows, T, top_k], most likely first (ties: lower id)
  std::vector<float> target_logprobs;  // [n_rows, T] when target >= 0

  // The top_k most likely tokens of row `row` at position `position`.
  const TokenLogprob* at(int row, int position) const {
    return top.data() + index(row, position) * static_cast<std::size_t>(top_k);
  }
  float target_logprob(int row, int position) const {
    if (target < 0) detail::fail("LogitLens.target_logprob", "no target (LogitLensOptions.target)");
    return target_logprobs[index(row, position)];
  }

 private:
  std::size_t index(int row, int position) const {
    if (row < 0 || row >= n_rows)
      detail::fail("LogitLens", "row " + std::to_string(row) + " is not in [0, " + std::to_string(n_rows) + ")");
    if (position < 0 || position >= n_positions)
      detail::fail("LogitLens",
                   "position " + std::to_string(position) + " is not in [0, " + std::to_string(n_positions) + ")");
    return static_cast<std::size_t>(row) * static_cast<std::size_t>(n_positions) + static_cast<std::size_t>(position);
  }
};

// The lens over an inspection that recorded hidden states (a pass that also serves the other
// views). Rows 0..n_layer-1 are ln_f(hidden_states[l]) @ W_U; the last is hidden_states[n_layer]
// (already after ln_f) @ W_U, i.e. the model's logits.
template <class Backend>
LogitLens logit_lens(const BasicGPT2<Backend>& model, const Inspection& insp, const LogitLensOptions& opts = {}) {
  const GPT2Config& c = model.config();
  const std::string who = "logit_lens";
  if (insp.hidden_states.empty())
    detail::fail(who, "the Inspection has no hidden states (InspectOptions.hidden_states)");
  if (insp.n_layer != c.n_layer || insp.n_embd != c.n_embd || insp.vocab_size != c.vocab_size)
    detail::fail(who, "the Inspection comes from another model (n_layer, n_embd or vocab_size differ)");
  if (opts.top_k < 1 || opts.top_k > c.vocab_size)
    detail::fail(who, "top_k is " + std::to_string(opts.top_k) + ", must be in [1, vocab_size = " +
                          std::to_string(c.vocab_size) + "]");
  if (opts.target != -1) detail::check_target(c, opts.target, who);
  const std::size_t T = insp.size(), C = static_cast<std::size_t>(c.n_embd), V = static_cast<std::size_t>(c.vocab_size);
  const std::size_t rows = static_cast<std::size_t>(c.n_layer) + 1, k = static_cast<std::size_t>(opts.top_k);
  LogitLens lens;
  lens.n_rows = static_cast<int>(rows), lens.n_positions = static_cast<int>(T), lens.top_k = opts.top_k;
  lens.target = opts.target;
  lens.top.resize(rows * T * k);
  if (opts.target >= 0) lens.target_logprobs.resize(rows * T);
  const std::size_t chunk = 32;  // positions at a time: [32, V] logits
  detail::AlignedBuffer normed(chunk * C), logits(chunk * V);
  for (std::size_t l = 0; l < rows; ++l) {
    for (std::size_t t0 = 0; t0 < T; t0 += chunk) {
      const std::size_t n = std::min(chunk, T - t0);
      const float* h = insp.hidden_states[l].data() + t0 * C;
      if (l + 1 < rows)  // the last hidden state is already ln_f's output
        layers::layer_norm<Backend>(model.weights().ln_f, h, n, C, c.layer_norm_epsilon, normed.data());
      detail::lm_head<Backend>(model.weights(), l + 1 < rows ? normed.data() : h, n, logits.data());
      Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) {
          const float* row = logits.data() + i * V;
          const std::size_t at = l * T + t0 + i;
          const double log_z = detail::log_normalizer(row, V);
          const std::vector<TokenLogprob> best = detail::top_logprobs(row, V, k, log_z);
          std::copy(best.begin(), best.end(), lens.top.begin() + static_cast<std::ptrdiff_t>(at * k));
          if (opts.target >= 0)
            lens.target_logprobs[at] = static_cast<float>(static_cast<double>(row[opts.target]) - log_z);
        }
      });
    }
  }
  return lens;
}

// The same from ids (one forward pass recording the hidden states).
template <class Backend>
LogitLens logit_lens(const BasicGPT2<Backend>& model, const std::vector<int>& ids, const LogitLensOptions& opts = {}) {
  detail::check_sequence(model.config(), ids, "logit_lens");
  InspectOptions io;
  io.hidden_states = true;
  io.logits = false;
  return logit_lens(model, model.inspect(ids, io), opts);
}

}  // namespace tinyllm
