// The kernel tier in one include. `kernels::impl` is what layers call: the xsimd kernels, or their
// scalar twins when TINYLLM_NO_SIMD is defined. Kernels take pointers, sizes, strides and ranges,
// never a config or a model type, and never include layers/ or model/.
#pragma once

#include "reference.hpp"

#include "amx.hpp"       // opt-in bf16 tiles for prompts
#include "bf16_dot.hpp"  // opt-in bf16 dot products for prompts

#ifndef TINYLLM_NO_SIMD
#include "elementwise.hpp"
#include "gemm.hpp"
#include "gemv.hpp"
#endif

namespace tinyllm::kernels {
#ifdef TINYLLM_NO_SIMD
namespace impl = scalar;
#else
namespace impl = simd;
#endif
}  // namespace tinyllm::kernels
