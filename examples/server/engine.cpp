// Continuous batching over one model (engine.hpp).
#include "engine.hpp"

#include <algorithm>  // std::min, std::find, std::remove_if
#include <exception>  // std::exception_ptr, std::current_exception
#include <random>     // std::mt19937_64

namespace tinyllm::server {

using Backend = DefaultBackend;

Job::Job(std::vector<SequenceSpec> specs, Clock::time_point deadline)
    : specs_(std::move(specs)), arrival_(Clock::now()), deadline_(deadline), results_(specs_.size()) {}

bool Job::wait_done(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(m_);
  return cv_.wait_for(lock, timeout, [&] { return done_; });
}

void Job::end(std::optional<ApiError> error) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (done_) return;
    done_ = true;
    error_ = std::move(error);
    ++version_;
  }
  cv_.notify_all();
}

// A sequence in the running batch.
struct Engine::Sequence {
  std::shared_ptr<Job> job;
  std::size_t index;  // in job->specs()
  const SequenceSpec* spec;
  detail::InferenceState state;
  std::vector<int> ids;  // prompt + new ids
  std::size_t prompt_length, max_length;
  std::vector<int> eos;
  std::mt19937_64 rng;
  detail::StopStringMatcher stop;
  bool decoding = false;  // the prompt is in the cache; ids.back() is chosen and not yet in it
  bool ended = false;
  std::optional<detail::ProposalLength> lookup;  // prompt lookup: speculative passes of its own
  Clock::time_point last_token;
  SpeculationStats speculation;

  Sequence(const GPT2& model, std::shared_ptr<Job> j, std::size_t i)
      : job(std::move(j)), index(i), spec(&job->specs()[i]), state(model.config()), ids(spec->prompt),
        prompt_length(ids.size()) {
    const GenerationConfig& cfg = spec->cfg;
    const detail::ModelRef ref{model.config(), model.weights(), &model.tokenizer()};
    eos = detail::checked_eos(ref, cfg, model.eos_token_ids());  // cfg validated by api.cpp; its ids checked here
    const std::size_t ctx = static_cast<std::size_t>(model.config().n_positions);
    const std::size_t room = ctx > prompt_length ? ctx - prompt_length : 0;
    max_length = prompt_length + std::min(static_cast<std::size_t>(std::max(cfg.max_new_tokens, 0)), room);
    rng = detail::random_stream(cfg.seed, spec->stream);
    // Not primed with the prompt: OpenAI's stop sequences match the generated text only.
    stop = detail::StopStringMatcher(&cfg.stop_strings);
    if (cfg.prompt_lookup_num_tokens > 0) {
      const std::size_t k = static_cast<std::size_t>(cfg.prompt_lookup_num_tokens);
      lookup = detail::ProposalLength{k, std::min<std::size_t>(4, k), k, true};  // as the library's loop sets it
    }
  }
};

Engine::Engine(const GPT2& model, EngineOptions options, Metrics* metrics)
    : model_(model), opt_(options), metrics_(metrics), V_(static_cast<std::size_t>(model.config().vocab_size)),
      C_(static_cast<std::size_t>(model.config().n_embd)) {
  if (opt_.parallel < 1) detail::fail("--parallel", "must be at least 1");
  if (opt_.max_queue < 0) detail::fail("--max-queue", "must be at least 0");
  if (opt_.prefill_chunk < 1) detail::fail("--prefill-chunk", "must be at least 1");
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = closed_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

// Jobs that will wait for a slot: those that no free slot is left for when their turn comes (a job
// starts, and stops waiting, as soon as one of its sequences has a slot).
std::size_t Engine::waiting_jobs() const {
  std::size_t free = static_cast<std::size_t>(opt_.parallel) - std::min<std::size_t>(running_, static_cast<std::size_t>(opt_.parallel));
  std::size_t n = 0;
  for (const auto& j : queue_) {
    n += j->admitted_ == 0 && free == 0;
    free -= std::min(free, j->specs().size() - j->admitted_);
  }
  return n;
}

Engine::Submit Engine::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (closed_) return Submit::closed;
    queue_.push_back(job);
    if (waiting_jobs() > static_cast<std::size_t>(opt_.max_queue)) {  // it would wait beyond the bound
      queue_.pop_back();
      return Submit::queue_full;
    }
  }
  cv_.notify_all();
  return Submit::accepted;
}

void Engine::run_exclusive(const std::function<void()>& fn) {
  auto error = std::make_shared<std::exception_ptr>();
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::unique_lock<std::mutex> lock(m_);
  exclusive_.emplace_back([fn, error, done] {
    try {
      fn();
    } catch (...) {
      *error = std::current_exception();
    }
    *done = true;
  });
  cv_.notify_all();
  exclusive_done_.wait(lock, [&] { return done->load(); });
  if (*error) std::rethrow_exception(*error);
}

void Engine::close() {
  std::lock_guard<std::mutex> lock(m_);
  closed_ = true;
}

void Engine::cancel_all(const ApiError& error) {
  {
    std::lock_guard<std::mutex> lock(m_);
    cancel_error_ = error;
  }
  cv_.notify_all();
}

bool Engine::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(m_);
  return idle_.wait_for(lock, timeout, [&] { return queue_.empty() && running_ == 0; });
}

std::size_t Engine::queued() const {
  std::lock_guard<std::mutex> lock(m_);
  return waiting_jobs();
}

std::size_t Engine::running() const { return running_; }

void Engine::loop() {
  for (;;) {
    std::vector<std::function<void()>> tasks;
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] {
        return stopping_ || cancel_error_ || !queue_.empty() || !batch_.empty() || !exclusive_.empty();
      });
      if (stopping_ && !cancel_error_) cancel_error_ = ApiError(503, "The server is shutting down.", "server_error", std::nullopt, std::string("shutting_down"));
      for (auto& t : exclusive_) tasks.push_back(std::move(t));
      exclusive_.clear();
    }
    for (auto& t : tasks) t();
    if (!tasks.empty()) {
      std::lock_guard<std::mutex> lock(m_);
      exclusive_done_.notify_all();
    }
    try {
      step();
    } catch (const std::exception& e) {  // a failure of the model or the machine: the batch's jobs get a 500
      const ApiError err(500, std::string("The server had an error while generating: ") + e.what(), "server_error");
      for (auto& s : batch_) end_job(s->job, err);
      batch_.clear();
      running_ = 0;
    }
    std::lock_guard<std::mutex> lock(m_);
    if (queue_.empty() && batch_.empty()) idle_.notify_all();
    if (stopping_ && queue_.empty() && batch_.empty() && exclusive_.empty()) return;
  }
}

void Engine::end_job(const std::shared_ptr<Job>& job, std::optional<ApiError> error) {
  if (job->ended_) return;
  job->ended_ = true;
  job->end(std::move(error));
  if (metrics_) metrics_->request_done(std::chrono::duration<double>(Clock::now() - job->arrival()).count());
}

// Jobs that were cancelled, ran out of time, or are told to end (cancel_all) leave the queue and
// the batch.
void Engine::drop_ended() {
  const auto now = Clock::now();
  const ApiError timeout(503, "The request timed out (the server's --timeout).", "server_error", std::nullopt,
                         std::string("timeout"));
  const ApiError gone(499, "The client closed the connection.", "invalid_request_error", std::nullopt,
                      std::string("cancelled"));
  std::optional<ApiError> cancel;
  {
    std::lock_guard<std::mutex> lock(m_);
    cancel.swap(cancel_error_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      const std::shared_ptr<Job>& j = *it;
      if (cancel || j->cancelled() || now >= j->deadline_ || j->ended_) {
        end_job(j, cancel ? *cancel : j->cancelled() ? gone : timeout);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : batch_) {
    const std::shared_ptr<Job>& j = s->job;
    if (cancel || j->cancelled() || now >= j->deadline_) end_job(j, cancel ? *cancel : j->cancelled() ? gone : timeout);
    if (j->ended_) s->ended = true;
  }
  batch_.erase(std::remove_if(batch_.begin(), batch_.end(), [](const auto& s) { return s->ended; }), batch_.end());
  running_ = batch_.size();
}

void Engine::admit() {
  std::lock_guard<std::mutex> lock(m_);
  while (batch_.size() < static_cast<std::size_t>(opt_.parallel) && !queue_.empty()) {
    std::shared_ptr<Job> job = queue_.front();
    const std::size_t i = job->admitted_++;
    if (job->admitted_ == job->specs().size()) queue_.pop_front();
    std::unique_ptr<Sequence> s;
    try {
      s = std::make_unique<Sequence>(model_, job, i);
    } catch (const Error& e) {  // a config the library refuses (the parser checks first)
      end_job(job, invalid_request(e.what()));
      if (!queue_.empty() && queue_.front() == job) queue_.pop_front();
      continue;
    }
    if (s->max_length == s->prompt_length && !s->spec->prompt_logprobs) {  // nothing to compute
      finish(*s, FinishReason::length);
      continue;
    }
    batch_.push_back(std::move(s));
  }
  running_ = batch_.size();
}

void Engine::step() {
  drop_ended();
  admit();
  if (batch_.empty()) return;
  std::vector<Sequence*> speculating;  // decoding sequences with prompt lookup: a pass of their own
  for (auto& s : batch_)
    if (s->decoding && s->lookup) speculating.push_back(s.get());
  std::vector<Sequence*> ready;  // sequences with a hidden row in rows_ to choose a token from
  decode(ready);
  prefill(ready);
  choose_all(ready, rows_.data());
  for (Sequence* s : speculating)
    if (!s->ended) speculate(*s);
  batch_.erase(std::remove_if(batch_.begin(), batch_.end(), [](const auto& s) { return s->ended; }), batch_.end());
  running_ = batch_.size();
}

// One token for every decoding sequence in one forward_batch: the weights are read once for all.
void Engine::decode(std::vector<Sequence*>& ready) {
  std::vector<int> tokens;
  std::vector<layers::KVCache*> caches;
  for (auto& s : batch_)
    if (s->decoding && !s->lookup) {
      ready.push_back(s.get());
      tokens.push_back(s->ids.back());
      caches.push_back(&s->state.cache);
    }
  const std::size_t B = ready.size();
  rows_.resize(B * C_);
  if (B == 0) return;
  detail::forward_batch<Backend>(model_.config(), model_.weights(), act_, caches.data(), tokens.data(), B);
  std::copy(act_.x.data(), act_.x.data() + B * C_, rows_.begin());
}

// Runs up to prefill_chunk prompt tokens of the sequences still reading their prompts, in admission
// order; a sequence whose prompt is all in its cache joins `ready` with its last row.
void Engine::prefill(std::vector<Sequence*>& ready) {
  std::size_t budget = static_cast<std::size_t>(opt_.prefill_chunk);
  for (auto& sp : batch_) {
    Sequence& s = *sp;
    if (s.decoding || s.ended || budget == 0) continue;
    const std::size_t done = static_cast<std::size_t>(s.state.cache.length());
    const std::size_t T = std::min(budget, s.prompt_length - done);
    detail::forward_hidden<Backend>(model_.config(), model_.weights(), s.state, s.ids.data() + done, T);
    budget -= T;
    if (metrics_) metrics_->prompt_tokens(T);
    if (s.spec->prompt_logprobs) prompt_logprobs(s, done, T);
    if (done + T < s.prompt_length) continue;
    if (s.max_length == s.prompt_length) {  // echo with max_tokens 0: the prompt's log-probs were the work
      finish(s, FinishReason::length);
      continue;
    }
    const float* last = s.state.x.data() + (T - 1) * C_;
    rows_.insert(rows_.end(), last, last + C_);
    ready.push_back(&s);
  }
}

// Log-probs of the prompt tokens that rows [from, from + T) of s.state.x predict, from the raw logits.
void Engine::prompt_logprobs(Sequence& s, std::size_t from, std::size_t T) {
  constexpr std::size_t block = 32;  // rows of logits at a time: 32 x V floats
  const std::size_t top_n = static_cast<std::size_t>(s.spec->cfg.top_logprobs);
  std::vector<TokenOut> out;
  for (std::size_t b = 0; b < T; b += block) {
    const std::size_t n = std::min(block, T - b);
    logits_.resize(n * V_);
    detail::lm_head<Backend>(model_.weights(), s.state.x.data() + b * C_, n, logits_.data());
    std::vector<TokenOut> part(n);
    Backend::parallel_for(0, n, [&](std::size_t i0, std::size_t i1) {
      for (std::size_t i = i0; i < i1; ++i) {
        const std::size_t next = from + b + i + 1;  // the prompt token row i predicts
        if (next >= s.prompt_length) continue;
        part[i].id = s.ids[next];
        part[i].logprob = detail::token_logprob(logits_.data() + i * V_, V_, s.ids[next], top_n, &part[i].top);
      }
    });
    for (std::size_t i = 0; i < n; ++i)
      if (from + b + i + 1 < s.prompt_length) out.push_back(std::move(part[i]));
  }
  {
    std::lock_guard<std::mutex> lock(s.job->m_);
    auto& dst = s.job->results_[s.index].prompt;
    dst.insert(dst.end(), std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
    ++s.job->version_;
  }
  s.job->cv_.notify_all();
}

// One pass of the head over every ready row, the choices in parallel, then the tokens in order.
void Engine::choose_all(const std::vector<Sequence*>& ready, const float* hidden) {
  const std::size_t n = ready.size();
  if (n == 0) return;
  logits_.resize(n * V_);
  detail::lm_head<Backend>(model_.weights(), hidden, n, logits_.data());
  std::vector<TokenOut> out(n);
  Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) choose(*ready[i], logits_.data() + i * V_, out[i], ready[i]->spec->logprobs);
  });
  if (metrics_) metrics_->step(n);
  for (std::size_t i = 0; i < n; ++i) {
    Sequence& s = *ready[i];
    s.decoding = true;
    emit(s, std::move(out[i]));
  }
}

// The library's choice (Sequence::choose in generation/sequence.hpp): processors on the sequence's ids, warpers when sampling,
// the sampler or argmax, the log-prob under the processed distribution. OpenAI's logit_bias and
// presence / frequency penalties are added to the logits first.
void Engine::choose(Sequence& s, float* row, TokenOut& out, bool want_logprob) const {
  const GenerationConfig& cfg = s.spec->cfg;
  const ScoreAdjustments& adj = s.spec->adjust;
  if (adj.active()) {
    for (const auto& [id, bias] : adj.logit_bias) row[id] += bias;
    if (adj.presence_penalty != 0.0f || adj.frequency_penalty != 0.0f) {
      std::vector<int> generated(s.ids.begin() + static_cast<std::ptrdiff_t>(s.prompt_length), s.ids.end());
      std::sort(generated.begin(), generated.end());
      for (std::size_t i = 0; i < generated.size();) {
        std::size_t j = i;
        while (j < generated.size() && generated[j] == generated[i]) ++j;
        row[generated[i]] -= static_cast<float>(j - i) * adj.frequency_penalty + adj.presence_penalty;
        i = j;
      }
    }
  }
  detail::process(row, {s.ids.data(), s.ids.size(), s.prompt_length}, cfg, s.eos);
  if (cfg.do_sample) detail::warp(row, V_, cfg);
  out.id = cfg.do_sample ? detail::sample_from(row, V_, s.rng) : detail::argmax(row, V_);
  if (want_logprob) out.logprob = detail::token_logprob(row, V_, out.id, static_cast<std::size_t>(cfg.top_logprobs), &out.top);
}

// Appends a token to the sequence and its job's result; finishes the sequence at an eos token, a
// stop sequence or its length (the library's Sequence::emit). Returns whether it finished.
bool Engine::emit(Sequence& s, TokenOut t) {
  const int id = t.id;
  s.ids.push_back(id);
  const auto now = Clock::now();
  SequenceResult& r = s.job->results_[s.index];
  {
    std::lock_guard<std::mutex> lock(s.job->m_);
    r.tokens.push_back(std::move(t));
    ++s.job->version_;
  }
  s.job->cv_.notify_all();
  if (metrics_) {
    metrics_->generated_tokens(1);
    if (s.ids.size() == s.prompt_length + 1)
      metrics_->first_token(std::chrono::duration<double>(now - s.job->arrival()).count());
    else
      metrics_->inter_token(std::chrono::duration<double>(now - s.last_token).count());
  }
  s.last_token = now;
  std::optional<FinishReason> end;
  if (std::find(s.eos.begin(), s.eos.end(), id) != s.eos.end()) {
    end = FinishReason::eos;
  } else if (s.stop.active()) {
    std::string_view bytes;
    try {
      bytes = model_.tokenizer().token_bytes(id);
    } catch (const Error&) {  // a hole in the vocabulary: no text
    }
    if (s.stop.push(bytes)) end = FinishReason::stop_string;
  }
  if (!end && s.ids.size() >= s.max_length) end = FinishReason::length;
  if (end) finish(s, *end);
  return end.has_value();
}

void Engine::finish(Sequence& s, FinishReason reason) {
  s.ended = true;
  {
    std::lock_guard<std::mutex> lock(s.job->m_);
    SequenceResult& r = s.job->results_[s.index];
    r.finished = true;
    r.reason = reason;
    r.speculation = s.speculation;
    r.speculation.generated = s.ids.size() - s.prompt_length;
    ++s.job->version_;
  }
  s.job->cv_.notify_all();
  if (++s.job->finished_ == s.job->specs().size()) end_job(s.job, std::nullopt);
}

// Prompt lookup, one pass (the library's prompt-lookup step in generation/speculative_loop.hpp): [last id, proposals...] run through
// the model at once; the tokens the model agrees with are kept, plus the one it chooses after them,
// and the cache is rolled back past the rest. The cache holds every id but the last between passes.
void Engine::speculate(Sequence& s) {
  const GenerationConfig& cfg = s.spec->cfg;
  const std::size_t n = s.ids.size(), room = s.max_length - n - 1;  // tokens after this pass's last choice
  const std::vector<int> proposals = detail::prompt_lookup(s.ids, static_cast<std::size_t>(cfg.max_matching_ngram_size),
                                                           std::min(room, s.lookup->tokens), s.prompt_length);
  const std::size_t k = proposals.size();
  std::vector<int> pass(1, s.ids.back());
  pass.insert(pass.end(), proposals.begin(), proposals.end());
  detail::forward_hidden<Backend>(model_.config(), model_.weights(), s.state, pass.data(), k + 1);
  logits_.resize((k + 1) * V_);
  detail::lm_head<Backend>(model_.weights(), s.state.x.data(), k + 1, logits_.data());
  if (metrics_) metrics_->step(1);
  std::size_t accepted = 0;
  for (std::size_t i = 0; i <= k; ++i) {
    TokenOut t;
    choose(s, logits_.data() + i * V_, t, s.spec->logprobs);
    const bool agreed = i < k && t.id == proposals[i];
    accepted += agreed;
    if (emit(s, std::move(t)) || !agreed) break;
  }
  s.speculation.target_passes += 1;
  s.speculation.proposed += k;
  s.speculation.accepted += accepted;
  if (metrics_) metrics_->speculation(k, accepted);
  s.state.cache.set_length(static_cast<int>(std::min(n + accepted, s.ids.size() - 1)));
  s.lookup->update(k, accepted);
  if (s.ended) {  // finish() ran before the last pass was counted
    std::lock_guard<std::mutex> lock(s.job->m_);
    SequenceResult& r = s.job->results_[s.index];
    r.speculation = s.speculation;
    r.speculation.generated = s.ids.size() - s.prompt_length;
  }
}

}  // namespace tinyllm::server
