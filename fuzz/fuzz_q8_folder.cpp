// Fuzz target: the metadata of a Q8 folder that `tinyllm quantize` writes — the safetensors header
// naming each I8 matrix and its F32 "<name>_scale" (shapes, dtypes, offsets, alignment). The input is
// the JSON header; the data section is that of the small model tests/fixtures/f32-hub saved as Q8,
// so a header that points into it differently must be an Error, never a read outside the file.
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t, std::uint64_t
#include <string>   // std::string

#include <tinyllm/gpt2.hpp>

#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  struct Folder {
    std::string dir, tensors;  // the folder, the Q8 file's data section
  };
  static const Folder q8 = [] {
    Folder f;
    const std::string saved = fuzz::scratch() + "/q8-saved";
    tinyllm::GPT2::from_pretrained(fuzz::fixture("f32-hub")).save_pretrained(saved, tinyllm::WeightType::Q8);
    const std::string file = fuzz::read_file(saved + "/model.safetensors");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<std::uint8_t>(file[i]);
    f.tensors = file.substr(8 + n);
    f.dir = fuzz::scratch() + "/q8";
    std::filesystem::create_directories(f.dir);
    std::filesystem::copy_file(saved + "/config.json", f.dir + "/config.json");
    return f;
  }();
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>(std::uint64_t(size) >> (8 * i));
  file.append(reinterpret_cast<const char*>(data), size);
  file += q8.tensors;
  fuzz::write_file(q8.dir + "/model.safetensors", file);
  try {
    const auto model = tinyllm::GPT2::from_pretrained(q8.dir);
    // Loaded: one forward pass reads every weight (ASan: all inside the mapping).
    const auto logits = model.logits({1, 2, 3});
    FUZZ_CHECK(logits.size() == static_cast<std::size_t>(model.config().vocab_size));
  } catch (const tinyllm::Error&) {
  }
  return 0;
}
