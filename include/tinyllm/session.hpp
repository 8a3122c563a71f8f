// Session: a conversation with a model that keeps its KV cache between calls, so text appended turn
// by turn is processed once. The model stays immutable: a Session holds a copy of the model handle
// (sharing its weights) and its own cache; many sessions, on many threads, may share one model.
// A Session itself is not thread-safe. Depends on gpt2.hpp.
//
//   tinyllm::Session chat(model);
//   chat.append("Q: What is the capital of France?\nA:");
//   GenerationConfig cfg; cfg.max_new_tokens = 20; cfg.stop_strings = {"\n"};
//   std::string answer = chat.generate_text(cfg);       // the cache now holds the question and answer
//   chat.append("\nQ: And of Italy?\nA:");                // only these new tokens are processed
#pragma once

#include <cstddef>      // std::size_t
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include "gpt2.hpp"

namespace tinyllm {

template <class Backend>
class BasicSession {
 public:
  explicit BasicSession(const BasicGPT2<Backend>& model) : model_(model), state_(model.config()) {}

  // Appends text (tokenized on its own, like tokenizer.encode) or ids, and runs them through the model
  // now. Throws Error when the session would exceed the model's n_positions.
  void append(std::string_view text) { append_ids(model_.tokenizer().encode(text)); }
  void append_ids(const std::vector<int>& ids);

  // Continues the session with cfg (greedy or sampling; num_return_sequences 1) and appends what it
  // generates. max_length counts every token of the session, as HF counts the prompt: prefer
  // max_new_tokens. An empty session starts from bos_token_id. Returns the new ids / new text.
  std::vector<int> generate(const GenerationConfig& cfg = {}) {
    return generate(cfg, [](int) {});
  }
  template <class OnToken>
  std::vector<int> generate(const GenerationConfig& cfg, OnToken&& on_token);  // streaming, as BasicGPT2's
  std::string generate_text(const GenerationConfig& cfg = {}) {
    return generate_text(cfg, [](std::string_view) {});
  }
  template <class OnText>
  std::string generate_text(const GenerationConfig& cfg, OnText&& on_text);  // streaming UTF-8 pieces
  // With scores; beam search is allowed here (the session continues with the best sequence).
  GenerationResult generate_with_scores(const GenerationConfig& cfg = {});

  const std::vector<int>& ids() const { return ids_; }  // every token of the session
  std::string text() const { return model_.tokenizer().decode_text(ids_, /*skip_special_tokens=*/true); }
  std::size_t size() const { return ids_.size(); }
  std::size_t cached() const { return static_cast<std::size_t>(state_.cache.length()); }  // tokens in the KV cache
  // Keeps the first n tokens (rolls the cache back; nothing is recomputed).
  void truncate(std::size_t n);
  void reset() { truncate(0); }
  const BasicGPT2<Backend>& model() const { return model_; }

 private:
  GenerationResult run(const GenerationConfig& cfg, bool scores, const detail::TokenCallback& on_token);

  BasicGPT2<Backend> model_;  // a handle: copies share the weights
  std::vector<int> ids_;
  detail::InferenceState state_;  // cache holds ids_[0, cached()); the rest runs before the next token
};

using Session = BasicSession<DefaultBackend>;

// ---------------------------------------------------------------------------------------------------

template <class Backend>
void BasicSession<Backend>::append_ids(const std::vector<int>& ids) {
  if (ids.empty()) return;
  std::vector<int> all = ids_;
  all.insert(all.end(), ids.begin(), ids.end());
  model_.check_ids(all, "Session.append");
  ids_ = std::move(all);
  // Run everything but the last token now; the last runs with the first generated step.
  const std::size_t done = cached(), T = ids_.size() - 1 - done;
  if (T > 0) detail::forward_hidden<Backend>(model_.config(), model_.weights(), state_, ids_.data() + done, T);
}

template <class Backend>
void BasicSession<Backend>::truncate(std::size_t n) {
  if (n >= ids_.size()) return;
  ids_.resize(n);
  if (cached() > n) state_.cache.set_length(static_cast<int>(n));
}

template <class Backend>
GenerationResult BasicSession<Backend>::run(const GenerationConfig& cfg, bool scores,
                                            const detail::TokenCallback& on_token) {
  detail::check_generation(cfg, "a session continues with one sequence",
                           on_token ? "use generate_with_scores for beam search" : nullptr);
  if (ids_.empty()) ids_.push_back(detail::start_token(model_.config(), "Session.generate", "the session"));
  if (cached() == ids_.size()) state_.cache.set_length(static_cast<int>(ids_.size() - 1));  // re-run the last token
  std::vector<detail::PromptState> prompts;
  prompts.push_back({ids_, std::move(state_)});
  GenerationResult r;
  try {
    r = std::move(model_.run(prompts, cfg, scores, on_token)[0]);
  } catch (...) {
    state_ = std::move(prompts[0].state);
    throw;
  }
  state_ = std::move(prompts[0].state);
  ids_ = r.sequence;
  return r;
}

template <class Backend>
template <class OnToken>
std::vector<int> BasicSession<Backend>::generate(const GenerationConfig& cfg, OnToken&& on_token) {
  return run(cfg, false, [&](int id) { return detail::keep_going(on_token, id); }).new_ids();
}

template <class Backend>
template <class OnText>
std::string BasicSession<Backend>::generate_text(const GenerationConfig& cfg, OnText&& on_text) {
  const std::vector<int> ids =
      detail::stream_text(model_.tokenizer(), [&](auto& on_id) { return generate(cfg, on_id); }, on_text);
  return model_.tokenizer().decode_text(ids, /*skip_special_tokens=*/true);
}

template <class Backend>
GenerationResult BasicSession<Backend>::generate_with_scores(const GenerationConfig& cfg) {
  return run(cfg, true, {});
}

}  // namespace tinyllm
