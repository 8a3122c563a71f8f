// tinyllm perplexity: perplexity and next-token top-1 accuracy over a text file, optionally against a
// reference model (top-1 agreement, mean KL divergence). A progress bar when stderr is a terminal.
#include <algorithm>  // std::max
#include <cstdio>     // std::fprintf, std::printf
#include <memory>     // std::make_shared
#include <optional>   // std::optional
#include <string>     // std::string
#include <vector>     // std::vector

#include <tinyllm/perplexity.hpp>

#include "cli.hpp"

#if defined(_WIN32)
#include <io.h>
#define TINYLLM_ISATTY(fd) _isatty(fd)
#else
#include <unistd.h>
#define TINYLLM_ISATTY(fd) isatty(fd)
#endif

namespace tinyllm::cli {
namespace {

struct PerplexityArgs {
  std::string model, file, type, reference;
  bool compare_f32 = false, amx = false;
  int window = 0, stride = 0;
  std::size_t max_tokens = 0;
};

int run_perplexity(const PerplexityArgs& a) {
  const auto model = load(a.model, a.type, a.amx);
  std::optional<GPT2> reference;  // --compare-f32: this folder as F32; --reference: another folder
  if (a.compare_f32 || !a.reference.empty()) reference = load(a.reference.empty() ? a.model : a.reference, "f32");
  std::vector<int> ids = model.tokenizer().encode_ordinary(read_file(a.file));
  if (a.max_tokens > 0 && ids.size() > a.max_tokens) ids.resize(a.max_tokens);
  if (ids.size() < 2) throw Error(a.file + ": fewer than 2 tokens, nothing to predict");
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
  PerplexityStats st;
  if (reference) {
    const ComparisonStats cmp = compare(model, *reference, ids, a.window, a.stride, progress);
    if (tty) std::fputc('\n', stderr);
    st = cmp.model;
    std::printf("reference perplexity %.4f\ntop-1 agreement with reference %.4f\nmean KL(reference || model) %.6f\n",
                cmp.reference.perplexity(), cmp.top1_agreement(), cmp.mean_kl());
  } else {
    st = perplexity(model, ids, a.window, a.stride, progress);
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

}  // namespace

Command add_perplexity(CLI::App& tool) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* p = tool.add_subcommand("perplexity", "perplexity and next-token top-1 accuracy over a text file");
  p->add_option("-m,--model", a->model, "Hugging Face GPT-2 folder")->required();
  p->add_option("-f,--file", a->file, "text file")->required();
  p->add_option("--window", a->window, "tokens per forward pass (default: the model's n_positions)");
  p->add_option("--stride", a->stride, "tokens between windows (default: window / 2; = window: disjoint chunks)");
  p->add_option("--max_tokens,--max-tokens", a->max_tokens, "score only the first N tokens of the file");
  p->add_option("--type", a->type, "convert the weights at load (default: as stored)")
      ->check(CLI::IsMember(weight_type_names));
  p->add_flag("--amx", a->amx, "windows on AMX bf16 tiles (faster, not exact; needs AMX)");
  auto* cmp = p->add_flag("--compare-f32,--compare_f32", a->compare_f32,
                          "also run this folder as F32: top-1 agreement and mean KL divergence from it");
  p->add_option("--reference", a->reference, "compare with this folder (loaded as F32) instead")->excludes(cmp);
  return {p, [a] { return run_perplexity(*a); }};
}

}  // namespace tinyllm::cli
