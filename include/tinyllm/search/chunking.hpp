// Splitting a document into chunks of tokens for an index: windows of `size` tokens, each starting
// size - overlap tokens after the last, the last window ending with the text. Each chunk keeps its
// token ids and the bytes of the text they cover (token boundaries widened to whole UTF-8
// characters, since a token may hold part of one). Depends on tokenizer.hpp and error.hpp.
#pragma once

#include <cstddef>      // std::size_t
#include <string>       // std::to_string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include "../error.hpp"
#include "../tokenizer.hpp"

namespace tinyllm::detail {

struct TextChunk {
  std::vector<int> ids;
  std::size_t begin = 0, end = 0;  // bytes [begin, end) of the text
};

inline bool utf8_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// The chunks of `text` (tokenized as Tokenizer::encode does); none for a text without tokens.
inline std::vector<TextChunk> chunk_text(const Tokenizer& tokenizer, std::string_view text, std::size_t size,
                                         std::size_t overlap) {
  if (size == 0 || overlap >= size)
    fail("chunking", "chunk of " + std::to_string(size) + " tokens with an overlap of " + std::to_string(overlap) +
                         ": the overlap must be smaller than the chunk (and the chunk at least 1 token)");
  const std::vector<int> ids = tokenizer.encode(text);
  std::vector<std::size_t> at(ids.size() + 1, 0);  // at[t]: the byte where token t starts
  for (std::size_t t = 0; t < ids.size(); ++t) at[t + 1] = at[t] + tokenizer.token_bytes(ids[t]).size();
  if (at.back() != text.size())  // byte-level BPE covers every byte exactly once
    fail("chunking", "the tokens of a text cover " + std::to_string(at.back()) + " of its " + std::to_string(text.size()) +
                         " bytes");
  std::vector<TextChunk> chunks;
  const std::size_t step = size - overlap;
  for (std::size_t t0 = 0; t0 < ids.size(); t0 += step) {
    const std::size_t t1 = t0 + size < ids.size() ? t0 + size : ids.size();
    TextChunk c;
    c.ids.assign(ids.begin() + static_cast<long>(t0), ids.begin() + static_cast<long>(t1));
    c.begin = at[t0];
    c.end = at[t1];
    while (c.begin > 0 && utf8_continuation(static_cast<unsigned char>(text[c.begin]))) --c.begin;
    while (c.end < text.size() && utf8_continuation(static_cast<unsigned char>(text[c.end]))) ++c.end;
    chunks.push_back(std::move(c));
    if (t1 == ids.size()) break;
  }
  return chunks;
}

}  // namespace tinyllm::detail
