// A choice's text and log-probs as the client sees them (choice.hpp).
#include "choice.hpp"

#include <algorithm>  // std::min, std::max

namespace tinyllm::server {

ChoiceText::ChoiceText(const Tokenizer& tok, const std::vector<std::string>& stop, bool logprobs, std::size_t offset)
    : tok_(&tok), stop_(stop), logprobs_(logprobs), decoder_(tok, /*skip_special_tokens=*/true), offset_(offset) {}

void ChoiceText::echo(const Prompt& prompt, const std::vector<TokenOut>& prompt_logprobs) {
  // Offsets of the prompt's tokens: characters of the prompt's text before each (special tokens kept,
  // as in the echoed text of a prompt of ids).
  std::size_t at = offset_ - code_points(prompt.text);
  if (logprobs_) {
    TokenStreamDecoder d(*tok_, /*skip_special_tokens=*/false);
    for (std::size_t i = 0; i < prompt.ids.size(); ++i) {
      std::optional<float> lp;
      std::vector<TokenLogprob> top;
      if (i > 0 && i - 1 < prompt_logprobs.size()) {
        lp = prompt_logprobs[i - 1].logprob;
        top = prompt_logprobs[i - 1].top;
      }
      entries_.push_back({prompt.ids[i], lp, std::move(top), at, text_.size() + prompt.text.size()});
      at += code_points(d.push(prompt.ids[i]));
    }
  }
  text_ += prompt.text;
  start_ = text_.size();
}

void ChoiceText::push(const TokenOut& t) {
  const std::string piece = decoder_.push(t.id);
  if (logprobs_) entries_.push_back({t.id, t.logprob, t.top, offset_, text_.size() + piece.size()});
  offset_ += code_points(piece);
  text_ += piece;
}

namespace {
// The earliest position where one of the stop sequences occurs in s at or after `from`, or npos.
std::size_t first_stop(const std::string& s, const std::vector<std::string>& stop, std::size_t from) {
  std::size_t best = std::string::npos;
  for (const std::string& x : stop) best = std::min(best, s.find(x, from));
  return best;
}
}  // namespace

void ChoiceText::finish(bool stop_sequence) {
  if (finished_) return;
  finished_ = true;
  const std::string rest = decoder_.flush();
  offset_ += code_points(rest);
  text_ += rest;
  if (stop_sequence) {
    const std::size_t cut = first_stop(text_, stop_, std::max(sent_, start_));
    if (cut != std::string::npos) text_.resize(cut);
  }
}

std::size_t ChoiceText::sendable() const {
  if (finished_) return text_.size();
  // Stop sequences count in the new text only (from start_); the text sent so far never ends with
  // the beginning of one, so an occurrence starts after it.
  const std::size_t from = std::max(sent_, start_);
  const std::size_t end = std::min(text_.size(), first_stop(text_, stop_, from));
  // Hold back the longest tail that begins a stop sequence: the next token may complete it.
  std::size_t hold = 0;
  for (const std::string& x : stop_)
    for (std::size_t k = std::min(x.size() - 1, end - from); k > hold; --k)
      if (text_.compare(end - k, k, x, 0, k) == 0) {
        hold = k;
        break;
      }
  return end - hold;
}

ChoiceText::Piece ChoiceText::take() {
  Piece p;
  const std::size_t end = sendable();
  p.text = text_.substr(sent_, end - sent_);
  sent_ = end;
  std::size_t done = 0;
  for (; done < entries_.size() && (finished_ || entries_[done].end <= sent_); ++done) {
    const Entry& e = entries_[done];
    p.logprobs.add(*tok_, e.id, e.logprob, e.top, e.offset);
  }
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(done));
  return p;
}

}  // namespace tinyllm::server
