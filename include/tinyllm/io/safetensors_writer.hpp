// Writes a safetensors file: an 8-byte little-endian header length, the JSON header (padded to 8
// bytes), then the tensors' bytes in order. Depends on error.hpp, io/json.hpp, io/safetensors.hpp (DType).
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint64_t, std::int64_t
#include <fstream>  // std::ofstream
#include <map>      // std::map
#include <string>   // std::string
#include <vector>   // std::vector

#include "../error.hpp"
#include "json.hpp"
#include "safetensors.hpp"

namespace tinyllm::detail {

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  const void* data;
  std::size_t nbytes;
};

inline void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, "cannot create");
  const std::uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : tensors) out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes));
  out.flush();
  if (!out) fail(path, "write failed (disk full?)");
}

}  // namespace tinyllm::detail
