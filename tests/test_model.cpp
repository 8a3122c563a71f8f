// The model against the PyTorch oracle: logits of random GPT-2 folders (F32/F16/BF16, both name
// prefixes, odd sizes, shards, untied head), forward vs logits, KV-cache decoding vs full re-runs,
// greedy ids, the demo model's greedy text, backends, sampling determinism, concurrency.
#include <doctest/doctest.h>

#include <thread>

#include <tinyllm/gpt2.hpp>

#include "test_helpers.hpp"

namespace {

const char* const fixtures[] = {"f32-hub", "f16-prefix-odd", "bf16-untied-tokjson", "f32-sharded-inner"};

// max |a - b| <= tol * max |b|
void check_close(const float* a, const float* b, std::size_t n, double tol, const std::string& label) {
  double d, m;
  test::max_errors(a, b, n, d, m);
  INFO(label << ": max |diff| " << d << ", max |ref| " << m);
  CHECK(d <= tol * m);
}

}  // namespace

TEST_CASE("logits equal the PyTorch oracle within 1e-4 x max|logit| on every fixture") {
  for (const char* name : fixtures) {
    CAPTURE(name);
    const auto model = tinyllm::GPT2::from_pretrained(test::fixture(name));
    const auto exp = test::read_json(test::fixture(name) + "/expected.json");
    const std::vector<int> ids = exp["ids"];
    const auto want = test::read_f32(test::fixture(name) + "/expected_logits.f32");
    const auto got = model.forward(ids);
    REQUIRE(got.size() == want.size());
    REQUIRE(got.size() == ids.size() * static_cast<std::size_t>(model.config().vocab_size));
    const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
    for (std::size_t t = 0; t < ids.size(); ++t)
      check_close(got.data() + t * V, want.data() + t * V, V, 1e-4, std::string(name) + " position " + std::to_string(t));
    // logits() is forward()'s last row
    const auto last = model.logits(ids);
    check_close(last.data(), got.data() + (ids.size() - 1) * V, V, 1e-5, "logits vs forward");
  }
}

TEST_CASE("forward rows equal logits of each prefix, and KV-cache decoding equals full re-runs") {
  for (const char* name : fixtures) {
    CAPTURE(name);
    const auto model = tinyllm::GPT2::from_pretrained(test::fixture(name));
    const auto& c = model.config();
    const std::size_t V = static_cast<std::size_t>(c.vocab_size), C = static_cast<std::size_t>(c.n_embd);
    const std::vector<int> ids = test::read_json(test::fixture(name) + "/expected.json")["ids"];
    const auto all = model.forward(ids);
    // Incremental: a prompt of 3 tokens, then one token at a time against the cache.
    tinyllm::detail::InferenceState s(c);
    std::vector<float> row(V);
    tinyllm::detail::forward_hidden<tinyllm::DefaultBackend>(c, model.weights(), s, ids.data(), 3);
    for (std::size_t t = 3; t <= ids.size(); ++t) {
      const float* h = t == 3 ? s.x.data() + 2 * C : s.x.data();
      tinyllm::detail::lm_head<tinyllm::DefaultBackend>(model.weights(), h, 1, row.data());
      // bitwise: decoding against the cache does the same arithmetic as the full pass
      CHECK_MESSAGE(std::memcmp(row.data(), all.data() + (t - 1) * V, V * sizeof(float)) == 0, "cached step " << t);
      const auto prefix = model.logits(std::vector<int>(ids.begin(), ids.begin() + static_cast<long>(t)));
      CHECK_MESSAGE(std::memcmp(prefix.data(), all.data() + (t - 1) * V, V * sizeof(float)) == 0, "prefix " << t);
      if (t < ids.size()) tinyllm::detail::forward_hidden<tinyllm::DefaultBackend>(c, model.weights(), s, &ids[t], 1);
    }
    CHECK(s.cache.length() == static_cast<int>(ids.size()));
  }
}

TEST_CASE("greedy ids equal the oracle's, stopping at eos or at n_positions") {
  for (const char* name : fixtures) {
    CAPTURE(name);
    const auto model = tinyllm::GPT2::from_pretrained(test::fixture(name));
    const auto g = test::read_json(test::fixture(name) + "/expected.json")["greedy"];
    tinyllm::GenerationConfig cfg;
    cfg.max_new_tokens = g["max_new_tokens"];  // more than fit: the oracle stopped at eos or n_positions
    const std::vector<int> want = g["ids"];
    const auto got = model.generate(g["prompt"].get<std::vector<int>>(), cfg);
    CHECK(got == want);
    const bool eos = want.back() == model.config().eos_token_id;
    CHECK((eos || got.size() == static_cast<std::size_t>(model.config().n_positions)));
  }
}

TEST_CASE("the demo model: greedy text and ids equal the oracle's (tiktoken ids, PyTorch greedy)") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const auto exp = test::read_json(test::fixture("demo_expected.json"));
  for (const auto& c : exp["cases"]) {
    const std::string prompt = c["prompt"];
    CAPTURE(prompt);
    const std::vector<int> prompt_ids = c["prompt_ids"];
    CHECK(model.tokenizer().encode(prompt) == prompt_ids);
    tinyllm::GenerationConfig cfg;
    cfg.max_length = c["max_length"];
    CHECK(model.generate(prompt_ids, cfg) == c["ids"].get<std::vector<int>>());
    CHECK(model.generate_text(prompt, c["max_length"]) == c["text"].get<std::string>());
  }
  const std::vector<int> ids = exp["logits"]["ids"];
  const auto want = test::read_f32(test::fixture(exp["logits"]["file"]));
  const auto got = model.forward(ids);
  REQUIRE(got.size() == want.size());
  check_close(got.data(), want.data(), got.size(), 1e-4, "demo logits");
}

TEST_CASE("generate_text: HF's max_length meaning, special tokens skipped, empty prompt") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const auto& tok = model.tokenizer();
  const std::string out = model.generate_text("The whale", 12);
  CHECK(out.rfind("The whale", 0) == 0);
  CHECK(tok.encode(out).size() <= 12);
  // An empty prompt starts from bos (<|endoftext|>), which is not in the text.
  const std::string from_bos = model.generate_text("", 10);
  CHECK(!from_bos.empty());
  CHECK(from_bos.find("<|endoftext|>") == std::string::npos);
  // max_length <= prompt length: nothing new.
  CHECK(model.generate_text("The state of the Union", 2) == "The state of the Union");
}

TEST_CASE("every backend and thread count gives bitwise the same logits") {
  const auto a = tinyllm::BasicGPT2<tinyllm::Serial>::from_pretrained(test::fixture("f16-prefix-odd"));
  const auto b = tinyllm::BasicGPT2<tinyllm::OpenMP>::from_pretrained(test::fixture("f16-prefix-odd"));
  const auto c = tinyllm::BasicGPT2<tinyllm::ThreadPool>::from_pretrained(test::fixture("f16-prefix-odd"));
  const std::vector<int> ids = test::read_json(test::fixture("f16-prefix-odd") + "/expected.json")["ids"];
  const auto ref = a.forward(ids);
  for (int threads : {1, 2, 3}) {
    tinyllm::set_num_threads(threads);
    CAPTURE(threads);
    CHECK(b.forward(ids) == ref);
    CHECK(c.forward(ids) == ref);
  }
  tinyllm::set_num_threads(0);
}

TEST_CASE("sampling: seeded, deterministic, and top_k = 1 is greedy") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const auto prompt = model.tokenizer().encode("Call me Ishmael.");
  tinyllm::GenerationConfig cfg;
  cfg.do_sample = true;
  cfg.max_new_tokens = 30;
  cfg.seed = 42;
  const auto a = model.generate(prompt, cfg), b = model.generate(prompt, cfg);
  CHECK(a == b);
  CHECK(a.size() == prompt.size() + 30);
  int differ = 0;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    cfg.seed = seed;
    differ += model.generate(prompt, cfg) != a;
  }
  CHECK(differ >= 4);  // other seeds, other text
  cfg.top_k = 1;
  tinyllm::GenerationConfig greedy;
  greedy.max_new_tokens = 30;
  CHECK(model.generate(prompt, cfg) == model.generate(prompt, greedy));
  cfg.top_k = 0;
  cfg.top_p = 1e-6f;  // only the most likely token survives top-p
  CHECK(model.generate(prompt, cfg) == model.generate(prompt, greedy));
}

TEST_CASE("sampling follows the warped distribution (top_k, top_p, temperature)") {
  // Over a known 4-token distribution, frequencies match HF's warpers.
  const float logits[4] = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  std::mt19937_64 rng(7);
  auto sample = [&](const tinyllm::GenerationConfig& cfg) {  // the warpers, then a draw
    std::vector<float> scores(logits, logits + 4);
    tinyllm::detail::warp(scores.data(), 4, cfg);
    return tinyllm::detail::sample_from(scores.data(), 4, rng);
  };
  auto freq = [&](tinyllm::GenerationConfig cfg) {
    std::vector<double> f(4);
    const int n = 20000;
    for (int i = 0; i < n; ++i) f[static_cast<std::size_t>(sample(cfg))] += 1.0 / n;
    return f;
  };
  tinyllm::GenerationConfig c;
  c.do_sample = true;
  c.top_k = 0;
  auto f = freq(c);
  CHECK(f[0] == doctest::Approx(0.5).epsilon(0.05));
  CHECK(f[3] == doctest::Approx(0.05).epsilon(0.2));
  c.top_k = 2;  // renormalised over {0.5, 0.3}
  f = freq(c);
  CHECK(f[0] == doctest::Approx(0.625).epsilon(0.05));
  CHECK(f[2] == 0.0);
  c.top_k = 0;
  c.top_p = 0.7f;  // HF drops tokens whose ascending cumulative prob <= 0.3: {0.05, 0.15} (sum 0.2)
  f = freq(c);
  CHECK(f[0] == doctest::Approx(0.625).epsilon(0.05));
  CHECK(f[2] == 0.0);
  c.top_p = 1.0f;
  c.temperature = 0.5f;  // p^2 renormalised: 0.25, 0.09, 0.0225, 0.0025 over 0.365
  f = freq(c);
  CHECK(f[0] == doctest::Approx(0.25 / 0.365).epsilon(0.03));
}

TEST_CASE_TEMPLATE("one model, many threads: concurrent generate calls give the sequential results", Backend,
                   tinyllm::OpenMP, tinyllm::ThreadPool) {
  const auto model = tinyllm::BasicGPT2<Backend>::from_pretrained(test::demo_model());
  const std::vector<std::string> prompts = {"The whale", "My fellow citizens", "Congress shall", "The sea"};
  std::vector<std::string> sequential, parallel(prompts.size());
  for (const auto& p : prompts) sequential.push_back(model.generate_text(p, 30));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] { parallel[i] = model.generate_text(prompts[i], 30); });
  for (auto& t : threads) t.join();
  CHECK(parallel == sequential);
}

TEST_CASE("sinusoidal positional encoding matches its formula") {
  std::vector<float> pe(10);
  tinyllm::layers::sinusoidal_position_encoding(7, 10, pe.data());
  for (int i = 0; i < 5; ++i) {
    const double angle = 7.0 / std::pow(10000.0, 2.0 * i / 10.0);
    CHECK(pe[2 * i] == doctest::Approx(std::sin(angle)).epsilon(1e-6));
    CHECK(pe[2 * i + 1] == doctest::Approx(std::cos(angle)).epsilon(1e-6));
  }
}
