// Shared by the fuzz targets: where the repository is, a scratch folder per process, and FUZZ_CHECK,
// which aborts (a crash libFuzzer reports and the replay run fails on) when an invariant breaks.
// A target's LLVMFuzzerTestOneInput may let tinyllm::Error through only by catching it: a clear
// Error is the right answer to bad input, anything else (another exception, a crash, a sanitizer
// report, a failed FUZZ_CHECK) is a finding.
#pragma once

#include <cstddef>     // std::size_t
#include <cstdint>     // std::uint8_t
#include <cstdio>      // std::fprintf
#include <cstdlib>     // std::abort
#include <cstring>     // std::memcpy
#include <iterator>    // std::istreambuf_iterator
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <string>      // std::string
#include <string_view> // std::string_view
#include <unistd.h>    // getpid

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

namespace fuzz {

inline std::string source_dir() { return TINYLLM_SOURCE_DIR; }
inline std::string demo_model() { return source_dir() + "/models/tiny-sotu"; }
inline std::string fixture(const std::string& name) { return source_dir() + "/tests/fixtures/" + name; }

// A folder of this process's own under the temp dir (libFuzzer's -fork / -jobs run several), made
// on first use and removed at exit.
inline const std::string& scratch() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      path = std::filesystem::temp_directory_path() / ("tinyllm-fuzz-" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  static const std::string s = dir.path.string();
  return s;
}

inline void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  FUZZ_CHECK(out.good());
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  FUZZ_CHECK(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Reads an input front to back: numbers and strings of the fuzzer's choosing, zeros once it runs out.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  std::uint8_t byte() { return n_ ? (--n_, *p_++) : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | byte();
    return v;
  }
  int i32() { return static_cast<int>(u32()); }
  float f32() {
    const std::uint32_t bits = u32();
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  // Up to max_len bytes: a length byte, then the bytes.
  std::string str(std::size_t max_len = 255) {
    std::size_t len = byte() % (max_len + 1);
    if (len > n_) len = n_;
    std::string s(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    n_ -= len;
    return s;
  }
  std::string rest() {
    std::string s(reinterpret_cast<const char*>(p_), n_);
    p_ += n_;
    n_ = 0;
    return s;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

}  // namespace fuzz
