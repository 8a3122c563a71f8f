// tinyllm embed: JSON lines in, JSON lines out. Each input line is an object with a "text" (other
// fields are copied through, in their order); each output line is the same object with "embedding":
// the text's vector (Pooling::none: a list of vectors, one per token). Lines are embedded in batches
// that run through the model together. A line that is not such an object is an error naming its line
// number (lines before it have been written). Blank lines are skipped.
//
//   tinyllm embed -m models/tiny-sotu --pooling weighted_mean --normalize < texts.jsonl > vectors.jsonl
#include <charconv>  // std::to_chars
#include <cstdio>    // std::fprintf, std::fwrite
#include <iostream>  // std::cin, std::cout
#include <memory>    // std::make_shared
#include <string>    // std::string, std::getline
#include <vector>    // std::vector

#include <nlohmann/json.hpp>

#include "cli.hpp"

namespace tinyllm::cli {
namespace {

struct EmbedArgs {
  std::string model, type, pooling = "mean";
  int layer = -1;
  bool normalize = false, truncate = false;
  std::size_t batch = 256;
};

// `v` floats as a JSON array, each in its shortest form that reads back as the same float.
void append_floats(std::string& out, const float* v, std::size_t n) {
  char buf[32];
  out += '[';
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += ',';
    const auto r = std::to_chars(buf, buf + sizeof buf, v[i]);
    out.append(buf, r.ptr);
  }
  out += ']';
}

struct Line {
  nlohmann::ordered_json object;
  std::vector<int> ids;
};

// Embeds a batch of lines and writes them out.
void flush(const GPT2& model, const EmbeddingOptions& opts, std::vector<Line>& lines, std::size_t& tokens) {
  if (lines.empty()) return;
  std::vector<std::vector<int>> ids;
  for (Line& l : lines) ids.push_back(std::move(l.ids));
  const Embeddings e = model.embed(ids, opts);
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    nlohmann::ordered_json& o = lines[i].object;
    o.erase("embedding");
    std::string s = o.dump();
    s.pop_back();  // the closing brace
    if (s.size() > 1) s += ',';
    s += "\"embedding\":";
    if (opts.pooling == Pooling::none) {
      s += '[';
      for (std::size_t r = 0; r < e.rows(i); ++r) {
        if (r) s += ',';
        append_floats(s, e[i] + r * e.dim, e.dim);
      }
      s += ']';
    } else {
      append_floats(s, e[i], e.dim);
    }
    out += s + "}\n";
    tokens += e.tokens[i];
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  lines.clear();
}

int run_embed(const EmbedArgs& a) {
  const auto model = load(a.model, a.type);
  EmbeddingOptions opts;
  opts.pooling = pooling_from_name(a.pooling, "--pooling");
  opts.layer = a.layer;
  opts.normalize = a.normalize;
  opts.truncate = a.truncate;
  opts.validate(model.config());
  const std::size_t P = static_cast<std::size_t>(model.config().n_positions);
  const auto t0 = Clock::now();
  std::vector<Line> lines;
  std::size_t number = 0, texts = 0, tokens = 0;
  std::string text;
  while (std::getline(std::cin, text)) {
    ++number;
    const std::string where = "line " + std::to_string(number);
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::ordered_json o;
    try {
      o = nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + ": not JSON (" + e.what() + ")");
    }
    if (!o.is_object()) throw Error(where + ": not a JSON object");
    if (!o.contains("text") || !o["text"].is_string()) throw Error(where + ": no \"text\" string");
    std::vector<int> ids = model.tokenizer().encode(o["text"].get<std::string>());
    if (ids.empty()) throw Error(where + ": \"text\" is empty");
    if (ids.size() > P && !a.truncate)
      throw Error(where + ": \"text\" has " + std::to_string(ids.size()) +
                  " tokens, more than the model's context of n_positions = " + std::to_string(P) +
                  " (--truncate keeps the first " + std::to_string(P) + ")");
    lines.push_back({std::move(o), std::move(ids)});
    ++texts;
    if (lines.size() >= a.batch) flush(model, opts, lines, tokens);
  }
  flush(model, opts, lines, tokens);
  const double s = ms_since(t0) / 1e3;
  std::fprintf(stderr, "[tinyllm] embedded %zu texts (%zu tokens) in %.2f s, %.0f tokens/s\n", texts, tokens, s,
               s > 0 ? static_cast<double>(tokens) / s : 0.0);
  return 0;
}

}  // namespace

Command add_embed(CLI::App& tool) {
  auto a = std::make_shared<EmbedArgs>();
  CLI::App* e = tool.add_subcommand("embed", "JSON lines {\"text\": ...} on stdin -> the same with \"embedding\" on stdout");
  e->add_option("-m,--model", a->model, "Hugging Face GPT-2 folder")->required();
  e->add_option("--pooling", a->pooling, "how a text's token vectors become one")
      ->check(CLI::IsMember({"mean", "weighted_mean", "last", "none"}));
  e->add_option("--layer", a->layer,
                "hidden state: 0 = embeddings, n_layer = after ln_f (default -1, the last; negative counts from the end)");
  e->add_flag("--normalize", a->normalize, "unit-length vectors (cosine similarity = dot product)");
  e->add_flag("--truncate", a->truncate, "keep the first n_positions tokens of longer texts (default: an error)");
  e->add_option("--batch", a->batch, "texts embedded together (default 256)")->check(CLI::PositiveNumber);
  e->add_option("--type", a->type, "convert the weights at load (default: as stored)")->check(CLI::IsMember(weight_type_names));
  return {e, [a] { return run_embed(*a); }};
}

}  // namespace tinyllm::cli
