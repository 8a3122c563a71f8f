// Quality of each weight type, measured: the demo model (models/tiny-sotu) as F16, BF16 and Q8
// against itself as F32 on text it never trained on (benchmarks/data/heldout.txt, Moby-Dick chapters):
// perplexity and its change from F32, next-token top-1 agreement with F32, mean KL(F32 || type), and
// whether the bars hold (F16/BF16 perplexity within +0.5% of F32, Q8 within +2% and top-1
// agreement >= 97%). Windows of n_positions tokens, disjoint (stride = window) unless --stride.
//
// Usage: bench_quality [--model DIR] [--file TEXT] [--threads N] [--max-tokens N] [--stride N] [--json FILE]
#include <chrono>      // std::chrono::steady_clock
#include <cstdio>      // std::printf
#include <cstdlib>     // std::atoi
#include <filesystem>  // std::filesystem::path
#include <fstream>     // std::ifstream
#include <sstream>     // std::ostringstream
#include <string>      // std::string
#include <vector>      // std::vector

#include <tinyllm/gpt2.hpp>
#include <tinyllm/perplexity.hpp>

#include "json_output.hpp"

int main(int argc, char** argv) {
  std::string dir = std::string(TINYLLM_SOURCE_DIR) + "/models/tiny-sotu";
  std::string file = std::string(TINYLLM_SOURCE_DIR) + "/benchmarks/data/heldout.txt";
  int threads = 2, stride = 0;
  std::string json_path;
  std::size_t max_tokens = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model")
      dir = argv[i + 1];
    else if (a == "--file")
      file = argv[i + 1];
    else if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--max-tokens")
      max_tokens = static_cast<std::size_t>(std::atol(argv[i + 1]));
    else if (a == "--stride")
      stride = std::atoi(argv[i + 1]);
    else if (a == "--json")
      json_path = argv[i + 1];
  }
  tinyllm::set_num_threads(threads);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot open\n", file.c_str());
    return 1;
  }
  std::ostringstream text;
  text << in.rdbuf();

  tinyllm::LoadOptions f32;
  f32.weight_type = tinyllm::WeightType::F32;
  const auto reference = tinyllm::GPT2::from_pretrained(dir, f32);
  std::vector<int> ids = reference.tokenizer().encode_ordinary(text.str());
  if (max_tokens && ids.size() > max_tokens) ids.resize(max_tokens);
  const int window = reference.config().n_positions;
  if (stride == 0) stride = window;
  const auto stored = tinyllm::GPT2::from_pretrained(dir).weights().h.front().mlp_c_fc.weight.type;
  std::printf("model %s (matrices stored as %s%s), text %s: %zu tokens, windows of %d every %d, %d threads\n\n",
              dir.c_str(), tinyllm::weight_type_name(stored),
              stored == tinyllm::WeightType::F16 ? ": F16 is exact" : "", file.c_str(), ids.size(), window, stride,
              threads);
  std::printf("%-5s %12s %9s %14s %14s %10s  %s\n", "type", "perplexity", "vs f32", "top-1 vs f32", "KL(f32||type)",
              "tokens/s", "bar");

  bool all_pass = true;
  double f32_ppl = 0;
  bench::json out = {{"model", "tiny-sotu"}, {"stored_as", tinyllm::weight_type_name(stored)},
                     {"text", std::filesystem::path(file).filename().string()}, {"tokens", ids.size()},
                     {"window", window}, {"stride", stride}};
  auto add_row = [&](const char* type, const tinyllm::ComparisonStats& st, double change) {
    out["types"].push_back({{"type", type}, {"perplexity", st.model.perplexity()}, {"change", change},
                            {"top1_agreement", st.top1_agreement()}, {"mean_kl", st.mean_kl()}});
  };
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16,
                    tinyllm::WeightType::Q8}) {
    tinyllm::LoadOptions opts;
    opts.weight_type = type;
    const auto model = tinyllm::GPT2::from_pretrained(dir, opts);
    const auto t0 = std::chrono::steady_clock::now();
    tinyllm::ComparisonStats st;
    if (type == tinyllm::WeightType::F32) {  // the reference alone
      st.model = st.reference = tinyllm::perplexity(model, ids, window, stride);
      st.agree = st.model.tokens;
      f32_ppl = st.model.perplexity();
    } else {
      st = tinyllm::compare(model, reference, ids, window, stride);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double change = st.model.perplexity() / f32_ppl - 1;
    const bool q8 = type == tinyllm::WeightType::Q8;
    const bool pass = type == tinyllm::WeightType::F32 ||
                      (q8 ? change <= 0.02 && st.top1_agreement() >= 0.97 : change <= 0.005);
    all_pass = all_pass && pass;
    std::printf("%-5s %12.4f %+8.3f%% %13.2f%% %14.6f %10.0f  %s\n", tinyllm::weight_type_name(type),
                st.model.perplexity(), 100 * change, 100 * st.top1_agreement(), st.mean_kl(),
                static_cast<double>(st.model.tokens) / s,
                type == tinyllm::WeightType::F32 ? "(reference)"
                : q8 ? (pass ? "ppl <= +2%, top-1 >= 97%: yes" : "ppl <= +2%, top-1 >= 97%: NO")
                     : (pass ? "ppl <= +0.5%: yes" : "ppl <= +0.5%: NO"));
    std::fflush(stdout);
    add_row(tinyllm::weight_type_name(type), st, change);
  }
  if (tinyllm::amx_available()) {  // F32 weights, prompts (these windows) on bf16 AMX tiles
    tinyllm::LoadOptions opts = f32;
    opts.amx = true;
    const auto model = tinyllm::GPT2::from_pretrained(dir, opts);
    const auto t0 = std::chrono::steady_clock::now();
    const tinyllm::ComparisonStats st = tinyllm::compare(model, reference, ids, window, stride);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double change = st.model.perplexity() / f32_ppl - 1;
    const bool pass = change <= 0.005;
    all_pass = all_pass && pass;
    std::printf("%-5s %12.4f %+8.3f%% %13.2f%% %14.6f %10.0f  %s\n", "amx", st.model.perplexity(), 100 * change,
                100 * st.top1_agreement(), st.mean_kl(), static_cast<double>(st.model.tokens) / s,
                pass ? "ppl <= +0.5%: yes (F32 weights, LoadOptions::amx)" : "ppl <= +0.5%: NO (F32 weights, LoadOptions::amx)");
    add_row("amx", st, change);
  }
  out["pass"] = all_pass;
  bench::write_json(json_path, "bench_quality", out);
  return all_pass ? 0 : 2;
}
