// One sequence being generated, as greedy search, sampling and speculative decoding advance it: its
// result so far, KV cache, random stream, stop strings and the config it follows; and the two steps
// each new token takes, choose (processors, warpers, then argmax or a draw) and emit (append it
// with its scores, tell the caller, say whether the sequence is finished). Also what every strategy
// needs of the model (ModelRef) and of a prompt (its length budget, its prefill).
// Depends on model/gpt2_model.hpp, tokenizer.hpp and generation/.
#pragma once

#include <algorithm>    // std::find, std::min
#include <cstddef>      // std::size_t
#include <functional>   // std::function
#include <optional>     // std::optional
#include <random>       // std::mt19937_64
#include <string>       // std::string, std::to_string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include "../config.hpp"
#include "../error.hpp"
#include "../model/gpt2_model.hpp"
#include "../model/weights.hpp"
#include "../tokenizer.hpp"
#include "config.hpp"
#include "output.hpp"
#include "processors.hpp"
#include "sampling.hpp"
#include "stop_strings.hpp"

namespace tinyllm::detail {

// What generation needs of a model.
struct ModelRef {
  const GPT2Config& config;
  const GPT2Weights& weights;
  const Tokenizer* tokenizer;  // null when the folder has none
};

// A prompt to continue. state.cache holds ids[0, cache.length()) already (a Session's history; empty
// for a fresh prompt); the rest of ids is run first. After generation the cache holds a prefix of the
// first returned sequence of this prompt.
struct PromptState {
  std::vector<int> ids;
  InferenceState state;
};

// Called with each new id of a sequence, after it is appended to the sequence's result; returning
// false stops that sequence (FinishReason::stopped).
using TokenCallback = std::function<bool(int)>;

// Checks the ids a (validated) config names against the model's vocabulary; returns the stop tokens
// to use: cfg.eos_token_id, or the model's when it is empty.
inline std::vector<int> checked_eos(const ModelRef& m, const GenerationConfig& cfg, const std::vector<int>& model_eos) {
  auto check = [&](const char* field, int id) {
    if (id >= m.config.vocab_size)
      fail(std::string("GenerationConfig.") + field, std::to_string(id) +
                                                         " is not a token id of this model (vocab_size " +
                                                         std::to_string(m.config.vocab_size) + ")");
  };
  for (int id : cfg.eos_token_id) check("eos_token_id", id);
  for (const auto& word : cfg.bad_words_ids)
    for (int id : word) check("bad_words_ids", id);
  if (cfg.assistant_model && cfg.assistant_model.config().vocab_size != m.config.vocab_size)
    fail("GenerationConfig.assistant_model", "has vocab_size " +
                                                 std::to_string(cfg.assistant_model.config().vocab_size) +
                                                 ", the model " + std::to_string(m.config.vocab_size) +
                                                 ": speculative decoding needs the same vocabulary");
  if (!cfg.stop_strings.empty() && !m.tokenizer)
    fail("GenerationConfig.stop_strings", "the model folder has no tokenizer to turn tokens into text");
  return cfg.eos_token_id.empty() ? model_eos : cfg.eos_token_id;
}

// Prompt + new tokens at most for a sequence of n ids: max_new_tokens or max_length, never past
// n_positions (n when there is nothing to generate).
inline std::size_t max_length(const GPT2Config& c, const GenerationConfig& cfg, std::size_t n) {
  const std::size_t ctx = static_cast<std::size_t>(c.n_positions);
  const std::size_t budget = cfg.max_new_tokens >= 0                        ? static_cast<std::size_t>(cfg.max_new_tokens)
                             : static_cast<std::size_t>(cfg.max_length) > n ? static_cast<std::size_t>(cfg.max_length) - n
                                                                            : 0;
  return n + std::min(budget, ctx > n ? ctx - n : 0);
}

// Runs the ids not yet in state's cache; returns the hidden row of the last one ([C], ln_f applied).
template <class Backend>
const float* prefill(const ModelRef& m, const std::vector<int>& ids, InferenceState& state) {
  const std::size_t done = static_cast<std::size_t>(state.cache.length()), T = ids.size() - done;
  forward_hidden<Backend>(m.config, m.weights, state, ids.data() + done, T);
  return state.x.data() + (T - 1) * static_cast<std::size_t>(m.config.n_embd);
}

// The bytes of token `id` for stop strings: empty where the tokenizer has none (no tokenizer, an id
// past its vocabulary, a hole in it).
inline std::string_view token_bytes(const Tokenizer* tokenizer, int id) {
  if (!tokenizer || id >= tokenizer->vocab_size()) return {};
  try {
    return tokenizer->token_bytes(id);
  } catch (const Error&) {  // a hole in the vocabulary
    return {};
  }
}

// cfg's stop strings, primed with the prompt's text.
inline StopStringMatcher stop_matcher(const Tokenizer* tokenizer, const GenerationConfig& cfg,
                                      const std::vector<int>& prompt) {
  StopStringMatcher s(&cfg.stop_strings);
  if (s.active())
    for (int id : prompt) s.prime(token_bytes(tokenizer, id));
  return s;
}

// How a sequence is to be generated: what DecodeBatch::add and the speculative loop take.
struct SequenceOptions {
  const GenerationConfig* cfg = nullptr;  // validated (GenerationConfig::validate); outlives the sequence
  std::vector<int> eos;                   // its stop tokens (checked_eos)
  std::size_t stream = 0;                 // its random stream: random_stream(cfg->seed, stream)
  bool scores = false;                    // record log-probs and cfg->top_logprobs alternatives
  TokenCallback on_token;                 // after each new id (may be empty)
};

// One sequence of greedy search or sampling (speculative decoding too).
struct Sequence {
  GenerationResult result;        // prompt + new ids, and their scores when options.scores
  SequenceOptions options;
  InferenceState* state;          // its KV cache
  std::mt19937_64 rng;            // random_stream(options.cfg->seed, options.stream)
  StopStringMatcher stop;         // primed with the prompt
  std::size_t max_length;         // prompt + new ids at most
  const Tokenizer* tokenizer;     // for stop strings (may be null)

  // A sequence continuing prompt; state's cache holds a prefix of it.
  Sequence(const ModelRef& m, const std::vector<int>& prompt, InferenceState* s, SequenceOptions opts)
      : options(std::move(opts)),
        state(s),
        rng(random_stream(options.cfg->seed, options.stream)),
        stop(stop_matcher(m.tokenizer, *options.cfg, prompt)),
        max_length(detail::max_length(m.config, *options.cfg, prompt.size())),
        tokenizer(m.tokenizer) {
    result.sequence = prompt;
    result.prompt_length = prompt.size();
  }

  // Greedy or sampled choice from the logits row of its last id (overwritten with the processed
  // scores): the token, and when options.scores its log-prob and alternatives.
  void choose(float* row, std::size_t V, int& token, float& logprob, std::vector<TokenLogprob>& top) {
    const GenerationConfig& cfg = *options.cfg;
    const std::vector<int>& ids = result.sequence;
    process(row, {ids.data(), ids.size(), result.prompt_length}, cfg, options.eos);
    if (cfg.do_sample) warp(row, V, cfg);
    token = cfg.do_sample ? sample_from(row, V, rng) : argmax(row, V);
    if (options.scores) logprob = token_logprob(row, V, token, static_cast<std::size_t>(cfg.top_logprobs), &top);
  }

  // Appends token t (with its log-prob and alternatives) to the result, then tells the callback;
  // returns true when the sequence is finished (eos, stop string, length, or the callback said stop).
  bool emit(int t, float logprob, std::vector<TokenLogprob>& top) {
    result.sequence.push_back(t);
    if (options.scores) {
      result.logprobs.push_back(logprob);
      result.sequence_score += logprob;
      if (options.cfg->top_logprobs > 0) result.top_logprobs.push_back(std::move(top));
    }
    const std::vector<int>& eos = options.eos;
    std::optional<FinishReason> end;
    if (std::find(eos.begin(), eos.end(), t) != eos.end())
      end = FinishReason::eos;
    else if (stop.active() && stop.push(token_bytes(tokenizer, t)))
      end = FinishReason::stop_string;
    else if (result.sequence.size() >= max_length)
      end = FinishReason::length;
    if (options.on_token && !options.on_token(t) && !end) end = FinishReason::stopped;
    if (end) result.finish_reason = *end;
    return end.has_value();
  }
};

}  // namespace tinyllm::detail
