// Tokenizer: GPT-2's byte-level BPE, read from vocab.json + merges.txt (or tokenizer.json), and
// TokenStreamDecoder for streaming text out of generated ids. Same ids as Hugging Face's
// GPT2Tokenizer and tiktoken's "gpt2" on any text.
// Depends on error.hpp, io/, tokenizer/.
#pragma once

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t, std::uint32_t
#include <cstdio>       // std::snprintf
#include <memory>       // std::shared_ptr
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair
#include <vector>       // std::vector

#include "error.hpp"
#include "io/json.hpp"
#include "io/mapped_file.hpp"  // read_text_file
#include "tokenizer/bpe.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/unicode.hpp"

namespace tinyllm {

namespace detail {

// GPT-2's bytes_to_unicode(): bytes '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF stand for themselves,
// the other 68 bytes for U+0100 onwards in byte order. byte_of[cp] inverts it (-1: not a byte char).
struct ByteAlphabet {
  std::uint32_t cp_of[256];
  int byte_of[512];
  ByteAlphabet() {
    for (int& b : byte_of) b = -1;
    std::uint32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp_of[b] = printable ? static_cast<std::uint32_t>(b) : extra++;
      byte_of[cp_of[b]] = b;
    }
  }
  // The raw bytes that a vocab.json token string stands for; false if it has a non-byte character.
  bool to_bytes(const std::string& token, std::string& out) const {
    out.clear();
    const auto* s = reinterpret_cast<const std::uint8_t*>(token.data());
    for (std::size_t i = 0; i < token.size();) {
      const Utf8Char c = decode_utf8(s, token.size(), i);
      if (!c.valid || c.cp >= 512 || byte_of[c.cp] < 0) return false;
      out += static_cast<char>(byte_of[c.cp]);
      i += c.len;
    }
    return true;
  }
};

inline const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a;
  return a;
}

struct TokenizerData {
  std::vector<std::string> bytes;   // id -> raw bytes ("" for an unused id)
  std::vector<bool> present;        // id is in the vocabulary
  std::vector<bool> special;        // <|endoftext|> and added special tokens
  std::vector<bool> whole;          // BPE of the token's own bytes gives back exactly this token
  int byte_token[256];              // id of each single byte
  MergeTable merges;
  TokenIndex index;                 // raw bytes -> id, ordinary tokens
  std::vector<std::pair<std::string, int>> specials;  // text -> id, longest first
  std::string source;               // file(s) named in messages
};

}  // namespace detail

class Tokenizer {
 public:
  Tokenizer() = default;

  // vocab.json + merges.txt when the folder has them, else tokenizer.json.
  static Tokenizer from_pretrained(const std::string& dir);
  static Tokenizer from_vocab_and_merges(const std::string& vocab_json_path, const std::string& merges_txt_path);
  static Tokenizer from_tokenizer_json(const std::string& tokenizer_json_path);

  // Text -> ids. The literal text of a special token (e.g. "<|endoftext|>") becomes its id, as
  // Hugging Face's GPT2Tokenizer does. Text from untrusted users can therefore inject control tokens:
  // use encode_ordinary for such text. Never throws on invalid UTF-8 (see README: invalid bytes).
  std::vector<int> encode(std::string_view text) const { return encode_impl(text, true); }
  // Text -> ids with no special-token handling, like tiktoken's encode_ordinary.
  std::vector<int> encode_ordinary(std::string_view text) const { return encode_impl(text, false); }
  // Appends the ids of `text` (ordinary) to `out`, reusing its capacity.
  void encode_ordinary_into(std::string_view text, std::vector<int>& out) const;

  // Ids -> the exact bytes they stand for: decode(encode(x)) == x for every byte string x.
  // Throws Error for an id outside the vocabulary.
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens = false) const;
  // Ids -> valid UTF-8: ill-formed byte sequences become U+FFFD, as Hugging Face's decode does.
  std::string decode_text(const std::vector<int>& ids, bool skip_special_tokens = false) const;

  int vocab_size() const { return d_ ? static_cast<int>(d_->bytes.size()) : 0; }  // highest id + 1
  bool is_special(int id) const { return valid(id) && d_->special[static_cast<std::size_t>(id)]; }
  // Raw bytes of one token.
  std::string_view token_bytes(int id) const {
    check_id(id, "token_bytes");
    return d_->bytes[static_cast<std::size_t>(id)];
  }
  // Id of a token given as raw bytes or as a special token's text; -1 if there is none.
  int token_to_id(std::string_view token) const;

 private:
  bool valid(int id) const {
    return d_ && id >= 0 && static_cast<std::size_t>(id) < d_->bytes.size() && d_->present[static_cast<std::size_t>(id)];
  }
  void check_id(int id, const char* who) const {
    if (!valid(id))
      detail::fail(who, "token id " + std::to_string(id) + " is not in the vocabulary (" +
                            std::to_string(vocab_size()) + " ids)");
  }
  std::vector<int> encode_impl(std::string_view text, bool specials) const;
  void encode_piece(const std::uint8_t* s, std::size_t n, std::vector<int>& out, detail::BpeScratch& scratch) const;
  static Tokenizer build(std::vector<std::pair<std::string, int>> vocab,
                         const std::vector<std::pair<std::string, std::string>>& merges,
                         const std::vector<std::pair<std::string, int>>& added_special, const std::string& source);

  std::shared_ptr<const detail::TokenizerData> d_;  // immutable: copies share it, threads may too
};

// Turns ids into text one at a time and only ever returns complete UTF-8: the bytes of a character
// split across tokens are held until it is complete; ill-formed bytes come out as U+FFFD. The
// concatenation of all push() results and flush() equals tokenizer.decode_text(ids, skip_special).
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = true)
      : tok_(&tokenizer), skip_(skip_special_tokens) {}
  std::string push(int id);
  std::string flush();  // the held bytes, if any (as U+FFFD)

 private:
  const Tokenizer* tok_;
  bool skip_;
  std::string pending_;
};

// ---------------------------------------------------------------------------------------------------

inline void Tokenizer::encode_piece(const std::uint8_t* s, std::size_t n, std::vector<int>& out,
                                    detail::BpeScratch& scratch) const {
  const detail::TokenizerData& d = *d_;
  // The whole piece, when it is a token that BPE would give back (most English words).
  if (n == 1) {
    out.push_back(d.byte_token[s[0]]);
    return;
  }
  const int id = d.index.find(s, n);
  if (id >= 0 && d.whole[static_cast<std::size_t>(id)]) {
    out.push_back(id);
    return;
  }
  // Else each part between byte boundaries that no merge crosses (CJK: mostly one character each).
  for (std::size_t b = 0; b < n;) {
    std::size_t e = b + 1;
    while (e < n && d.merges.may_join(s[e - 1], s[e])) ++e;
    const int part = e - b == 1 ? d.byte_token[s[b]] : e - b == n ? -1 : d.index.find(s + b, e - b);
    if (part >= 0 && d.whole[static_cast<std::size_t>(part)]) {
      out.push_back(part);
    } else {
      if (e - b >= (std::size_t(1) << 32)) detail::fail("encode", "a single piece of 4 GiB or more");
      detail::bpe_encode(d.merges, d.byte_token, s + b, e - b, scratch, out);
    }
    b = e;
  }
}

inline void Tokenizer::encode_ordinary_into(std::string_view text, std::vector<int>& out) const {
  if (!d_) detail::fail("Tokenizer", "not loaded (use Tokenizer::from_pretrained)");
  const auto* s = reinterpret_cast<const std::uint8_t*>(text.data());
  detail::BpeScratch scratch;
  detail::pretokenize(s, text.size(), [&](std::size_t b, std::size_t e) { encode_piece(s + b, e - b, out, scratch); });
}

inline std::vector<int> Tokenizer::encode_impl(std::string_view text, bool specials) const {
  if (!d_) detail::fail("Tokenizer", "not loaded (use Tokenizer::from_pretrained)");
  std::vector<int> out;
  out.reserve(text.size() / 4 + 4);
  if (!specials || d_->specials.empty()) {
    encode_ordinary_into(text, out);
    return out;
  }
  std::size_t pos = 0;
  while (pos <= text.size()) {
    // The earliest special token at or after pos (the longest one when several start there).
    std::size_t best = std::string_view::npos;
    int best_id = -1;
    std::size_t best_len = 0;
    for (const auto& [str, id] : d_->specials) {
      const std::size_t at = text.find(str, pos);
      if (at != std::string_view::npos && (at < best || (at == best && str.size() > best_len))) {
        best = at;
        best_id = id;
        best_len = str.size();
      }
    }
    encode_ordinary_into(text.substr(pos, best == std::string_view::npos ? std::string_view::npos : best - pos), out);
    if (best == std::string_view::npos) break;
    out.push_back(best_id);
    pos = best + best_len;
  }
  return out;
}

inline std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  std::string out;
  for (int id : ids) {
    check_id(id, "decode");
    if (skip_special_tokens && d_->special[static_cast<std::size_t>(id)]) continue;
    out += d_->bytes[static_cast<std::size_t>(id)];
  }
  return out;
}

inline std::string Tokenizer::decode_text(const std::vector<int>& ids, bool skip_special_tokens) const {
  const std::string raw = decode(ids, skip_special_tokens);
  std::string out;
  out.reserve(raw.size());
  detail::append_utf8_replacing(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size(), out);
  return out;
}

inline int Tokenizer::token_to_id(std::string_view token) const {
  if (!d_) return -1;
  for (const auto& [str, id] : d_->specials)
    if (str == token) return id;
  return d_->index.find(token);
}

inline std::string TokenStreamDecoder::push(int id) {
  if (skip_ && tok_->is_special(id)) return {};
  pending_ += tok_->token_bytes(id);
  // Emit everything except a trailing character that the next token may still complete.
  const auto* s = reinterpret_cast<const std::uint8_t*>(pending_.data());
  const std::size_t n = pending_.size();
  std::size_t keep = n;
  for (std::size_t back = 1; back <= std::min<std::size_t>(3, n); ++back) {
    const std::size_t i = n - back;
    if ((s[i] & 0xC0) != 0x80) {  // last lead byte
      if (detail::utf8_valid_prefix(s, n, i) == back && !detail::decode_utf8(s, n, i).valid) keep = i;
      break;
    }
  }
  std::string out;
  detail::append_utf8_replacing(s, keep, out);
  pending_.erase(0, keep);
  return out;
}

inline std::string TokenStreamDecoder::flush() {
  std::string out;
  detail::append_utf8_replacing(reinterpret_cast<const std::uint8_t*>(pending_.data()), pending_.size(), out);
  pending_.clear();
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Loading

inline Tokenizer Tokenizer::build(std::vector<std::pair<std::string, int>> vocab,
                                  const std::vector<std::pair<std::string, std::string>>& merges,
                                  const std::vector<std::pair<std::string, int>>& added_special,
                                  const std::string& source) {
  auto d = std::make_shared<detail::TokenizerData>();
  d->source = source;
  const auto& alphabet = detail::byte_alphabet();
  int max_id = -1;
  for (const auto& [tok, id] : vocab) max_id = std::max(max_id, id);
  for (const auto& [tok, id] : added_special) max_id = std::max(max_id, id);
  // Ids index arrays: a vocabulary is dense (0..n-1) in practice; refuse ids far past the count.
  const std::size_t listed = vocab.size() + added_special.size();
  if (static_cast<std::size_t>(max_id) >= 2 * listed + 1024)
    detail::fail(source, "token id " + std::to_string(max_id) + " is far past the " + std::to_string(listed) +
                             " tokens listed (ids must be dense)");
  const std::size_t n = static_cast<std::size_t>(max_id + 1);
  d->bytes.assign(n, std::string());
  d->present.assign(n, false);
  d->special.assign(n, false);
  std::vector<bool> ordinary(n, false);
  std::string raw;
  for (const auto& [tok, id] : vocab) {
    const auto i = static_cast<std::size_t>(id);
    if (d->present[i] && d->bytes[i] != tok)
      detail::fail(source, "id " + std::to_string(id) + " is given to two tokens");
    d->present[i] = true;
    if (alphabet.to_bytes(tok, raw)) {
      d->bytes[i] = raw;
      ordinary[i] = true;
    } else {
      d->bytes[i] = tok;  // not byte-level text: an added token, kept as its UTF-8
    }
  }
  auto mark_special = [&](const std::string& text, int id) {
    const auto i = static_cast<std::size_t>(id);
    d->present[i] = true;
    d->special[i] = true;
    ordinary[i] = false;
    d->bytes[i] = text;
    d->specials.emplace_back(text, id);
  };
  for (const auto& [text, id] : added_special) mark_special(text, id);
  if (added_special.empty())
    for (const auto& [tok, id] : vocab)
      if (tok == "<|endoftext|>") mark_special(tok, id);
  std::sort(d->specials.begin(), d->specials.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  d->index.build(d->bytes, ordinary);
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    d->byte_token[b] = d->index.find(std::string_view(&c, 1));
    if (d->byte_token[b] < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      detail::fail(source, std::string("no token for byte ") + hex +
                               " (a byte-level BPE vocabulary has one for each of the 256 bytes)");
    }
  }
  d->merges.reserve(merges.size());
  std::string ra, rb;
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const std::string where = source + ": merge " + std::to_string(r + 1) + " '" + a + " " + b + "'";
    if (!alphabet.to_bytes(a, ra) || !alphabet.to_bytes(b, rb)) detail::fail(where, "has a character outside GPT-2's byte alphabet");
    const int left = d->index.find(ra), right = d->index.find(rb), merged = d->index.find(ra + rb);
    if (left < 0 || right < 0 || merged < 0)
      detail::fail(where, "uses or makes a token that is not in the vocabulary");
    d->merges.insert(left, right, static_cast<int>(r), merged, static_cast<std::uint8_t>(ra.back()),
                     static_cast<std::uint8_t>(rb.front()));
  }
  // A piece that is itself a token can skip the merge loop only if the loop would give that token.
  d->whole.assign(n, false);
  detail::BpeScratch scratch;
  std::vector<int> ids;
  for (std::size_t id = 0; id < n; ++id) {
    const std::string& b = d->bytes[id];
    if (!ordinary[id] || b.empty() || d->index.find(b) != static_cast<int>(id)) continue;  // or a duplicate spelling
    ids.clear();
    detail::bpe_encode(d->merges, d->byte_token, reinterpret_cast<const std::uint8_t*>(b.data()), b.size(), scratch, ids);
    d->whole[id] = ids.size() == 1 && ids[0] == static_cast<int>(id);
  }
  Tokenizer t;
  t.d_ = std::move(d);
  return t;
}

namespace detail {

inline std::vector<std::pair<std::string, int>> read_vocab_object(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "vocabulary must be a JSON object of token -> id");
  if (j.empty()) fail(where, "vocabulary is empty");
  std::vector<std::pair<std::string, int>> vocab;
  vocab.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() >= (1 << 24))
      fail(where, "token '" + it.key() + "' has id " + it->dump() + ", expected an integer in [0, 16777216)");
    vocab.emplace_back(it.key(), static_cast<int>(it->get<long long>()));
  }
  return vocab;
}

inline std::vector<std::pair<std::string, std::string>> parse_merges_txt(const std::string& text,
                                                                         const std::string& file) {
  std::vector<std::pair<std::string, std::string>> merges;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t e = text.find('\n', pos);
    if (e == std::string::npos) e = text.size();
    std::string line = text.substr(pos, e - pos);
    pos = e + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const std::size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
      fail(file + ":" + std::to_string(line_no), "expected two tokens separated by one space, got '" +
                                                     line.substr(0, 80) + "'");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return merges;
}

}  // namespace detail

inline Tokenizer Tokenizer::from_vocab_and_merges(const std::string& vocab_path, const std::string& merges_path) {
  const detail::json j = detail::parse_json(detail::read_text_file(vocab_path), vocab_path);
  auto vocab = detail::read_vocab_object(j, vocab_path);
  const auto merges = detail::parse_merges_txt(detail::read_text_file(merges_path), merges_path);
  return build(std::move(vocab), merges, {}, vocab_path + " + " + merges_path);
}

inline Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  const detail::json j = detail::parse_json(detail::read_text_file(path), path);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) detail::fail(path, "missing 'model' object");
  const detail::json& m = j["model"];
  const std::string type = detail::json_string(m, "type", path, "BPE");
  if (type != "BPE") detail::fail(path, "model.type is '" + type + "', expected BPE (GPT-2's tokenizer)");
  if (!m.contains("vocab")) detail::fail(path, "missing model.vocab");
  auto vocab = detail::read_vocab_object(m["vocab"], path + ": model.vocab");
  std::vector<std::pair<std::string, std::string>> merges;
  if (m.contains("merges")) {
    if (!m["merges"].is_array()) detail::fail(path, "model.merges must be an array");
    for (const auto& e : m["merges"]) {
      if (e.is_string()) {  // "a b"
        const std::string s = e.get<std::string>();
        const std::size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == s.size())
          detail::fail(path, "model.merges entry '" + s + "' is not two tokens separated by a space");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        detail::fail(path, "model.merges entry " + e.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }
  std::vector<std::pair<std::string, int>> added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& t : j["added_tokens"])
      if (t.is_object() && t.value("special", false) && t.contains("content") && t["content"].is_string() &&
          t.contains("id") && t["id"].is_number_integer() && t["id"].get<long long>() >= 0 &&
          t["id"].get<long long>() < (1 << 24))
        added.emplace_back(t["content"].get<std::string>(), t["id"].get<int>());
  return build(std::move(vocab), merges, added, path);
}

inline Tokenizer Tokenizer::from_pretrained(const std::string& dir) {
  if (!detail::is_directory(dir)) detail::fail(dir, "no such folder");
  const std::string vocab = dir + "/vocab.json", merges = dir + "/merges.txt", tj = dir + "/tokenizer.json";
  if (detail::file_exists(vocab) || detail::file_exists(merges) || !detail::file_exists(tj))
    return from_vocab_and_merges(vocab, merges);
  return from_tokenizer_json(tj);
}

}  // namespace tinyllm
