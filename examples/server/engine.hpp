// tinyllm serve's engine: continuous batching over one model on one thread. Requests (Jobs) queue
// their sequences; at every step the engine admits queued sequences into the running batch (up to
// `parallel`), runs a piece of each new prompt (prefill, `prefill_chunk` tokens a step), advances
// every decoding sequence by one token in a single forward_batch (one read of the weights for all of
// them), and lets finished, cancelled or timed-out sequences leave. So requests that arrive while
// others decode join at the next step.
//
// Exact: a sequence's tokens are what the library's generate() gives for the same prompt and config
// alone: forward_batch's rows and a chunked prompt's rows are bitwise those of one sequence, the
// choice of a token runs the library's processors, warpers and sampler on the sequence's own ids,
// and sequence r of a seeded request draws from random_stream(seed, r) whatever else runs.
// Depends on the library (gpt2.hpp and generation/) and api.hpp / choice.hpp / metrics.hpp.
#pragma once

#include <atomic>              // std::atomic
#include <chrono>              // std::chrono
#include <condition_variable>  // std::condition_variable
#include <cstddef>             // std::size_t
#include <deque>               // std::deque
#include <functional>          // std::function
#include <memory>              // std::shared_ptr, std::unique_ptr
#include <mutex>               // std::mutex
#include <optional>            // std::optional
#include <string>              // std::string
#include <thread>              // std::thread
#include <vector>              // std::vector

#include <tinyllm/gpt2.hpp>

#include "api.hpp"
#include "choice.hpp"
#include "metrics.hpp"

namespace tinyllm::server {

using Clock = std::chrono::steady_clock;

// One sequence to generate.
struct SequenceSpec {
  std::vector<int> prompt;
  GenerationConfig cfg;          // max_new_tokens, sampling, processors, stop_strings, seed, top_logprobs,
                                 // prompt_lookup_num_tokens (num_return_sequences and num_beams are 1)
  std::size_t stream = 0;        // draws from random_stream(cfg.seed, stream): return sequence `stream`
  bool logprobs = false;         // each new token's log-prob, with cfg.top_logprobs alternatives
  bool prompt_logprobs = false;  // the same for the prompt's tokens after the first (echo)
  ScoreAdjustments adjust;
};

// What a sequence has produced so far.
struct SequenceResult {
  std::vector<TokenOut> prompt;  // prompt_logprobs: entries of prompt tokens 1..T-1
  std::vector<TokenOut> tokens;  // new tokens
  bool finished = false;
  FinishReason reason = FinishReason::length;
  SpeculationStats speculation;
};

// A request's sequences and their results. The HTTP thread waits on it; the engine fills it.
class Job {
 public:
  Job(std::vector<SequenceSpec> specs, Clock::time_point deadline);

  const std::vector<SequenceSpec>& specs() const { return specs_; }
  Clock::time_point arrival() const { return arrival_; }

  // Asks the engine to drop the job (client gone): its sequences leave the batch at the next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Waits up to `timeout` for news, then calls f(results, done, error) under the job's lock.
  // done: every sequence finished or the job ended early; error: why it ended early (empty if not).
  template <class F>
  void read(std::chrono::milliseconds timeout, F&& f) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait_for(lock, timeout, [&] { return version_ != seen_; });
    seen_ = version_;
    f(static_cast<const std::vector<SequenceResult>&>(results_), done_, static_cast<const std::optional<ApiError>&>(error_));
  }
  // Waits until the job is done (or `timeout` passes); true if done.
  bool wait_done(std::chrono::milliseconds timeout);

 private:
  friend class Engine;
  void end(std::optional<ApiError> error);  // done, early if error is set

  const std::vector<SequenceSpec> specs_;
  const Clock::time_point arrival_, deadline_;
  std::atomic<bool> cancelled_{false};
  std::size_t admitted_ = 0;  // sequences the engine has started (changed under the engine's lock)
  std::size_t finished_ = 0;  // sequences finished (engine thread only)
  bool ended_ = false;        // end() was called (engine thread only)

  std::mutex m_;
  std::condition_variable cv_;
  std::uint64_t version_ = 0, seen_ = 0;
  std::vector<SequenceResult> results_;
  bool done_ = false;
  std::optional<ApiError> error_;
};

struct EngineOptions {
  int parallel = 8;         // sequences in the running batch at most
  int max_queue = 64;       // requests waiting for a slot at most (submit refuses more)
  int prefill_chunk = 512;  // prompt tokens run per step (a long prompt is spread over steps)
};

class Engine {
 public:
  Engine(const GPT2& model, EngineOptions options, Metrics* metrics);
  ~Engine();  // cancels what is left and joins the engine thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  enum class Submit { accepted, queue_full, closed };
  Submit submit(const std::shared_ptr<Job>& job);

  // Runs fn on the engine thread between two steps (the thread that owns the model's compute) and
  // waits for it; fn's exception, if any, is rethrown here. For work beside generation (embeddings).
  void run_exclusive(const std::function<void()>& fn);

  // Refuses new jobs from now on (submit returns closed); those taken run on.
  void close();
  // Ends every queued and running job now with `error`.
  void cancel_all(const ApiError& error);
  // Waits until no job is queued or running, up to `timeout`; true if so.
  bool wait_idle(std::chrono::milliseconds timeout);

  std::size_t queued() const;   // requests waiting for their first slot
  std::size_t running() const;  // sequences in the batch
  const EngineOptions& options() const { return opt_; }

 private:
  struct Sequence;
  void loop();
  void step();
  void admit();
  void drop_ended();
  void prefill(std::vector<Sequence*>& ready);
  void decode(std::vector<Sequence*>& ready);
  void speculate(Sequence& s);
  void choose_all(const std::vector<Sequence*>& rows, const float* hidden);
  void choose(Sequence& s, float* row, TokenOut& out, bool want_logprob) const;
  bool emit(Sequence& s, TokenOut t);
  void finish(Sequence& s, FinishReason reason);
  void prompt_logprobs(Sequence& s, std::size_t from, std::size_t T);
  void end_job(const std::shared_ptr<Job>& job, std::optional<ApiError> error);
  std::size_t waiting_jobs() const;  // (with m_ held)

  const GPT2 model_;
  const EngineOptions opt_;
  Metrics* metrics_;
  const std::size_t V_, C_;

  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // jobs with sequences not yet admitted, in arrival order
  std::deque<std::function<void()>> exclusive_;  // run_exclusive's tasks
  std::condition_variable exclusive_done_, idle_;
  std::optional<ApiError> cancel_error_;  // cancel_all's, for the engine thread to apply
  bool closed_ = false, stopping_ = false;
  std::atomic<std::size_t> running_{0};

  // Engine thread only.
  std::vector<std::unique_ptr<Sequence>> batch_;
  detail::Activations act_;
  std::vector<float> rows_, logits_;  // [n, C], [n, V]
  std::thread thread_;
};

}  // namespace tinyllm::server
