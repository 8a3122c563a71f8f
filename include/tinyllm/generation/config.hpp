// GenerationConfig: the knobs of generate(), with Hugging Face's names, defaults and meanings, and
// validate(), which rejects a bad value with an Error naming the field. Depends on error.hpp only.
#pragma once

#include <cmath>        // std::isfinite
#include <cstddef>      // std::size_t, std::nullptr_t
#include <cstdint>      // std::uint64_t, std::int64_t
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::declval
#include <vector>       // std::vector

#include "../error.hpp"

namespace tinyllm {

struct GPT2Config;
struct GPT2Weights;

// A draft model for speculative decoding (HF's assistant_model): another loaded GPT-2 with the same
// vocabulary, e.g. distilgpt2 drafting for gpt2-large. Any model type converts to it (its Backend
// does not matter: the target's runs both). It refers to the model, which must outlive the call.
class AssistantModel {
 public:
  AssistantModel() = default;
  AssistantModel(std::nullptr_t) {}  // NOLINT: cfg.assistant_model = nullptr switches it off
  template <class Model, class = decltype(std::declval<const Model&>().weights())>
  AssistantModel(const Model& model) : config_(&model.config()), weights_(&model.weights()) {}  // NOLINT: implicit
  explicit operator bool() const { return weights_ != nullptr; }
  const GPT2Config& config() const { return *config_; }
  const GPT2Weights& weights() const { return *weights_; }

 private:
  const GPT2Config* config_ = nullptr;
  const GPT2Weights* weights_ = nullptr;
};

// When beam search stops, as HF's early_stopping (True, False or "never"):
//   true     as soon as num_beams hypotheses are finished;
//   false    when the best running beam, scored at its current length, cannot beat the worst finished
//            one (HF's default heuristic);
//   "never"  only when no running beam can beat them at any length (canonical beam search).
class EarlyStopping {
 public:
  enum Value { heuristic, early, never };  // false, true, "never"

  EarlyStopping(bool early_stop = false) : value_(early_stop ? early : heuristic) {}  // NOLINT: implicit, as HF's bool
  EarlyStopping(const char* s) : EarlyStopping(std::string_view(s)) {}  // NOLINT: "never", "true", "false"
  EarlyStopping(std::string_view s) {                                   // NOLINT
    if (s == "never")
      value_ = never;
    else if (s == "true" || s == "True")
      value_ = early;
    else if (s == "false" || s == "False")
      value_ = heuristic;
    else
      detail::fail("GenerationConfig.early_stopping",
                   "is \"" + std::string(s) + "\", must be true, false or \"never\"");
  }
  Value value() const { return value_; }
  friend bool operator==(EarlyStopping a, EarlyStopping b) { return a.value_ == b.value_; }
  friend bool operator!=(EarlyStopping a, EarlyStopping b) { return a.value_ != b.value_; }

 private:
  Value value_ = heuristic;
};

struct GenerationConfig {
  // The first eight fields keep the order of the foundation release (brace initialisation).
  int max_length = 20;            // prompt + new tokens (HF's default); stops at the model's n_positions
  int max_new_tokens = -1;        // when >= 0 it wins over max_length
  bool do_sample = false;         // false: greedy (num_beams == 1) or beam search
  float temperature = 1.0f;       // sampling: logits / temperature
  int top_k = 50;                 // sampling: keep the k most likely tokens (0: all)
  float top_p = 1.0f;             // sampling: keep the smallest set with probability >= top_p (1: all)
  std::uint64_t seed = 0;         // sampling: same seed + config + model -> same tokens (README: seed contract)
  std::vector<int> eos_token_id;  // stop tokens; empty: the model's (generation_config.json / config.json)

  // Length
  int min_length = 0;                     // eos is forbidden while prompt + new tokens < min_length
  int min_new_tokens = 0;                 // eos is forbidden while new tokens < min_new_tokens
  std::vector<std::string> stop_strings;  // stop when the text ends with one of these (may span tokens)
  // Logits processors (every strategy), applied in this order
  float repetition_penalty = 1.0f;              // > 1 discourages tokens already in the sequence (CTRL's rule)
  int no_repeat_ngram_size = 0;                 // > 0: no n-gram of this size occurs twice
  std::vector<std::vector<int>> bad_words_ids;  // token sequences that must not be generated
  // Sampling warpers after temperature, top_k and top_p (HF's order: temperature, top_k, top_p, min_p, typical_p)
  float min_p = 0.0f;      // keep tokens with probability >= min_p * the top probability (0: off)
  float typical_p = 1.0f;  // locally typical sampling mass (1: off)
  // Beam search
  int num_beams = 1;                     // > 1: beam search
  float length_penalty = 1.0f;           // beam score = sum of log-probs / (new tokens ^ length_penalty)
  EarlyStopping early_stopping = false;  // true, false or "never" (see EarlyStopping)
  // Output
  int num_return_sequences = 1;  // sequences per prompt (sampling: independent; beams: the best ones)
  int top_logprobs = 0;          // generate_with_scores: the n most likely alternatives of each token
  // Speculative decoding (greedy search and sampling, num_beams 1): tokens proposed cheaply are checked
  // by one forward pass of the model; the output is what decoding without it gives (speculative.hpp).
  // > 0: propose up to this many ids that followed the last n-gram earlier (fewer, down to 4, after
  // rejections: HF's heuristic schedule; a new last id is proposed 3 times, as no match is)
  int prompt_lookup_num_tokens = 0;
  int max_matching_ngram_size = 2;   // prompt lookup: the longest n-gram matched (HF's default)
  AssistantModel assistant_model;    // a draft model with the same vocabulary (it must outlive the call)
  int num_assistant_tokens = 20;     // tokens the draft model proposes per pass, at most
  // "constant"; "heuristic": +2 after a pass that accepted every proposal, -1 otherwise (HF's rule);
  // "heuristic_transient": the same (HF resets it per call; here every call starts from num_assistant_tokens)
  std::string num_assistant_tokens_schedule = "constant";
  float assistant_confidence_threshold = 0.4f;  // the draft stops after a token it gives p < this (0: off)

  // Limits that validate() enforces, so that a request cannot ask for unbounded work or memory.
  // Sequences per prompt (num_beams x num_return_sequences): each holds a KV cache.
  static constexpr int max_sequences = 1024;
  // Stop strings, and bytes in each: every new token is compared against all of them.
  static constexpr std::size_t max_stop_strings = 256;
  static constexpr std::size_t max_stop_string_bytes = 1024;

  // Throws Error naming the field when a value is out of range or the combination is invalid.
  void validate() const;
};

inline void GenerationConfig::validate() const {
  auto bad = [](const char* field, const std::string& why) {
    detail::fail(std::string("GenerationConfig.") + field, why);
  };
  auto str = [](double v) { return std::to_string(v); };
  if (max_length < 0) bad("max_length", "is " + std::to_string(max_length) + ", must be >= 0");
  if (max_new_tokens < -1)
    bad("max_new_tokens", "is " + std::to_string(max_new_tokens) + ", must be >= 0 (or -1: use max_length)");
  if (min_length < 0) bad("min_length", "is " + std::to_string(min_length) + ", must be >= 0");
  if (min_new_tokens < 0) bad("min_new_tokens", "is " + std::to_string(min_new_tokens) + ", must be >= 0");
  if (do_sample && (!(temperature > 0.0f) || !std::isfinite(temperature)))
    bad("temperature", "is " + str(temperature) + ", must be > 0 when do_sample is true");
  if (top_k < 0) bad("top_k", "is " + std::to_string(top_k) + ", must be >= 0 (0: no top-k)");
  if (!(top_p > 0.0f && top_p <= 1.0f)) bad("top_p", "is " + str(top_p) + ", must be in (0, 1]");
  if (!(min_p >= 0.0f && min_p <= 1.0f)) bad("min_p", "is " + str(min_p) + ", must be in [0, 1] (0: off)");
  if (!(typical_p > 0.0f && typical_p <= 1.0f))
    bad("typical_p", "is " + str(typical_p) + ", must be in (0, 1] (1: off)");
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
    bad("repetition_penalty", "is " + str(repetition_penalty) + ", must be > 0 (1: off)");
  if (no_repeat_ngram_size < 0)
    bad("no_repeat_ngram_size", "is " + std::to_string(no_repeat_ngram_size) + ", must be >= 0 (0: off)");
  for (std::size_t i = 0; i < bad_words_ids.size(); ++i) {
    if (bad_words_ids[i].empty()) bad("bad_words_ids", "entry " + std::to_string(i) + " is an empty list");
    for (int id : bad_words_ids[i])
      if (id < 0)
        bad("bad_words_ids", "entry " + std::to_string(i) + " has the negative token id " + std::to_string(id));
  }
  for (int id : eos_token_id)
    if (id < 0) bad("eos_token_id", std::to_string(id) + " is not a token id");
  if (stop_strings.size() > max_stop_strings)
    bad("stop_strings", "has " + std::to_string(stop_strings.size()) + " strings, more than max_stop_strings (" +
                            std::to_string(max_stop_strings) + ")");
  for (const std::string& s : stop_strings) {
    if (s.empty()) bad("stop_strings", "has an empty string");
    if (s.size() > max_stop_string_bytes)
      bad("stop_strings", "has a string of " + std::to_string(s.size()) + " bytes, more than max_stop_string_bytes (" +
                              std::to_string(max_stop_string_bytes) + ")");
  }
  if (num_beams < 1) bad("num_beams", "is " + std::to_string(num_beams) + ", must be >= 1");
  if (!std::isfinite(length_penalty)) bad("length_penalty", "is " + str(length_penalty) + ", must be a finite number");
  if (num_return_sequences < 1)
    bad("num_return_sequences", "is " + std::to_string(num_return_sequences) + ", must be >= 1");
  if (std::int64_t(num_beams) * num_return_sequences > max_sequences)
    bad(num_beams > 1 ? "num_beams" : "num_return_sequences",
        "num_beams x num_return_sequences is " + std::to_string(std::int64_t(num_beams) * num_return_sequences) +
            ", more than max_sequences (" + std::to_string(max_sequences) + ")");
  if (!do_sample && num_beams == 1 && num_return_sequences > 1)
    bad("num_return_sequences", "is " + std::to_string(num_return_sequences) +
                                    ", but greedy search returns one sequence (set do_sample or num_beams)");
  if (num_beams > 1 && num_return_sequences > num_beams)
    bad("num_return_sequences",
        "is " + std::to_string(num_return_sequences) + ", more than num_beams (" + std::to_string(num_beams) + ")");
  if (top_logprobs < 0) bad("top_logprobs", "is " + std::to_string(top_logprobs) + ", must be >= 0");
  if (prompt_lookup_num_tokens < 0)
    bad("prompt_lookup_num_tokens", "is " + std::to_string(prompt_lookup_num_tokens) + ", must be >= 0 (0: off)");
  if (max_matching_ngram_size < 1)
    bad("max_matching_ngram_size", "is " + std::to_string(max_matching_ngram_size) + ", must be >= 1");
  if (num_assistant_tokens < 1)
    bad("num_assistant_tokens", "is " + std::to_string(num_assistant_tokens) + ", must be >= 1");
  if (num_assistant_tokens_schedule != "constant" && num_assistant_tokens_schedule != "heuristic" &&
      num_assistant_tokens_schedule != "heuristic_transient")
    bad("num_assistant_tokens_schedule", "is \"" + num_assistant_tokens_schedule +
                                             "\", must be \"constant\", \"heuristic\" or \"heuristic_transient\"");
  if (!(assistant_confidence_threshold >= 0.0f && assistant_confidence_threshold <= 1.0f))
    bad("assistant_confidence_threshold", "is " + str(assistant_confidence_threshold) + ", must be in [0, 1] (0: off)");
  if (assistant_model && prompt_lookup_num_tokens > 0)
    bad("prompt_lookup_num_tokens", "is " + std::to_string(prompt_lookup_num_tokens) +
                                        " and assistant_model is set: choose one way of proposing tokens");
  if ((assistant_model || prompt_lookup_num_tokens > 0) && num_beams > 1)
    bad("num_beams", "is " + std::to_string(num_beams) +
                         ": speculative decoding (assistant_model, prompt_lookup_num_tokens) needs num_beams = 1");
}

}  // namespace tinyllm
