// Fuzz target: a model.safetensors file — its header length, JSON header and tensor table (dtypes,
// shapes, offsets, overlaps, metadata) — on its own and as the weights of a small model folder.
// A file that opens must hand out only views inside the file; one that loads as the model must have
// every tensor config.json asks for.
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t, std::uint64_t
#include <cstring>  // std::memcmp
#include <string>   // std::string

#include <tinyllm/gpt2.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A 1-layer model small enough that valid weights are a few KB (the corpus has such a file).
  static const std::string dir = [] {
    const std::string d = fuzz::scratch() + "/safetensors";
    std::filesystem::create_directories(d);
    fuzz::write_file(d + "/config.json",
                     R"({"model_type": "gpt2", "vocab_size": 8, "n_positions": 4, "n_embd": 4, "n_layer": 1,)"
                     R"( "n_head": 1, "bos_token_id": 7, "eos_token_id": 7})");
    return d;
  }();
  const std::string file = dir + "/model.safetensors";
  fuzz::write_file(file, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const tinyllm::SafetensorsFile st(file);
    // Each view is the bytes its data_offsets name, read independently here from the input.
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | data[i];
    const auto header = nlohmann::json::parse(data + 8, data + 8 + n);
    std::uint8_t sum = 0;
    for (const auto& [name, v] : st.tensors()) {
      const auto& offsets = header.at(name).at("data_offsets");
      const std::uint64_t b = offsets[0].get<std::uint64_t>(), e = offsets[1].get<std::uint64_t>();
      FUZZ_CHECK(b <= e && 8 + n + e <= size && v.nbytes == e - b);
      FUZZ_CHECK(v.nbytes == 0 || std::memcmp(v.data, data + 8 + n + b, v.nbytes) == 0);
      FUZZ_CHECK(static_cast<std::uint64_t>(v.numel()) * (v.nbytes ? v.nbytes / v.numel() : 0) == v.nbytes);
      for (std::size_t i = 0; i < v.nbytes; ++i) sum += v.data[i];
    }
    (void)sum;
  } catch (const tinyllm::Error&) {
    return 0;
  }
  try {
    const auto model = tinyllm::GPT2::from_pretrained(dir);
    FUZZ_CHECK(model.weights().wte.data != nullptr);
    FUZZ_CHECK(model.weights().lm_head.data != nullptr);
  } catch (const tinyllm::Error&) {
  }
  return 0;
}
