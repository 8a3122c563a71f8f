// Tokenizer: GPT-2's byte-level BPE, read from vocab.json + merges.txt (or tokenizer.json), and
// TokenStreamDecoder for streaming text out of generated ids. Same ids as tiktoken's "gpt2" and
// Hugging Face's GPT2Tokenizer on any text; any bytes round-trip.
// Depends on error.hpp, io/, tokenizer/.
#pragma once

#include <algorithm>    // std::min, std::max, std::sort
#include <atomic>       // std::atomic
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t, std::uint32_t
#include <cstdio>       // std::snprintf
#include <exception>    // std::exception_ptr
#include <memory>       // std::shared_ptr
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <thread>       // std::thread
#include <utility>      // std::pair
#include <vector>       // std::vector

#include "error.hpp"
#include "io/mapped_file.hpp"  // file_exists, is_directory
#include "tokenizer/bpe.hpp"
#include "tokenizer/files.hpp"
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
  std::vector<std::string> bytes;   // id -> raw bytes ("" for an unused id); an added token's text
  std::vector<bool> present;        // id is in the vocabulary
  std::vector<bool> special;        // <|endoftext|> and other special added tokens
  std::vector<bool> whole;          // a piece with exactly this token's bytes encodes to this token
  int byte_token[256];              // id of each single byte
  MergeTable merges;
  TokenIndex index;                 // raw bytes -> id, ordinary (byte-level) tokens
  std::vector<std::pair<std::string, int>> added;  // text -> id, split out by encode(); longest first
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

  // Text -> ids. The literal text of a special token (e.g. "<|endoftext|>" -> 50256) becomes its id,
  // as Hugging Face's GPT2Tokenizer does. Text from untrusted users can therefore inject control
  // tokens (end a document, fake a turn): use encode_ordinary for such text.
  // Never throws on invalid UTF-8: a byte that starts no well-formed character is a character of its
  // own, grouped with punctuation (README: "Any bytes").
  std::vector<int> encode(std::string_view text) const { return encode_impl(text, true); }
  // Text -> ids with no special-token handling: "<|endoftext|>" is seven ordinary tokens, as in
  // tiktoken's encode_ordinary.
  std::vector<int> encode_ordinary(std::string_view text) const { return encode_impl(text, false); }
  // Appends the ids of `text` (ordinary) to `out`, reusing its capacity.
  void encode_ordinary_into(std::string_view text, std::vector<int>& out) const;
  // Many texts on `num_threads` threads (0: one per core): result[i] is encode(texts[i]), or
  // encode_ordinary(texts[i]) for the _ordinary form.
  std::vector<std::vector<int>> encode_batch(const std::vector<std::string>& texts, int num_threads = 0) const {
    return encode_batch_impl(texts, num_threads, true);
  }
  std::vector<std::vector<int>> encode_ordinary_batch(const std::vector<std::string>& texts,
                                                      int num_threads = 0) const {
    return encode_batch_impl(texts, num_threads, false);
  }

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
  // Id of a token given as raw bytes or as an added token's text; -1 if there is none.
  int token_to_id(std::string_view token) const;

 private:
  bool valid(int id) const {
    const auto i = static_cast<std::size_t>(id);
    return d_ && id >= 0 && i < d_->bytes.size() && d_->present[i];
  }
  void check_id(int id, const char* who) const {
    if (!valid(id))
      detail::fail(who, "token id " + std::to_string(id) + " is not in the vocabulary (" +
                            std::to_string(vocab_size()) + " ids)");
  }
  const detail::TokenizerData& data() const {
    if (!d_) detail::fail("Tokenizer", "not loaded (use Tokenizer::from_pretrained)");
    return *d_;
  }
  std::vector<int> encode_impl(std::string_view text, bool added_tokens) const;
  std::vector<std::vector<int>> encode_batch_impl(const std::vector<std::string>& texts, int num_threads,
                                                  bool added_tokens) const;
  static void encode_ordinary_with(const detail::TokenizerData& d, std::string_view text, std::vector<int>& out,
                                   detail::BpeScratch& scratch);
  static void encode_piece(const detail::TokenizerData& d, const std::uint8_t* s, std::size_t n, std::vector<int>& out,
                           detail::BpeScratch& scratch);
  static Tokenizer build(const detail::TokenizerFiles& files);

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
  std::string pending_;  // at most 3 bytes: the start of a character
};

// ---------------------------------------------------------------------------------------------------
// Encoding

inline void Tokenizer::encode_piece(const detail::TokenizerData& d, const std::uint8_t* s, std::size_t n,
                                    std::vector<int>& out, detail::BpeScratch& scratch) {
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

inline void Tokenizer::encode_ordinary_with(const detail::TokenizerData& d, std::string_view text,
                                            std::vector<int>& out, detail::BpeScratch& scratch) {
  const auto* s = reinterpret_cast<const std::uint8_t*>(text.data());
  detail::pretokenize(s, text.size(),
                      [&](std::size_t b, std::size_t e) { encode_piece(d, s + b, e - b, out, scratch); });
}

inline void Tokenizer::encode_ordinary_into(std::string_view text, std::vector<int>& out) const {
  detail::BpeScratch scratch;
  encode_ordinary_with(data(), text, out, scratch);
}

inline std::vector<int> Tokenizer::encode_impl(std::string_view text, bool added_tokens) const {
  const detail::TokenizerData& d = data();
  std::vector<int> out;
  out.reserve(text.size() / 4 + 4);
  detail::BpeScratch scratch;
  if (!added_tokens || d.added.empty()) {
    encode_ordinary_with(d, text, out, scratch);
    return out;
  }
  // next[k]: where added token k next occurs at or after pos (found again only once pos passes it).
  std::vector<std::size_t> next(d.added.size());
  for (std::size_t k = 0; k < d.added.size(); ++k) next[k] = text.find(d.added[k].first);
  for (std::size_t pos = 0;;) {
    // The earliest added token (the longest of those starting there: the list is longest first).
    std::size_t best = std::string_view::npos, best_len = 0;
    int best_id = -1;
    for (std::size_t k = 0; k < d.added.size(); ++k) {
      const auto& [str, id] = d.added[k];
      if (next[k] != std::string_view::npos && next[k] < pos) next[k] = text.find(str, pos);
      if (next[k] < best) {
        best = next[k];
        best_id = id;
        best_len = str.size();
      }
    }
    encode_ordinary_with(d, text.substr(pos, best == std::string_view::npos ? std::string_view::npos : best - pos),
                         out, scratch);
    if (best == std::string_view::npos) break;
    out.push_back(best_id);
    pos = best + best_len;
  }
  return out;
}

inline std::vector<std::vector<int>> Tokenizer::encode_batch_impl(const std::vector<std::string>& texts,
                                                                  int num_threads, bool added_tokens) const {
  std::vector<std::vector<int>> out(texts.size());
  std::size_t workers = num_threads > 0 ? static_cast<std::size_t>(num_threads) : std::thread::hardware_concurrency();
  workers = std::max<std::size_t>(1, std::min(workers, texts.size()));
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors(workers);
  auto work = [&](std::size_t w) {
    try {
      for (std::size_t i; (i = next.fetch_add(1)) < texts.size();) out[i] = encode_impl(texts[i], added_tokens);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t w = 1; w < workers; ++w) threads.emplace_back(work, w);
  work(0);
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Decoding

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
  for (const auto& [str, id] : d_->added)
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

inline Tokenizer Tokenizer::build(const detail::TokenizerFiles& f) {
  auto d = std::make_shared<detail::TokenizerData>();
  d->source = f.source;
  const auto& alphabet = detail::byte_alphabet();
  int max_id = -1;
  for (const auto& [tok, id] : f.vocab) max_id = std::max(max_id, id);
  for (const auto& t : f.added) max_id = std::max(max_id, t.id);
  // Ids index arrays: a vocabulary is dense (0..n-1) in practice; refuse ids far past the count.
  const std::size_t listed = f.vocab.size() + f.added.size();
  if (static_cast<std::size_t>(max_id) >= 2 * listed + 1024)
    detail::fail(f.source, "token id " + std::to_string(max_id) + " is far past the " + std::to_string(listed) +
                               " tokens listed (ids must be dense)");
  const std::size_t n = static_cast<std::size_t>(max_id + 1);
  d->bytes.assign(n, std::string());
  d->present.assign(n, false);
  d->special.assign(n, false);
  std::vector<bool> ordinary(n, false);
  std::string raw;
  for (const auto& [tok, id] : f.vocab) {
    const auto i = static_cast<std::size_t>(id);
    if (d->present[i] && d->bytes[i] != tok)
      detail::fail(f.source, "id " + std::to_string(id) + " is given to two tokens");
    d->present[i] = true;
    if (alphabet.to_bytes(tok, raw)) {
      d->bytes[i] = raw;
      ordinary[i] = true;
    } else {
      d->bytes[i] = tok;  // not byte-level text: an added token, kept as its UTF-8
    }
  }
  // Added tokens are matched as literal text by encode(); vocab.json + merges.txt has only GPT-2's.
  std::vector<detail::AddedToken> added = f.added;
  if (added.empty())
    for (const auto& [tok, id] : f.vocab)
      if (tok == "<|endoftext|>") added.push_back({tok, id, true});
  for (const auto& t : added) {
    const auto i = static_cast<std::size_t>(t.id);
    d->present[i] = true;
    d->special[i] = t.special;
    ordinary[i] = false;
    d->bytes[i] = t.content;
    d->added.emplace_back(t.content, t.id);
  }
  std::sort(d->added.begin(), d->added.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  d->index.build(d->bytes, ordinary);
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    d->byte_token[b] = d->index.find(std::string_view(&c, 1));
    if (d->byte_token[b] < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      detail::fail(f.source, std::string("no token for byte ") + hex +
                                 " (a byte-level BPE vocabulary has one for each of the 256 bytes)");
    }
  }
  // Training adds one token per merge, so a vocabulary has more tokens than merges (GPT-2: 50,257 and
  // 50,000); more merges than tokens is a corrupt file, and this bounds the merge table.
  if (f.merges.size() > listed)
    detail::fail(f.source, std::to_string(f.merges.size()) + " merges, more than the " + std::to_string(listed) +
                               " tokens of the vocabulary");
  d->merges.reserve(f.merges.size());
  std::string ra, rb;
  for (std::size_t r = 0; r < f.merges.size(); ++r) {
    const auto& [a, b] = f.merges[r];
    const std::string where = f.source + ": merge " + std::to_string(r + 1) + " '" + a + " " + b + "'";
    if (!alphabet.to_bytes(a, ra) || !alphabet.to_bytes(b, rb) || ra.empty() || rb.empty())
      detail::fail(where, "has a character outside GPT-2's byte alphabet");
    const int left = d->index.find(ra), right = d->index.find(rb), merged = d->index.find(ra + rb);
    if (left < 0 || right < 0 || merged < 0)
      detail::fail(where, "uses or makes a token that is not in the vocabulary");
    d->merges.insert(left, right, static_cast<int>(r), merged, static_cast<std::uint8_t>(ra.back()),
                     static_cast<std::uint8_t>(rb.front()));
  }
  // A piece that is itself a token skips BPE when BPE would give that token anyway (true of every
  // GPT-2 token), or always when tokenizer.json says ignore_merges.
  d->whole.assign(n, false);
  detail::BpeScratch scratch;
  std::vector<int> ids;
  for (std::size_t id = 0; id < n; ++id) {
    const std::string& b = d->bytes[id];
    if (!ordinary[id] || b.empty() || d->index.find(b) != static_cast<int>(id)) continue;  // or a second spelling
    ids.clear();
    if (!f.ignore_merges)
      detail::bpe_encode(d->merges, d->byte_token, reinterpret_cast<const std::uint8_t*>(b.data()), b.size(), scratch,
                         ids);
    d->whole[id] = f.ignore_merges || (ids.size() == 1 && ids[0] == static_cast<int>(id));
  }
  Tokenizer t;
  t.d_ = std::move(d);
  return t;
}

inline Tokenizer Tokenizer::from_vocab_and_merges(const std::string& vocab_path, const std::string& merges_path) {
  return build(detail::read_vocab_and_merges(vocab_path, merges_path));
}

inline Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  return build(detail::read_tokenizer_json(path));
}

inline Tokenizer Tokenizer::from_pretrained(const std::string& dir) {
  if (!detail::is_directory(dir)) detail::fail(dir, "no such folder");
  const std::string vocab = dir + "/vocab.json", merges = dir + "/merges.txt", tj = dir + "/tokenizer.json";
  if (detail::file_exists(vocab) || detail::file_exists(merges) || !detail::file_exists(tj))
    return from_vocab_and_merges(vocab, merges);
  return from_tokenizer_json(tj);
}

}  // namespace tinyllm
