// Speculative decoding against plain greedy decoding, side by side in one run: tokens/s of plain
// greedy, prompt lookup (prompt_lookup_num_tokens) and a draft model (assistant_model), with each
// method's acceptance figures, and a check that all three produce the same tokens.
//
// Models: the random GPT-2-124M-shaped folder (F32, written once into the build folder; greedy
// decoding of random weights repeats itself, which prompt lookup exploits, after some prompts less:
// the last three prompts are among the weakest of 80 tried) and the demo model. The
// draft model is the same folder loaded as Q8: ~4x fewer weight bytes and >99% top-1 agreement
// with F32 (bench_quality), so most of its proposals are accepted: it proposes 5 tokens per pass
// with no confidence threshold (HF's default 0.4 stops after one token on the flat distributions of
// random weights; --draft-tokens, --draft-threshold, --schedule change this).
//
// Each figure is the median of --repeat interleaved runs (shared machines are noisy).
// Usage: bench_speculative [--model DIR] [--threads N] [--tokens N] [--repeat R] [--lookup K]
//                          [--draft-tokens N] [--draft-threshold P] [--schedule constant|heuristic] [--json FILE]
#include <algorithm>  // std::sort
#include <chrono>     // std::chrono::steady_clock
#include <cstdio>     // std::printf
#include <cstdlib>    // std::atoi, std::atof
#include <string>     // std::string
#include <vector>     // std::vector

#include <tinyllm/gpt2.hpp>

#include "json_output.hpp"
#include "random_gpt2.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Method {
  const char* name;
  tinyllm::GenerationConfig cfg;
  double seconds = 0;                  // sum over prompts of the median time
  tinyllm::SpeculationStats total;     // summed over prompts
  bool same = true;                    // the same tokens as plain greedy on every prompt
};

struct Options {
  int threads = 2, tokens = 64, repeat = 5, lookup = 10, draft_tokens = 5;
  float draft_threshold = 0.0f;  // HF's 0.4 stops a draft early on the flat distributions of random weights
  std::string schedule = "constant";
};

// Plain greedy, prompt lookup and the draft model on one model, for each prompt; returns whether all
// methods gave the same tokens, and adds the figures to `out`.
bool compare(const char* title, const tinyllm::GPT2& model, const tinyllm::GPT2& draft,
             const std::vector<std::string>& prompts, const Options& o, bench::json& out) {
  bench::json fig = {{"model", title}, {"tokens", o.tokens}};
  tinyllm::GenerationConfig base;
  base.max_new_tokens = o.tokens;
  base.min_new_tokens = o.tokens;  // eos cannot end a run early
  std::vector<Method> methods(3, Method{"", base});
  methods[0].name = "plain greedy";
  methods[1].name = "prompt lookup";
  methods[1].cfg.prompt_lookup_num_tokens = o.lookup;
  methods[2].name = "draft model (Q8)";
  methods[2].cfg.assistant_model = draft;
  methods[2].cfg.num_assistant_tokens = o.draft_tokens;
  methods[2].cfg.assistant_confidence_threshold = o.draft_threshold;
  methods[2].cfg.num_assistant_tokens_schedule = o.schedule;
  std::printf("\n%s: %d new tokens after each prompt, greedy\n", title, o.tokens);
  std::printf("  %-30s %-18s %9s %7s %9s %9s %12s %5s\n", "prompt", "method", "tokens/s", "ratio", "proposed",
              "accepted", "tokens/pass", "same");
  for (const std::string& prompt : prompts) {
    const std::vector<int> ids = model.tokenizer().encode(prompt);
    model.generate(ids, base);  // warm up: page in the weights
    draft.generate(ids, base);
    std::vector<std::vector<double>> seconds(methods.size());
    std::vector<tinyllm::GenerationResult> last(methods.size());
    for (int r = 0; r < o.repeat; ++r)
      for (std::size_t m = 0; m < methods.size(); ++m) {
        const auto t0 = std::chrono::steady_clock::now();
        last[m] = model.generate_with_scores(ids, methods[m].cfg, [](int) { return true; });
        seconds[m].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    const double plain = median(seconds[0]);
    for (std::size_t m = 0; m < methods.size(); ++m) {
      const double sec = median(seconds[m]);
      const auto& st = last[m].speculation;
      const bool eq = last[m].sequence == last[0].sequence;
      Method& me = methods[m];
      me.seconds += sec;
      me.same = me.same && eq;
      me.total.proposed += st.proposed;
      me.total.accepted += st.accepted;
      me.total.target_passes += m == 0 ? static_cast<std::size_t>(o.tokens) : st.target_passes;
      me.total.generated += static_cast<std::size_t>(o.tokens);
      std::printf("  %-30s %-18s %9.1f %6.2fx %9zu %8.0f%% %12.2f %5s\n",
                  ("\"" + prompt.substr(0, 26) + "\"").c_str(), me.name, o.tokens / sec, plain / sec, st.proposed,
                  100 * st.acceptance_rate(), m == 0 ? 1.0 : st.tokens_per_pass(), eq ? "yes" : "NO");
      fig["prompts"].push_back({{"prompt", prompt}, {"method", me.name}, {"tokens_per_s", o.tokens / sec},
                                {"ratio", plain / sec}, {"acceptance_rate", st.acceptance_rate()},
                                {"tokens_per_pass", m == 0 ? 1.0 : st.tokens_per_pass()}, {"same", eq}});
    }
  }
  bool same = true;
  for (const Method& me : methods) {
    same = same && me.same;
    std::printf("  %-30s %-18s %9.1f %6.2fx %9zu %8.0f%% %12.2f %5s\n", "all prompts", me.name,
                static_cast<double>(me.total.generated) / me.seconds, methods[0].seconds / me.seconds,
                me.total.proposed, 100 * me.total.acceptance_rate(), me.total.tokens_per_pass(),
                me.same ? "yes" : "NO");
    fig["all_prompts"].push_back({{"method", me.name},
                                  {"tokens_per_s", static_cast<double>(me.total.generated) / me.seconds},
                                  {"ratio", methods[0].seconds / me.seconds},
                                  {"acceptance_rate", me.total.acceptance_rate()},
                                  {"tokens_per_pass", me.total.tokens_per_pass()},
                                  {"same", me.same}});
  }
  out["models"].push_back(fig);
  return same;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = TINYLLM_BENCH_MODEL_DIR;
  Options o;
  std::string json_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model")
      dir = argv[i + 1];
    else if (a == "--threads")
      o.threads = std::atoi(argv[i + 1]);
    else if (a == "--tokens")
      o.tokens = std::atoi(argv[i + 1]);
    else if (a == "--repeat")
      o.repeat = std::atoi(argv[i + 1]);
    else if (a == "--lookup")
      o.lookup = std::atoi(argv[i + 1]);
    else if (a == "--draft-tokens")
      o.draft_tokens = std::atoi(argv[i + 1]);
    else if (a == "--draft-threshold")
      o.draft_threshold = static_cast<float>(std::atof(argv[i + 1]));
    else if (a == "--schedule")
      o.schedule = argv[i + 1];
    else if (a == "--json")
      json_path = argv[i + 1];
  }
  const std::string demo = std::string(TINYLLM_SOURCE_DIR) + "/models/tiny-sotu";
  if (dir == TINYLLM_BENCH_MODEL_DIR) {
    std::printf("model: %s (written afresh)\n", dir.c_str());
    bench::write_random_gpt2(dir, tinyllm::GPT2Config{}, false, demo);
  }
  tinyllm::set_num_threads(o.threads);
  tinyllm::LoadOptions f32, q8;
  f32.weight_type = tinyllm::WeightType::F32;
  q8.weight_type = tinyllm::WeightType::Q8;
  std::printf("threads %d, median of %d interleaved runs; prompt lookup: %d tokens, n-grams up to 2; draft model: "
              "%d tokens, confidence threshold %.2f, schedule %s\n",
              o.threads, o.repeat, o.lookup, o.draft_tokens, o.draft_threshold, o.schedule.c_str());
  bool same = true;
  bench::json out = {{"threads", o.threads}, {"lookup", o.lookup}, {"draft_tokens", o.draft_tokens}};
  {
    const auto model = tinyllm::GPT2::from_pretrained(dir, f32);
    const auto draft = tinyllm::GPT2::from_pretrained(dir, q8);
    same = compare("GPT-2-124M shape, random F32 weights", model, draft, {"The state of the Union", "It was the best of times", "Call me Ishmael.", "Hello, my name is",
                    "In 1776, the", "Science is", "There are many ways to", "Please note that"}, o, out) && same;
  }
  {
    const auto model = tinyllm::GPT2::from_pretrained(demo, f32);
    const auto draft = tinyllm::GPT2::from_pretrained(demo, q8);
    same = compare("demo model (tiny-sotu) as F32", model, draft, {"The state of the Union", "Call me Ishmael."}, o, out) && same;
  }
  std::printf("\nall methods produced the same tokens: %s\n", same ? "yes" : "NO");
  out["same"] = same;
  bench::write_json(json_path, "bench_speculative", out);
  return same ? 0 : 1;
}
