// Fuzz target: config.json and generation_config.json text. A config that parses is one validate()
// accepts (so the model code can rely on its fields); generation_config.json's stop tokens are ids
// of the model.
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t
#include <string>   // std::string

#include <tinyllm/config.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const tinyllm::GPT2Config c = tinyllm::GPT2Config::from_json(text, "config.json");
    c.validate("config.json");  // throws nothing: from_json validated it
    FUZZ_CHECK(c.n_embd % c.n_head == 0 && c.head_dim() > 0 && c.inner_dim() > 0);
    FUZZ_CHECK(c.bos_token_id < c.vocab_size && c.eos_token_id < c.vocab_size);
  } catch (const tinyllm::Error&) {
  }
  try {
    constexpr int vocab_size = 50257;
    if (const auto ids = tinyllm::detail::generation_eos_token_ids(text, "generation_config.json", vocab_size))
      for (int id : *ids) FUZZ_CHECK(id >= 0 && id < vocab_size);
  } catch (const tinyllm::Error&) {
  }
  return 0;
}
