// Generation: HF's processors (hand cases and a committed reference written from HF's semantics),
// greedy with processors and log-probs against the PyTorch oracle, beam search against a reference
// beam search, batch == sequential, the seed contract across thread counts and batches, streaming
// that never splits UTF-8, stop strings, sessions, and every invalid config rejected by name.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <tinyllm/gpt2.hpp>
#include <tinyllm/perplexity.hpp>

#include "test_helpers.hpp"

namespace {

using tinyllm::GenerationConfig;
const float inf = std::numeric_limits<float>::infinity();

const nlohmann::json& fixtures() {
  static const nlohmann::json j = test::read_json(test::fixture("generation_expected.json"));
  return j;
}

const tinyllm::GPT2& demo() {
  static const tinyllm::GPT2 m = tinyllm::GPT2::from_pretrained(test::demo_model());
  return m;
}

// The fields a fixture names, on top of HF's defaults.
GenerationConfig config_from(const nlohmann::json& j) {
  GenerationConfig c;
  for (const auto& [k, v] : j.items()) {
    if (k == "repetition_penalty")
      c.repetition_penalty = v;
    else if (k == "no_repeat_ngram_size")
      c.no_repeat_ngram_size = v;
    else if (k == "bad_words_ids")
      c.bad_words_ids = v.get<std::vector<std::vector<int>>>();
    else if (k == "min_length")
      c.min_length = v;
    else if (k == "min_new_tokens")
      c.min_new_tokens = v;
    else if (k == "temperature")
      c.temperature = v;
    else if (k == "top_k")
      c.top_k = v;
    else if (k == "top_p")
      c.top_p = v;
    else if (k == "min_p")
      c.min_p = v;
    else if (k == "typical_p")
      c.typical_p = v;
    else if (k == "num_beams")
      c.num_beams = v;
    else if (k == "num_return_sequences")
      c.num_return_sequences = v;
    else if (k == "length_penalty")
      c.length_penalty = v;
    else if (k == "early_stopping")
      c.early_stopping =
          v.is_boolean() ? tinyllm::EarlyStopping(v.get<bool>()) : tinyllm::EarlyStopping(v.get<std::string>().c_str());
    else
      FAIL("unknown config field in fixture: " << k);
  }
  return c;
}

// An independent UTF-8 check (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0, n = s.size();
  while (i < n) {
    const unsigned c = p[i];
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    const unsigned min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::vector<float> row_of(std::initializer_list<float> v) { return std::vector<float>(v); }

// Runs fn, requires a tinyllm::Error whose message contains `field`.
void expect_field_error(const std::function<void()>& fn, const std::string& field) {
  try {
    fn();
  } catch (const tinyllm::Error& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(field) != std::string::npos);
    return;
  }
  FAIL("no tinyllm::Error for " << field);
}

}  // namespace

TEST_CASE("processors: hand-computable cases") {
  using namespace tinyllm::detail;
  const std::vector<int> seq = {0, 1, 1, 5};
  const SequenceView s{seq.data(), seq.size(), 2};
  // repetition penalty: positive scores divided, negative multiplied, once per id
  auto r = row_of({2.0f, -2.0f, 1.0f, 0.5f, 3.0f, 4.0f});
  repetition_penalty(r.data(), s, 2.0f);
  CHECK(r == row_of({1.0f, -4.0f, 1.0f, 0.5f, 3.0f, 2.0f}));
  // no_repeat_ngram 2: the sequence ends in 5; nothing followed 5 before. With [.., 1] -> 1, 5 banned
  const std::vector<int> seq2 = {0, 1, 1, 5, 1};
  r = row_of({0, 0, 0, 0, 0, 0});
  no_repeat_ngram(r.data(), {seq2.data(), seq2.size(), 0}, 2);
  CHECK(r == row_of({0, -inf, 0, 0, 0, -inf}));
  // bad words: [3] always; [5, 2] because the sequence ends in 5; [1, 4] not; [0] is an eos: ignored
  r = row_of({0, 0, 0, 0, 0, 0});
  bad_words(r.data(), s, {{3}, {5, 2}, {1, 4}, {0}}, {0});
  CHECK(r == row_of({0, 0, -inf, -inf, 0, 0}));
  // min_length counts the prompt; min_new_tokens does not
  r = row_of({1, 1, 1, 1, 1, 1});
  min_length(r.data(), s, 5, {4});
  CHECK(r[4] == -inf);
  r = row_of({1, 1, 1, 1, 1, 1});
  min_length(r.data(), s, 4, {4});
  CHECK(r[4] == 1);
  min_new_tokens(r.data(), s, 3, {2, 3});
  CHECK((r[2] == -inf && r[3] == -inf && r[4] == 1));
  // top-k keeps ties with the k-th
  r = row_of({1, 3, 2, 3, 2});
  top_k(r.data(), r.size(), 2, 1);
  CHECK(r == row_of({-inf, 3, -inf, 3, -inf}));
  r = row_of({1, 3, 2, 3, 2});
  top_k(r.data(), r.size(), 3, 1);
  CHECK(r == row_of({-inf, 3, 2, 3, 2}));
  // probabilities 0.5, 0.3, 0.15, 0.05
  const auto probs = row_of({std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)});
  r = probs;
  top_p(r.data(), 4, 0.7f, 1);  // ascending cumulative 0.05, 0.2 <= 0.3 are dropped
  CHECK((r[0] == probs[0] && r[1] == probs[1] && r[2] == -inf && r[3] == -inf));
  r = probs;
  top_p(r.data(), 4, 0.01f, 3);  // min_tokens_to_keep wins
  CHECK((r[2] == probs[2] && r[3] == -inf));
  r = probs;
  min_p(r.data(), 4, 0.4f, 1);  // threshold 0.4 * 0.5 = 0.2
  CHECK((r[1] == probs[1] && r[2] == -inf && r[3] == -inf));
  // typical: entropy 1.142; |-log p - H| = 0.449, 0.062, 0.755, 1.854 -> order 0.3, 0.5, 0.15, 0.05
  r = probs;
  typical_p(r.data(), 4, 0.5f, 1);  // cumulative 0.3 < 0.5, 0.8: keep {0.3, 0.5}
  CHECK((r[0] == probs[0] && r[1] == probs[1] && r[2] == -inf && r[3] == -inf));
  r = probs;
  typical_p(r.data(), 4, 0.25f, 1);  // the most typical token alone: 0.3, not the most likely
  CHECK((r[0] == -inf && r[1] == probs[1] && r[2] == -inf));
  r = row_of({1, -2, 4});
  temperature(r.data(), 3, 0.5f);
  CHECK(r == row_of({2, -4, 8}));
}

TEST_CASE("processors and warpers equal the reference written from HF's semantics, in HF's order") {
  for (const auto& c : fixtures()["processors"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    GenerationConfig cfg = config_from(c["config"]);
    cfg.do_sample = c["do_sample"];
    const std::vector<int> ids = c["ids"];
    const std::vector<int> eos = c["eos"];
    std::vector<float> row = c["logits"];
    tinyllm::detail::process(row.data(), {ids.data(), ids.size(), c["prompt_length"]}, cfg, eos);
    if (cfg.do_sample) tinyllm::detail::warp(row.data(), row.size(), cfg, c["min_keep"]);
    const auto& want = c["expected"];
    REQUIRE(want.size() == row.size());
    for (std::size_t i = 0; i < row.size(); ++i) {
      CAPTURE(i);
      if (want[i].is_null()) {
        CHECK(row[i] == -inf);
      } else {
        REQUIRE(row[i] != -inf);
        CHECK(row[i] == doctest::Approx(want[i].get<double>()).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("greedy search with processors equals the oracle's, with HF's log-probs and top-5 alternatives") {
  const auto& model = demo();
  for (const auto& c : fixtures()["greedy"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    GenerationConfig cfg = config_from(c["config"]);
    cfg.max_new_tokens = c["max_new_tokens"];
    cfg.eos_token_id = c["eos"].get<std::vector<int>>();
    cfg.top_logprobs = 5;
    const std::vector<int> prompt = c["prompt"], want = c["ids"];
    CHECK(model.generate(prompt, cfg) == want);
    const auto res = model.generate_with_scores(prompt, cfg);
    REQUIRE(res.size() == 1);
    const auto& r = res[0];
    CHECK(r.sequence == want);
    CHECK(r.prompt_length == prompt.size());
    CHECK(r.finish_reason == (c["reason"] == "eos" ? tinyllm::FinishReason::eos : tinyllm::FinishReason::length));
    const std::vector<float> lp = c["logprobs"];
    REQUIRE(r.logprobs.size() == lp.size());
    REQUIRE(r.top_logprobs.size() == lp.size());
    float sum = 0;
    for (std::size_t t = 0; t < lp.size(); ++t) {
      CAPTURE(t);
      CHECK(r.logprobs[t] == doctest::Approx(lp[t]).epsilon(1e-4).scale(1.0));
      sum += r.logprobs[t];
      const auto& top = c["top_logprobs"][t];
      REQUIRE(r.top_logprobs[t].size() == 5);
      for (std::size_t k = 0; k < 5; ++k) {
        CHECK(r.top_logprobs[t][k].id == top[k][0].get<int>());
        CHECK(r.top_logprobs[t][k].logprob == doctest::Approx(top[k][1].get<double>()).epsilon(1e-4).scale(1.0));
      }
      CHECK(r.top_logprobs[t][0].id == r.sequence[prompt.size() + t]);  // greedy picks the best
    }
    CHECK(r.sequence_score == doctest::Approx(sum).epsilon(1e-5));
  }
}

TEST_CASE("beam search equals the reference beam search (HF's _beam_search) over the oracle") {
  const auto& model = demo();
  for (const auto& c : fixtures()["beam"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    GenerationConfig cfg = config_from(c["config"]);
    cfg.max_new_tokens = c["max_new_tokens"];
    cfg.eos_token_id = c["eos"].get<std::vector<int>>();
    const std::vector<int> prompt = c["prompt"];
    const auto res = model.generate_with_scores(prompt, cfg);
    const auto& want = c["results"];
    REQUIRE(res.size() == want.size());
    for (std::size_t i = 0; i < res.size(); ++i) {
      CAPTURE(i);
      CHECK(res[i].sequence == want[i]["ids"].get<std::vector<int>>());
      CHECK(res[i].sequence_score == doctest::Approx(want[i]["score"].get<double>()).epsilon(1e-4).scale(1.0));
      CHECK(res[i].finish_reason ==
            (want[i]["reason"] == "eos" ? tinyllm::FinishReason::eos : tinyllm::FinishReason::length));
      const std::vector<float> lp = want[i]["logprobs"];
      REQUIRE(res[i].logprobs.size() == lp.size());
      for (std::size_t t = 0; t < lp.size(); ++t)
        CHECK(res[i].logprobs[t] == doctest::Approx(lp[t]).epsilon(1e-4).scale(1.0));
    }
    // generate() returns the best sequence; generate_batch the num_return_sequences best in order
    GenerationConfig one = cfg;
    one.num_return_sequences = 1;
    CHECK(model.generate(prompt, one) == want[0]["ids"].get<std::vector<int>>());
    const auto batch = model.generate_batch(std::vector<std::vector<int>>{prompt}, cfg);
    REQUIRE(batch.size() == want.size());
    for (std::size_t i = 0; i < batch.size(); ++i) CHECK(batch[i] == want[i]["ids"].get<std::vector<int>>());
  }
}

namespace {

// Prompts of different lengths, and the configs batch == sequential is checked with.
std::vector<std::vector<int>> demo_prompts() {
  const auto& tok = demo().tokenizer();
  return {tok.encode("The state of the Union"), tok.encode("Call me Ishmael."), tok.encode("We"),
          tok.encode("In the year 1800, Congress passed a law that"), tok.encode("The whale")};
}

std::vector<std::pair<std::string, GenerationConfig>> batch_configs() {
  std::vector<std::pair<std::string, GenerationConfig>> out;
  GenerationConfig greedy;
  greedy.max_new_tokens = 16;
  greedy.repetition_penalty = 1.2f;
  out.push_back({"greedy", greedy});
  GenerationConfig sampling;
  sampling.do_sample = true;
  sampling.max_length = 24;  // per prompt: different numbers of new tokens
  sampling.top_k = 40;
  sampling.top_p = 0.9f;
  sampling.temperature = 0.9f;
  sampling.seed = 1234;
  out.push_back({"sampling", sampling});
  GenerationConfig several = sampling;
  several.num_return_sequences = 3;
  several.min_p = 0.05f;
  several.no_repeat_ngram_size = 3;
  out.push_back({"sampling, 3 sequences per prompt", several});
  GenerationConfig beams;
  beams.num_beams = 3;
  beams.num_return_sequences = 2;
  beams.max_new_tokens = 10;
  beams.eos_token_id = {13};  // '.', so that some hypotheses end early
  out.push_back({"beams", beams});
  GenerationConfig beam_sampling = beams;
  beam_sampling.do_sample = true;
  beam_sampling.seed = 99;
  out.push_back({"beam sampling", beam_sampling});
  return out;
}

}  // namespace

TEST_CASE("batches: generate_batch equals running each prompt alone, whatever the batch around it") {
  const auto& model = demo();
  const auto prompts = demo_prompts();
  for (const auto& [name, cfg] : batch_configs()) {
    CAPTURE(name);
    const std::size_t R = static_cast<std::size_t>(cfg.num_return_sequences);
    const auto batch = model.generate_batch(prompts, cfg);
    REQUIRE(batch.size() == prompts.size() * R);
    for (std::size_t p = 0; p < prompts.size(); ++p) {
      CAPTURE(p);
      const auto alone = model.generate_batch(std::vector<std::vector<int>>{prompts[p]}, cfg);
      REQUIRE(alone.size() == R);
      for (std::size_t r = 0; r < R; ++r) CHECK(batch[p * R + r] == alone[r]);
      if (R == 1) CHECK(model.generate(prompts[p], cfg) == alone[0]);
      for (std::size_t r = 0; r < R; ++r)
        CHECK(std::equal(prompts[p].begin(), prompts[p].end(), batch[p * R + r].begin()));
    }
    // Another composition: reversed, and the first prompt twice.
    std::vector<std::vector<int>> other(prompts.rbegin(), prompts.rend());
    other.push_back(prompts[0]);
    const auto reordered = model.generate_batch(other, cfg);
    for (std::size_t p = 0; p < prompts.size(); ++p)
      for (std::size_t r = 0; r < R; ++r) CHECK(reordered[(prompts.size() - 1 - p) * R + r] == batch[p * R + r]);
    for (std::size_t r = 0; r < R; ++r) CHECK(reordered[prompts.size() * R + r] == batch[r]);
  }
  // The text overloads: a list of strings and a vector of strings.
  GenerationConfig cfg;
  cfg.max_new_tokens = 8;
  const auto texts = model.generate_batch({"The whale", "My fellow citizens"}, cfg);
  REQUIRE(texts.size() == 2);
  CHECK(texts[0] == model.generate_text("The whale", cfg));
  CHECK(texts[1] == model.generate_text("My fellow citizens", cfg));
  CHECK(model.generate_batch(std::vector<std::string>{"The whale"}, cfg)[0] == texts[0]);
}

TEST_CASE("continuous batching: sequences join and leave a DecodeBatch between steps, each with its own config") {
  // What a server does with DecodeBatch: requests join the running batch at a step and leave when
  // done or cancelled. Each sequence's tokens and scores are what generating it alone gives.
  const auto& model = demo();
  const auto prompts = demo_prompts();
  const auto configs = batch_configs();  // greedy, sampling, sampling with 3 sequences: one config each
  const std::vector<std::size_t> which = {0, 1, 2, 1};
  tinyllm::detail::ModelRef m{model.config(), model.weights(), &model.tokenizer()};
  tinyllm::detail::DecodeBatch<tinyllm::DefaultBackend> batch(m);
  std::vector<std::size_t> ids;
  std::vector<std::string> streamed(which.size());
  auto join = [&](std::size_t i) {
    const GenerationConfig& cfg = configs[which[i]].second;
    auto on_token = [&streamed, i](int id) {
      streamed[i] += std::to_string(id) + " ";
      return true;
    };
    ids.push_back(batch.add(prompts[i % prompts.size()], {&cfg, model.eos_token_ids(), 0, true, on_token}));
  };
  join(0);
  join(1);
  for (int s = 0; s < 3; ++s) batch.step();
  join(2);  // joins a batch two sequences into their text
  const auto cancelled = batch.add(prompts[4], {&configs[1].second, model.eos_token_ids(), 0, false, {}});
  batch.step();
  join(3);
  const tinyllm::GenerationResult partial = batch.remove(cancelled);  // leaves before it is done
  const auto whole = model.generate(prompts[4], configs[1].second);
  REQUIRE(partial.sequence.size() == prompts[4].size() + 1);  // one step: one token
  CHECK(std::equal(partial.sequence.begin(), partial.sequence.end(), whole.begin()));
  while (batch.running() > 0) batch.step();
  for (std::size_t i = 0; i < which.size(); ++i) {
    CAPTURE(i);
    const auto& [name, cfg] = configs[which[i]];
    CAPTURE(name);
    GenerationConfig one = cfg;
    one.num_return_sequences = 1;  // the first sequence of that config (random stream 0)
    const auto alone = model.generate_with_scores(prompts[i % prompts.size()], one);
    const tinyllm::GenerationResult r = batch.remove(ids[i]);
    CHECK(r.sequence == alone[0].sequence);
    CHECK(r.logprobs == alone[0].logprobs);
    CHECK(r.finish_reason == alone[0].finish_reason);
    std::string expected;
    for (int id : r.new_ids()) expected += std::to_string(id) + " ";
    CHECK(streamed[i] == expected);
  }
  CHECK(batch.size() == 0);
}

TEST_CASE("seed contract: same seed and config, same tokens across runs, thread counts and backends") {
  const auto& model = demo();
  const auto serial = tinyllm::BasicGPT2<tinyllm::Serial>::from_pretrained(test::demo_model());
  const auto prompts = demo_prompts();
  for (const auto& [name, cfg] : batch_configs()) {
    CAPTURE(name);
    tinyllm::set_num_threads(1);
    const auto one = model.generate_batch(prompts, cfg);
    const auto again = model.generate_batch(prompts, cfg);
    tinyllm::set_num_threads(2);
    const auto two = model.generate_batch(prompts, cfg);
    tinyllm::set_num_threads(0);
    CHECK(one == again);
    CHECK(one == two);
    CHECK(serial.generate_batch(prompts, cfg) == one);
    if (cfg.do_sample) {  // and the seed matters
      GenerationConfig other = cfg;
      other.seed = cfg.seed + 1;
      CHECK(model.generate_batch(prompts, other) != one);
    }
  }
  // Return sequences are distinct streams.
  GenerationConfig cfg = batch_configs()[2].second;
  const auto seqs = model.generate_batch(std::vector<std::vector<int>>{prompts[0]}, cfg);
  CHECK(seqs[0] != seqs[1]);
  CHECK(seqs[1] != seqs[2]);
}

TEST_CASE("sampling draws from the processed distribution") {
  // softmax of [log 0.5, log 0.3, -inf, log 0.2]: frequencies within a few standard deviations
  const float scores[4] = {std::log(0.5f), std::log(0.3f), -inf, std::log(0.2f)};
  auto rng = tinyllm::detail::random_stream(7, 0);
  std::vector<int> count(4);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++count[static_cast<std::size_t>(tinyllm::detail::sample_from(scores, 4, rng))];
  CHECK(count[2] == 0);
  CHECK(std::abs(count[0] / double(n) - 0.5) < 0.0125);  // 5 sigma
  CHECK(std::abs(count[1] / double(n) - 0.3) < 0.0115);
  CHECK(std::abs(count[3] / double(n) - 0.2) < 0.0100);
  // The streams are fixed by the C++ standard: the first draws of (seed 0, sequence 0) never change.
  auto a = tinyllm::detail::random_stream(0, 0), b = tinyllm::detail::random_stream(0, 0),
       c = tinyllm::detail::random_stream(0, 1);
  CHECK(a() == b());
  CHECK(a() != c());
}

TEST_CASE("sampled tokens come with the log-probs of the warped distribution") {
  const auto& model = demo();
  GenerationConfig cfg;
  cfg.do_sample = true;
  cfg.top_k = 5;
  cfg.max_new_tokens = 15;
  cfg.top_logprobs = 8;
  cfg.seed = 5;
  const auto r = model.generate_with_scores(model.tokenizer().encode("The state of the Union"), cfg)[0];
  REQUIRE(r.logprobs.size() == 15);
  for (std::size_t t = 0; t < 15; ++t) {
    CAPTURE(t);
    const auto& top = r.top_logprobs[t];
    REQUIRE(top.size() == 8);
    double mass = 0;
    for (std::size_t k = 0; k < 5; ++k) mass += std::exp(static_cast<double>(top[k].logprob));
    CHECK(mass == doctest::Approx(1.0).epsilon(1e-5));  // top_k = 5: all the mass in five tokens
    for (std::size_t k = 5; k < 8; ++k) CHECK(top[k].logprob == -inf);
    bool found = false;  // the sampled token is one of the five, with its log-prob
    for (std::size_t k = 0; k < 5; ++k)
      if (top[k].id == r.sequence[r.prompt_length + t]) found = top[k].logprob == r.logprobs[t];
    CHECK(found);
  }
}

TEST_CASE("streaming: UTF-8-safe pieces that add up to the text, and the callback can stop") {
  const auto& model = demo();
  for (const std::string& prompt :
       std::vector<std::string>{"我们的国家", "🙂🎉 The Union", "Café ünïcödé — ", "The state of the Union"}) {
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
      CAPTURE(prompt);
      CAPTURE(seed);
      GenerationConfig cfg;
      cfg.do_sample = true;
      cfg.top_k = 0;  // the whole vocabulary: byte tokens that split characters turn up
      cfg.temperature = 1.6f;
      cfg.seed = seed;
      cfg.max_new_tokens = 40;
      std::string streamed;
      int pieces = 0;
      const std::string text = model.generate_text(prompt, cfg, [&](std::string_view piece) {
        CHECK(!piece.empty());
        CHECK(valid_utf8(std::string(piece)));
        streamed += piece;
        ++pieces;
        return true;
      });
      CHECK(valid_utf8(text));
      REQUIRE(text.compare(0, prompt.size(), prompt) == 0);
      CHECK(streamed == text.substr(prompt.size()));
      CHECK(pieces > 0);
      CHECK(text == model.generate_text(prompt, cfg));  // the same generation without a callback
    }
  }
  // Stopping: the callback returns false on the third piece, and generation ends there.
  GenerationConfig cfg;
  cfg.max_new_tokens = 30;
  int calls = 0;
  const std::string text =
      model.generate_text("The state of the Union", cfg, [&](std::string_view) { return ++calls < 3; });
  CHECK(calls == 3);
  std::string whole;  // a callback taking const std::string& works too
  model.generate_text("The state of the Union", cfg, [&](const std::string& piece) { whole += piece; });
  CHECK("The state of the Union" + whole == model.generate_text("The state of the Union", cfg));
  CHECK(model.tokenizer().encode(text).size() <= model.tokenizer().encode("The state of the Union").size() + 3);
  // Token callbacks: void callbacks never stop; a bool one stops after 5 tokens.
  const auto prompt = model.tokenizer().encode("Call me Ishmael.");
  std::vector<int> seen;
  const auto all = model.generate(prompt, cfg, [&](int id) { seen.push_back(id); });
  CHECK(all.size() == prompt.size() + 30);
  CHECK(std::vector<int>(all.begin() + static_cast<long>(prompt.size()), all.end()) == seen);
  const auto five = model.generate(prompt, cfg, [n = 0](int) mutable { return ++n < 5; });
  CHECK(five == std::vector<int>(all.begin(), all.begin() + static_cast<long>(prompt.size()) + 5));
  const auto r = model.generate_with_scores(prompt, cfg)[0];
  CHECK(r.finish_reason == tinyllm::FinishReason::length);
}

TEST_CASE("stop strings: HF's StopStringCriteria examples, spanning tokens, in generation") {
  using tinyllm::detail::StopStringMatcher;
  const std::vector<std::string> stops = {"stop"};
  auto ends = [&](std::vector<std::string> tokens) {  // does the last token trigger a match?
    StopStringMatcher m(&stops);
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) m.push(tokens[i]);
    return m.push(tokens.back());
  };
  // HF's documented examples: these trigger...
  CHECK(ends({"st", "op"}));
  CHECK(ends({"stop"}));
  CHECK(ends({"st", "opera"}));
  CHECK(ends({"sto", "pper"}));
  CHECK(ends({"las", "topper"}));
  CHECK(ends({"s", "to", "pped"}));
  // ...and these do not (the stop string does not overlap the last token)
  CHECK(!ends({"stop", "at"}));
  CHECK(!ends({"st", "op", "at"}));
  CHECK(!ends({"st", "opera", "tion"}));
  // The prompt counts as text before the first token.
  StopStringMatcher m(&stops);
  m.prime("and st");
  CHECK(m.push("opped"));

  // In generation: the first token whose text completes a stop string ends generation.
  const auto& model = demo();
  const auto& tok = model.tokenizer();
  const auto prompt = tok.encode("The state of the Union");
  GenerationConfig cfg;
  cfg.max_new_tokens = 40;
  const auto full = model.generate(prompt, cfg);
  // Independent oracle: decode each prefix; generation ends at the first token n whose text holds the
  // stop string ending after the text of the n-1 tokens before it.
  auto expected_end = [&](const std::string& stop) {
    for (std::size_t n = prompt.size() + 1; n <= full.size(); ++n) {
      const std::string before = tok.decode(std::vector<int>(full.begin(), full.begin() + static_cast<long>(n - 1)));
      const std::string text = tok.decode(std::vector<int>(full.begin(), full.begin() + static_cast<long>(n)));
      const std::size_t from = before.size() >= stop.size() ? before.size() - stop.size() + 1 : 0;
      if (text.find(stop, from) != std::string::npos) return n;
    }
    return full.size();
  };
  const std::string cont = tok.decode(std::vector<int>(full.begin() + static_cast<long>(prompt.size()), full.end()));
  // a stop string inside one token, one spanning two tokens, and one in the middle of a word
  const std::string t0 = tok.decode({full[prompt.size() + 3]}), t1 = tok.decode({full[prompt.size() + 4]});
  for (const std::string& stop : {t0, t0.substr(t0.size() - 2) + t1.substr(0, 2), cont.substr(cont.size() / 2, 3)}) {
    CAPTURE(stop);
    GenerationConfig c = cfg;
    c.stop_strings = {"no such text", stop};
    const auto r = model.generate_with_scores(prompt, c)[0];
    CHECK(r.sequence.size() == expected_end(stop));
    CHECK(r.finish_reason == tinyllm::FinishReason::stop_string);
    CHECK(r.sequence == std::vector<int>(full.begin(), full.begin() + static_cast<long>(r.sequence.size())));
  }
  // Beam search: every returned hypothesis that stopped on a stop string ends with one
  GenerationConfig beams = cfg;
  beams.num_beams = 3;
  beams.num_return_sequences = 3;
  beams.max_new_tokens = 12;
  beams.stop_strings = {" the"};
  for (const auto& r : model.generate_with_scores(prompt, beams)) {
    const std::string text = tok.decode(r.sequence);
    if (r.finish_reason == tinyllm::FinishReason::stop_string)
      CHECK(text.find(" the", tok.decode(prompt).size() - 3) != std::string::npos);
    else
      CHECK(r.sequence.size() == prompt.size() + 12);
  }
}

TEST_CASE("sessions: turn by turn equals generating from the whole text, without re-processing") {
  const auto& model = demo();
  const auto& tok = model.tokenizer();
  GenerationConfig cfg;
  cfg.max_new_tokens = 10;
  tinyllm::Session chat(model);
  chat.append("The state of the Union");
  CHECK(chat.cached() == chat.size() - 1);  // the last token waits for the first generated step
  std::vector<int> history = tok.encode("The state of the Union");
  const std::string first = chat.generate_text(cfg);
  auto want = model.generate(history, cfg);
  CHECK(chat.ids() == want);
  CHECK(first == tok.decode_text(std::vector<int>(want.begin() + static_cast<long>(history.size()), want.end()), true));
  CHECK(chat.cached() == chat.size() - 1);
  // Second turn: only the appended tokens run; the result equals generating from everything.
  history = want;
  const auto turn = tok.encode(" And the whale");
  history.insert(history.end(), turn.begin(), turn.end());
  chat.append(" And the whale");
  CHECK(chat.ids() == history);
  GenerationConfig sample = cfg;
  sample.do_sample = true;
  sample.seed = 11;
  chat.generate(sample);
  CHECK(chat.ids() == model.generate(history, sample));
  // Roll back and continue with beam search.
  chat.truncate(history.size());
  GenerationConfig beams = cfg;
  beams.num_beams = 3;
  const auto best = chat.generate_with_scores(beams);
  CHECK(best.sequence == model.generate(history, beams));
  CHECK(chat.ids() == best.sequence);
  chat.append(" Then");  // the beam's tokens were not in the cache: they run now
  CHECK(chat.cached() == chat.size() - 1);
  // Sessions on several threads share one model.
  std::vector<std::string> results(4), expected(4);
  const std::vector<std::string> starts = {"The whale", "Congress", "My fellow", "The sea"};
  for (std::size_t i = 0; i < 4; ++i) expected[i] = model.generate_text(starts[i], cfg);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      tinyllm::Session s(model);
      s.append(starts[i]);
      s.generate(cfg);
      results[i] = s.text();
    });
  for (auto& t : threads) t.join();
  CHECK(results == expected);
  // An empty session starts from bos; context overflow is an error naming the session.
  tinyllm::Session empty(model);
  empty.generate(cfg);
  CHECK(empty.ids().front() == model.config().bos_token_id);
  std::vector<int> too_many(static_cast<std::size_t>(model.config().n_positions), 464);
  expect_field_error([&] { empty.append_ids(too_many); }, "Session.append");
}

TEST_CASE("every invalid config is rejected with an Error naming the field") {
  const auto& model = demo();
  const std::vector<int> ids = {464, 1181};
  auto rejects = [&](const std::string& field, const std::function<void(GenerationConfig&)>& set) {
    CAPTURE(field);
    GenerationConfig c;
    c.do_sample = true;
    set(c);
    expect_field_error([&] { model.generate(ids, c); }, "GenerationConfig." + field);
    expect_field_error([&] { model.generate_batch(std::vector<std::vector<int>>{ids}, c); },
                       "GenerationConfig." + field);
  };
  rejects("max_length", [](auto& c) { c.max_length = -1; });
  rejects("max_new_tokens", [](auto& c) { c.max_new_tokens = -2; });
  rejects("min_length", [](auto& c) { c.min_length = -1; });
  rejects("min_new_tokens", [](auto& c) { c.min_new_tokens = -3; });
  rejects("temperature", [](auto& c) { c.temperature = 0.0f; });
  rejects("temperature", [](auto& c) { c.temperature = -0.5f; });
  rejects("temperature", [](auto& c) { c.temperature = std::nanf(""); });
  rejects("top_k", [](auto& c) { c.top_k = -1; });
  rejects("top_p", [](auto& c) { c.top_p = 0.0f; });
  rejects("top_p", [](auto& c) { c.top_p = 1.01f; });
  rejects("top_p", [](auto& c) {
    c.do_sample = false;
    c.top_p = -1.0f;
  });
  rejects("min_p", [](auto& c) { c.min_p = -0.1f; });
  rejects("min_p", [](auto& c) { c.min_p = 1.5f; });
  rejects("typical_p", [](auto& c) { c.typical_p = 0.0f; });
  rejects("typical_p", [](auto& c) { c.typical_p = 1.2f; });
  rejects("repetition_penalty", [](auto& c) { c.repetition_penalty = 0.0f; });
  rejects("repetition_penalty", [](auto& c) { c.repetition_penalty = -1.0f; });
  rejects("no_repeat_ngram_size", [](auto& c) { c.no_repeat_ngram_size = -1; });
  rejects("bad_words_ids", [](auto& c) { c.bad_words_ids = {{1}, {}}; });
  rejects("bad_words_ids", [](auto& c) { c.bad_words_ids = {{1, -2}}; });
  rejects("bad_words_ids", [](auto& c) { c.bad_words_ids = {{100000}}; });
  rejects("num_beams", [](auto& c) { c.num_beams = 0; });
  rejects("length_penalty", [](auto& c) { c.length_penalty = std::numeric_limits<float>::infinity(); });
  rejects("num_return_sequences", [](auto& c) { c.num_return_sequences = 0; });
  rejects("num_return_sequences", [](auto& c) {
    c.do_sample = false;
    c.num_return_sequences = 2;
  });
  rejects("num_return_sequences", [](auto& c) {
    c.do_sample = false;
    c.num_beams = 4;
    c.num_return_sequences = 5;
  });
  rejects("num_return_sequences", [](auto& c) {
    c.num_beams = 2;
    c.num_return_sequences = 3;
  });
  rejects("eos_token_id", [](auto& c) { c.eos_token_id = {-1}; });
  rejects("eos_token_id", [](auto& c) { c.eos_token_id = {50257}; });
  rejects("stop_strings", [](auto& c) { c.stop_strings = {"ok", ""}; });
  rejects("top_logprobs", [](auto& c) { c.top_logprobs = -1; });
  expect_field_error(
      [] {
        GenerationConfig c;
        c.early_stopping = "sometimes";
      },
      "GenerationConfig.early_stopping");
  // generate() returns one sequence; streaming needs num_beams 1.
  GenerationConfig several;
  several.do_sample = true;
  several.num_return_sequences = 2;
  expect_field_error([&] { model.generate(ids, several); }, "GenerationConfig.num_return_sequences");
  GenerationConfig beams;
  beams.num_beams = 2;
  expect_field_error([&] { model.generate_text("The", beams, [](std::string_view) {}); }, "GenerationConfig.num_beams");
  expect_field_error([&] { model.generate(ids, beams, [](int) {}); }, "GenerationConfig.num_beams");
  // valid edge values are accepted
  GenerationConfig ok;
  ok.do_sample = true;
  ok.top_p = 1.0f;
  ok.min_p = 1.0f;
  ok.typical_p = 1.0f;
  ok.max_new_tokens = 0;
  ok.early_stopping = "never";
  CHECK(model.generate(ids, ok) == ids);
  CHECK(ok.early_stopping == tinyllm::EarlyStopping("never"));
  ok.early_stopping = true;
  CHECK(ok.early_stopping.value() == tinyllm::EarlyStopping::early);
}

TEST_CASE("lengths: max_length counts each prompt, max_new_tokens wins, min_new_tokens holds eos back") {
  const auto& model = demo();
  const auto prompts = demo_prompts();
  GenerationConfig cfg;
  cfg.max_length = 12;
  cfg.eos_token_id = {50256};
  const auto out = model.generate_with_scores(prompts, cfg);
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    if (out[p].finish_reason == tinyllm::FinishReason::eos) continue;
    CHECK(out[p].sequence.size() == std::max<std::size_t>(12, prompts[p].size()));
  }
  cfg.max_new_tokens = 3;
  for (const auto& r : model.generate_with_scores(prompts, cfg)) CHECK(r.new_ids().size() <= 3);
  // min_new_tokens: with '.' and ' the' as eos, nothing ends before 6 new tokens
  cfg.max_new_tokens = 10;
  cfg.eos_token_id = {13, 262};
  cfg.min_new_tokens = 6;
  for (const auto& r : model.generate_with_scores(prompts, cfg)) CHECK(r.new_ids().size() >= 6);
}

TEST_CASE("perplexity: one window equals the oracle's logits; sliding windows score each token once") {
  const auto model = tinyllm::GPT2::from_pretrained(test::fixture("f32-hub"));
  const auto exp = test::read_json(test::fixture("f32-hub") + "/expected.json");
  const std::vector<int> ids = exp["ids"];
  const auto logits = test::read_f32(test::fixture("f32-hub") + "/expected_logits.f32");
  const std::size_t V = static_cast<std::size_t>(model.config().vocab_size), n = ids.size();
  // The oracle: -log softmax(logits[t-1])[ids[t]] for t = 1..n-1, in double.
  double nll = 0;
  std::size_t top1 = 0;
  for (std::size_t t = 1; t < n; ++t) {
    const float* row = logits.data() + (t - 1) * V;
    double m = row[0], sum = 0;
    std::size_t best = 0;
    for (std::size_t i = 0; i < V; ++i) {
      m = std::max(m, double(row[i]));
      if (row[i] > row[best]) best = i;
    }
    for (std::size_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - m);
    nll += m + std::log(sum) - row[ids[t]];
    top1 += best == static_cast<std::size_t>(ids[t]);
  }
  const auto st = tinyllm::perplexity(model, ids, static_cast<int>(n), static_cast<int>(n));
  CHECK(st.tokens == n - 1);
  CHECK(st.nll == doctest::Approx(nll).epsilon(1e-5));
  CHECK(st.top1 == top1);
  CHECK(st.perplexity() == doctest::Approx(std::exp(nll / double(n - 1))).epsilon(1e-5));
  // Sliding windows, bookkept as HF's recipe does, with forward() of each window as the reference.
  for (const auto& [window, stride] :
       std::vector<std::pair<std::size_t, std::size_t>>{{10, 4}, {7, 7}, {5, 1}, {64, 32}}) {
    CAPTURE(window);
    CAPTURE(stride);
    double want = 0;
    std::size_t scored = 0, prev_end = 0;
    for (std::size_t begin = 0; begin < n; begin += stride) {
      const std::size_t end = std::min(begin + window, n);
      const auto lg =
          model.forward(std::vector<int>(ids.begin() + static_cast<long>(begin), ids.begin() + static_cast<long>(end)));
      for (std::size_t t = std::max(prev_end, begin + 1); t < end; ++t) {
        const float* row = lg.data() + (t - 1 - begin) * V;
        double m = row[0], sum = 0;
        for (std::size_t i = 0; i < V; ++i) m = std::max(m, double(row[i]));
        for (std::size_t i = 0; i < V; ++i) sum += std::exp(double(row[i]) - m);
        want += m + std::log(sum) - row[ids[t]];
        ++scored;
      }
      prev_end = std::max(prev_end, end);
      if (end == n) break;
    }
    std::size_t calls = 0;
    const auto s = tinyllm::perplexity(model, ids, static_cast<int>(window), static_cast<int>(stride),
                                       [&](std::size_t done, std::size_t total) {
                                         ++calls;
                                         CHECK(done <= total);
                                       });
    CHECK(s.tokens == scored);
    CHECK(s.nll == doctest::Approx(want).epsilon(1e-5));
    CHECK(calls > 0);
    if (stride < window) CHECK(scored == n - 1);
  }
  expect_field_error([&] { tinyllm::perplexity(model, ids, 1000); }, "window");
  expect_field_error([&] { tinyllm::perplexity(model, ids, 10, 11); }, "stride");
}
