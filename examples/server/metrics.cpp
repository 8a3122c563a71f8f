// Counters, histograms and the Prometheus text format (metrics.hpp).
#include "metrics.hpp"

#include <cstdio>  // std::snprintf

namespace tinyllm::server {

namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}
void sample(std::string& out, const std::string& name, double v, const std::string& labels = "") {
  out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + num(v) + "\n";
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(m_);
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(m_);
  header(out, name, "histogram", help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    sample(out, name + "_bucket", static_cast<double>(cumulative),
           "le=\"" + (i < bounds_.size() ? num(bounds_[i]) : std::string("+Inf")) + "\"");
  }
  sample(out, name + "_sum", sum_);
  sample(out, name + "_count", static_cast<double>(count_));
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      inter_token_({0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28}),
      latency_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}),
      batch_({1, 2, 4, 8, 16, 32, 64, 128}) {}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(m_);
  ++requests_[{endpoint, status}];
}

void Metrics::generated_tokens(std::size_t n) {
  generated_ += n;
  std::lock_guard<std::mutex> lock(m_);
  const auto now = Clock::now();
  if (samples_.empty() || now - samples_.back().first >= std::chrono::seconds(1)) samples_.emplace_back(now, generated_.load());
  while (samples_.size() > 120) samples_.pop_front();
}

void Metrics::step(std::size_t rows) {
  ++steps_;
  step_rows_ += rows;
  last_batch_ = rows;
  batch_.observe(static_cast<double>(rows));
}

double Metrics::tokens_per_second(double window) const {
  std::lock_guard<std::mutex> lock(m_);
  const auto now = Clock::now();
  const std::uint64_t total = generated_.load();
  // The oldest sample within the window (the samples are a second or more apart).
  for (const auto& s : samples_) {
    const double age = std::chrono::duration<double>(now - s.first).count();
    if (age <= window && age > 0) return static_cast<double>(total - s.second) / age;
  }
  return 0.0;
}

std::string Metrics::render(std::size_t queued, std::size_t running, std::size_t parallel, std::size_t max_queue) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(m_);
    header(out, "tinyllm_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    for (const auto& [key, n] : requests_)
      sample(out, "tinyllm_requests_total", static_cast<double>(n),
             "endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"");
  }
  header(out, "tinyllm_prompt_tokens_total", "counter", "Prompt tokens processed.");
  sample(out, "tinyllm_prompt_tokens_total", static_cast<double>(prompt_tokens_.load()));
  header(out, "tinyllm_generation_tokens_total", "counter", "Tokens generated.");
  sample(out, "tinyllm_generation_tokens_total", static_cast<double>(generated_.load()));
  header(out, "tinyllm_generation_tokens_per_second", "gauge", "Tokens generated per second over the last 10 seconds.");
  sample(out, "tinyllm_generation_tokens_per_second", tokens_per_second());
  header(out, "tinyllm_requests_waiting", "gauge", "Requests queued for a slot (the queue depth).");
  sample(out, "tinyllm_requests_waiting", static_cast<double>(queued));
  header(out, "tinyllm_queue_capacity", "gauge", "Requests the queue holds before answering 503 (--max-queue).");
  sample(out, "tinyllm_queue_capacity", static_cast<double>(max_queue));
  header(out, "tinyllm_sequences_running", "gauge", "Sequences in the running batch.");
  sample(out, "tinyllm_sequences_running", static_cast<double>(running));
  header(out, "tinyllm_batch_capacity", "gauge", "Sequences the batch holds (--parallel).");
  sample(out, "tinyllm_batch_capacity", static_cast<double>(parallel));
  header(out, "tinyllm_batch_size", "gauge", "Sequences that chose a token in the last step.");
  sample(out, "tinyllm_batch_size", static_cast<double>(last_batch_.load()));
  header(out, "tinyllm_steps_total", "counter", "Decoding steps (one pass over the weights for the whole batch).");
  sample(out, "tinyllm_steps_total", static_cast<double>(steps_.load()));
  header(out, "tinyllm_step_sequences_total", "counter",
         "Sequences summed over steps (divided by tinyllm_steps_total: the mean batch size).");
  sample(out, "tinyllm_step_sequences_total", static_cast<double>(step_rows_.load()));
  batch_.render(out, "tinyllm_step_batch_size", "Sequences per decoding step.");
  header(out, "tinyllm_speculative_proposed_tokens_total", "counter",
         "Tokens proposed by speculative decoding (prompt_lookup_num_tokens).");
  sample(out, "tinyllm_speculative_proposed_tokens_total", static_cast<double>(spec_proposed_.load()));
  header(out, "tinyllm_speculative_accepted_tokens_total", "counter", "Proposed tokens the model accepted.");
  sample(out, "tinyllm_speculative_accepted_tokens_total", static_cast<double>(spec_accepted_.load()));
  header(out, "tinyllm_speculative_acceptance_rate", "gauge", "Accepted / proposed tokens since the start.");
  const double proposed = static_cast<double>(spec_proposed_.load());
  sample(out, "tinyllm_speculative_acceptance_rate", proposed > 0 ? static_cast<double>(spec_accepted_.load()) / proposed : 0.0);
  ttft_.render(out, "tinyllm_time_to_first_token_seconds", "From a request's arrival to its first token.");
  inter_token_.render(out, "tinyllm_inter_token_latency_seconds", "Between consecutive tokens of a sequence.");
  latency_.render(out, "tinyllm_request_duration_seconds", "From a completion request's arrival to its last token.");
  return out;
}

}  // namespace tinyllm::server
