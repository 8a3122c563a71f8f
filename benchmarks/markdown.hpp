// Writes a benchmark's Markdown table into a document between two marker comments, so that the
// figures in docs/ come from the benchmark's output and are never typed by hand.
#pragma once

#include <fstream>    // std::ifstream, std::ofstream
#include <iterator>   // std::istreambuf_iterator
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace bench {

// Replaces what lies between "<!-- NAME:begin -->" and "<!-- NAME:end -->" in the file at `path`.
inline void write_between_markers(const std::string& path, const std::string& name, const std::string& block) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read");
  const std::string doc{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::string begin = "<!-- " + name + ":begin -->", end = "<!-- " + name + ":end -->";
  const std::size_t b = doc.find(begin), e = doc.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b)
    throw std::runtime_error(path + ": no " + begin + " ... " + end + " markers");
  std::ofstream(path, std::ios::binary) << doc.substr(0, b + begin.size()) << "\n" << block << doc.substr(e);
}

}  // namespace bench
