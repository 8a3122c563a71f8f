// safetensors reader: maps a file, validates its header (sizes, dtypes, offsets) and hands out tensor
// views into the mapping. Also reads a sharded folder (model.safetensors.index.json).
// Depends on error.hpp, io/json.hpp, io/mapped_file.hpp; knows nothing about GPT-2.
#pragma once

#include <algorithm>      // std::sort
#include <cstddef>        // std::size_t
#include <cstdint>        // std::uint64_t, std::int64_t
#include <cstring>        // std::memcpy
#include <map>            // std::map
#include <memory>         // std::shared_ptr
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

#include "../error.hpp"
#include "json.hpp"
#include "mapped_file.hpp"

namespace tinyllm {

// Element types that a safetensors header may name. tinyllm computes with F32; F16 and BF16 load too.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2, U16, U32, U64 };

namespace detail {

struct DTypeInfo {
  const char* name;
  DType dtype;
  std::size_t size;
};
inline constexpr DTypeInfo dtype_table[] = {
    {"F64", DType::F64, 8},   {"F32", DType::F32, 4},         {"F16", DType::F16, 2},
    {"BF16", DType::BF16, 2}, {"I64", DType::I64, 8},         {"I32", DType::I32, 4},
    {"I16", DType::I16, 2},   {"I8", DType::I8, 1},           {"U8", DType::U8, 1},
    {"BOOL", DType::BOOL, 1}, {"F8_E4M3", DType::F8_E4M3, 1}, {"F8_E5M2", DType::F8_E5M2, 1},
    {"U16", DType::U16, 2},   {"U32", DType::U32, 4},         {"U64", DType::U64, 8},
};

}  // namespace detail

inline const char* dtype_name(DType t) {
  for (const auto& d : detail::dtype_table)
    if (d.dtype == t) return d.name;
  return "?";
}

// A tensor inside a mapped file: nothing is copied.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;  // into the mapping
  std::size_t nbytes = 0;
  const std::string* file = nullptr;   // the file it came from, for messages

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// One .safetensors file. Construction validates the whole header, so every later view is in bounds.
class SafetensorsFile {
 public:
  // The spec caps the header at 100 MB; anything larger is a corrupt or hostile file.
  static constexpr std::uint64_t max_header_bytes = 100u << 20;
  // Tensors in one file: GPT-2 XL saved as Q8 has about 900; more than 65536 is a hostile header.
  static constexpr std::size_t max_tensors = std::size_t(1) << 16;

  explicit SafetensorsFile(const std::string& path) : file_(path) { parse(); }

  const std::string& path() const { return file_.path(); }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorView* find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }

 private:
  void parse() {
    const std::string& path = file_.path();
    const std::uint8_t* base = file_.data();
    const std::uint64_t size = file_.size();
    if (size < 8) detail::fail(path, "file is " + std::to_string(size) + " bytes, too small for a safetensors header");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];  // little-endian u64
    if (n > max_header_bytes)
      detail::fail(path, "header length " + std::to_string(n) + " is absurdly large (limit " +
                             std::to_string(max_header_bytes) + " bytes): not a safetensors file?");
    if (n > size - 8)
      detail::fail(path, "header length " + std::to_string(n) + " runs past the end of the file (" +
                             std::to_string(size) + " bytes): truncated or not a safetensors file");
    const std::string header(reinterpret_cast<const char*>(base + 8), static_cast<std::size_t>(n));
    const detail::json j = detail::parse_json(header, path + " (header)");
    if (!j.is_object()) detail::fail(path, "header is not a JSON object");
    const std::size_t count = j.size() - (j.contains("__metadata__") ? 1 : 0);
    if (count > max_tensors)
      detail::fail(path, "header lists " + std::to_string(count) + " tensors, more than max_tensors (" +
                             std::to_string(max_tensors) + ")");

    const std::uint8_t* data = base + 8 + n;
    const std::uint64_t data_size = size - 8 - n;
    struct Range {
      std::uint64_t begin, end;
      const std::string* name;
    };
    std::vector<Range> ranges;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      if (name == "__metadata__") {
        if (it->is_object())
          for (auto m = it->begin(); m != it->end(); ++m)
            if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
        continue;
      }
      const std::string where = path + ": tensor " + name;
      const detail::json& t = *it;
      if (!t.is_object()) detail::fail(where, "entry is not an object");
      if (!t.contains("dtype") || !t["dtype"].is_string()) detail::fail(where, "missing or non-string 'dtype'");
      const std::string dt = t["dtype"].get<std::string>();
      const detail::DTypeInfo* info = nullptr;
      for (const auto& d : detail::dtype_table)
        if (dt == d.name) info = &d;
      if (!info) detail::fail(where, "unknown dtype '" + dt + "'");

      if (!t.contains("shape") || !t["shape"].is_array()) detail::fail(where, "missing 'shape' array");
      TensorView v;
      v.name = name;
      v.dtype = info->dtype;
      std::uint64_t numel = 1;
      bool overflow = false;
      for (const auto& d : t["shape"]) {
        if (!d.is_number_unsigned()) detail::fail(where, "shape " + t["shape"].dump() + " has a non-integer or negative dimension");
        const std::uint64_t dim = d.get<std::uint64_t>();
        if (dim > (std::uint64_t(1) << 40)) overflow = true;
        v.shape.push_back(static_cast<std::int64_t>(dim));
        if (dim && numel > (std::uint64_t(1) << 62) / dim) overflow = true;
        numel *= dim;
      }
      if (overflow) detail::fail(where, "shape " + t["shape"].dump() + " is too large");
      if (!t.contains("data_offsets") || !t["data_offsets"].is_array() || t["data_offsets"].size() != 2 ||
          !t["data_offsets"][0].is_number_unsigned() || !t["data_offsets"][1].is_number_unsigned())
        detail::fail(where, "'data_offsets' must be [begin, end] with non-negative integers");
      const std::uint64_t b = t["data_offsets"][0].get<std::uint64_t>();
      const std::uint64_t e = t["data_offsets"][1].get<std::uint64_t>();
      if (b > e) detail::fail(where, "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] end before they begin");
      if (e > data_size)
        detail::fail(where, "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                                "] run past the end of the data (" + std::to_string(data_size) + " bytes)");
      const std::uint64_t expected = numel * info->size;
      if (e - b != expected)
        detail::fail(where, "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] hold " +
                                std::to_string(e - b) + " bytes, but shape " + shape_string(v.shape) + " of " + dt +
                                " needs " + std::to_string(expected));
      v.data = data + b;
      v.nbytes = static_cast<std::size_t>(e - b);
      v.file = &file_.path();
      const auto pos = tensors_.emplace(name, std::move(v)).first;  // JSON object keys are unique after parsing
      ranges.push_back({b, e, &pos->first});
    }
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    const Range* furthest = nullptr;  // the non-empty range that ends last so far
    for (const Range& r : ranges) {
      if (r.begin == r.end) continue;
      if (furthest && r.begin < furthest->end)
        detail::fail(path, "tensors " + *furthest->name + " and " + *r.name + " overlap in the data");
      if (!furthest || r.end > furthest->end) furthest = &r;
    }
  }

  detail::MappedFile file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model folder: model.safetensors, or the shards that model.safetensors.index.json lists.
class SafetensorsArchive {
 public:
  explicit SafetensorsArchive(const std::string& dir);

  // The tensor called `name`, or nullptr.
  const TensorView* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : it->second;
  }
  const std::string& source() const { return source_; }  // file named in "missing tensor" messages
  std::vector<const TensorView*> all() const {
    std::vector<const TensorView*> out;
    for (const auto& f : files_)
      for (const auto& kv : f->tensors()) out.push_back(&kv.second);
    return out;
  }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const TensorView*> index_;
  std::string source_;
};

inline SafetensorsArchive::SafetensorsArchive(const std::string& dir) {
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  if (detail::file_exists(single)) {
    source_ = single;
    files_.push_back(std::make_unique<SafetensorsFile>(single));
  } else if (detail::file_exists(index)) {
    source_ = index;
    const detail::json j = detail::parse_json(detail::read_text_file(index), index);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      detail::fail(index, "missing 'weight_map' object");
    std::map<std::string, SafetensorsFile*> shards;
    std::vector<std::pair<std::string, std::string>> wanted;  // tensor -> shard
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it->is_string()) detail::fail(index, "weight_map entry '" + it.key() + "' is not a file name");
      const std::string shard = it->get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
          shard == "." || shard == "..")
        detail::fail(index, "weight_map entry '" + it.key() + "' names '" + shard + "', not a file in the folder");
      if (!shards.count(shard)) {
        files_.push_back(std::make_unique<SafetensorsFile>(dir + "/" + shard));
        shards[shard] = files_.back().get();
      }
      wanted.emplace_back(it.key(), shard);
    }
    for (const auto& [name, shard] : wanted) {
      const TensorView* v = shards[shard]->find(name);
      if (!v) detail::fail(dir + "/" + shard, "tensor " + name + " listed in model.safetensors.index.json is not in this shard");
      index_[name] = v;
    }
    return;
  } else if (detail::file_exists(dir + "/pytorch_model.bin")) {
    detail::fail(dir, "has only pytorch_model.bin, a Python pickle that tinyllm will not load (unpickling runs code); "
                      "download model.safetensors from the same Hugging Face repository instead "
                      "(scripts/download-model.sh does)");
  } else {
    detail::fail(dir, "no model.safetensors or model.safetensors.index.json here (is this a Hugging Face GPT-2 folder?)");
  }
  for (const auto& kv : files_.front()->tensors()) index_[kv.first] = &kv.second;
}

}  // namespace tinyllm
