// Semantic search with tinyllm::SemanticIndex: index the paragraphs of a text file with a GPT-2's
// embeddings, save the index, load it back (memory-mapped) and search it, by vector similarity and
// then with the language model reranking the candidates.
//
//   semantic_search [MODEL_DIR] [TEXT_FILE] [QUERY]
//
// Defaults: the demo model and Moby-Dick chapters it never trained on (benchmarks/data/heldout.txt).
// The demo model is tiny: its vectors match passages mostly by shared words and style; reranking
// (log p(query | passage)) is what notices that a passage leads into the query.
#include <cstdio>     // std::printf
#include <fstream>    // std::ifstream
#include <sstream>    // std::ostringstream
#include <string>     // std::string
#include <vector>     // std::vector

#include <tinyllm/semantic_index.hpp>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : TINYLLM_DEMO_MODEL;
  const std::string file = argc > 2 ? argv[2] : TINYLLM_DEMO_TEXT;
  const std::string query = argc > 3 ? argv[3] : "the sailors climbed the mast to watch for whales";
  try {
    const auto model = tinyllm::GPT2::from_pretrained(dir);
    std::ifstream in(file, std::ios::binary);
    if (!in) throw tinyllm::Error(file + ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();

    // One document per paragraph (blank-line separated), named by file and paragraph number.
    std::vector<tinyllm::Document> paragraphs;
    const std::string all = text.str();
    for (std::size_t start = 0; start < all.size();) {
      std::size_t end = all.find("\n\n", start);
      if (end == std::string::npos) end = all.size();
      if (all.find_first_not_of(" \n\r\t", start) < end)
        paragraphs.push_back({file + "#" + std::to_string(paragraphs.size() + 1), all.substr(start, end - start)});
      start = end + 2;
    }

    tinyllm::IndexOptions options;  // weighted-mean pooling, standardised vectors, chunks of 128 tokens
    tinyllm::SemanticIndex index(model, options);
    index.add(paragraphs);
    index.save("semantic_search.index");
    std::printf("indexed %zu paragraphs as %zu chunks -> semantic_search.index\n\n", index.documents(), index.size());

    const auto loaded = tinyllm::SemanticIndex::load("semantic_search.index", model);
    tinyllm::SearchOptions search;
    search.k = 3;
    std::printf("query: %s\n\nby vector similarity:\n", query.c_str());
    for (const auto& hit : loaded.search(query, search))
      std::printf("  %.3f  %s  %.100s...\n", hit.score, hit.source.c_str(), hit.text.c_str());

    search.rerank = true;  // the 20 best by vector, reordered by log p(query | paragraph)
    std::printf("\nreranked by the language model:\n");
    for (const auto& hit : loaded.search(query, search))
      std::printf("  %.3f  %8.2f  %s  %.100s...\n", hit.score, hit.rerank_score, hit.source.c_str(), hit.text.c_str());
  } catch (const tinyllm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
