// What the explanation methods share: the one token a target text must be, and the checks of a
// target id and a position. Depends on gpt2.hpp.
#pragma once

#include <cstddef>      // std::size_t
#include <string>       // std::string, std::to_string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include "../gpt2.hpp"

namespace tinyllm {

namespace detail {

// A token's text for a message: quoted, with control characters escaped.
inline std::string quoted_token(std::string_view text) {
  std::string q = "\"";
  for (char ch : text) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      q += '\\';
      q += ch;
    } else if (ch == '\n') {
      q += "\\n";
    } else if (u < 0x20) {
      static const char hex[] = "0123456789abcdef";
      q += "\\x";
      q += hex[u >> 4];
      q += hex[u & 15];
    } else {
      q += ch;
    }
  }
  return q + "\"";
}

inline void check_target(const GPT2Config& c, int target, const std::string& who) {
  if (target < 0 || target >= c.vocab_size)
    fail(who, "target " + std::to_string(target) + " is not a token id of this model [0, " +
                  std::to_string(c.vocab_size) + ")");
}

// position -1 means the last of T; anything else must be in [0, T).
inline std::size_t resolve_position(int position, std::size_t T, const std::string& who) {
  if (position == -1) return T - 1;
  if (position < 0 || static_cast<std::size_t>(position) >= T)
    fail(who, "position " + std::to_string(position) + " is not in [0, " + std::to_string(T) + ") (-1: the last)");
  return static_cast<std::size_t>(position);
}

}  // namespace detail

// The id of `text` when it encodes to exactly one token (tokenizer.encode: "<|endoftext|>" counts as
// one). Otherwise an Error naming `argument` and listing the tokens, e.g.
//   --target: "the Union" is 2 tokens, "the" (1169) + " Union" (4479), not one
inline int single_token(const Tokenizer& tokenizer, std::string_view text, const std::string& argument = "target") {
  const std::vector<int> ids = tokenizer.encode(text);
  if (ids.size() == 1) return ids[0];
  if (ids.empty()) detail::fail(argument, "is empty: a target is one token (e.g. \" the\")");
  std::string parts;
  for (std::size_t i = 0; i < ids.size(); ++i)
    parts += (i ? " + " : "") + detail::quoted_token(tokenizer.decode_text({ids[i]})) + " (" +
             std::to_string(ids[i]) + ")";
  detail::fail(argument, detail::quoted_token(text) + " is " + std::to_string(ids.size()) + " tokens, " + parts +
                             ", not one");
}

}  // namespace tinyllm
