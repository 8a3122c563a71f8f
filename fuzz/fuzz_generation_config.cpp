// Fuzz target: GenerationConfig with arbitrary field values (NaN, infinities, negatives, huge counts,
// odd strings). validate() either throws an Error naming a GenerationConfig field or accepts; a config
// it accepts generates on a small model (tests/fixtures/f32-hub, 64 positions) without a crash, within
// max_length and the model's context, returning the sequences it promises.
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t
#include <string>   // std::string
#include <vector>   // std::vector

#include <tinyllm/gpt2.hpp>

#include "fuzz.hpp"

namespace {

// Mostly small values, sometimes anything: the edges matter more than the middle.
int small_int(fuzz::Input& in, int scale = 1) {
  const std::uint8_t k = in.byte();
  return k < 200 ? (k % 8 - 1) * scale : in.i32();
}
float small_float(fuzz::Input& in) {
  const std::uint8_t k = in.byte();
  return k < 128 ? (k % 16) / 8.0f : in.f32();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tinyllm::GPT2 model = tinyllm::GPT2::from_pretrained(fuzz::fixture("f32-hub"));
  const int V = model.config().vocab_size;
  fuzz::Input in(data, size);
  tinyllm::GenerationConfig cfg;
  cfg.max_length = small_int(in, 3);
  cfg.max_new_tokens = small_int(in);
  cfg.do_sample = in.byte() & 1;
  cfg.temperature = small_float(in);
  cfg.top_k = small_int(in, 40);
  cfg.top_p = small_float(in);
  cfg.seed = in.u32();
  for (int n = in.byte() % 3; n > 0; --n) cfg.eos_token_id.push_back(small_int(in, 50));
  cfg.min_length = small_int(in);
  cfg.min_new_tokens = small_int(in);
  for (int n = in.byte() % 3; n > 0; --n) cfg.stop_strings.push_back(in.str(4));
  cfg.repetition_penalty = small_float(in);
  cfg.no_repeat_ngram_size = small_int(in);
  for (int n = in.byte() % 3; n > 0; --n) {
    cfg.bad_words_ids.emplace_back();
    for (int k = in.byte() % 3; k > 0; --k) cfg.bad_words_ids.back().push_back(small_int(in, 50));
  }
  cfg.min_p = small_float(in);
  cfg.typical_p = small_float(in);
  cfg.num_beams = small_int(in);
  cfg.length_penalty = small_float(in) - 1.0f;
  cfg.early_stopping = tinyllm::EarlyStopping(static_cast<bool>(in.byte() & 1));
  cfg.num_return_sequences = small_int(in);
  cfg.top_logprobs = small_int(in);
  cfg.prompt_lookup_num_tokens = small_int(in);
  cfg.max_matching_ngram_size = small_int(in);
  try {
    cfg.num_assistant_tokens_schedule = in.str(20);
    if (cfg.num_assistant_tokens_schedule.empty()) cfg.num_assistant_tokens_schedule = "constant";
    cfg.validate();
  } catch (const tinyllm::Error& e) {
    FUZZ_CHECK(std::string(e.what()).rfind("GenerationConfig.", 0) == 0);
    return 0;
  }
  // Accepted: it must run. A prompt from the rest of the input (up to 8 ids).
  std::vector<int> prompt;
  for (int n = in.byte() % 8 + 1; n > 0; --n) prompt.push_back(in.byte() % V);
  if (cfg.num_beams * cfg.num_return_sequences > 16) return 0;  // valid, but slow to fuzz
  try {
    const auto results = model.generate_with_scores(prompt, cfg);
    FUZZ_CHECK(results.size() == static_cast<std::size_t>(cfg.num_return_sequences));
    for (const auto& r : results) {
      FUZZ_CHECK(r.sequence.size() >= prompt.size());
      FUZZ_CHECK(r.sequence.size() <= static_cast<std::size_t>(model.config().n_positions) ||
                 r.sequence.size() == prompt.size());
      for (int id : r.sequence) FUZZ_CHECK(id >= 0 && id < V);
    }
  } catch (const tinyllm::Error& e) {
    // Ids the model does not have (eos_token_id, bad_words_ids) are the model's to reject.
    FUZZ_CHECK(std::string(e.what()).rfind("GenerationConfig.", 0) == 0);
  }
  return 0;
}
