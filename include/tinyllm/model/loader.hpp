// Loads GPT-2 weights from a Hugging Face folder: maps the safetensors file(s), checks every tensor of
// for_each_tensor by name, shape and dtype, points F32 tensors into the mapping (no copy) and widens
// F16 / BF16 into owned buffers. Depends on io/, model/weights.hpp, detail/.
#pragma once

#include <cstdint>  // std::uint16_t
#include <cstring>  // std::memcpy
#include <memory>   // std::unique_ptr
#include <string>   // std::string
#include <vector>   // std::vector

#include "../config.hpp"
#include "../detail/aligned.hpp"
#include "../detail/half.hpp"
#include "../error.hpp"
#include "../io/safetensors.hpp"
#include "weights.hpp"

namespace tinyllm::detail {

// The weights plus everything they point into.
struct WeightStore {
  std::unique_ptr<SafetensorsArchive> archive;  // mapped files: F32 tensors point here
  std::vector<AlignedBuffer> owned;             // widened F16/BF16/F64 tensors (heap pointers are stable)
  GPT2Weights w;
  std::size_t mapped_tensors = 0, converted_tensors = 0;
};

// The tensor `name` with or without the "transformer." prefix.
inline const TensorView* find_tensor(const SafetensorsArchive& a, const std::string& name) {
  if (const TensorView* v = a.find(name)) return v;
  return a.find("transformer." + name);
}

// A float pointer for `v`: into the mapping when it is aligned F32, else an owned F32 copy.
inline const float* tensor_as_f32(const TensorView& v, WeightStore& store) {
  const std::size_t n = static_cast<std::size_t>(v.numel());
  if (v.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(v.data) % alignof(float) == 0) {
    ++store.mapped_tensors;
    return reinterpret_cast<const float*>(v.data);
  }
  AlignedBuffer buf(n ? n : 1);
  float* dst = buf.data();
  switch (v.dtype) {
    case DType::F32:
      std::memcpy(dst, v.data, n * sizeof(float));
      break;
    case DType::F16:
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, v.data + 2 * i, 2);
        dst[i] = v.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      break;
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, v.data + 8 * i, 8);
        dst[i] = static_cast<float>(d);
      }
      break;
    default:
      fail(*v.file, "tensor " + v.name + " has dtype " + dtype_name(v.dtype) +
                        "; tinyllm loads F32, F16, BF16 (and F64) weights");
  }
  ++store.converted_tensors;
  store.owned.push_back(std::move(buf));
  return store.owned.back().data();
}

inline void load_weights(const std::string& dir, const GPT2Config& config, WeightStore& store) {
  store.archive = std::make_unique<SafetensorsArchive>(dir);
  const SafetensorsArchive& archive = *store.archive;
  for_each_tensor(config, store.w, [&](const TensorSpec& spec, const float*& slot) {
    const TensorView* v = find_tensor(archive, spec.name);
    if (!v) {
      if (spec.optional) return;
      fail(archive.source(), "missing tensor " + spec.name + " (expected shape " + shape_string(spec.shape) +
                                 " for this config.json)");
    }
    if (v->shape != spec.shape)
      fail(*v->file, "tensor " + v->name + " has shape " + shape_string(v->shape) + ", expected " +
                         shape_string(spec.shape) + " (from config.json)");
    slot = tensor_as_f32(*v, store);
  });
  if (!store.w.lm_head) store.w.lm_head = store.w.wte;  // tied head
  set_linear_shapes(config, store.w);
}

}  // namespace tinyllm::detail
