// tinyllm: the command-line tool.
//
//   tinyllm generate   -m DIR -p PROMPT [--max_new_tokens N --do_sample --top_p 0.9 ...
//                      --prompt_lookup_num_tokens 10 | --assistant_model DIR ...]
//   tinyllm tokenize   -m DIR (-p TEXT | -f FILE) [--show]
//   tinyllm perplexity -m DIR -f FILE [--window N --stride N --type q8 --compare-f32 | --reference DIR]
//   tinyllm quantize   -m DIR -o OUT [--type q8|f16|bf16|f32]
//
// generate streams the continuation to stdout; its flags are GenerationConfig's fields, by the same
// names (--max_new_tokens, or --max-new-tokens). Timing goes to stderr: load time, prompt tokens/s,
// generated tokens/s. `tinyllm COMMAND --help` lists every flag.
#include <chrono>    // std::chrono::steady_clock
#include <cstdio>    // std::fprintf, std::fflush, std::fputs
#include <fstream>   // std::ifstream
#include <iostream>  // std::cout
#include <optional>  // std::optional
#include <sstream>   // std::ostringstream
#include <string>    // std::string
#include <vector>    // std::vector

#include <CLI/CLI.hpp>
#include <tinyllm/gpt2.hpp>
#include <tinyllm/perplexity.hpp>

#if defined(_WIN32)
#include <io.h>
#define TINYLLM_ISATTY(fd) _isatty(fd)
#else
#include <unistd.h>
#define TINYLLM_ISATTY(fd) isatty(fd)
#endif

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw tinyllm::Error(path + ": cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "f32", "f16", "bf16", "q8" (empty: the matrices as stored)
std::optional<tinyllm::WeightType> weight_type(const std::string& name) {
  for (auto t : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16, tinyllm::WeightType::Q8})
    if (name == tinyllm::weight_type_name(t)) return t;
  return std::nullopt;
}
const std::vector<std::string> weight_type_names = {"f32", "f16", "bf16", "q8"};

tinyllm::GPT2 load(const std::string& dir, const std::string& type = "", bool amx = false) {
  const auto t0 = Clock::now();
  tinyllm::LoadOptions opts;
  opts.weight_type = weight_type(type);
  opts.amx = amx;
  auto model = tinyllm::GPT2::from_pretrained(dir, opts);
  std::fprintf(stderr, "[tinyllm] loaded %s%s%s%s in %.0f ms (%d layers, n_embd %d, context %d)\n", dir.c_str(),
               type.empty() ? "" : " as ", type.c_str(), amx ? ", prompts on AMX bf16 tiles" : "", ms_since(t0),
               model.config().n_layer, model.config().n_embd, model.config().n_positions);
  return model;
}

// --- generate ------------------------------------------------------------------------------------

struct GenerateArgs {
  std::string model, prompt, early_stopping = "false", assistant, assistant_type;
  bool amx = false;
  std::vector<std::string> bad_words;
  std::vector<int> bad_words_ids;
  tinyllm::GenerationConfig cfg;
};

void add_generate(CLI::App& app, GenerateArgs& a) {
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

std::string speculation_line(const tinyllm::SpeculationStats& st) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "; speculative: %zu proposed, %zu accepted (%.0f%%), %.2f tokens per pass", st.proposed,
                st.accepted, 100 * st.acceptance_rate(), st.tokens_per_pass());
  return buf;
}

int run_generate(GenerateArgs& a) {
  const auto model = load(a.model, "", a.amx);
  const auto& tok = model.tokenizer();
  tinyllm::GenerationConfig cfg = a.cfg;
  std::optional<tinyllm::GPT2> assistant;
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
    tinyllm::TokenStreamDecoder decoder(tok);
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
  tinyllm::SpeculationStats st;
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

// --- tokenize ------------------------------------------------------------------------------------

struct TokenizeArgs {
  std::string model, text, file;
  bool show = false;
};

int run_tokenize(const TokenizeArgs& a) {
  const auto t0 = Clock::now();
  const auto tok = tinyllm::Tokenizer::from_pretrained(a.model);
  std::fprintf(stderr, "[tinyllm] tokenizer loaded in %.0f ms\n", ms_since(t0));
  const std::string text = a.file.empty() ? a.text : read_file(a.file);
  const auto t1 = Clock::now();
  const std::vector<int> ids = tok.encode(text);
  const double ms = ms_since(t1);
  if (a.show) {
    for (int id : ids) std::cout << id << "\t" << tok.decode_text({id}) << "\n";
  } else {
    for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  std::fprintf(stderr, "[tinyllm] %zu bytes -> %zu tokens in %.1f ms (%.1f MB/s)\n", text.size(), ids.size(), ms,
               ms > 0 ? static_cast<double>(text.size()) / 1e3 / ms : 0.0);
  return 0;
}

// --- perplexity ----------------------------------------------------------------------------------

struct PerplexityArgs {
  std::string model, file, type, reference;
  bool compare_f32 = false, amx = false;
  int window = 0, stride = 0;
  std::size_t max_tokens = 0;
};

int run_perplexity(const PerplexityArgs& a) {
  const auto model = load(a.model, a.type, a.amx);
  std::optional<tinyllm::GPT2> reference;  // --compare-f32: this folder as F32; --reference: another folder
  if (a.compare_f32 || !a.reference.empty()) reference = load(a.reference.empty() ? a.model : a.reference, "f32");
  std::vector<int> ids = model.tokenizer().encode_ordinary(read_file(a.file));
  if (a.max_tokens > 0 && ids.size() > a.max_tokens) ids.resize(a.max_tokens);
  if (ids.size() < 2) throw tinyllm::Error(a.file + ": fewer than 2 tokens, nothing to predict");
  const bool tty = TINYLLM_ISATTY(2);
  const auto t0 = Clock::now();
  auto progress = [&](std::size_t done, std::size_t total) {
    if (!tty) return;
    const int width = 40, filled = static_cast<int>(width * done / total);
    const double s = ms_since(t0) / 1e3;
    std::fprintf(stderr, "\r[%s%s] %3d%% %zu/%zu tokens, %.0f tokens/s ",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(),
                 static_cast<int>(100 * done / total), done, total, s > 0 ? static_cast<double>(done) / s : 0.0);
    std::fflush(stderr);
  };
  tinyllm::PerplexityStats st;
  if (reference) {
    const tinyllm::ComparisonStats cmp = tinyllm::compare(model, *reference, ids, a.window, a.stride, progress);
    if (tty) std::fputc('\n', stderr);
    st = cmp.model;
    std::printf("reference perplexity %.4f\ntop-1 agreement with reference %.4f\nmean KL(reference || model) %.6f\n",
                cmp.reference.perplexity(), cmp.top1_agreement(), cmp.mean_kl());
  } else {
    st = tinyllm::perplexity(model, ids, a.window, a.stride, progress);
    if (tty) std::fputc('\n', stderr);
  }
  const int window = a.window ? a.window : model.config().n_positions;
  std::printf("perplexity %.4f\ntop-1 accuracy %.4f\nscored tokens %zu of %zu (window %d, stride %d)\n",
              st.perplexity(), st.accuracy(), st.tokens, ids.size(), window,
              a.stride ? a.stride : std::max(1, window / 2));
  std::fprintf(stderr, "[tinyllm] %.1f s, %.0f tokens/s\n", ms_since(t0) / 1e3,
               1e3 * static_cast<double>(st.tokens) / ms_since(t0));
  return 0;
}

// --- quantize ------------------------------------------------------------------------------------

struct QuantizeArgs {
  std::string model, out, type = "q8";
};

int run_quantize(const QuantizeArgs& a) {
  const auto model = load(a.model, a.type);  // converted at load: the kernels' layout
  const auto t0 = Clock::now();
  model.save_pretrained(a.out);  // as loaded: maps with no conversion
  std::fprintf(stderr, "[tinyllm] wrote %s (%s weights) in %.0f ms\n", a.out.c_str(), a.type.c_str(), ms_since(t0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tinyllm: GPT-2 models from Hugging Face folders, on the CPU"};
  app.require_subcommand(1);
  app.fallthrough();  // --threads may come after the command
  int threads = 0;
  app.add_option("-t,--threads", threads, "threads (default: OMP_NUM_THREADS, else all cores)");

  GenerateArgs gen;
  CLI::App* g = app.add_subcommand("generate", "continue a prompt, streaming the text to stdout");
  add_generate(*g, gen);

  TokenizeArgs tk;
  CLI::App* t = app.add_subcommand("tokenize", "print the token ids of a text (GPT-2's byte-level BPE)");
  t->add_option("-m,--model", tk.model, "folder with vocab.json + merges.txt or tokenizer.json")->required();
  auto* text_opt = t->add_option("-p,--prompt,--text", tk.text, "text to tokenize");
  t->add_option("-f,--file", tk.file, "file to tokenize")->excludes(text_opt);
  t->add_flag("--show", tk.show, "one token per line: id and text");

  PerplexityArgs pp;
  CLI::App* p = app.add_subcommand("perplexity", "perplexity and next-token top-1 accuracy over a text file");
  p->add_option("-m,--model", pp.model, "Hugging Face GPT-2 folder")->required();
  p->add_option("-f,--file", pp.file, "text file")->required();
  p->add_option("--window", pp.window, "tokens per forward pass (default: the model's n_positions)");
  p->add_option("--stride", pp.stride, "tokens between windows (default: window / 2; = window: disjoint chunks)");
  p->add_option("--max_tokens,--max-tokens", pp.max_tokens, "score only the first N tokens of the file");
  p->add_option("--type", pp.type, "convert the weights at load (default: as stored)")
      ->check(CLI::IsMember(weight_type_names));
  p->add_flag("--amx", pp.amx, "windows on AMX bf16 tiles (faster, not exact; needs AMX)");
  auto* cmp = p->add_flag("--compare-f32,--compare_f32", pp.compare_f32,
                          "also run this folder as F32: top-1 agreement and mean KL divergence from it");
  p->add_option("--reference", pp.reference, "compare with this folder (loaded as F32) instead")->excludes(cmp);

  QuantizeArgs qa;
  CLI::App* q = app.add_subcommand("quantize", "write a folder whose weights load memory-mapped as --type");
  q->add_option("-m,--model", qa.model, "Hugging Face GPT-2 folder")->required();
  q->add_option("-o,--out", qa.out, "output folder (created; its files are overwritten)")->required();
  q->add_option("--type", qa.type, "weight type of the matrices")->check(CLI::IsMember(weight_type_names))
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (threads > 0) tinyllm::set_num_threads(threads);
  try {
    if (g->parsed()) return run_generate(gen);
    if (t->parsed()) return run_tokenize(tk);
    if (p->parsed()) return run_perplexity(pp);
    if (q->parsed()) return run_quantize(qa);
  } catch (const tinyllm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
