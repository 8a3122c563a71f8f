// config.json: the fields HF writes, defaults, and the derived sizes.
#include <doctest/doctest.h>

#include <tinyllm/config.hpp>

#include "test_helpers.hpp"

TEST_CASE("config: the demo model's config.json") {
  const auto c = tinyllm::GPT2Config::from_pretrained(test::demo_model());
  CHECK(c.vocab_size == 50257);
  CHECK(c.n_positions == 256);
  CHECK(c.n_embd == 128);
  CHECK(c.n_layer == 4);
  CHECK(c.n_head == 4);
  CHECK(c.layer_norm_epsilon == doctest::Approx(1e-5f));
  CHECK(c.eos_token_id == 50256);
  CHECK(c.head_dim() == 32);
  CHECK(c.inner_dim() == 512);
  CHECK(c.activation_function == tinyllm::Activation::gelu_new);
}

TEST_CASE("config: defaults are GPT-2 small, n_ctx stands in for n_positions, n_inner and activation read") {
  tinyllm::GPT2Config d;
  CHECK(d.vocab_size == 50257);
  CHECK(d.n_positions == 1024);
  CHECK(d.n_embd == 768);
  CHECK(d.n_layer == 12);
  CHECK(d.n_head == 12);
  CHECK(d.eos_token_id == 50256);
  const auto c = tinyllm::GPT2Config::from_json(
      R"({"vocab_size":100,"n_ctx":32,"n_embd":24,"n_layer":1,"n_head":2,"n_inner":50,)"
      R"("activation_function":"gelu","eos_token_id":[99, 98],"scale_attn_by_inverse_layer_idx":true})",
      "config.json");
  CHECK(c.n_positions == 32);
  CHECK(c.inner_dim() == 50);
  CHECK(c.activation_function == tinyllm::Activation::gelu);
  CHECK(c.eos_token_id == 99);
  CHECK(c.scale_attn_by_inverse_layer_idx);
  CHECK(c.bos_token_id == -1);  // 50256 does not fit a 100-token vocabulary
}
