// Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020):
// how much each position's stream after block l draws on each input token, following attention
// through the residual connections. Per layer the heads are averaged, the identity added (the
// residual path) and the rows renormalised, A = (mean_h att_h + I) / 2; the rollout multiplies
// these across layers, R_l = A_l R_(l-1), R_0 = A_0. Rows stay probability distributions over
// the tokens at or before the query. Depends on model/inspect.hpp.
#pragma once

#include <cstddef>  // std::size_t
#include <vector>   // std::vector

#include "../model/inspect.hpp"

namespace tinyllm {

// [n_layer] of [T, T]: rollout[l] is R_l, query rows, input-token columns (zero right of the diagonal).
// Needs an inspection with attentions.
inline std::vector<std::vector<float>> attention_rollout(const Inspection& insp) {
  if (insp.attentions.empty())
    detail::fail("attention_rollout", "the Inspection has no attentions (InspectOptions.attentions = true)");
  const std::size_t T = insp.size(), H = static_cast<std::size_t>(insp.n_head);
  std::vector<std::vector<float>> out;
  std::vector<double> a(T * T), r(T * T), next(T * T);
  for (std::size_t l = 0; l < insp.attentions.size(); ++l) {
    const float* att = insp.attentions[l].data();  // [H, T, T]
    for (std::size_t q = 0; q < T; ++q) {
      double sum = 0;
      for (std::size_t k = 0; k <= q; ++k) {
        double m = 0;
        for (std::size_t h = 0; h < H; ++h) m += att[(h * T + q) * T + k];
        a[q * T + k] = m / static_cast<double>(H) + (k == q ? 1.0 : 0.0);
        sum += a[q * T + k];
      }
      for (std::size_t k = 0; k <= q; ++k) a[q * T + k] /= sum;
    }
    if (l == 0) {
      r = a;
    } else {  // next = a r, both lower triangular
      for (std::size_t q = 0; q < T; ++q) {
        double* n = next.data() + q * T;
        for (std::size_t k = 0; k < T; ++k) n[k] = 0;
        for (std::size_t j = 0; j <= q; ++j) {
          const double w = a[q * T + j];
          const double* rj = r.data() + j * T;
          for (std::size_t k = 0; k <= j; ++k) n[k] += w * rj[k];
        }
      }
      r.swap(next);
    }
    out.emplace_back(r.begin(), r.end());
  }
  return out;
}

}  // namespace tinyllm
