// GPT2Config: the hyper-parameters of a GPT-2 model, read from a Hugging Face config.json, and the stop
// tokens of generation_config.json. Defaults are GPT-2 small (124M). Depends on error.hpp and io/json.hpp.
#pragma once

#include <cmath>     // std::isfinite
#include <cstdint>   // std::int64_t
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include "error.hpp"
#include "io/json.hpp"
#include "io/mapped_file.hpp"  // read_text_file

namespace tinyllm {

enum class Activation { gelu_new, gelu };  // gelu_new = tanh approximation (GPT-2); gelu = exact erf form

struct GPT2Config {
  int vocab_size = 50257;           // tokens, e.g. 50257
  int n_positions = 1024;           // context length, e.g. 1024
  int n_embd = 768;                 // model width, e.g. 768 (gpt2), 1600 (gpt2-xl)
  int n_layer = 12;                 // transformer blocks
  int n_head = 12;                  // attention heads; n_embd % n_head == 0
  float layer_norm_epsilon = 1e-5f;
  int eos_token_id = 50256;         // <|endoftext|>; -1 when the model has none
  // Beyond the six fields every GPT-2 config has (HF names and defaults):
  int n_inner = 0;                  // MLP width; 0 means 4 * n_embd (config.json's null)
  Activation activation_function = Activation::gelu_new;
  bool scale_attn_weights = true;                // divide scores by sqrt(head_dim)
  bool scale_attn_by_inverse_layer_idx = false;  // and by (layer index + 1)
  int bos_token_id = 50256;

  int head_dim() const { return n_embd / n_head; }
  int inner_dim() const { return n_inner > 0 ? n_inner : 4 * n_embd; }

  // Reads and validates dir/config.json (fields as HF's GPT2Config names them).
  static GPT2Config from_pretrained(const std::string& dir);
  // Parses config.json text; `file` names it in errors.
  static GPT2Config from_json(const std::string& text, const std::string& file);
  // Throws Error naming `file` and the field if a value is out of range or inconsistent.
  void validate(const std::string& file = "config") const;
};

inline void GPT2Config::validate(const std::string& file) const {
  auto positive = [&](const char* name, long long v, long long hi) {
    if (v <= 0 || v > hi)
      detail::fail(file, std::string("field '") + name + "' is " + std::to_string(v) + ", must be in [1, " +
                             std::to_string(hi) + "]");
  };
  positive("vocab_size", vocab_size, 1 << 24);
  positive("n_positions", n_positions, 1 << 20);
  positive("n_embd", n_embd, 1 << 16);
  positive("n_layer", n_layer, 1 << 10);
  positive("n_head", n_head, 1 << 12);
  if (n_inner < 0 || n_inner > (1 << 20))
    detail::fail(file, "field 'n_inner' is " + std::to_string(n_inner) + ", must be null or in [1, 1048576]");
  if (n_embd % n_head != 0)
    detail::fail(file, "n_embd (" + std::to_string(n_embd) + ") is not divisible by n_head (" +
                           std::to_string(n_head) + ")");
  if (!(layer_norm_epsilon > 0.0f) || !std::isfinite(layer_norm_epsilon))
    detail::fail(file, "field 'layer_norm_epsilon' must be a positive number, got " +
                           std::to_string(layer_norm_epsilon));
  if (eos_token_id < -1 || eos_token_id >= vocab_size)
    detail::fail(file, "field 'eos_token_id' is " + std::to_string(eos_token_id) + ", outside the vocabulary [0, " +
                           std::to_string(vocab_size) + ")");
}

inline GPT2Config GPT2Config::from_json(const std::string& text, const std::string& file) {
  using detail::json;
  const json j = detail::parse_json(text, file);
  if (!j.is_object()) detail::fail(file, "expected a JSON object, got " + std::string(j.type_name()));
  const std::string model_type = detail::json_string(j, "model_type", file, "gpt2");
  if (model_type != "gpt2")
    detail::fail(file, "model_type is '" + model_type + "', tinyllm runs 'gpt2' models only");

  constexpr std::int64_t big = std::int64_t(1) << 40;
  GPT2Config c;
  auto field = [&](const char* key, std::int64_t hi, const std::int64_t* fallback = nullptr) {
    return static_cast<int>(detail::json_int(j, key, file, 1, hi, fallback));
  };
  c.vocab_size = field("vocab_size", 1 << 24);
  // Old configs call the context n_ctx; both are the same number in every hub GPT-2.
  if (j.contains("n_ctx") && !j["n_ctx"].is_null()) {
    const std::int64_t n_ctx = field("n_ctx", 1 << 20);
    c.n_positions = field("n_positions", 1 << 20, &n_ctx);
  } else {
    c.n_positions = field("n_positions", 1 << 20);
  }
  c.n_embd = field("n_embd", 1 << 16);
  c.n_layer = field("n_layer", 1 << 10);
  c.n_head = field("n_head", 1 << 12);
  const std::int64_t zero = 0;
  c.n_inner = static_cast<int>(detail::json_int(j, "n_inner", file, 0, 1 << 20, &zero));
  c.layer_norm_epsilon = static_cast<float>(detail::json_number(j, "layer_norm_epsilon", file, 1e-5));

  // eos/bos may be an int, a list (first one wins here; GenerationConfig takes the list) or null.
  auto token_id = [&](const char* key, int fallback) -> int {
    auto it = j.find(key);
    if (it == j.end()) return fallback;
    if (it->is_null()) return -1;
    const json& v = it->is_array() && !it->empty() ? (*it)[0] : *it;
    if (!v.is_number_integer()) detail::fail(file, std::string("field '") + key + "' must be a token id, got " + it->dump());
    const std::int64_t id = v.get<std::int64_t>();
    if (id < -1 || id > big) detail::fail(file, std::string("field '") + key + "' is " + std::to_string(id));
    return static_cast<int>(id);
  };
  c.eos_token_id = token_id("eos_token_id", 50256);
  c.bos_token_id = token_id("bos_token_id", 50256);
  if (c.eos_token_id >= c.vocab_size && !j.contains("eos_token_id")) c.eos_token_id = -1;  // small custom vocab
  if (c.bos_token_id >= c.vocab_size) c.bos_token_id = -1;

  const std::string act = detail::json_string(j, "activation_function", file, "gelu_new");
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast")
    c.activation_function = Activation::gelu_new;
  else if (act == "gelu")
    c.activation_function = Activation::gelu;
  else
    detail::fail(file, "activation_function '" + act + "' is not supported (gelu_new, gelu_pytorch_tanh, gelu)");
  c.scale_attn_weights = detail::json_bool(j, "scale_attn_weights", file, true);
  c.scale_attn_by_inverse_layer_idx = detail::json_bool(j, "scale_attn_by_inverse_layer_idx", file, false);
  c.validate(file);
  return c;
}

inline GPT2Config GPT2Config::from_pretrained(const std::string& dir) {
  const std::string file = dir + "/config.json";
  return from_json(detail::read_text_file(file), file);
}

namespace detail {

// generation_config.json's eos_token_id (an id or a list of ids, each in [0, vocab_size)); empty when
// the file has none, so config.json's applies. `file` names it in errors.
inline std::optional<std::vector<int>> generation_eos_token_ids(const std::string& text, const std::string& file,
                                                                int vocab_size) {
  const json j = parse_json(text, file);
  if (!j.is_object() || !j.contains("eos_token_id") || j["eos_token_id"].is_null()) return std::nullopt;
  const json& e = j["eos_token_id"];
  std::vector<int> ids;
  for (const auto& v : e.is_array() ? e : json::array({e})) {
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= vocab_size)
      fail(file, "eos_token_id " + e.dump() + " is not a token id of this model");
    ids.push_back(v.get<int>());
  }
  return ids;
}

}  // namespace detail

}  // namespace tinyllm
