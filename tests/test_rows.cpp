// The multi-row kernels (kernels/rows.hpp, kernels/q8_rows.hpp) against their scalar twin and the
// one-row kernels, bitwise: every row count from 1 to 64, odd sizes and tails, column ranges that
// start mid-vector (a thread's slice), F32 matrices that start mid-line (as mapped from a file), and
// column ranges wide enough for several sweeps. Then the layers that use them: a linear layer's
// rows, batch steps and prompts equal to decoding one row at a time.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include <tinyllm/backend/openmp.hpp>
#include <tinyllm/gpt2.hpp>
#include <tinyllm/backend/thread_pool.hpp>
#include <tinyllm/detail/aligned.hpp>
#include <tinyllm/kernels/kernels.hpp>
#include <tinyllm/layers/linear.hpp>
#include <tinyllm/model/quantize.hpp>

#include "test_helpers.hpp"

namespace k = tinyllm::kernels;
// The kernels the layers call: the SIMD ones, or the scalar twins in a TINYLLM_NO_SIMD build.
namespace simd = tinyllm::kernels::impl;
using test::random_floats;

namespace {

// Whether simd:: differs from scalar:: in this build (all kernels; the Q8 int8 products, which need
// AVX-512 VNNI). Where it does not, a comparison of the two would compare a function with itself.
#ifdef TINYLLM_NO_SIMD
constexpr bool simd_kernels = false, q8_simd_kernels = false;
#else
constexpr bool simd_kernels = true, q8_simd_kernels = TINYLLM_Q8_VNNI;
#endif

// The weight types whose multi-row kernels are not their one-row and scalar twins in this build.
std::vector<tinyllm::WeightType> kernel_types() {
  std::vector<tinyllm::WeightType> out;
  if (!simd_kernels) {
    MESSAGE("skipped: built with TINYLLM_NO_SIMD, the multi-row kernels are the scalar twins");
    return out;
  }
  out = {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16};
  if (q8_simd_kernels)
    out.push_back(tinyllm::WeightType::Q8);
  else
    MESSAGE("Q8 skipped: no AVX-512 VNNI here, q8_rows is the scalar twin");
  return out;
}

// A [K, N] matrix of `type` from floats, the F32 one `offset` floats past a 64-byte boundary.
struct Matrix {
  tinyllm::detail::AlignedBuffer f32;
  tinyllm::detail::MatrixBuffers converted;
  tinyllm::WeightView view;
  Matrix(std::size_t K, std::size_t N, tinyllm::WeightType type, std::size_t offset, std::uint64_t seed)
      : f32(K * N + offset + 1) {
    const auto values = random_floats(K * N, seed);
    std::copy(values.begin(), values.end(), f32.data() + offset);
    view = tinyllm::f32_matrix(f32.data() + offset, K, N);
    if (type != tinyllm::WeightType::F32) view = tinyllm::detail::convert_matrix(view, type, converted);
  }
};

// Rows [0, M) of y (ldy = N) against each row alone and the scalar twin, over columns [n0, n1);
// columns outside the range must keep `untouched`.
void check_rows(std::size_t M, const float* x, std::size_t ldx, const tinyllm::WeightView& w, const float* bias,
                std::size_t K, std::size_t N, std::size_t n0, std::size_t n1, k::Epilogue ep) {
  const float untouched = -12345.0f;
  std::vector<float> y(M * N, untouched), twin(M * N, untouched), one(N);
  simd::gemv_rows(M, x, ldx, w, bias, y.data(), N, K, n0, n1, ep);
  k::scalar::gemv_rows(M, x, ldx, w, bias, twin.data(), N, K, n0, n1, ep);
  for (std::size_t m = 0; m < M; ++m) {
    CAPTURE(m);
    simd::gemv(x + m * ldx, w, bias, one.data(), K, n0, n1, ep);
    const float* row = y.data() + m * N;
    CHECK(std::memcmp(row + n0, one.data() + n0, (n1 - n0) * sizeof(float)) == 0);
    if (ep == k::Epilogue::none)  // (the activations' vector forms round differently from std::tanh)
      CHECK(std::memcmp(row + n0, twin.data() + m * N + n0, (n1 - n0) * sizeof(float)) == 0);
    for (std::size_t n = 0; n < N; ++n)
      if (n < n0 || n >= n1) REQUIRE(row[n] == untouched);
  }
}

}  // namespace

TEST_CASE("multi-row kernels: every row bitwise its one-row result and the scalar twin's, 1 to 64 rows") {
  const std::size_t row_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 23, 24, 31, 32, 33, 47, 48, 63, 64};
  for (auto type : kernel_types())
    for (std::size_t K : {1, 5, 33, 64, 300})
      for (std::size_t N : {1, 7, 16, 45, 100, 257})
        for (std::size_t offset : {0, 3, 8}) {
          if (type != tinyllm::WeightType::F32 && offset != 3) continue;  // converted matrices are aligned anyway
          CAPTURE(tinyllm::weight_type_name(type));
          CAPTURE(K);
          CAPTURE(N);
          CAPTURE(offset);
          const Matrix w(K, N, type, offset, K * 131 + N);
          const std::size_t ldx = K + 3;  // rows of a wider matrix
          const auto x = random_floats(64 * ldx, K + N), bias = random_floats(N, N + 1);
          for (std::size_t M : row_counts) {
            CAPTURE(M);
            check_rows(M, x.data(), ldx, w.view, bias.data(), K, N, 0, N, k::Epilogue::none);
            // a thread's slice that starts and ends mid-vector, with an activation
            const std::size_t n0 = N > 3 ? 3 : 0, n1 = N > 20 ? N - 5 : N;
            check_rows(M, x.data(), ldx, w.view, bias.data(), K, N, n0, n1, k::Epilogue::gelu_new);
            if (M == 7) check_rows(M, x.data(), ldx, w.view, nullptr, K, N, n0, n1, k::Epilogue::none);  // no bias
          }
        }
}

TEST_CASE("multi-row kernels: column ranges of several sweeps (running sums kept for a part at a time)") {
  const std::size_t K = 70, N = 9000;
  for (auto type : kernel_types()) {
    CAPTURE(tinyllm::weight_type_name(type));
    const Matrix w(K, N, type, 5, 77);
    const auto x = random_floats(64 * K, 78), bias = random_floats(N, 79);
    for (std::size_t M : {2, 9, 33, 64}) {
      CAPTURE(M);
      check_rows(M, x.data(), K, w.view, bias.data(), K, N, 1, N, k::Epilogue::gelu_new);
    }
  }
}

TEST_CASE_TEMPLATE("linear layer: up to 64 rows, each bitwise the row alone, halves and all", Backend, tinyllm::Serial,
                   tinyllm::OpenMP, tinyllm::ThreadPool) {
  tinyllm::set_num_threads(2);
  const std::size_t N = 700;
  const auto bias = random_floats(N, 2);
  for (std::size_t K : {256, 100})  // split into halves, and not
    for (auto type : tinyllm::all_weight_types) {
      CAPTURE(K);
      CAPTURE(tinyllm::weight_type_name(type));
      const Matrix w(K, N, type, 8, K + 1);
      const tinyllm::layers::LinearWeights lw{w.view, bias.data(), int(K), int(N)};
      const auto x = random_floats(64 * K, 3);
      std::vector<float> one(N);
      for (std::size_t T : {2, 6, 16, 17, 40, 64}) {
        CAPTURE(T);
        std::vector<float> y(T * N);
        tinyllm::layers::linear<Backend>(lw, x.data(), T, y.data(), k::Epilogue::gelu_new);
        for (std::size_t t = 0; t < T; ++t) {
          tinyllm::layers::linear<Backend>(lw, x.data() + t * K, 1, one.data(), k::Epilogue::gelu_new);
          CHECK(std::memcmp(one.data(), y.data() + t * N, N * sizeof(float)) == 0);
        }
      }
    }
  tinyllm::set_num_threads(0);
}

namespace {
tinyllm::LoadOptions as(tinyllm::WeightType t) {
  tinyllm::LoadOptions o;
  o.weight_type = t;
  return o;
}
}  // namespace

TEST_CASE("prompts of up to 64 tokens (multi-row passes): every row's hidden state bitwise that of decoding one by one") {
  tinyllm::set_num_threads(2);
  for (auto type : tinyllm::all_weight_types) {
    CAPTURE(tinyllm::weight_type_name(type));
    const auto model = tinyllm::GPT2::from_pretrained(test::demo_model(), as(type));
    const auto& c = model.config();
    const std::size_t C = static_cast<std::size_t>(c.n_embd);
    std::vector<int> ids(64);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>((i * 7919 + 13) % c.vocab_size);
    for (std::size_t T : {2, 5, 16, 17, 40, 64}) {
      CAPTURE(T);
      tinyllm::detail::InferenceState all(c), one(c);
      tinyllm::detail::forward_hidden<tinyllm::DefaultBackend>(c, model.weights(), all, ids.data(), T);
      for (std::size_t t = 0; t < T; ++t) {
        tinyllm::detail::forward_hidden<tinyllm::DefaultBackend>(c, model.weights(), one, ids.data() + t, 1);
        CHECK_MESSAGE(std::memcmp(one.x.data(), all.x.data() + t * C, C * sizeof(float)) == 0, "row " << t);
      }
    }
  }
  tinyllm::set_num_threads(0);
}

TEST_CASE("batches of 8 and 16 sequences (multi-row steps): tokens identical to generating each prompt alone") {
  tinyllm::set_num_threads(2);
  for (auto type : tinyllm::all_weight_types) {
    CAPTURE(tinyllm::weight_type_name(type));
    const auto model = tinyllm::GPT2::from_pretrained(test::demo_model(), as(type));
    const auto& tok = model.tokenizer();
    const char* texts[] = {"The state of the Union", "We", "My fellow citizens, tonight", "In the year 1800, Congress",
                           "The economy", "Our", "Tonight I ask", "America is strong because",
                           "Let us", "The budget I send to you", "Freedom", "Health care for every family",
                           "Jobs", "We will not", "The men and women of our armed forces", "Thank you"};
    std::vector<std::vector<int>> prompts;
    for (const char* t : texts) prompts.push_back(tok.encode(t));
    tinyllm::GenerationConfig cfg;
    cfg.max_new_tokens = 12;
    for (std::size_t B : {8, 16}) {
      CAPTURE(B);
      const std::vector<std::vector<int>> batch_prompts(prompts.begin(), prompts.begin() + B);
      const auto batch = model.generate_batch(batch_prompts, cfg);
      REQUIRE(batch.size() == B);
      for (std::size_t b = 0; b < B; ++b) {
        CAPTURE(b);
        CHECK(batch[b] == model.generate(batch_prompts[b], cfg));
      }
    }
  }
  tinyllm::set_num_threads(0);
}
