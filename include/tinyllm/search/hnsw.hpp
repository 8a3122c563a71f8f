// Approximate nearest neighbours by inner product through hnswlib (Debian: libhnswlib-dev,
// header-only), when it is installed: a HNSW graph over an index's vectors, built, searched, and
// turned into bytes and back (the index file keeps them). Optional at build time: without
// <hnswlib/hnswlib.h>, or with TINYLLM_NO_HNSWLIB defined, hnsw_available() is false and building or
// using a graph is an Error. Depends on error.hpp, search/exact.hpp (Scored), kernels/ (the distance).
#pragma once

#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint8_t, std::uint64_t
#include <cstdio>     // std::remove
#include <cstdlib>    // std::getenv
#include <cstring>    // std::memcpy
#include <exception>  // std::exception
#include <fstream>    // std::ifstream, std::ofstream
#include <iterator>   // std::istreambuf_iterator
#include <memory>     // std::unique_ptr
#include <mutex>      // std::unique_lock
#include <shared_mutex>  // std::shared_mutex, std::shared_lock
#include <string>     // std::string
#include <vector>     // std::vector

#include "../error.hpp"
#include "../kernels/similarity.hpp"  // inner_products
#include "exact.hpp"               // Scored

#if !defined(TINYLLM_NO_HNSWLIB) && defined(__has_include)
#if __has_include(<hnswlib/hnswlib.h>)
#define TINYLLM_HAS_HNSWLIB 1
#endif
#endif
#ifndef TINYLLM_HAS_HNSWLIB
#define TINYLLM_HAS_HNSWLIB 0
#endif

#if TINYLLM_HAS_HNSWLIB
// hnswlib 0.6 defines its CPU-feature functions (cpuid, AVXCapable, ...) in the header without
// `inline`, so a program with two files that include it does not link. Those functions only pick
// hnswlib's own SIMD distances, which the space below replaces with tinyllm's kernel: without
// manual vectorization hnswlib defines none of them.
#ifndef NO_MANUAL_VECTORIZATION
#define NO_MANUAL_VECTORIZATION
#define TINYLLM_UNDEF_NO_MANUAL_VECTORIZATION
#endif
#include <hnswlib/hnswlib.h>
#ifdef TINYLLM_UNDEF_NO_MANUAL_VECTORIZATION
#undef NO_MANUAL_VECTORIZATION
#undef TINYLLM_UNDEF_NO_MANUAL_VECTORIZATION
#endif
#include <unistd.h>  // mkstemp, close
#endif

namespace tinyllm {

// Whether this build can build and search HNSW graphs (hnswlib was found).
inline constexpr bool hnsw_available() { return TINYLLM_HAS_HNSWLIB != 0; }

namespace detail {

#if TINYLLM_HAS_HNSWLIB

// Inner-product space whose distance is 1 - x . y by tinyllm's inner-product kernel.
class DotSpace : public hnswlib::SpaceInterface<float> {
 public:
  explicit DotSpace(std::size_t dim) : dim_(dim) {}
  std::size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return &distance; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  static float distance(const void* a, const void* b, const void* dim) {
    const std::size_t d = *static_cast<const std::size_t*>(dim);
    float xy;  // exact search's arithmetic (one query against a one-row matrix)
    kernels::impl::inner_products(1, static_cast<const float*>(a), d, f32_matrix(static_cast<const float*>(b), 1, d),
                                  &xy, 1, d, 0, 1);
    return 1.0f - xy;
  }
  std::size_t dim_;
};

// A temporary file, removed with the object: hnswlib reads and writes graphs only by path.
struct TempPath {
  std::string path;
  TempPath() {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/tinyllm-hnsw-XXXXXX";
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) fail(pattern, "cannot create a temporary file for the HNSW graph");
    ::close(fd);
    path = pattern;
  }
  ~TempPath() { std::remove(path.c_str()); }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
};

class HnswGraph {
 public:
  // A graph over `rows` vectors of `dim` floats (row i labelled i): M links per node, ef_construction
  // candidates while inserting. Rows after the first go in on the Backend's threads.
  template <class Backend>
  static HnswGraph build(const float* vectors, std::size_t rows, std::size_t dim, std::size_t M,
                         std::size_t ef_construction) {
    HnswGraph g(dim);
    g.graph_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(g.space_.get(), rows ? rows : 1, M, ef_construction);
    if (rows == 0) return g;
    g.graph_->addPoint(vectors, 0);
    Backend::parallel_for(1, rows, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) g.graph_->addPoint(vectors + i * dim, i);
    });
    return g;
  }

  // The graph from to_bytes() (`file` names it in errors); it must be over `rows` vectors of `dim`.
  static HnswGraph from_bytes(const std::uint8_t* bytes, std::size_t n, std::size_t rows, std::size_t dim,
                              const std::string& file) {
    const std::string where = file + ": tensor hnsw";
    check_header(bytes, n, rows, dim, where);
    HnswGraph g(dim);
    TempPath tmp;
    {
      std::ofstream out(tmp.path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(n));
      if (!out) fail(tmp.path, "cannot write the HNSW graph to a temporary file");
    }
    try {
      g.graph_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(g.space_.get(), tmp.path, false, rows);
    } catch (const std::exception& e) {
      fail(where, std::string("hnswlib cannot read the graph: ") + e.what());
    }
    g.check_links(where);
    return g;
  }

  std::vector<std::uint8_t> to_bytes() const {
    TempPath tmp;
    graph_->saveIndex(tmp.path);
    std::ifstream in(tmp.path, std::ios::binary);
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  // The k rows nearest the query (largest inner product), best first, exploring max(ef, k)
  // candidates; scores are 1 - hnswlib's distance. Safe on many threads at once for the same ef.
  std::vector<Scored> search(const float* query, std::size_t k, std::size_t ef) const {
    std::shared_lock<std::shared_mutex> reading(*ef_lock_);
    while (graph_->ef_ != ef) {  // hnswlib keeps ef in the graph: change it while no search runs
      reading.unlock();
      {
        std::unique_lock<std::shared_mutex> writing(*ef_lock_);
        graph_->setEf(ef);
      }
      reading.lock();
    }
    auto found = graph_->searchKnnCloserFirst(query, k);
    std::vector<Scored> out;
    for (const auto& [distance, label] : found) out.push_back({1.0f - distance, static_cast<std::size_t>(label)});
    return out;
  }
  std::size_t size() const { return graph_->cur_element_count; }

 private:
  explicit HnswGraph(std::size_t dim)
      : space_(std::make_unique<DotSpace>(dim)), ef_lock_(std::make_unique<std::shared_mutex>()) {}

  // The fields hnswlib's saveIndex writes first, checked before hnswlib allocates anything by them.
  static void check_header(const std::uint8_t* bytes, std::size_t n, std::size_t rows, std::size_t dim,
                           const std::string& where) {
    std::size_t offset_level0, max_elements, count, size_per_element, label_offset, offset_data;
    const std::size_t header = 6 * sizeof(std::size_t);
    if (n < header) fail(where, "holds " + std::to_string(n) + " bytes, too few for a HNSW graph");
    std::size_t* fields[] = {&offset_level0, &max_elements, &count, &size_per_element, &label_offset, &offset_data};
    for (std::size_t i = 0; i < 6; ++i) std::memcpy(fields[i], bytes + i * sizeof(std::size_t), sizeof(std::size_t));
    if (count != rows || max_elements < count)
      fail(where, "is a graph of " + std::to_string(count) + " vectors, the index has " + std::to_string(rows));
    if (offset_data + dim * sizeof(float) > size_per_element || label_offset + sizeof(hnswlib::labeltype) > size_per_element ||
        size_per_element > (std::size_t(1) << 24) || (count && size_per_element * count > n))
      fail(where, "has an element layout that does not fit vectors of " + std::to_string(dim) + " floats");
  }

  // Every link of the loaded graph names a node of it, and every label a row.
  void check_links(const std::string& where) const {
    const auto& g = *graph_;
    const std::size_t count = g.cur_element_count;
    auto bad = [&](const std::string& what) { fail(where, what); };
    if (count && (g.enterpoint_node_ >= count || g.maxlevel_ < 0)) bad("has no valid entry point");
    for (std::size_t i = 0; i < count; ++i) {
      if (g.getExternalLabel(static_cast<hnswlib::tableint>(i)) >= count) bad("labels a node outside the index");
      const int levels = g.element_levels_[i];
      if (levels < 0 || levels > g.maxlevel_) bad("has a node above the graph's top level");
      for (int level = 0; level <= levels; ++level) {
        unsigned int* list = level == 0 ? g.get_linklist0(static_cast<hnswlib::tableint>(i))
                                              : g.get_linklist(static_cast<hnswlib::tableint>(i), level);
        const std::size_t links = g.getListCount(list), most = level == 0 ? g.maxM0_ : g.maxM_;
        if (links > most) bad("has a node with more links than the graph allows");
        for (std::size_t j = 0; j < links; ++j)
          if (list[1 + j] >= count) bad("links to a node outside the graph");
      }
    }
  }

  std::unique_ptr<DotSpace> space_;  // outlives graph_, which points into it
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph_;
  std::unique_ptr<std::shared_mutex> ef_lock_;
};

#else  // without hnswlib: the same interface, every use an Error

class HnswGraph {
 public:
  [[noreturn]] static void unavailable() {
    fail("approximate search", "this build has no hnswlib (Debian: apt-get install libhnswlib-dev, then rebuild)");
  }
  template <class Backend>
  static HnswGraph build(const float*, std::size_t, std::size_t, std::size_t, std::size_t) { unavailable(); }
  static HnswGraph from_bytes(const std::uint8_t*, std::size_t, std::size_t, std::size_t, const std::string&) {
    unavailable();
  }
  std::vector<std::uint8_t> to_bytes() const { unavailable(); }
  std::vector<Scored> search(const float*, std::size_t, std::size_t) const { unavailable(); }
  std::size_t size() const { return 0; }
};

#endif

}  // namespace detail
}  // namespace tinyllm
