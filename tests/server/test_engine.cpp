// tinyllm serve's engine against the library: requests batched continuously (joining and leaving
// between steps, prompts in chunks) give exactly the tokens generate() gives alone; seeded sampling
// keeps the seed contract; echo log-probs are the model's; cancellation, timeouts and the queue bound.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "engine.hpp"
#include "server_test_helpers.hpp"

using namespace tinyllm;
using namespace tinyllm::server;
using namespace std::chrono_literals;

namespace {

std::vector<int> ids(const std::string& text) { return test::demo().tokenizer().encode(text); }

SequenceSpec greedy(const std::string& prompt, int max_new) {
  SequenceSpec s;
  s.prompt = ids(prompt);
  s.cfg.max_new_tokens = max_new;
  s.cfg.top_k = 0;
  return s;
}

std::shared_ptr<Job> job(std::vector<SequenceSpec> specs, std::chrono::milliseconds timeout = 60s) {
  return std::make_shared<Job>(std::move(specs), Clock::now() + timeout);
}

// The job's results once done (and its error, if it ended early).
std::pair<std::vector<SequenceResult>, std::optional<ApiError>> results(const std::shared_ptr<Job>& j) {
  REQUIRE(j->wait_done(60s));
  std::pair<std::vector<SequenceResult>, std::optional<ApiError>> out;
  j->read(0ms, [&](const std::vector<SequenceResult>& r, bool, const std::optional<ApiError>& e) {
    out.first = r;
    out.second = e;
  });
  return out;
}

std::vector<int> new_ids(const SequenceResult& r) {
  std::vector<int> v;
  for (const TokenOut& t : r.tokens) v.push_back(t.id);
  return v;
}

// What the library's generate() gives alone: the new ids.
std::vector<int> alone(const SequenceSpec& s) {
  const std::vector<int> all = test::demo().generate(s.prompt, s.cfg);
  return std::vector<int>(all.begin() + static_cast<std::ptrdiff_t>(s.prompt.size()), all.end());
}

const std::vector<std::string> prompts = {
    "The state of the Union",
    "We the people of the United States, in order to form a more perfect union, establish justice",
    "Tonight",
    "My fellow Americans, the economy",
    "Health care and education are the pillars of a strong nation, and we will",
};

}  // namespace

TEST_CASE("engine: greedy requests in one continuous batch give generate()'s tokens alone") {
  EngineOptions o;
  o.parallel = 3;       // five requests: two wait and join as others leave
  o.prefill_chunk = 4;  // prompts read over several steps, beside decoding sequences
  Metrics m;
  Engine engine(test::demo(), o, &m);
  std::vector<std::shared_ptr<Job>> jobs;
  std::vector<SequenceSpec> specs;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    specs.push_back(greedy(prompts[i], 10 + 7 * static_cast<int>(i)));
    jobs.push_back(job({specs.back()}));
    REQUIRE(engine.submit(jobs.back()) == Engine::Submit::accepted);
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    CAPTURE(prompts[i]);
    const auto [r, err] = results(jobs[i]);
    REQUIRE_FALSE(err);
    CHECK(new_ids(r[0]) == alone(specs[i]));
    CHECK(r[0].finished);
    CHECK(r[0].reason == FinishReason::length);
  }
  CHECK(engine.wait_idle(5s));
  CHECK(engine.running() == 0);
  CHECK(engine.queued() == 0);
}

TEST_CASE("engine: a request arriving mid-decode joins the running batch and stays exact") {
  EngineOptions o;
  o.parallel = 4;
  Metrics m;
  Engine engine(test::demo(), o, &m);
  const SequenceSpec a = greedy(prompts[1], 120);
  const auto ja = job({a});
  REQUIRE(engine.submit(ja) == Engine::Submit::accepted);
  std::size_t a_tokens = 0;  // wait until A decodes
  while (a_tokens < 5)
    ja->read(50ms, [&](const std::vector<SequenceResult>& r, bool, const auto&) { a_tokens = r[0].tokens.size(); });
  const SequenceSpec b = greedy(prompts[3], 20), c = greedy(prompts[0], 30);
  const auto jb = job({b}), jc = job({c});
  REQUIRE(engine.submit(jb) == Engine::Submit::accepted);
  REQUIRE(engine.submit(jc) == Engine::Submit::accepted);
  REQUIRE(jb->wait_done(60s));
  bool a_running_when_b_done = false;
  ja->read(0ms, [&](const std::vector<SequenceResult>& r, bool, const auto&) { a_running_when_b_done = !r[0].finished; });
  CHECK(a_running_when_b_done);  // B joined A's batch and left it
  CHECK(new_ids(results(jb).first[0]) == alone(b));
  CHECK(new_ids(results(jc).first[0]) == alone(c));
  CHECK(new_ids(results(ja).first[0]) == alone(a));
  // batched steps: more rows than steps
  const std::string metrics = m.render(0, 0, 4, 0);
  CHECK(metrics.find("tinyllm_step_batch_size_bucket{le=\"4\"}") != std::string::npos);
}

TEST_CASE("engine: seeded sampling follows the seed contract, with the library's log-probs") {
  GenerationConfig cfg;
  cfg.do_sample = true;
  cfg.temperature = 0.9f;
  cfg.top_k = 40;
  cfg.top_p = 0.95f;
  cfg.seed = 1234567;
  cfg.max_new_tokens = 24;
  cfg.top_logprobs = 3;
  cfg.num_return_sequences = 3;
  const std::vector<int> prompt = ids(prompts[4]);
  const std::vector<GenerationResult> lib = test::demo().generate_with_scores(prompt, cfg);

  EngineOptions o;
  o.parallel = 2;  // the three streams do not even run together
  Metrics m;
  Engine engine(test::demo(), o, &m);
  std::vector<SequenceSpec> specs;
  for (std::size_t r = 0; r < 3; ++r) {
    SequenceSpec s;
    s.prompt = prompt;
    s.cfg = cfg;
    s.cfg.num_return_sequences = 1;
    s.stream = r;
    s.logprobs = true;
    specs.push_back(s);
  }
  // Other work in the batch first, so the streams start at different steps.
  const auto other = job({greedy(prompts[2], 40)});
  REQUIRE(engine.submit(other) == Engine::Submit::accepted);
  const auto j = job(specs);
  REQUIRE(engine.submit(j) == Engine::Submit::accepted);
  const auto [res, err] = results(j);
  REQUIRE_FALSE(err);
  for (std::size_t r = 0; r < 3; ++r) {
    CAPTURE(r);
    CHECK(new_ids(res[r]) == lib[r].new_ids());
    REQUIRE(res[r].tokens.size() == lib[r].logprobs.size());
    for (std::size_t t = 0; t < res[r].tokens.size(); ++t) {
      CHECK(res[r].tokens[t].logprob == lib[r].logprobs[t]);
      REQUIRE(res[r].tokens[t].top.size() == lib[r].top_logprobs[t].size());
      for (std::size_t k = 0; k < res[r].tokens[t].top.size(); ++k) {
        CHECK(res[r].tokens[t].top[k].id == lib[r].top_logprobs[t][k].id);
        CHECK(res[r].tokens[t].top[k].logprob == lib[r].top_logprobs[t][k].logprob);
      }
    }
  }
  results(other);
}

TEST_CASE("engine: echo log-probs are the log-softmax of the model's logits at each prompt position") {
  const std::vector<int> prompt = ids(prompts[1]);
  const std::vector<float> logits = test::demo().forward(prompt);  // [T, V]
  const std::size_t V = static_cast<std::size_t>(test::demo().config().vocab_size);
  EngineOptions o;
  o.prefill_chunk = 5;  // the log-probs come chunk by chunk
  Metrics m;
  Engine engine(test::demo(), o, &m);
  SequenceSpec s;
  s.prompt = prompt;
  s.cfg.max_new_tokens = 0;  // echo + max_tokens 0: score the prompt only
  s.cfg.top_logprobs = 2;
  s.prompt_logprobs = true;
  const auto j = job({s});
  REQUIRE(engine.submit(j) == Engine::Submit::accepted);
  const auto [res, err] = results(j);
  REQUIRE_FALSE(err);
  REQUIRE(res[0].prompt.size() == prompt.size() - 1);
  CHECK(res[0].tokens.empty());
  CHECK(res[0].reason == FinishReason::length);
  for (std::size_t i = 1; i < prompt.size(); ++i) {
    const float* row = logits.data() + (i - 1) * V;  // position i - 1 predicts token i
    double mx = row[0], sum = 0;
    for (std::size_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (std::size_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
    const double expected = static_cast<double>(row[prompt[i]]) - mx - std::log(sum);
    const TokenOut& t = res[0].prompt[i - 1];
    CHECK(t.id == prompt[i]);
    CHECK(t.logprob == doctest::Approx(expected).epsilon(1e-5));
    REQUIRE(t.top.size() == 2);
    CHECK(t.top[0].id == static_cast<int>(std::max_element(row, row + V) - row));
  }
}

TEST_CASE("engine: stop sequences (in the new text only) and eos end a sequence as the library does") {
  Metrics m;
  Engine engine(test::demo(), EngineOptions{}, &m);
  SequenceSpec s = greedy(prompts[0], 40);
  s.cfg.stop_strings = {"United"};
  const auto j = job({s});
  REQUIRE(engine.submit(j) == Engine::Submit::accepted);
  const auto r = results(j).first[0];
  CHECK(r.reason == FinishReason::stop_string);
  GenerationConfig lib = s.cfg;  // the prompt does not contain the stop sequence: the library agrees
  const auto expected = test::demo().generate_with_scores(s.prompt, lib)[0];
  CHECK(expected.finish_reason == FinishReason::stop_string);
  CHECK(new_ids(r) == expected.new_ids());
  // a stop sequence that begins in the prompt does not count (OpenAI matches the completion only)
  SequenceSpec t = greedy("The state of the Union, and the United", 3);
  t.cfg.stop_strings = {"United States"};  // " States" comes next, but "United" is the prompt's
  const auto jt = job({t});
  REQUIRE(engine.submit(jt) == Engine::Submit::accepted);
  const auto rt = results(jt).first[0];
  CHECK(rt.reason == FinishReason::length);
  CHECK(rt.tokens.size() == 3);
  // eos: a logit bias of +100 makes <|endoftext|> the greedy choice; it ends the sequence
  SequenceSpec e = greedy(prompts[2], 10);
  e.adjust.logit_bias = {{50256, 100.0f}};
  const auto je = job({e});
  REQUIRE(engine.submit(je) == Engine::Submit::accepted);
  const auto re = results(je).first[0];
  CHECK(new_ids(re) == std::vector<int>{50256});
  CHECK(re.reason == FinishReason::eos);
}

TEST_CASE("engine: presence and frequency penalties and logit_bias, against a step-by-step computation") {
  Metrics m;
  Engine engine(test::demo(), EngineOptions{}, &m);
  SequenceSpec s = greedy(prompts[0], 16);
  s.adjust.frequency_penalty = 1.5f;
  s.adjust.presence_penalty = 0.5f;
  s.adjust.logit_bias = {{262, -3.0f}, {13, 1.0f}};  // " the", "."
  const auto j = job({s});
  REQUIRE(engine.submit(j) == Engine::Submit::accepted);
  const std::vector<int> got = new_ids(results(j).first[0]);
  // The oracle: the model's logits for the sequence so far, OpenAI's formula applied by hand, argmax.
  std::vector<int> seq = s.prompt, expected;
  for (int step = 0; step < 16; ++step) {
    std::vector<float> l = test::demo().logits(seq);
    l[262] += -3.0f;
    l[13] += 1.0f;
    std::vector<int> counts(l.size(), 0);
    for (std::size_t i = s.prompt.size(); i < seq.size(); ++i) ++counts[static_cast<std::size_t>(seq[i])];
    for (std::size_t v = 0; v < l.size(); ++v)
      if (counts[v] > 0) l[v] -= static_cast<float>(counts[v]) * 1.5f + 0.5f;
    const int next = static_cast<int>(std::max_element(l.begin(), l.end()) - l.begin());
    expected.push_back(next);
    seq.push_back(next);
  }
  CHECK(got == expected);
  CHECK(got != alone(greedy(prompts[0], 16)));  // the penalties changed the text
}

TEST_CASE("engine: prompt lookup (speculative) gives plain greedy's tokens and counts its proposals") {
  Metrics m;
  Engine engine(test::demo(), EngineOptions{}, &m);
  SequenceSpec s = greedy(prompts[0], 60);
  s.cfg.prompt_lookup_num_tokens = 8;
  const auto j = job({s, greedy(prompts[3], 30)});
  REQUIRE(engine.submit(j) == Engine::Submit::accepted);
  const auto r = results(j).first;
  CHECK(new_ids(r[0]) == alone(greedy(prompts[0], 60)));
  CHECK(new_ids(r[1]) == alone(greedy(prompts[3], 30)));
  CHECK(r[0].speculation.proposed > 0);
  CHECK(r[0].speculation.accepted > 0);
  CHECK(r[0].speculation.target_passes < 60);  // several tokens per pass on this repetitive text
  CHECK(m.render(0, 0, 1, 0).find("tinyllm_speculative_accepted_tokens_total " +
                                  std::to_string(r[0].speculation.accepted)) != std::string::npos);
}

TEST_CASE("engine: cancellation and timeouts free the slot; the queue is bounded") {
  EngineOptions o;
  o.parallel = 1;
  o.max_queue = 1;
  Metrics m;
  Engine engine(test::demo(), o, &m);
  const auto a = job({greedy(prompts[1], 150)});
  const auto b = job({greedy(prompts[0], 5)});
  const auto c = job({greedy(prompts[2], 5)});
  REQUIRE(engine.submit(a) == Engine::Submit::accepted);
  REQUIRE(engine.submit(b) == Engine::Submit::accepted);  // waits for A's slot
  CHECK(engine.submit(c) == Engine::Submit::queue_full);  // the queue holds one
  CHECK(engine.queued() == 1);
  a->cancel();  // a client gone: A leaves the batch at the next step and B runs
  const auto [ra, ea] = results(a);
  REQUIRE(ea);
  CHECK(ea->code == std::optional<std::string>("cancelled"));
  CHECK(ra[0].tokens.size() < 150);
  const auto [rb, eb] = results(b);
  CHECK_FALSE(eb);
  CHECK(new_ids(rb[0]) == alone(greedy(prompts[0], 5)));
  // A request past its deadline ends with a timeout error, queued or running.
  const auto d = job({greedy(prompts[1], 200)}, 30ms);
  REQUIRE(engine.submit(d) == Engine::Submit::accepted);
  const auto [rd, ed] = results(d);
  REQUIRE(ed);
  CHECK(ed->status == 503);
  CHECK(ed->code == std::optional<std::string>("timeout"));
  CHECK(engine.wait_idle(5s));
  CHECK(engine.running() == 0);
}

TEST_CASE("engine: close, cancel_all and run_exclusive") {
  EngineOptions o;
  o.parallel = 1;
  Metrics m;
  Engine engine(test::demo(), o, &m);
  int ran = 0;
  engine.run_exclusive([&] { ran = 1; });
  CHECK(ran == 1);
  CHECK_THROWS_AS(engine.run_exclusive([] { throw Error("inside"); }), Error);
  const auto a = job({greedy(prompts[1], 200)});
  const auto b = job({greedy(prompts[0], 200)});
  REQUIRE(engine.submit(a) == Engine::Submit::accepted);
  REQUIRE(engine.submit(b) == Engine::Submit::accepted);
  engine.close();
  CHECK(engine.submit(job({greedy(prompts[0], 1)})) == Engine::Submit::closed);
  engine.cancel_all(ApiError(503, "going", "server_error", std::nullopt, std::string("shutting_down")));
  for (const auto& j : {a, b}) {
    const auto [r, e] = results(j);
    REQUIRE(e);
    CHECK(e->code == std::optional<std::string>("shutting_down"));
  }
  CHECK(engine.wait_idle(5s));
}
