// Loads GPT-2 weights from a Hugging Face folder: maps the safetensors file(s), checks every tensor of
// for_each_tensor by name, shape and dtype, and points into the mapping (no copy) wherever the stored
// type is what is asked for: F32, F16, BF16 matrices, or Q8 ones stored by `tinyllm quantize` (an I8
// tensor with an F32 "<name>_scale" tensor beside it). Other matrices are converted into owned
// buffers; vectors are F32. Depends on io/, model/weights.hpp, model/quantize.hpp, detail/.
#pragma once

#include <cstdint>  // std::uint16_t
#include <cstring>  // std::memcpy, std::memchr
#include <type_traits>  // std::is_same_v
#include <memory>   // std::unique_ptr
#include <optional> // std::optional
#include <string>   // std::string
#include <deque>    // std::deque
#include <utility>  // std::pair
#include <vector>   // std::vector

#include "../config.hpp"
#include "../detail/aligned.hpp"
#include "../detail/half.hpp"
#include "../error.hpp"
#include "../io/safetensors.hpp"
#include "quantize.hpp"
#include "weights.hpp"

namespace tinyllm::detail {

// The weights plus everything they point into.
struct WeightStore {
  std::unique_ptr<SafetensorsArchive> archive;  // mapped files: F32 tensors point here
  std::deque<AlignedBuffer> owned;              // converted vectors (deque: references stay valid)
  AlignedBuffer converted;                      // converted matrices, one after another
  GPT2Weights w;
  std::size_t mapped_tensors = 0, converted_tensors = 0;  // used in place from the mapping / copied
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

// The shapes of a Q8 matrix's two tensors in a file written by save_pretrained: q and <name>_scale.
// (A file may also hold an I32 <name>_qsum per matrix, as early builds of tinyllm 0.1 wrote: it is
// ignored.)
inline std::vector<std::vector<std::int64_t>> q8_shapes(const WeightView& w) {
  const auto kp = static_cast<std::int64_t>(w.k_pad()), op = static_cast<std::int64_t>(w.o_pad());
  const auto g = static_cast<std::int64_t>(q8_group), b = static_cast<std::int64_t>(q8_block);
  return {{kp / g, op, g}, {kp / b, op}};
}

// The matrix `spec` as stored in `v`: a view into the mapping, or (F64, misaligned) an owned F32 copy.
inline WeightView stored_matrix(const SafetensorsArchive& archive, const TensorSpec& spec, const TensorView& v,
                                WeightStore& store) {
  WeightView w;
  w.rows = static_cast<std::size_t>(spec.shape[0]);
  w.cols = static_cast<std::size_t>(spec.shape[1]);
  w.outputs_are_rows = spec.head;
  w.data = v.data;
  const auto addr = reinterpret_cast<std::uintptr_t>(v.data);
  if (v.dtype == DType::I8) {  // Q8 from save_pretrained: q, <name>_scale
    const auto shapes = q8_shapes(w);
    const TensorView* s = archive.find(v.name + "_scale");
    if (v.shape != shapes[0])
      fail(*v.file, "Q8 tensor " + v.name + " has shape " + shape_string(v.shape) + ", expected " + shape_string(shapes[0]));
    if (!s || s->dtype != DType::F32 || s->shape != shapes[1])
      fail(*v.file, "Q8 tensor " + v.name + " needs an F32 " + v.name + "_scale of shape " + shape_string(shapes[1]));
    if (reinterpret_cast<std::uintptr_t>(s->data) % 4)
      fail(*v.file, "tensor " + s->name + " must be 4-byte aligned");
    // The kernels negate weights (see kernels/q8.hpp): -128, which quantizing never gives, would not be.
    if (const void* bad = std::memchr(v.data, 0x80, w.k_pad() * w.o_pad()))
      fail(*v.file, "Q8 tensor " + v.name + " holds -128 at byte " +
                        std::to_string(static_cast<const std::uint8_t*>(bad) - v.data) +
                        "; Q8 weights are in [-127, 127]");
    w.type = WeightType::Q8;
    w.scale = reinterpret_cast<const float*>(s->data);
    ++store.mapped_tensors;
    return w;
  }
  if (v.shape != spec.shape)
    fail(*v.file, "tensor " + v.name + " has shape " + shape_string(v.shape) + ", expected " +
                      shape_string(spec.shape) + " (from config.json)");
  if ((v.dtype == DType::F16 || v.dtype == DType::BF16) && addr % 2 == 0) {
    w.type = v.dtype == DType::F16 ? WeightType::F16 : WeightType::BF16;
    ++store.mapped_tensors;
    return w;
  }
  w.type = WeightType::F32;
  w.data = tensor_as_f32(v, store);  // F32 in place, or F64 / misaligned / F16 at an odd address copied
  return w;
}

// Loads every tensor of for_each_tensor. `type`: the WeightType to compute matrices in; empty keeps
// each matrix as stored. Matrices converted to `type` go into one buffer, one after another in
// checkpoint order (64-byte aligned each): it is in 2 MB pages from end to end, where a buffer per
// matrix would leave the smaller ones (and each one's last part of 2 MB) in 4 KB pages, which
// decoding reads more slowly.
inline void load_weights(const std::string& dir, const GPT2Config& config, WeightStore& store,
                         std::optional<WeightType> type = std::nullopt) {
  store.archive = std::make_unique<SafetensorsArchive>(dir);
  const SafetensorsArchive& archive = *store.archive;
  std::vector<std::pair<WeightView*, WeightView>> to_convert;  // slot, its matrix as stored
  for_each_tensor(config, store.w, [&](const TensorSpec& spec, auto& slot) {
    const TensorView* v = find_tensor(archive, spec.name);
    if (!v) {
      if (spec.optional) return;
      fail(archive.source(), "missing tensor " + spec.name + " (expected shape " + shape_string(spec.shape) +
                                 " for this config.json)");
    }
    if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, WeightView>) {
      slot = stored_matrix(archive, spec, *v, store);
      if (type && slot.type != *type) to_convert.emplace_back(&slot, slot);
    } else {
      if (v->shape != spec.shape)
        fail(*v->file, "tensor " + v->name + " has shape " + shape_string(v->shape) + ", expected " +
                           shape_string(spec.shape) + " (from config.json)");
      slot = tensor_as_f32(*v, store);
    }
  });
  auto whole_lines = [](std::size_t floats) { return (floats + 15) / 16 * 16; };
  std::size_t total = 0;
  for (const auto& [slot, stored] : to_convert) {
    const ConvertedSize size = converted_size(stored, *type);
    total += whole_lines(size.data) + whole_lines(size.scale);
  }
  if (total) store.converted.resize(total);
  float* next = store.converted.data();
  for (const auto& [slot, stored] : to_convert) {
    const ConvertedSize size = converted_size(stored, *type);
    float* data = next;
    float* scale = data + whole_lines(size.data);
    next = scale + whole_lines(size.scale);
    *slot = convert_matrix(stored, *type, data, scale);
    ++store.converted_tensors;
  }
  if (!store.w.lm_head.data) store.w.lm_head = store.w.wte;  // tied head
  set_linear_shapes(config, store.w);
}

}  // namespace tinyllm::detail
