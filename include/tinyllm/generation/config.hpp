// GenerationConfig: the knobs of generate(), with Hugging Face's names, defaults and meanings.
// Depends on error.hpp only.
#pragma once

#include <cmath>    // std::isfinite
#include <cstdint>  // std::uint64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "../error.hpp"

namespace tinyllm {

struct GenerationConfig {
  int max_length = 20;          // prompt + new tokens (HF's default); stops at the model's n_positions
  int max_new_tokens = -1;      // when >= 0 it wins over max_length
  bool do_sample = false;       // false: greedy
  float temperature = 1.0f;     // sampling: logits / temperature
  int top_k = 50;               // sampling: keep the k most likely tokens (0: all)
  float top_p = 1.0f;           // sampling: keep the smallest set with probability >= top_p (1: all)
  std::uint64_t seed = 0;       // sampling: same seed + config + model -> same tokens
  std::vector<int> eos_token_id;  // stop tokens; empty: the model's (generation_config.json / config.json)

  // Throws Error naming the field when a value is out of range.
  void validate() const {
    auto bad = [](const std::string& field, const std::string& why) { detail::fail("GenerationConfig." + field, why); };
    if (max_length < 0) bad("max_length", "is " + std::to_string(max_length) + ", must be >= 0");
    if (max_new_tokens < -1) bad("max_new_tokens", "is " + std::to_string(max_new_tokens) + ", must be >= 0 (or -1: use max_length)");
    if (do_sample) {
      if (!(temperature > 0.0f) || !std::isfinite(temperature))
        bad("temperature", "is " + std::to_string(temperature) + ", must be > 0 when do_sample is true");
      if (!(top_p > 0.0f && top_p <= 1.0f)) bad("top_p", "is " + std::to_string(top_p) + ", must be in (0, 1]");
    }
    if (top_k < 0) bad("top_k", "is " + std::to_string(top_k) + ", must be >= 0 (0: no top-k)");
  }
};

}  // namespace tinyllm
