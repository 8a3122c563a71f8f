// Decoding throughput of one sequence vs a batch of sequences (generate_batch), on a random
// GPT-2-124M-shaped folder (written once into the build folder, F32 weights, GPT-2's tokenizer).
// Decode tokens/s comes from two runs of different lengths, so prefill does not count; each figure
// is the best of --repeat interleaved runs (shared machines are noisy). Also checks that the batch produced
// exactly the tokens of the sequences run one by one.
//
// Usage: bench_generation [--model DIR] [--threads N] [--batch B] [--tokens N] [--repeat R] [--json FILE]
#include <algorithm>  // std::min
#include <chrono>     // std::chrono::steady_clock
#include <cstdio>     // std::printf
#include <cstdlib>    // std::atoi
#include <string>     // std::string
#include <utility>    // std::move
#include <vector>     // std::vector

#include <tinyllm/gpt2.hpp>

#include "json_output.hpp"
#include "random_gpt2.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = TINYLLM_BENCH_MODEL_DIR;
  int threads = 2, batch = 8, tokens = 32, repeat = 5;
  std::string json_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model")
      dir = argv[i + 1];
    else if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoi(argv[i + 1]);
    else if (a == "--tokens")
      tokens = std::atoi(argv[i + 1]);
    else if (a == "--repeat")
      repeat = std::atoi(argv[i + 1]);
    else if (a == "--json")
      json_path = argv[i + 1];
  }
  if (dir == TINYLLM_BENCH_MODEL_DIR) {
    std::printf("model: %s (written afresh)\n", dir.c_str());
    bench::write_random_gpt2(dir, tinyllm::GPT2Config{}, false, std::string(TINYLLM_SOURCE_DIR) + "/models/tiny-sotu");
  }
  auto t0 = std::chrono::steady_clock::now();
  const auto model = tinyllm::GPT2::from_pretrained(dir);
  std::printf("load: %.0f ms; n_layer %d, n_embd %d, vocab %d\n", 1e3 * seconds_since(t0), model.config().n_layer,
              model.config().n_embd, model.config().vocab_size);
  tinyllm::set_num_threads(threads);

  // `batch` different prompts of 8 tokens each.
  const auto text = model.tokenizer().encode(
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, "
      "it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of "
      "Darkness, it was the spring of hope, it was the winter of despair, we had everything before us.");
  std::vector<std::vector<int>> prompts;
  for (int b = 0; b < batch; ++b) {
    const std::size_t at = static_cast<std::size_t>(b) * 5 % (text.size() - 8);
    prompts.emplace_back(text.begin() + static_cast<long>(at), text.begin() + static_cast<long>(at) + 8);
  }
  // One timed generate_batch; the four runs below are interleaved and each keeps its best time.
  auto run = [&](const std::vector<std::vector<int>>& p, int n, std::vector<std::vector<int>>* out = nullptr) {
    tinyllm::GenerationConfig cfg;
    cfg.max_new_tokens = n;
    cfg.min_new_tokens = n;  // eos cannot end a sequence early
    const auto t = std::chrono::steady_clock::now();
    auto result = model.generate_batch(p, cfg);
    const double s = seconds_since(t);
    if (out) *out = std::move(result);
    return s;
  };
  run({prompts[0]}, 2);  // warm up: page in the weights

  const int short_n = 4, long_n = 4 + tokens;
  const std::vector<std::vector<int>> one = {prompts[0]};
  double t1_short = 1e30, t1_long = 1e30, tb_short = 1e30, tb_long = 1e30;
  std::vector<std::vector<int>> single_out, batch_out;
  for (int r = 0; r < repeat; ++r) {
    t1_short = std::min(t1_short, run(one, short_n));
    t1_long = std::min(t1_long, run(one, long_n, &single_out));
    tb_short = std::min(tb_short, run(prompts, short_n));
    tb_long = std::min(tb_long, run(prompts, long_n, &batch_out));
  }
  const double tps1 = tokens / (t1_long - t1_short);
  const double tpsb = static_cast<double>(batch) * tokens / (tb_long - tb_short);

  bool identical = batch_out[0] == single_out[0];
  for (int b = 1; b < batch && identical; ++b) {
    std::vector<std::vector<int>> alone;
    run({prompts[static_cast<std::size_t>(b)]}, long_n, &alone);
    identical = batch_out[static_cast<std::size_t>(b)] == alone[0];
  }

  std::printf("threads %d, %d decode steps after %d (greedy, prompts of 8 tokens)\n", threads, tokens, short_n);
  std::printf("  1 sequence : %7.1f tokens/s  (%.1f ms/token; end to end %.0f ms for %d tokens)\n", tps1, 1e3 / tps1,
              1e3 * t1_long, long_n);
  std::printf("  %d sequences: %7.1f tokens/s  (%.1f ms/step;  end to end %.0f ms for %d x %d tokens)\n", batch, tpsb,
              1e3 * batch / tpsb, 1e3 * tb_long, batch, long_n);
  std::printf("  ratio      : %.2fx the tokens/s of one sequence\n", tpsb / tps1);
  std::printf("  batch results identical to one by one: %s\n", identical ? "yes" : "NO");
  bench::write_json(json_path, "bench_generation",
                    {{"threads", threads}, {"batch", batch}, {"tokens", tokens}, {"single_tokens_per_s", tps1},
                     {"batch_tokens_per_s", tpsb}, {"ratio", tpsb / tps1}, {"identical", identical}});
  return identical ? 0 : 1;
}
