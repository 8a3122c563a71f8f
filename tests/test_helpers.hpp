// Shared by the test files: fixture paths, reading expected values, temporary folders.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace test {

namespace fs = std::filesystem;

inline std::string fixture(const std::string& name) { return std::string(TINYLLM_TEST_DIR) + "/fixtures/" + name; }
inline std::string demo_model() { return std::string(TINYLLM_MODELS_DIR) + "/tiny-sotu"; }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test: cannot open " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
inline nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

inline std::vector<float> read_f32(const std::string& path) {
  const std::string b = read_file(path);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

// A fresh folder under the system temp dir, removed when the object dies.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::mt19937_64 rng(std::random_device{}());
    path = fs::temp_directory_path() / ("tinyllm-test-" + std::to_string(rng()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

// Copies every file of folder `from` into `to`.
inline void copy_folder(const std::string& from, const std::string& to) {
  for (const auto& e : fs::directory_iterator(from))
    if (e.is_regular_file()) fs::copy_file(e.path(), fs::path(to) / e.path().filename(), fs::copy_options::overwrite_existing);
}

// max_i |a_i - b_i| and max_i |b_i|
inline void max_errors(const float* a, const float* b, std::size_t n, double& max_diff, double& max_abs) {
  max_diff = 0;
  max_abs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    max_diff = std::max(max_diff, std::abs(double(a[i]) - double(b[i])));
    max_abs = std::max(max_abs, std::abs(double(b[i])));
  }
}

inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace test
