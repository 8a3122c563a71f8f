// What the tinyllm tool's commands share: loading a model with a timing line, reading a file, the
// weight-type flag, and the registry each command adds itself to (main.cpp runs the one parsed).
#pragma once

#include <chrono>      // std::chrono::steady_clock
#include <cstdio>      // std::fprintf
#include <fstream>     // std::ifstream
#include <functional>  // std::function
#include <sstream>     // std::ostringstream
#include <string>      // std::string
#include <vector>      // std::vector

#include <CLI/CLI.hpp>
#include <tinyllm/gpt2.hpp>

namespace tinyllm::cli {

using Clock = std::chrono::steady_clock;
inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The names --type and --assistant_type accept.
inline const std::vector<std::string> weight_type_names = [] {
  std::vector<std::string> names;
  for (WeightType t : all_weight_types) names.push_back(weight_type_name(t));
  return names;
}();

// "f32", "f16", "bf16", "q8" (parse_weight_type); empty: the matrices as stored.
inline std::optional<WeightType> weight_type(const std::string& name) {
  if (name.empty()) return std::nullopt;
  return parse_weight_type(name, "--type");
}

// Loads a folder and says so on stderr, with the time it took.
inline GPT2 load(const std::string& dir, const std::string& type = "", bool amx = false) {
  const auto t0 = Clock::now();
  LoadOptions opts;
  opts.weight_type = weight_type(type);
  opts.amx = amx;
  auto model = GPT2::from_pretrained(dir, opts);
  std::fprintf(stderr, "[tinyllm] loaded %s%s%s%s in %.0f ms (%d layers, n_embd %d, context %d)\n", dir.c_str(),
               type.empty() ? "" : " as ", type.c_str(), amx ? ", prompts on AMX bf16 tiles" : "", ms_since(t0),
               model.config().n_layer, model.config().n_embd, model.config().n_positions);
  return model;
}

// A command: its subcommand of the tool and what runs when it is the one given (the exit status).
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// Each command's file defines one of these; main.cpp calls them all.
Command add_generate(CLI::App& tool);
Command add_tokenize(CLI::App& tool);
Command add_perplexity(CLI::App& tool);
Command add_quantize(CLI::App& tool);
Command add_explain(CLI::App& tool);
Command add_embed(CLI::App& tool);
Command add_index(CLI::App& tool);
Command add_serve(CLI::App& tool);  // serve.cpp, or serve_unavailable.cpp in a build without cpp-httplib

}  // namespace tinyllm::cli
