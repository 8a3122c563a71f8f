// One model shared by many threads: every kind of call the library offers, run on 8 threads at once
// in shuffled orders, gives what it gives alone. CI also runs this file under ThreadSanitizer
// (with the std::thread backend, since libgomp is not instrumented), where a data race anywhere in
// these paths is a report.
#include <doctest/doctest.h>

#include <algorithm>  // std::shuffle
#include <cstddef>    // std::size_t
#include <functional> // std::function
#include <random>     // std::mt19937
#include <string>     // std::string
#include <thread>     // std::thread
#include <vector>     // std::vector

#include <tinyllm/gpt2.hpp>
#include <tinyllm/session.hpp>

#include "test_helpers.hpp"

namespace {

// Each task returns a text that captures its whole result (tokens, scores, vectors).
using Task = std::function<std::string()>;

std::string floats_text(const float* v, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += std::to_string(v[i]) + ",";
  return s;
}

std::vector<Task> tasks(const tinyllm::GPT2& model, const tinyllm::GPT2& draft) {
  std::vector<Task> t;
  t.push_back([&] { return model.generate_text("The whale", 24); });  // greedy
  t.push_back([&] {
    tinyllm::GenerationConfig c;
    c.max_new_tokens = 24;
    c.do_sample = true;
    c.top_p = 0.9f;
    c.seed = 7;
    return model.generate_text("My fellow citizens", c);
  });
  t.push_back([&] {
    tinyllm::GenerationConfig c;
    c.max_new_tokens = 16;
    c.num_beams = 3;
    c.num_return_sequences = 2;
    std::string out;
    for (const auto& r : model.generate_with_scores(model.tokenizer().encode("Congress shall"), c))
      out += model.tokenizer().decode(r.sequence) + "|" + std::to_string(r.sequence_score) + "\n";
    return out;
  });
  t.push_back([&] {
    tinyllm::GenerationConfig c;
    c.max_new_tokens = 20;
    c.do_sample = true;
    c.seed = 3;
    std::string out;
    for (const std::string& s : model.generate_batch({"The sea", "We the people", "In the beginning"}, c)) out += s + "\n";
    return out;
  });
  t.push_back([&] {
    tinyllm::GenerationConfig c;
    c.max_new_tokens = 32;
    c.prompt_lookup_num_tokens = 4;
    return model.generate_text("the state of the Union, the state of the Union, the state of", c);
  });
  t.push_back([&] {  // speculative decoding with a draft model shared by every thread
    tinyllm::GenerationConfig c;
    c.max_new_tokens = 24;
    c.assistant_model = draft;
    return model.generate_text("The President shall", c);
  });
  t.push_back([&] {
    tinyllm::Session chat(model);
    chat.append("Q: What is the state of the Union?\nA:");
    tinyllm::GenerationConfig c;
    c.max_new_tokens = 12;
    std::string out = chat.generate_text(c);
    chat.append("\nQ: And the sea?\nA:");
    return out + "|" + chat.generate_text(c);
  });
  t.push_back([&] {  // the tokenizer shared
    std::string out;
    const tinyllm::Tokenizer& tok = model.tokenizer();
    for (const char* s : {"Hello, world! It's 2026.", "naïve café — 日本語 🐋", "  spaces\tand\nlines  "}) {
      const std::vector<int> ids = tok.encode(s);
      out += std::to_string(ids.size()) + ":" + tok.decode(ids) + "\n";
    }
    return out;
  });
  t.push_back([&] {
    tinyllm::EmbeddingOptions o;
    o.pooling = tinyllm::Pooling::weighted_mean;
    o.normalize = true;
    const tinyllm::Embeddings e = model.embed({"Call me Ishmael.", "The whale", "Congress shall make no law"}, o);
    return floats_text(e.data.data(), e.data.size());
  });
  t.push_back([&] {
    const std::vector<float> l = model.logits(model.tokenizer().encode("The state of the Union is"));
    return floats_text(l.data(), 64);
  });
  return t;
}

}  // namespace

TEST_CASE("concurrency: 8 threads sharing one model, a draft model and a tokenizer give the sequential results") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  tinyllm::LoadOptions q8;
  q8.weight_type = tinyllm::WeightType::Q8;
  const auto draft = tinyllm::GPT2::from_pretrained(test::demo_model(), q8);
  const std::vector<Task> all = tasks(model, draft);
  std::vector<std::string> expected;
  for (const Task& task : all) expected.push_back(task());

  constexpr int n_threads = 8;
  std::vector<std::vector<std::string>> got(n_threads, std::vector<std::string>(all.size()));
  std::vector<std::thread> threads;
  for (int w = 0; w < n_threads; ++w)
    threads.emplace_back([&, w] {
      std::vector<std::size_t> order(all.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(w)));
      for (std::size_t i : order) got[static_cast<std::size_t>(w)][i] = all[i]();
    });
  for (auto& th : threads) th.join();
  for (int w = 0; w < n_threads; ++w)
    for (std::size_t i = 0; i < all.size(); ++i) CHECK_MESSAGE(got[static_cast<std::size_t>(w)][i] == expected[i], "thread " << w << ", task " << i);
}
