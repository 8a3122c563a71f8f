// tinyllm serve's request parsing and validation (OpenAI's field names, defaults and error objects)
// and the text a choice shows (stop sequences, UTF-8, log-prob entries), without HTTP or a model.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "api.hpp"
#include "choice.hpp"
#include "server_test_helpers.hpp"

using namespace tinyllm::server;

namespace {

const tinyllm::Tokenizer& tok() {
  static const tinyllm::Tokenizer t = tinyllm::Tokenizer::from_pretrained(test::demo_model());
  return t;
}
ModelInfo info() {
  ModelInfo m;
  m.id = "tiny-sotu";
  m.tokenizer = &tok();
  m.vocab_size = 50257;
  m.n_positions = 256;
  m.bos_token_id = 50256;
  return m;
}
Limits limits() {
  Limits l;
  l.max_tokens = 200;
  l.max_prompt_tokens = 100;
  l.max_choices = 8;
  return l;
}
CompletionRequest parse(const std::string& body) { return parse_completion_request(body, info(), limits()); }

// The ApiError a body gets (fails the test if it parses).
ApiError error_of(const std::string& body) {
  try {
    parse(body);
  } catch (const ApiError& e) {
    return e;
  }
  FAIL("accepted: " << body);
  return ApiError(0, "", "");
}

}  // namespace

TEST_CASE("completions: OpenAI's defaults") {
  const CompletionRequest r = parse("{}");
  REQUIRE(r.prompts.size() == 1);
  CHECK(r.prompts[0].ids == std::vector<int>{50256});  // the default prompt "<|endoftext|>" is the separator token
  CHECK(r.prompts[0].text == "<|endoftext|>");
  CHECK(r.cfg.max_new_tokens == 16);
  CHECK(r.cfg.do_sample);  // temperature 1: sampling, from every token (no top_k)
  CHECK(r.cfg.temperature == 1.0f);
  CHECK(r.cfg.top_p == 1.0f);
  CHECK(r.cfg.top_k == 0);
  CHECK(r.n == 1);
  CHECK(r.best_of == 1);
  CHECK(r.logprobs == -1);
  CHECK_FALSE(r.echo);
  CHECK_FALSE(r.stream);
  CHECK_FALSE(r.seed.has_value());
  CHECK_FALSE(r.adjust.active());
  // null is the default too
  const CompletionRequest n = parse(R"({"max_tokens": null, "temperature": null, "stop": null, "logprobs": null})");
  CHECK(n.cfg.max_new_tokens == 16);
  CHECK(n.logprobs == -1);
}

TEST_CASE("completions: the fields map to the library's GenerationConfig") {
  const CompletionRequest r = parse(R"({"model": "tiny-sotu", "prompt": "Hello", "max_tokens": 7, "temperature": 0.5,
      "top_p": 0.9, "n": 2, "best_of": 3, "stop": ["\n", "."], "seed": -1, "logprobs": 3, "echo": true,
      "presence_penalty": 0.5, "frequency_penalty": -0.25, "logit_bias": {"50256": -100, "13": 2.5}, "user": "u",
      "top_k": 40, "min_p": 0.05, "typical_p": 0.95, "repetition_penalty": 1.2, "no_repeat_ngram_size": 3,
      "min_new_tokens": 2, "bad_words_ids": [[262, 1578]], "prompt_lookup_num_tokens": 5, "max_matching_ngram_size": 3,
      "suffix": ""})");
  CHECK(r.prompts[0].ids == tok().encode("Hello"));
  CHECK(r.prompts[0].text == "Hello");
  CHECK(r.cfg.max_new_tokens == 7);
  CHECK(r.cfg.do_sample);
  CHECK(r.cfg.temperature == 0.5f);
  CHECK(r.cfg.top_p == 0.9f);
  CHECK(r.n == 2);
  CHECK(r.best_of == 3);
  CHECK(r.cfg.stop_strings == std::vector<std::string>{"\n", "."});
  CHECK(*r.seed == ~std::uint64_t(0));  // an int64 seed's bits
  CHECK(r.logprobs == 3);
  CHECK(r.cfg.top_logprobs == 3);
  CHECK(r.echo);
  CHECK(r.adjust.presence_penalty == 0.5f);
  CHECK(r.adjust.frequency_penalty == -0.25f);
  CHECK(r.adjust.logit_bias == std::vector<std::pair<int, float>>{{50256, -100.0f}, {13, 2.5f}});
  CHECK(r.user == "u");
  CHECK(r.cfg.top_k == 40);
  CHECK(r.cfg.min_p == 0.05f);
  CHECK(r.cfg.typical_p == 0.95f);
  CHECK(r.cfg.repetition_penalty == 1.2f);
  CHECK(r.cfg.no_repeat_ngram_size == 3);
  CHECK(r.cfg.min_new_tokens == 2);
  CHECK(r.cfg.bad_words_ids == std::vector<std::vector<int>>{{262, 1578}});
  CHECK(r.cfg.prompt_lookup_num_tokens == 5);
  CHECK(r.cfg.max_matching_ngram_size == 3);
  CHECK(r.cfg.num_return_sequences == 1);
  // temperature 0, or top_p 0 (an empty nucleus), is greedy; n > 1 then repeats the one answer
  CHECK_FALSE(parse(R"({"temperature": 0})").cfg.do_sample);
  CHECK_FALSE(parse(R"({"top_p": 0})").cfg.do_sample);
  CHECK(parse(R"({"temperature": 0, "n": 3})").n == 3);
  CHECK(parse(R"({"top_k": -1})").cfg.top_k == 0);  // vLLM's "off"
  CHECK(parse(R"({"stream": true, "stream_options": {"include_usage": true}})").include_usage);
  CHECK(parse(R"({"stop": "\n"})").cfg.stop_strings == std::vector<std::string>{"\n"});
  CHECK(parse(R"({"stop": ["", "x"]})").cfg.stop_strings == std::vector<std::string>{"x"});  // "" means nothing
  CHECK(parse(R"({"n": 3})").best_of == 3);  // best_of defaults to n
}

TEST_CASE("completions: the four prompt forms") {
  const std::vector<int> hello = tok().encode("Hello world");
  CHECK(parse(R"({"prompt": "Hello world"})").prompts[0].ids == hello);
  const CompletionRequest strings = parse(R"({"prompt": ["Hello world", "Hi"]})");
  REQUIRE(strings.prompts.size() == 2);
  CHECK(strings.prompts[1].ids == tok().encode("Hi"));
  const CompletionRequest ids = parse(R"({"prompt": [15496, 995]})");
  REQUIRE(ids.prompts.size() == 1);
  CHECK(ids.prompts[0].ids == std::vector<int>{15496, 995});
  CHECK(ids.prompts[0].text == "Hello world");  // for echo
  const CompletionRequest lists = parse(R"({"prompt": [[15496, 995], [50256]]})");
  REQUIRE(lists.prompts.size() == 2);
  CHECK(lists.prompts[1].ids == std::vector<int>{50256});
  CHECK(lists.prompts[1].text == "<|endoftext|>");  // special tokens kept in the echo of ids
  // an empty string starts from bos, as the library's generate_text does
  CHECK(parse(R"({"prompt": ""})").prompts[0].ids == std::vector<int>{50256});
  // "<|endoftext|>" in a string prompt is the special token (OpenAI's and HF's reading)
  CHECK(parse(R"({"prompt": "a<|endoftext|>"})").prompts[0].ids.back() == 50256);
}

TEST_CASE("completions: OpenAI's errors, naming the field") {
  auto check = [](const std::string& body, int status, const std::string& message, std::optional<std::string> param,
                  std::optional<std::string> code) {
    CAPTURE(body);
    const ApiError e = error_of(body);
    CHECK(e.status == status);
    CHECK(std::string(e.what()).find(message) != std::string::npos);
    CHECK(e.type == "invalid_request_error");
    CHECK(e.param == param);
    CHECK(e.code == code);
    const auto j = e.body();  // {"error": {"message", "type", "param", "code"}}
    CHECK(j["error"]["message"] == e.what());
    CHECK(j["error"].size() == 4);
  };
  using std::nullopt;
  using S = std::string;
  check("{not json", 400, "We could not parse the JSON body of your request", nullopt, nullopt);
  check("[1, 2]", 400, "must be a JSON object", nullopt, nullopt);
  check(R"({"prompt": "x", "foo": 1})", 400, "Unrecognized request argument supplied: foo", nullopt, nullopt);
  check(R"({"stream_options": {"include_usage": true, "bar": 1}, "stream": true})", 400,
        "Unrecognized request argument supplied: stream_options.bar", nullopt, nullopt);
  check(R"({"model": "gpt-3.5-turbo-instruct"})", 404, "The model `gpt-3.5-turbo-instruct` does not exist", S("model"),
        S("model_not_found"));
  check(R"({"max_tokens": "16"})", 400, "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
        S("max_tokens"), S("invalid_type"));
  check(R"({"max_tokens": 16.5})", 400, "expected an integer, but got a decimal", S("max_tokens"), S("invalid_type"));
  check(R"({"max_tokens": -1})", 400, "Invalid 'max_tokens': integer below minimum value. Expected a value >= 0, but got -1",
        S("max_tokens"), S("integer_below_min_value"));
  check(R"({"max_tokens": 201})", 400, "Expected a value <= 200, but got 201", S("max_tokens"), S("integer_above_max_value"));
  check(R"({"max_tokens": 18446744073709551615})", 400, "integer above maximum value", S("max_tokens"),
        S("integer_above_max_value"));
  check(R"({"temperature": 2.5})", 400, "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5",
        S("temperature"), S("decimal_above_max_value"));
  check(R"({"temperature": "hot"})", 400, "expected a decimal, but got a string", S("temperature"), S("invalid_type"));
  check(R"({"top_p": 1.5})", 400, "Invalid 'top_p'", S("top_p"), S("decimal_above_max_value"));
  check(R"({"n": 0})", 400, "Invalid 'n'", S("n"), S("integer_below_min_value"));
  check(R"({"n": 129})", 400, "Invalid 'n'", S("n"), S("integer_above_max_value"));
  check(R"({"logprobs": 6})", 400, "Invalid 'logprobs'", S("logprobs"), S("integer_above_max_value"));
  check(R"({"logprobs": true})", 400, "Invalid type for 'logprobs'", S("logprobs"), S("invalid_type"));
  check(R"({"echo": "yes"})", 400, "expected a boolean", S("echo"), S("invalid_type"));
  check(R"({"stream": 1})", 400, "expected a boolean, but got an integer", S("stream"), S("invalid_type"));
  check(R"({"stop": ["a", "b", "c", "d", "e"]})", 400, "Invalid 'stop': array too long", S("stop"),
        S("array_above_max_length"));
  check(R"({"stop": 5})", 400, "Invalid type for 'stop'", S("stop"), S("invalid_type"));
  check(R"({"presence_penalty": -3})", 400, "Invalid 'presence_penalty'", S("presence_penalty"),
        S("decimal_below_min_value"));
  check(R"({"n": 2, "best_of": 1})", 400, "Invalid 'best_of'", S("best_of"), S("invalid_value"));
  check(R"({"n": 1, "best_of": 2, "stream": true})", 400, "cannot be streamed", S("best_of"), S("invalid_value"));
  check(R"({"stream_options": {"include_usage": true}})", 400, "only allowed when 'stream' is enabled",
        S("stream_options"), S("invalid_value"));
  check(R"({"suffix": "end"})", 400, "Invalid 'suffix'", S("suffix"), S("unsupported_parameter"));
  check(R"({"logit_bias": {"abc": 1}})", 400, "Invalid key in 'logit_bias'", S("logit_bias"), S("invalid_value"));
  check(R"({"logit_bias": {"50257": 1}})", 400, "not a token id of this model", S("logit_bias"), S("invalid_value"));
  check(R"({"logit_bias": {"13": 101}})", 400, "Expected a value <= 100", S("logit_bias.13"),
        S("decimal_above_max_value"));
  check(R"({"seed": "7"})", 400, "Invalid type for 'seed'", S("seed"), S("invalid_type"));
  check(R"({"top_k": 1.5})", 400, "Invalid type for 'top_k'", S("top_k"), S("invalid_type"));
  check(R"({"repetition_penalty": 0})", 400, "Invalid 'repetition_penalty'", S("repetition_penalty"),
        S("decimal_below_min_value"));
  check(R"({"typical_p": 0})", 400, "Invalid 'typical_p'", S("typical_p"), S("decimal_below_min_value"));
  check(R"({"bad_words_ids": [[]]})", 400, "Invalid type for 'bad_words_ids'", S("bad_words_ids"), S("invalid_type"));
  // prompts
  check(R"({"prompt": 5})", 400, "Invalid type for 'prompt'", S("prompt"), S("invalid_type"));
  check(R"({"prompt": []})", 400, "Invalid 'prompt': empty array", S("prompt"), S("empty_array"));
  check(R"({"prompt": [[]]})", 400, "Invalid 'prompt[0]': empty array", S("prompt"), S("empty_array"));
  check(R"({"prompt": ["a", 1]})", 400, "Invalid type for 'prompt'", S("prompt"), S("invalid_type"));
  check(R"({"prompt": [1, "a"]})", 400, "Invalid type for 'prompt'", S("prompt"), S("invalid_type"));
  check(R"({"prompt": [50257]})", 400, "token id 50257 is outside the vocabulary [0, 50257)", S("prompt"), S("invalid_value"));
  check(R"({"prompt": [-1]})", 400, "token id -1 is outside the vocabulary", S("prompt"), S("invalid_value"));
  // limits: prompt length (the server's and the context's) and how many completions
  std::string ids = "13";
  for (int i = 1; i < 101; ++i) ids += ",13";
  check(R"({"prompt": [)" + ids + "]}", 400, "101 tokens is more than this server's limit of 100", S("prompt"),
        S("context_length_exceeded"));
  check(R"({"prompt": [)" + ids.substr(0, ids.size() - 3) + R"(], "max_tokens": 200})", 400,
        "This model's maximum context length is 256 tokens, however you requested 300 tokens (100 in your prompt; 200 for "
        "the completion)",
        S("max_tokens"), S("context_length_exceeded"));
  check(R"({"prompt": ["a", "b", "c"], "n": 3})", 400, "asks for 9 completions", S("n"), S("too_many_completions"));
}

TEST_CASE("tokenize and detokenize requests") {
  const TokenizeRequest t = parse_tokenize_request(R"({"prompt": "Hi<|endoftext|>"})", info());
  CHECK(t.prompt == "Hi<|endoftext|>");
  CHECK(t.add_special_tokens);
  CHECK_FALSE(t.return_token_strs);
  CHECK_FALSE(parse_tokenize_request(R"({"prompt": "x", "add_special_tokens": false})", info()).add_special_tokens);
  CHECK(parse_detokenize_request(R"({"tokens": [15496, 995]})", info()) == std::vector<int>{15496, 995});
  auto code_of = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const ApiError& e) {
      return e.code.value_or("") + "/" + e.param.value_or("");
    }
    return "accepted";
  };
  CHECK(code_of([] { parse_tokenize_request("{}", info()); }) == "missing_required_parameter/prompt");
  CHECK(code_of([] { parse_tokenize_request(R"({"prompt": 1})", info()); }) == "invalid_type/prompt");
  CHECK(code_of([] { parse_tokenize_request(R"({"text": "x"})", info()); }) == "/");  // unrecognized argument
  CHECK(code_of([] { parse_detokenize_request(R"({"tokens": [99999]})", info()); }) == "invalid_value/tokens");
  CHECK(code_of([] { parse_detokenize_request(R"({"tokens": "x"})", info()); }) == "invalid_type/tokens");
  CHECK(code_of([] { parse_detokenize_request(R"({"model": "other", "tokens": []})", info()); }) ==
        "model_not_found/model");
}

TEST_CASE("embeddings requests: OpenAI's input forms, formats and errors naming the field") {
  Limits lim;
  lim.max_tokens = 100;
  lim.max_prompt_tokens = 8;
  const int n_embd = 128;
  const EmbeddingRequest one = parse_embedding_request(R"({"model": "tiny-sotu", "input": "It's a fine day"})", info(), lim, n_embd);
  CHECK(one.inputs == std::vector<std::vector<int>>{{1026, 338, 257, 3734, 1110}});
  CHECK_FALSE(one.base64);
  CHECK(one.pooling == "mean");
  CHECK(one.normalize);
  CHECK(parse_embedding_request(R"({"input": [15496, 995]})", info(), lim, n_embd).inputs.size() == 1);
  CHECK(parse_embedding_request(R"({"input": ["a", "b c"]})", info(), lim, n_embd).inputs.size() == 2);
  CHECK(parse_embedding_request(R"({"input": [[1], [2, 3]], "encoding_format": "base64", "dimensions": 128})", info(),
                                lim, n_embd).base64);
  const EmbeddingRequest ext = parse_embedding_request(R"({"input": "x", "pooling": "last", "normalize": false})", info(), lim, n_embd);
  CHECK(ext.pooling == "last");
  CHECK_FALSE(ext.normalize);
  auto code_of = [&](const char* body) -> std::string {
    try {
      parse_embedding_request(body, info(), lim, n_embd);
    } catch (const ApiError& e) {
      return std::to_string(e.status) + "/" + e.code.value_or("") + "/" + e.param.value_or("");
    }
    return "accepted";
  };
  CHECK(code_of("{}") == "400/missing_required_parameter/input");
  CHECK(code_of(R"({"input": ""})") == "400/invalid_value/input");
  CHECK(code_of(R"({"input": []})") == "400/empty_array/input");
  CHECK(code_of(R"({"input": [[]]})") == "400/empty_array/input");
  CHECK(code_of(R"({"input": ["a", 1]})") == "400/invalid_type/input");
  CHECK(code_of(R"({"input": {"text": "a"}})") == "400/invalid_type/input");
  CHECK(code_of(R"({"input": [50257]})") == "400/invalid_value/input");
  CHECK(code_of(R"({"input": [1, 2, 3, 4, 5, 6, 7, 8, 9]})") == "400/context_length_exceeded/input");
  CHECK(code_of(R"({"input": [1, 2, 3, 4, 5, 6, 7, 8]})") == "accepted");
  CHECK(code_of(R"({"input": "x", "encoding_format": "int8"})") == "400/invalid_value/encoding_format");
  CHECK(code_of(R"({"input": "x", "dimensions": 64})") == "400/unsupported_parameter/dimensions");
  CHECK(code_of(R"({"input": "x", "dimensions": "128"})") == "400/invalid_type/dimensions");
  CHECK(code_of(R"({"input": "x", "pooling": "none"})") == "400/invalid_value/pooling");
  CHECK(code_of(R"({"input": "x", "normalize": 1})") == "400/invalid_type/normalize");
  CHECK(code_of(R"({"input": "x", "frobnicate": 1})") == "400//");
  CHECK(code_of(R"({"input": "x", "model": "text-embedding-3-small"})") == "404/model_not_found/model");
  std::string many = R"({"input": [)";
  for (std::size_t i = 0; i <= max_embedding_inputs; ++i) many += i ? ",\"a\"" : "\"a\"";
  CHECK(code_of((many + "]}").c_str()) == "400/array_above_max_length/input");
}

TEST_CASE("embeddings: base64 is OpenAI's little-endian float32") {
  const float v[2] = {1.0f, -2.5f};  // 0x3f800000, 0xc0200000
  CHECK(base64_floats(v, 2) == "AACAPwAAIMA=");
  CHECK(base64_floats(v, 0).empty());
}

namespace {
std::vector<TokenOut> tokens_of(const std::string& text) {
  std::vector<TokenOut> out;
  for (int id : tok().encode(text)) out.push_back({id, -1.0f, {}});
  return out;
}
// All the text a choice sends, piece by piece, with `stop` and the tokens of `text`.
std::vector<std::string> pieces(const std::string& text, const std::vector<std::string>& stop, bool stopped) {
  ChoiceText c(tok(), stop, false, 0);
  std::vector<std::string> out;
  for (const TokenOut& t : tokens_of(text)) {
    c.push(t);
    out.push_back(c.take().text);
  }
  c.finish(stopped);
  out.push_back(c.take().text);
  return out;
}
std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x;
  return s;
}
}  // namespace

TEST_CASE("choice text: cut before the stop sequence, never sent in part") {
  // The engine stops at the token that completes a stop sequence; the text ends before it.
  CHECK(joined(pieces("Hello world. Bye", {"world"}, true)) == "Hello ");
  CHECK(joined(pieces("a b\n\nc", {"\n\n"}, true)) == "a b");
  // While streaming, a tail that may begin a stop sequence waits for the next token.
  const std::vector<std::string> p = pieces("one two three", {" two three four"}, false);
  CHECK(joined(p) == "one two three");
  CHECK(p[0] == "one");
  CHECK(p[1].empty());  // " two" may begin the stop sequence
  CHECK(p[2].empty());
  CHECK(p.back() == " two three");  // not stopped: it goes out at the end
  // No stop sequence: everything at once.
  CHECK(pieces("one two", {}, false)[0] == "one");
}

TEST_CASE("choice text: UTF-8 split across tokens comes out whole; offsets count characters") {
  const std::vector<int> ids = tok().encode("é😀 x");
  ChoiceText c(tok(), {}, true, 3);  // a 3-character prompt before
  std::string text;
  for (int id : ids) {
    c.push({id, -0.5f, {{id, -0.5f}, {13, -2.0f}}});
    const auto piece = c.take();
    text += piece.text;
    // the log-prob entries go out with their text: never an entry whose text is still held
  }
  c.finish(false);
  const auto last = c.take();
  text += last.text;
  CHECK(text == "é😀 x");
  // offsets: the prompt's 3 characters, then é (1 character), 😀 (1), " x"
  ChoiceText d(tok(), {}, true, 3);
  for (int id : ids) d.push({id, -0.5f, {{id, -0.5f}, {13, -2.0f}}});
  d.finish(false);
  const auto all = d.take();
  CHECK(all.logprobs.tokens.size() == ids.size());
  CHECK(all.logprobs.text_offset.front() == 3);
  CHECK(all.logprobs.text_offset.back() == 5);  // " x" starts after "é😀"
  // a token whose bytes are not complete UTF-8 shows as bytes:\xNN, as OpenAI's legacy API does
  bool partial = false;
  for (const auto& t : all.logprobs.tokens) partial |= t.get<std::string>().rfind("bytes:\\x", 0) == 0;
  CHECK(partial);
  // the chosen token is among the alternatives (logprobs + 1 entries at most)
  CHECK(all.logprobs.top_logprobs[0].size() == 2);
}

TEST_CASE("choice text: echo puts the prompt and its log-probs first") {
  Prompt p;
  p.text = "Hello world";
  p.ids = tok().encode(p.text);
  ChoiceText c(tok(), {"\n"}, true, code_points(p.text));
  c.echo(p, {{p.ids[1], -3.0f, {{p.ids[1], -3.0f}}}});
  for (const TokenOut& t : tokens_of("!\nmore")) c.push(t);
  c.finish(true);
  const auto all = c.take();
  CHECK(all.text == "Hello world!");  // the prompt's "world" is not cut; the stop sequence is in the new text
  const auto j = all.logprobs.to_json();
  CHECK(j["tokens"][0] == "Hello");
  CHECK(j["token_logprobs"][0].is_null());  // nothing predicts the first token
  CHECK(j["top_logprobs"][0].is_null());
  CHECK(j["token_logprobs"][1] == -3.0f);
  CHECK(j["text_offset"][0] == 0);
  CHECK(j["text_offset"][1] == 5);
  CHECK(j["text_offset"][2] == 11);  // "!" after the 11 characters of the prompt
}
