// Multi-row passes against one decode step, GPT-2-124M shape (random weights), 2 threads: a batch
// step of 8 and 16 sequences, prompts of 16 and 64 tokens, and a verification-sized pass of 6 rows,
// each as a ratio to a one-row decode step of the same weights measured in the same rounds (rounds
// take every measurement in turn, so a slow spell of a shared machine lands in all of them); decode
// against the bandwidth limit of its weight type (the bytes a step reads / a read probe run around
// it); prompts with LoadOptions::bf16_dot (AVX-512 BF16 dot products) against the F32 kernels' rate,
// where the CPU has them; the cold start (load the folder, encode a short prompt, its first token).
//
//   bench_rows [--dir DIR] [--threads 2] [--rounds 7] [--weights f32,q8] [--json FILE]
//
// --json writes the figures as one JSON object (for benchmarks/report.py).
#include <algorithm>  // std::max, std::min
#include <cstdio>     // std::printf
#include <cstdlib>    // std::atoi
#include <filesystem>
#include <fstream>  // std::ofstream
#include <functional>  // std::function
#include <map>      // std::map
#include <memory>   // std::unique_ptr
#include <sstream>  // std::stringstream
#include <string>   // std::string
#include <vector>   // std::vector

#include <nlohmann/json.hpp>
#include <tinyllm/gpt2.hpp>

#include "probes.hpp"
#include "random_gpt2.hpp"

namespace {

using Model = tinyllm::GPT2;
using Backend = tinyllm::DefaultBackend;

// Bytes one decoding step reads: every matrix (in its type), the F32 vectors, a row of wpe, the KV
// cache at `position`.
double step_bytes(const tinyllm::GPT2Config& c, const tinyllm::GPT2Weights& w, int position) {
  const double C = c.n_embd, I = c.inner_dim();
  const double vectors = c.n_layer * (3 * C + C + I + C + 4 * C) + 2 * C + C;
  const double kv = 4.0 * 2 * c.n_layer * static_cast<double>(position) * C;
  return static_cast<double>(tinyllm::matrix_bytes(w)) + 4.0 * vectors + kv;
}

std::vector<int> token_ids(std::size_t n, int seed) {
  std::vector<int> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<int>((i * 7919 + static_cast<std::size_t>(seed) * 104729) % 50000);
  return ids;
}

// The passes measured for one weight type: each returns the seconds of one pass.
struct Passes {
  const Model& m;
  static constexpr int context = 16;  // positions already cached before a decode or batch step

  // One decoding step of one sequence: the transformer over one token and the head over its row.
  double decode() const {
    const auto& c = m.config();
    tinyllm::detail::InferenceState s(c);
    const auto prompt = token_ids(context, 1);
    tinyllm::detail::forward_hidden<Backend>(c, m.weights(), s, prompt.data(), prompt.size());
    std::vector<float> logits(static_cast<std::size_t>(c.vocab_size));
    const int next = 42;
    const auto t0 = bench::clock_type::now();
    tinyllm::detail::forward_hidden<Backend>(c, m.weights(), s, &next, 1);
    tinyllm::detail::lm_head<Backend>(m.weights(), s.x.data(), 1, logits.data());
    return bench::seconds_since(t0);
  }
  // One step of B sequences (generate_batch's step): forward_batch and the head over all B rows.
  double batch(std::size_t B) const {
    const auto& c = m.config();
    std::vector<std::unique_ptr<tinyllm::detail::InferenceState>> states;
    std::vector<tinyllm::layers::KVCache*> caches;
    for (std::size_t b = 0; b < B; ++b) {
      states.push_back(std::make_unique<tinyllm::detail::InferenceState>(c));
      const auto prompt = token_ids(context, static_cast<int>(b));
      tinyllm::detail::forward_hidden<Backend>(c, m.weights(), *states.back(), prompt.data(), prompt.size());
      caches.push_back(&states.back()->cache);
    }
    tinyllm::detail::Activations act;
    std::vector<float> logits(B * static_cast<std::size_t>(c.vocab_size));
    std::vector<int> next(B, 42);
    const auto t0 = bench::clock_type::now();
    tinyllm::detail::forward_batch<Backend>(c, m.weights(), act, caches.data(), next.data(), B);
    tinyllm::detail::lm_head<Backend>(m.weights(), act.x.data(), B, logits.data());
    return bench::seconds_since(t0);
  }
  // A prompt of T tokens: the transformer over all of them and the head over the last row (logits()).
  double prompt(std::size_t T) const {
    const auto& c = m.config();
    const auto ids = token_ids(T, 7);
    tinyllm::detail::InferenceState s(c);
    std::vector<float> logits(static_cast<std::size_t>(c.vocab_size));
    const auto t0 = bench::clock_type::now();
    tinyllm::detail::forward_hidden<Backend>(c, m.weights(), s, ids.data(), T);
    tinyllm::detail::lm_head<Backend>(m.weights(), s.x.data() + (T - 1) * static_cast<std::size_t>(c.n_embd), 1,
                                      logits.data());
    return bench::seconds_since(t0);
  }
  // A speculative verification pass: T rows after a cached context, logits of every row.
  double verify(std::size_t T) const {
    const auto& c = m.config();
    tinyllm::detail::InferenceState s(c);
    const auto prompt = token_ids(context, 3), pass = token_ids(T, 4);
    tinyllm::detail::forward_hidden<Backend>(c, m.weights(), s, prompt.data(), prompt.size());
    std::vector<float> logits(T * static_cast<std::size_t>(c.vocab_size));
    const auto t0 = bench::clock_type::now();
    tinyllm::detail::forward_hidden<Backend>(c, m.weights(), s, pass.data(), T);
    tinyllm::detail::lm_head<Backend>(m.weights(), s.x.data(), T, logits.data());
    return bench::seconds_since(t0);
  }
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, json_path;
  int threads = 2, rounds = 7;
  std::vector<std::string> types = {"f32", "q8"};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--weights") types = split(argv[i + 1]);
    else if (a == "--json") json_path = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--threads 2] [--rounds 7] [--weights f32,q8] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  if (dir.empty()) dir = std::filesystem::path(argv[0]).parent_path().string() + "/gpt2-124m-random";
  tinyllm::GPT2Config shape;  // GPT-2 small (124M)
  std::printf("tinyllm %s: multi-row passes, GPT-2-124M shape, random weights in %s, %d threads\n",
              tinyllm::version_string, dir.c_str(), threads);
  bench::write_random_gpt2(dir, shape, false, TINYLLM_DEMO_MODEL);
  tinyllm::set_num_threads(threads);
  nlohmann::json out = {{"benchmark", "bench_rows"}, {"version", tinyllm::version_string}, {"threads", threads},
                        {"rounds", rounds}};

  // Cold start: the folder loaded (weights mapped, tokenizer files parsed), a short prompt encoded,
  // its first token's logits; the file is in the page cache, as after a first run.
  {
    std::vector<double> load_ms, first_ms;
    for (int r = 0; r < std::max(3, rounds / 2); ++r) {
      const auto t0 = bench::clock_type::now();
      const Model m = Model::from_pretrained(dir);
      load_ms.push_back(bench::seconds_since(t0) * 1e3);
      const auto ids = m.tokenizer().encode("The state of the Union is");
      const auto logits = m.logits(ids);
      first_ms.push_back(bench::seconds_since(t0) * 1e3);
      if (logits.empty()) return 1;
    }
    std::printf("\ncold start (F32 folder in the page cache): load %.0f ms, load + first token of a 6-token prompt %.0f ms\n",
                bench::median(load_ms), bench::median(first_ms));
    out["cold_start"] = {{"load_ms", bench::median(load_ms)}, {"first_token_ms", bench::median(first_ms)}};
  }

  struct Typed {
    std::string name;
    Model m;
    double bytes;
    std::map<std::string, std::vector<double>> s;  // seconds per measurement, one per round
    std::vector<double> share;                     // decode: limit / time, one per round
  };
  std::vector<Typed> models;
  for (const auto& name : types) {
    tinyllm::LoadOptions o;
    o.weight_type = tinyllm::parse_weight_type(name, "--weights");
    Model m = Model::from_pretrained(dir, o);
    const double bytes = step_bytes(m.config(), m.weights(), Passes::context + 1);
    models.push_back({name, std::move(m), bytes, {}, {}});
  }
  const std::vector<std::pair<std::string, std::function<double(const Passes&)>>> measures = {
      {"decode", [](const Passes& p) { return p.decode(); }},
      {"batch8", [](const Passes& p) { return p.batch(8); }},
      {"batch16", [](const Passes& p) { return p.batch(16); }},
      {"prompt16", [](const Passes& p) { return p.prompt(16); }},
      {"prompt64", [](const Passes& p) { return p.prompt(64); }},
      {"verify6", [](const Passes& p) { return p.verify(6); }},
  };
  for (auto& t : models) {  // warm up: page the weights in
    const Passes p{t.m};
    p.decode();
    p.batch(8);
  }
  double bandwidth = 0;
  for (int r = 0; r < rounds; ++r)
    for (auto& t : models) {
      const Passes p{t.m};
      const double b0 = bench::read_bandwidth(threads, std::size_t(1) << 30);
      std::vector<double> decode;
      for (int i = 0; i < 5; ++i) decode.push_back(p.decode());
      const double b1 = bench::read_bandwidth(threads, std::size_t(1) << 30);
      const double B = std::max(b0, b1);
      bandwidth = std::max(bandwidth, B);
      t.s["decode"].push_back(bench::median(decode));
      t.share.push_back(t.bytes / B / bench::median(decode));
      for (std::size_t i = 1; i < measures.size(); ++i) t.s[measures[i].first].push_back(measures[i].second(p));
    }
  std::printf("\nread bandwidth (best probe of the run, %d threads): %.1f GB/s; medians of %d rounds\n", threads,
              bandwidth / 1e9, rounds);
  out["read_bandwidth_gbs"] = bandwidth / 1e9;
  for (auto& t : models) {
    auto med = [&](const char* key) { return bench::median(t.s[key]); };
    const double one = med("decode");
    const double b8 = med("batch8"), b16 = med("batch16"), p16 = med("prompt16"), p64 = med("prompt64"), v6 = med("verify6");
    std::printf("\n%s (%.0f MB a step):\n", t.name.c_str(), t.bytes / 1e6);
    std::printf("  decode step          %7.2f ms  %3.0f%% of the bandwidth limit (rounds %.0f-%.0f%%)\n", one * 1e3,
                100 * bench::median(t.share), 100 * *std::min_element(t.share.begin(), t.share.end()),
                100 * *std::max_element(t.share.begin(), t.share.end()));
    std::printf("  batch of 8, a step   %7.2f ms  %.2fx a decode step, %.1fx its tokens/s\n", b8 * 1e3, b8 / one, 8 * one / b8);
    std::printf("  batch of 16, a step  %7.2f ms  %.2fx a decode step, %.1fx its tokens/s\n", b16 * 1e3, b16 / one, 16 * one / b16);
    std::printf("  prompt of 16 tokens  %7.2f ms  %.2fx a decode step (%.0f tokens/s)\n", p16 * 1e3, p16 / one, 16 / p16);
    std::printf("  prompt of 64 tokens  %7.2f ms  %.2fx a decode step (%.0f tokens/s)\n", p64 * 1e3, p64 / one, 64 / p64);
    std::printf("  verify 6 rows        %7.2f ms  %.2fx a decode step (logits of every row)\n", v6 * 1e3, v6 / one);
    out["types"][t.name] = {{"step_mb", t.bytes / 1e6},
                            {"decode_ms", one * 1e3},
                            {"decode_share_of_limit", bench::median(t.share)},
                            {"batch8_ms", b8 * 1e3},
                            {"batch8_over_decode", b8 / one},
                            {"batch16_ms", b16 * 1e3},
                            {"batch16_over_decode", b16 / one},
                            {"prompt16_ms", p16 * 1e3},
                            {"prompt16_over_decode", p16 / one},
                            {"prompt64_ms", p64 * 1e3},
                            {"prompt64_over_decode", p64 / one},
                            {"verify6_ms", v6 * 1e3},
                            {"verify6_over_decode", v6 / one}};
  }

  // Prompts on bf16 dot products (LoadOptions::bf16_dot) against the F32 kernels, the same F32 folder,
  // taken in turn in each round: a 64-token prompt (the multi-row kernels without the option) and a
  // 494-token one (the F32 GEMM).
  if (!tinyllm::bf16_dot_available()) {
    std::printf("\nbf16 dot-product prompts: not measured (no AVX-512 BF16 on this CPU or build)\n");
  } else {
    tinyllm::LoadOptions o;
    o.weight_type = tinyllm::WeightType::F32;
    const Model plain = Model::from_pretrained(dir, o);
    o.bf16_dot = true;
    const Model dot = Model::from_pretrained(dir, o);
    const std::size_t lengths[] = {64, 494};
    std::map<std::size_t, std::vector<double>> f32_s, dot_s;
    for (int r = 0; r < rounds; ++r)
      for (std::size_t T : lengths) {
        f32_s[T].push_back(Passes{plain}.prompt(T));
        dot_s[T].push_back(Passes{dot}.prompt(T));
      }
    std::printf("\nbf16 dot-product prompts (LoadOptions::bf16_dot), F32 weights, against the F32 kernels:\n");
    for (std::size_t T : lengths) {
      const double a = bench::median(f32_s[T]), b = bench::median(dot_s[T]);
      std::printf("  prompt of %3zu tokens  F32 kernels %6.0f tokens/s, bf16 dot %6.0f tokens/s: %.2fx\n", T, T / a,
                  T / b, a / b);
      out["bf16_dot"]["prompt" + std::to_string(T)] = {
          {"f32_tokens_per_s", T / a}, {"bf16_dot_tokens_per_s", T / b}, {"speedup", a / b}};
    }
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << out.dump(2) << "\n";
    std::printf("\nsummary written to %s\n", json_path.c_str());
  }
  return 0;
}
