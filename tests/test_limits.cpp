// Bounded resources: every limit of docs/security.md, tested at its edge (accepted) and just past it
// (a tinyllm::Error naming the limit), so a hostile file or request never makes tinyllm allocate more
// than it declares.
#include <doctest/doctest.h>

#include <filesystem>  // std::filesystem::resize_file
#include <functional>  // std::function
#include <initializer_list>
#include <string>
#include <vector>

#include <tinyllm/gpt2.hpp>

#include "test_helpers.hpp"

namespace {

// Runs fn, requires a tinyllm::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const tinyllm::Error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '" << p << "'");
    return;
  }
  FAIL("no exception");
}

std::string st_image(const std::string& header, std::uint64_t declared) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((declared >> (8 * i)) & 0xff);
  return out + header;
}

}  // namespace

TEST_CASE("limits: text files of a model folder are read up to max_text_file_bytes") {
  test::TempDir d;
  const std::string f = d / "config.json";
  const std::uint64_t limit = tinyllm::detail::max_text_file_bytes;
  test::write_file(f, "");
  std::filesystem::resize_file(f, limit);  // sparse: costs no disk
  CHECK(tinyllm::detail::read_text_file(f).size() == limit);
  std::filesystem::resize_file(f, limit + 1);
  expect_error([&] { tinyllm::detail::read_text_file(f); }, {f, std::to_string(limit + 1) + " bytes", "max_text_file_bytes"});
  // Through the loaders that read such files.
  expect_error([&] { tinyllm::GPT2Config::from_pretrained(d.str()); }, {"config.json", "max_text_file_bytes"});
}

TEST_CASE("limits: safetensors header length and tensor count") {
  test::TempDir d;
  const std::string f = d / "model.safetensors";
  using ST = tinyllm::SafetensorsFile;
  // At the limit the length is accepted (and the file is too short for it); past it, refused as such.
  test::write_file(f, st_image("{}", ST::max_header_bytes));
  expect_error([&] { ST s(f); }, {f, "header length " + std::to_string(ST::max_header_bytes), "past the end"});
  test::write_file(f, st_image("{}", ST::max_header_bytes + 1));
  expect_error([&] { ST s(f); }, {f, "absurdly large", "limit " + std::to_string(ST::max_header_bytes)});

  auto header = [](std::size_t tensors) {
    std::string h = R"({"__metadata__": {"format": "pt"})";
    for (std::size_t i = 0; i < tensors; ++i)
      h += ",\"t" + std::to_string(i) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
    return h + "}";
  };
  std::string h = header(ST::max_tensors);
  test::write_file(f, st_image(h, h.size()) );
  CHECK(ST(f).tensors().size() == ST::max_tensors);
  h = header(ST::max_tensors + 1);
  test::write_file(f, st_image(h, h.size()));
  expect_error([&] { ST s(f); }, {f, std::to_string(ST::max_tensors + 1) + " tensors", "max_tensors"});
}

TEST_CASE("limits: token ids below max_vocab_size, no more merges than tokens") {
  using tinyllm::detail::max_vocab_size;
  const tinyllm::detail::json at = {{"a", max_vocab_size - 1}}, past = {{"a", max_vocab_size}};
  CHECK(tinyllm::detail::read_vocab_object(at, "vocab.json").front().second == max_vocab_size - 1);
  expect_error([&] { tinyllm::detail::read_vocab_object(past, "vocab.json"); },
               {"vocab.json", "token 'a'", std::to_string(max_vocab_size)});

  // f32-hub's vocabulary with its first merge repeated up to as many merges as tokens, then one more.
  test::TempDir d;
  const std::string hub = test::fixture("f32-hub");
  const std::size_t tokens = test::read_json(hub + "/vocab.json").size();
  const std::string merges = test::read_file(hub + "/merges.txt");
  std::size_t lines = 0;
  for (char c : merges) lines += c == '\n';
  const std::size_t have = lines - 1;  // the #version line
  REQUIRE(merges.back() == '\n');
  const std::string first = merges.substr(merges.find('\n') + 1, merges.find('\n', merges.find('\n') + 1) - merges.find('\n'));
  std::string more = merges;
  for (std::size_t i = have; i < tokens; ++i) more += first;
  test::write_file(d / "merges.txt", more);
  const auto tok = tinyllm::Tokenizer::from_vocab_and_merges(hub + "/vocab.json", d / "merges.txt");
  CHECK(tok.encode("the whale") == tinyllm::Tokenizer::from_pretrained(hub).encode("the whale"));
  test::write_file(d / "merges.txt", more + first);
  expect_error([&] { tinyllm::Tokenizer::from_vocab_and_merges(hub + "/vocab.json", d / "merges.txt"); },
               {"merges.txt", std::to_string(tokens + 1) + " merges", std::to_string(tokens) + " tokens"});
}

TEST_CASE("limits: num_beams x num_return_sequences up to max_sequences") {
  using G = tinyllm::GenerationConfig;
  G beams;
  beams.num_beams = 32;
  beams.num_return_sequences = 32;
  beams.validate();
  beams.num_beams = 33;  // 33 x 32
  expect_error([&] { beams.validate(); }, {"GenerationConfig.num_beams", "1056", "max_sequences (1024)"});
  beams.num_beams = G::max_sequences;
  beams.num_return_sequences = 1;
  beams.validate();
  beams.num_beams = G::max_sequences + 1;
  expect_error([&] { beams.validate(); }, {"GenerationConfig.num_beams", "max_sequences"});

  G sample;
  sample.do_sample = true;
  sample.num_return_sequences = G::max_sequences;
  sample.validate();
  sample.num_return_sequences = G::max_sequences + 1;
  expect_error([&] { sample.validate(); }, {"GenerationConfig.num_return_sequences", "max_sequences"});
}

TEST_CASE("limits: stop strings, their count and length") {
  using G = tinyllm::GenerationConfig;
  G cfg;
  cfg.stop_strings.assign(G::max_stop_strings, "\n");
  cfg.validate();
  cfg.stop_strings.push_back("\n");
  expect_error([&] { cfg.validate(); },
               {"GenerationConfig.stop_strings", std::to_string(G::max_stop_strings + 1), "max_stop_strings"});
  cfg.stop_strings = {std::string(G::max_stop_string_bytes, 'x')};
  cfg.validate();
  cfg.stop_strings = {std::string(G::max_stop_string_bytes + 1, 'x')};
  expect_error([&] { cfg.validate(); },
               {"GenerationConfig.stop_strings", std::to_string(G::max_stop_string_bytes + 1) + " bytes"});
}

TEST_CASE("limits: prompt and new tokens stay within the model's n_positions") {
  const auto model = tinyllm::GPT2::from_pretrained(test::fixture("f32-hub"));
  const std::size_t P = static_cast<std::size_t>(model.config().n_positions);
  tinyllm::GenerationConfig cfg;
  cfg.max_new_tokens = 1 << 30;  // asks for far more than fits: generation ends at n_positions
  cfg.eos_token_id = {0};
  const std::vector<int> prompt(P - 2, 5);
  CHECK(model.generate(prompt, cfg).size() <= P);
  const std::vector<int> full(P, 5);  // at the edge: nothing left to generate
  CHECK(model.generate(full, cfg) == full);
  const std::vector<int> past(P + 1, 5);
  expect_error([&] { model.generate(past, cfg); }, {"generate", std::to_string(P + 1) + " tokens", "n_positions"});
}

TEST_CASE("limits: JSON nesting up to max_json_depth") {
  using tinyllm::detail::max_json_depth;
  auto nested = [](int depth, const std::string& inner = "") {
    return std::string(static_cast<std::size_t>(depth), '[') + inner + std::string(static_cast<std::size_t>(depth), ']');
  };
  CHECK(tinyllm::detail::parse_json(nested(max_json_depth), "x.json").is_array());
  CHECK(tinyllm::detail::parse_json(nested(max_json_depth - 1, "\"[[[[\\\"\""), "x.json").is_array());  // strings skipped
  expect_error([&] { tinyllm::detail::parse_json(nested(max_json_depth + 1), "x.json"); },
               {"x.json", std::to_string(max_json_depth) + " levels", "max_json_depth"});
  // A million levels in a field that an error message prints overflowed the stack before the limit.
  const std::string deep = nested(1000000);
  expect_error([&] { tinyllm::GPT2Config::from_json("{\"eos_token_id\": " + deep + "}", "config.json"); },
               {"config.json", "max_json_depth"});
  expect_error([&] { tinyllm::detail::generation_eos_token_ids("{\"eos_token_id\": " + deep + "}", "g.json", 10); },
               {"g.json", "max_json_depth"});
  test::TempDir d;
  test::write_file(d / "model.safetensors", st_image("{\"a\": " + deep + "}", 2000007));
  expect_error([&] { tinyllm::SafetensorsFile s(d / "model.safetensors"); }, {"model.safetensors", "max_json_depth"});
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>  // mallinfo2
#define TINYLLM_TEST_HEAP 1
#endif

TEST_CASE("limits: a generation's memory does not grow once its KV cache has its size") {
#ifndef TINYLLM_TEST_HEAP
  MESSAGE("skipped: needs glibc's mallinfo2 to measure the heap");
#else
  // The KV cache grows with the sequence up to n_positions; a prompt of 4/5 of the context gives it
  // its whole size at once. From then on each new token may only add its id and text to the
  // results (a few bytes), never a buffer per step.
  auto heap = [] {
    const struct mallinfo2 m = mallinfo2();
    return static_cast<long long>(m.uordblks + m.hblkhd);
  };
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const std::size_t P = static_cast<std::size_t>(model.config().n_positions);
  const std::vector<int> words = model.tokenizer().encode(" The state of our Union is strong, and the people");
  std::vector<int> prompt;
  while (prompt.size() < P * 4 / 5 + 1) prompt.push_back(words[prompt.size() % words.size()]);
  for (const bool sample : {false, true}) {
    tinyllm::GenerationConfig cfg;
    cfg.max_new_tokens = static_cast<int>(P);
    cfg.do_sample = sample;
    cfg.seed = 7;
    cfg.eos_token_id = {0};  // "!": unlikely to end it early
    cfg.stop_strings = {"\x01\x02"};
    cfg.repetition_penalty = 1.1f;
    long long after_first = -1, last = -1;
    std::size_t tokens = 0;
    model.generate(prompt, cfg, [&](int) {
      if (++tokens == 1) after_first = heap();
      last = heap();
    });
    INFO("sample " << sample << ", " << tokens << " tokens");
    REQUIRE(tokens > P / 8);
    CHECK(last - after_first <= static_cast<long long>(64 * tokens) + 16384);
  }
#endif
}
