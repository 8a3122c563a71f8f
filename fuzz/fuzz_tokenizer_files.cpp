// Fuzz target: the tokenizer files — vocab.json + merges.txt (the input split at its first NUL byte)
// or, when the input starts with '{"', tokenizer.json. A tokenizer that loads must round-trip any
// bytes: decode(encode(x)) == x for a fixed text and for the input itself.
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t
#include <string>   // std::string

#include <tinyllm/tokenizer.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const std::string dir = fuzz::scratch();
  try {
    tinyllm::Tokenizer tok;
    const std::size_t nul = in.find('\0');
    if (nul == std::string::npos) {
      fuzz::write_file(dir + "/tokenizer.json", in);
      tok = tinyllm::Tokenizer::from_tokenizer_json(dir + "/tokenizer.json");
    } else {
      fuzz::write_file(dir + "/vocab.json", std::string_view(in).substr(0, nul));
      fuzz::write_file(dir + "/merges.txt", std::string_view(in).substr(nul + 1));
      tok = tinyllm::Tokenizer::from_vocab_and_merges(dir + "/vocab.json", dir + "/merges.txt");
    }
    FUZZ_CHECK(tok.vocab_size() > 0);
    for (const std::string& text : {std::string("Hello, world! <|endoftext|> 123 \xe2\x82\xac \xff"), in}) {
      FUZZ_CHECK(tok.decode(tok.encode(text)) == text);
      FUZZ_CHECK(tok.decode(tok.encode_ordinary(text)) == text);
    }
  } catch (const tinyllm::Error&) {
  }
  return 0;
}
