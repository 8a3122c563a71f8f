// tinyllm serve's OpenAI-compatible API apart from HTTP: request bodies parsed and validated into what
// the engine runs (a bad one is an ApiError carrying OpenAI's error object, naming the field), and the
// JSON of responses. Nothing here touches a socket or the model's weights, so it can be unit-tested
// and fuzzed on its own. Depends on the tokenizer and GenerationConfig of the library, nlohmann/json.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint64_t
#include <optional>     // std::optional
#include <stdexcept>    // std::runtime_error
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector

#include <nlohmann/json.hpp>
#include <tinyllm/generation/config.hpp>
#include <tinyllm/generation/output.hpp>
#include <tinyllm/tokenizer.hpp>

namespace tinyllm::server {

using json = nlohmann::ordered_json;  // keys in the order written, as OpenAI sends them

// An error answered with an HTTP status and OpenAI's body {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  int status;
  std::string type;                  // invalid_request_error, authentication_error, server_error, ...
  std::optional<std::string> param;  // the request field at fault, if one is
  std::optional<std::string> code;   // a machine-readable reason, if there is one
  ApiError(int status, std::string message, std::string type, std::optional<std::string> param = std::nullopt,
           std::optional<std::string> code = std::nullopt)
      : std::runtime_error(std::move(message)), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}
  json body() const;
};

// A 400 invalid_request_error about `param`.
ApiError invalid_request(std::string message, std::optional<std::string> param = std::nullopt,
                         std::optional<std::string> code = std::nullopt);

// What the parser needs to know of the model being served.
struct ModelInfo {
  std::string id;              // the name clients use as "model"
  const Tokenizer* tokenizer;  // encodes string prompts
  int vocab_size = 0;
  int n_positions = 0;
  int bos_token_id = -1;  // an empty prompt starts from it
};

// The server's bounds on one request (each reported as a 400 naming the field when exceeded).
struct Limits {
  int max_tokens = 0;         // the largest max_tokens a request may ask for
  int max_prompt_tokens = 0;  // the longest prompt, in tokens
  int max_choices = 128;      // prompts x max(n, best_of) in one request
};

// OpenAI's bounds that the API reference states.
inline constexpr int max_logprobs = 5;
inline constexpr int max_n = 128;
inline constexpr int max_best_of = 20;
inline constexpr int max_stop_sequences = 4;

// One prompt: its ids and, for echo, its text.
struct Prompt {
  std::vector<int> ids;
  std::string text;  // the string as sent; for a prompt of ids, their decoding (special tokens kept)
};

// OpenAI's knobs that Hugging Face's processors do not have; the engine adds them to the logits
// before the library's processors run: logit_bias[id], and for each id generated so far c times,
// - c * frequency_penalty - (c > 0) * presence_penalty.
struct ScoreAdjustments {
  std::vector<std::pair<int, float>> logit_bias;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  bool active() const { return !logit_bias.empty() || presence_penalty != 0.0f || frequency_penalty != 0.0f; }
};

// POST /v1/completions, validated. cfg holds the library's view of it: max_new_tokens = max_tokens,
// do_sample / temperature / top_p / top_k / ..., stop_strings = stop, top_logprobs = logprobs.
struct CompletionRequest {
  std::vector<Prompt> prompts;
  int n = 1;
  int best_of = 1;             // >= n; the n best of best_of by mean log-prob per token
  bool echo = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int logprobs = -1;           // -1: no log-probs; else alternatives per token, 0..5
  std::optional<std::uint64_t> seed;  // none: the server draws one
  std::string user;
  ScoreAdjustments adjust;
  GenerationConfig cfg;

  std::size_t choices() const { return prompts.size() * static_cast<std::size_t>(n); }
  std::size_t sequences() const { return prompts.size() * static_cast<std::size_t>(best_of); }
};

CompletionRequest parse_completion_request(std::string_view body, const ModelInfo& model, const Limits& limits);

// POST /tokenize: {"prompt": text, "add_special_tokens": true, "return_token_strs": false}.
struct TokenizeRequest {
  std::string prompt;
  bool add_special_tokens = true;  // "<|endoftext|>" in the text is the special token (as prompts are)
  bool return_token_strs = false;
};
TokenizeRequest parse_tokenize_request(std::string_view body, const ModelInfo& model);

// POST /detokenize: {"tokens": [ids]}.
std::vector<int> parse_detokenize_request(std::string_view body, const ModelInfo& model);

// POST /v1/embeddings: "input" in OpenAI's four forms (a string, strings, ids, arrays of ids), each
// one embedding; "encoding_format" float or base64 (little-endian float32, as OpenAI sends it);
// "dimensions" only as n_embd (GPT-2's vectors cannot be shortened); tinyllm's "pooling" (mean,
// weighted_mean, last) and "normalize" (default true: OpenAI's vectors have unit length).
struct EmbeddingRequest {
  std::vector<std::vector<int>> inputs;
  bool base64 = false;
  std::string pooling = "mean";
  bool normalize = true;
  std::string user;
};
inline constexpr std::size_t max_embedding_inputs = 2048;  // OpenAI's bound on an input array
EmbeddingRequest parse_embedding_request(std::string_view body, const ModelInfo& model, const Limits& limits,
                                         int n_embd);

// The vector as OpenAI's base64 encoding_format sends it: float32 little-endian bytes, base64.
std::string base64_floats(const float* v, std::size_t n);

// --- responses ----------------------------------------------------------------------------------

// "stop" (eos, a stop sequence) or "length" (max_tokens; a client or timeout cut reports "length" too).
const char* finish_reason_name(FinishReason r);

// A token as the legacy completions API shows it: its text, or "bytes:\xNN..." when its bytes are not
// complete UTF-8 on their own.
std::string token_string(const Tokenizer& tok, int id);

// Number of Unicode code points in UTF-8 text (OpenAI's text offsets count characters).
std::size_t code_points(std::string_view utf8);

// The legacy "logprobs" object of a choice, built a token at a time.
struct LogprobsJson {
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(),
       text_offset = json::array();
  // top: the alternatives; the chosen token is added to them, as OpenAI returns up to logprobs + 1.
  // `first`: a prompt's first token, which has no log-prob (null).
  void add(const Tokenizer& tok, int id, std::optional<float> logprob, const std::vector<TokenLogprob>& top,
           std::size_t offset);
  bool empty() const { return tokens.empty(); }
  json to_json() const;
};

json usage_json(std::size_t prompt_tokens, std::size_t completion_tokens);
json model_json(const std::string& id, long long created, int n_positions);

}  // namespace tinyllm::server
