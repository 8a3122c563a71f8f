// Speed of embeddings and vector search, against limits measured in the same run:
//
//  - embedding throughput (tokens/s) of the GPT-2-124M shape (random weights), one 494-token text
//    and batches of 128-token texts, against the prompt rate of the same model (model.logits of a
//    494-token prompt: the same pass plus one row of the head);
//  - exact search over 100,000 x 768 F32 unit vectors: ms per query against the time to read the
//    vectors once at the measured bandwidth, and per batch of 64 queries against the fp32 FMA peak;
//  - loading a saved index of those vectors (memory-mapped) in ms;
//  - with --hnsw N, an HNSW graph over the first N vectors: recall@10 against exact search and the
//    time per query, for several ef.
//
//   bench_embeddings [--threads 2] [--rows 100000] [--dim 768] [--reps 5] [--hnsw 20000] [--dir DIR]
//                    [--markdown-into FILE]   (the output, between <!-- embedding-speed:begin/end --> in FILE)
#include <algorithm>  // std::min
#include <cstdio>     // std::printf
#include <cstdlib>    // std::atoi
#include <filesystem> // std::filesystem
#include <fstream>    // std::ifstream
#include <functional> // std::function
#include <random>     // std::mt19937_64, std::normal_distribution
#include <string>     // std::string
#include <utility>    // std::pair
#include <vector>     // std::vector

#include <tinyllm/semantic_index.hpp>

#include "probes.hpp"
#include "markdown.hpp"
#include "random_gpt2.hpp"

namespace {

std::string report;  // everything printed, for --markdown-into

// std::printf that also keeps the text.
template <class... Args>
void say(const char* fmt, Args... args) {
  char buf[1024];
  std::snprintf(buf, sizeof buf, fmt, args...);
  report += buf;
  std::fputs(buf, stdout);
  std::fflush(stdout);
}

double median_seconds(int reps, const std::function<void()>& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = bench::clock_type::now();
    f();
    t.push_back(bench::seconds_since(t0));
  }
  return bench::median(t);
}

std::vector<int> token_ids(std::size_t n, std::size_t seed) {
  std::vector<int> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<int>((i * 104729 + seed * 7919) % 50000);
  return ids;
}

void embedding_speed(const std::string& dir, int reps) {
  bench::write_random_gpt2(dir, tinyllm::GPT2Config{}, false, std::string(TINYLLM_SOURCE_DIR) + "/models/tiny-sotu");
  const auto model = tinyllm::GPT2::from_pretrained(dir);
  const auto prompt = token_ids(494, 1);
  model.logits(prompt);  // warm: pages of the mapped weights
  tinyllm::EmbeddingOptions opts;
  opts.pooling = tinyllm::Pooling::weighted_mean;
  std::vector<std::vector<int>> texts;
  for (std::size_t i = 0; i < 32; ++i) texts.push_back(token_ids(128, i + 2));
  // in rounds, so that the host's slow and fast phases fall on all three alike
  std::vector<double> p, one, batch;
  for (int r = 0; r < reps; ++r) {
    p.push_back(median_seconds(1, [&] { model.logits(prompt); }));
    one.push_back(median_seconds(1, [&] { model.embed(prompt, opts); }));
    batch.push_back(median_seconds(1, [&] { model.embed(texts, opts); }));
  }
  const double prompt_rate = 494 / bench::median(p), one_rate = 494 / bench::median(one);
  const double batch_rate = 32 * 128 / bench::median(batch);
  say("embeddings, GPT-2-124M shape (random F32 weights), %d threads:\n", tinyllm::get_num_threads());
  say("  prompt of 494 tokens (logits of the last):  %7.0f tokens/s\n", prompt_rate);
  say("  embed one text of 494 tokens:               %7.0f tokens/s  %5.1f%% of the prompt rate\n", one_rate,
              100 * one_rate / prompt_rate);
  say("  embed 32 texts of 128 tokens together:      %7.0f tokens/s  %5.1f%% of the prompt rate\n", batch_rate,
              100 * batch_rate / prompt_rate);
}

void search_speed(const std::string& dir, std::size_t rows, std::size_t dim, int reps, std::size_t hnsw_rows) {
  const int threads = tinyllm::get_num_threads();
  say("\nexact search, %zu x %zu F32 unit vectors, %d threads:\n", rows, dim, threads);
  // Random unit vectors, indexed as they are (no standardisation), one empty document.
  std::vector<float> v(rows * dim), q(64 * dim);
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  for (float& x : v) x = normal(rng);
  for (float& x : q) x = normal(rng);
  for (std::size_t i = 0; i < 64; ++i) tinyllm::detail::normalize_l2(q.data() + i * dim, dim);
  tinyllm::SemanticIndex built(dim, tinyllm::Standardization::none);
  built.add_embedded("random", "", std::vector<std::pair<std::size_t, std::size_t>>(rows, {0, 0}), v.data());
  v.clear();
  v.shrink_to_fit();
  const std::string path = dir + "/bench_search.index";
  built.save(path);
  std::vector<double> loads;
  for (int r = 0; r < std::max(reps, 5); ++r) {
    const auto t0 = bench::clock_type::now();
    const auto loaded = tinyllm::SemanticIndex::load(path);
    loads.push_back(bench::seconds_since(t0));
  }
  const auto index = tinyllm::SemanticIndex::load(path);
  tinyllm::SearchOptions o;
  o.k = 10;
  index.search_vectors(q.data(), 1, o);  // the mapped pages in memory
  const double bytes = 4.0 * static_cast<double>(rows) * static_cast<double>(dim);
  const double flops64 = 2.0 * 64 * static_cast<double>(rows) * static_cast<double>(dim);
  std::vector<double> one, batch, bw, peak;
  for (int r = 0; r < reps; ++r) {  // limits measured between the runs they frame
    bw.push_back(bench::read_bandwidth(threads));
    one.push_back(median_seconds(3, [&] { index.search_vectors(q.data() + (r % 64) * dim, 1, o); }));
    peak.push_back(bench::fma_peak(threads));
    batch.push_back(median_seconds(1, [&] { index.search_vectors(q.data(), 64, o); }));
  }
  bench::release_probe_buffer();
  const double t1 = bench::median(one), t64 = bench::median(batch);
  const double read_limit = bytes / bench::median(bw), fma_limit = flops64 / bench::median(peak);
  const double batch_limit = std::max(fma_limit, read_limit);
  say("  one query:          %7.2f ms   limit %6.2f ms (reading %.0f MB at %.1f GB/s): %5.1f%%\n", 1e3 * t1,
              1e3 * read_limit, bytes / 1e6, bench::median(bw) / 1e9, 100 * read_limit / t1);
  say("  64 queries at once: %7.2f ms   limit %6.2f ms (%.2f GFLOP at %.0f GFLOP/s): %5.1f%%  (%.2f ms a query)\n",
              1e3 * t64, 1e3 * batch_limit, flops64 / 1e9, bench::median(peak) / 1e9, 100 * batch_limit / t64,
              1e3 * t64 / 64);
  say("  index load (memory-mapped, %.0f MB file): %.2f ms (median of %zu)\n",
              static_cast<double>(std::filesystem::file_size(path)) / 1e6, 1e3 * bench::median(loads), loads.size());

  if (hnsw_rows == 0) return;
  if (!tinyllm::hnsw_available()) {
    say("\napproximate search: this build has no hnswlib\n");
    return;
  }
  hnsw_rows = std::min(hnsw_rows, rows);
  tinyllm::SemanticIndex small(dim, tinyllm::Standardization::none);
  small.add_embedded("random", "", std::vector<std::pair<std::size_t, std::size_t>>(hnsw_rows, {0, 0}), index.vectors());
  const auto t0 = bench::clock_type::now();
  small.build_approximate(16, 200);
  say("\napproximate search (hnswlib, M 16, ef_construction 200), first %zu vectors: graph built in %.1f s\n",
              hnsw_rows, bench::seconds_since(t0));
  const auto exact = small.search_vectors(q.data(), 64, o);
  const double t_exact = median_seconds(reps, [&] { small.search_vectors(q.data(), 64, o); }) / 64;
  say("  exact: %.3f ms a query (64 at once)\n", 1e3 * t_exact);
  for (int ef : {16, 64, 256}) {
    tinyllm::SearchOptions a = o;
    a.approximate = true;
    a.ef = ef;
    std::vector<std::vector<tinyllm::SearchHit>> found;
    const double t = median_seconds(reps, [&] { found = small.search_vectors(q.data(), 64, a); }) / 64;
    std::size_t same = 0;
    for (std::size_t i = 0; i < 64; ++i)
      for (const auto& h : found[i])
        for (const auto& e : exact[i]) same += h.chunk == e.chunk;
    say("  ef %3d: recall@10 %.3f, %.3f ms a query (%.1fx exact's speed)\n", ef, static_cast<double>(same) / 640.0,
                1e3 * t, t_exact / t);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 5;
  std::size_t rows = 100000, dim = 768, hnsw = 0;
  std::string dir = TINYLLM_BENCH_BINARY_DIR, into;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--rows") rows = static_cast<std::size_t>(std::atol(argv[i + 1]));
    else if (a == "--dim") dim = static_cast<std::size_t>(std::atol(argv[i + 1]));
    else if (a == "--reps") reps = std::atoi(argv[i + 1]);
    else if (a == "--hnsw") hnsw = static_cast<std::size_t>(std::atol(argv[i + 1]));
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--markdown-into") into = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  tinyllm::set_num_threads(threads);
  try {
    embedding_speed(dir + "/gpt2-124m-random", reps);
    search_speed(dir, rows, dim, reps, hnsw);
    if (!into.empty()) {
      std::string cpu = "unknown CPU";
      std::ifstream info("/proc/cpuinfo");
      for (std::string line; std::getline(info, line);)
        if (line.rfind("model name", 0) == 0) {
          cpu = line.substr(line.find(':') + 2);
          break;
        }
      bench::write_between_markers(into, "embedding-speed", "On " + cpu + ":\n\n```\n" + report + "```\n");
      std::fprintf(stderr, "[bench] written into %s\n", into.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
