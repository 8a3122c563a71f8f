// tinyllm generate: continue a prompt, streaming the text to stdout. The flags are GenerationConfig's
// fields by the same names (--max_new_tokens or --max-new-tokens); timing goes to stderr.
#include <cstdio>    // std::fprintf, std::snprintf
#include <iostream>  // std::cout
#include <memory>    // std::make_shared
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include "cli.hpp"

namespace tinyllm::cli {
namespace {

struct GenerateArgs {
  std::string model, prompt, early_stopping = "false", assistant, assistant_type;
  bool amx = false;
  std::vector<std::string> bad_words;
  std::vector<int> bad_words_ids;
  GenerationConfig cfg;
};

void add_flags(CLI::App& app, GenerateArgs& a) {
  auto& c = a.cfg;
  c.max_new_tokens = 50;  // the tool's default; HF's max_length = 20 counts the prompt
  app.add_option("-m,--model", a.model, "Hugging Face GPT-2 folder")->required();
  app.add_flag("--amx", a.amx, "read the prompt on AMX bf16 tiles (faster, not exact; needs AMX)");
  app.add_option("-p,--prompt", a.prompt, "text to continue (empty: start from <|endoftext|>)");
  app.add_option("--max_length,--max-length", c.max_length, "prompt + new tokens (used when --max_new_tokens is -1)")
      ->capture_default_str();
  app.add_option("-n,--max_new_tokens,--max-new-tokens", c.max_new_tokens, "new tokens at most (-1: use --max_length)")
      ->capture_default_str();
  app.add_option("--min_length,--min-length", c.min_length, "no eos before prompt + new tokens reach this")
      ->capture_default_str();
  app.add_option("--min_new_tokens,--min-new-tokens", c.min_new_tokens, "no eos before this many new tokens")
      ->capture_default_str();
  app.add_flag("--do_sample,--do-sample", c.do_sample, "sample instead of greedy / beam search");
  app.add_option("--temperature", c.temperature, "sampling temperature")->capture_default_str();
  app.add_option("--top_k,--top-k", c.top_k, "keep the k most likely tokens (0: all)")->capture_default_str();
  app.add_option("--top_p,--top-p", c.top_p, "nucleus: keep the smallest set with this probability")
      ->capture_default_str();
  app.add_option("--min_p,--min-p", c.min_p, "keep tokens with p >= min_p * the top p (0: off)")->capture_default_str();
  app.add_option("--typical_p,--typical-p", c.typical_p, "locally typical sampling mass (1: off)")
      ->capture_default_str();
  app.add_option("--repetition_penalty,--repetition-penalty", c.repetition_penalty, "> 1 discourages repeats")
      ->capture_default_str();
  app.add_option("--no_repeat_ngram_size,--no-repeat-ngram-size", c.no_repeat_ngram_size,
                 "no n-gram of this size twice")
      ->capture_default_str();
  app.add_option("--bad_words", a.bad_words, "text that must not be generated (with and without a leading space)");
  app.add_option("--bad_words_ids,--bad-words-ids", a.bad_words_ids,
                 "one token sequence that must not be generated: ids, comma-separated")
      ->delimiter(',');
  app.add_option("--num_beams,--num-beams", c.num_beams, "beam search with this many beams")->capture_default_str();
  app.add_option("--length_penalty,--length-penalty", c.length_penalty, "beam score / new tokens ^ length_penalty")
      ->capture_default_str();
  app.add_option("--early_stopping,--early-stopping", a.early_stopping, "beam search: true, false or never")
      ->check(CLI::IsMember({"true", "false", "never"}))
      ->capture_default_str();
  app.add_option("--num_return_sequences,--num-return-sequences", c.num_return_sequences, "sequences to return")
      ->capture_default_str();
  app.add_option("--eos_token_id,--eos-token-id", c.eos_token_id, "stop tokens (default: the model's)")->delimiter(',');
  app.add_option("--stop_strings,--stop-strings,--stop", c.stop_strings, "stop when the text ends with one of these");
  app.add_option("--seed", c.seed, "random seed for sampling")->capture_default_str();
  app.add_option("--top_logprobs,--top-logprobs", c.top_logprobs,
                 "print each token's log-prob and this many alternatives");
  // speculative decoding
  app.add_option("--prompt_lookup_num_tokens,--prompt-lookup-num-tokens", c.prompt_lookup_num_tokens,
                 "speculative: propose up to N ids copied from earlier context (0: off)")
      ->capture_default_str();
  app.add_option("--max_matching_ngram_size,--max-matching-ngram-size", c.max_matching_ngram_size,
                 "prompt lookup: the longest n-gram matched")
      ->capture_default_str();
  app.add_option("--assistant_model,--assistant-model", a.assistant,
                 "speculative: a draft model folder with the same vocabulary");
  app.add_option("--assistant_type,--assistant-type", a.assistant_type, "load the draft model's weights as this type")
      ->check(CLI::IsMember(weight_type_names));
  app.add_option("--num_assistant_tokens,--num-assistant-tokens", c.num_assistant_tokens,
                 "draft model: proposals per pass")
      ->capture_default_str();
  app.add_option("--num_assistant_tokens_schedule,--num-assistant-tokens-schedule", c.num_assistant_tokens_schedule,
                 "constant, heuristic or heuristic_transient")
      ->capture_default_str();
  app.add_option("--assistant_confidence_threshold,--assistant-confidence-threshold",
                 c.assistant_confidence_threshold, "draft model: stop proposing after a token with p below this")
      ->capture_default_str();
}

std::string speculation_line(const SpeculationStats& st) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "; speculative: %zu proposed, %zu accepted (%.0f%%), %.2f tokens per pass", st.proposed,
                st.accepted, 100 * st.acceptance_rate(), st.tokens_per_pass());
  return buf;
}

int run_generate(GenerateArgs& a) {
  const auto model = load(a.model, "", a.amx);
  const auto& tok = model.tokenizer();
  GenerationConfig cfg = a.cfg;
  std::optional<GPT2> assistant;
  if (!a.assistant.empty()) {
    assistant = load(a.assistant, a.assistant_type);
    cfg.assistant_model = *assistant;
  }
  const bool speculative = cfg.prompt_lookup_num_tokens > 0 || cfg.assistant_model;
  cfg.early_stopping = a.early_stopping.c_str();
  for (const std::string& w : a.bad_words)
    for (const std::string& form : {w, " " + w}) cfg.bad_words_ids.push_back(tok.encode_ordinary(form));
  if (!a.bad_words_ids.empty()) cfg.bad_words_ids.push_back(a.bad_words_ids);
  std::vector<int> prompt = tok.encode(a.prompt);
  if (prompt.empty()) prompt.push_back(model.config().bos_token_id);
  std::cout << a.prompt << std::flush;

  const auto t0 = Clock::now();
  if (cfg.num_beams == 1 && cfg.num_return_sequences == 1 && cfg.top_logprobs == 0) {
    // Stream: print each complete UTF-8 piece as soon as it exists.
    TokenStreamDecoder decoder(tok);
    double first_ms = 0;
    std::size_t generated = 0;
    auto on_token = [&](int id) {
      if (generated++ == 0) first_ms = ms_since(t0);  // prefill + the first token
      std::cout << decoder.push(id) << std::flush;
    };
    std::string extra;
    if (speculative)  // the result carries the statistics
      extra = speculation_line(model.generate_with_scores(prompt, cfg, on_token).speculation);
    else
      model.generate(prompt, cfg, on_token);
    std::cout << decoder.flush() << std::endl;
    const double rest_ms = ms_since(t0) - first_ms;
    std::fprintf(stderr, "[tinyllm] prompt: %zu tokens, %.1f tokens/s; generated: %zu tokens, %.1f tokens/s%s\n",
                 prompt.size(), first_ms > 0 ? 1e3 * static_cast<double>(prompt.size()) / first_ms : 0.0, generated,
                 generated > 1 && rest_ms > 0 ? 1e3 * static_cast<double>(generated - 1) / rest_ms : 0.0,
                 extra.c_str());
    return 0;
  }
  // Beams, several sequences or log-probs: the results come at the end.
  const auto results = model.generate_with_scores(prompt, cfg);
  const double total_ms = ms_since(t0);
  std::size_t generated = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    generated += r.new_ids().size();
    if (i > 0) std::cout << a.prompt;  // each sequence in full, as HF decodes them
    std::cout << tok.decode_text(r.new_ids(), true) << "\n";
    if (results.size() > 1 || cfg.num_beams > 1)
      std::fprintf(stderr, "[tinyllm] sequence %zu: %zu new tokens, score %.4f\n", i, r.new_ids().size(),
                   r.sequence_score);
    for (std::size_t t = 0; cfg.top_logprobs > 0 && t < r.top_logprobs.size(); ++t) {
      std::fprintf(stderr, "  %-16s %8.4f  |", ("'" + tok.decode_text({r.sequence[r.prompt_length + t]}) + "'").c_str(),
                   r.logprobs[t]);
      for (const auto& alt : r.top_logprobs[t])
        std::fprintf(stderr, " '%s' %.3f", tok.decode_text({alt.id}).c_str(), alt.logprob);
      std::fputc('\n', stderr);
    }
  }
  SpeculationStats st;
  for (const auto& r : results) {
    st.proposed += r.speculation.proposed;
    st.accepted += r.speculation.accepted;
    st.target_passes += r.speculation.target_passes;
    st.generated += r.speculation.generated;
  }
  std::fprintf(
      stderr, "[tinyllm] prompt: %zu tokens; generated: %zu tokens in %.0f ms, %.1f tokens/s (prompt included)%s\n",
      prompt.size(), generated, total_ms, total_ms > 0 ? 1e3 * static_cast<double>(generated) / total_ms : 0.0,
      speculative ? speculation_line(st).c_str() : "");
  return 0;
}

}  // namespace

Command add_generate(CLI::App& tool) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* app = tool.add_subcommand("generate", "continue a prompt, streaming the text to stdout");
  add_flags(*app, *args);
  return {app, [args] { return run_generate(*args); }};
}

}  // namespace tinyllm::cli
