// Generation for a batch of prompts, by the strategy the config asks for: beam search
// (beam_search_loop.hpp), speculative decoding (speculative_loop.hpp), or greedy search and sampling
// (decode_batch.hpp), whose prompts advance together, one token per step.
// Depends on generation/.
#pragma once

#include <cstddef>  // std::size_t
#include <vector>   // std::vector

#include "beam_search_loop.hpp"
#include "config.hpp"
#include "decode_batch.hpp"
#include "output.hpp"
#include "sequence.hpp"
#include "speculative_loop.hpp"

namespace tinyllm::detail {

// num_return_sequences results per prompt, in prompt order. cfg is validated, eos checked
// (checked_eos); scores: record log-probs; on_token: called after each new id of every sequence.
template <class Backend>
std::vector<GenerationResult> run_generation(const ModelRef& m, std::vector<PromptState>& prompts,
                                             const GenerationConfig& cfg, const std::vector<int>& eos, bool scores,
                                             const TokenCallback& on_token) {
  const std::size_t R = static_cast<std::size_t>(cfg.num_return_sequences);
  std::vector<GenerationResult> results(prompts.size() * R);
  for (std::size_t p = 0; p < prompts.size(); ++p)  // what a prompt with nothing to generate returns
    for (std::size_t r = 0; r < R; ++r) {
      results[p * R + r].sequence = prompts[p].ids;
      results[p * R + r].prompt_length = prompts[p].ids.size();
    }
  const SequenceOptions opts{&cfg, eos, 0, scores, on_token};
  if (cfg.num_beams > 1)
    BeamSearchLoop<Backend>(m, cfg, eos, scores).run(prompts, results);
  else if (cfg.prompt_lookup_num_tokens > 0 || cfg.assistant_model)
    run_speculative<Backend>(m, prompts, opts, results);
  else
    run_sampling<Backend>(m, prompts, opts, results);
  return results;
}

}  // namespace tinyllm::detail
