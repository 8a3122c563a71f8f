// GPT-2's weights as non-owning views, and for_each_tensor: the one list of tensors (HF names and
// shapes) that the loader, the size checks and the tests all walk. Matrices are WeightViews (any
// WeightType); vectors are F32. The views of one layer's weights are the layers tier's
// (LinearWeights, LayerNormWeights). Depends on config.hpp, weight_type.hpp and layers/.
#pragma once

#include <cstdint>  // std::int64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "../config.hpp"
#include "../layers/layer_norm.hpp"  // LayerNormWeights
#include "../layers/linear.hpp"      // LinearWeights
#include "../weight_type.hpp"

namespace tinyllm {

using layers::LayerNormWeights;
using layers::LinearWeights;

struct BlockWeights {                 // h.{i}
  LayerNormWeights ln_1;              // [n_embd]
  LinearWeights attn_c_attn;          // [n_embd, 3*n_embd]: q, k, v side by side
  LinearWeights attn_c_proj;          // [n_embd, n_embd]
  LayerNormWeights ln_2;              // [n_embd]
  LinearWeights mlp_c_fc;             // [n_embd, n_inner]
  LinearWeights mlp_c_proj;           // [n_inner, n_embd]
};

struct GPT2Weights {
  WeightView wte;                     // [vocab_size, n_embd]   token embedding, and the tied head
  const float* wpe = nullptr;         // [n_positions, n_embd]  learned positions
  std::vector<BlockWeights> h;        // [n_layer]
  LayerNormWeights ln_f;              // [n_embd]
  WeightView lm_head;                 // [vocab_size, n_embd]   == wte unless the file has lm_head.weight
};

// What for_each_tensor reports for each tensor.
struct TensorSpec {
  std::string name;                   // HF name without the "transformer." prefix
  std::vector<std::int64_t> shape;
  bool optional = false;              // lm_head.weight: absent means tied to wte
  bool head = false;                  // wte / lm_head: used as W x (outputs are rows), not x @ W
};

// Calls fn(spec, slot) for every tensor of a GPT-2 with config c, in checkpoint order. `slot` is what
// the loader fills: a WeightView& for the matrices (wte, the four linear weights of each block,
// lm_head), a const float*& for the F32 vectors (wpe, layer norms, biases).
template <class Weights, class Fn>
void for_each_tensor(const GPT2Config& c, Weights& w, Fn&& fn) {
  const std::int64_t V = c.vocab_size, P = c.n_positions, C = c.n_embd, I = c.inner_dim();
  if (w.h.size() != static_cast<std::size_t>(c.n_layer)) w.h.resize(static_cast<std::size_t>(c.n_layer));
  fn(TensorSpec{"wte.weight", {V, C}, false, true}, w.wte);
  fn(TensorSpec{"wpe.weight", {P, C}}, w.wpe);
  for (int i = 0; i < c.n_layer; ++i) {
    auto& b = w.h[static_cast<std::size_t>(i)];
    const std::string p = "h." + std::to_string(i) + ".";
    fn(TensorSpec{p + "ln_1.weight", {C}}, b.ln_1.weight);
    fn(TensorSpec{p + "ln_1.bias", {C}}, b.ln_1.bias);
    fn(TensorSpec{p + "attn.c_attn.weight", {C, 3 * C}}, b.attn_c_attn.weight);
    fn(TensorSpec{p + "attn.c_attn.bias", {3 * C}}, b.attn_c_attn.bias);
    fn(TensorSpec{p + "attn.c_proj.weight", {C, C}}, b.attn_c_proj.weight);
    fn(TensorSpec{p + "attn.c_proj.bias", {C}}, b.attn_c_proj.bias);
    fn(TensorSpec{p + "ln_2.weight", {C}}, b.ln_2.weight);
    fn(TensorSpec{p + "ln_2.bias", {C}}, b.ln_2.bias);
    fn(TensorSpec{p + "mlp.c_fc.weight", {C, I}}, b.mlp_c_fc.weight);
    fn(TensorSpec{p + "mlp.c_fc.bias", {I}}, b.mlp_c_fc.bias);
    fn(TensorSpec{p + "mlp.c_proj.weight", {I, C}}, b.mlp_c_proj.weight);
    fn(TensorSpec{p + "mlp.c_proj.bias", {C}}, b.mlp_c_proj.bias);
  }
  fn(TensorSpec{"ln_f.weight", {C}}, w.ln_f.weight);
  fn(TensorSpec{"ln_f.bias", {C}}, w.ln_f.bias);
  fn(TensorSpec{"lm_head.weight", {V, C}, true, true}, w.lm_head);
}

// Fills the n_in / n_out of every LinearWeights from the config (the views come from the loader).
inline void set_linear_shapes(const GPT2Config& c, GPT2Weights& w) {
  const int C = c.n_embd, I = c.inner_dim();
  for (auto& b : w.h) {
    b.attn_c_attn.n_in = C, b.attn_c_attn.n_out = 3 * C;
    b.attn_c_proj.n_in = C, b.attn_c_proj.n_out = C;
    b.mlp_c_fc.n_in = C, b.mlp_c_fc.n_out = I;
    b.mlp_c_proj.n_in = I, b.mlp_c_proj.n_out = C;
  }
}

// Bytes of the matrices (what one decoding step streams) and of the F32 vectors.
inline std::size_t matrix_bytes(const GPT2Weights& w) {
  auto bytes = [](const WeightView& v) { return static_cast<std::size_t>(weight_type_bytes(v.type) * v.rows * v.cols); };
  std::size_t n = bytes(w.wte) + (w.lm_head.data != w.wte.data ? bytes(w.lm_head) : 0);
  for (const auto& b : w.h)
    n += bytes(b.attn_c_attn.weight) + bytes(b.attn_c_proj.weight) + bytes(b.mlp_c_fc.weight) + bytes(b.mlp_c_proj.weight);
  return n;
}

}  // namespace tinyllm
