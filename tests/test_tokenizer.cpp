// The tokenizer against tiktoken's "gpt2" on the parity corpus (tests/fixtures/tokenizer: texts from
// tests/reference/make_tokenizer_corpus.py, ids from make_token_fixtures.js), decode_text against
// Python's errors="replace", round trips on any bytes, the BPE algorithms against each other, added
// tokens and tokenizer.json settings, batch encoding, and the streaming decoder.
#include <doctest/doctest.h>

#include <cstdlib>     // std::getenv
#include <functional>  // std::function

#include <tinyllm/tokenizer.hpp>

#include "test_helpers.hpp"

namespace {

const tinyllm::Tokenizer& gpt2_tokenizer() {
  static const tinyllm::Tokenizer t = tinyllm::Tokenizer::from_pretrained(test::demo_model());
  return t;
}

// One parity file: the texts of <name>.txt (separated by "\n\u241E\n") and, from <name>.ids, the
// ids tiktoken gave each (u16 little-endian, 0xFFFF after each text). See make_token_fixtures.js.
struct ParityFile {
  std::string name;
  std::vector<std::string> texts;
  std::vector<std::vector<int>> ids;
};

// tests/fixtures/tokenizer, or the folder in TINYLLM_TOKENIZER_PARITY_DIR (fresh texts).
std::vector<ParityFile> parity_files() {
  const char* env = std::getenv("TINYLLM_TOKENIZER_PARITY_DIR");
  const std::string dir = env && *env ? env : test::fixture("tokenizer");
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".ids") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  std::vector<ParityFile> out;
  for (const auto& name : names) {
    ParityFile f{name, {}, {}};
    const std::string text = test::read_file(dir + "/" + name + ".txt");
    const std::string sep = "\n\xE2\x90\x9E\n";  // "\n\u241E\n"
    for (std::size_t pos = 0;;) {
      const std::size_t e = text.find(sep, pos);
      f.texts.push_back(text.substr(pos, e == std::string::npos ? std::string::npos : e - pos));
      if (e == std::string::npos) break;
      pos = e + sep.size();
    }
    const std::string raw = test::read_file(dir + "/" + name + ".ids");
    f.ids.emplace_back();
    for (std::size_t i = 0; i + 1 < raw.size(); i += 2) {
      const int v = static_cast<unsigned char>(raw[i]) | static_cast<unsigned char>(raw[i + 1]) << 8;
      if (v == 0xFFFF) f.ids.emplace_back();
      else f.ids.back().push_back(v);
    }
    f.ids.pop_back();  // after the last terminator
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

TEST_CASE("tokenizer: ids equal tiktoken gpt2 on every parity text, and decode gives the text back") {
  const auto& tok = gpt2_tokenizer();
  const auto files = parity_files();
  REQUIRE(files.size() >= 1);
  std::size_t all_texts = 0, all_bytes = 0;
  for (const auto& f : files) {
    INFO(f.name);
    REQUIRE(f.texts.size() == f.ids.size());
    std::size_t mismatches = 0;
    for (std::size_t t = 0; t < f.texts.size(); ++t) {
      const auto got = tok.encode_ordinary(f.texts[t]);
      if (got != f.ids[t] && ++mismatches <= 3) {
        INFO("text " << t << ": " << nlohmann::json(f.texts[t]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).substr(0, 300));
        CHECK(got == f.ids[t]);
      }
      if (tok.decode(got) != f.texts[t]) {
        INFO("text " << t);
        CHECK(tok.decode(got) == f.texts[t]);
      }
      all_bytes += f.texts[t].size();
    }
    all_texts += f.texts.size();
    INFO(mismatches << " of " << f.texts.size() << " texts differ");
    CHECK(mismatches == 0);
  }
  MESSAGE(files.size() << " parity files, " << all_texts << " texts, " << all_bytes << " bytes");
}

TEST_CASE("tokenizer: known ids") {
  const auto& tok = gpt2_tokenizer();
  CHECK(tok.encode("Hello world") == std::vector<int>{15496, 995});
  CHECK(tok.encode(" the") == std::vector<int>{262});
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.token_to_id("<|endoftext|>") == 50256);
  CHECK(tok.is_special(50256));
  CHECK(!tok.is_special(262));
  CHECK(tok.token_bytes(262) == " the");
  CHECK(tok.encode("").empty());
}

TEST_CASE("tokenizer: <|endoftext|> is special in encode, ordinary text in encode_ordinary") {
  const auto& tok = gpt2_tokenizer();
  const auto a = tok.encode("Hi<|endoftext|>there");
  CHECK(std::count(a.begin(), a.end(), 50256) == 1);
  CHECK(a == std::vector<int>{17250, 50256, 8117});
  const auto b = tok.encode_ordinary("Hi<|endoftext|>there");
  CHECK(std::count(b.begin(), b.end(), 50256) == 0);
  CHECK(tok.decode(b) == "Hi<|endoftext|>there");
  CHECK(tok.decode(a, /*skip_special_tokens=*/true) == "Hithere");
  CHECK(tok.decode(a) == "Hi<|endoftext|>there");
  CHECK(tok.encode("<|endoftext|><|endoftext|>") == std::vector<int>{50256, 50256});
}

TEST_CASE("tokenizer: any bytes round-trip, invalid UTF-8 included") {
  const auto& tok = gpt2_tokenizer();
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 300; ++iter) {
    std::string s(rng() % 200, '\0');
    for (auto& ch : s) {
      // mostly ASCII, some high bytes that are often invalid UTF-8
      const auto r = rng() % 10;
      ch = static_cast<char>(r < 6 ? 32 + rng() % 95 : r < 7 ? " \t\n"[rng() % 3] : rng() % 256);
    }
    CHECK(tok.decode(tok.encode_ordinary(s)) == s);
  }
  for (const std::string& s : {std::string("\xff\xfe\x80"), std::string("caf\xc3"), std::string("\xe2\x82"),
                              std::string("a\xed\xa0\x80z"), std::string("\xf4\x90\x80\x80"), std::string(1, '\0'),
                              std::string("\xc0\xaf over\xf0\x9f\x98")}) {
    CHECK(tok.decode(tok.encode_ordinary(s)) == s);
  }
}

// Each byte that does not start a well-formed UTF-8 character is one character of class "other" (see
// README): pre-tokenization splits such text exactly where it splits the same text with each of those
// bytes replaced by U+0001, a one-byte "other" character whose splits tiktoken checks above.
TEST_CASE("tokenizer: invalid UTF-8 spliced into the parity texts round-trips and groups as documented") {
  const auto& tok = gpt2_tokenizer();
  const std::vector<std::string> invalid = {"\x80", "\xbf\xbf", "\xc0\xaf", "\xc1\xbf", "\xc3", "\xe2\x82", "\xe0\x80\xaf",
                                            "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x9f\x98", "\xf4\x90\x80\x80",
                                            "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe", "\xff", "'\xff", " \xff"};
  auto pieces = [](const std::string& s) {
    std::vector<std::size_t> ends;
    tinyllm::detail::pretokenize(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(),
                                 [&](std::size_t, std::size_t e) { ends.push_back(e); });
    return ends;
  };
  std::mt19937_64 rng(7);
  std::size_t checked = 0;
  for (const auto& f : parity_files()) {
    for (std::size_t t = 0; t < f.texts.size(); t += 5) {
      std::string s = f.texts[t];
      for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) {
        const std::size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
        if (rng() % 4 == 0 && at < s.size()) s.erase(at, 1);  // may cut a character in two
        else s.insert(at, invalid[rng() % invalid.size()]);
      }
      const auto ids = tok.encode_ordinary(s);
      CHECK(tok.decode(ids) == s);
      CHECK(tok.decode(tok.encode(s)) == s);
      std::string substituted = s;
      const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
      for (std::size_t i = 0; i < s.size();) {
        const auto c = tinyllm::detail::decode_utf8(p, s.size(), i);
        if (!c.valid) substituted[i] = '\x01';
        i += c.len;
      }
      CHECK(pieces(s) == pieces(substituted));
      ++checked;
    }
  }
  CHECK(checked > 500);
}

TEST_CASE("BPE: the tree (long pieces) and the scan (short pieces) merge identically") {
  // Both algorithms on the same pieces, whatever their length; the parity corpus checks each one
  // against tiktoken where the encoder picks it (long.txt: pieces of up to 4000 bytes).
  const auto& tok = gpt2_tokenizer();
  const std::string dir = test::demo_model();
  const auto merges = tinyllm::detail::parse_merges_txt(test::read_file(dir + "/merges.txt"), "merges.txt");
  tinyllm::detail::MergeTable table;
  table.reserve(merges.size());
  std::string a, b;
  bool parsed = true;
  for (std::size_t r = 0; r < merges.size(); ++r) {
    parsed = parsed && tinyllm::detail::byte_alphabet().to_bytes(merges[r].first, a) &&
             tinyllm::detail::byte_alphabet().to_bytes(merges[r].second, b) && !a.empty() && !b.empty();
    if (!parsed) break;
    table.insert(tok.token_to_id(a), tok.token_to_id(b), static_cast<int>(r), tok.token_to_id(a + b),
                 static_cast<std::uint8_t>(a.back()), static_cast<std::uint8_t>(b.front()));
  }
  REQUIRE(parsed);
  using Algorithm = void (*)(const tinyllm::detail::MergeTable&, tinyllm::detail::BpeScratch&, std::size_t, std::vector<int>&);
  auto run = [&](Algorithm algorithm, const std::string& piece) {
    tinyllm::detail::BpeScratch scratch;
    scratch.sym.resize(piece.size());
    scratch.pair.resize(piece.size());
    for (std::size_t i = 0; i < piece.size(); ++i) scratch.sym[i] = tok.token_to_id(piece.substr(i, 1));
    std::vector<int> out;
    algorithm(table, scratch, piece.size(), out);
    return out;
  };
  std::mt19937_64 rng(5);
  for (int iter = 0; iter < 400; ++iter) {
    std::string piece = iter % 4 == 0 ? " " : "";
    const std::size_t want = 2 + rng() % 300;
    while (piece.size() < want) {
      if (iter % 3 == 0) piece += std::string(1 + rng() % 40, static_cast<char>('a' + rng() % 3));  // runs
      else piece += tok.token_bytes(static_cast<int>(rng() % 50256));                            // any tokens
    }
    const auto scanned = run(tinyllm::detail::bpe_scan, piece);
    CHECK(run(tinyllm::detail::bpe_tree, piece) == scanned);
    CHECK(tok.decode(scanned) == piece);
  }
  const std::string run_of_a(100000, 'a');  // one piece: the tree, O(n log n)
  CHECK(tok.decode(tok.encode_ordinary(run_of_a)) == run_of_a);

  // The encoder's shortcuts (a piece that is a token; cutting a piece where no merge can cross) give
  // what plain BPE of the whole piece gives.
  std::size_t pieces = 0, differ = 0;
  for (const auto& f : parity_files()) {
    for (std::size_t t = 0; t < f.texts.size(); t += 3) {
      const std::string& text = f.texts[t];
      tinyllm::detail::pretokenize(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(),
                                   [&](std::size_t begin, std::size_t end) {
                                     const std::string piece = text.substr(begin, end - begin);
                                     if (piece.size() < 2 || piece.size() > 2000) return;
                                     const auto plain = run(tinyllm::detail::bpe_tree, piece);
                                     ++pieces;
                                     differ += tok.encode_ordinary(piece) != plain;
                                   });
    }
  }
  CHECK(pieces > 50000);
  CHECK(differ == 0);
}

TEST_CASE("tokenizer: vocab.json + merges.txt and tokenizer.json load the same tokenizer") {
  const auto a = tinyllm::Tokenizer::from_pretrained(test::fixture("f32-hub"));         // vocab + merges
  const auto b = tinyllm::Tokenizer::from_pretrained(test::fixture("bf16-untied-tokjson"));  // tokenizer.json
  for (const std::string& s : std::vector<std::string>{"The quick brown fox", "It's the state of the union; we've 1234!", "whale sea ship"}) {
    CHECK(a.encode(s) == b.encode(s));
    CHECK(a.decode(a.encode(s)) == s);
  }
  CHECK(a.encode("<|endoftext|>") == b.encode("<|endoftext|>"));
  CHECK(b.is_special(b.token_to_id("<|endoftext|>")));
}

namespace {

// A tokenizer.json with the 256 byte tokens, "ab" (merge "a b"), "abc" (no merge makes it) and the
// added tokens "<|endoftext|>" (special) and "[X]" (not special); `edit` changes it before writing.
std::string tiny_tokenizer_json(const test::TempDir& dir, const std::function<void(nlohmann::json&)>& edit = {}) {
  const auto& alphabet = tinyllm::detail::byte_alphabet();
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    const std::uint32_t cp = alphabet.cp_of[b];
    if (cp < 0x80) s += static_cast<char>(cp);
    else s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
    vocab[s] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  nlohmann::json j = {
      {"added_tokens", {{{"id", 258}, {"content", "<|endoftext|>"}, {"special", true}},
                        {{"id", 259}, {"content", "[X]"}, {"special", false}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", {"a b"}}}}};
  if (edit) edit(j);
  const std::string path = dir / "tokenizer.json";
  test::write_file(path, j.dump());
  return path;
}

std::string load_error(const std::string& path) {
  try {
    tinyllm::Tokenizer::from_tokenizer_json(path);
  } catch (const tinyllm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("tokenizer.json: added tokens, ignore_merges, and settings that would change the ids") {
  const test::TempDir dir;
  const auto tok = tinyllm::Tokenizer::from_tokenizer_json(tiny_tokenizer_json(dir));
  // Hugging Face's BPE reaches "abc" by merges only: there is no merge "ab c", so it stays two tokens.
  CHECK(tok.encode("abc") == std::vector<int>{256, 'c'});
  // Added tokens are split out by encode (special or not), never by encode_ordinary.
  CHECK(tok.encode("a[X]b<|endoftext|>") == std::vector<int>{'a', 259, 'b', 258});
  CHECK(tok.encode("[X][X]<|endoftext|><|endoftext|>[X") == std::vector<int>{259, 259, 258, 258, '[', 'X'});
  CHECK(tok.encode_ordinary("[X]").size() == 3);
  CHECK(tok.is_special(258));
  CHECK(!tok.is_special(259));
  CHECK(tok.decode({'a', 259, 258}, /*skip_special_tokens=*/true) == "a[X]");
  // ignore_merges (Hugging Face's option, tiktoken's rule): a piece that is a token is that token.
  const auto direct = tinyllm::Tokenizer::from_tokenizer_json(
      tiny_tokenizer_json(dir, [](nlohmann::json& j) { j["model"]["ignore_merges"] = true; }));
  CHECK(direct.encode("abc") == std::vector<int>{257});
  CHECK(direct.encode("abcd") == std::vector<int>{256, 'c', 'd'});

  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> refused = {
      {[](nlohmann::json& j) { j["normalizer"] = {{"type", "NFC"}}; }, "normalizer"},
      {[](nlohmann::json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }, "add_prefix_space"},
      {[](nlohmann::json& j) { j["pre_tokenizer"].erase("add_prefix_space"); }, "add_prefix_space"},
      {[](nlohmann::json& j) { j["pre_tokenizer"]["use_regex"] = false; }, "use_regex"},
      {[](nlohmann::json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, "pre_tokenizer"},
      {[](nlohmann::json& j) { j["model"]["dropout"] = 0.1; }, "model.dropout"},
      {[](nlohmann::json& j) { j["model"]["continuing_subword_prefix"] = "##"; }, "continuing_subword_prefix"},
      {[](nlohmann::json& j) { j["added_tokens"][0]["lstrip"] = true; }, "lstrip"},
      {[](nlohmann::json& j) { j["added_tokens"][1]["content"] = ""; }, "non-empty 'content'"},
  };
  for (const auto& [edit, field] : refused) {
    const std::string msg = load_error(tiny_tokenizer_json(dir, edit));
    INFO(msg);
    CHECK(msg.find("tokenizer.json") != std::string::npos);
    CHECK(msg.find(field) != std::string::npos);
  }
}

TEST_CASE("tokenizer: batch encoding on threads gives each text's ids") {
  const auto& tok = gpt2_tokenizer();
  std::vector<std::string> texts;
  for (const auto& f : parity_files())
    for (std::size_t t = 0; t < f.texts.size(); t += 7) texts.push_back(f.texts[t]);
  texts.push_back("a<|endoftext|>b");
  for (int threads : {1, 2, 0}) {
    const auto ordinary = tok.encode_ordinary_batch(texts, threads);
    const auto with_special = tok.encode_batch(texts, threads);
    REQUIRE(ordinary.size() == texts.size());
    REQUIRE(with_special.size() == texts.size());
    std::size_t same = 0;
    for (std::size_t i = 0; i < texts.size(); ++i)
      same += ordinary[i] == tok.encode_ordinary(texts[i]) && with_special[i] == tok.encode(texts[i]);
    CHECK(same == texts.size());
  }
  CHECK(tok.encode_batch({}).empty());
}

namespace {

// Strict UTF-8 check, written apart from the library's decoder (RFC 3629 byte ranges).
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (std::size_t i = 0, n = s.size(); i < n;) {
    const unsigned c = p[i];
    std::size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    unsigned lo = 0x80, hi = 0xBF;  // second byte
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (len > 1 && (p[i + 1] < lo || p[i + 1] > hi)) return false;
    for (std::size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

std::string from_hex(const std::string& h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

// Streams ids through a TokenStreamDecoder; every push must return valid UTF-8.
std::string stream(const tinyllm::Tokenizer& tok, const std::vector<int>& ids, bool& all_valid) {
  tinyllm::TokenStreamDecoder dec(tok);
  std::string out;
  for (int id : ids) {
    const std::string piece = dec.push(id);
    all_valid = all_valid && valid_utf8(piece);
    out += piece;
  }
  const std::string rest = dec.flush();
  all_valid = all_valid && valid_utf8(rest);
  return out + rest;
}

}  // namespace

TEST_CASE("decode_text and TokenStreamDecoder: U+FFFD exactly where Python's decode puts it") {
  // Hugging Face's decode is bytes.decode("utf-8", errors="replace"); the cases are Python's output
  // (tests/reference/make_tokenizer_corpus.py writes utf8_replace.json).
  const auto& tok = gpt2_tokenizer();
  const auto j = test::read_json(test::fixture("tokenizer/utf8_replace.json"));
  REQUIRE(j["cases"].size() >= 100);
  std::size_t wrong = 0, wrong_stream = 0;
  bool all_valid = true;
  for (const auto& c : j["cases"]) {
    const std::string raw = from_hex(c["bytes"]), want = from_hex(c["replaced"]);
    const auto ids = tok.encode_ordinary(raw);
    wrong += tok.decode_text(ids) != want;
    wrong_stream += stream(tok, ids, all_valid) != want;
  }
  CHECK(wrong == 0);
  CHECK(wrong_stream == 0);
  CHECK(all_valid);
  CHECK(valid_utf8("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x99\x82"));  // the checker itself
  for (const char* bad : {"\xE2\x82", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80", "\xFF"}) CHECK(!valid_utf8(bad));
}

TEST_CASE("TokenStreamDecoder: complete UTF-8 only, and the parity texts come out whole") {
  const auto& tok = gpt2_tokenizer();
  // Every parity text, id by id: each push is valid UTF-8 and together they are the text (Chinese and
  // emoji characters span two tokens all the time).
  std::size_t texts = 0, wrong = 0;
  bool all_valid = true;
  for (const auto& f : parity_files()) {
    for (std::size_t t = 0; t < f.texts.size(); t += 2) {
      wrong += stream(tok, f.ids[t], all_valid) != f.texts[t];
      ++texts;
    }
  }
  CHECK(texts > 1000);
  CHECK(wrong == 0);
  CHECK(all_valid);
  // Special tokens: skipped by default, their text otherwise.
  const auto ids = tok.encode("北京<|endoftext|>🐳");
  bool valid = true;
  CHECK(stream(tok, ids, valid) == "北京🐳");
  tinyllm::TokenStreamDecoder keep(tok, /*skip_special_tokens=*/false);
  std::string kept;
  for (int id : ids) kept += keep.push(id);
  CHECK(kept + keep.flush() == "北京<|endoftext|>🐳");
  CHECK(tok.decode_text(tok.encode("\xe2\x82 x")) == "\xEF\xBF\xBD x");  // U+FFFD for the broken prefix
}

TEST_CASE("pre-tokenization follows GPT-2's pattern on edge cases") {
  auto pieces = [](const std::string& s) {
    std::vector<std::string> out;
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
    tinyllm::detail::pretokenize(p, s.size(), [&](std::size_t b, std::size_t e) { out.push_back(s.substr(b, e - b)); });
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(pieces("Hello world") == V{"Hello", " world"});
  CHECK(pieces("it's") == V{"it", "'s"});
  CHECK(pieces("IT'S") == V{"IT", "'", "S"});  // contractions are case-sensitive
  CHECK(pieces("a  b") == V{"a", " ", " b"});   // \s+(?!\S) leaves one space to the word
  CHECK(pieces("a   \n") == V{"a", "   \n"});    // trailing white space stays whole
  CHECK(pieces("x 123 !?") == V{"x", " 123", " !?"});
  CHECK(pieces("\xe3\x80\x80\xe4\xb8\xad") == V{"\xe3\x80\x80", "\xe4\xb8\xad"});  // U+3000 is \s, 中 a letter
  CHECK(pieces(" \xe4\xb8\xad") == V{" \xe4\xb8\xad"});
  CHECK(pieces("\xff\xfe!") == V{"\xff\xfe!"});  // invalid bytes group with punctuation
  CHECK(pieces("٣٤") == V{"٣٤"});               // Arabic-Indic digits are \p{N}
}
