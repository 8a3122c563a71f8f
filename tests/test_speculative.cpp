// Speculative decoding (prompt lookup and a draft model): proposals, greedy output identical to plain
// greedy decoding on many prompts and models (draft == target, random drafts, a Q8 draft, lookups
// that find nothing), sampling with prompt lookup identical to plain sampling with the same seed,
// the KV cache rolled back correctly (sessions continue as without speculation), statistics, bad
// configs, and a statistical test that speculative sampling with a draft model draws from the
// target's distribution.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <tinyllm/gpt2.hpp>
#include <tinyllm/io/safetensors_writer.hpp>

#include "test_helpers.hpp"

namespace {

using tinyllm::GenerationConfig;

// A random GPT-2 folder with a tiny vocabulary (no tokenizer): N(0, scale) matrices and biases,
// layer norms with weight 1, so next-token distributions are neither flat nor one-hot.
void write_tiny_gpt2(const std::string& dir, int vocab, std::uint64_t seed, float scale) {
  tinyllm::GPT2Config c;
  c.vocab_size = vocab;
  c.n_positions = 32;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.bos_token_id = 0;
  c.eos_token_id = -1;
  test::write_file(dir + "/config.json",
                   nlohmann::json{{"model_type", "gpt2"}, {"vocab_size", c.vocab_size}, {"n_positions", c.n_positions},
                                  {"n_embd", c.n_embd}, {"n_layer", c.n_layer}, {"n_head", c.n_head},
                                  {"bos_token_id", 0}, {"eos_token_id", nullptr}}
                       .dump());
  std::vector<std::vector<float>> data;
  std::vector<tinyllm::detail::TensorToWrite> tensors;
  tinyllm::GPT2Weights w;
  std::uint64_t s = seed;
  tinyllm::for_each_tensor(c, w, [&](const tinyllm::TensorSpec& spec, auto&) {
    if (spec.optional) return;
    std::size_t n = 1;
    for (auto d : spec.shape) n *= static_cast<std::size_t>(d);
    const bool ln_weight = spec.name.find("ln_") != std::string::npos && spec.name.find(".weight") != std::string::npos;
    data.push_back(ln_weight ? std::vector<float>(n, 1.0f) : test::random_floats(n, ++s, scale));
    tensors.push_back({spec.name, tinyllm::DType::F32, spec.shape, nullptr, n * sizeof(float)});
  });
  for (std::size_t i = 0; i < tensors.size(); ++i) tensors[i].data = data[i].data();
  tinyllm::detail::write_safetensors(dir + "/model.safetensors", tensors);
}

std::vector<int> random_ids(std::size_t n, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> ids(n);
  for (int& id : ids) id = static_cast<int>(rng() % static_cast<std::uint64_t>(vocab));
  return ids;
}

// The models of the fixtures that share GPT-2-like vocabularies of 357 ids, plus the demo model.
const std::vector<tinyllm::GPT2>& fixture_models() {
  static const std::vector<tinyllm::GPT2> m = {tinyllm::GPT2::from_pretrained(test::fixture("f32-hub")),
                                               tinyllm::GPT2::from_pretrained(test::fixture("f16-prefix-odd")),
                                               tinyllm::GPT2::from_pretrained(test::fixture("f32-sharded-inner"))};
  return m;
}
const tinyllm::GPT2& demo() {
  static const tinyllm::GPT2 m = tinyllm::GPT2::from_pretrained(test::demo_model());
  return m;
}

void check_stats(const tinyllm::GenerationResult& r) {
  const auto& st = r.speculation;
  CHECK(st.accepted <= st.proposed);
  CHECK(st.generated == r.new_ids().size());
  CHECK(st.target_passes <= st.generated);
  CHECK(st.generated <= st.target_passes + st.accepted);  // each pass: accepted proposals + one token at most
}

}  // namespace

TEST_CASE("prompt lookup proposes what followed the latest match of the last n-gram") {
  using tinyllm::detail::prompt_lookup;
  // the last id never occurred before: it is proposed up to kFallbackTokens (3) times
  CHECK(prompt_lookup({1, 2, 3, 4}, 2, 5) == std::vector<int>{4, 4, 4});
  CHECK(prompt_lookup({1, 2, 3, 4}, 2, 2) == std::vector<int>{4, 4});
  CHECK(prompt_lookup({7}, 2, 5) == std::vector<int>{7, 7, 7});
  CHECK(prompt_lookup({1, 2, 3, 4}, 0, 5) == std::vector<int>{4, 4, 4});  // no n-gram matched at all
  CHECK(prompt_lookup({}, 2, 5).empty());
  CHECK(prompt_lookup({1, 2, 3, 1, 2}, 2, 0).empty());              // no tokens asked for
  CHECK(prompt_lookup({1, 2, 3, 9, 1, 2}, 2, 2) == std::vector<int>{3, 9});
  // the latest occurrence of the bigram (2, 3) wins over the first
  CHECK(prompt_lookup({2, 3, 5, 2, 3, 6, 7, 2, 3}, 2, 2) == std::vector<int>{6, 7});
  // a bigram match wins over a later unigram match; without the bigram the unigram is used
  CHECK(prompt_lookup({4, 1, 8, 0, 1, 9, 4, 1}, 2, 1) == std::vector<int>{8});
  CHECK(prompt_lookup({4, 1, 8, 0, 1, 9, 4, 1}, 1, 1) == std::vector<int>{9});
  // continuations that reach the end go on periodically
  CHECK(prompt_lookup({5, 5, 5}, 2, 4) == std::vector<int>{5, 5, 5, 5});
  CHECK(prompt_lookup({0, 1, 2, 1, 2}, 2, 5) == std::vector<int>{1, 2, 1, 2, 1});
  CHECK(prompt_lookup({1, 2, 3, 1, 2}, 3, 4) == std::vector<int>{3, 1, 2, 3});
}

TEST_CASE("prompt lookup repeats a new last id when the generated text often runs the tokens it switches to") {
  using tinyllm::detail::prompt_lookup;
  using tinyllm::detail::repeats_switches;
  // prompt {1, 2}; generated 7 7 8 8 9: both switches before 9 (to 7, to 8) were followed by a repeat
  CHECK(repeats_switches({1, 2, 7, 7, 8, 8, 9}, 2));
  // (the run is as long as asked; a new id without the habit is proposed only kFallbackTokens times)
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 9}, 2, 5, 2) == std::vector<int>{9, 9, 9, 9, 9});
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 9}, 2, 5) == std::vector<int>{9, 9, 9});     // no prompt length given: not used
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 9}, 2, 5, 7) == std::vector<int>{9, 9, 9});  // all of it is prompt
  // to 7 and 8 repeated; to 5, 4, 3, 6, 0 and 1 not: two of eight, a quarter ...
  CHECK(repeats_switches({1, 2, 7, 7, 8, 8, 5, 4, 3, 6, 0, 1, 9}, 2));
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 5, 4, 3, 6, 0, 1, 9}, 2, 5, 2) == std::vector<int>{9, 9, 9, 9, 9});
  // ... two of nine: less
  CHECK_FALSE(repeats_switches({1, 2, 7, 7, 8, 8, 5, 4, 3, 6, 0, 1, 2, 9}, 2));
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 5, 4, 3, 6, 0, 1, 2, 9}, 2, 5, 2) == std::vector<int>{9, 9, 9});
  CHECK_FALSE(repeats_switches({1, 2, 7, 7, 9}, 2));                // one repeat is not enough
  CHECK_FALSE(repeats_switches({1, 2, 7, 8, 9}, 2));                // none repeated
  CHECK_FALSE(repeats_switches({1, 2, 2, 2, 9}, 2));                // no switch in the generated ids
  // the run wins over what followed the id's previous occurrence (8, the end of its earlier run) ...
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 7}, 2, 2, 2) == std::vector<int>{7, 7});
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 7}, 2, 2) == std::vector<int>{8, 8});  // (without the habit)
  // ... but not over a bigram seen before, and inside a run the lookup goes on as usual
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8, 7, 7, 8}, 2, 2, 2) == std::vector<int>{8, 7});
  CHECK(prompt_lookup({1, 2, 7, 7, 8, 8}, 2, 3, 2) == std::vector<int>{8, 8, 8});
}

TEST_CASE("prompt lookup on random short sequences proposes at most the asked number of ids, all from the sequence") {
  // Every branch (continuation, periodic extension, run) copies ids of the sequence; the sanitizer
  // build checks the index arithmetic at the edges (empty, one id, prompt lengths past the end).
  using tinyllm::detail::prompt_lookup;
  std::mt19937 g(3);
  for (int it = 0; it < 20000; ++it) {
    std::vector<int> ids(g() % 12);
    for (int& x : ids) x = static_cast<int>(g() % 4);
    const std::size_t P = g() % 3 == 0 ? std::numeric_limits<std::size_t>::max() : g() % 14;
    const std::size_t max_tokens = g() % 6;
    const std::vector<int> p = prompt_lookup(ids, g() % 4, max_tokens, P);
    REQUIRE(p.size() <= max_tokens);
    REQUIRE(p.empty() == (ids.empty() || max_tokens == 0));
    for (int id : p) REQUIRE(std::find(ids.begin(), ids.end(), id) != ids.end());
  }
}

TEST_CASE("proposal lengths follow HF's heuristic schedule within their bounds") {
  using tinyllm::detail::ProposalLength;
  ProposalLength lookup{10, 4, 10, true};  // prompt lookup with prompt_lookup_num_tokens = 10
  lookup.update(10, 3);
  CHECK(lookup.tokens == 9);  // a rejection: one fewer
  for (int i = 0; i < 10; ++i) lookup.update(lookup.tokens, 0);
  CHECK(lookup.tokens == 4);  // not below the floor
  lookup.update(3, 3);        // all accepted (a fallback of 3): two more
  CHECK(lookup.tokens == 6);
  lookup.update(0, 0);        // nothing proposed (the last token of a sequence): unchanged
  CHECK(lookup.tokens == 6);
  for (int i = 0; i < 5; ++i) lookup.update(lookup.tokens, lookup.tokens);
  CHECK(lookup.tokens == 10);  // not above prompt_lookup_num_tokens
  ProposalLength draft{3, 1, std::numeric_limits<std::size_t>::max(), true};  // num_assistant_tokens 3, "heuristic"
  for (int i = 0; i < 5; ++i) draft.update(draft.tokens, 0);
  CHECK(draft.tokens == 1);
  for (int i = 0; i < 5; ++i) draft.update(draft.tokens, draft.tokens);
  CHECK(draft.tokens == 11);  // no upper bound, as in HF
  ProposalLength constant{5, 1, 5, false};
  constant.update(5, 0);
  CHECK(constant.tokens == 5);
}

TEST_CASE("the verification head skips rows after a rejected proposal and computes the rest exactly") {
  // Vocabulary 700 x 40 with rows 5 and 600 equal (their logits tie: the first, 5, is the greedy
  // choice); 6 hidden rows; proposals built from the full logits to accept, reject or tie.
  using Backend = tinyllm::DefaultBackend;
  const std::size_t V = 700, C = 40, T = 6;
  auto e = test::random_floats(V * C, 11);
  std::copy(e.begin() + 5 * C, e.begin() + 6 * C, e.begin() + 600 * C);
  const auto x = test::random_floats(T * C, 12);
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16, tinyllm::WeightType::Q8}) {
    CAPTURE(tinyllm::weight_type_name(type));
    tinyllm::WeightView f32;
    f32.data = e.data();
    f32.rows = V;
    f32.cols = C;
    f32.outputs_are_rows = true;
    tinyllm::detail::MatrixBuffers buffers;
    const tinyllm::WeightView E = tinyllm::detail::convert_matrix(f32, type, buffers);
    std::vector<float> full(T * V);
    tinyllm::layers::linear_transposed<Backend>(E, x.data(), T, full.data());
    // The first row whose greedy choice (ignored ids left out) is not its proposal, else T - 1.
    auto first_rejected = [&](const std::vector<int>& p, const std::vector<int>& ignored) {
      for (std::size_t i = 0; i + 1 < T; ++i) {
        int best = -1;
        for (std::size_t v = 0; v < V; ++v)
          if (std::find(ignored.begin(), ignored.end(), static_cast<int>(v)) == ignored.end() &&
              (best < 0 || full[i * V + v] > full[i * V + static_cast<std::size_t>(best)]))
            best = static_cast<int>(v);
        if (best != p[i]) return i;
      }
      return T - 1;
    };
    auto greedy = [&](std::size_t i) {
      return static_cast<int>(std::max_element(full.begin() + i * V, full.begin() + (i + 1) * V) - full.begin() - i * V);
    };
    auto check = [&](const std::vector<int>& p, const std::vector<int>& ignored, const std::vector<int>& likely = {}) {
      std::vector<float> got(T * V, std::nanf(""));
      const std::size_t n =
          tinyllm::layers::linear_transposed_greedy<Backend>(E, x.data(), T, p.data(), ignored, got.data(), likely);
      const std::size_t a = first_rejected(p, ignored);
      CHECK(n >= a + 1);  // every row up to the first rejection is complete
      CHECK(n <= T);
      for (std::size_t i = 0; i < n * V; ++i) REQUIRE(got[i] == full[i]);  // bitwise, rows [0, n)
      return n;
    };
    std::vector<int> accept(T - 1);
    for (std::size_t i = 0; i + 1 < T; ++i) accept[i] = greedy(i);
    CHECK(check(accept, {}) == T);  // all accepted: every row
    for (std::size_t r = 0; r + 1 < T; ++r) {  // a wrong proposal at row r
      auto p = accept;
      p[r] = (accept[r] + 1) % static_cast<int>(V);
      const std::size_t n = check(p, {});
      if (type != tinyllm::WeightType::Q8) CHECK(n == r + 1);  // a wrong guess is beaten within the sweep
      // likely ids tried first: the winner among them cuts the sweep from its start, others change nothing
      const std::size_t m = check(p, {}, {-1, 7, accept[r], static_cast<int>(V) + 3, p[r]});
      if (type != tinyllm::WeightType::Q8) CHECK(m == r + 1);
      CHECK(check(accept, {}, {accept[0], 1, 2}) == T);  // all accepted: likely ids cut nothing
      if (r > 0 && type != tinyllm::WeightType::Q8)  // an earlier row's winner is an accepted proposal there
        CHECK(check(p, {}, {accept[0]}) == r + 1);
    }
    // Ties: make row 1's greedy choice id 5 by a large hidden component along e[5]; proposing the
    // equal-scoring id 600 is a rejection, proposing 5 is not.
    auto x2 = x;
    for (std::size_t c = 0; c < C; ++c) x2[1 * C + c] = e[5 * C + c];
    std::vector<float> full2(T * V);
    tinyllm::layers::linear_transposed<Backend>(E, x2.data(), T, full2.data());
    REQUIRE(std::max_element(full2.begin() + V, full2.begin() + 2 * V) == full2.begin() + V + 5);
    REQUIRE(full2[V + 600] == full2[V + 5]);
    {
      std::vector<float> got(T * V);
      auto p = accept;
      p[1] = 600;
      std::size_t n = tinyllm::layers::linear_transposed_greedy<Backend>(E, x2.data(), T, p.data(), {}, got.data());
      if (type != tinyllm::WeightType::Q8) CHECK(n == 2);
      p[1] = 5;
      n = tinyllm::layers::linear_transposed_greedy<Backend>(E, x2.data(), T, p.data(), {}, got.data());
      CHECK(n >= 3);
    }
    // Ignored ids never beat a proposal: with row 0's best id ignored, its runner-up is accepted.
    const int best0 = greedy(0);
    int second = best0 == 0 ? 1 : 0;
    for (std::size_t v = 0; v < V; ++v)
      if (static_cast<int>(v) != best0 && full[v] > full[static_cast<std::size_t>(second)]) second = static_cast<int>(v);
    auto p = accept;
    p[0] = second;
    CHECK(check(p, {best0}) >= 2);
    check(p, {});  // without it, row 0 rejects
  }
}

TEST_CASE("greedy speculative decoding gives plain greedy's tokens, on many models, prompts and settings") {
  std::vector<const tinyllm::GPT2*> models = {&demo()};
  for (const auto& m : fixture_models()) models.push_back(&m);
  tinyllm::LoadOptions q8;
  q8.weight_type = tinyllm::WeightType::Q8;
  const tinyllm::GPT2 demo_q8 = tinyllm::GPT2::from_pretrained(test::demo_model(), q8);
  int checked = 0;
  for (std::size_t mi = 0; mi < models.size(); ++mi) {
    const tinyllm::GPT2& model = *models[mi];
    const int V = model.config().vocab_size;
    // drafts: the model itself, and a different model with the same vocabulary (random for the
    // fixtures, the Q8 copy for the demo model)
    std::vector<const tinyllm::GPT2*> drafts = {&model, mi == 0 ? &demo_q8 : &fixture_models()[mi % 3]};
    for (std::uint64_t p = 0; p < 4; ++p) {
      const std::vector<int> prompt =
          mi == 0 && p < 2 ? model.tokenizer().encode(p ? "Call me Ishmael. Call me" : "The state of the Union")
                           : random_ids(1 + p * 3, V, 100 * mi + p);
      GenerationConfig plain;
      plain.max_new_tokens = 24;
      if (p % 3 == 1) {  // processors see the accepted prefix of each pass
        plain.repetition_penalty = 1.3f;
        plain.no_repeat_ngram_size = 3;
      }
      if (p % 3 == 2) plain.min_new_tokens = 5;
      const auto expected = model.generate_with_scores(prompt, plain)[0];
      for (int k : {1, 3, 10}) {
        for (int n : {1, 2, 3}) {
          GenerationConfig c = plain;
          c.prompt_lookup_num_tokens = k;
          c.max_matching_ngram_size = n;
          const auto r = model.generate_with_scores(prompt, c)[0];
          CHECK_MESSAGE(r.sequence == expected.sequence, "model " << mi << " prompt " << p << " lookup " << k << "/" << n);
          CHECK(r.logprobs == expected.logprobs);
          check_stats(r);
          ++checked;
        }
        for (const tinyllm::GPT2* d : drafts) {
          for (float threshold : {0.0f, 0.4f}) {
            GenerationConfig c = plain;
            c.assistant_model = *d;
            c.num_assistant_tokens = k;
            c.assistant_confidence_threshold = threshold;
            c.num_assistant_tokens_schedule = k == 3 ? "heuristic" : "constant";
            const auto r = model.generate_with_scores(prompt, c)[0];
            CHECK_MESSAGE(r.sequence == expected.sequence, "model " << mi << " prompt " << p << " draft k " << k);
            check_stats(r);
            if (d == &model && threshold == 0.0f) {  // a draft that is the model: every proposal is accepted
              CHECK(r.speculation.accepted == r.speculation.proposed);
              CHECK(r.speculation.proposed > 0);
            }
            ++checked;
          }
        }
      }
    }
  }
  MESSAGE(checked << " speculative runs equal plain greedy decoding");
}

TEST_CASE("speculative decoding at the context limit, with eos, stop strings and streaming") {
  const auto& model = fixture_models()[2];  // n_positions 32
  const std::vector<int> prompt = random_ids(20, model.config().vocab_size, 5);
  GenerationConfig plain;
  plain.max_new_tokens = 100;  // stops at n_positions
  const auto expected = model.generate(prompt, plain);
  CHECK(expected.size() == 32);
  GenerationConfig c = plain;
  c.prompt_lookup_num_tokens = 10;
  CHECK(model.generate(prompt, c) == expected);
  c = plain;
  c.assistant_model = model;
  c.assistant_confidence_threshold = 0;
  CHECK(model.generate(prompt, c) == expected);

  // eos: the same stop, with the eos token last
  GenerationConfig e = plain;
  e.eos_token_id = {expected[24]};
  const auto stopped = model.generate(prompt, e);
  e.prompt_lookup_num_tokens = 10;
  CHECK(model.generate(prompt, e) == stopped);
  e.prompt_lookup_num_tokens = 0;
  e.assistant_model = model;
  CHECK(model.generate(prompt, e) == stopped);

  // streaming: the callback sees the same ids in the same order, and stopping it stops at the same id
  const auto& dm = demo();
  const auto ids = dm.tokenizer().encode("The state of the Union");
  GenerationConfig s;
  s.max_new_tokens = 40;
  std::vector<int> seen_plain, seen_spec;
  dm.generate(ids, s, [&](int id) { seen_plain.push_back(id); });
  s.prompt_lookup_num_tokens = 10;
  const auto out = dm.generate(ids, s, [&](int id) {
    seen_spec.push_back(id);
    return seen_spec.size() < 30;
  });
  CHECK(seen_spec.size() == 30);
  CHECK(std::vector<int>(seen_plain.begin(), seen_plain.begin() + 30) == seen_spec);
  CHECK(out.size() == ids.size() + 30);
  // stop strings
  GenerationConfig st;
  st.max_new_tokens = 40;
  st.stop_strings = {"United"};
  const std::string a = dm.generate_text("The state of the Union", st);
  st.prompt_lookup_num_tokens = 10;
  CHECK(dm.generate_text("The state of the Union", st) == a);
}

TEST_CASE("sampling with prompt lookup gives plain sampling's tokens for the same seed") {
  const auto& model = demo();
  const auto ids = model.tokenizer().encode("It was the best of times, it was the worst of times, it was the");
  for (std::uint64_t seed : {1, 2, 3, 4}) {
    GenerationConfig c;
    c.max_new_tokens = 30;
    c.do_sample = true;
    c.seed = seed;
    c.top_k = 0;
    c.temperature = seed % 2 ? 0.7f : 1.0f;
    const auto plain = model.generate(ids, c);
    c.prompt_lookup_num_tokens = 5;
    const auto r = model.generate_with_scores(ids, c)[0];
    CHECK(r.sequence == plain);
    check_stats(r);
  }
  // several return sequences: each is plain sampling's sequence r
  GenerationConfig c;
  c.max_new_tokens = 12;
  c.do_sample = true;
  c.num_return_sequences = 3;
  const auto plain = model.generate_batch(std::vector<std::vector<int>>{ids}, c);
  c.prompt_lookup_num_tokens = 4;
  CHECK(model.generate_batch(std::vector<std::vector<int>>{ids}, c) == plain);
}

TEST_CASE("the cache is rolled back past rejected proposals: sessions continue as without speculation") {
  const auto& model = demo();
  tinyllm::Session plain(model), spec(model);
  GenerationConfig c;
  c.max_new_tokens = 20;
  GenerationConfig s = c;
  s.prompt_lookup_num_tokens = 8;
  for (const char* turn : {"The state of the Union", " and the people of", " Call me Ishmael."}) {
    plain.append(turn);
    spec.append(turn);
    CHECK(spec.generate(s) == plain.generate(c));
    CHECK(spec.ids() == plain.ids());
    CHECK(spec.cached() < spec.size());  // never past the ids it holds
    // the cached keys and values are those of the ids: the next logits equal a fresh full pass
  }
  GenerationConfig one;
  one.max_new_tokens = 1;
  const auto next = spec.generate_with_scores(one);
  const auto full = model.logits(std::vector<int>(next.sequence.begin(), next.sequence.end() - 1));
  CHECK(next.sequence.back() == tinyllm::detail::argmax(full.data(), full.size()));
}

TEST_CASE("speculative decoding options are checked") {
  const auto& model = demo();
  const std::vector<int> ids = {464, 1181};
  auto expect = [&](const GenerationConfig& c, const std::string& field) {
    try {
      model.generate(ids, c);
    } catch (const tinyllm::Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find("GenerationConfig." + field) != std::string::npos);
      return;
    }
    FAIL("no Error for " << field);
  };
  GenerationConfig c;
  c.prompt_lookup_num_tokens = -1;
  expect(c, "prompt_lookup_num_tokens");
  c = {};
  c.max_matching_ngram_size = 0;
  expect(c, "max_matching_ngram_size");
  c = {};
  c.num_assistant_tokens = 0;
  expect(c, "num_assistant_tokens");
  c = {};
  c.num_assistant_tokens_schedule = "sometimes";
  expect(c, "num_assistant_tokens_schedule");
  c = {};
  c.assistant_confidence_threshold = 1.5f;
  expect(c, "assistant_confidence_threshold");
  c = {};
  c.assistant_model = model;
  c.prompt_lookup_num_tokens = 3;
  expect(c, "prompt_lookup_num_tokens");
  c = {};
  c.prompt_lookup_num_tokens = 3;
  c.num_beams = 2;
  expect(c, "num_beams");
  c = {};
  c.assistant_model = fixture_models()[0];  // 357 ids against 50257
  expect(c, "assistant_model");
  c.assistant_model = nullptr;  // off again
  CHECK_FALSE(static_cast<bool>(c.assistant_model));
  CHECK(model.generate(ids, c).size() == 20);
}

TEST_CASE("speculative sampling with a draft model draws from the target's distribution") {
  // A target and a different draft over 6 ids; two new tokens after a fixed prompt, both decided by
  // speculative sampling (two proposals per pass). Over N seeds the pairs must fit the target's
  // exact joint distribution (chi-square at p = 1e-5, so a correct sampler fails once in 1e5 seeds
  // sets; the seeds are fixed, so the outcome is too) and clearly not the draft's.
  test::TempDir dir;
  const std::string td = dir / "target", dd = dir / "draft";
  test::fs::create_directories(td);
  test::fs::create_directories(dd);
  const int V = 6;
  write_tiny_gpt2(td, V, 11, 0.3f);
  write_tiny_gpt2(dd, V, 97, 0.3f);
  const auto target = tinyllm::GPT2::from_pretrained(td), draft = tinyllm::GPT2::from_pretrained(dd);
  const std::vector<int> prompt = {1, 4, 2};

  auto joint = [&](const tinyllm::GPT2& m) {  // p(a, b | prompt)
    std::vector<double> p(V * V);
    auto softmax = [](const std::vector<float>& l) {
      std::vector<double> q(l.size());
      double mx = *std::max_element(l.begin(), l.end()), z = 0;
      for (std::size_t i = 0; i < l.size(); ++i) z += q[i] = std::exp(double(l[i]) - mx);
      for (double& x : q) x /= z;
      return q;
    };
    const auto pa = softmax(m.logits(prompt));
    for (int a = 0; a < V; ++a) {
      std::vector<int> pa_ids = prompt;
      pa_ids.push_back(a);
      const auto pb = softmax(m.logits(pa_ids));
      for (int b = 0; b < V; ++b) p[a * V + b] = pa[a] * pb[b];
    }
    return p;
  };
  const std::vector<double> p_target = joint(target), p_draft = joint(draft);

  GenerationConfig c;
  c.max_new_tokens = 2;
  c.do_sample = true;
  c.top_k = 0;
  c.assistant_model = draft;
  c.num_assistant_tokens = 2;
  c.assistant_confidence_threshold = 0;
  const int N = 12000;
  std::vector<double> counts(V * V, 0.0);
  std::size_t proposed = 0, accepted = 0;
  for (int seed = 0; seed < N; ++seed) {
    c.seed = static_cast<std::uint64_t>(seed);
    const auto r = target.generate_with_scores(prompt, c)[0];
    REQUIRE(r.sequence.size() == prompt.size() + 2);
    counts[r.sequence[3] * V + r.sequence[4]] += 1;
    proposed += r.speculation.proposed;
    accepted += r.speculation.accepted;
  }
  // Pearson's chi-square over the cells, those expected fewer than 5 times pooled into one; returns
  // the statistic and its 1e-5 critical value (Wilson-Hilferty approximation, z = 4.265).
  auto chi2 = [&](const std::vector<double>& p, double& critical) {
    double x = 0, pooled_count = 0, pooled_p = 0;
    int bins = 0;
    for (int i = 0; i < V * V; ++i) {
      if (N * p[i] < 5) {
        pooled_count += counts[i];
        pooled_p += p[i];
        continue;
      }
      x += (counts[i] - N * p[i]) * (counts[i] - N * p[i]) / (N * p[i]);
      ++bins;
    }
    if (N * pooled_p >= 5) {
      x += (pooled_count - N * pooled_p) * (pooled_count - N * pooled_p) / (N * pooled_p);
      ++bins;
    }
    const double df = bins - 1, h = 2.0 / (9.0 * df);
    critical = df * std::pow(1 - h + 4.265 * std::sqrt(h), 3);
    return x;
  };
  double critical_target = 0, critical_draft = 0;
  const double fit_target = chi2(p_target, critical_target), fit_draft = chi2(p_draft, critical_draft);
  MESSAGE("chi-square vs target " << fit_target << " (critical " << critical_target << "), vs draft " << fit_draft
                                  << " (critical " << critical_draft << "); acceptance "
                                  << double(accepted) / double(proposed));
  CHECK(critical_target > 30);  // enough cells for the test to mean something
  CHECK(fit_target < critical_target);
  CHECK(fit_draft > 10 * critical_draft);  // the test would notice draws from the draft's distribution
  CHECK(accepted > 0);      // both branches ran: accepted proposals and replaced ones
  CHECK(accepted < proposed);
}
