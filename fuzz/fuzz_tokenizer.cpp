// Fuzz target: the demo model's tokenizer (GPT-2's vocabulary) on arbitrary bytes. Any bytes
// round-trip through encode and encode_ordinary; encode_ordinary never yields <|endoftext|> (50256),
// so text from users cannot inject it; encode gives it exactly where the text spells it; every id
// is in the vocabulary; decode_text is valid UTF-8.
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t
#include <string>   // std::string
#include <vector>   // std::vector

#include <tinyllm/tokenizer.hpp>

#include "fuzz.hpp"

namespace {

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  for (std::size_t i = 0; i < s.size();) {
    const tinyllm::detail::Utf8Char c = tinyllm::detail::decode_utf8(p, s.size(), i);
    if (!c.valid) return false;
    i += c.len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tinyllm::Tokenizer tok = tinyllm::Tokenizer::from_pretrained(fuzz::demo_model());
  constexpr int endoftext = 50256;
  const std::string text(reinterpret_cast<const char*>(data), size);

  const std::vector<int> ordinary = tok.encode_ordinary(text);
  for (int id : ordinary) FUZZ_CHECK(id >= 0 && id < endoftext);
  FUZZ_CHECK(tok.decode(ordinary) == text);

  const std::vector<int> ids = tok.encode(text);
  std::size_t specials = 0;
  for (int id : ids) {
    FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
    specials += id == endoftext;
  }
  std::size_t spelled = 0;
  for (std::size_t p = text.find("<|endoftext|>"); p != std::string::npos; p = text.find("<|endoftext|>", p + 13))
    ++spelled;
  FUZZ_CHECK(specials == spelled);
  FUZZ_CHECK(tok.decode(ids) == text);
  if (spelled == 0) FUZZ_CHECK(ids == ordinary);

  std::vector<int> appended = {endoftext};
  tok.encode_ordinary_into(text, appended);
  FUZZ_CHECK(std::vector<int>(appended.begin() + 1, appended.end()) == ordinary);
  FUZZ_CHECK(valid_utf8(tok.decode_text(ids)));
  return 0;
}
