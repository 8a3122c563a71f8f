// A read-only file mapped into memory (POSIX mmap), or read into a buffer where mmap is missing.
// Weights point into it, so it lives as long as the model. Depends only on error.hpp.
#pragma once

#include <cstddef>   // std::size_t
#include <cstdint>   // std::uint8_t
#include <cstring>   // std::strerror
#include <cerrno>    // errno
#include <fstream>   // std::ifstream
#include <memory>    // std::unique_ptr
#include <string>    // std::string
#include <utility>   // std::exchange

#include "../error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>     // open
#include <sys/mman.h>  // mmap, munmap, madvise
#include <sys/stat.h>  // fstat
#include <unistd.h>    // close
#define TINYLLM_HAS_MMAP 1
#else
#define TINYLLM_HAS_MMAP 0
#endif

namespace tinyllm::detail {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path) : path_(path) {
#if TINYLLM_HAS_MMAP
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(path, "not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        fail(path, std::string("cannot map: ") + std::strerror(errno));
      }
      data_ = static_cast<const std::uint8_t*>(p);
#ifdef MADV_HUGEPAGE
      // Pages read in through this mapping come in 2 MB pieces where the file system can (a request,
      // ignored where it cannot): weights stream faster from 2 MB pages (see detail/aligned.hpp).
      ::madvise(p, size_, MADV_HUGEPAGE);
#endif
    }
    ::close(fd);
#else
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) fail(path, "cannot open");
    size_ = static_cast<std::size_t>(in.tellg());
    buffer_.reset(new std::uint8_t[size_ ? size_ : 1]);
    in.seekg(0);
    if (!in.read(reinterpret_cast<char*>(buffer_.get()), static_cast<std::streamsize>(size_)))
      fail(path, "cannot read");
    data_ = buffer_.get();
#endif
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::move(o.path_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      buffer_ = std::move(o.buffer_);
    }
    return *this;
  }
  ~MappedFile() { release(); }

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release() {
#if TINYLLM_HAS_MMAP
    if (data_ && !buffer_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
#endif
    data_ = nullptr;
    size_ = 0;
    buffer_.reset();
  }

  std::string path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::unique_ptr<std::uint8_t[]> buffer_;  // only without mmap
};

inline bool file_exists(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return static_cast<bool>(f);
}

inline bool is_directory(const std::string& path) {
#if TINYLLM_HAS_MMAP
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
#else
  return static_cast<bool>(std::ifstream(path + "/config.json"));
#endif
}

// The largest JSON or text file of a model folder that tinyllm reads into memory (config.json,
// generation_config.json, vocab.json, merges.txt, tokenizer.json, model.safetensors.index.json):
// 64 MiB, twice the largest tokenizer.json on the hub (a 262k-token vocabulary). Its parsed JSON
// takes a few times this much memory; a larger file is corrupt or hostile.
inline constexpr std::uint64_t max_text_file_bytes = std::uint64_t(64) << 20;

// Whole file as a string (config.json, vocab.json, merges.txt), at most max_text_file_bytes.
inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(path, "cannot open (missing file?)");
  const std::streamoff size = in.tellg();
  if (size < 0) fail(path, "cannot read");
  if (static_cast<std::uint64_t>(size) > max_text_file_bytes)
    fail(path, "is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_text_file_bytes) +
                   " a model folder's text files may have (detail::max_text_file_bytes)");
  std::string s(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(s.data(), size)) fail(path, "cannot read");
  return s;
}

}  // namespace tinyllm::detail
