// Writes a Hugging Face GPT-2 folder with random F32 weights: real tensor names and shapes,
// config.json, and GPT-2's tokenizer files copied from the demo model. For speed measurements only
// (the text it writes is noise). Used by bench_generation.cpp.
#pragma once

#include <cstdint>     // std::uint64_t
#include <cstdio>      // std::snprintf
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <string>      // std::string
#include <utility>     // std::pair
#include <vector>      // std::vector

namespace bench {

struct RandomGPT2Shape {
  int vocab_size = 50257, n_positions = 1024, n_embd = 768, n_layer = 12, n_head = 12;  // GPT-2 124M
};

// Writes dir (config.json, model.safetensors, vocab.json, merges.txt) unless it is already there.
inline void write_random_gpt2(const std::string& dir, const std::string& tokenizer_dir, RandomGPT2Shape s = {}) {
  namespace fs = std::filesystem;
  const std::string st = dir + "/model.safetensors";
  if (fs::exists(st) && fs::exists(dir + "/config.json")) return;
  fs::create_directories(dir);
  const long V = s.vocab_size, P = s.n_positions, C = s.n_embd;
  std::vector<std::pair<std::string, std::vector<long>>> tensors = {{"wte.weight", {V, C}}, {"wpe.weight", {P, C}}};
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    for (const auto& t : std::vector<std::pair<std::string, std::vector<long>>>{{"ln_1.weight", {C}},
                                                                                {"ln_1.bias", {C}},
                                                                                {"attn.c_attn.weight", {C, 3 * C}},
                                                                                {"attn.c_attn.bias", {3 * C}},
                                                                                {"attn.c_proj.weight", {C, C}},
                                                                                {"attn.c_proj.bias", {C}},
                                                                                {"ln_2.weight", {C}},
                                                                                {"ln_2.bias", {C}},
                                                                                {"mlp.c_fc.weight", {C, 4 * C}},
                                                                                {"mlp.c_fc.bias", {4 * C}},
                                                                                {"mlp.c_proj.weight", {4 * C, C}},
                                                                                {"mlp.c_proj.bias", {C}}})
      tensors.push_back({h + t.first, t.second});
  }
  tensors.push_back({"ln_f.weight", {C}});
  tensors.push_back({"ln_f.bias", {C}});

  std::string header = "{";
  long offset = 0;
  for (const auto& [name, shape] : tensors) {
    long n = 1;
    std::string dims;
    for (long d : shape) {
      n *= d;
      dims += (dims.empty() ? "" : ",") + std::to_string(d);
    }
    header += (header.size() > 1 ? "," : "") + std::string("\"") + name + "\":{\"dtype\":\"F32\",\"shape\":[" + dims +
              "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + 4 * n) + "]}";
    offset += 4 * n;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::ofstream out(st, std::ios::binary);
  const std::uint64_t hn = header.size();
  out.write(reinterpret_cast<const char*>(&hn), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::uint64_t x = 0x9E3779B97F4A7C15ull;  // xorshift64*: fast, and the weights only need to look random
  std::vector<float> buf;
  for (const auto& [name, shape] : tensors) {
    long n = 1;
    for (long d : shape) n *= d;
    buf.assign(static_cast<std::size_t>(n), 0.0f);
    const bool norm_weight = name.find("ln_") != std::string::npos && name.find(".weight") != std::string::npos;
    for (float& v : buf) {
      x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
      const double u = static_cast<double>((x * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;  // [0, 1)
      v = norm_weight ? 1.0f : static_cast<float>((u - 0.5) * 0.07);                        // std ~0.02
    }
    out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 4));
  }
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"gpt2\", \"vocab_size\": " << V
                                      << ", \"n_positions\": " << P << ", \"n_ctx\": " << P << ", \"n_embd\": " << C
                                      << ", \"n_layer\": " << s.n_layer << ", \"n_head\": " << s.n_head
                                      << ", \"bos_token_id\": 50256, \"eos_token_id\": 50256}\n";
  for (const char* f : {"vocab.json", "merges.txt"})
    fs::copy_file(tokenizer_dir + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
}

}  // namespace bench
