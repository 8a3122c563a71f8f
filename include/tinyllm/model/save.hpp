// Saves a loaded GPT-2 as a Hugging Face folder whose matrices are in one WeightType, so that it
// loads memory-mapped with no conversion: F32 / F16 / BF16 as ordinary safetensors dtypes, Q8 as its
// packed I8 tensor plus "<name>_scale" (F32), see WeightView. Vectors stay F32. The
// config, tokenizer and generation files are copied. Depends on model/, io/.
#pragma once

#include <cstdint>     // std::int64_t
#include <deque>       // std::deque
#include <type_traits> // std::is_same_v
#include <filesystem>  // std::filesystem
#include <map>         // std::map
#include <string>      // std::string
#include <vector>      // std::vector

#include "../config.hpp"
#include "../io/safetensors_writer.hpp"
#include "../version.hpp"
#include "../weight_type.hpp"
#include "loader.hpp"    // q8_shapes
#include "quantize.hpp"
#include "weights.hpp"

namespace tinyllm::detail {

// Writes out_dir/model.safetensors from `w` (matrices converted to `type`) and copies the other
// files of the model folder `src_dir` (config.json, tokenizer and generation files).
inline void save_pretrained(const GPT2Config& config, const GPT2Weights& weights, WeightType type,
                            const std::string& src_dir, const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(out_dir, "cannot create folder: " + ec.message());
  if (fs::equivalent(src_dir, out_dir, ec)) fail(out_dir, "is the source folder; choose another output folder");

  std::deque<MatrixBuffers> keep;  // converted data, alive until the file is written
  std::vector<TensorToWrite> out;
  GPT2Weights w = weights;
  for_each_tensor(config, w, [&](const TensorSpec& spec, auto& slot) {
    if constexpr (std::is_same_v<std::decay_t<decltype(slot)>, WeightView>) {
      if (!slot.data || (spec.optional && slot.data == w.wte.data)) return;  // tied head: not written
      WeightView v = slot;
      if (v.type != type) {
        keep.emplace_back();
        v = convert_matrix(slot, type, keep.back());
      }
      const std::int64_t rows = static_cast<std::int64_t>(v.rows), cols = static_cast<std::int64_t>(v.cols);
      const std::size_t n = v.rows * v.cols;
      switch (type) {
        case WeightType::F32: out.push_back({spec.name, DType::F32, {rows, cols}, v.data, n * 4}); break;
        case WeightType::F16: out.push_back({spec.name, DType::F16, {rows, cols}, v.data, n * 2}); break;
        case WeightType::BF16: out.push_back({spec.name, DType::BF16, {rows, cols}, v.data, n * 2}); break;
        case WeightType::Q8: {
          const auto shapes = q8_shapes(v);
          const std::size_t blocks = v.k_blocks() * v.o_pad();
          out.push_back({spec.name, DType::I8, shapes[0], v.data, v.k_pad() * v.o_pad()});
          out.push_back({spec.name + "_scale", DType::F32, shapes[1], v.scale, blocks * 4});
          break;
        }
      }
    } else {
      std::size_t n = 1;
      for (auto d : spec.shape) n *= static_cast<std::size_t>(d);
      out.push_back({spec.name, DType::F32, spec.shape, slot, n * 4});
    }
  });
  write_safetensors(out_dir + "/model.safetensors", out,
                    {{"format", "pt"}, {"tinyllm.weight_type", weight_type_name(type)}, {"tinyllm.q8_layout", "k4-o32-v1"},
                     {"tinyllm.version", version_string}});
  for (const char* f : {"config.json", "vocab.json", "merges.txt", "tokenizer.json", "generation_config.json",
                        "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path from = fs::path(src_dir) / f;
    if (fs::exists(from)) {
      fs::copy_file(from, fs::path(out_dir) / f, fs::copy_options::overwrite_existing, ec);
      if (ec) fail((fs::path(out_dir) / f).string(), "cannot copy: " + ec.message());
    }
  }
}

}  // namespace tinyllm::detail
