// Occlusion saliency (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
// ECCV 2014, applied to tokens): how much the log-probability of a target token after the sequence
// falls when one token is removed (or replaced). A token i changes nothing before it, so the pass
// without it reuses the KV cache of ids[0..i) and runs only the tokens after it: the n occlusions
// of an n-token sequence cost n (n - 1) / 2 token rows instead of n full passes' n^2. They run
// from the last token to the first, so one cache serves them all. Depends on explain/common.hpp.
#pragma once

#include <cstddef>  // std::size_t, std::ptrdiff_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "../generation/sampling.hpp"  // log_normalizer
#include "common.hpp"

namespace tinyllm {

struct OcclusionOptions {
  // -1: remove the token (the tokens after it move up one position); otherwise put this id in its
  // place. A one-token sequence with the token removed leaves the model's bos_token_id as context.
  int replacement = -1;
};

struct Occlusion {
  int target = 0;
  float logprob = 0.0f;           // log p(target | ids)
  std::vector<float> occluded;    // [T] log p(target | ids with token i occluded)
  // [T] logprob - occluded[i]: positive where the token makes the target more likely.
  std::vector<float> saliency;
};

template <class Backend>
Occlusion occlusion(const BasicGPT2<Backend>& model, const std::vector<int>& ids, int target,
                    const OcclusionOptions& opts = {}) {
  const GPT2Config& c = model.config();
  const GPT2Weights& w = model.weights();
  const std::string who = "occlusion";
  detail::check_sequence(c, ids, who);
  detail::check_target(c, target, who);
  const bool remove = opts.replacement == -1;
  if (!remove && (opts.replacement < 0 || opts.replacement >= c.vocab_size))
    detail::fail("OcclusionOptions.replacement", "is " + std::to_string(opts.replacement) +
                                                     ", not a token id of this model (-1: remove the token)");
  if (remove && ids.size() == 1 && c.bos_token_id < 0)
    detail::fail(who, "removing the only token leaves no context, and the model has no bos_token_id");
  const std::size_t T = ids.size(), C = static_cast<std::size_t>(c.n_embd), V = static_cast<std::size_t>(c.vocab_size);
  std::vector<float> logits(V);
  auto logprob_of = [&](const float* hidden) {  // log p(target) from one row of ln_f(x)
    detail::lm_head<Backend>(w, hidden, 1, logits.data());
    return static_cast<float>(static_cast<double>(logits[static_cast<std::size_t>(target)]) -
                              detail::log_normalizer(logits.data(), V));
  };

  Occlusion o;
  o.target = target;
  o.occluded.resize(T);
  detail::InferenceState s(c);
  detail::forward_hidden<Backend>(c, w, s, ids.data(), T);
  o.logprob = logprob_of(s.x.data() + (T - 1) * C);
  if (remove && T >= 2) o.occluded[T - 1] = logprob_of(s.x.data() + (T - 2) * C);  // ids[0..T-1) predicts, as is
  std::vector<int> rest;
  for (std::size_t i = T; i-- > 0;) {
    if (remove && i == T - 1 && T >= 2) continue;
    rest.clear();
    if (!remove) rest.push_back(opts.replacement);
    rest.insert(rest.end(), ids.begin() + static_cast<std::ptrdiff_t>(i + 1), ids.end());
    if (rest.empty()) rest.push_back(c.bos_token_id);  // one token, removed: start from bos
    s.cache.set_length(static_cast<int>(i));  // the cache of ids[0..i), untouched by the passes after i
    detail::forward_hidden<Backend>(c, w, s, rest.data(), rest.size());
    o.occluded[i] = logprob_of(s.x.data() + (rest.size() - 1) * C);
  }
  o.saliency.resize(T);
  for (std::size_t i = 0; i < T; ++i) o.saliency[i] = o.logprob - o.occluded[i];
  return o;
}

}  // namespace tinyllm
