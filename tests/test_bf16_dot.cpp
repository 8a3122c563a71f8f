// The opt-in bf16 dot-product GEMM (kernels/bf16_dot.hpp, LoadOptions::bf16_dot): the kernel against
// its scalar twin (agreement to f32 rounding: the twin sums one product at a time, vdpbf16ps two),
// A packed by several callers giving the same bits, and prompts within the documented bound of the
// PyTorch oracle while decoding stays exact.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include <tinyllm/gpt2.hpp>
#include <tinyllm/kernels/kernels.hpp>
#include <tinyllm/model/quantize.hpp>

#include "test_helpers.hpp"

namespace k = tinyllm::kernels;
using test::random_floats;

TEST_CASE("bf16 dot-product GEMM: its scalar twin to f32 rounding; A packed in parts gives the same bits") {
  if (!k::bf16::available()) {  // then kernels::bf16::gemm is the scalar twin
    MESSAGE("skipped: no AVX-512 BF16 here (or not an AVX-512 build), kernels::bf16::gemm is the scalar twin");
    return;
  }
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16})
    for (std::size_t M : {1, 12, 13, 40})
      for (std::size_t K : {1, 5, 36, 530, 1100})  // odd depths, more than one depth block
        for (std::size_t N : {3, 17, 45, 300}) {
          CAPTURE(tinyllm::weight_type_name(type));
          CAPTURE(M);
          CAPTURE(K);
          CAPTURE(N);
          const std::size_t lda = K + 2;
          const auto a = random_floats(M * lda, M + K), bf = random_floats(K * N, K * 5 + N), bias = random_floats(N, N);
          tinyllm::detail::MatrixBuffers buffers;
          tinyllm::WeightView b = tinyllm::f32_matrix(bf.data(), K, N);
          if (type != tinyllm::WeightType::F32) b = tinyllm::detail::convert_matrix(b, type, buffers);
          for (auto ep : {k::Epilogue::none, k::Epilogue::gelu_new}) {
            std::vector<float> twin(M * N, 0.0f), dot(M * N, 0.0f), packed(M * N, 0.0f);
            const std::size_t n0 = N > 20 ? 3 : 0;  // a column range that starts mid-tile
            k::scalar::gemm_bf16(M, K, a.data(), lda, b, bias.data(), twin.data(), N, n0, N, ep);
            k::bf16::gemm(M, K, a.data(), lda, b, bias.data(), dot.data(), N, n0, N, ep);
            double d, m;
            test::max_errors(dot.data(), twin.data(), M * N, d, m);
            CHECK(d / std::max(1.0, m) < 1e-5);
            // A packed by two callers (rows split at a panel), used in two column ranges
            std::vector<float> ap(k::bf16::packed_a_size(M, K));
            const std::size_t split = std::min(M, k::bf16::packed_a_rows);
            k::bf16::pack_a_rows(a.data(), lda, M, K, split, M, ap.data());
            k::bf16::pack_a_rows(a.data(), lda, M, K, 0, split, ap.data());
            const std::size_t mid = std::min(N, n0 + 40);
            k::bf16::gemm_packed(M, K, ap.data(), b, bias.data(), packed.data(), N, mid, N, ep);
            k::bf16::gemm_packed(M, K, ap.data(), b, bias.data(), packed.data(), N, n0, mid, ep);
            CHECK(packed == dot);
          }
        }
}

namespace {
const char* const fixtures[] = {"f32-hub", "f16-prefix-odd", "bf16-untied-tokjson", "f32-sharded-inner"};
tinyllm::LoadOptions as(tinyllm::WeightType t) {
  tinyllm::LoadOptions o;
  o.weight_type = t;
  return o;
}
}  // namespace

TEST_CASE("LoadOptions::bf16_dot: prompts stay within their bound of the oracle; decoding is unchanged") {
  tinyllm::LoadOptions dot;
  dot.bf16_dot = true;
  if (!tinyllm::bf16_dot_available()) {  // the option is refused, by name
    CHECK_THROWS_WITH_AS((void)tinyllm::GPT2::from_pretrained(test::fixture("f32-hub"), dot),
                         doctest::Contains("LoadOptions.bf16_dot"), tinyllm::Error);
    return;
  }
  for (const char* name : fixtures)
    for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16}) {
      CAPTURE(name);
      CAPTURE(tinyllm::weight_type_name(type));
      tinyllm::LoadOptions o = as(type);
      o.bf16_dot = true;
      const auto model = tinyllm::GPT2::from_pretrained(test::fixture(name), o);
      const auto plain = tinyllm::GPT2::from_pretrained(test::fixture(name), as(type));
      CHECK(model.weights().h[0].mlp_c_fc.weight.bf16_dot);
      const std::vector<int> ids = test::read_json(test::fixture(name) + "/expected.json")["ids"];
      REQUIRE(ids.size() > 16);  // a prompt: the dot-product GEMM is used
      const auto want = test::read_f32(test::fixture(name) + "/expected_logits.f32");
      const auto got = model.forward(ids);
      double d, m;
      test::max_errors(got.data(), want.data(), got.size(), d, m);
      INFO("max |diff| / max |logit| = " << d / m);
      CHECK(d / m <= 1e-2);  // the bound amx has (the same roundings)
      CHECK(got != plain.forward(ids));  // bf16 activations: not the F32-kernel logits
      const std::vector<int> few(ids.begin(), ids.begin() + 8);  // up to 16 rows: the F32 kernels
      CHECK(model.forward(few) == plain.forward(few));
    }
  tinyllm::LoadOptions q8 = as(tinyllm::WeightType::Q8);
  q8.bf16_dot = true;
  CHECK_THROWS_WITH_AS((void)tinyllm::GPT2::from_pretrained(test::fixture("f32-hub"), q8),
                       doctest::Contains("LoadOptions.bf16_dot"), tinyllm::Error);
  tinyllm::LoadOptions both;
  both.bf16_dot = both.amx = true;
  CHECK_THROWS_AS((void)tinyllm::GPT2::from_pretrained(test::fixture("f32-hub"), both), tinyllm::Error);
}
