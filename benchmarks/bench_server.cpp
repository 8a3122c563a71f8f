// tinyllm serve under load: 1, 4, 16 and 64 concurrent streaming clients on a random GPT-2-124M-shaped
// folder (written into the build folder, F32, GPT-2's tokenizer), served in-process on 127.0.0.1 and a
// free port. Each client sends --requests streaming completions one after another (max_tokens
// --tokens, min_new_tokens the same, so every request generates exactly that many). Per level:
// aggregate generated tokens/s and its ratio to one client's, p50 / p99 time to first token and
// between tokens as the clients see them, errors, and resident memory before and after. Bounded and
// loopback-only: it stops by itself. The busiest level runs twice: the second shows whether memory
// grows with use (the first leaves the allocator holding the caches it freed, for reuse).
//
// Usage: bench_server [--model DIR] [--threads N] [--clients 1,4,16,64,64] [--requests R] [--tokens N]
//                     [--parallel P] [--type f32|f16|bf16|q8]
#include <algorithm>  // std::sort, std::max
#include <atomic>     // std::atomic
#include <chrono>     // std::chrono
#include <cstdio>     // std::printf
#include <cstdlib>    // std::atoi
#include <fstream>    // std::ifstream
#include <mutex>      // std::mutex
#include <sstream>    // std::stringstream
#include <string>     // std::string
#include <thread>     // std::thread
#include <vector>     // std::vector

#include <httplib.h>
#include <tinyllm/gpt2.hpp>

#include "random_gpt2.hpp"
#include "server.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double rss_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

struct Sample {
  std::vector<double> ttft, gaps;
  std::size_t tokens = 0, errors = 0;
};

// One streaming completion; its token events' arrival times go into s.
void complete(httplib::Client& c, const std::string& body, Sample& s) {
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body;
  req.set_header("Content-Type", "application/json");
  const auto t0 = Clock::now();
  auto last = t0;
  std::string buf;
  bool done = false;
  std::size_t tokens = 0;
  req.content_receiver = [&](const char* d, std::size_t n, std::uint64_t, std::uint64_t) {
    buf.append(d, n);
    for (std::size_t end; (end = buf.find("\n\n")) != std::string::npos;) {
      const std::string e = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (e == "data: [DONE]") {
        done = true;
      } else if (e.find("\"text\"") != std::string::npos) {
        const auto now = Clock::now();
        (tokens == 0 ? s.ttft : s.gaps).push_back(std::chrono::duration<double>(now - (tokens == 0 ? t0 : last)).count());
        last = now;
        ++tokens;
      }
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err;
  const bool sent = c.send(req, res, err);
  const bool ok = sent && res.status == 200 && done;
  s.tokens += tokens;
  s.errors += !ok;
  if (!ok && s.errors <= 2)
    std::fprintf(stderr, "request failed: %s, status %d, %zu tokens, %s\n", sent ? "answered" : httplib::to_string(err).c_str(),
                 res.status, tokens, done ? "[DONE] seen" : "no [DONE]");
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = TINYLLM_BENCH_MODEL_DIR, type, clients_arg = "1,4,16,64,64";
  int threads = 2, requests = 2, tokens = 32, parallel = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model") dir = v;
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--clients") clients_arg = v;
    else if (a == "--requests") requests = std::atoi(v.c_str());
    else if (a == "--tokens") tokens = std::atoi(v.c_str());
    else if (a == "--parallel") parallel = std::atoi(v.c_str());
    else if (a == "--type") type = v;
  }
  std::vector<int> levels;
  for (std::stringstream ss(clients_arg); ss.good();) {
    std::string x;
    std::getline(ss, x, ',');
    if (!x.empty()) levels.push_back(std::atoi(x.c_str()));
  }
  if (dir == TINYLLM_BENCH_MODEL_DIR) {
    std::printf("model: %s (written afresh)\n", dir.c_str());
    bench::write_random_gpt2(dir, tinyllm::GPT2Config{}, false, std::string(TINYLLM_SOURCE_DIR) + "/models/tiny-sotu");
  }
  tinyllm::set_num_threads(threads);
  tinyllm::LoadOptions load;
  for (auto t : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16, tinyllm::WeightType::Q8})
    if (type == tinyllm::weight_type_name(t)) load.weight_type = t;
  const auto model = tinyllm::GPT2::from_pretrained(dir, load);
  tinyllm::server::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.model_name = "bench";
  o.engine.parallel = parallel;
  o.engine.max_queue = 256;
  tinyllm::server::Server server(model, o);
  const int port = server.bind();
  std::thread listener([&] { server.listen(); });
  std::string cpu = "unknown CPU";
  {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("model name", 0) == 0) {
        cpu = line.substr(line.find(':') + 2);
        break;
      }
  }
  std::ifstream loadavg("/proc/loadavg");
  std::string load1;
  loadavg >> load1;
  std::printf("machine: %s, %u hardware threads, load average %s at the start\n", cpu.c_str(),
              std::thread::hardware_concurrency(), load1.c_str());
  std::printf("server: 127.0.0.1:%d, --parallel %d, %d threads, %s weights; each client: %d streamed requests of %d tokens\n",
              port, parallel, threads, type.empty() ? "stored" : type.c_str(), requests, tokens);

  const std::vector<std::string> starts = {"The state of the Union", "It was the best of times", "Call me Ishmael",
                                           "In the beginning", "We the people", "Four score and seven years ago"};
  auto body = [&](std::size_t i) {
    return "{\"prompt\": \"" + starts[i % starts.size()] + "\", \"max_tokens\": " + std::to_string(tokens) +
           ", \"min_new_tokens\": " + std::to_string(tokens) + ", \"temperature\": 0, \"stream\": true}";
  };
  {  // warm up: pages the weights in
    httplib::Client c("127.0.0.1", port);
    Sample s;
    complete(c, body(0), s);
  }
  const double rss_before = rss_mb();
  std::printf("\n| clients | requests | errors | tokens/s | vs 1 client | TTFT p50 | TTFT p99 | per token p50 | per token p99 | RSS after |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  double one = 0;
  for (int clients : levels) {
    std::vector<Sample> samples(static_cast<std::size_t>(clients));
    const auto t0 = Clock::now();
    std::vector<std::thread> workers;
    for (int c = 0; c < clients; ++c)
      workers.emplace_back([&, c] {
        httplib::Client cli("127.0.0.1", port);
        cli.set_read_timeout(600, 0);
        for (int r = 0; r < requests; ++r) complete(cli, body(static_cast<std::size_t>(c * requests + r)), samples[static_cast<std::size_t>(c)]);
      });
    for (auto& w : workers) w.join();
    const double wall = since(t0);
    Sample all;
    for (const Sample& s : samples) {
      all.ttft.insert(all.ttft.end(), s.ttft.begin(), s.ttft.end());
      all.gaps.insert(all.gaps.end(), s.gaps.begin(), s.gaps.end());
      all.tokens += s.tokens;
      all.errors += s.errors;
    }
    const double tps = static_cast<double>(all.tokens) / wall;
    if (clients == 1 || one == 0) one = tps;
    std::printf("| %d | %d | %zu | %.1f | %.2fx | %.0f ms | %.0f ms | %.1f ms | %.1f ms | %.0f MB |\n", clients,
                clients * requests, all.errors, tps, tps / one, 1e3 * percentile(all.ttft, 0.5),
                1e3 * percentile(all.ttft, 0.99), 1e3 * percentile(all.gaps, 0.5), 1e3 * percentile(all.gaps, 0.99),
                rss_mb());
    std::fflush(stdout);
  }
  const double rss_after = rss_mb();
  std::printf("\nresident memory: %.0f MB before the levels, %.0f MB after (%+.0f MB)\n", rss_before, rss_after,
              rss_after - rss_before);
  server.drain(5);
  listener.join();
  return 0;
}
