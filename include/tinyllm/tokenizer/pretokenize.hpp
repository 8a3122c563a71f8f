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

// Classes of the ASCII bytes: letters, digits, the six White_Space controls and space; the rest "other".
struct AsciiClasses {
  CharClass of[128] = {};
  constexpr AsciiClasses() {
    for (int b = 0; b < 128; ++b) {
      const bool letter = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
      const bool digit = b >= '0' && b <= '9';
      const bool space = b == ' ' || (b >= 0x09 && b <= 0x0D);
      of[b] = letter ? cls_letter : digit ? cls_number : space ? cls_space : cls_other;
    }
  }
};
inline constexpr AsciiClasses ascii_classes{};

// The character at s[i] (i < n) and its class. ASCII and well-formed 2- and 3-byte characters (all
// of the BMP) are decoded inline; the rest, invalid bytes included, by decode_utf8.
inline ClassedChar classed_char(const std::uint8_t* s, std::size_t n, std::size_t i) {
  const std::uint8_t b0 = s[i];
  if (b0 < 0x80) return {1, ascii_classes.of[b0]};
  if (i + 2 < n && (b0 & 0xF0) == 0xE0 && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
    const std::uint32_t cp =
        (std::uint32_t(b0 & 0x0F) << 12) | (std::uint32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {3, char_class(cp)};
  } else if (i + 1 < n && b0 >= 0xC2 && b0 <= 0xDF && (s[i + 1] & 0xC0) == 0x80) {
    return {2, char_class((std::uint32_t(b0 & 0x1F) << 6) | (s[i + 1] & 0x3F))};
  }
  const Utf8Char c = decode_utf8(s, n, i);
  return {c.len, c.valid ? char_class(c.cp) : cls_other};
}

// End of the run of characters of class `cls` that starts at i.
inline std::size_t run_end(const std::uint8_t* s, std::size_t n, std::size_t i, CharClass cls) {
  while (i < n) {
    if (s[i] < 0x80) {  // the common case, without the multi-byte paths
      if (ascii_classes.of[s[i]] != cls) break;
      ++i;
      continue;
    }
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
