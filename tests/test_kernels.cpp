// Every SIMD kernel against its scalar twin, over sizes with tails and unaligned starts, and the
// layers that split them across threads in both backends. Eigen's GEMM is a second reference.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>

#include <Eigen/Core>
#include <tinyllm/backend/backend.hpp>
#include <tinyllm/backend/openmp.hpp>
#include <tinyllm/backend/thread_pool.hpp>
#include <tinyllm/detail/aligned.hpp>
#include <tinyllm/detail/half.hpp>
#include <tinyllm/kernels/kernels.hpp>
#include <tinyllm/layers/linear.hpp>
#include <tinyllm/layers/attention.hpp>
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
constexpr const char* no_simd = "skipped: built with TINYLLM_NO_SIMD, the SIMD kernels are the scalar twins";
constexpr const char* no_vnni = "Q8 skipped: no AVX-512 VNNI here, the int8 products are the scalar twin's";

// Ends a test whose checks would all compare a function with itself in this build, saying so.
#define SKIP_UNLESS(cond, why) \
  if (!(cond)) {               \
    MESSAGE(why);              \
    return;                    \
  }

// max |a - b| / max(1, max |b|)
double rel_err(const float* a, const float* b, std::size_t n) {
  double d, m;
  test::max_errors(a, b, n, d, m);
  return d / std::max(1.0, m);
}

const std::size_t sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 40, 64, 100, 129, 768, 1027};

}  // namespace

TEST_CASE("elementwise kernels equal their scalar twins (tails, unaligned starts)") {
  SKIP_UNLESS(simd_kernels, no_simd);
  for (std::size_t n : sizes)
    for (std::size_t off : {0, 1, 3}) {
      CAPTURE(n);
      CAPTURE(off);
      auto x = random_floats(n + off, n * 7 + off, 3.0f);
      auto g = random_floats(n + off, n + 1), b = random_floats(n + off, n + 2);
      std::vector<float> ys(n + off), yv(n + off);
      k::scalar::layer_norm(x.data() + off, g.data() + off, b.data() + off, ys.data() + off, n, 1e-5f);
      simd::layer_norm(x.data() + off, g.data() + off, b.data() + off, yv.data() + off, n, 1e-5f);
      CHECK(rel_err(yv.data() + off, ys.data() + off, n) < 1e-5);

      for (auto ep : {k::Epilogue::gelu_new, k::Epilogue::gelu}) {
        std::vector<float> as(x), av(x);
        k::scalar::activate(as.data() + off, n, ep);
        simd::activate(av.data() + off, n, ep);
        CHECK(rel_err(av.data() + off, as.data() + off, n) < 1e-5);
      }
      std::vector<float> ss(x), sv(x);
      k::scalar::softmax(ss.data() + off, n);
      simd::softmax(sv.data() + off, n);
      CHECK(rel_err(sv.data() + off, ss.data() + off, n) < 1e-6);
      double sum = 0;
      for (std::size_t i = 0; i < n; ++i) sum += sv[off + i];
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));

      std::vector<float> ads(x), adv(x);
      k::scalar::add(ads.data() + off, b.data() + off, n);
      simd::add(adv.data() + off, b.data() + off, n);
      CHECK(rel_err(adv.data() + off, ads.data() + off, n) == 0.0);
    }
}

TEST_CASE("argmax: the first largest, as the scalar twin and std::max_element find it") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t n : {1, 2, 15, 16, 17, 31, 32, 33, 100, 1027, 50257})
    for (std::size_t off : {0, 3}) {
      CAPTURE(n);
      CAPTURE(off);
      auto x = random_floats(n + off, n + off, 10.0f);
      const float* p = x.data() + off;
      const auto first = static_cast<std::size_t>(std::max_element(p, p + n) - p);
      CHECK(simd::argmax(p, n) == first);
      CHECK(k::scalar::argmax(p, n) == first);
      if (n >= 3) {  // the largest value twice, the later copy in a later vector: the first one wins
        x[off + n - 1] = x[off + n / 3] = 100.0f;
        CHECK(simd::argmax(p, n) == n / 3);
        x[off + n / 3] = 1.0f;
        CHECK(simd::argmax(p, n) == n - 1);
      }
      std::vector<float> same(n, -inf);  // every score masked: the first
      CHECK(simd::argmax(same.data(), n) == 0);
      if (n >= 2) {
        same[n - 1] = nan;  // a NaN is passed over, like the twin's comparisons pass it
        same[n / 2] = -1.0f;
        if (simd_kernels) CHECK(simd::argmax(same.data(), n) == k::scalar::argmax(same.data(), n));
        CHECK(simd::argmax(same.data(), n) == n / 2);
        same[0] = nan;  // ... unless it comes first
        CHECK(simd::argmax(same.data(), n) == 0);
        CHECK(k::scalar::argmax(same.data(), n) == 0);
        std::vector<float> zeros(n, 0.0f);  // +0 after -0 is not larger
        zeros[0] = -0.0f;
        CHECK(simd::argmax(zeros.data(), n) == 0);
      }
    }
  CHECK(simd::argmax(nullptr, 0) == 0);
}

TEST_CASE("quantize_activations: the vector form equals the scalar twin bitwise") {
  if (!q8_simd_kernels) MESSAGE((simd_kernels ? no_vnni : no_simd));  // then only the known roundings are checked
  for (std::size_t K : {1, 5, 31, 32, 33, 64, 100, 768, 3072})
    for (std::size_t extra : {0, 32}) {  // padding blocks beyond K
      CAPTURE(K);
      CAPTURE(extra);
      const std::size_t K_pad = (K + 31) / 32 * 32 + extra, nb = K_pad / 32;
      auto x = random_floats(K, K * 3 + extra, 4.0f);
      if (K >= 64) {
        for (std::size_t i = 0; i < 32; ++i) x[i] = 0.0f;  // a block of zeros: scale 0
        x[32] = 127.0f;  // a block with scale 1: halves round to even, both signs
        for (std::size_t i = 33; i < 64; ++i) x[i] = (static_cast<float>(i) - 48.0f) + 0.5f;
      }
      std::vector<std::uint8_t> qs(K_pad, 7), qv(K_pad, 9);
      std::vector<float> ss(nb, -1.0f), sv(nb, -2.0f);
      k::scalar::quantize_activations(x.data(), K, K_pad, qs.data(), ss.data());
      simd::quantize_activations(x.data(), K, K_pad, qv.data(), sv.data());
      if (q8_simd_kernels) {
        CHECK(qs == qv);
        CHECK(ss == sv);
      }
      if (K >= 64) {
        CHECK(ss[0] == 0.0f);
        CHECK(ss[1] == 1.0f);
        CHECK(int(qv[47]) - 128 == 0);   // -0.5 -> 0
        CHECK(int(qv[48]) - 128 == 0);   // 0.5 -> 0
        CHECK(int(qv[49]) - 128 == 2);   // 1.5 -> 2
        CHECK(int(qv[50]) - 128 == 2);   // 2.5 -> 2
        CHECK(int(qv[45]) - 128 == -2);  // -2.5 -> -2
        CHECK(int(qv[44]) - 128 == -4);  // -3.5 -> -4
      }
      for (std::size_t k2 = K; k2 < K_pad; ++k2) CHECK(int(qv[k2]) == 128);  // padding is zero
    }
}

TEST_CASE("activations match their definitions at known points") {
  // gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed here in double.
  for (float x : {-6.0f, -1.5f, -0.1f, 0.0f, 0.3f, 1.0f, 2.5f, 8.0f}) {
    const double xd = x;
    const double want = 0.5 * xd * (1 + std::tanh(std::sqrt(2 / M_PI) * (xd + 0.044715 * xd * xd * xd)));
    float v[16];
    for (float& e : v) e = x;
    simd::activate(v, 16, k::Epilogue::gelu_new);
    CHECK(std::abs(v[3] - want) <= 1e-6 * std::max(1.0, std::abs(want)));
    CHECK(std::abs(k::scalar::gelu_new(x) - want) <= 1e-6 * std::max(1.0, std::abs(want)));
  }
}

namespace {

// A matrix of floats held as `type` (converted as the loader converts); outputs_are_rows for a
// matrix used as W x (gemv_t), else x @ W.
struct Typed {
  tinyllm::detail::MatrixBuffers buffers;
  tinyllm::WeightView view;
  Typed(const std::vector<float>& values, std::size_t rows, std::size_t cols, tinyllm::WeightType type,
        bool outputs_are_rows = false) {
    tinyllm::WeightView f32;
    f32.data = values.data();
    f32.rows = rows;
    f32.cols = cols;
    f32.outputs_are_rows = outputs_are_rows;
    view = tinyllm::detail::convert_matrix(f32, type, buffers);
  }
};

const tinyllm::WeightType all_types[] = {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16,
                                         tinyllm::WeightType::Q8};

// The types whose SIMD products differ from the scalar twin's in this build (Q8 needs AVX-512 VNNI).
std::vector<tinyllm::WeightType> twin_types() {
  std::vector<tinyllm::WeightType> types(std::begin(all_types), std::end(all_types));
  if (!q8_simd_kernels) types.pop_back();
  return types;
}

}  // namespace

TEST_CASE("gemv and gemv_t equal their scalar twins over column ranges, for every weight type") {
  SKIP_UNLESS(simd_kernels, no_simd);
  if (!q8_simd_kernels) MESSAGE(no_vnni);
  for (auto type : twin_types())
    for (std::size_t K : {1, 3, 16, 17, 40, 64, 129})
      for (std::size_t N : {1, 5, 16, 33, 64, 100, 200}) {
        CAPTURE(tinyllm::weight_type_name(type));
        CAPTURE(K);
        CAPTURE(N);
        auto x = random_floats(12 * K, K + N), wf = random_floats(K * N, K * N + 1), bias = random_floats(N, N);
        const Typed w(wf, K, N, type), wt(wf, N, K, type, true);  // [K, N] and, for gemv_t, [N, K]
        for (auto ep : {k::Epilogue::none, k::Epilogue::gelu_new, k::Epilogue::gelu}) {
          std::vector<float> ys(N), yv(N);
          // two ranges, as two threads would take them, one starting at an odd column
          const std::size_t mid = N / 2 + (N > 2 ? 1 : 0);
          for (auto [b, e] : {std::pair{std::size_t(0), mid}, std::pair{mid, N}}) {
            k::scalar::gemv(x.data(), w.view, bias.data(), ys.data(), K, b, e, ep);
            simd::gemv(x.data(), w.view, bias.data(), yv.data(), K, b, e, ep);
          }
          CHECK(rel_err(yv.data(), ys.data(), N) < 1e-5);
        }
        for (std::size_t M : {1, 2, 3, 6, 12}) {
          std::vector<float> ts(M * N), tv(M * N);
          k::scalar::gemv_t(M, x.data(), K, wt.view, ts.data(), N, K, 0, N);
          simd::gemv_t(M, x.data(), K, wt.view, tv.data(), N, K, 0, N);
          CHECK(rel_err(tv.data(), ts.data(), M * N) < 1e-5);
        }
        std::vector<float> rs(K), rv(K);
        k::scalar::dequantize_row(wt.view, N - 1, rs.data());
        simd::dequantize_row(wt.view, N - 1, rv.data());
        CHECK(rs == rv);
      }
}

TEST_CASE("gemm equals its scalar twin and Eigen, with every epilogue and weight type") {
  if (!simd_kernels) MESSAGE(no_simd);  // then only Eigen is compared with
  if (simd_kernels && !q8_simd_kernels) MESSAGE(no_vnni);
  for (auto type : twin_types())
    for (std::size_t M : {2, 5, 13, 30})
      for (std::size_t K : {1, 7, 33, 260, 530})
        for (std::size_t N : {3, 32, 45, 100}) {
          CAPTURE(tinyllm::weight_type_name(type));
          CAPTURE(M);
          CAPTURE(K);
          CAPTURE(N);
          auto a = random_floats(M * K, M * 31 + K), bf = random_floats(K * N, K * 7 + N), bias = random_floats(N, N);
          const Typed b(bf, K, N, type);
          for (auto ep : {k::Epilogue::none, k::Epilogue::gelu_new, k::Epilogue::gelu}) {
            std::vector<float> cs(M * N), cv(M * N);
            const std::size_t mid = std::min(N, std::size_t(32));
            for (auto [n0, n1] : {std::pair{std::size_t(0), mid}, std::pair{mid, N}}) {
              k::scalar::gemm(M, K, a.data(), K, b.view, bias.data(), cs.data(), N, n0, n1, ep);
              simd::gemm(M, K, a.data(), K, b.view, bias.data(), cv.data(), N, n0, n1, ep);
            }
            if (simd_kernels) CHECK(rel_err(cv.data(), cs.data(), M * N) < 2e-5);
          }
          if (type != tinyllm::WeightType::F32) continue;
          // Eigen: C = A B + bias
          using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
          Eigen::Map<const Mat> A(a.data(), M, K), B(bf.data(), K, N);
          Mat ref = A * B;
          for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < N; ++j) ref(i, j) += bias[j];
          std::vector<float> c(M * N);
          simd::gemm(M, K, a.data(), K, b.view, bias.data(), c.data(), N, 0, N);
          CHECK(rel_err(c.data(), ref.data(), M * N) < 2e-5);
        }
}

TEST_CASE("gemm with A packed once (in row panels) is bitwise gemm, in SIMD, scalar and AMX forms") {
  if (!simd_kernels) MESSAGE(no_simd);  // then the scalar form only
  if (!k::amx::available()) MESSAGE("AMX form skipped: no AMX tiles here, it is the scalar twin's bf16 product");
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16})
    for (std::size_t M : {1, 12, 13, 30})
      for (std::size_t K : {1, 33, 260, 530})
        for (std::size_t N : {3, 45, 100}) {
          CAPTURE(tinyllm::weight_type_name(type));
          CAPTURE(M);
          CAPTURE(K);
          CAPTURE(N);
          const std::size_t lda = K + 3;  // rows of a wider matrix
          auto a = random_floats(M * lda, M * 17 + K), bf = random_floats(K * N, K + N), bias = random_floats(N, N + 1);
          const Typed b(bf, K, N, type);
          std::vector<float> ref(M * N), simd_packed(M * N), ref_s(M * N), scalar_packed(M * N);
          simd::gemm(M, K, a.data(), lda, b.view, bias.data(), ref.data(), N, 0, N, k::Epilogue::gelu_new);
          k::scalar::gemm(M, K, a.data(), lda, b.view, bias.data(), ref_s.data(), N, 0, N, k::Epilogue::gelu_new);
          // packed in two parts (as two threads would), used in two column ranges (starting mid-tile)
          std::vector<float> ap(simd::packed_a_size(M, K)), as(k::scalar::packed_a_size(M, K));
          const std::size_t split = std::min(M, simd::packed_a_rows);
          simd::pack_a_rows(a.data(), lda, M, K, split, M, ap.data());
          simd::pack_a_rows(a.data(), lda, M, K, 0, split, ap.data());
          k::scalar::pack_a_rows(a.data(), lda, M, K, 0, M / 2, as.data());
          k::scalar::pack_a_rows(a.data(), lda, M, K, M / 2, M, as.data());
          const std::size_t mid = std::min(N, std::size_t(40));
          for (auto [n0, n1] : {std::pair{mid, N}, std::pair{std::size_t(0), mid}}) {
            simd::gemm_packed(M, K, ap.data(), b.view, bias.data(), simd_packed.data(), N, n0, n1, k::Epilogue::gelu_new);
            k::scalar::gemm_packed(M, K, as.data(), b.view, bias.data(), scalar_packed.data(), N, n0, n1,
                                   k::Epilogue::gelu_new);
          }
          if (simd_kernels) CHECK(simd_packed == ref);
          CHECK(scalar_packed == ref_s);
          if (!k::amx::available()) continue;
          // AMX: rows converted by two callers
          std::vector<float> amx_ref(M * N), amx_packed(M * N), am(k::amx::packed_a_size(M, K));
          k::amx::gemm(M, K, a.data(), lda, b.view, bias.data(), amx_ref.data(), N, 0, N, k::Epilogue::gelu_new);
          k::amx::pack_a_rows(a.data(), lda, M, K, M / 2, M, am.data());
          k::amx::pack_a_rows(a.data(), lda, M, K, 0, M / 2, am.data());
          for (auto [n0, n1] : {std::pair{mid, N}, std::pair{std::size_t(0), mid}})
            k::amx::gemm_packed(M, K, am.data(), b.view, bias.data(), amx_packed.data(), N, n0, n1, k::Epilogue::gelu_new);
          CHECK(amx_packed == amx_ref);
        }
}

TEST_CASE("the AMX bf16 GEMM equals its scalar twin to f32 rounding") {
  // The tiles add pairs of products first. Without AMX tiles (and for Q8 weights) kernels::amx::gemm
  // is the scalar twin itself.
  SKIP_UNLESS(k::amx::available(), "skipped: no AMX tiles here, kernels::amx::gemm is the scalar twin");
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16})
    for (std::size_t M : {1, 17, 40, 70})
      for (std::size_t K : {5, 36, 530, 770})
        for (std::size_t N : {17, 45, 300}) {
          CAPTURE(tinyllm::weight_type_name(type));
          CAPTURE(M);
          CAPTURE(K);
          CAPTURE(N);
          auto a = random_floats(M * K, M + K), bf = random_floats(K * N, K * 3 + N), bias = random_floats(N, N);
          const Typed b(bf, K, N, type);
          for (auto ep : {k::Epilogue::none, k::Epilogue::gelu_new}) {
            std::vector<float> cs(M * N, 0.0f), cv(M * N, 0.0f);
            const std::size_t n0 = N > 20 ? 3 : 0;  // a column range that starts mid-tile
            k::scalar::gemm_bf16(M, K, a.data(), K, b.view, bias.data(), cs.data(), N, n0, N, ep);
            k::amx::gemm(M, K, a.data(), K, b.view, bias.data(), cv.data(), N, n0, N, ep);
            CHECK(rel_err(cv.data(), cs.data(), M * N) < 1e-5);
          }
        }
}

TEST_CASE("a row alone and the same row in a batch give bitwise the same result, for every weight type") {
  // The batch == sequential and seed contracts rest on this: gemm rows equal gemv, and gemv_t rows
  // equal gemv_t of that row alone, for any number of rows, column range and depth blocking. (The
  // scalar twins compute row by row: nothing to compare there.)
  SKIP_UNLESS(simd_kernels, no_simd);
  if (!q8_simd_kernels) MESSAGE(no_vnni);
  for (auto type : twin_types())
    for (std::size_t K : {5, 64, 300, 770})
      for (std::size_t N : {17, 96, 130}) {
        CAPTURE(tinyllm::weight_type_name(type));
        CAPTURE(K);
        CAPTURE(N);
        const std::size_t M = 17;  // more than one gemv_rows sweep of 16 rows and gemv_t pass of 12
        auto a = random_floats(M * K, K), bf = random_floats(K * N, N), bias = random_floats(N, 3);
        const Typed b(bf, K, N, type), bt(bf, N, K, type, true);
        for (auto ep : {k::Epilogue::none, k::Epilogue::gelu_new}) {
          std::vector<float> batch(M * N), row(N);
          simd::gemm(M, K, a.data(), K, b.view, bias.data(), batch.data(), N, 0, N, ep);
          for (std::size_t m = 0; m < M; ++m) {
            simd::gemv(a.data() + m * K, b.view, bias.data(), row.data(), K, 0, 64 < N ? 64 : N, ep);
            if (N > 64) simd::gemv(a.data() + m * K, b.view, bias.data(), row.data(), K, 64, N, ep);
            CHECK(std::memcmp(row.data(), batch.data() + m * N, N * sizeof(float)) == 0);
          }
        }
        // gemv_rows with 2..17 rows (decoding batches, speculative passes) gives each row's gemv result too
        for (std::size_t rows : {2, 3, 5, 7, 8, 9, 12, 16, 17}) {
          std::vector<float> multi(rows * N), one(N);
          simd::gemv_rows(rows, a.data(), K, b.view, bias.data(), multi.data(), N, K, 0, N, k::Epilogue::gelu_new);
          for (std::size_t m = 0; m < rows; ++m) {
            simd::gemv(a.data() + m * K, b.view, bias.data(), one.data(), K, 0, N, k::Epilogue::gelu_new);
            CHECK(std::memcmp(one.data(), multi.data() + m * N, N * sizeof(float)) == 0);
          }
          // a column range that starts mid-vector (a thread's slice): the same values
          std::vector<float> part(rows * N, 0.0f);
          simd::gemv_rows(rows, a.data(), K, b.view, bias.data(), part.data(), N, K, 3, N, k::Epilogue::gelu_new);
          for (std::size_t m = 0; m < rows; ++m)
            CHECK(std::memcmp(part.data() + m * N + 3, multi.data() + m * N + 3, (N - 3) * sizeof(float)) == 0);
        }
        std::vector<float> tb(M * N), tr(N);
        for (std::size_t rows : {4, 5, 8, 11, 12, 13, 17}) {  // every block shape of dot_rows
          simd::gemv_t(rows, a.data(), K, bt.view, tb.data(), N, K, 0, N);
          for (std::size_t m = 0; m < rows; ++m) {
            simd::gemv_t(1, a.data() + m * K, K, bt.view, tr.data(), N, K, 0, N);
            CHECK(std::memcmp(tr.data(), tb.data() + m * N, N * sizeof(float)) == 0);
          }
        }
      }
}

TEST_CASE("an F32 matrix that starts mid-line (as mapped from a file) gives the bits of an aligned copy") {
  // The decode kernels read such rows in whole lines (AVX-512: aligned loads put together); rows
  // whose lines reach outside the matrix (its first and last), the plain way.
  SKIP_UNLESS(simd_kernels, no_simd);
  for (std::size_t R : {5, 16, 40, 300, 768})  // the row length
    for (std::size_t offset : {1, 3, 8, 15}) {
      CAPTURE(R);
      CAPTURE(offset);
      const std::size_t N = 37;  // rows
      auto x = random_floats(std::max(R, N), R + 5), wf = random_floats(N * R, N + R), bias = random_floats(R, 7);
      tinyllm::detail::AlignedBuffer aligned(N * R), shifted(N * R + offset);
      std::copy(wf.begin(), wf.end(), aligned.data());
      std::copy(wf.begin(), wf.end(), shifted.data() + offset);
      tinyllm::WeightView a = tinyllm::f32_matrix(aligned.data(), N, R), s = tinyllm::f32_matrix(shifted.data() + offset, N, R);
      // the head: gemv_t, row per output
      a.outputs_are_rows = s.outputs_are_rows = true;
      std::vector<float> ya(N), ys(N, -1.0f), ref(N);
      simd::gemv_t(1, x.data(), R, a, ya.data(), N, R, 0, N);
      simd::gemv_t(1, x.data(), R, s, ys.data(), N, R, 0, 20);  // two ranges, as two threads would take them
      simd::gemv_t(1, x.data(), R, s, ys.data(), N, R, 20, N);
      CHECK(std::memcmp(ya.data(), ys.data(), N * sizeof(float)) == 0);
      k::scalar::gemv_t(1, x.data(), R, s, ref.data(), N, R, 0, N);
      CHECK(rel_err(ys.data(), ref.data(), N) < 1e-5);
      // a linear layer: x @ W, W [N, R]; whole, in column ranges (one starting mid-vector), and in
      // row ranges carried on in running sums (a decode step's halves and handovers)
      a.outputs_are_rows = s.outputs_are_rows = false;
      std::vector<float> la(R), ls(R, -1.0f), lr(R), sums(R), sums_a(R);
      simd::gemv(x.data(), a, bias.data(), la.data(), N, 0, R, k::Epilogue::gelu_new);
      simd::gemv(x.data(), s, bias.data(), ls.data(), N, 0, R / 2 + 1, k::Epilogue::gelu_new);
      simd::gemv(x.data(), s, bias.data(), ls.data(), N, R / 2 + 1, R, k::Epilogue::gelu_new);
      CHECK(std::memcmp(la.data(), ls.data(), R * sizeof(float)) == 0);
      k::scalar::gemv(x.data(), s, bias.data(), lr.data(), N, 0, R, k::Epilogue::gelu_new);
      CHECK(rel_err(ls.data(), lr.data(), R) < 1e-5);
      std::copy(bias.begin(), bias.end(), sums.begin());
      std::copy(bias.begin(), bias.end(), sums_a.begin());
      simd::gemv_accumulate(x.data(), a, sums_a.data(), 0, N, 0, R);
      simd::gemv_accumulate(x.data(), s, sums.data(), 0, 11, 0, R);
      simd::gemv_accumulate(x.data(), s, sums.data(), 11, N, 0, R / 3);
      simd::gemv_accumulate(x.data(), s, sums.data(), 11, 30, R / 3, R);
      simd::gemv_accumulate(x.data(), s, sums.data(), 30, N, R / 3, R);
      CHECK(std::memcmp(sums_a.data(), sums.data(), R * sizeof(float)) == 0);
      // a few rows of x at once (batches, speculative passes), from column 0 and from column 3
      for (std::size_t rows : {2, 4, 5}) {
        std::vector<float> ba(rows * R), bs(rows * R, -1.0f);
        auto xs = random_floats(rows * N, rows);
        for (std::size_t c0 : {std::size_t(0), std::min<std::size_t>(3, R - 1)}) {
          simd::gemv_rows(rows, xs.data(), N, a, bias.data(), ba.data(), R, N, c0, R, k::Epilogue::gelu_new);
          simd::gemv_rows(rows, xs.data(), N, s, bias.data(), bs.data(), R, N, c0, R, k::Epilogue::gelu_new);
          CHECK(std::memcmp(ba.data(), bs.data(), rows * R * sizeof(float)) == 0);
        }
      }
    }
}

TEST_CASE("gemv_rows: rows wider than one sweep of running sums give each row's gemv result") {
  // A sweep holds 4096 running sums for one row (gemv_row: 4096 at a time, then the rest), up to
  // 32768 for several (32768 / rows columns, whole lines; the sweeps of a call of equal length):
  // 17000 columns take five sweeps for one row, two for 2 rows, five for 9, nine for 16.
  SKIP_UNLESS(simd_kernels, no_simd);
  const std::size_t K = 37, N = 17000;
  for (auto type : twin_types()) {
    CAPTURE(tinyllm::weight_type_name(type));
    auto a = random_floats(16 * K, 5), bf = random_floats(K * N, 6), bias = random_floats(N, 7);
    const Typed b(bf, K, N, type);
    std::vector<float> one(N);
    for (std::size_t rows : {2, 9, 16}) {
      CAPTURE(rows);
      std::vector<float> multi(rows * N);
      simd::gemv_rows(rows, a.data(), K, b.view, bias.data(), multi.data(), N, K, 1, N, k::Epilogue::gelu_new);
      for (std::size_t m = 0; m < rows; ++m) {
        simd::gemv(a.data() + m * K, b.view, bias.data(), one.data(), K, 1, N, k::Epilogue::gelu_new);
        CHECK(std::memcmp(one.data() + 1, multi.data() + m * N + 1, (N - 1) * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("weight types round as documented") {
  // F16 / BF16: round to nearest even of the F32 value; Q8: |w - q*scale| <= scale / 2 per block of 32
  // along the reduction (rows of a [K, N] Conv1D matrix), with an all-zero block exactly zero.
  auto wf = random_floats(64 * 100, 77, 0.05f);
  for (std::size_t k = 32; k < 64; ++k) wf[k * 100 + 7] = 0.0f;  // column 7, block 1: all zero
  const Typed h(wf, 64, 100, tinyllm::WeightType::F16), b(wf, 64, 100, tinyllm::WeightType::BF16),
      q(wf, 64, 100, tinyllm::WeightType::Q8);
  for (std::size_t r = 0; r < 64; ++r)
    for (std::size_t c = 0; c < 100; ++c) {
      const float w = wf[r * 100 + c];
      CHECK(k::weight_at(h.view, r, c) == tinyllm::detail::f16_to_f32(tinyllm::detail::f32_to_f16(w)));
      CHECK(k::weight_at(b.view, r, c) == tinyllm::detail::bf16_to_f32(tinyllm::detail::f32_to_bf16(w)));
      const float scale = q.view.scale[k::q8_block_index(q.view, r, c)];
      CHECK(std::abs(k::weight_at(q.view, r, c) - w) <= scale * 0.5f + 1e-12f);
    }
  CHECK(q.view.scale[k::q8_block_index(q.view, 40, 7)] == 0.0f);
  CHECK(k::weight_at(q.view, 40, 7) == 0.0f);
  // The packed layout pads the reduction to 32 and the outputs to 32 with zeros.
  CHECK(q.view.k_pad() == 64);
  CHECK(q.view.o_pad() == 128);
}

TEST_CASE("Q8 products: the int8 kernels equal their scalar twin bitwise") {
  if (!q8_simd_kernels) MESSAGE((simd_kernels ? no_vnni : no_simd));  // then only the float product is compared with
  for (std::size_t K : {5, 32, 100, 768})
    for (std::size_t N : {1, 17, 64, 100, 4200}) {  // 4200: two sweeps of 4096 outputs in one call
      CAPTURE(K);
      CAPTURE(N);
      auto wf = random_floats(K * N, K + N, 0.05f), bias = random_floats(N, 1), x = random_floats(5 * K, 2);
      const Typed w(wf, K, N, tinyllm::WeightType::Q8);
      std::vector<float> ys(N), yv(N), cs(5 * N), cv(5 * N);
      k::scalar::gemv(x.data(), w.view, bias.data(), ys.data(), K, 0, N);
      simd::gemv(x.data(), w.view, bias.data(), yv.data(), K, 0, N / 2);
      simd::gemv(x.data(), w.view, bias.data(), yv.data(), K, N / 2, N);
      if (q8_simd_kernels) CHECK(ys == yv);
      simd::gemv(x.data(), w.view, bias.data(), yv.data(), K, 0, N);
      if (q8_simd_kernels) {
        CHECK(ys == yv);
        k::scalar::gemm(5, K, x.data(), K, w.view, bias.data(), cs.data(), N, 0, N);
        simd::gemm(5, K, x.data(), K, w.view, bias.data(), cv.data(), N, 0, N);
        CHECK(cs == cv);
      }
      // and against the float product of the dequantized weights, within the activation rounding
      std::vector<float> ref(N);
      for (std::size_t n = 0; n < N; ++n) {
        double s = bias[n], mag = std::abs(bias[n]);
        for (std::size_t kk = 0; kk < K; ++kk) {
          s += double(x[kk]) * k::weight_at(w.view, kk, n);
          mag += std::abs(double(x[kk]) * k::weight_at(w.view, kk, n));
        }
        CHECK(std::abs(yv[n] - s) <= 0.02 * mag + 1e-6);
      }
    }
}

TEST_CASE_TEMPLATE("attention layer equals the scalar attention of each query, prompt and decode", Backend,
                   tinyllm::Serial, tinyllm::OpenMP, tinyllm::ThreadPool) {
  tinyllm::set_num_threads(2);
  constexpr std::size_t QB = tinyllm::layers::query_block;
  for (std::size_t hd : {8, 13, 64})
    for (std::size_t T : {std::size_t(1), std::size_t(5), std::size_t(40), QB + 1, 2 * QB, 2 * QB + 38}) {
      CAPTURE(hd);
      CAPTURE(T);
      const std::size_t H = 3, C = H * hd, pos0 = T % 3 == 0 ? 0 : 37;  // with and without a cached past
      tinyllm::layers::KVCache cache(1, int(H), int(hd), 400);
      // fill the past with a first call, then run T new tokens
      auto past = random_floats((pos0 ? pos0 : 1) * 3 * C, hd + T), qkv = random_floats(T * 3 * C, hd * T + 1);
      std::vector<float> out_past((pos0 ? pos0 : 1) * C), out(T * C);
      if (pos0) tinyllm::layers::causal_self_attention<Backend>(past.data(), pos0, H, hd, cache, 0, 0, 0.3f, out_past.data());
      cache.set_length(int(pos0));  // what the forward pass does after its last layer
      tinyllm::layers::causal_self_attention<Backend>(qkv.data(), T, H, hd, cache, 0, pos0, 0.3f, out.data());
      // reference: keys and values of all positions, row-major
      std::vector<float> K((pos0 + T) * C), V((pos0 + T) * C);
      for (std::size_t t = 0; t < pos0 + T; ++t) {
        const float* src = t < pos0 ? past.data() + t * 3 * C : qkv.data() + (t - pos0) * 3 * C;
        std::memcpy(K.data() + t * C, src + C, C * sizeof(float));
        std::memcpy(V.data() + t * C, src + 2 * C, C * sizeof(float));
      }
      std::vector<float> scores(pos0 + T), ref(hd);
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t h = 0; h < H; ++h) {
          k::scalar::attention(qkv.data() + t * 3 * C + h * hd, K.data() + h * hd, V.data() + h * hd, C, pos0 + t + 1, hd,
                               0.3f, scores.data(), ref.data());
          CHECK_MESSAGE(rel_err(out.data() + t * C + h * hd, ref.data(), hd) < 1e-5, "query " << t << " head " << h);
        }
      // The same tokens one at a time against a cache of the same past: bitwise the prompt's rows
      // (each query block of the prompt does the arithmetic of a single query).
      tinyllm::layers::KVCache steps(1, int(H), int(hd), 400);
      if (pos0) tinyllm::layers::causal_self_attention<Backend>(past.data(), pos0, H, hd, steps, 0, 0, 0.3f, out_past.data());
      std::vector<float> one(C);
      for (std::size_t t = 0; t < T; ++t) {
        steps.set_length(int(pos0 + t));
        tinyllm::layers::causal_self_attention<Backend>(qkv.data() + t * 3 * C, 1, H, hd, steps, 0, pos0 + t, 0.3f, one.data());
        CHECK_MESSAGE(std::memcmp(one.data(), out.data() + t * C, C * sizeof(float)) == 0, "decoded query " << t);
      }
    }
  tinyllm::set_num_threads(0);
}

TEST_CASE_TEMPLATE("linear layer gives the same result on every backend and row count", Backend, tinyllm::Serial,
                   tinyllm::OpenMP, tinyllm::ThreadPool) {
  tinyllm::set_num_threads(2);
  const std::size_t N = 520;  // big enough to be split across threads, not a multiple of 64
  auto bias = random_floats(N, 2);
  // K = 256: the reduction in two halves (128 rows each); K = 120: too short to split, columns only
  for (std::size_t K : {256, 120})
  for (auto type : all_types)
  for (std::size_t T : {1, 2, 5, 8, 9, 16, 17, 20, 1030}) {  // gemv, gemv_rows, gemm (1030: two row blocks)
    const int type_id = static_cast<int>(type);
    CAPTURE(K);
    CAPTURE(T);
    CAPTURE(type_id);
    auto w = random_floats(K * N, 1);
    const Typed typed(w, K, N, type);
    const tinyllm::WeightView wv = typed.view;
    tinyllm::layers::LinearWeights lw{wv, bias.data(), int(K), int(N)};
    CHECK(tinyllm::layers::reduction_split(wv) == (K == 256 ? 128u : 0u));
    auto x = random_floats(T * K, T);
    std::vector<float> ref(T * N), y(T * N);
    for (std::size_t t = 0; t < T; ++t)
      k::scalar::gemv(x.data() + t * K, wv, bias.data(), ref.data() + t * N, K, 0, N, k::Epilogue::gelu_new);
    tinyllm::layers::linear<Backend>(lw, x.data(), T, y.data(), k::Epilogue::gelu_new);
    CHECK(rel_err(y.data(), ref.data(), T * N) < 1e-5);
    // each row bitwise what the row alone gives (decode)
    std::vector<float> one(N);
    for (std::size_t t : {std::size_t(0), T - 1}) {
      tinyllm::layers::linear<Backend>(lw, x.data() + t * K, 1, one.data(), k::Epilogue::gelu_new);
      CHECK(std::memcmp(one.data(), y.data() + t * N, N * sizeof(float)) == 0);
    }
  }
  tinyllm::set_num_threads(0);
}

TEST_CASE("gemv_accumulate: rows cut anywhere (Q8: at blocks) continue gemv's chains, equal to the scalar twin") {
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16})
    for (std::size_t K : {1, 7, 8, 17, 64})
      for (std::size_t N : {1, 15, 16, 33, 100}) {
        CAPTURE(tinyllm::weight_type_name(type));
        CAPTURE(K);
        CAPTURE(N);
        auto x = random_floats(K, K + N), wf = random_floats(K * N, K * N + 3), bias = random_floats(N, N + 1);
        const Typed w(wf, K, N, type);
        std::vector<float> whole(N);
        simd::gemv(x.data(), w.view, bias.data(), whole.data(), K, 0, N);
        for (std::size_t nb : {std::size_t(0), std::size_t(1), N / 2})  // columns [nb, N), an odd start too
          for (std::size_t cut : {std::size_t(0), std::size_t(1), K / 2, K}) {
            CAPTURE(nb);
            CAPTURE(cut);
            std::vector<float> a(bias), s(bias);
            simd::gemv_accumulate(x.data(), w.view, a.data(), 0, cut, nb, N);
            simd::gemv_accumulate(x.data(), w.view, a.data(), cut, K, nb, N);
            k::scalar::gemv_accumulate(x.data(), w.view, s.data(), 0, K, nb, N);
            CHECK(std::memcmp(a.data() + nb, whole.data() + nb, (N - nb) * sizeof(float)) == 0);
            CHECK(std::memcmp(s.data() + nb, whole.data() + nb, (N - nb) * sizeof(float)) == 0);
            CHECK(std::memcmp(a.data(), bias.data(), nb * sizeof(float)) == 0);  // columns outside untouched
          }
      }
  // Q8: cut at blocks of 32 (the last one may be short), outputs from a multiple of 16
  for (std::size_t K : {32, 64, 100})
    for (std::size_t N : {1, 15, 16, 33, 100}) {
      CAPTURE(K);
      CAPTURE(N);
      auto x = random_floats(K, K + N + 1), wf = random_floats(K * N, K * N + 5), bias = random_floats(N, N + 2);
      const Typed w(wf, K, N, tinyllm::WeightType::Q8);
      std::vector<float> whole(N);
      simd::gemv(x.data(), w.view, bias.data(), whole.data(), K, 0, N);
      for (std::size_t nb : {std::size_t(0), std::size_t(16)})
        for (std::size_t cut : {std::size_t(0), std::size_t(32), K}) {
          if (nb >= N || cut > K) continue;
          CAPTURE(nb);
          CAPTURE(cut);
          std::vector<float> a(bias), s(bias);
          simd::gemv_accumulate(x.data(), w.view, a.data(), 0, cut, nb, N);
          simd::gemv_accumulate(x.data(), w.view, a.data(), cut, K, nb, N);
          k::scalar::gemv_accumulate(x.data(), w.view, s.data(), 0, cut, nb, N);
          k::scalar::gemv_accumulate(x.data(), w.view, s.data(), cut, K, nb, N);
          CHECK(std::memcmp(a.data() + nb, whole.data() + nb, (N - nb) * sizeof(float)) == 0);
          CHECK(std::memcmp(s.data() + nb, whole.data() + nb, (N - nb) * sizeof(float)) == 0);
          CHECK(std::memcmp(a.data(), bias.data(), nb * sizeof(float)) == 0);
        }
    }
}

namespace {
// Two threads, the second starting `delay` late: the first finishes its parts early and takes over
// the second's (all of a part not started, or the last columns of one running).
struct LateSecond {
  static inline std::chrono::microseconds delay{0};
  static int num_threads() { return 2; }
  template <class Fn>
  static void parallel_for(std::size_t begin, std::size_t end, Fn&& fn) {
    if (begin >= end) return;
    const std::size_t mid = begin + (end - begin + 1) / 2;
    std::thread second([&] {
      std::this_thread::sleep_for(delay);
      if (mid < end) fn(mid, end);
    });
    fn(begin, mid);
    second.join();
  }
};
}  // namespace

TEST_CASE("a decode step's halves balanced across threads: bitwise the static split, whoever takes over") {
  const std::size_t K = 2048, N = 1000;  // ~8 MB of F32: a thread takes a while over its half
  auto bias = random_floats(N, 5);
  auto x = random_floats(K, 6);
  auto wf = random_floats(K * N, 7);
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::Q8}) {
    CAPTURE(tinyllm::weight_type_name(type));
    const Typed w(wf, K, N, type);
    tinyllm::layers::LinearWeights lw{w.view, bias.data(), int(K), int(N)};
    std::vector<float> ref(N), y(N);
    tinyllm::layers::linear<tinyllm::Serial>(lw, x.data(), 1, ref.data(), k::Epilogue::gelu_new);  // static halves
    for (int us : {0, 100, 300, 1000, 3000, 100000}) {  // no take-over, the last columns at various rows, a whole part
      CAPTURE(us);
      LateSecond::delay = std::chrono::microseconds(us);
      std::fill(y.begin(), y.end(), -1.0f);
      tinyllm::layers::linear<LateSecond>(lw, x.data(), 1, y.data(), k::Epilogue::gelu_new);
      CHECK(std::memcmp(y.data(), ref.data(), N * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("AlignedBuffer: zero-filled and aligned at every size, growing and moving keep it so") {
  using tinyllm::detail::AlignedBuffer;
  // below and above the 2 MB from which buffers are mapped on a 2 MB boundary (not a whole number of
  // 2 MB pages: the last part is in 4 KB pages)
  for (std::size_t n : {std::size_t(1), std::size_t(1000), std::size_t(1) << 19, (std::size_t(3) << 20) / 4 + 7}) {
    CAPTURE(n);
    AlignedBuffer b(n);
    REQUIRE(b.size() == n);
    CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
    if (n * sizeof(float) >= tinyllm::detail::huge_page_bytes)
      CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % tinyllm::detail::huge_page_bytes == 0);
    bool zero = true;
    for (std::size_t i = 0; i < n; ++i) zero = zero && b[i] == 0.0f;
    CHECK(zero);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<float>(i % 7);  // every byte writable
    b.resize(n / 2);  // not smaller: contents kept
    CHECK(b.size() == n);
    CHECK(b[n - 1] == static_cast<float>((n - 1) % 7));
    AlignedBuffer moved(std::move(b));
    CHECK(moved.size() == n);
    CHECK(moved[n - 1] == static_cast<float>((n - 1) % 7));
    b = std::move(moved);  // and back: the moved-from buffer is empty and reusable
    CHECK(b.size() == n);
    CHECK(moved.size() == 0);
    b.resize(2 * n + 1);  // grown: zero-filled again
    zero = true;
    for (std::size_t i = 0; i < 2 * n + 1; ++i) zero = zero && b[i] == 0.0f;
    CHECK(zero);
  }
}

TEST_CASE("F16 and BF16 conversions are exact") {
  // Every F16 value: widening then narrowing gives the same bits back (NaNs stay NaN).
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = tinyllm::detail::f16_to_f32(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      CHECK(std::isnan(tinyllm::detail::f16_to_f32(tinyllm::detail::f32_to_f16(f))));
      continue;
    }
    REQUIRE(tinyllm::detail::f32_to_f16(f) == h);
  }
  // Known values (IEEE 754 binary16 / bfloat16 encodings).
  CHECK(tinyllm::detail::f16_to_f32(0x3C00) == 1.0f);
  CHECK(tinyllm::detail::f16_to_f32(0xC000) == -2.0f);
  CHECK(tinyllm::detail::f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(tinyllm::detail::f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(std::isinf(tinyllm::detail::f16_to_f32(0x7C00)));
  CHECK(tinyllm::detail::bf16_to_f32(0x3F80) == 1.0f);
  CHECK(tinyllm::detail::bf16_to_f32(0xC0A0) == -5.0f);
  CHECK(tinyllm::detail::f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);  // tie rounds to even
  CHECK(tinyllm::detail::f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie rounds to even
}

TEST_CASE_TEMPLATE("parallel_for covers the range exactly once, in ordered chunks", Backend, tinyllm::Serial,
                   tinyllm::OpenMP, tinyllm::ThreadPool) {
  for (int threads : {1, 2, 3, 8}) {
    tinyllm::set_num_threads(threads);
    for (std::size_t n : {0, 1, 2, 7, 100}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> calls{0};
      Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
        CHECK(b < e);
        ++calls;
        for (std::size_t i = b; i < e; ++i) ++hits[i];
      });
      for (std::size_t i = 0; i < n; ++i) CHECK(hits[i].load() == 1);
      CHECK(calls.load() <= std::max(1, threads));
    }
  }
  tinyllm::set_num_threads(0);
}
