// GPT-2's pre-tokenization: splits text into the pieces that BPE works on, exactly as the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does with leftmost-first alternation over code points (a hand-written matcher, no regex engine).
// Invalid UTF-8 bytes count as class other, so they group with punctuation and symbols.
// Depends on tokenizer/unicode.hpp only.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t

#include "unicode.hpp"

namespace tinyllm::detail {

struct ClassedChar {
  std::uint32_t len;
  CharClass cls;
};

inline ClassedChar classed_char(const std::uint8_t* s, std::size_t n, std::size_t i) {
  const std::uint8_t b = s[i];
  if (b < 0x80) {
    // ASCII: letters, digits, the six White_Space controls and space; the rest is "other".
    const bool letter = (b | 0x20) >= 'a' && (b | 0x20) <= 'z';
    const bool digit = b >= '0' && b <= '9';
    const bool space = b == ' ' || (b >= 0x09 && b <= 0x0D);
    return {1, letter ? cls_letter : digit ? cls_number : space ? cls_space : cls_other};
  }
  const Utf8Char c = decode_utf8(s, n, i);
  return {c.len, c.valid ? char_class(c.cp) : cls_other};
}

// End of the run of characters of class `cls` that starts at i.
inline std::size_t run_end(const std::uint8_t* s, std::size_t n, std::size_t i, CharClass cls) {
  while (i < n) {
    const ClassedChar c = classed_char(s, n, i);
    if (c.cls != cls) break;
    i += c.len;
  }
  return i;
}

// End (exclusive) of the piece that starts at i < n.
inline std::size_t piece_end(const std::uint8_t* s, std::size_t n, std::size_t i) {
  // 's 't 're 've 'm 'll 'd (case-sensitive, as in the pattern)
  if (s[i] == '\'' && i + 1 < n) {
    const std::uint8_t a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
      const std::uint8_t b = s[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
  }
  ClassedChar c = classed_char(s, n, i);
  std::size_t start = i;
  if (s[i] == ' ' && i + 1 < n) {  // " ?" before a letter, number or other run
    const ClassedChar next = classed_char(s, n, i + 1);
    if (next.cls != cls_space) {
      c = next;
      start = i + 1;
    }
  }
  if (c.cls != cls_space) return run_end(s, n, start + c.len, c.cls);
  // \s+(?!\S) | \s+ : a run of white space, leaving its last character to a following non-space.
  std::size_t j = i, last = i;
  while (j < n) {
    const ClassedChar w = classed_char(s, n, j);
    if (w.cls != cls_space) break;
    last = j;
    j += w.len;
  }
  if (j == n || last == i) return j;
  return last;
}

// Calls fn(begin, end) for every piece of s[0..n), in order.
template <class Fn>
void pretokenize(const std::uint8_t* s, std::size_t n, Fn&& fn) {
  for (std::size_t i = 0; i < n;) {
    const std::size_t e = piece_end(s, n, i);
    fn(i, e);
    i = e;
  }
}

}  // namespace tinyllm::detail
