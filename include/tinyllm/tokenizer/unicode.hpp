// UTF-8 decoding and the character classes of GPT-2's pre-tokenization pattern (\p{L}, \p{N}, \s),
// from the generated tables. Any bytes are accepted: a byte that does not start a well-formed UTF-8
// sequence is one "invalid" character of class other (as U+FFFD would be).
// Depends on tokenizer/unicode_tables.hpp only.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t, std::uint32_t
#include <string>   // std::string

#include "unicode_tables.hpp"

namespace tinyllm::detail {

enum CharClass : std::uint8_t { cls_other = 0, cls_letter = 1, cls_number = 2, cls_space = 3 };

inline CharClass char_class(std::uint32_t cp) {
  namespace t = unicode_tables;
  if (cp >= 0x110000) return cls_other;
  const unsigned block = t::stage1[cp >> t::block_shift];
  const unsigned low = cp & 255u;
  return static_cast<CharClass>((t::stage2[block * 64 + low / 4] >> ((low & 3u) * 2)) & 3u);
}

struct Utf8Char {
  std::uint32_t cp;   // code point, or 0xFFFD for an invalid byte
  std::uint32_t len;  // bytes consumed: 1..4
  bool valid;
};

// Decodes the character at s[i] (i < n). Well-formed UTF-8 only: no overlongs, surrogates or values
// past U+10FFFF; anything else consumes exactly one byte as an invalid character.
inline Utf8Char decode_utf8(const std::uint8_t* s, std::size_t n, std::size_t i) {
  const std::uint8_t b0 = s[i];
  if (b0 < 0x80) return {b0, 1, true};
  const std::size_t left = n - i;
  auto cont = [&](std::size_t k) { return k < left && (s[i + k] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1)) return {(std::uint32_t(b0 & 0x1F) << 6) | (s[i + 1] & 0x3F), 2, true};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (cont(1) && cont(2)) {
      const std::uint32_t cp = (std::uint32_t(b0 & 0x0F) << 12) | (std::uint32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3, true};
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (cont(1) && cont(2) && cont(3)) {
      const std::uint32_t cp = (std::uint32_t(b0 & 0x07) << 18) | (std::uint32_t(s[i + 1] & 0x3F) << 12) |
                               (std::uint32_t(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4, true};
    }
  }
  return {0xFFFD, 1, false};
}

// Length of the longest prefix of s[i..n) that could still begin a well-formed character (1..3 for
// an incomplete one), used to hold back a character that the next token may complete.
inline std::size_t utf8_valid_prefix(const std::uint8_t* s, std::size_t n, std::size_t i) {
  const std::uint8_t b0 = s[i];
  std::size_t need;
  std::uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) need = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) need = 3, lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
  else if (b0 >= 0xF0 && b0 <= 0xF4) need = 4, lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  std::size_t k = 1;
  for (; k < need && i + k < n; ++k) {
    const std::uint8_t b = s[i + k];
    if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) break;
  }
  return k;
}

// Appends s[0..n) to out with every ill-formed sequence replaced by U+FFFD, one per maximal subpart
// (what Python's bytes.decode("utf-8", errors="replace") does, as Hugging Face's decode does).
inline void append_utf8_replacing(const std::uint8_t* s, std::size_t n, std::string& out) {
  std::size_t i = 0;
  while (i < n) {
    const Utf8Char c = decode_utf8(s, n, i);
    if (c.valid) {
      out.append(reinterpret_cast<const char*>(s + i), c.len);
      i += c.len;
    } else {
      out += "\xEF\xBF\xBD";
      const std::size_t k = utf8_valid_prefix(s, n, i);
      i += k ? k : 1;
    }
  }
}

}  // namespace tinyllm::detail
