// xsimd kernels over one row: layer norm, activations, softmax, residual add.
// Scalar twins with the same signatures: kernels/reference.hpp. Depends on kernels/simd.hpp only.
#pragma once

#include <algorithm>  // std::min
#include <cmath>    // std::sqrt, std::isnan
#include <cstddef>  // std::size_t

#include "reference.hpp"  // Epilogue, scalar twins for tails
#include "simd.hpp"

namespace tinyllm::kernels::simd {

inline fbatch gelu_new(const fbatch& x) {
  const fbatch k(0.7978845608028654f), c(0.044715f), half(0.5f), one(1.0f);
  return half * x * (one + xsimd::tanh(k * fmadd(c * x * x, x, x)));
}
inline fbatch gelu_erf(const fbatch& x) {
  return fbatch(0.5f) * x * (fbatch(1.0f) + xsimd::erf(x * fbatch(0.7071067811865476f)));
}
inline fbatch apply(Epilogue ep, const fbatch& v) {
  return ep == Epilogue::gelu_new ? gelu_new(v) : ep == Epilogue::gelu ? gelu_erf(v) : v;
}

// y[0:n] = (x - mean) / sqrt(var + eps) * gamma + beta. Two passes, as PyTorch does. x, y may alias.
inline void layer_norm(const float* x, const float* gamma, const float* beta, float* y, std::size_t n, float eps) {
  constexpr std::size_t W = simd_width;
  const std::size_t nv = n - n % W;
  fbatch acc(0.0f);
  float sum = 0;
  for (std::size_t i = 0; i < nv; i += W) acc += load(x + i);
  for (std::size_t i = nv; i < n; ++i) sum += x[i];
  const float mean = (reduce_add(acc) + sum) / static_cast<float>(n);
  const fbatch vmean(mean);
  fbatch acc2(0.0f);
  float sq = 0;
  for (std::size_t i = 0; i < nv; i += W) {
    const fbatch d = load(x + i) - vmean;
    acc2 = fmadd(d, d, acc2);
  }
  for (std::size_t i = nv; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const float rstd = 1.0f / std::sqrt((reduce_add(acc2) + sq) / static_cast<float>(n) + eps);
  const fbatch vrstd(rstd);
  for (std::size_t i = 0; i < nv; i += W)
    store(y + i, fmadd((load(x + i) - vmean) * vrstd, load(gamma + i), load(beta + i)));
  for (std::size_t i = nv; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
}

// x[0:n] = act(x), in place. The tail goes through the vector code too (padded), so an element's
// result does not depend on where it sits: the GEMM's edge tiles and gemv's tails agree bitwise.
inline void activate(float* x, std::size_t n, Epilogue ep) {
  if (ep == Epilogue::none) return;
  constexpr std::size_t W = simd_width;
  std::size_t i = 0;
  for (; i + W <= n; i += W) store(x + i, apply(ep, load(x + i)));
  if (i < n) {
    const std::size_t rest = std::min(n - i, W);  // < W (the min tells the compiler so)
    alignas(64) float tail[W] = {};
    for (std::size_t j = 0; j < rest; ++j) tail[j] = x[i + j];
    apply(ep, fbatch::load_aligned(tail)).store_aligned(tail);
    for (std::size_t j = 0; j < rest; ++j) x[i + j] = tail[j];
  }
}

// x[0:n] = softmax(x), in place; n >= 1.
inline void softmax(float* x, std::size_t n) {
  constexpr std::size_t W = simd_width;
  const std::size_t nv = n - n % W;
  float m = x[0];
  if (nv) {
    fbatch vm = load(x);
    for (std::size_t i = W; i < nv; i += W) vm = xsimd::max(vm, load(x + i));
    m = reduce_max(vm);
  }
  for (std::size_t i = nv; i < n; ++i) m = x[i] > m ? x[i] : m;
  const fbatch vm(m);
  fbatch vs(0.0f);
  for (std::size_t i = 0; i < nv; i += W) {
    const fbatch e = xsimd::exp(load(x + i) - vm);
    store(x + i, e);
    vs += e;
  }
  float s = reduce_add(vs);
  for (std::size_t i = nv; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  const float inv = 1.0f / s;
  const fbatch vinv(inv);
  for (std::size_t i = 0; i < nv; i += W) store(x + i, load(x + i) * vinv);
  for (std::size_t i = nv; i < n; ++i) x[i] *= inv;
}

// Index of the largest of x[0:n], the first on ties, NaNs passed over unless x[0] is one (as the
// scalar twin): the largest value in vectors, then the first place that holds it (+0 and -0 equal,
// as the twin's comparisons find them).
inline std::size_t argmax(const float* x, std::size_t n) {
  constexpr std::size_t W = simd_width;
  if (n == 0 || std::isnan(x[0])) return 0;
  fbatch m0(x[0]), m1(x[0]);  // never NaN: a lane takes v only where v > it
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const fbatch a = load(x + i), b = load(x + i + W);
    m0 = xsimd::select(a > m0, a, m0);
    m1 = xsimd::select(b > m1, b, m1);
  }
  float best = reduce_max(xsimd::select(m1 > m0, m1, m0));
  for (std::size_t j = i; j < n; ++j) best = x[j] > best ? x[j] : best;
  const fbatch vb(best);
  std::size_t j = 0;
  for (; j + W <= n; j += W)
    if (xsimd::any(load(x + j) == vb)) break;
  for (; j < n; ++j)
    if (x[j] == best) return j;
  return 0;  // not reached: best is one of x
}

// y[0:n] += x[0:n]
inline void add(float* y, const float* x, std::size_t n) {
  constexpr std::size_t W = simd_width;
  std::size_t i = 0;
  for (; i + W <= n; i += W) store(y + i, load(y + i) + load(x + i));
  for (; i < n; ++i) y[i] += x[i];
}

}  // namespace tinyllm::kernels::simd
