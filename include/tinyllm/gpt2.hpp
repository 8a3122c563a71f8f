// tinyllm: GPT-2 on the CPU, straight from a Hugging Face folder. The header users include.
//
//   auto model = tinyllm::GPT2::from_pretrained("models/tiny-sotu");
//   std::cout << model.generate_text("The state of the Union", 50);
//
// BasicGPT2<Backend> is the model; GPT2 uses the default backend (OpenMP when compiled with it, else
// the std::thread pool). Session (session.hpp, included at the end) keeps a conversation's KV cache
// between calls.
#pragma once

#include <cstddef>           // std::size_t
#include <initializer_list>  // std::initializer_list
#include <memory>            // std::shared_ptr
#include <optional>          // std::optional
#include <string>            // std::string
#include <string_view>       // std::string_view
#include <type_traits>       // std::is_void_v, std::invoke_result_t
#include <utility>           // std::forward, std::move
#include <vector>            // std::vector

#include "backend/backend.hpp"
#include "backend/openmp.hpp"
#include "backend/thread_pool.hpp"
#include "config.hpp"
#include "embedding/pooling.hpp"
#include "error.hpp"
#include "generation/batch.hpp"
#include "generation/config.hpp"
#include "generation/output.hpp"
#include "io/json.hpp"
#include "io/mapped_file.hpp"
#include "model/gpt2_model.hpp"
#include "model/inspect.hpp"
#include "model/loader.hpp"
#include "model/save.hpp"
#include "model/weights.hpp"
#include "tokenizer.hpp"
#include "version.hpp"
#include "weight_type.hpp"

namespace tinyllm {

// How from_pretrained holds the weights.
struct LoadOptions {
  // The type of every matrix (wte and the head included; layer norms, biases and positions stay F32).
  // Empty: as stored in the file — F32, F16 and BF16 mapped and computed from in place (F16/BF16
  // widened in registers), Q8 folders written by `tinyllm quantize` likewise; F64 becomes F32.
  std::optional<WeightType> weight_type;
  // Opt-in: linear layers over more than 16 rows at once (a prompt, or a generate_batch step of more
  // than 16 sequences) multiply on Intel AMX tiles in bf16, several times faster than the F32
  // kernels (bench_gpt2 prints the ratio). Activations and weights are rounded to bf16 there, so
  // those logits move by up to ~1e-2 of the largest and are no longer bitwise those of decoding the
  // same tokens one by one; decoding itself is unchanged. Needs amx_available(); F32 / F16 / BF16
  // weights (Q8 has its own int8 kernels).
  bool amx = false;
  // Opt-in, the same way on CPUs with AVX-512 BF16 but no AMX (AMD Zen 4 and later, Intel Cooper
  // Lake and later): linear layers over more than 16 rows at once multiply by bf16 dot products
  // (vdpbf16ps, twice the multiply-adds of an f32 fma per instruction), activations and weights
  // rounded to bf16, products summed in f32; the same bound on the logits as amx. Needs
  // bf16_dot_available(); F32 / F16 / BF16 weights; not together with amx.
  bool bf16_dot = false;
};

// Whether this CPU and OS offer AMX bf16 tiles (Sapphire Rapids or later, Linux 5.16+), and this
// build can use them (x86-64 compiled for AVX-512, e.g. TINYLLM_NATIVE): LoadOptions::amx needs it.
inline bool amx_available() { return kernels::amx::available(); }
// Whether this CPU has AVX-512 BF16 and this build can use it (x86-64 compiled for AVX-512):
// LoadOptions::bf16_dot needs it.
inline bool bf16_dot_available() { return kernels::bf16::available(); }

#ifdef _OPENMP
using DefaultBackend = OpenMP;
#else
using DefaultBackend = ThreadPool;
#endif

template <class Backend>
class BasicSession;

namespace detail {
// Calls a user callback; one that returns void never asks to stop.
template <class F, class Arg>
bool keep_going(F& f, Arg&& arg) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&, Arg>>) {
    f(std::forward<Arg>(arg));
    return true;
  } else {
    return static_cast<bool>(f(std::forward<Arg>(arg)));
  }
}

// Text streaming for generate_text and Session::generate_text: generate(on_id) runs with an on_id that
// turns the new ids into complete UTF-8 pieces for on_text (special tokens skipped); what is held
// back at the end goes out after it, unless on_text asked to stop. Returns generate's ids.
template <class Generate, class OnText>
std::vector<int> stream_text(const Tokenizer& tokenizer, Generate&& generate, OnText& on_text) {
  TokenStreamDecoder decoder(tokenizer, /*skip_special_tokens=*/true);
  bool go = true;
  auto on_id = [&](int id) {
    const std::string piece = decoder.push(id);
    if (!piece.empty()) go = keep_going(on_text, piece);
    return go;
  };
  std::vector<int> ids = generate(on_id);
  const std::string rest = decoder.flush();
  if (go && !rest.empty()) keep_going(on_text, rest);
  return ids;
}

// What every generate call checks before it runs, once: the config's values (validate), then what
// the call allows. one_sequence: why it returns one sequence (null: it returns any number);
// streaming: what to use for beam search instead, when the call streams (null: it does not).
inline void check_generation(const GenerationConfig& cfg, const char* one_sequence, const char* streaming) {
  cfg.validate();
  if (streaming && cfg.num_beams > 1)
    fail("GenerationConfig.num_beams", "is " + std::to_string(cfg.num_beams) + ": streaming needs num_beams = 1 (" +
                                           streaming + ")");
  if (one_sequence && cfg.num_return_sequences != 1)
    fail("GenerationConfig.num_return_sequences",
         "is " + std::to_string(cfg.num_return_sequences) + ": " + one_sequence);
}

// The id to start from when there is no text (`what`: "the prompt", "the session"): bos_token_id,
// as HF's generate() without inputs does.
inline int start_token(const GPT2Config& c, const char* who, const char* what) {
  if (c.bos_token_id < 0) fail(who, std::string(what) + " is empty and the model has no bos_token_id");
  return c.bos_token_id;
}
}  // namespace detail

template <class Backend>
class BasicGPT2 {
 public:
  // Loads dir/config.json, dir/model.safetensors (or the shards of model.safetensors.index.json) and
  // the tokenizer (vocab.json + merges.txt, or tokenizer.json). F32 weights stay mapped from the file.
  static BasicGPT2 from_pretrained(const std::string& dir) { return from_pretrained(dir, LoadOptions{}); }
  static BasicGPT2 from_pretrained(const std::string& dir, const LoadOptions& options);

  const GPT2Config& config() const { return config_; }
  const Tokenizer& tokenizer() const;
  const GPT2Weights& weights() const { return store_->w; }

  // Logits of every position: ids.size() x vocab_size, row-major.
  std::vector<float> forward(const std::vector<int>& ids) const;
  // Logits of the last position only: vocab_size floats.
  std::vector<float> logits(const std::vector<int>& ids) const;
  // One forward pass seen from inside: HF's attentions and hidden_states (as opts asks) and the
  // logits, in HF's layout and meaning (model/inspect.hpp). explain.hpp builds on it.
  Inspection inspect(const std::vector<int>& ids, const InspectOptions& opts = {}) const {
    check_ids(ids, "inspect");
    return detail::inspect<Backend>(config_, store_->w, ids, opts);
  }

  // Prompt + new ids, like Hugging Face's generate(): greedy, sampling or beam search as cfg says.
  // Stops at an eos token, a stop string, max_length / max_new_tokens, or the model's n_positions.
  // One sequence (num_return_sequences 1); generate_batch returns several.
  std::vector<int> generate(const std::vector<int>& input_ids, const GenerationConfig& cfg = {}) const;
  // Streaming: on_token(int id) runs after each new id; returning false stops generation.
  // Greedy or sampling only (beam search knows its result at the end, as with HF's streamers).
  template <class OnToken>
  std::vector<int> generate(const std::vector<int>& input_ids, const GenerationConfig& cfg, OnToken&& on_token) const;

  // Greedy: the decoded prompt + continuation, special tokens skipped (tokenizer.decode_text).
  std::string generate_text(std::string_view prompt, int max_length = 50) const;
  // The same with any config.
  std::string generate_text(std::string_view prompt, const GenerationConfig& cfg) const;
  // Streaming: on_text(piece) receives the new text as it is produced (a std::string_view or const
  // std::string& parameter both work), in pieces that are always complete UTF-8; returning false stops
  // generation. Returns the whole text.
  template <class OnText>
  std::string generate_text(std::string_view prompt, const GenerationConfig& cfg, OnText&& on_text) const;

  // Writes this model as a folder whose matrices are `type` (default: as loaded), which loads
  // memory-mapped with no conversion: `tinyllm quantize` is this with type Q8.
  void save_pretrained(const std::string& out_dir, std::optional<WeightType> type = std::nullopt) const {
    detail::save_pretrained(config_, store_->w, type ? *type : store_->w.h.front().mlp_c_fc.weight.type, dir_, out_dir);
  }

  // Several prompts at once: each step reads the weights once for every sequence. Returns
  // num_return_sequences sequences per prompt, in prompt order (HF's order), each exactly what
  // generate() gives for that prompt alone with the same config.
  std::vector<std::vector<int>> generate_batch(const std::vector<std::vector<int>>& input_ids,
                                               const GenerationConfig& cfg = {}) const;
  std::vector<std::string> generate_batch(const std::vector<std::string>& prompts,
                                          const GenerationConfig& cfg = {}) const;
  // (so that generate_batch({"text", ...}) and generate_batch({{ids}, ...}) are not ambiguous)
  std::vector<std::string> generate_batch(std::initializer_list<std::string_view> prompts,
                                          const GenerationConfig& cfg = {}) const;
  std::vector<std::vector<int>> generate_batch(std::initializer_list<std::vector<int>> input_ids,
                                               const GenerationConfig& cfg = {}) const {
    return generate_batch(std::vector<std::vector<int>>(input_ids), cfg);
  }

  // Sequences with their scores (HF: return_dict_in_generate=True, output_scores=True): log-probs of
  // the new tokens, cfg.top_logprobs alternatives, the beam score, and why each sequence stopped.
  std::vector<GenerationResult> generate_with_scores(const std::vector<int>& input_ids,
                                                     const GenerationConfig& cfg = {}) const;
  std::vector<GenerationResult> generate_with_scores(const std::vector<std::vector<int>>& input_ids,
                                                     const GenerationConfig& cfg = {}) const;
  // One prompt, streaming: on_token(id) after each new id, as generate()'s (returning false stops).
  // The result also carries the speculative-decoding statistics (GenerationResult::speculation).
  template <class OnToken>
  GenerationResult generate_with_scores(const std::vector<int>& input_ids, const GenerationConfig& cfg,
                                        OnToken&& on_token) const;

  // The stop tokens generation uses when GenerationConfig::eos_token_id is empty.
  const std::vector<int>& eos_token_ids() const { return eos_; }
  // The folder the model was loaded from (HF's name_or_path).
  const std::string& name_or_path() const { return dir_; }

  // Embeddings (embeddings.hpp): a text's or ids' hidden states pooled into one vector (or every
  // token's, Pooling::none), [n_embd] per vector. A batch runs its inputs together through the prompt
  // kernels, each input's vectors bitwise what it gives alone; returns vectors and token counts.
  std::vector<float> embed(std::string_view text, const EmbeddingOptions& opts = {}) const;
  std::vector<float> embed(const std::vector<int>& ids, const EmbeddingOptions& opts = {}) const;
  Embeddings embed(const std::vector<std::string>& texts, const EmbeddingOptions& opts = {}) const;
  Embeddings embed(const std::vector<std::vector<int>>& ids, const EmbeddingOptions& opts = {}) const;
  Embeddings embed(std::initializer_list<std::string_view> texts, const EmbeddingOptions& opts = {}) const {
    return embed(std::vector<std::string>(texts.begin(), texts.end()), opts);
  }
  Embeddings embed(std::initializer_list<std::vector<int>> ids, const EmbeddingOptions& opts = {}) const {
    return embed(std::vector<std::vector<int>>(ids), opts);
  }

 private:
  friend class BasicSession<Backend>;

  void check_ids(const std::vector<int>& ids, const char* who) const;
  std::vector<int> encode_prompt(std::string_view prompt, const char* who) const;
  std::vector<int> generate_one(const std::vector<int>& input_ids, const GenerationConfig& cfg,
                                const detail::TokenCallback& on_token) const;
  detail::ModelRef ref() const { return {config_, store_->w, tokenizer_error_.empty() ? &tokenizer_ : nullptr}; }
  // cfg checked by the caller (detail::check_generation); on_token may be empty.
  std::vector<GenerationResult> run(std::vector<detail::PromptState>& prompts, const GenerationConfig& cfg, bool scores,
                                    const detail::TokenCallback& on_token = {}) const;
  std::vector<detail::PromptState> prompt_states(const std::vector<std::vector<int>>& batch, const char* who) const;
  std::string text(const std::vector<int>& ids) const {
    return tokenizer().decode_text(ids, /*skip_special_tokens=*/true);
  }

  GPT2Config config_;
  std::string dir_;                                   // the folder it was loaded from
  std::shared_ptr<const detail::WeightStore> store_;  // shared by copies of the model
  Tokenizer tokenizer_;
  std::string tokenizer_error_;  // why there is no tokenizer, if there is none
  std::vector<int> eos_;
};

using GPT2 = BasicGPT2<DefaultBackend>;

// ---------------------------------------------------------------------------------------------------

template <class Backend>
BasicGPT2<Backend> BasicGPT2<Backend>::from_pretrained(const std::string& dir, const LoadOptions& options) {
  if (!detail::is_directory(dir)) detail::fail(dir, "no such folder");
  if (options.weight_type && (static_cast<int>(*options.weight_type) < 0 || static_cast<int>(*options.weight_type) > 3))
    detail::fail("LoadOptions.weight_type", "is " + std::to_string(static_cast<int>(*options.weight_type)) +
                                                ", not one of WeightType::F32, F16, BF16, Q8");
  if (options.amx && !amx_available())
    detail::fail("LoadOptions.amx", "this CPU, OS or build has no AMX bf16 tiles (see amx_available())");
  if (options.bf16_dot && !bf16_dot_available())
    detail::fail("LoadOptions.bf16_dot", "this CPU or build has no AVX-512 BF16 (see bf16_dot_available())");
  if (options.amx && options.bf16_dot)
    detail::fail("LoadOptions.bf16_dot", "and LoadOptions.amx are alternatives: set one");
  BasicGPT2 m;
  m.dir_ = dir;
  m.config_ = GPT2Config::from_pretrained(dir);
  auto store = std::make_shared<detail::WeightStore>();
  detail::load_weights(dir, m.config_, *store, options.weight_type);
  if (options.amx || options.bf16_dot)
    for (auto& block : store->w.h)
      for (LinearWeights* lw : {&block.attn_c_attn, &block.attn_c_proj, &block.mlp_c_fc, &block.mlp_c_proj}) {
        if (lw->weight.type == WeightType::Q8)
          detail::fail(options.amx ? "LoadOptions.amx" : "LoadOptions.bf16_dot",
                       "applies to F32, F16 and BF16 weights, not Q8 (its int8 kernels are used)");
        lw->weight.amx = options.amx;
        lw->weight.bf16_dot = options.bf16_dot;
      }
  m.store_ = std::move(store);

  const bool has_tokenizer = detail::file_exists(dir + "/vocab.json") || detail::file_exists(dir + "/merges.txt") ||
                             detail::file_exists(dir + "/tokenizer.json");
  if (has_tokenizer) {
    m.tokenizer_ = Tokenizer::from_pretrained(dir);
    if (m.tokenizer_.vocab_size() > m.config_.vocab_size)
      detail::fail(dir, "the tokenizer has " + std::to_string(m.tokenizer_.vocab_size()) +
                            " token ids but config.json's vocab_size is " + std::to_string(m.config_.vocab_size));
  } else {
    m.tokenizer_error_ = dir + ": no tokenizer files (vocab.json + merges.txt, or tokenizer.json)";
  }

  // Stop tokens: generation_config.json's eos_token_id (an id or a list) wins over config.json's.
  if (m.config_.eos_token_id >= 0) m.eos_ = {m.config_.eos_token_id};
  const std::string gen = dir + "/generation_config.json";
  if (detail::file_exists(gen))
    if (auto ids = detail::generation_eos_token_ids(detail::read_text_file(gen), gen, m.config_.vocab_size)) m.eos_ = *ids;
  return m;
}

template <class Backend>
const Tokenizer& BasicGPT2<Backend>::tokenizer() const {
  if (!tokenizer_error_.empty()) throw Error(tokenizer_error_);
  return tokenizer_;
}

template <class Backend>
void BasicGPT2<Backend>::check_ids(const std::vector<int>& ids, const char* who) const {
  if (ids.empty()) detail::fail(who, "ids is empty");
  if (ids.size() > static_cast<std::size_t>(config_.n_positions))
    detail::fail(who, std::to_string(ids.size()) + " tokens is more than the model's context of n_positions = " +
                          std::to_string(config_.n_positions));
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= config_.vocab_size)
      detail::fail(who, "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                            " is outside the vocabulary [0, " + std::to_string(config_.vocab_size) + ")");
}

template <class Backend>
std::vector<float> BasicGPT2<Backend>::forward(const std::vector<int>& ids) const {
  check_ids(ids, "forward");
  detail::InferenceState s(config_);
  detail::forward_hidden<Backend>(config_, store_->w, s, ids.data(), ids.size());
  std::vector<float> out(ids.size() * static_cast<std::size_t>(config_.vocab_size));
  detail::lm_head<Backend>(store_->w, s.x.data(), ids.size(), out.data());
  return out;
}

template <class Backend>
std::vector<float> BasicGPT2<Backend>::logits(const std::vector<int>& ids) const {
  check_ids(ids, "logits");
  detail::InferenceState s(config_);
  detail::forward_hidden<Backend>(config_, store_->w, s, ids.data(), ids.size());
  std::vector<float> out(static_cast<std::size_t>(config_.vocab_size));
  const std::size_t C = static_cast<std::size_t>(config_.n_embd);
  detail::lm_head<Backend>(store_->w, s.x.data() + (ids.size() - 1) * C, 1, out.data());
  return out;
}

template <class Backend>
std::vector<detail::PromptState> BasicGPT2<Backend>::prompt_states(const std::vector<std::vector<int>>& batch,
                                                                   const char* who) const {
  std::vector<detail::PromptState> prompts;
  prompts.reserve(batch.size());
  for (const auto& ids : batch) {
    check_ids(ids, who);
    prompts.push_back({ids, detail::InferenceState(config_)});
  }
  return prompts;
}

template <class Backend>
std::vector<GenerationResult> BasicGPT2<Backend>::run(std::vector<detail::PromptState>& prompts,
                                                      const GenerationConfig& cfg, bool scores,
                                                      const detail::TokenCallback& on_token) const {
  return detail::run_generation<Backend>(ref(), prompts, cfg, detail::checked_eos(ref(), cfg, eos_), scores, on_token);
}

template <class Backend>
std::vector<int> BasicGPT2<Backend>::generate_one(const std::vector<int>& input_ids, const GenerationConfig& cfg,
                                                  const detail::TokenCallback& on_token) const {
  detail::check_generation(cfg, "generate() returns one sequence (use generate_batch)",
                           on_token ? "beam search knows its result only at the end" : nullptr);
  auto prompts = prompt_states({input_ids}, "generate");
  return std::move(run(prompts, cfg, false, on_token)[0].sequence);
}

template <class Backend>
std::vector<int> BasicGPT2<Backend>::generate(const std::vector<int>& input_ids, const GenerationConfig& cfg) const {
  return generate_one(input_ids, cfg, {});
}

template <class Backend>
template <class OnToken>
std::vector<int> BasicGPT2<Backend>::generate(const std::vector<int>& input_ids, const GenerationConfig& cfg,
                                              OnToken&& on_token) const {
  return generate_one(input_ids, cfg, [&](int id) { return detail::keep_going(on_token, id); });
}

template <class Backend>
std::vector<int> BasicGPT2<Backend>::encode_prompt(std::string_view prompt, const char* who) const {
  std::vector<int> ids = tokenizer().encode(prompt);
  if (ids.empty()) ids.push_back(detail::start_token(config_, who, "the prompt"));
  return ids;
}

template <class Backend>
std::string BasicGPT2<Backend>::generate_text(std::string_view prompt, int max_length) const {
  GenerationConfig cfg;
  cfg.max_length = max_length;
  return generate_text(prompt, cfg);
}

template <class Backend>
std::string BasicGPT2<Backend>::generate_text(std::string_view prompt, const GenerationConfig& cfg) const {
  return text(generate(encode_prompt(prompt, "generate_text"), cfg));
}

template <class Backend>
template <class OnText>
std::string BasicGPT2<Backend>::generate_text(std::string_view prompt, const GenerationConfig& cfg,
                                              OnText&& on_text) const {
  return text(detail::stream_text(
      tokenizer(), [&](auto& on_id) { return generate(encode_prompt(prompt, "generate_text"), cfg, on_id); }, on_text));
}

template <class Backend>
std::vector<std::vector<int>> BasicGPT2<Backend>::generate_batch(const std::vector<std::vector<int>>& input_ids,
                                                                 const GenerationConfig& cfg) const {
  detail::check_generation(cfg, nullptr, nullptr);
  auto prompts = prompt_states(input_ids, "generate_batch");
  std::vector<std::vector<int>> out;
  for (GenerationResult& r : run(prompts, cfg, false)) out.push_back(std::move(r.sequence));
  return out;
}

template <class Backend>
std::vector<std::string> BasicGPT2<Backend>::generate_batch(const std::vector<std::string>& prompts,
                                                            const GenerationConfig& cfg) const {
  std::vector<std::vector<int>> ids;
  for (const std::string& p : prompts) ids.push_back(encode_prompt(p, "generate_batch"));
  std::vector<std::string> out;
  for (const auto& seq : generate_batch(ids, cfg)) out.push_back(text(seq));
  return out;
}

template <class Backend>
std::vector<std::string> BasicGPT2<Backend>::generate_batch(std::initializer_list<std::string_view> prompts,
                                                            const GenerationConfig& cfg) const {
  return generate_batch(std::vector<std::string>(prompts.begin(), prompts.end()), cfg);
}

template <class Backend>
std::vector<GenerationResult> BasicGPT2<Backend>::generate_with_scores(const std::vector<int>& input_ids,
                                                                       const GenerationConfig& cfg) const {
  return generate_with_scores(std::vector<std::vector<int>>{input_ids}, cfg);
}

template <class Backend>
std::vector<GenerationResult> BasicGPT2<Backend>::generate_with_scores(const std::vector<std::vector<int>>& input_ids,
                                                                       const GenerationConfig& cfg) const {
  detail::check_generation(cfg, nullptr, nullptr);
  auto prompts = prompt_states(input_ids, "generate");
  return run(prompts, cfg, true);
}

template <class Backend>
template <class OnToken>
GenerationResult BasicGPT2<Backend>::generate_with_scores(const std::vector<int>& input_ids, const GenerationConfig& cfg,
                                                          OnToken&& on_token) const {
  detail::check_generation(cfg, "streaming returns one sequence (use generate_with_scores without a callback)",
                           "use generate_with_scores without a callback");
  auto prompts = prompt_states({input_ids}, "generate");
  return std::move(run(prompts, cfg, true, [&](int id) { return detail::keep_going(on_token, id); })[0]);
}

}  // namespace tinyllm

#include "embeddings.hpp"  // BasicGPT2::embed: needs BasicGPT2 complete
#include "session.hpp"     // BasicSession, Session: needs BasicGPT2 complete
