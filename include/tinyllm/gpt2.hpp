// tinyllm: GPT-2 on the CPU, straight from a Hugging Face folder. The header users include.
//
//   auto model = tinyllm::GPT2::from_pretrained("models/tiny-sotu");
//   std::cout << model.generate_text("The state of the Union", 50);
//
// BasicGPT2<Backend> is the model; GPT2 uses the default backend (OpenMP when compiled with it, else
// the std::thread pool).
#pragma once

#include <algorithm>    // std::find, std::min
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint64_t
#include <memory>       // std::shared_ptr
#include <optional>     // std::optional
#include <random>       // std::mt19937_64
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include "backend/backend.hpp"
#include "backend/openmp.hpp"
#include "backend/thread_pool.hpp"
#include "config.hpp"
#include "error.hpp"
#include "generation/config.hpp"
#include "generation/sampling.hpp"
#include "io/json.hpp"
#include "io/mapped_file.hpp"
#include "model/gpt2_model.hpp"
#include "model/loader.hpp"
#include "model/save.hpp"
#include "model/weights.hpp"
#include "tokenizer.hpp"
#include "version.hpp"
#include "weight_type.hpp"

namespace tinyllm {

// How from_pretrained holds the weights.
struct LoadOptions {
  // The type of every matrix (wte and the head included; layer norms, biases and positions stay F32).
  // Empty: as stored in the file — F32, F16 and BF16 mapped and computed from in place (F16/BF16
  // widened in registers), Q8 folders written by `tinyllm quantize` likewise; F64 becomes F32.
  std::optional<WeightType> weight_type;
};

#ifdef _OPENMP
using DefaultBackend = OpenMP;
#else
using DefaultBackend = ThreadPool;
#endif

template <class Backend>
class BasicGPT2 {
 public:
  // Loads dir/config.json, dir/model.safetensors (or the shards of model.safetensors.index.json) and
  // the tokenizer (vocab.json + merges.txt, or tokenizer.json). F32 weights stay mapped from the file.
  static BasicGPT2 from_pretrained(const std::string& dir) { return from_pretrained(dir, LoadOptions{}); }
  static BasicGPT2 from_pretrained(const std::string& dir, const LoadOptions& options);

  const GPT2Config& config() const { return config_; }
  const Tokenizer& tokenizer() const;
  const GPT2Weights& weights() const { return store_->w; }

  // Logits of every position: ids.size() x vocab_size, row-major.
  std::vector<float> forward(const std::vector<int>& ids) const;
  // Logits of the last position only: vocab_size floats.
  std::vector<float> logits(const std::vector<int>& ids) const;
  // Prompt + new ids, like Hugging Face's generate(). Stops at an eos token, at max_length /
  // max_new_tokens, or when the context reaches n_positions.
  std::vector<int> generate(const std::vector<int>& input_ids, const GenerationConfig& cfg = {}) const;
  // Greedy: the decoded prompt + continuation, special tokens skipped (tokenizer.decode_text).
  std::string generate_text(std::string_view prompt, int max_length = 50) const;

  // Writes this model as a folder whose matrices are `type` (default: as loaded), which loads
  // memory-mapped with no conversion: `tinyllm quantize` is this with type Q8.
  void save_pretrained(const std::string& out_dir, std::optional<WeightType> type = std::nullopt) const {
    detail::save_pretrained(config_, store_->w, type ? *type : store_->w.h.front().mlp_c_fc.weight.type, dir_, out_dir);
  }

  // The stop tokens generate() uses when GenerationConfig::eos_token_id is empty.
  const std::vector<int>& eos_token_ids() const { return eos_; }

 private:
  void check_ids(const std::vector<int>& ids, const char* who) const;

  GPT2Config config_;
  std::string dir_;                                   // the folder it was loaded from
  std::shared_ptr<const detail::WeightStore> store_;  // shared by copies of the model
  Tokenizer tokenizer_;
  std::string tokenizer_error_;  // why there is no tokenizer, if there is none
  std::vector<int> eos_;
};

using GPT2 = BasicGPT2<DefaultBackend>;

// ---------------------------------------------------------------------------------------------------

template <class Backend>
BasicGPT2<Backend> BasicGPT2<Backend>::from_pretrained(const std::string& dir, const LoadOptions& options) {
  if (!detail::is_directory(dir)) detail::fail(dir, "no such folder");
  if (options.weight_type && (static_cast<int>(*options.weight_type) < 0 || static_cast<int>(*options.weight_type) > 3))
    detail::fail("LoadOptions.weight_type", "is " + std::to_string(static_cast<int>(*options.weight_type)) +
                                                ", not one of WeightType::F32, F16, BF16, Q8");
  BasicGPT2 m;
  m.dir_ = dir;
  m.config_ = GPT2Config::from_pretrained(dir);
  auto store = std::make_shared<detail::WeightStore>();
  detail::load_weights(dir, m.config_, *store, options.weight_type);
  m.store_ = std::move(store);

  const bool has_tokenizer = detail::file_exists(dir + "/vocab.json") || detail::file_exists(dir + "/merges.txt") ||
                             detail::file_exists(dir + "/tokenizer.json");
  if (has_tokenizer) {
    m.tokenizer_ = Tokenizer::from_pretrained(dir);
    if (m.tokenizer_.vocab_size() > m.config_.vocab_size)
      detail::fail(dir, "the tokenizer has " + std::to_string(m.tokenizer_.vocab_size()) +
                            " token ids but config.json's vocab_size is " + std::to_string(m.config_.vocab_size));
  } else {
    m.tokenizer_error_ = dir + ": no tokenizer files (vocab.json + merges.txt, or tokenizer.json)";
  }

  // Stop tokens: generation_config.json's eos_token_id (an id or a list) wins over config.json's.
  if (m.config_.eos_token_id >= 0) m.eos_ = {m.config_.eos_token_id};
  const std::string gen = dir + "/generation_config.json";
  if (detail::file_exists(gen)) {
    const detail::json j = detail::parse_json(detail::read_text_file(gen), gen);
    if (j.is_object() && j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
      const detail::json& e = j["eos_token_id"];
      std::vector<int> ids;
      for (const auto& v : e.is_array() ? e : detail::json::array({e})) {
        if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= m.config_.vocab_size)
          detail::fail(gen, "eos_token_id " + e.dump() + " is not a token id of this model");
        ids.push_back(v.get<int>());
      }
      m.eos_ = ids;
    }
  }
  return m;
}

template <class Backend>
const Tokenizer& BasicGPT2<Backend>::tokenizer() const {
  if (!tokenizer_error_.empty()) throw Error(tokenizer_error_);
  return tokenizer_;
}

template <class Backend>
void BasicGPT2<Backend>::check_ids(const std::vector<int>& ids, const char* who) const {
  if (ids.empty()) detail::fail(who, "ids is empty");
  if (ids.size() > static_cast<std::size_t>(config_.n_positions))
    detail::fail(who, std::to_string(ids.size()) + " tokens is more than the model's context of n_positions = " +
                          std::to_string(config_.n_positions));
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= config_.vocab_size)
      detail::fail(who, "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                            " is outside the vocabulary [0, " + std::to_string(config_.vocab_size) + ")");
}

template <class Backend>
std::vector<float> BasicGPT2<Backend>::forward(const std::vector<int>& ids) const {
  check_ids(ids, "forward");
  detail::InferenceState s(config_);
  detail::forward_hidden<Backend>(config_, store_->w, s, ids.data(), ids.size());
  std::vector<float> out(ids.size() * static_cast<std::size_t>(config_.vocab_size));
  detail::lm_head<Backend>(config_, store_->w, s.x.data(), ids.size(), out.data());
  return out;
}

template <class Backend>
std::vector<float> BasicGPT2<Backend>::logits(const std::vector<int>& ids) const {
  check_ids(ids, "logits");
  detail::InferenceState s(config_);
  detail::forward_hidden<Backend>(config_, store_->w, s, ids.data(), ids.size());
  std::vector<float> out(static_cast<std::size_t>(config_.vocab_size));
  const std::size_t C = static_cast<std::size_t>(config_.n_embd);
  detail::lm_head<Backend>(config_, store_->w, s.x.data() + (ids.size() - 1) * C, 1, out.data());
  return out;
}

template <class Backend>
std::vector<int> BasicGPT2<Backend>::generate(const std::vector<int>& input_ids, const GenerationConfig& cfg) const {
  cfg.validate();
  check_ids(input_ids, "generate");
  const std::size_t n_ctx = static_cast<std::size_t>(config_.n_positions);
  const std::size_t V = static_cast<std::size_t>(config_.vocab_size), C = static_cast<std::size_t>(config_.n_embd);
  std::size_t budget = cfg.max_new_tokens >= 0
                           ? static_cast<std::size_t>(cfg.max_new_tokens)
                           : (static_cast<std::size_t>(cfg.max_length) > input_ids.size()
                                  ? static_cast<std::size_t>(cfg.max_length) - input_ids.size() : 0);
  budget = std::min(budget, n_ctx - input_ids.size());  // the model has no positions past n_positions
  for (int id : cfg.eos_token_id)
    if (id < 0 || id >= config_.vocab_size)
      detail::fail("GenerationConfig.eos_token_id", std::to_string(id) + " is not a token id of this model");
  const std::vector<int>& eos = cfg.eos_token_id.empty() ? eos_ : cfg.eos_token_id;

  std::vector<int> ids = input_ids;
  if (budget == 0) return ids;
  ids.reserve(input_ids.size() + budget);
  detail::InferenceState s(config_);
  s.logits.resize(V);
  std::mt19937_64 rng(cfg.seed);
  detail::forward_hidden<Backend>(config_, store_->w, s, ids.data(), ids.size());  // the prompt, once
  const float* last = s.x.data() + (ids.size() - 1) * C;
  for (std::size_t step = 0;; ++step) {
    detail::lm_head<Backend>(config_, store_->w, last, 1, s.logits.data());
    const int next = cfg.do_sample ? detail::sample(s.logits.data(), V, cfg, rng) : detail::argmax(s.logits.data(), V);
    ids.push_back(next);
    if (step + 1 == budget || std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    detail::forward_hidden<Backend>(config_, store_->w, s, &ids.back(), 1);  // one token against the cache
    last = s.x.data();
  }
  return ids;
}

template <class Backend>
std::string BasicGPT2<Backend>::generate_text(std::string_view prompt, int max_length) const {
  const Tokenizer& tok = tokenizer();
  std::vector<int> ids = tok.encode(prompt);
  if (ids.empty()) {  // like HF's generate() without inputs: start from bos_token_id
    if (config_.bos_token_id < 0) detail::fail("generate_text", "the prompt is empty and the model has no bos_token_id");
    ids.push_back(config_.bos_token_id);
  }
  GenerationConfig cfg;
  cfg.max_length = max_length;
  return tok.decode_text(generate(ids, cfg), /*skip_special_tokens=*/true);
}

}  // namespace tinyllm
