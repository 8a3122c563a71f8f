// GenerationResult: one generated sequence with the scores Hugging Face's generate() returns under
// output_scores=True / return_dict_in_generate=True, plus the n best alternatives of each token.
// Depends on nothing else in tinyllm.
#pragma once

#include <cstddef>  // std::size_t
#include <vector>   // std::vector

namespace tinyllm {

struct TokenLogprob {
  int id = 0;
  float logprob = 0.0f;
};

enum class FinishReason {
  length,       // max_length / max_new_tokens, or the model's n_positions
  eos,          // an eos_token_id was generated (it is the last id)
  stop_string,  // the text ends with one of stop_strings (the last token may reach past it)
  stopped,      // the streaming callback returned false
};

// What speculative decoding did for one sequence (all zero without it).
struct SpeculationStats {
  std::size_t proposed = 0;       // ids proposed (prompt lookup or the assistant model)
  std::size_t accepted = 0;       // proposed ids the model accepted
  std::size_t target_passes = 0;  // forward passes of the model that each produced >= 1 new id
  std::size_t draft_passes = 0;   // forward passes of the assistant model
  std::size_t generated = 0;      // new ids
  double acceptance_rate() const { return proposed ? static_cast<double>(accepted) / static_cast<double>(proposed) : 0; }
  double tokens_per_pass() const {
    return target_passes ? static_cast<double>(generated) / static_cast<double>(target_passes) : 0;
  }
};

struct GenerationResult {
  std::vector<int> sequence;  // prompt + new ids, as generate() returns
  std::size_t prompt_length = 0;
  // Per new id: its log-probability under the distribution it was chosen from, i.e. log_softmax of the
  // processed scores (HF: compute_transition_scores(..., normalize_logits=True)).
  std::vector<float> logprobs;
  // Per new id: the top_logprobs most likely ids of that distribution, most likely first.
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  // Beam search: HF's sequences_scores (sum of log-probs / new tokens ^ length_penalty).
  // Otherwise: the sum of logprobs.
  float sequence_score = 0.0f;
  FinishReason finish_reason = FinishReason::length;
  SpeculationStats speculation;  // assistant_model / prompt_lookup_num_tokens only

  std::vector<int> new_ids() const {
    return std::vector<int>(sequence.begin() + static_cast<std::ptrdiff_t>(prompt_length), sequence.end());
  }
};

}  // namespace tinyllm
