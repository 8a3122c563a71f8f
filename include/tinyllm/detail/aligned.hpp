// A 64-byte aligned, fixed-size float buffer (cache-line and AVX-512 aligned). Depends on nothing.
#pragma once

#include <cstddef>  // std::size_t
#include <cstring>  // std::memset
#include <memory>   // std::unique_ptr
#include <new>      // ::operator new, std::align_val_t

namespace tinyllm::detail {

struct AlignedDelete {
  void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
};

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n) { resize(n); }
  // Grows to at least n floats (contents are not kept), zero-filled.
  void resize(std::size_t n) {
    if (n <= size_) return;
    data_.reset(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(64))));
    std::memset(data_.get(), 0, n * sizeof(float));
    size_ = n;
  }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  float& operator[](std::size_t i) { return data_[i]; }
  const float& operator[](std::size_t i) const { return data_[i]; }

 private:
  std::unique_ptr<float[], AlignedDelete> data_;
  std::size_t size_ = 0;
};

}  // namespace tinyllm::detail
