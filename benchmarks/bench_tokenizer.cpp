// Tokenizer encode speed on one thread: >= 10 MB of English prose and a few MB of CJK text, each
// encoded by tinyllm and, in the same run, by tiktoken's npm build (benchmarks/bench_tiktoken.js)
// when node and tests/reference/node_modules/tiktoken are present; prints MB/s, the ratio, and
// whether both gave the same ids. Then the worst cases for BPE: 1 MB pieces of one repeated letter,
// of random letters and of digits; and the English text as a batch of paragraphs on all cores.
// Usage: bench_tokenizer [--model DIR] [--prose FILE] [--runs N] [--no-tiktoken] [--json FILE]
#include <tinyllm/tokenizer.hpp>

#include <algorithm>  // std::sort, std::shuffle
#include <chrono>     // std::chrono::steady_clock
#include <cstdint>    // std::uint32_t
#include <cstdio>     // std::printf, popen
#include <cstdlib>    // std::system
#include <filesystem> // std::filesystem::temp_directory_path
#include <fstream>    // std::ifstream, std::ofstream
#include <random>     // std::mt19937_64
#include <string>     // std::string
#include <thread>     // std::thread::hardware_concurrency
#include <unistd.h>   // getpid
#include <vector>     // std::vector

#include "json_output.hpp"

namespace {

const std::string source_dir = TINYLLM_SOURCE_DIR;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("bench_tokenizer: cannot open " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  for (std::size_t pos = 0;;) {
    const std::size_t e = s.find(sep, pos);
    out.push_back(s.substr(pos, e == std::string::npos ? std::string::npos : e - pos));
    if (e == std::string::npos) return out;
    pos = e + sep.size();
  }
}

// Copies of `parts` in a fresh shuffled order each time, joined by `sep`, until `bytes` are reached.
std::string build_text(std::vector<std::string> parts, const std::string& sep, std::size_t bytes) {
  std::mt19937_64 rng(2024);
  std::string out;
  while (out.size() < bytes) {
    std::shuffle(parts.begin(), parts.end(), rng);
    for (const auto& p : parts) {
      out += p;
      out += sep;
    }
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::uint32_t fnv_ids(const std::vector<int>& ids) {  // same as bench_tiktoken.js
  std::uint32_t h = 0x811c9dc5u;
  for (int id : ids)
    for (int k = 0; k < 4; ++k) h = (h ^ ((static_cast<std::uint32_t>(id) >> (8 * k)) & 255u)) * 0x01000193u;
  return h;
}

struct Result {
  double mb_per_s = 0;
  std::size_t ids = 0;
  std::uint32_t hash = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Result run_tinyllm(const tinyllm::Tokenizer& tok, const std::string& text) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int> ids = tok.encode_ordinary(text);
  return {text.size() / 1e6 / seconds_since(t0), ids.size(), fnv_ids(ids)};
}

bool tiktoken_available() {
  return std::filesystem::exists(source_dir + "/tests/reference/node_modules/tiktoken/package.json") &&
         std::system("node --version > /dev/null 2>&1") == 0;
}

// One timed encode by tiktoken in a node process (after a warm-up in the same process).
bool run_tiktoken(const std::string& file, Result& out) {
  const std::string cmd = "node " + source_dir + "/benchmarks/bench_tiktoken.js " + file + " 1";
  FILE* p = popen(cmd.c_str(), "r");
  char line[512] = {0};
  const bool got = p && std::fgets(line, sizeof line, p);
  if (p) pclose(p);
  unsigned long long ids = 0, hash = 0;
  if (!got || std::sscanf(line, "{\"mb_per_s\":%lf,\"ids\":%llu,\"hash\":%llu}", &out.mb_per_s, &ids, &hash) != 3)
    return false;
  out.ids = ids;
  out.hash = static_cast<std::uint32_t>(hash);
  return true;
}

// Runs tinyllm and tiktoken alternately, so that both see the same machine load; the ratio is the
// median of the per-round ratios.
bench::json compare(const char* name, const tinyllm::Tokenizer& tok, const std::string& text, int runs, bool tiktoken) {
  run_tinyllm(tok, text.substr(0, 100000));  // warm up
  const auto file = std::filesystem::temp_directory_path() / ("tinyllm-bench-" + std::to_string(::getpid()) + ".txt");
  if (tiktoken) std::ofstream(file, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<double> us, tk, ratio;
  Result a, b;
  bool same = true;
  for (int r = 0; r < runs; ++r) {
    a = run_tinyllm(tok, text);
    us.push_back(a.mb_per_s);
    if (tiktoken && (tiktoken = run_tiktoken(file.string(), b))) {
      tk.push_back(b.mb_per_s);
      ratio.push_back(a.mb_per_s / b.mb_per_s);
      same = same && a.ids == b.ids && a.hash == b.hash;
    }
  }
  if (std::filesystem::exists(file)) std::filesystem::remove(file);
  std::printf("%-8s %6.1f MB  tinyllm %7.1f MB/s", name, text.size() / 1e6, median(us));
  if (!ratio.empty())
    std::printf("  tiktoken %6.1f MB/s  ratio %5.2fx  ids %s (%zu)\n", median(tk), median(ratio),
                same ? "identical" : "DIFFER", a.ids);
  else
    std::printf("  (tiktoken not run)  %zu ids\n", a.ids);
  std::fflush(stdout);
  bench::json j = {{"text", name}, {"mb", text.size() / 1e6}, {"runs", runs}, {"tinyllm_mb_per_s", median(us)}};
  if (!ratio.empty()) {
    j["tiktoken_mb_per_s"] = median(tk);
    j["ratio"] = median(ratio);
    j["identical"] = same;
  }
  return j;
}

bench::json time_piece(const char* name, const tinyllm::Tokenizer& tok, const std::string& text) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode_ordinary(text);
  const double s = seconds_since(t0);
  const bool ok = tok.decode(ids) == text;
  std::printf("%-34s %8.3f s  %7zu ids%s\n", name, s, ids.size(), ok ? "" : "  ROUND TRIP FAILED");
  std::fflush(stdout);
  return {{"text", name}, {"seconds", s}, {"round_trip", ok}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = source_dir + "/models/tiny-sotu", prose = source_dir + "/benchmarks/data/heldout.txt", json_path;
  int runs = 5;
  bool tiktoken = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--prose" && i + 1 < argc) prose = argv[++i];
    else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--no-tiktoken") tiktoken = false;
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--model DIR] [--prose FILE] [--runs N] [--no-tiktoken] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  const auto tok = tinyllm::Tokenizer::from_pretrained(model);
  tiktoken = tiktoken && tiktoken_available();

  // English: paragraphs of the prose file (else the prose parity fixture), reshuffled to >= 10 MB.
  const std::string fixtures = source_dir + "/tests/fixtures/tokenizer/";
  if (!std::filesystem::exists(prose)) prose = fixtures + "prose.txt";
  std::vector<std::string> paragraphs;
  for (auto& p : split(read_file(prose), "\n\n"))
    if (!p.empty()) paragraphs.push_back(p);
  const std::string english = build_text(paragraphs, "\n\n", 10'500'000);
  // CJK: the texts of the cjk parity fixture (Chinese, Japanese, Korean), reshuffled to >= 4 MB.
  const std::string cjk = build_text(split(read_file(fixtures + "cjk.txt"), "\n\xE2\x90\x9E\n"), "\n", 4'000'000);

  std::printf("single thread, median of %d runs (tinyllm and tiktoken alternating); prose from %s\n", runs,
              prose.c_str());
  bench::json out;
  out["encode"].push_back(compare("English", tok, english, runs, tiktoken));
  out["encode"].push_back(compare("CJK", tok, cjk, runs, tiktoken));

  std::mt19937_64 rng(1);
  std::string letters(1'000'000, 'a');
  for (auto& c : letters) c = static_cast<char>('a' + rng() % 26);
  std::string digits(1'000'000, '0');
  for (auto& c : digits) c = static_cast<char>('0' + rng() % 10);
  out["pieces"].push_back(time_piece("1 MB of 'a' (one piece)", tok, std::string(1'000'000, 'a')));
  out["pieces"].push_back(time_piece("1 MB of random a-z (one piece)", tok, letters));
  out["pieces"].push_back(time_piece("1 MB of random digits (one piece)", tok, digits));
  out["pieces"].push_back(time_piece("1 MB of spaces", tok, std::string(1'000'000, ' ')));

  // Multi-threaded: the English text as ~10 kB texts, encode_ordinary_batch on every core.
  std::vector<std::string> batch;
  for (std::size_t pos = 0; pos < english.size(); pos += 10'000) batch.push_back(english.substr(pos, 10'000));
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<double> times;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode_ordinary_batch(batch, threads);
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  std::printf("English as %zu texts, encode_ordinary_batch on %d threads: %.1f MB/s\n", batch.size(), threads,
              english.size() / 1e6 / times[times.size() / 2]);
  out["batch"] = {{"threads", threads}, {"mb_per_s", english.size() / 1e6 / times[times.size() / 2]}};
  bench::write_json(json_path, "bench_tokenizer", out);
  return 0;
}
