// Fuzz target: TokenStreamDecoder fed arbitrary ids of the demo model's vocabulary (two bytes each;
// the first input byte chooses skip_special_tokens). Every piece is valid UTF-8, and the pieces plus
// flush() are decode_text(ids) exactly; an id outside the vocabulary is an Error from both.
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t
#include <string>   // std::string
#include <vector>   // std::vector

#include <tinyllm/tokenizer.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tinyllm::Tokenizer tok = tinyllm::Tokenizer::from_pretrained(fuzz::demo_model());
  fuzz::Input in(data, size);
  const bool skip = in.byte() & 1;
  std::vector<int> ids;
  while (!in.empty()) {
    const int hi = in.byte(), lo = in.byte();
    ids.push_back((hi << 8 | lo) % (tok.vocab_size() + 2) - 1);  // -1 and vocab_size: not ids
  }
  bool bad = false;
  for (int id : ids) bad |= id < 0 || id >= tok.vocab_size();

  tinyllm::TokenStreamDecoder stream(tok, skip);
  std::string streamed;
  try {
    for (int id : ids) {
      const std::string piece = stream.push(id);
      streamed += piece;
      // A piece is complete UTF-8: decode_text leaves it as it is.
      const std::string again = tok.decode_text(tok.encode_ordinary(piece));
      FUZZ_CHECK(again == piece);
    }
    streamed += stream.flush();
  } catch (const tinyllm::Error&) {
    FUZZ_CHECK(bad);
    return 0;
  }
  FUZZ_CHECK(!bad);
  FUZZ_CHECK(streamed == tok.decode_text(ids, skip));
  return 0;
}
