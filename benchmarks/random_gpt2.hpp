// Writes a random GPT-2-shaped Hugging Face folder for benchmarks: config.json, model.safetensors
// with the hub's tensor names and sizes (and its h.N.attn.bias buffers), and the tokenizer files of
// the demo model. Weights are N(0, 0.02) like GPT-2's initialisation; F32 or F16.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tinyllm/config.hpp>
#include <tinyllm/detail/half.hpp>
#include <tinyllm/model/weights.hpp>

namespace bench {

// Writes `dir` afresh on every call (the file is then in the page cache as a download leaves it;
// a file left from an earlier run may have been partly evicted and read back in 4 KB pages).
// model.safetensors is replaced by a rename, so a process still mapping the old one is unaffected.
// Returns the size of model.safetensors.
inline std::uintmax_t write_random_gpt2(const std::string& dir, const tinyllm::GPT2Config& c, bool f16 = false,
                                        const std::string& tokenizer_dir = "") {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const std::string st = dir + "/model.safetensors";
  nlohmann::json cfg = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", c.vocab_size},
                        {"n_positions", c.n_positions}, {"n_ctx", c.n_positions}, {"n_embd", c.n_embd},
                        {"n_layer", c.n_layer}, {"n_head", c.n_head}, {"n_inner", nullptr},
                        {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5},
                        {"bos_token_id", 50256}, {"eos_token_id", 50256}};
  const std::string cfg_text = cfg.dump(2);
  std::ofstream(dir + "/config.json") << cfg_text;
  if (!tokenizer_dir.empty())
    for (const char* f : {"vocab.json", "merges.txt"})
      fs::copy_file(tokenizer_dir + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);

  // The tensor list, in the hub's order, plus the attention-mask buffers.
  struct Entry {
    std::string name;
    std::vector<std::int64_t> shape;
    int kind;  // 0 random weight, 1 ones (ln weight), 2 zeros (bias), 3 causal mask
  };
  std::vector<Entry> entries;
  tinyllm::GPT2Weights w;
  tinyllm::for_each_tensor(c, w, [&](const tinyllm::TensorSpec& s, auto&) {
    if (s.optional) return;
    const bool ln = s.name.find("ln_") != std::string::npos;
    const bool bias = s.name.size() > 5 && s.name.compare(s.name.size() - 5, 5, ".bias") == 0;
    entries.push_back({s.name, s.shape, ln && !bias ? 1 : bias ? 2 : 0});
  });
  for (int l = 0; l < c.n_layer; ++l)
    entries.push_back({"h." + std::to_string(l) + ".attn.bias", {1, 1, c.n_positions, c.n_positions}, 3});

  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& e : entries) {
    std::uint64_t n = 1;
    for (auto d : e.shape) n *= static_cast<std::uint64_t>(d);
    const bool half = f16 && e.kind != 3;
    const std::uint64_t bytes = n * (half ? 2 : 4);
    header[e.name] = {{"dtype", half ? "F16" : "F32"}, {"shape", e.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  // The file goes out in blocks of 16 MB at multiples of 16 MB (the header starts the first), so
  // the page cache holds it in 2 MB pages, as after a download in large pieces or a cold read: the
  // mapped weights then read as fast as 2 MB pages do (writes of 1 MB pieces left 4 KB pages). A
  // block at a time also keeps writing from inflating the benchmark's peak memory.
  const std::string tmp = st + ".tmp";
  std::ofstream out(tmp, std::ios::binary);
  constexpr std::size_t block = std::size_t(16) << 20;
  std::vector<char> buf;
  buf.reserve(block);
  auto put = [&](const void* p, std::size_t bytes) {
    buf.insert(buf.end(), static_cast<const char*>(p), static_cast<const char*>(p) + bytes);
    if (buf.size() == block) {
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
      buf.clear();
    }
  };
  const std::uint64_t hn = h.size();
  put(&hn, 8);
  for (char ch : h) put(&ch, 1);
  std::mt19937_64 rng(2024);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const auto& e : entries) {
    std::uint64_t n = 1;
    for (auto d : e.shape) n *= static_cast<std::uint64_t>(d);
    const bool half = f16 && e.kind != 3;
    const std::int64_t P = c.n_positions;
    for (std::uint64_t i = 0; i < n; ++i) {
      const float v = e.kind == 0 ? normal(rng) : e.kind == 1 ? 1.0f : e.kind == 2 ? 0.0f
                    : (static_cast<std::int64_t>(i % P) <= static_cast<std::int64_t>(i / P % P) ? 1.0f : 0.0f);
      if (half) {
        const std::uint16_t b = tinyllm::detail::f32_to_f16(v);
        put(&b, 2);
      } else {
        put(&v, 4);
      }
    }
  }
  out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + tmp);
  fs::rename(tmp, st);
  return fs::file_size(st);
}

}  // namespace bench
