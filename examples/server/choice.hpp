// One choice of a completion as the client sees it, built from the engine's tokens a piece at a time
// (streaming) or all at once: complete UTF-8 only, special tokens skipped, cut before a stop sequence
// (the text never contains one, as OpenAI's does not), and, while streaming, nothing sent that a stop
// sequence might still claim. The log-prob entries go out with the text of their tokens.
// Depends on api.hpp and the library's tokenizer.
#pragma once

#include <cstddef>   // std::size_t
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include "api.hpp"

namespace tinyllm::server {

// A token the engine produced, with its log-prob and alternatives when they were asked for.
struct TokenOut {
  int id = 0;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
};

class ChoiceText {
 public:
  // offset: the text offset (in characters) of the first new token, i.e. the prompt's length.
  ChoiceText(const Tokenizer& tok, const std::vector<std::string>& stop, bool logprobs, std::size_t offset);

  // echo: the prompt's text goes first, with its tokens' log-prob entries when logprobs are on
  // (prompt_logprobs[i] is token i + 1's; the first token has none).
  void echo(const Prompt& prompt, const std::vector<TokenOut>& prompt_logprobs);
  void push(const TokenOut& t);
  // No more tokens. `stop_sequence`: the engine stopped at a stop sequence, cut the text before it.
  void finish(bool stop_sequence);

  struct Piece {
    std::string text;
    LogprobsJson logprobs;
  };
  // What is ready to send since the last call.
  Piece take();

 private:
  struct Entry {
    int id;
    std::optional<float> logprob;
    std::vector<TokenLogprob> top;
    std::size_t offset;  // characters before the token
    std::size_t end;     // bytes of text_ that hold its text
  };
  std::size_t sendable() const;  // bytes of text_ that no stop sequence can claim any more

  const Tokenizer* tok_;
  std::vector<std::string> stop_;
  bool logprobs_;
  TokenStreamDecoder decoder_;
  std::string text_;           // the text so far
  std::size_t start_ = 0;      // bytes of text_ that are the echoed prompt
  std::size_t sent_ = 0;       // bytes of text_ already taken
  std::size_t offset_;         // characters of the prompt + text_
  std::vector<Entry> entries_;  // log-prob entries not yet taken
  bool finished_ = false;
};

}  // namespace tinyllm::server
