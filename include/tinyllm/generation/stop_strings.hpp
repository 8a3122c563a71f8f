// Stop strings, with the semantics of Hugging Face's StopStringCriteria: generation stops when a stop
// string occurs in the text and overlaps the last token, so a stop string may span several tokens
// and the last token may reach past it (["st", "opera"] stops at "stop"; ["stop", "at"] does not stop
// at "at"). The text is the prompt and the generated tokens as bytes; matching is on bytes, so a stop
// string can split a UTF-8 character across tokens. Depends on nothing else in tinyllm.
#pragma once

#include <algorithm>    // std::max
#include <cstddef>      // std::size_t
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

namespace tinyllm::detail {

class StopStringMatcher {
 public:
  StopStringMatcher() = default;
  explicit StopStringMatcher(const std::vector<std::string>* stops) : stops_(stops) {
    for (const std::string& s : *stops) keep_ = std::max(keep_, s.size());
  }
  bool active() const { return stops_ && !stops_->empty(); }

  // Text before generation (the prompt); never matched on its own.
  void prime(std::string_view bytes) { append(bytes); }

  // Appends one token's bytes; true when a stop string ends inside them.
  bool push(std::string_view token) {
    if (!active()) return false;
    append(token);
    const std::size_t n = tail_.size(), first_end = n - token.size() + 1;  // ends in (n - |token|, n]
    for (const std::string& s : *stops_)
      for (std::size_t end = std::max(first_end, s.size()); end <= n; ++end)
        if (tail_.compare(end - s.size(), s.size(), s) == 0) return true;
    return false;
  }

 private:
  // Keeps the new bytes plus the keep_ - 1 before them: no stop string reaches further back.
  void append(std::string_view bytes) {
    if (!active()) return;
    const std::size_t before = std::min(tail_.size(), keep_ > 0 ? keep_ - 1 : 0);
    tail_.erase(0, tail_.size() - before);
    tail_ += bytes;
  }

  const std::vector<std::string>* stops_ = nullptr;
  std::size_t keep_ = 0;  // longest stop string
  std::string tail_;
};

}  // namespace tinyllm::detail
