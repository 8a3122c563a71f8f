// Tokenizer encode speed on one thread: >= 10 MB of English prose and a few MB of CJK text, each
// encoded by tinyllm and, in the same run, by tiktoken's npm build (benchmarks/bench_tiktoken.js)
// when node and tests/reference/node_modules/tiktoken are present; prints MB/s, the ratio, and
// whether both gave the same ids. Then the worst cases for BPE: 1 MB pieces of one repeated letter,
// of random letters and of digits.
// Usage: bench_tokenizer [--model DIR] [--prose FILE] [--runs N] [--no-tiktoken]
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
#include <vector>     // std::vector

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

Result bench_tinyllm(const tinyllm::Tokenizer& tok, const std::string& text, int runs) {
  std::vector<double> times;
  std::vector<int> ids;
  tok.encode_ordinary(text.substr(0, 100000));  // warm up
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    ids = tok.encode_ordinary(text);
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  return {text.size() / 1e6 / times[times.size() / 2], ids.size(), fnv_ids(ids)};
}

bool tiktoken_available() {
  return std::filesystem::exists(source_dir + "/tests/reference/node_modules/tiktoken/package.json") &&
         std::system("node --version > /dev/null 2>&1") == 0;
}

bool bench_tiktoken(const std::string& text, int runs, Result& out) {
  const auto file = std::filesystem::temp_directory_path() / ("tinyllm-bench-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file, std::ios::binary).write(text.data(), static_cast<std::streamsize>(text.size()));
  const std::string cmd = "node " + source_dir + "/benchmarks/bench_tiktoken.js " + file.string() + " " + std::to_string(runs);
  FILE* p = popen(cmd.c_str(), "r");
  char line[512] = {0};
  const bool got = p && std::fgets(line, sizeof line, p);
  if (p) pclose(p);
  std::filesystem::remove(file);
  unsigned long long ids = 0, hash = 0;
  if (!got || std::sscanf(line, "{\"mb_per_s\":%lf,\"ids\":%llu,\"hash\":%llu}", &out.mb_per_s, &ids, &hash) != 3) return false;
  out.ids = ids;
  out.hash = static_cast<std::uint32_t>(hash);
  return true;
}

void compare(const char* name, const tinyllm::Tokenizer& tok, const std::string& text, int runs, bool tiktoken) {
  const Result us = bench_tinyllm(tok, text, runs);
  std::printf("%-8s %6.1f MB  tinyllm %7.1f MB/s", name, text.size() / 1e6, us.mb_per_s);
  Result tk;
  if (tiktoken && bench_tiktoken(text, runs, tk))
    std::printf("  tiktoken %6.1f MB/s  ratio %5.2fx  ids %s (%zu)\n", tk.mb_per_s, us.mb_per_s / tk.mb_per_s,
                us.ids == tk.ids && us.hash == tk.hash ? "identical" : "DIFFER", us.ids);
  else
    std::printf("  (tiktoken not run)  %zu ids\n", us.ids);
  std::fflush(stdout);
}

void time_piece(const char* name, const tinyllm::Tokenizer& tok, const std::string& text) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode_ordinary(text);
  const double s = seconds_since(t0);
  const bool ok = tok.decode(ids) == text;
  std::printf("%-34s %8.3f s  %7zu ids%s\n", name, s, ids.size(), ok ? "" : "  ROUND TRIP FAILED");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = source_dir + "/models/tiny-sotu", prose = "/work/shared/data/heldout.txt";
  int runs = 5;
  bool tiktoken = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--prose" && i + 1 < argc) prose = argv[++i];
    else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--no-tiktoken") tiktoken = false;
    else {
      std::fprintf(stderr, "usage: %s [--model DIR] [--prose FILE] [--runs N] [--no-tiktoken]\n", argv[0]);
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

  std::printf("single thread, median of %d runs; prose from %s\n", runs, prose.c_str());
  compare("English", tok, english, runs, tiktoken);
  compare("CJK", tok, cjk, runs, tiktoken);

  std::mt19937_64 rng(1);
  std::string letters(1'000'000, 'a');
  for (auto& c : letters) c = static_cast<char>('a' + rng() % 26);
  std::string digits(1'000'000, '0');
  for (auto& c : digits) c = static_cast<char>('0' + rng() % 10);
  time_piece("1 MB of 'a' (one piece)", tok, std::string(1'000'000, 'a'));
  time_piece("1 MB of random a-z (one piece)", tok, letters);
  time_piece("1 MB of random digits (one piece)", tok, digits);
  time_piece("1 MB of spaces", tok, std::string(1'000'000, ' '));
  return 0;
}
