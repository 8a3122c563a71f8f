// tinyllm index: build a semantic index from text files, search it, describe it.
//
//   tinyllm index build -m models/tiny-sotu -o books.index moby.txt union/    (a folder: its files)
//   tinyllm index search books.index "a whale hunt" -k 5 [--rerank] [--json]
//   tinyllm index info books.index
//
// An index records the model folder it was built with (as an absolute path); search loads that
// folder unless -m names another copy of the same model (the index checks the weights' fingerprint).
#include <algorithm>   // std::sort, std::min
#include <cstdio>      // std::printf, std::fprintf
#include <filesystem>  // std::filesystem
#include <memory>      // std::make_shared
#include <string>      // std::string
#include <vector>      // std::vector

#include <nlohmann/json.hpp>
#include <tinyllm/semantic_index.hpp>

#include "cli.hpp"

namespace tinyllm::cli {
namespace {

namespace fs = std::filesystem;

struct BuildArgs {
  std::string model, out, type, pooling = "weighted_mean", standardization = "standardize";
  std::vector<std::string> files;
  int layer = -1, chunk_tokens = 128, chunk_overlap = 32, hnsw_m = 16, ef_construction = 200;
  bool hnsw = false;
};

struct SearchArgs {
  std::string index, model, type, prompt = default_rerank_prompt;
  std::vector<std::string> queries;
  int k = 10, candidates = 0, ef = 0;
  bool rerank = false, approximate = false, json = false;
};

// The files named, a folder standing for every file under it (sorted, so builds are repeatable).
std::vector<std::string> expand(const std::vector<std::string>& names) {
  std::vector<std::string> files;
  for (const std::string& n : names) {
    if (!fs::is_directory(n)) {
      files.push_back(n);
      continue;
    }
    std::vector<std::string> inside;
    for (const auto& e : fs::recursive_directory_iterator(n))
      if (e.is_regular_file()) inside.push_back(e.path().string());
    std::sort(inside.begin(), inside.end());
    files.insert(files.end(), inside.begin(), inside.end());
  }
  return files;
}

int run_build(const BuildArgs& a) {
  const auto model = load(a.model, a.type);
  IndexOptions o;
  o.embedding.pooling = pooling_from_name(a.pooling, "--pooling");
  o.embedding.layer = a.layer;
  o.standardization = standardization_from_name(a.standardization, "--standardization");
  o.chunk_tokens = a.chunk_tokens;
  o.chunk_overlap = a.chunk_overlap;
  SemanticIndex index(model, o);
  const std::vector<std::string> files = expand(a.files);
  const auto t0 = Clock::now();
  std::vector<Document> batch;
  std::size_t bytes = 0, batch_bytes = 0;
  auto add = [&] {
    index.add(batch);
    batch.clear();
    batch_bytes = 0;
  };
  for (const std::string& f : files) {
    batch.push_back({f, read_file(f)});
    batch_bytes += batch.back().text.size();
    bytes += batch.back().text.size();
    if (batch_bytes > (1 << 20)) add();  // about 250k tokens embedded together
  }
  add();
  const double embed_s = ms_since(t0) / 1e3;
  std::fprintf(stderr, "[tinyllm] %zu files (%zu bytes) -> %zu chunks of up to %d tokens in %.1f s\n", files.size(), bytes,
               index.size(), a.chunk_tokens, embed_s);
  if (a.hnsw) {
    const auto t1 = Clock::now();
    index.build_approximate(a.hnsw_m, a.ef_construction);
    std::fprintf(stderr, "[tinyllm] HNSW graph (M %d, ef_construction %d) in %.1f s\n", a.hnsw_m, a.ef_construction,
                 ms_since(t1) / 1e3);
  }
  index.save(a.out);
  std::fprintf(stderr, "[tinyllm] wrote %s\n", a.out.c_str());
  return 0;
}

// One line of a chunk's text: white space collapsed, at most `width` bytes (whole UTF-8 characters).
std::string snippet(const std::string& text, std::size_t width) {
  std::string s;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space && (s.empty() || s.back() == ' ')) continue;
    s += space ? ' ' : c;
  }
  if (s.size() <= width) return s;
  std::size_t cut = width;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

int run_search(const SearchArgs& a) {
  auto t0 = Clock::now();
  SemanticIndex index = SemanticIndex::load(a.index);
  std::fprintf(stderr, "[tinyllm] loaded %s in %.1f ms: %zu chunks of %zu documents\n", a.index.c_str(), ms_since(t0),
               index.size(), index.documents());
  std::string dir = a.model.empty() ? index.model_path() : a.model;
  if (dir.empty()) throw Error(a.index + ": the index records no model folder: pass -m DIR");
  if (a.model.empty() && !fs::is_directory(dir))
    throw Error(a.index + ": built with the model folder " + dir + ", which is not there: pass -m DIR (a copy of that model)");
  const auto model = load(dir, a.type);
  index.use_model(model);
  SearchOptions o;
  o.k = a.k;
  o.rerank = a.rerank;
  o.candidates = a.candidates;
  o.prompt = a.prompt;
  o.approximate = a.approximate;
  o.ef = a.ef;
  t0 = Clock::now();
  const auto results = index.search(a.queries, o);
  std::fprintf(stderr, "[tinyllm] %zu %s in %.1f ms%s\n", a.queries.size(), a.queries.size() == 1 ? "query" : "queries",
               ms_since(t0), a.rerank ? " (reranked by the model)" : "");
  for (std::size_t q = 0; q < results.size(); ++q) {
    if (!a.json && results.size() > 1) std::printf("%s# %s\n", q ? "\n" : "", a.queries[q].c_str());
    for (std::size_t i = 0; i < results[q].size(); ++i) {
      const SearchHit& h = results[q][i];
      if (a.json) {
        nlohmann::ordered_json j = {{"query", a.queries[q]}, {"rank", i + 1},  {"score", h.score},
                                    {"source", h.source},    {"begin", h.begin}, {"end", h.end}};
        if (a.rerank) j["rerank_score"] = h.rerank_score;
        j["text"] = h.text;
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else {
        std::printf("%2zu. %.4f", i + 1, h.score);
        if (a.rerank) std::printf("  %9.3f", h.rerank_score);
        std::printf("  %s [%zu, %zu)\n    %s\n", h.source.c_str(), h.begin, h.end, snippet(h.text, 240).c_str());
      }
    }
  }
  return 0;
}

int run_info(const std::string& path) {
  const auto t0 = Clock::now();
  const SemanticIndex index = SemanticIndex::load(path);
  const IndexOptions& o = index.options();
  std::printf("index %s (loaded in %.1f ms)\nchunks %zu\ndocuments %zu\ndim %zu\nmodel %s\nfingerprint %016llx\n"
              "pooling %s\nlayer %d\nstandardization %s\nchunk_tokens %d\nchunk_overlap %d\napproximate %s\n",
              path.c_str(), ms_since(t0), index.size(), index.documents(), index.dim(), index.model_path().c_str(),
              static_cast<unsigned long long>(index.model_fingerprint()), pooling_name(o.embedding.pooling),
              o.embedding.layer, standardization_name(o.standardization), o.chunk_tokens, o.chunk_overlap,
              index.has_approximate() ? "yes (HNSW graph)" : "no");
  return 0;
}

}  // namespace

Command add_index(CLI::App& tool) {
  CLI::App* idx = tool.add_subcommand("index", "build a semantic index of text files, and search it");
  idx->require_subcommand(1);
  auto b = std::make_shared<BuildArgs>();
  CLI::App* build = idx->add_subcommand("build", "chunk, embed and index text files");
  build->add_option("-m,--model", b->model, "Hugging Face GPT-2 folder")->required();
  build->add_option("-o,--out", b->out, "the index file to write")->required();
  build->add_option("files", b->files, "text files (a folder: every file under it)")->required();
  build->add_option("--pooling", b->pooling, "how a chunk's token vectors become one (default weighted_mean)")
      ->check(CLI::IsMember({"mean", "weighted_mean", "last"}));
  build->add_option("--layer", b->layer, "hidden state (default -1: the last, after ln_f)");
  build->add_option("--standardization", b->standardization, "vectors before cosine (default standardize)")
      ->check(CLI::IsMember({"none", "center", "standardize"}));
  build->add_option("--chunk-tokens,--chunk_tokens", b->chunk_tokens, "tokens per chunk (default 128)");
  build->add_option("--chunk-overlap,--chunk_overlap", b->chunk_overlap, "tokens shared by neighbouring chunks (default 32)");
  build->add_flag("--hnsw", b->hnsw, "also build an HNSW graph for --approximate search (needs hnswlib)");
  build->add_option("--hnsw-m", b->hnsw_m, "HNSW links per node (default 16)");
  build->add_option("--ef-construction", b->ef_construction, "HNSW candidates per insertion (default 200)");
  build->add_option("--type", b->type, "convert the weights at load")->check(CLI::IsMember(weight_type_names));

  auto s = std::make_shared<SearchArgs>();
  CLI::App* search = idx->add_subcommand("search", "the chunks most similar to each query");
  search->add_option("index", s->index, "index file")->required();
  search->add_option("queries", s->queries, "query texts")->required();
  search->add_option("-k", s->k, "results per query (default 10)")->check(CLI::PositiveNumber);
  search->add_option("-m,--model", s->model, "model folder (default: the one the index was built with)");
  search->add_flag("--rerank", s->rerank, "rerank the best candidates by log p(query | chunk) under the model");
  search->add_option("--candidates", s->candidates, "candidates reranked (default max(k, 20))");
  search->add_option("--prompt", s->prompt, "reranking prompt with {document} and {query}");
  search->add_flag("--approximate", s->approximate, "search the HNSW graph (index build --hnsw)");
  search->add_option("--ef", s->ef, "HNSW candidates explored (default max(k, 64))");
  search->add_flag("--json", s->json, "one JSON object per result");
  search->add_option("--type", s->type, "convert the weights at load")->check(CLI::IsMember(weight_type_names));

  auto path = std::make_shared<std::string>();
  CLI::App* info = idx->add_subcommand("info", "what an index holds and how it was built");
  info->add_option("index", *path, "index file")->required();

  return {idx, [=] {
            if (build->parsed()) return run_build(*b);
            if (search->parsed()) return run_search(*s);
            return run_info(*path);
          }};
}

}  // namespace tinyllm::cli
