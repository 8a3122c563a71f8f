// Retrieval quality of tinyllm's embeddings, measured: every paragraph of a public-domain text
// (benchmarks/data/heldout.txt, Moby-Dick chapters the demo model never trained on) is split in two at
// its middle token; the first halves are indexed (SemanticIndex, chunks of 128 tokens), and each
// paragraph's second half (its first 64 tokens) is the query that should find its own first half
// among all of them. Reported: recall@1 and recall@10 (the right paragraph first / among the first
// ten paragraphs found) for each pooling, with and without standardisation, and with the language
// model reranking the 20 best chunks of the vector search; on the demo model and on a random-weight
// model of the same shape (GPT-2's initialisation, N(0, 0.02)) as a floor, and chance.
//
//   bench_retrieval [--model DIR] [--file TEXT] [--threads N] [--candidates 20] [--markdown-into FILE]
//
// --markdown-into FILE replaces the lines between <!-- retrieval-table:begin --> and
// <!-- retrieval-table:end --> in FILE (docs/embeddings.md) with the table printed here.
#include <algorithm>  // std::min, std::find
#include <chrono>     // std::chrono::steady_clock
#include <cstdio>     // std::printf, std::fprintf
#include <cstdlib>    // std::atoi
#include <fstream>    // std::ifstream, std::ofstream
#include <optional>   // std::optional
#include <sstream>    // std::ostringstream
#include <string>     // std::string
#include <utility>    // std::move
#include <vector>     // std::vector

#include <tinyllm/semantic_index.hpp>

#include "random_gpt2.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Task {
  std::vector<tinyllm::Document> firsts;  // paragraph i's first half
  std::vector<std::string> queries;       // its second half (the first 64 tokens)
};

// Paragraphs (blank-line separated) of at least 40 tokens, split at the middle token.
Task make_task(const tinyllm::Tokenizer& tok, const std::string& text) {
  Task t;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find("\n\n", start);
    if (end == std::string::npos) end = text.size();
    const std::string p = text.substr(start, end - start);
    start = end + 2;
    const std::vector<int> ids = tok.encode(p);
    if (ids.size() < 40) continue;
    const std::size_t half = ids.size() / 2;
    const std::vector<int> first(ids.begin(), ids.begin() + static_cast<long>(half));
    const std::vector<int> second(ids.begin() + static_cast<long>(half),
                                  ids.begin() + static_cast<long>(std::min(ids.size(), half + 64)));
    t.firsts.push_back({"paragraph " + std::to_string(t.firsts.size()), tok.decode(first)});
    t.queries.push_back(tok.decode(second));
  }
  return t;
}

struct Recall {
  double at1 = 0, at10 = 0;
};

// The share of queries whose own paragraph comes first / among the first ten paragraphs of its hits.
Recall recall(const std::vector<std::vector<tinyllm::SearchHit>>& hits) {
  Recall r;
  for (std::size_t q = 0; q < hits.size(); ++q) {
    std::vector<std::size_t> docs;  // paragraphs in the order their first chunk appears
    for (const auto& h : hits[q])
      if (std::find(docs.begin(), docs.end(), h.document) == docs.end()) docs.push_back(h.document);
    r.at1 += !docs.empty() && docs[0] == q;
    r.at10 += std::find(docs.begin(), docs.begin() + static_cast<long>(std::min<std::size_t>(10, docs.size())), q) !=
              docs.begin() + static_cast<long>(std::min<std::size_t>(10, docs.size()));
  }
  r.at1 /= static_cast<double>(hits.size());
  r.at10 /= static_cast<double>(hits.size());
  return r;
}

struct Row {
  std::string model, pooling, standardization, rerank;
  Recall r;
};

std::vector<Row> evaluate(const std::string& name, const tinyllm::GPT2& model, const Task& task, int candidates) {
  std::vector<Row> rows;
  std::optional<tinyllm::SemanticIndex> best;  // the configuration with the best recall@1 + recall@10
  double best_sum = -1;
  for (auto pooling : {tinyllm::Pooling::mean, tinyllm::Pooling::weighted_mean, tinyllm::Pooling::last})
    for (auto s : {tinyllm::Standardization::none, tinyllm::Standardization::center, tinyllm::Standardization::standardize}) {
      const auto t0 = Clock::now();
      tinyllm::IndexOptions o;
      o.embedding.pooling = pooling;
      o.standardization = s;
      tinyllm::SemanticIndex index(model, o);
      index.add(task.firsts);
      tinyllm::SearchOptions so;
      so.k = 50;  // chunks, for ten distinct paragraphs
      const Recall r = recall(index.search(task.queries, so));
      rows.push_back({name, tinyllm::pooling_name(pooling), tinyllm::standardization_name(s), "", r});
      std::fprintf(stderr, "[bench] %s %s %s: %.3f / %.3f (%.1f s)\n", name.c_str(), tinyllm::pooling_name(pooling),
                   tinyllm::standardization_name(s), r.at1, r.at10,
                   std::chrono::duration<double>(Clock::now() - t0).count());
      if (r.at1 + r.at10 > best_sum) {
        best_sum = r.at1 + r.at10;
        best.emplace(std::move(index));
      }
    }
  // Reranking the best configuration's candidates by log p(query | chunk), with SGPT's prompt and
  // with the plain continuation (the chunk, then the query: this task's own question).
  const tinyllm::IndexOptions& o = best->options();
  for (const std::string prompt : {std::string(tinyllm::default_rerank_prompt), std::string("{document}{query}")}) {
    const auto t0 = Clock::now();
    tinyllm::SearchOptions so;
    so.k = candidates;
    so.candidates = candidates;
    so.rerank = true;
    so.prompt = prompt;
    const Recall r = recall(best->search(task.queries, so));
    const std::string label = prompt == tinyllm::default_rerank_prompt ? "SGPT prompt" : "`{document}{query}`";
    rows.push_back({name, tinyllm::pooling_name(o.embedding.pooling), tinyllm::standardization_name(o.standardization),
                    label, r});
    std::fprintf(stderr, "[bench] %s rerank %s: %.3f / %.3f (%.1f s)\n", name.c_str(), label.c_str(), r.at1, r.at10,
                 std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return rows;
}

std::string table(const std::vector<Row>& rows, std::size_t n, int candidates) {
  std::ostringstream s;
  char buf[256];
  s << "| model | pooling | standardization | reranked (top " << candidates << ") | recall@1 | recall@10 |\n";
  s << "|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %s | %s | %.3f | %.3f |\n", r.model.c_str(), r.pooling.c_str(),
                  r.standardization.c_str(), r.rerank.empty() ? "no" : r.rerank.c_str(), r.r.at1, r.r.at10);
    s << buf;
  }
  std::snprintf(buf, sizeof buf, "| chance | | | | %.3f | %.3f |\n", 1.0 / static_cast<double>(n), 10.0 / static_cast<double>(n));
  s << buf;
  return s.str();
}

void write_into(const std::string& path, const std::string& block) {
  const std::string doc = read(path), begin = "<!-- retrieval-table:begin -->", end = "<!-- retrieval-table:end -->";
  const std::size_t b = doc.find(begin), e = doc.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b)
    throw std::runtime_error(path + ": no " + begin + " ... " + end + " markers");
  std::ofstream(path, std::ios::binary) << doc.substr(0, b + begin.size()) << "\n" << block << doc.substr(e);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(TINYLLM_SOURCE_DIR) + "/models/tiny-sotu";
  std::string file = std::string(TINYLLM_SOURCE_DIR) + "/benchmarks/data/heldout.txt", into;
  int threads = 0, candidates = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model") dir = argv[i + 1];
    else if (a == "--file") file = argv[i + 1];
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--candidates") candidates = std::atoi(argv[i + 1]);
    else if (a == "--markdown-into") into = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (threads > 0) tinyllm::set_num_threads(threads);
  try {
    const auto model = tinyllm::GPT2::from_pretrained(dir);
    const Task task = make_task(model.tokenizer(), read(file));
    // The floor: the same shape with GPT-2's initial weights (and the demo model's tokenizer).
    tinyllm::GPT2Config shape = model.config();
    const std::string random_dir = std::string(TINYLLM_BENCH_BINARY_DIR) + "/tiny-random";
    bench::write_random_gpt2(random_dir, shape, false, dir);
    const auto random = tinyllm::GPT2::from_pretrained(random_dir);
    std::fprintf(stderr, "[bench] %zu paragraphs of %s, %d threads\n", task.firsts.size(), file.c_str(),
                 tinyllm::get_num_threads());
    std::vector<Row> rows = evaluate("demo (tiny-sotu)", model, task, candidates);
    const std::vector<Row> floor = evaluate("random weights", random, task, candidates);
    rows.insert(rows.end(), floor.begin(), floor.end());
    std::ostringstream block;
    block << "Paragraphs: " << task.firsts.size() << " of `benchmarks/data/heldout.txt` (at least 40 tokens each); "
          << "queries: the first 64 tokens of each second half; index: chunks of 128 tokens (32 overlapping).\n\n"
          << table(rows, task.firsts.size(), candidates);
    std::printf("%s", block.str().c_str());
    if (!into.empty()) {
      write_into(into, block.str());
      std::fprintf(stderr, "[bench] table written into %s\n", into.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
