// --json FILE: a benchmark's figures as one JSON object, which benchmarks/report.py turns into the
// tables of README.md and docs/ (so no figure there is copied by hand).
#pragma once

#include <cstdio>   // std::fprintf
#include <cstdlib>  // std::exit
#include <fstream>  // std::ofstream
#include <string>   // std::string

#include <nlohmann/json.hpp>
#include <tinyllm/version.hpp>

namespace bench {

using json = nlohmann::ordered_json;

// Writes {"benchmark": name, "version": tinyllm's, ...figures} to `path`; nothing when path is empty.
inline void write_json(const std::string& path, const char* name, const json& figures) {
  if (path.empty()) return;
  json out = {{"benchmark", name}, {"version", tinyllm::version_string}};
  out.update(figures);
  std::ofstream f(path);
  f << out.dump(2) << "\n";
  if (!f) {
    std::fprintf(stderr, "%s: cannot write\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace bench
