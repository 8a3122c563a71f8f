// A 64-byte aligned, fixed-size float buffer (cache-line and AVX-512 aligned). Buffers of 2 MB and
// more start on a 2 MB boundary and ask for huge pages (Linux transparent huge pages, madvise):
// converted weights and the KV cache are read in long streams, which run faster from 2 MB pages than
// from 4 KB ones (fewer TLB misses and page walks). Depends on nothing.
#pragma once

#include <cstddef>  // std::size_t
#include <cstdint>  // std::uintptr_t
#include <cstring>  // std::memset
#include <new>      // ::operator new, std::align_val_t, std::bad_alloc
#include <utility>  // std::exchange

#if defined(__linux__)
#include <sys/mman.h>  // mmap, munmap, madvise
#include <unistd.h>    // sysconf
#define TINYLLM_HUGE_PAGES 1
#else
#define TINYLLM_HUGE_PAGES 0
#endif

namespace tinyllm::detail {

// The size of a huge page, and the smallest buffer that gets them.
inline constexpr std::size_t huge_page_bytes = std::size_t(2) << 20;

// `bytes` rounded up to whole pages of the system (what a mapping of them takes).
inline std::size_t mapped_bytes(std::size_t bytes) {
#if TINYLLM_HUGE_PAGES
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
#else
  return bytes;
#endif
}

// Zero-filled, 64-byte aligned memory of `bytes` (> 0); `mapped` says which way it came (for free).
// Large buffers start on a 2 MB boundary and are advised to use huge pages: the kernel backs each
// whole 2 MB of them with one, the rest (a part of 2 MB at the end) with 4 KB pages, so nothing is
// rounded up (a KV-cache buffer of 3 MB would otherwise take 4 MB).
inline void* allocate_aligned(std::size_t bytes, bool& mapped) {
#if TINYLLM_HUGE_PAGES
  if (bytes >= huge_page_bytes) {  // map 2 MB more, keep the part from a 2 MB boundary, give the rest back
    const std::size_t size = mapped_bytes(bytes);
    void* raw = ::mmap(nullptr, size + huge_page_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto begin = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t start = (begin + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes;
    if (start > begin) ::munmap(raw, start - begin);
    if (const std::size_t tail = begin + size + huge_page_bytes - (start + size))
      ::munmap(reinterpret_cast<void*>(start + size), tail);
    void* p = reinterpret_cast<void*>(start);
#ifdef MADV_HUGEPAGE
    ::madvise(p, size, MADV_HUGEPAGE);  // a request: without THP the pages stay 4 KB, and that is all
#endif
    mapped = true;
    return p;  // fresh anonymous pages are zero
  }
#endif
  mapped = false;
  void* p = ::operator new[](bytes, std::align_val_t(64));
  std::memset(p, 0, bytes);
  return p;
}

inline void free_aligned(void* p, [[maybe_unused]] std::size_t bytes, [[maybe_unused]] bool mapped) {
  if (!p) return;
#if TINYLLM_HUGE_PAGES
  if (mapped) {
    ::munmap(p, mapped_bytes(bytes));
    return;
  }
#endif
  ::operator delete[](p, std::align_val_t(64));
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept { *this = std::move(o); }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, false);
    }
    return *this;
  }
  ~AlignedBuffer() { release(); }

  // Grows to at least n floats (contents are not kept), zero-filled.
  void resize(std::size_t n) {
    if (n <= size_) return;
    release();
    data_ = static_cast<float*>(allocate_aligned(n * sizeof(float), mapped_));
    size_ = n;
  }
  float* data() { return data_; }
  const float* data() const { return data_; }
  std::size_t size() const { return size_; }
  float& operator[](std::size_t i) { return data_[i]; }
  const float& operator[](std::size_t i) const { return data_[i]; }

 private:
  void release() {
    free_aligned(data_, size_ * sizeof(float), mapped_);
    data_ = nullptr;
    size_ = 0;
    mapped_ = false;
  }

  float* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace tinyllm::detail
