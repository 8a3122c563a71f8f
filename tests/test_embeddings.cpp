// Embeddings: pooled vectors of every pooling, several hidden states and normalisation against the
// PyTorch oracle on folders made for them (tests/reference/make_embedding_fixtures.py: F16 with n_head
// 3 and an odd n_embd, F32 with n_head 5, BF16 with n_inner, and the demo model); a batch == each
// input alone, bitwise, across passes, backends and thread counts; the packed multi-sequence pass
// against forward_hidden (also after a cached prefix); bad inputs and options.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>

#include <tinyllm/gpt2.hpp>
#include <tinyllm/semantic_index.hpp>  // also in test_semantic_index.cpp: two files that include hnswlib link

#include "test_helpers.hpp"

namespace {

const char* const folders[] = {"f16-h3-odd", "f32-h5-erf", "bf16-h4-inner", "tiny-sotu"};

std::string folder_path(const std::string& name) {
  return name == "tiny-sotu" ? test::demo_model() : test::fixture("embeddings/" + name);
}

bool same_bits(const std::vector<float>& a, const float* b, std::size_t n) {
  return a.size() == n && std::memcmp(a.data(), b, n * sizeof(float)) == 0;
}

std::vector<std::vector<int>> random_inputs(std::size_t n, int vocab, std::size_t max_len, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int>> out(n);
  for (auto& ids : out) {
    ids.resize(1 + rng() % max_len);
    for (int& id : ids) id = static_cast<int>(rng() % static_cast<std::uint64_t>(vocab));
  }
  return out;
}

}  // namespace

TEST_CASE("pooled vectors equal the PyTorch oracle within 1e-5 x max|value| (every pooling, hidden states, normalize)") {
  for (const char* name : folders) {
    CAPTURE(name);
    const std::string fixture_dir = test::fixture(std::string("embeddings/") + name);
    const auto model = tinyllm::GPT2::from_pretrained(folder_path(name));
    const auto doc = test::read_json(fixture_dir + "/embeddings.json");
    const auto all = test::read_f32(fixture_dir + "/embeddings.f32");
    std::size_t checked = 0;
    for (const auto& c : doc["cases"]) {
      tinyllm::EmbeddingOptions opts;
      opts.pooling = tinyllm::pooling_from_name(c["pooling"].get<std::string>());
      opts.layer = c["layer"];
      opts.normalize = c["normalize"];
      const std::vector<int> ids = c["ids"];
      const std::size_t offset = c["offset"], count = c["count"];
      CAPTURE(ids.size());
      CAPTURE(opts.layer);
      CAPTURE(c["pooling"].get<std::string>());
      CAPTURE(opts.normalize);
      const std::vector<float> got = model.embed(ids, opts);
      REQUIRE(got.size() == count);
      double diff, max_abs;
      test::max_errors(got.data(), all.data() + offset, count, diff, max_abs);
      INFO("max |diff| " << diff << ", max |ref| " << max_abs);
      CHECK(diff <= 1e-5 * max_abs);
      // The same hidden state counted from the end, as Python's hidden_states[-k].
      opts.layer -= model.config().n_layer + 1;
      CHECK(same_bits(model.embed(ids, opts), got.data(), count));
      ++checked;
    }
    CHECK(checked >= 96);
    if (doc.contains("texts")) {  // the demo model: texts encode to the oracle's ids (tiktoken) and embed alike
      for (std::size_t i = 0; i < doc["texts"].size(); ++i) {
        const std::string text = doc["texts"][i];
        const std::vector<int> ids = model.tokenizer().encode(text);
        CHECK(ids == doc["inputs"][i].get<std::vector<int>>());
        const auto v = model.embed(ids);
        CHECK(same_bits(model.embed(text), v.data(), v.size()));
      }
    }
  }
}

TEST_CASE("a batch gives each input's vectors bitwise as alone, for every pooling and hidden state") {
  for (const char* name : folders) {
    CAPTURE(name);
    const auto model = tinyllm::GPT2::from_pretrained(folder_path(name));
    const auto& c = model.config();
    // lengths from 1 to n_positions, so some inputs alone take the matrix-vector kernels (<= 16 rows)
    // while the batch's pass takes the GEMM
    auto inputs = random_inputs(9, c.vocab_size, static_cast<std::size_t>(c.n_positions), 7);
    inputs.push_back(std::vector<int>(static_cast<std::size_t>(c.n_positions), 5));
    for (auto pooling : {tinyllm::Pooling::mean, tinyllm::Pooling::weighted_mean, tinyllm::Pooling::last, tinyllm::Pooling::none})
      for (int layer : {0, 1, -1}) {
        tinyllm::EmbeddingOptions opts;
        opts.pooling = pooling;
        opts.layer = layer;
        opts.normalize = layer == 1;
        CAPTURE(tinyllm::pooling_name(pooling));
        CAPTURE(layer);
        const tinyllm::Embeddings batch = model.embed(inputs, opts);
        REQUIRE(batch.size() == inputs.size());
        CHECK(batch.dim == static_cast<std::size_t>(c.n_embd));
        std::size_t tokens = 0;
        for (std::size_t i = 0; i < inputs.size(); ++i) {
          CHECK(batch.tokens[i] == inputs[i].size());
          tokens += inputs[i].size();
          const auto alone = model.embed(inputs[i], opts);
          CHECK(batch.rows(i) == (pooling == tinyllm::Pooling::none ? inputs[i].size() : 1));
          CHECK_MESSAGE(same_bits(alone, batch[i], batch.rows(i) * batch.dim), "input " << i);
          CHECK(batch.vector(i) == alone);
        }
        CHECK(batch.total_tokens() == tokens);
        CHECK(batch.data.size() == batch.offsets.back() * batch.dim);
      }
  }
}

TEST_CASE("a batch larger than one pass, on every backend and thread count, gives the same bits") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const auto serial = tinyllm::BasicGPT2<tinyllm::Serial>::from_pretrained(test::demo_model());
  const auto pool = tinyllm::BasicGPT2<tinyllm::ThreadPool>::from_pretrained(test::demo_model());
  // more than embed_rows rows in all: the batch runs in several packed passes
  const auto inputs = random_inputs(40, model.config().vocab_size, 200, 11);
  tinyllm::EmbeddingOptions opts;
  opts.pooling = tinyllm::Pooling::weighted_mean;
  const auto batch = model.embed(inputs, opts);
  CHECK(batch.total_tokens() > tinyllm::detail::embed_rows);
  CHECK(std::memcmp(serial.embed(inputs, opts).data.data(), batch.data.data(), batch.data.size() * 4) == 0);
  CHECK(std::memcmp(pool.embed(inputs, opts).data.data(), batch.data.data(), batch.data.size() * 4) == 0);
  tinyllm::set_num_threads(1);
  const auto one_thread = model.embed(inputs, opts);
  tinyllm::set_num_threads(0);
  CHECK(std::memcmp(one_thread.data.data(), batch.data.data(), batch.data.size() * 4) == 0);
  for (std::size_t i : {std::size_t(0), std::size_t(17), std::size_t(39)})
    CHECK(same_bits(model.embed(inputs[i], opts), batch[i], batch.dim));
  // texts: the batch API tokenizes like encode()
  const std::vector<std::string> texts = {"Call me Ishmael.", "", "The whale"};
  CHECK_THROWS_WITH_AS(model.embed(texts), "embed: input 1: has no tokens (an empty text?)", tinyllm::Error);
  const auto two = model.embed({"Call me Ishmael.", "The whale"});
  CHECK(same_bits(model.embed("The whale"), two[1], two.dim));
  CHECK(two.tokens[0] == model.tokenizer().encode("Call me Ishmael.").size());
}

TEST_CASE("Pooling::none after ln_f is forward's hidden state, bitwise, and gives forward's logits") {
  for (const char* name : folders) {
    CAPTURE(name);
    const auto model = tinyllm::GPT2::from_pretrained(folder_path(name));
    const auto& c = model.config();
    const auto ids = random_inputs(1, c.vocab_size, static_cast<std::size_t>(c.n_positions), 3)[0];
    tinyllm::detail::InferenceState s(c);
    tinyllm::detail::forward_hidden<tinyllm::DefaultBackend>(c, model.weights(), s, ids.data(), ids.size());
    tinyllm::EmbeddingOptions opts;
    opts.pooling = tinyllm::Pooling::none;
    const auto h = model.embed(ids, opts);
    REQUIRE(h.size() == ids.size() * static_cast<std::size_t>(c.n_embd));
    CHECK(std::memcmp(h.data(), s.x.data(), h.size() * 4) == 0);
    std::vector<float> logits(ids.size() * static_cast<std::size_t>(c.vocab_size));
    tinyllm::detail::lm_head<tinyllm::DefaultBackend>(model.weights(), h.data(), ids.size(), logits.data());
    CHECK(logits == model.forward(ids));
  }
}

TEST_CASE("forward_packed: sequences after cached prefixes, packed, equal forward_hidden of each alone") {
  const auto model = tinyllm::GPT2::from_pretrained(test::fixture("embeddings/f16-h3-odd"));
  const auto& c = model.config();
  const std::size_t C = static_cast<std::size_t>(c.n_embd);
  const auto prefixes = random_inputs(5, c.vocab_size, 12, 21), news = random_inputs(5, c.vocab_size, 20, 22);
  using B = tinyllm::DefaultBackend;
  std::vector<tinyllm::detail::InferenceState> alone, packed;
  alone.reserve(5);
  packed.reserve(5);
  std::vector<tinyllm::layers::KVCache*> caches;
  std::vector<int> ids;
  std::vector<std::size_t> lengths;
  for (std::size_t b = 0; b < 5; ++b) {
    alone.emplace_back(c);
    packed.emplace_back(c);
    tinyllm::detail::forward_hidden<B>(c, model.weights(), alone[b], prefixes[b].data(), prefixes[b].size());
    tinyllm::detail::forward_hidden<B>(c, model.weights(), packed[b], prefixes[b].data(), prefixes[b].size());
    tinyllm::detail::forward_hidden<B>(c, model.weights(), alone[b], news[b].data(), news[b].size());
    caches.push_back(&packed[b].cache);
    ids.insert(ids.end(), news[b].begin(), news[b].end());
    lengths.push_back(news[b].size());
  }
  tinyllm::detail::Activations act;
  tinyllm::detail::forward_packed<B>(c, model.weights(), act, caches.data(), ids.data(), lengths.data(), 5);
  std::size_t row = 0;
  for (std::size_t b = 0; b < 5; ++b) {
    CAPTURE(b);
    CHECK(packed[b].cache.length() == static_cast<int>(prefixes[b].size() + news[b].size()));
    CHECK(std::memcmp(act.x.data() + row * C, alone[b].x.data(), lengths[b] * C * 4) == 0);
    row += lengths[b];
  }
}

TEST_CASE("embed: bad inputs and options are Errors naming the input or field; truncate keeps the first n_positions") {
  const auto model = tinyllm::GPT2::from_pretrained(test::fixture("embeddings/f16-h3-odd"));
  const auto& c = model.config();
  const std::vector<int> long_ids(static_cast<std::size_t>(c.n_positions) + 3, 7);
  CHECK_THROWS_WITH_AS(model.embed(std::vector<std::vector<int>>{{1, 2}, long_ids}),
                       "embed: input 1: has 43 tokens, more than the model's context of n_positions = 40 "
                       "(EmbeddingOptions.truncate keeps the first 40)",
                       tinyllm::Error);
  tinyllm::EmbeddingOptions trunc;
  trunc.truncate = true;
  const auto t = model.embed(std::vector<std::vector<int>>{long_ids}, trunc);
  CHECK(t.tokens[0] == 40);
  CHECK(t.vector(0) == model.embed(std::vector<int>(long_ids.begin(), long_ids.begin() + 40)));
  CHECK_THROWS_WITH_AS(model.embed(std::vector<int>{}), "embed: input 0: has no tokens (an empty text?)", tinyllm::Error);
  CHECK_THROWS_WITH_AS(model.embed(std::vector<int>{1, c.vocab_size}),
                       ("embed: input 0: token id " + std::to_string(c.vocab_size) +
                        " at position 1 is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")")
                           .c_str(),
                       tinyllm::Error);
  for (int layer : {4, -5, 100}) {
    tinyllm::EmbeddingOptions o;
    o.layer = layer;
    CHECK_THROWS_WITH_AS(model.embed(std::vector<int>{1}, o),
                         ("EmbeddingOptions.layer: is " + std::to_string(layer) +
                          ", must be in [-4, 3] (hidden states of a 3-layer model)")
                             .c_str(),
                         tinyllm::Error);
  }
  tinyllm::EmbeddingOptions bad;
  bad.pooling = static_cast<tinyllm::Pooling>(9);
  CHECK_THROWS_WITH_AS(model.embed(std::vector<int>{1}, bad), "EmbeddingOptions.pooling: is 9, not a Pooling", tinyllm::Error);
  CHECK_THROWS_WITH_AS(tinyllm::pooling_from_name("max", "--pooling"),
                       "--pooling: 'max' is not one of mean, weighted_mean, last, none", tinyllm::Error);
  CHECK(tinyllm::pooling_from_name("weighted_mean") == tinyllm::Pooling::weighted_mean);
  // normalize: unit length; the empty batch is empty
  tinyllm::EmbeddingOptions unit;
  unit.normalize = true;
  const auto v = model.embed(std::vector<int>{3, 4, 5}, unit);
  double sq = 0;
  for (float x : v) sq += double(x) * x;
  CHECK(std::abs(sq - 1.0) < 1e-6);
  const auto none = model.embed(std::vector<std::vector<int>>{});
  CHECK(none.size() == 0);
  CHECK(none.total_tokens() == 0);
}
