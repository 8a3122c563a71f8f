// Tokenizer files: vocab.json + merges.txt, and Hugging Face's tokenizer.json, read into plain lists
// (tokens, merges in rank order, added tokens). A tokenizer.json that asks for anything other than
// GPT-2's byte-level BPE (a normalizer, a prefix space, BPE dropout, ...) is an error naming the
// field, rather than ids that silently differ from Hugging Face's.
// Depends on error.hpp and io/ only.
#pragma once

#include <string>   // std::string
#include <utility>  // std::pair
#include <vector>   // std::vector

#include "../error.hpp"
#include "../io/json.hpp"
#include "../io/mapped_file.hpp"  // read_text_file

namespace tinyllm::detail {

// Token ids are below this (16,777,216; GPT-2 has 50,257); with ids dense (Tokenizer's loader checks),
// it bounds the tables a vocabulary makes.
inline constexpr int max_vocab_size = 1 << 24;

struct AddedToken {
  std::string content;  // the literal text, e.g. "<|endoftext|>"
  int id = -1;
  bool special = false;  // skipped by decode(ids, skip_special_tokens = true)
};

struct TokenizerFiles {
  std::vector<std::pair<std::string, int>> vocab;           // token (GPT-2's byte alphabet) -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<AddedToken> added;                            // tokenizer.json's added_tokens
  bool ignore_merges = false;  // tokenizer.json: a piece that is a token is that token, BPE or not
  std::string source;          // file(s) named in messages
};

inline std::vector<std::pair<std::string, int>> read_vocab_object(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "vocabulary must be a JSON object of token -> id");
  if (j.empty()) fail(where, "vocabulary is empty");
  std::vector<std::pair<std::string, int>> vocab;
  vocab.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() >= max_vocab_size)
      fail(where, "token '" + it.key() + "' has id " + it->dump() + ", expected an integer in [0, " +
                      std::to_string(max_vocab_size) + ")");
    vocab.emplace_back(it.key(), static_cast<int>(it->get<long long>()));
  }
  return vocab;
}

// merges.txt: an optional "#version" first line, then one "left right" pair per line.
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

inline TokenizerFiles read_vocab_and_merges(const std::string& vocab_path, const std::string& merges_path) {
  TokenizerFiles f;
  f.vocab = read_vocab_object(parse_json(read_text_file(vocab_path), vocab_path), vocab_path);
  f.merges = parse_merges_txt(read_text_file(merges_path), merges_path);
  f.source = vocab_path + " + " + merges_path;
  return f;
}

// `field` of tokenizer.json must be absent, null, or `expected` (what GPT-2's file has).
inline void require_setting(const json& obj, const std::string& key, const json& expected, const std::string& file,
                            const std::string& field) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null() || *it == expected) return;
  fail(file, field + " is " + it->dump() + "; tinyllm implements GPT-2's byte-level BPE, which has " +
                 expected.dump());
}

inline TokenizerFiles read_tokenizer_json(const std::string& path) {
  const json j = parse_json(read_text_file(path), path);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail(path, "missing 'model' object");
  TokenizerFiles f;
  f.source = path;
  const json& m = j["model"];
  const std::string type = json_string(m, "type", path, "BPE");
  if (type != "BPE") fail(path, "model.type is '" + type + "', expected BPE (GPT-2's tokenizer)");
  if (!m.contains("vocab")) fail(path, "missing model.vocab");
  f.vocab = read_vocab_object(m["vocab"], path + ": model.vocab");
  if (m.contains("merges")) {
    if (!m["merges"].is_array()) fail(path, "model.merges must be an array");
    for (const auto& e : m["merges"]) {
      if (e.is_string()) {  // "a b"
        const std::string s = e.get<std::string>();
        const std::size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == s.size())
          fail(path, "model.merges entry '" + s + "' is not two tokens separated by a space");
        f.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
        f.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        fail(path, "model.merges entry " + e.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }
  f.ignore_merges = json_bool(m, "ignore_merges", path, false);
  // Settings that would change the ids: only GPT-2's values are accepted.
  require_setting(m, "dropout", 0.0, path, "model.dropout");
  require_setting(m, "continuing_subword_prefix", "", path, "model.continuing_subword_prefix");
  require_setting(m, "end_of_word_suffix", "", path, "model.end_of_word_suffix");
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    fail(path, "normalizer is " + j["normalizer"].dump().substr(0, 80) + "; GPT-2's tokenizer has none");
  if (j.contains("pre_tokenizer")) {  // GPT-2's: {"type": "ByteLevel", "add_prefix_space": false, ...}
    const json& p = j["pre_tokenizer"];
    if (!p.is_object() || json_string(p, "type", path, "") != "ByteLevel")
      fail(path, "pre_tokenizer is " + p.dump().substr(0, 80) + "; tinyllm implements GPT-2's ByteLevel");
    if (json_bool(p, "add_prefix_space", path, true))  // Hugging Face's default is true
      fail(path, "pre_tokenizer.add_prefix_space is true (or missing); GPT-2's is false");
    require_setting(p, "use_regex", true, path, "pre_tokenizer.use_regex");
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      const bool content = t.is_object() && t.contains("content") && t["content"].is_string() &&
                           !t["content"].get<std::string>().empty();
      const bool id = t.is_object() && t.contains("id") && t["id"].is_number_integer() &&
                      t["id"].get<long long>() >= 0 && t["id"].get<long long>() < max_vocab_size;
      if (!content || !id)
        fail(path, "added_tokens entry " + t.dump().substr(0, 80) + " needs a non-empty 'content' and an id");
      const std::string where = path + ": added token '" + t["content"].get<std::string>() + "'";
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        if (json_bool(t, flag, where, false))
          fail(where, std::string("has ") + flag + " set, which tinyllm does not implement");
      f.added.push_back({t["content"].get<std::string>(), t["id"].get<int>(), json_bool(t, "special", where, false)});
    }
  }
  return f;
}

}  // namespace tinyllm::detail
