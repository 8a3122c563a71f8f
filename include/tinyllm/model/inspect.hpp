// Looking inside one forward pass: the tensors Hugging Face returns under output_attentions and
// output_hidden_states (same layout, same meaning), and the observed pass that records them and
// the other points of the residual stream (explain/*.hpp). Depends on model/gpt2_model.hpp.
#pragma once

#include <cstddef>  // std::size_t
#include <string>   // std::string, std::to_string
#include <vector>   // std::vector

#include "../error.hpp"
#include "gpt2_model.hpp"

namespace tinyllm {

// What BasicGPT2::inspect records besides the logits. (Fields in this order: InspectOptions{true, true}
// asks for both tensors.)
struct InspectOptions {
  bool attentions = false;     // HF output_attentions
  bool hidden_states = false;  // HF output_hidden_states
  bool logits = true;          // every position's logits, as forward() gives them
};

// One forward pass over ids, seen from inside. T = ids.size().
struct Inspection {
  std::vector<int> ids;  // [T]
  int n_layer = 0, n_head = 0, n_embd = 0, vocab_size = 0;
  // [n_layer] of [n_head, T, T]: the softmax probabilities of each head, query rows, key columns;
  // each row sums to 1 and is zero right of the diagonal (the causal mask). HF: attentions[l][0].
  std::vector<std::vector<float>> attentions;
  // [n_layer + 1] of [T, n_embd], HF's convention: [0] the embeddings (wte + wpe), [l] the residual
  // stream entering block l, [n_layer] the output of the last block after ln_f (what the head reads).
  std::vector<std::vector<float>> hidden_states;
  std::vector<float> logits;  // [T, vocab_size], bitwise forward(ids)

  std::size_t size() const { return ids.size(); }
  // Head `head` of layer `layer`: [T, T], row = query. Error naming the argument when out of range,
  // or when the pass did not record attentions.
  const float* attention(int layer, int head) const {
    check("Inspection.attention", "layer", layer, n_layer);
    check("Inspection.attention", "head", head, n_head);
    if (attentions.empty()) detail::fail("Inspection.attention", "not recorded (InspectOptions.attentions = true)");
    const std::size_t T = size();
    return attentions[static_cast<std::size_t>(layer)].data() + static_cast<std::size_t>(head) * T * T;
  }
  float attention(int layer, int head, int query, int key) const {
    const float* a = attention(layer, head);
    check("Inspection.attention", "query", query, static_cast<int>(size()));
    check("Inspection.attention", "key", key, static_cast<int>(size()));
    return a[static_cast<std::size_t>(query) * size() + static_cast<std::size_t>(key)];
  }
  // hidden_states[index]: [T, n_embd].
  const float* hidden_state(int index) const {
    check("Inspection.hidden_state", "index", index, n_layer + 1);
    if (hidden_states.empty())
      detail::fail("Inspection.hidden_state", "not recorded (InspectOptions.hidden_states = true)");
    return hidden_states[static_cast<std::size_t>(index)].data();
  }

 private:
  static void check(const char* who, const char* arg, int v, int n) {
    if (v < 0 || v >= n)
      detail::fail(who, std::string(arg) + " " + std::to_string(v) + " is not in [0, " + std::to_string(n) + ")");
  }
};

namespace detail {

// The checks every call on a sequence makes: not empty, within the context, ids in the vocabulary.
inline void check_sequence(const GPT2Config& c, const std::vector<int>& ids, const std::string& who) {
  if (ids.empty()) fail(who, "ids is empty");
  if (ids.size() > static_cast<std::size_t>(c.n_positions))
    fail(who, std::to_string(ids.size()) + " tokens is more than the model's context of n_positions = " +
                  std::to_string(c.n_positions));
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.vocab_size)
      fail(who, "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                    " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
}

// Hooks that also want each layer's attention probabilities: attention_probs(l) gives where to put
// them ([n_head, T, pos0 + T]) or null. The other calls are NoHooks's.
struct ObserverHooks : NoHooks {
  float* attention_probs(int /*layer*/) { return nullptr; }
};

// forward_hidden with an observer: runs ids[0..T) at positions cache.length() onwards, showing
// `hooks` the residual stream (transformer's NoHooks calls) and the attention probabilities.
// Leaves ln_f(x) in s.x and extends the cache by T.
template <class Backend, class Hooks>
void observed_forward(const GPT2Config& c, const GPT2Weights& w, InferenceState& s, const int* ids, std::size_t T,
                      Hooks& hooks) {
  const std::size_t pos0 = static_cast<std::size_t>(s.cache.length());
  s.reserve(c, T);
  layers::embed(w.wte, w.wpe, ids, T, pos0, s.x.data());  // x = wte[ids] + wpe[pos]   [T, C]
  transformer<Backend>(
      c, w, s, T,
      [&](int l, float scale, const float* qkv, float* out) {
        layers::causal_self_attention<Backend>(qkv, T, static_cast<std::size_t>(c.n_head),
                                               static_cast<std::size_t>(c.head_dim()), s.cache, l, pos0, scale, out,
                                               hooks.attention_probs(l));
      },
      -1, hooks);
  s.cache.set_length(static_cast<int>(pos0 + T));
}

// Records HF's hidden states (the residual stream entering each block) and attentions.
struct InspectionRecorder : ObserverHooks {
  Inspection& out;
  bool attentions, hidden_states;
  InspectionRecorder(Inspection& o, const InspectOptions& opts)
      : out(o), attentions(opts.attentions), hidden_states(opts.hidden_states) {}
  void block_input(int l, const float* x) {
    if (hidden_states) out.hidden_states[static_cast<std::size_t>(l)].assign(x, x + out.size() * out.n_embd);
  }
  float* attention_probs(int l) { return attentions ? out.attentions[static_cast<std::size_t>(l)].data() : nullptr; }
};

// The pass behind BasicGPT2::inspect (ids already checked).
template <class Backend>
Inspection inspect(const GPT2Config& c, const GPT2Weights& w, const std::vector<int>& ids, const InspectOptions& opts) {
  Inspection r;
  r.ids = ids;
  r.n_layer = c.n_layer, r.n_head = c.n_head, r.n_embd = c.n_embd, r.vocab_size = c.vocab_size;
  const std::size_t T = ids.size(), C = static_cast<std::size_t>(c.n_embd), L = static_cast<std::size_t>(c.n_layer);
  if (opts.attentions) r.attentions.assign(L, std::vector<float>(static_cast<std::size_t>(c.n_head) * T * T));
  if (opts.hidden_states) r.hidden_states.resize(L + 1);
  InferenceState s(c);
  InspectionRecorder rec(r, opts);
  observed_forward<Backend>(c, w, s, ids.data(), T, rec);
  if (opts.hidden_states) r.hidden_states[L].assign(s.x.data(), s.x.data() + T * C);  // ln_f(x), as HF
  if (opts.logits) {
    r.logits.resize(T * static_cast<std::size_t>(c.vocab_size));
    lm_head<Backend>(w, s.x.data(), T, r.logits.data());
  }
  return r;
}

}  // namespace detail
}  // namespace tinyllm
