// The semantic index's file: one safetensors file that loads memory-mapped. Tensors:
//
//   chunk_document    I64 [rows]          the document each chunk (row) comes from
//   chunk_span        I64 [rows, 2]       the chunk's bytes [begin, end) in its document's text
//   document_offsets  I64 [documents + 1] document d's text is document_text[offsets[d], offsets[d + 1])
//   name_offsets      I64 [documents + 1] likewise its name in document_names
//   vectors           F32 [rows, dim]     the searched vectors: standardised (if so built), unit length
//   mean, std         F32 [dim]           the standardisation's statistics (center: mean only)
//   document_text     U8                  the documents' texts, one after another
//   document_names    U8                  their names (file paths, ids), one after another
//   hnsw              U8                  hnswlib's graph over the vectors (only if built)
//
// and __metadata__ {"format": "tinyllm.semantic_index", "tinyllm.index": "<JSON>"}, the JSON giving
// the version, dim, rows, documents, the model (folder, fingerprint, n_embd), the embedding options,
// the standardisation and the chunking. The header is padded so that the vectors start on a 64-byte
// boundary. Reading checks everything that later code indexes by (offsets, spans, documents, shapes)
// and throws Error naming the file and the problem. Depends on io/ and error.hpp.
#pragma once

#include <cstddef>   // std::size_t
#include <cstdint>   // std::int64_t, std::uint8_t, std::uint64_t, std::uintptr_t
#include <cstdio>    // std::rename, std::remove
#include <cstring>   // std::memcpy
#include <fstream>   // std::ofstream
#include <map>       // std::map
#include <memory>    // std::shared_ptr
#include <string>    // std::string
#include <vector>    // std::vector

#include "../error.hpp"
#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "../io/safetensors_writer.hpp"  // TensorToWrite

namespace tinyllm::detail {

inline constexpr const char* index_format = "tinyllm.semantic_index";
inline constexpr int index_version = 1;

// An index's arrays: views into a mapped file or into the owned buffers below.
struct IndexArrays {
  std::size_t dim = 0, rows = 0, documents = 0;
  const float* vectors = nullptr;               // [rows, dim]
  const float* mean = nullptr;                  // [dim] or null
  const float* std = nullptr;                   // [dim] or null
  const std::int64_t* chunk_document = nullptr; // [rows]
  const std::int64_t* chunk_span = nullptr;     // [rows, 2]
  const std::int64_t* document_offsets = nullptr;  // [documents + 1]
  const std::int64_t* name_offsets = nullptr;      // [documents + 1]
  const char* text = nullptr;
  const char* names = nullptr;
  const std::uint8_t* hnsw = nullptr;
  std::size_t hnsw_bytes = 0;
};

// Owned arrays (an index being built, or a loaded one being changed), and views() of them.
struct IndexBuffers {
  std::size_t dim = 0;
  std::vector<float> vectors, mean, std;
  std::vector<std::int64_t> chunk_document, chunk_span, document_offsets{0}, name_offsets{0};
  std::string text, names;
  std::vector<std::uint8_t> hnsw;

  IndexArrays views() const {
    IndexArrays a;
    a.dim = dim;
    a.rows = chunk_document.size();
    a.documents = document_offsets.size() - 1;
    a.vectors = vectors.data();
    a.mean = mean.empty() ? nullptr : mean.data();
    a.std = std.empty() ? nullptr : std.data();
    a.chunk_document = chunk_document.data();
    a.chunk_span = chunk_span.data();
    a.document_offsets = document_offsets.data();
    a.name_offsets = name_offsets.data();
    a.text = text.data();
    a.names = names.data();
    a.hnsw = hnsw.empty() ? nullptr : hnsw.data();
    a.hnsw_bytes = hnsw.size();
    return a;
  }
  // A copy of what `a` views.
  static IndexBuffers copy_of(const IndexArrays& a) {
    IndexBuffers b;
    b.dim = a.dim;
    b.vectors.assign(a.vectors, a.vectors + a.rows * a.dim);
    if (a.mean) b.mean.assign(a.mean, a.mean + a.dim);
    if (a.std) b.std.assign(a.std, a.std + a.dim);
    b.chunk_document.assign(a.chunk_document, a.chunk_document + a.rows);
    b.chunk_span.assign(a.chunk_span, a.chunk_span + 2 * a.rows);
    b.document_offsets.assign(a.document_offsets, a.document_offsets + a.documents + 1);
    b.name_offsets.assign(a.name_offsets, a.name_offsets + a.documents + 1);
    b.text.assign(a.text, static_cast<std::size_t>(a.document_offsets[a.documents]));
    b.names.assign(a.names, static_cast<std::size_t>(a.name_offsets[a.documents]));
    if (a.hnsw) b.hnsw.assign(a.hnsw, a.hnsw + a.hnsw_bytes);
    return b;
  }
};

// Writes `a` and the metadata JSON to `path` (through a temporary file renamed over it).
inline void write_index(const std::string& path, const IndexArrays& a, const json& meta) {
  const std::int64_t rows = static_cast<std::int64_t>(a.rows), dim = static_cast<std::int64_t>(a.dim);
  const std::int64_t docs = static_cast<std::int64_t>(a.documents);
  const std::size_t text_bytes = static_cast<std::size_t>(a.document_offsets[a.documents]);
  const std::size_t name_bytes = static_cast<std::size_t>(a.name_offsets[a.documents]);
  std::vector<TensorToWrite> t = {
      {"chunk_document", DType::I64, {rows}, a.chunk_document, a.rows * 8},
      {"chunk_span", DType::I64, {rows, 2}, a.chunk_span, a.rows * 16},
      {"document_offsets", DType::I64, {docs + 1}, a.document_offsets, (a.documents + 1) * 8},
      {"name_offsets", DType::I64, {docs + 1}, a.name_offsets, (a.documents + 1) * 8},
      {"vectors", DType::F32, {rows, dim}, a.vectors, a.rows * a.dim * 4},
  };
  std::size_t before_vectors = 0;
  for (const auto& x : t)
    if (x.dtype == DType::I64) before_vectors += x.nbytes;
  if (a.mean) t.push_back({"mean", DType::F32, {dim}, a.mean, a.dim * 4});
  if (a.std) t.push_back({"std", DType::F32, {dim}, a.std, a.dim * 4});
  t.push_back({"document_text", DType::U8, {static_cast<std::int64_t>(text_bytes)}, a.text, text_bytes});
  t.push_back({"document_names", DType::U8, {static_cast<std::int64_t>(name_bytes)}, a.names, name_bytes});
  if (a.hnsw) t.push_back({"hnsw", DType::U8, {static_cast<std::int64_t>(a.hnsw_bytes)}, a.hnsw, a.hnsw_bytes});

  json header = json::object();
  header["__metadata__"] = {{"format", index_format}, {"tinyllm.index", meta.dump()}};
  std::uint64_t offset = 0;
  for (const auto& x : t) {
    header[x.name] = {{"dtype", dtype_name(x.dtype)}, {"shape", x.shape}, {"data_offsets", {offset, offset + x.nbytes}}};
    offset += x.nbytes;
  }
  std::string h = header.dump();
  while ((8 + h.size() + before_vectors) % 64) h += ' ';  // the vectors on a 64-byte boundary
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(path, "cannot create the file");
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(h.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& x : t) out.write(static_cast<const char*>(x.data), static_cast<std::streamsize>(x.nbytes));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      fail(path, "write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, "cannot replace the file");
  }
}

// A loaded index file: the mapping, the metadata, and checked views into it.
struct IndexFile {
  std::shared_ptr<const SafetensorsFile> file;
  json meta;
  IndexArrays arrays;
  IndexBuffers copied;  // arrays that were not aligned in the file (a file written by another tool)
};

namespace index_file {

inline const TensorView& tensor(const SafetensorsFile& f, const std::string& name, DType dtype,
                                const std::vector<std::int64_t>& shape, bool any_length = false) {
  const TensorView* t = f.find(name);
  if (!t) fail(f.path(), "missing tensor " + name + " (not a tinyllm index, or a damaged one)");
  if (t->dtype != dtype)
    fail(f.path(), "tensor " + name + " has dtype " + dtype_name(t->dtype) + ", expected " + dtype_name(dtype));
  if (!any_length && t->shape != shape)
    fail(f.path(), "tensor " + name + " has shape " + shape_string(t->shape) + ", expected " + shape_string(shape));
  if (any_length && t->shape.size() != 1)
    fail(f.path(), "tensor " + name + " has shape " + shape_string(t->shape) + ", expected one dimension");
  return *t;
}

// A typed view of t's data, or of a copy in `owned` when the file does not align it for T.
template <class T>
const T* typed(const TensorView& t, std::vector<T>& owned) {
  if (reinterpret_cast<std::uintptr_t>(t.data) % alignof(T) == 0) return reinterpret_cast<const T*>(t.data);
  owned.resize(t.nbytes / sizeof(T));
  std::memcpy(owned.data(), t.data, t.nbytes);
  return owned.data();
}

// offsets[0..n] start at 0, never decrease and end at `bytes`.
inline void check_offsets(const std::string& path, const char* name, const std::int64_t* o, std::size_t n,
                          std::size_t bytes) {
  if (o[0] != 0) fail(path, std::string("tensor ") + name + " starts at " + std::to_string(o[0]) + ", not 0");
  for (std::size_t i = 0; i < n; ++i)
    if (o[i + 1] < o[i])
      fail(path, std::string("tensor ") + name + " decreases at entry " + std::to_string(i + 1) + " (" +
                     std::to_string(o[i]) + " -> " + std::to_string(o[i + 1]) + ")");
  if (static_cast<std::uint64_t>(o[n]) != bytes)
    fail(path, std::string("tensor ") + name + " ends at " + std::to_string(o[n]) + ", but its text holds " +
                   std::to_string(bytes) + " bytes");
}

}  // namespace index_file

inline IndexFile read_index(const std::string& path) {
  using namespace index_file;
  IndexFile r;
  auto f = std::make_shared<SafetensorsFile>(path);
  r.file = f;
  const auto& md = f->metadata();
  auto format = md.find("format");
  auto info = md.find("tinyllm.index");
  if (format == md.end() || format->second != index_format || info == md.end())
    fail(path, "not a tinyllm semantic index (its __metadata__ has no format \"tinyllm.semantic_index\" and tinyllm.index)");
  r.meta = parse_json(info->second, path + " (__metadata__ tinyllm.index)");
  const std::string where = path + " (__metadata__ tinyllm.index)";
  if (!r.meta.is_object()) fail(where, "is not a JSON object");
  const std::int64_t version = json_int(r.meta, "version", where, 1, 1 << 20);
  if (version != index_version)
    fail(path, "is an index of format version " + std::to_string(version) + "; this tinyllm reads version " +
                   std::to_string(index_version));
  IndexArrays& a = r.arrays;
  a.dim = static_cast<std::size_t>(json_int(r.meta, "dim", where, 1, 1 << 20));
  a.rows = static_cast<std::size_t>(json_int(r.meta, "rows", where, 0, std::int64_t(1) << 40));
  a.documents = static_cast<std::size_t>(json_int(r.meta, "documents", where, 0, std::int64_t(1) << 40));
  const auto R = static_cast<std::int64_t>(a.rows), D = static_cast<std::int64_t>(a.documents);
  const auto d = static_cast<std::int64_t>(a.dim);
  IndexBuffers& own = r.copied;
  a.vectors = typed(tensor(*f, "vectors", DType::F32, {R, d}), own.vectors);
  a.chunk_document = typed(tensor(*f, "chunk_document", DType::I64, {R}), own.chunk_document);
  a.chunk_span = typed(tensor(*f, "chunk_span", DType::I64, {R, 2}), own.chunk_span);
  a.document_offsets = typed(tensor(*f, "document_offsets", DType::I64, {D + 1}), own.document_offsets);
  a.name_offsets = typed(tensor(*f, "name_offsets", DType::I64, {D + 1}), own.name_offsets);
  const TensorView& text = tensor(*f, "document_text", DType::U8, {}, true);
  const TensorView& names = tensor(*f, "document_names", DType::U8, {}, true);
  a.text = reinterpret_cast<const char*>(text.data);
  a.names = reinterpret_cast<const char*>(names.data);
  const std::string standardization = json_string(r.meta, "standardization", where, "");
  if (standardization != "none" && standardization != "center" && standardization != "standardize")
    fail(where, "field 'standardization' is \"" + standardization + "\", not one of none, center, standardize");
  if (standardization != "none") a.mean = typed(tensor(*f, "mean", DType::F32, {d}), own.mean);
  if (standardization == "standardize") a.std = typed(tensor(*f, "std", DType::F32, {d}), own.std);
  if (const TensorView* g = f->find("hnsw")) {
    a.hnsw = tensor(*f, "hnsw", DType::U8, {}, true).data;
    a.hnsw_bytes = g->nbytes;
  }
  check_offsets(path, "document_offsets", a.document_offsets, a.documents, text.nbytes);
  check_offsets(path, "name_offsets", a.name_offsets, a.documents, names.nbytes);
  for (std::size_t i = 0; i < a.rows; ++i) {
    const std::int64_t doc = a.chunk_document[i], b = a.chunk_span[2 * i], e = a.chunk_span[2 * i + 1];
    if (doc < 0 || doc >= D)
      fail(path, "chunk " + std::to_string(i) + " names document " + std::to_string(doc) + ", but the index has " +
                     std::to_string(D));
    const std::int64_t length = a.document_offsets[doc + 1] - a.document_offsets[doc];
    if (b < 0 || b > e || e > length)
      fail(path, "chunk " + std::to_string(i) + " spans bytes [" + std::to_string(b) + ", " + std::to_string(e) +
                     ") of document " + std::to_string(doc) + ", which has " + std::to_string(length));
  }
  return r;
}

}  // namespace tinyllm::detail
