// What tinyllm serve counts, and its Prometheus text exposition (GET /metrics): requests by endpoint
// and status, prompt and generated tokens, generated tokens per second, queue depth and batch size,
// time to first token and per-token latency, speculative decoding's proposals and acceptances.
// Thread-safe: the engine and the HTTP threads update it. Depends on the standard library only.
#pragma once

#include <atomic>   // std::atomic
#include <chrono>   // std::chrono::steady_clock
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t
#include <deque>    // std::deque
#include <map>      // std::map
#include <mutex>    // std::mutex
#include <string>   // std::string
#include <utility>  // std::pair
#include <vector>   // std::vector

namespace tinyllm::server {

// A Prometheus histogram: counts of observations at or below each bound, their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends "# HELP", "# TYPE" and the _bucket / _sum / _count lines of `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex m_;
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // [bounds + 1]: the last is +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;
  Metrics();

  // An answered HTTP request (endpoint: the route's path, or "other").
  void request(const std::string& endpoint, int status);
  // The engine's accounting.
  void prompt_tokens(std::size_t n) { prompt_tokens_ += n; }
  void generated_tokens(std::size_t n);
  void step(std::size_t rows);  // one pass of the batch with `rows` sequences choosing a token
  void speculation(std::size_t proposed, std::size_t accepted) {
    spec_proposed_ += proposed;
    spec_accepted_ += accepted;
  }
  void first_token(double seconds) { ttft_.observe(seconds); }
  void inter_token(double seconds) { inter_token_.observe(seconds); }
  void request_done(double seconds) { latency_.observe(seconds); }

  // Generated tokens per second over the last `window` seconds.
  double tokens_per_second(double window = 10.0) const;
  // The exposition, with the engine's current queue depth and running sequences.
  std::string render(std::size_t queued, std::size_t running, std::size_t parallel, std::size_t max_queue) const;

 private:
  mutable std::mutex m_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::atomic<std::uint64_t> prompt_tokens_{0}, generated_{0}, steps_{0}, step_rows_{0}, last_batch_{0};
  std::atomic<std::uint64_t> spec_proposed_{0}, spec_accepted_{0};
  mutable std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;  // (time, generated) a second apart
  Histogram ttft_, inter_token_, latency_, batch_;
};

}  // namespace tinyllm::server
