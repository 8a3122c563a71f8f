// Request parsing and validation with OpenAI's error messages, and the response shapes (api.hpp).
#include "api.hpp"

#include <algorithm>         // std::find_if, std::all_of, std::remove
#include <cmath>             // std::isfinite
#include <cstdio>            // std::snprintf
#include <cstdint>           // std::uint32_t
#include <cstdlib>           // std::strtod
#include <cstring>           // std::memcpy
#include <initializer_list>  // std::initializer_list
#include <limits>            // std::numeric_limits

#include <tinyllm/error.hpp>

namespace tinyllm::server {

json ApiError::body() const {
  json e = {{"message", what()}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (param) e["param"] = *param;
  if (code) e["code"] = *code;
  return {{"error", e}};
}

ApiError invalid_request(std::string message, std::optional<std::string> param, std::optional<std::string> code) {
  return ApiError(400, std::move(message), "invalid_request_error", std::move(param), std::move(code));
}

namespace {

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::string: return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a decimal";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::null: return "null";
    default: return "a value";
  }
}

ApiError wrong_type(const std::string& field, const std::string& expected, const json& got) {
  return invalid_request("Invalid type for '" + field + "': expected " + expected + ", but got " + type_name(got) +
                             " instead.",
                         field, "invalid_type");
}

std::string number_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  for (int digits = 1; digits <= 17; ++digits) {  // the shortest form that reads back the same
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) return buf;
  }
  return s;
}

ApiError out_of_range(const std::string& field, const char* kind, bool above, const std::string& bound,
                      const std::string& got) {
  return invalid_request("Invalid '" + field + "': " + kind + (above ? " above maximum" : " below minimum") +
                             " value. Expected a value " + (above ? "<= " : ">= ") + bound + ", but got " + got +
                             " instead.",
                         field, std::string(kind) + (above ? "_above_max_value" : "_below_min_value"));
}

// The fields of one JSON object, read with OpenAI's type and range errors. A null field counts as
// absent (every field of the completions API is nullable and takes its default).
class Fields {
 public:
  Fields(const json& obj, std::string prefix = "") : obj_(obj), prefix_(std::move(prefix)) {}

  // Throws for the first key not in `known`, as OpenAI does for any argument it does not have.
  void reject_unknown(std::initializer_list<const char*> known) const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      const bool ok = std::find_if(known.begin(), known.end(), [&](const char* k) { return it.key() == k; }) != known.end();
      if (!ok) throw invalid_request("Unrecognized request argument supplied: " + prefix_ + it.key());
    }
  }
  const json* get(const char* key) const {
    const auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  std::string name(const char* key) const { return prefix_ + key; }

  std::optional<bool> boolean(const char* key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw wrong_type(name(key), "a boolean", *v);
    return v->get<bool>();
  }
  std::optional<long long> integer(const char* key, long long lo, long long hi) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) throw wrong_type(name(key), "an integer", *v);
    if (v->is_number_unsigned() && v->get<unsigned long long>() > static_cast<unsigned long long>(hi))
      throw out_of_range(name(key), "integer", true, std::to_string(hi), std::to_string(v->get<unsigned long long>()));
    const long long x = v->get<long long>();
    if (x < lo) throw out_of_range(name(key), "integer", false, std::to_string(lo), std::to_string(x));
    if (x > hi) throw out_of_range(name(key), "integer", true, std::to_string(hi), std::to_string(x));
    return x;
  }
  std::optional<double> number(const char* key, double lo, double hi) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw wrong_type(name(key), "a decimal", *v);
    const double x = v->get<double>();
    if (!(x >= lo)) throw out_of_range(name(key), "decimal", false, number_text(lo), number_text(x));
    if (!(x <= hi)) throw out_of_range(name(key), "decimal", true, number_text(hi), number_text(x));
    return x;
  }
  std::optional<std::string> string(const char* key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw wrong_type(name(key), "a string", *v);
    return v->get<std::string>();
  }

 private:
  const json& obj_;
  std::string prefix_;
};

json parse_object(std::string_view body) {
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception&) {
    throw invalid_request(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The API expects a JSON payload, but what was sent was not valid JSON.)");
  }
  if (!j.is_object()) throw invalid_request("The request body must be a JSON object, not " + std::string(type_name(j)) + ".");
  return j;
}

void check_model(const Fields& f, const ModelInfo& model) {
  const std::optional<std::string> name = f.string("model");
  if (name && *name != model.id)
    throw ApiError(404, "The model `" + *name + "` does not exist or you do not have access to it. This server serves `" +
                            model.id + "`.",
                   "invalid_request_error", std::string("model"), std::string("model_not_found"));
}

int token_id(const json& v, const std::string& field, const ModelInfo& model) {
  if (!v.is_number_integer()) throw wrong_type(field, "an integer token id", v);
  if (v.is_number_unsigned() ? v.get<unsigned long long>() >= static_cast<unsigned long long>(model.vocab_size)
                             : (v.get<long long>() < 0 || v.get<long long>() >= model.vocab_size))
    throw invalid_request("Invalid '" + field + "': token id " + v.dump() + " is outside the vocabulary [0, " +
                              std::to_string(model.vocab_size) + ").",
                          field, "invalid_value");
  return v.get<int>();
}

std::vector<int> token_ids(const json& arr, const std::string& field, const ModelInfo& model) {
  std::vector<int> ids;
  ids.reserve(arr.size());
  for (const json& v : arr) ids.push_back(token_id(v, field, model));
  return ids;
}

Prompt text_prompt(std::string text, const ModelInfo& model) {
  Prompt p;
  p.ids = model.tokenizer->encode(text);
  if (p.ids.empty()) {  // as the library does: an empty prompt starts from bos_token_id
    if (model.bos_token_id < 0) throw invalid_request("Invalid 'prompt': it is empty and the model has no bos_token_id.", "prompt", "invalid_value");
    p.ids.push_back(model.bos_token_id);
  }
  p.text = std::move(text);
  return p;
}

Prompt id_prompt(std::vector<int> ids, const ModelInfo& model) {
  Prompt p;
  p.text = model.tokenizer->decode_text(ids, /*skip_special_tokens=*/false);
  p.ids = std::move(ids);
  return p;
}

// A string, an array of strings, an array of ids or an array of arrays of ids (OpenAI's four forms).
std::vector<Prompt> parse_prompts(const Fields& f, const ModelInfo& model) {
  const json* v = f.get("prompt");
  if (!v) return {text_prompt("<|endoftext|>", model)};  // OpenAI's default: the document separator
  const char* expected = "a string, an array of strings, an array of token ids or an array of arrays of token ids";
  if (v->is_string()) return {text_prompt(v->get<std::string>(), model)};
  if (!v->is_array()) throw wrong_type("prompt", expected, *v);
  if (v->empty()) throw invalid_request("Invalid 'prompt': empty array. Expected at least one prompt.", "prompt", "empty_array");
  std::vector<Prompt> prompts;
  const json& first = v->front();
  if (first.is_number_integer()) return {id_prompt(token_ids(*v, "prompt", model), model)};
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& item = (*v)[i];
    const std::string field = "prompt[" + std::to_string(i) + "]";
    if (first.is_string() && item.is_string()) {
      prompts.push_back(text_prompt(item.get<std::string>(), model));
    } else if (first.is_array() && item.is_array()) {
      if (item.empty()) throw invalid_request("Invalid '" + field + "': empty array of token ids.", "prompt", "empty_array");
      prompts.push_back(id_prompt(token_ids(item, "prompt", model), model));
    } else {
      throw wrong_type("prompt", expected, *v);
    }
  }
  return prompts;
}

std::vector<std::string> parse_stop(const Fields& f) {
  const json* v = f.get("stop");
  if (!v) return {};
  std::vector<std::string> stop;
  if (v->is_string()) {
    stop.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > static_cast<std::size_t>(max_stop_sequences))
      throw invalid_request("Invalid 'stop': array too long. Expected an array with maximum length " +
                                std::to_string(max_stop_sequences) + ", but got an array with length " +
                                std::to_string(v->size()) + " instead.",
                            "stop", "array_above_max_length");
    for (const json& s : *v) {
      if (!s.is_string()) throw wrong_type("stop", "a string or an array of strings", *v);
      stop.push_back(s.get<std::string>());
    }
  } else {
    throw wrong_type("stop", "a string or an array of strings", *v);
  }
  // An empty stop sequence would end every completion before it starts: it means nothing here.
  stop.erase(std::remove(stop.begin(), stop.end(), std::string()), stop.end());
  return stop;
}

std::vector<std::pair<int, float>> parse_logit_bias(const Fields& f, const ModelInfo& model) {
  const json* v = f.get("logit_bias");
  if (!v) return {};
  if (!v->is_object()) throw wrong_type("logit_bias", "an object mapping token ids to numbers", *v);
  std::vector<std::pair<int, float>> bias;
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string& key = it.key();
    long long id = -1;
    const bool digits = !key.empty() && key.size() <= 9 && std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) id = std::stoll(key);
    if (!digits || id >= model.vocab_size)
      throw invalid_request("Invalid key in 'logit_bias': '" + key + "' is not a token id of this model (0 to " +
                                std::to_string(model.vocab_size - 1) + ").",
                            "logit_bias", "invalid_value");
    if (!it->is_number()) throw wrong_type("logit_bias." + key, "a number", *it);
    const double b = it->get<double>();
    if (!(b >= -100.0 && b <= 100.0))
      throw out_of_range("logit_bias." + key, "decimal", b > 100.0, b > 100.0 ? "100" : "-100", number_text(b));
    bias.emplace_back(static_cast<int>(id), static_cast<float>(b));
  }
  return bias;
}

std::vector<std::vector<int>> parse_bad_words(const Fields& f, const ModelInfo& model) {
  const json* v = f.get("bad_words_ids");
  if (!v) return {};
  const char* expected = "an array of arrays of token ids";
  if (!v->is_array()) throw wrong_type("bad_words_ids", expected, *v);
  std::vector<std::vector<int>> words;
  for (const json& w : *v) {
    if (!w.is_array() || w.empty()) throw wrong_type("bad_words_ids", expected, *v);
    words.push_back(token_ids(w, "bad_words_ids", model));
  }
  return words;
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, const ModelInfo& model, const Limits& limits) {
  const json j = parse_object(body);
  const Fields f(j);
  f.reject_unknown({// OpenAI's fields
                    "model", "prompt", "suffix", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options",
                    "logprobs", "echo", "stop", "presence_penalty", "frequency_penalty", "best_of", "logit_bias", "user",
                    "seed",
                    // tinyllm's, by their Hugging Face names
                    "top_k", "min_p", "typical_p", "repetition_penalty", "no_repeat_ngram_size", "min_new_tokens",
                    "bad_words_ids", "prompt_lookup_num_tokens", "max_matching_ngram_size"});
  check_model(f, model);
  CompletionRequest r;
  const int max_tokens = static_cast<int>(f.integer("max_tokens", 0, limits.max_tokens).value_or(16));
  const double temperature = f.number("temperature", 0.0, 2.0).value_or(1.0);
  const double top_p = f.number("top_p", 0.0, 1.0).value_or(1.0);
  r.n = static_cast<int>(f.integer("n", 1, max_n).value_or(1));
  r.best_of = static_cast<int>(f.integer("best_of", 1, max_best_of).value_or(r.n));
  if (r.best_of < r.n)
    throw invalid_request("Invalid 'best_of': it is " + std::to_string(r.best_of) + ", less than n (" +
                              std::to_string(r.n) + "); it must be greater than or equal to n.",
                          "best_of", "invalid_value");
  r.stream = f.boolean("stream").value_or(false);
  if (const json* so = f.get("stream_options")) {
    if (!so->is_object()) throw wrong_type("stream_options", "an object", *so);
    if (!r.stream)
      throw invalid_request("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options",
                            "invalid_value");
    const Fields sf(*so, "stream_options.");
    sf.reject_unknown({"include_usage", "include_obfuscation"});
    r.include_usage = sf.boolean("include_usage").value_or(false);
    sf.boolean("include_obfuscation");  // checked; there is nothing to obfuscate on a local server
  }
  if (r.stream && r.best_of > r.n)
    throw invalid_request("Invalid 'best_of': results cannot be streamed when best_of (" + std::to_string(r.best_of) +
                              ") is greater than n (" + std::to_string(r.n) + ").",
                          "best_of", "invalid_value");
  r.logprobs = static_cast<int>(f.integer("logprobs", 0, max_logprobs).value_or(-1));
  r.echo = f.boolean("echo").value_or(false);
  const std::vector<std::string> stop = parse_stop(f);
  r.adjust.presence_penalty = static_cast<float>(f.number("presence_penalty", -2.0, 2.0).value_or(0.0));
  r.adjust.frequency_penalty = static_cast<float>(f.number("frequency_penalty", -2.0, 2.0).value_or(0.0));
  r.adjust.logit_bias = parse_logit_bias(f, model);
  r.user = f.string("user").value_or("");
  if (const json* s = f.get("seed")) {
    if (!s->is_number_integer()) throw wrong_type("seed", "an integer", *s);
    r.seed = s->is_number_unsigned() ? s->get<std::uint64_t>() : static_cast<std::uint64_t>(s->get<long long>());
  }
  const std::optional<std::string> suffix = f.string("suffix");
  if (suffix && !suffix->empty())
    throw invalid_request("Invalid 'suffix': this model cannot insert text (GPT-2 only continues a prompt).", "suffix",
                          "unsupported_parameter");

  GenerationConfig& c = r.cfg;
  c.max_new_tokens = max_tokens;
  c.do_sample = temperature > 0.0 && top_p > 0.0;  // temperature 0 (or an empty nucleus): greedy
  c.temperature = c.do_sample ? static_cast<float>(temperature) : 1.0f;
  c.top_p = c.do_sample ? static_cast<float>(top_p) : 1.0f;
  const long long top_k = f.integer("top_k", -1, std::numeric_limits<int>::max()).value_or(0);
  c.top_k = top_k < 0 ? 0 : static_cast<int>(top_k);  // OpenAI samples from every token: off by default
  c.min_p = static_cast<float>(f.number("min_p", 0.0, 1.0).value_or(0.0));
  c.typical_p = static_cast<float>(f.number("typical_p", 0.0, 1.0).value_or(1.0));
  if (c.typical_p <= 0.0f)
    throw invalid_request("Invalid 'typical_p': it must be greater than 0 (1: off).", "typical_p",
                          "decimal_below_min_value");
  c.repetition_penalty = static_cast<float>(f.number("repetition_penalty", 0.0, 1e6).value_or(1.0));
  if (c.repetition_penalty <= 0.0f)
    throw invalid_request("Invalid 'repetition_penalty': it must be greater than 0 (1: off).", "repetition_penalty",
                          "decimal_below_min_value");
  c.no_repeat_ngram_size = static_cast<int>(f.integer("no_repeat_ngram_size", 0, model.n_positions).value_or(0));
  c.min_new_tokens = static_cast<int>(f.integer("min_new_tokens", 0, max_tokens).value_or(0));
  c.bad_words_ids = parse_bad_words(f, model);
  c.prompt_lookup_num_tokens = static_cast<int>(f.integer("prompt_lookup_num_tokens", 0, 64).value_or(0));
  c.max_matching_ngram_size = static_cast<int>(f.integer("max_matching_ngram_size", 1, 64).value_or(2));
  c.stop_strings = stop;
  c.top_logprobs = std::max(r.logprobs, 0);
  try {
    c.validate();
  } catch (const Error& e) {  // every field was checked above; this names a combination
    throw invalid_request(e.what());
  }

  // How many prompts, before any is tokenized (a body of a million short prompts is refused cheaply).
  const json* pj = f.get("prompt");
  const std::size_t n_prompts = pj && pj->is_array() && !pj->empty() && !pj->front().is_number_integer() ? pj->size() : 1;
  const std::size_t sequences = n_prompts * static_cast<std::size_t>(r.best_of);
  if (sequences > static_cast<std::size_t>(limits.max_choices))
    throw invalid_request("This request asks for " + std::to_string(sequences) + " completions (" +
                              std::to_string(n_prompts) + " prompts x " + std::to_string(r.best_of) +
                              "), more than this server's limit of " + std::to_string(limits.max_choices) + ".",
                          r.best_of > r.n ? "best_of" : r.n > 1 ? "n" : "prompt", "too_many_completions");
  r.prompts = parse_prompts(f, model);
  for (const Prompt& p : r.prompts) {
    const std::size_t T = p.ids.size();
    if (T > static_cast<std::size_t>(limits.max_prompt_tokens))
      throw invalid_request("Invalid 'prompt': " + std::to_string(T) + " tokens is more than this server's limit of " +
                                std::to_string(limits.max_prompt_tokens) + " tokens per prompt.",
                            "prompt", "context_length_exceeded");
    if (T + static_cast<std::size_t>(max_tokens) > static_cast<std::size_t>(model.n_positions))
      throw invalid_request("This model's maximum context length is " + std::to_string(model.n_positions) +
                                " tokens, however you requested " + std::to_string(T + static_cast<std::size_t>(max_tokens)) +
                                " tokens (" + std::to_string(T) + " in your prompt; " + std::to_string(max_tokens) +
                                " for the completion). Please reduce your prompt; or completion length.",
                            T > static_cast<std::size_t>(model.n_positions) ? "prompt" : "max_tokens",
                            "context_length_exceeded");
  }
  return r;
}

EmbeddingRequest parse_embedding_request(std::string_view body, const ModelInfo& model, const Limits& limits,
                                         int n_embd) {
  const json j = parse_object(body);
  const Fields f(j);
  f.reject_unknown({"model", "input", "encoding_format", "dimensions", "user",  // OpenAI's fields
                    "pooling", "normalize"});                                  // tinyllm's
  check_model(f, model);
  EmbeddingRequest r;
  const json* v = f.get("input");
  if (!v) throw invalid_request("Missing required parameter: 'input'.", "input", "missing_required_parameter");
  const char* expected = "a string, an array of strings, an array of token ids or an array of arrays of token ids";
  const auto add_text = [&](const std::string& text, const std::string& field) {
    if (text.empty()) throw invalid_request("Invalid '" + field + "': string must be non-empty.", "input", "invalid_value");
    r.inputs.push_back(model.tokenizer->encode(text));
  };
  if (v->is_string()) {
    add_text(v->get<std::string>(), "input");
  } else if (!v->is_array()) {
    throw wrong_type("input", expected, *v);
  } else if (v->empty()) {
    throw invalid_request("Invalid 'input': empty array. Expected at least one input.", "input", "empty_array");
  } else if (v->front().is_number_integer()) {
    r.inputs.push_back(token_ids(*v, "input", model));
  } else {
    if (v->size() > max_embedding_inputs)
      throw invalid_request("Invalid 'input': array too long. Expected an array with maximum length " +
                                std::to_string(max_embedding_inputs) + ", but got an array with length " +
                                std::to_string(v->size()) + " instead.",
                            "input", "array_above_max_length");
    const json& first = v->front();
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      const std::string field = "input[" + std::to_string(i) + "]";
      if (first.is_string() && item.is_string()) {
        add_text(item.get<std::string>(), field);
      } else if (first.is_array() && item.is_array()) {
        if (item.empty()) throw invalid_request("Invalid '" + field + "': empty array of token ids.", "input", "empty_array");
        r.inputs.push_back(token_ids(item, "input", model));
      } else {
        throw wrong_type("input", expected, *v);
      }
    }
  }
  for (std::size_t i = 0; i < r.inputs.size(); ++i)
    if (r.inputs[i].size() > static_cast<std::size_t>(limits.max_prompt_tokens))
      throw invalid_request("Invalid 'input': input " + std::to_string(i) + " has " + std::to_string(r.inputs[i].size()) +
                                " tokens; this server embeds at most " + std::to_string(limits.max_prompt_tokens) +
                                " tokens per input.",
                            "input", "context_length_exceeded");
  const std::string format = f.string("encoding_format").value_or("float");
  if (format != "float" && format != "base64")
    throw invalid_request("Invalid 'encoding_format': '" + format + "'. Expected 'float' or 'base64'.",
                          "encoding_format", "invalid_value");
  r.base64 = format == "base64";
  if (const std::optional<long long> d = f.integer("dimensions", 1, std::numeric_limits<int>::max()); d && *d != n_embd)
    throw invalid_request("Invalid 'dimensions': this model's embeddings have " + std::to_string(n_embd) +
                              " dimensions and cannot be shortened; omit it or pass " + std::to_string(n_embd) + ".",
                          "dimensions", "unsupported_parameter");
  r.pooling = f.string("pooling").value_or("mean");
  if (r.pooling != "mean" && r.pooling != "weighted_mean" && r.pooling != "last")
    throw invalid_request("Invalid 'pooling': '" + r.pooling + "'. Expected 'mean', 'weighted_mean' or 'last'.",
                          "pooling", "invalid_value");
  r.normalize = f.boolean("normalize").value_or(true);
  r.user = f.string("user").value_or("");
  return r;
}

std::string base64_floats(const float* v, std::size_t n) {
  static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<unsigned char> bytes(n * 4);
  for (std::size_t i = 0; i < n; ++i) {  // little-endian whatever the machine's order
    std::uint32_t u;
    std::memcpy(&u, v + i, 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + static_cast<std::size_t>(b)] = static_cast<unsigned char>(u >> (8 * b));
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::uint32_t w = (static_cast<std::uint32_t>(bytes[i]) << 16) |
                            (i + 1 < bytes.size() ? static_cast<std::uint32_t>(bytes[i + 1]) << 8 : 0u) |
                            (i + 2 < bytes.size() ? static_cast<std::uint32_t>(bytes[i + 2]) : 0u);
    out += table[(w >> 18) & 63];
    out += table[(w >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(w >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[w & 63] : '=';
  }
  return out;
}

TokenizeRequest parse_tokenize_request(std::string_view body, const ModelInfo& model) {
  const json j = parse_object(body);
  const Fields f(j);
  f.reject_unknown({"model", "prompt", "add_special_tokens", "return_token_strs"});
  check_model(f, model);
  TokenizeRequest r;
  const std::optional<std::string> prompt = f.string("prompt");
  if (!prompt) throw invalid_request("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
  r.prompt = *prompt;
  r.add_special_tokens = f.boolean("add_special_tokens").value_or(true);
  r.return_token_strs = f.boolean("return_token_strs").value_or(false);
  return r;
}

std::vector<int> parse_detokenize_request(std::string_view body, const ModelInfo& model) {
  const json j = parse_object(body);
  const Fields f(j);
  f.reject_unknown({"model", "tokens"});
  check_model(f, model);
  const json* t = f.get("tokens");
  if (!t) throw invalid_request("Missing required parameter: 'tokens'.", "tokens", "missing_required_parameter");
  if (!t->is_array()) throw wrong_type("tokens", "an array of token ids", *t);
  return token_ids(*t, "tokens", model);
}

// --- responses ----------------------------------------------------------------------------------

const char* finish_reason_name(FinishReason r) {
  return r == FinishReason::eos || r == FinishReason::stop_string ? "stop" : "length";
}

namespace {
// Whether s is complete, well-formed UTF-8.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    unsigned cp = n == 1 ? c : n == 2 ? (c & 0x1fu) : n == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (std::size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3fu);
    }
    const bool overlong = (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}
}  // namespace

std::string token_string(const Tokenizer& tok, int id) {
  std::string_view bytes;
  try {
    bytes = tok.token_bytes(id);
  } catch (const Error&) {  // an id the vocabulary has no text for
    return "";
  }
  if (valid_utf8(bytes)) return std::string(bytes);
  std::string s = "bytes:";
  char buf[8];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    s += buf;
  }
  return s;
}

std::size_t code_points(std::string_view utf8) {
  std::size_t n = 0;
  for (char c : utf8) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

void LogprobsJson::add(const Tokenizer& tok, int id, std::optional<float> logprob, const std::vector<TokenLogprob>& top,
                       std::size_t offset) {
  const std::string text = token_string(tok, id);
  tokens.push_back(text);
  text_offset.push_back(offset);
  if (!logprob) {  // a prompt's first token: nothing predicted it
    token_logprobs.push_back(nullptr);
    top_logprobs.push_back(nullptr);
    return;
  }
  token_logprobs.push_back(*logprob);
  json alternatives = json::object();
  for (const TokenLogprob& t : top)  // a token a warper removed (-inf) is no alternative
    if (std::isfinite(t.logprob)) alternatives[token_string(tok, t.id)] = t.logprob;
  if (!alternatives.contains(text)) alternatives[text] = *logprob;
  top_logprobs.push_back(std::move(alternatives));
}

json LogprobsJson::to_json() const {
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs}, {"text_offset", text_offset}};
}

json usage_json(std::size_t prompt_tokens, std::size_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json model_json(const std::string& id, long long created, int n_positions) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "tinyllm"}, {"max_model_len", n_positions}};
}

}  // namespace tinyllm::server
