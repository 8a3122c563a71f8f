// tinyllm::SemanticIndex: semantic search over documents with a GPT-2's embeddings. Documents are cut
// into chunks of tokens (with overlap, each chunk keeping its document and byte span), embedded in
// batches, optionally standardised per dimension (Timkey & van Schijndel 2021: a few "rogue"
// dimensions otherwise dominate cosine similarity; the statistics are kept with the index) and
// normalised, then searched exactly by cosine (many queries at once as a matrix product), or
// approximately through an HNSW graph (hnswlib, when installed), and optionally reranked by the
// language model (search/rerank.hpp). save() writes one safetensors file that load() maps.
// Depends on gpt2.hpp and search/.
//
//   auto model = tinyllm::GPT2::from_pretrained("models/tiny-sotu");
//   tinyllm::SemanticIndex index(model);
//   index.add({{"moby.txt", moby_text}, {"union.txt", union_text}});
//   for (const auto& hit : index.search("a whale hunt", {5}))
//     std::cout << hit.score << " " << hit.source << " [" << hit.begin << ", " << hit.end << ")\n";
//   index.save("books.index");   // later: tinyllm::SemanticIndex::load("books.index", model)
#pragma once

#include <algorithm>    // std::min, std::max, std::sort, std::stable_sort
#include <cmath>        // std::sqrt
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint64_t, std::int64_t
#include <cstdio>       // std::snprintf
#include <filesystem>   // std::filesystem::absolute
#include <limits>       // std::numeric_limits
#include <memory>       // std::shared_ptr, std::unique_ptr
#include <mutex>        // std::mutex, std::lock_guard
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector

#include "gpt2.hpp"
#include "search/chunking.hpp"
#include "search/exact.hpp"
#include "search/hnsw.hpp"
#include "search/index_file.hpp"
#include "search/rerank.hpp"

namespace tinyllm {

// What is done to the vectors before cosine similarity, with statistics over the indexed chunks.
enum class Standardization {
  none,         // the pooled vectors as they are
  center,       // minus the mean vector
  standardize,  // minus the mean, divided by each dimension's standard deviation
};

inline const char* standardization_name(Standardization s) {
  switch (s) {
    case Standardization::none: return "none";
    case Standardization::center: return "center";
    case Standardization::standardize: return "standardize";
  }
  return "?";
}

inline Standardization standardization_from_name(std::string_view name, const std::string& where = "standardization") {
  for (auto s : {Standardization::none, Standardization::center, Standardization::standardize})
    if (name == standardization_name(s)) return s;
  detail::fail(where, "'" + std::string(name) + "' is not one of none, center, standardize");
}

struct IndexOptions {
  EmbeddingOptions embedding{Pooling::weighted_mean};  // chunks and queries alike (normalize is implied)
  Standardization standardization = Standardization::standardize;
  int chunk_tokens = 128;  // tokens per chunk, at most the model's n_positions
  int chunk_overlap = 32;  // tokens a chunk shares with the one before it
};

struct Document {
  std::string source;  // a name: a file path, an id
  std::string text;
};

struct SearchOptions {
  int k = 10;                // results per query
  bool approximate = false;  // search the HNSW graph (build_approximate) instead of every vector
  int ef = 0;                // HNSW candidates explored (0: max(k, 64)); more is slower and closer to exact
  bool rerank = false;       // reorder the vector search's best `candidates` by the language model
  int candidates = 0;        // 0: max(k, 20)
  std::string prompt = default_rerank_prompt;  // the reranking prompt, with {document} and {query}
};

struct SearchHit {
  std::size_t chunk = 0;  // row of the index
  float score = 0;        // cosine similarity of the (standardised) vectors
  double rerank_score = std::numeric_limits<double>::quiet_NaN();  // log p(query | chunk, prompt), nats
  std::size_t document = 0;
  std::string source;               // the document's name
  std::size_t begin = 0, end = 0;   // the chunk's bytes in its document
  std::string text;                 // those bytes
};

namespace detail {

// Identifies a model's weights (so an index is searched with the model that built it): FNV-1a over
// the shape and the F32 values of ln_f and the first positions, which no weight type conversion changes.
inline std::uint64_t model_fingerprint(const GPT2Config& c, const GPT2Weights& w) {
  std::uint64_t h = 1469598103934665603ull;
  auto bytes = [&](const void* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
  };
  for (int v : {c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head}) bytes(&v, sizeof v);
  const std::size_t C = static_cast<std::size_t>(c.n_embd);
  bytes(w.ln_f.weight, C * 4);
  bytes(w.ln_f.bias, C * 4);
  bytes(w.wpe, std::min<std::size_t>(4, static_cast<std::size_t>(c.n_positions)) * C * 4);
  return h;
}

inline std::string hex64(std::uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
  return s;
}

}  // namespace detail

template <class Backend>
class BasicSemanticIndex {
 public:
  // An empty index that embeds with `model`.
  explicit BasicSemanticIndex(const BasicGPT2<Backend>& model, const IndexOptions& options = {});
  // An empty index of `dim`-float vectors made elsewhere (add_embedded, search_vectors).
  explicit BasicSemanticIndex(std::size_t dim, Standardization standardization = Standardization::standardize);

  // A saved index, memory-mapped: searched by vector, or by text once use_model() gives it its model.
  static BasicSemanticIndex load(const std::string& path);
  // The same with the model it was built with (checked: n_embd and the weights' fingerprint).
  static BasicSemanticIndex load(const std::string& path, const BasicGPT2<Backend>& model);
  void use_model(const BasicGPT2<Backend>& model);

  // Chunks, embeds (in batches) and adds documents. Adding to an index loaded from a file keeps its
  // statistics; an index built in memory recomputes them over all its chunks before the next search.
  // Adding drops the approximate graph (build it again).
  void add(const std::vector<Document>& documents);
  void add(const std::string& source, std::string_view text) { add(std::vector<Document>{{source, std::string(text)}}); }
  // Adds a document whose chunks were embedded elsewhere: spans[i] (bytes of text) has the pooled,
  // not yet standardised vector vectors[i * dim() .. + dim()).
  void add_embedded(const std::string& source, std::string_view text,
                    const std::vector<std::pair<std::size_t, std::size_t>>& spans, const float* vectors);

  // Builds the approximate (HNSW) graph over the vectors: M links per node, ef_construction
  // candidates per insertion (hnswlib's defaults). save() keeps it.
  void build_approximate(int M = 16, int ef_construction = 200);
  bool has_approximate() const { return graph_ != nullptr || arrays().hnsw != nullptr; }

  void save(const std::string& path) const;

  // The k best chunks for a query (the model embeds it), best first.
  std::vector<SearchHit> search(std::string_view query, const SearchOptions& options = {}) const {
    return std::move(search(std::vector<std::string>{std::string(query)}, options)[0]);
  }
  // Many queries at once: embedded in one batch and scored as one matrix product.
  std::vector<std::vector<SearchHit>> search(const std::vector<std::string>& queries,
                                             const SearchOptions& options = {}) const;
  // Queries given as pooled vectors ([n, dim], not standardised: as embed() returns them). No reranking.
  std::vector<std::vector<SearchHit>> search_vectors(const float* queries, std::size_t n,
                                                     const SearchOptions& options = {}) const;

  std::size_t size() const { return arrays().rows; }  // chunks
  std::size_t documents() const { return arrays().documents; }
  std::size_t dim() const { return dim_; }
  const IndexOptions& options() const { return options_; }
  const std::string& model_path() const { return model_path_; }  // the folder it was built with
  std::uint64_t model_fingerprint() const { return fingerprint_; }
  bool has_model() const { return model_.has_value(); }
  SearchHit chunk(std::size_t row) const;  // a chunk's document, span and text (no score)
  std::string document_name(std::size_t d) const;
  std::string document_text(std::size_t d) const;
  const float* vectors() const {  // [size(), dim()]: what search compares, standardised and unit length
    prepare();
    return arrays().vectors;
  }

  BasicSemanticIndex(BasicSemanticIndex&&) = default;
  BasicSemanticIndex& operator=(BasicSemanticIndex&&) = default;

 private:
  BasicSemanticIndex() = default;
  // The arrays searches read: into the mapped file, or into own_ (recomputed: own_ may move).
  detail::IndexArrays arrays() const { return file_.file ? file_.arrays : own_.views(); }
  void own();                                       // copies a mapped index into owned buffers
  void append_raw(const float* raw, std::size_t n);  // n pooled vectors of the rows just added
  void prepare() const;                             // statistics and vectors up to date
  void transform(const float* raw, float* out) const;
  std::vector<float> embed_queries(const std::vector<std::string>& queries) const;
  std::vector<std::vector<SearchHit>> search_transformed(const std::vector<float>& q, std::size_t n,
                                                         const SearchOptions& o) const;
  void check_options(const SearchOptions& o) const;
  nlohmann::json metadata() const;

  std::optional<BasicGPT2<Backend>> model_;
  IndexOptions options_;
  std::size_t dim_ = 0;
  std::string model_path_;
  std::uint64_t fingerprint_ = 0;
  bool fit_statistics_ = true;  // statistics follow the chunks (false once loaded: the file's are kept)
  std::vector<float> raw_;      // pooled vectors of every row (only while fit_statistics_)
  nlohmann::json hnsw_params_;
  detail::IndexFile file_;      // a loaded index's mapping (and any arrays it had to copy)
  mutable detail::IndexBuffers own_;       // the arrays, when built or changed here
  mutable bool dirty_ = false;             // rows added since the statistics were computed
  mutable std::unique_ptr<detail::HnswGraph> graph_;
  mutable std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

using SemanticIndex = BasicSemanticIndex<DefaultBackend>;

// ---------------------------------------------------------------------------------------------------

template <class Backend>
BasicSemanticIndex<Backend>::BasicSemanticIndex(const BasicGPT2<Backend>& model, const IndexOptions& options)
    : options_(options) {
  const GPT2Config& c = model.config();
  options_.embedding.validate(c);
  if (options_.embedding.pooling == Pooling::none)
    detail::fail("IndexOptions.embedding.pooling", "is none: an index needs one vector per chunk");
  if (options_.chunk_tokens < 1 || options_.chunk_tokens > c.n_positions)
    detail::fail("IndexOptions.chunk_tokens", "is " + std::to_string(options_.chunk_tokens) +
                                                  ", must be in [1, n_positions = " + std::to_string(c.n_positions) + "]");
  if (options_.chunk_overlap < 0 || options_.chunk_overlap >= options_.chunk_tokens)
    detail::fail("IndexOptions.chunk_overlap", "is " + std::to_string(options_.chunk_overlap) +
                                                   ", must be in [0, chunk_tokens = " +
                                                   std::to_string(options_.chunk_tokens) + ")");
  const int s = static_cast<int>(options_.standardization);
  if (s < 0 || s > 2) detail::fail("IndexOptions.standardization", "is " + std::to_string(s) + ", not a Standardization");
  model_ = model;
  dim_ = static_cast<std::size_t>(c.n_embd);
  own_.dim = dim_;
  model_path_ = model.name_or_path().empty() ? "" : std::filesystem::absolute(model.name_or_path()).lexically_normal().string();
  fingerprint_ = detail::model_fingerprint(c, model.weights());
}

template <class Backend>
BasicSemanticIndex<Backend>::BasicSemanticIndex(std::size_t dim, Standardization standardization) {
  if (dim == 0) detail::fail("SemanticIndex", "dim is 0");
  options_.standardization = standardization;
  dim_ = dim;
  own_.dim = dim;
}

template <class Backend>
BasicSemanticIndex<Backend> BasicSemanticIndex<Backend>::load(const std::string& path) {
  BasicSemanticIndex x;
  x.file_ = detail::read_index(path);
  const nlohmann::json& m = x.file_.meta;
  const std::string where = path + " (__metadata__ tinyllm.index)";
  x.dim_ = x.file_.arrays.dim;
  x.own_.dim = x.dim_;
  x.options_.standardization = standardization_from_name(detail::json_string(m, "standardization", where, ""),
                                                          where + ": standardization");
  x.options_.chunk_tokens = static_cast<int>(detail::json_int(m, "chunk_tokens", where, 1, 1 << 20));
  x.options_.chunk_overlap = static_cast<int>(detail::json_int(m, "chunk_overlap", where, 0, x.options_.chunk_tokens - 1));
  if (!m.contains("embedding") || !m["embedding"].is_object()) detail::fail(where, "missing object 'embedding'");
  x.options_.embedding.pooling =
      pooling_from_name(detail::json_string(m["embedding"], "pooling", where, ""), where + ": embedding.pooling");
  x.options_.embedding.layer = static_cast<int>(detail::json_int(m["embedding"], "layer", where, -(1 << 16), 1 << 16));
  if (x.options_.embedding.pooling == Pooling::none) detail::fail(where, "embedding.pooling is none");
  if (m.contains("model") && m["model"].is_object()) {
    x.model_path_ = detail::json_string(m["model"], "path", where, "");
    const std::string fp = detail::json_string(m["model"], "fingerprint", where, "");
    if (!fp.empty() && (fp.size() != 16 || fp.find_first_not_of("0123456789abcdef") != std::string::npos))
      detail::fail(where, "model.fingerprint \"" + fp + "\" is not 16 hexadecimal digits");
    x.fingerprint_ = fp.empty() ? 0 : std::stoull(fp, nullptr, 16);
  }
  if (m.contains("hnsw")) x.hnsw_params_ = m["hnsw"];
  x.fit_statistics_ = false;
  return x;
}

template <class Backend>
BasicSemanticIndex<Backend> BasicSemanticIndex<Backend>::load(const std::string& path, const BasicGPT2<Backend>& model) {
  BasicSemanticIndex x = load(path);
  x.use_model(model);
  return x;
}

template <class Backend>
void BasicSemanticIndex<Backend>::use_model(const BasicGPT2<Backend>& model) {
  const GPT2Config& c = model.config();
  const std::string built = model_path_.empty() ? "" : " (built with " + model_path_ + ")";
  if (static_cast<std::size_t>(c.n_embd) != dim_)
    detail::fail("SemanticIndex", "the index holds vectors of " + std::to_string(dim_) + " floats, but the model " +
                                      model.name_or_path() + " has n_embd " + std::to_string(c.n_embd) + built);
  const std::uint64_t fp = detail::model_fingerprint(c, model.weights());
  if (fingerprint_ != 0 && fp != fingerprint_)
    detail::fail("SemanticIndex", "the index was built with another model" + built + ": fingerprint " +
                                      detail::hex64(fingerprint_) + ", " + model.name_or_path() + " has " + detail::hex64(fp));
  options_.embedding.validate(c);
  model_ = model;
  if (fingerprint_ == 0) fingerprint_ = fp;
  if (model_path_.empty() && !model.name_or_path().empty())
    model_path_ = std::filesystem::absolute(model.name_or_path()).lexically_normal().string();
}

template <class Backend>
void BasicSemanticIndex<Backend>::own() {
  if (file_.file) {
    own_ = detail::IndexBuffers::copy_of(file_.arrays);
    file_ = detail::IndexFile{};
  }
  graph_.reset();
  own_.hnsw.clear();
  hnsw_params_ = nlohmann::json();
}

template <class Backend>
void BasicSemanticIndex<Backend>::add(const std::vector<Document>& documents) {
  if (!model_) detail::fail("SemanticIndex.add", "the index has no model to embed with (use_model, or add_embedded)");
  const Tokenizer& tok = model_->tokenizer();
  std::vector<std::vector<detail::TextChunk>> chunks(documents.size());
  std::vector<std::vector<int>> ids;
  for (std::size_t d = 0; d < documents.size(); ++d) {
    chunks[d] = detail::chunk_text(tok, documents[d].text, static_cast<std::size_t>(options_.chunk_tokens),
                                   static_cast<std::size_t>(options_.chunk_overlap));
    for (auto& c : chunks[d]) ids.push_back(std::move(c.ids));
  }
  EmbeddingOptions eo = options_.embedding;
  eo.normalize = false;
  const Embeddings e = model_->embed(ids, eo);
  own();
  std::size_t row = 0;
  for (std::size_t d = 0; d < documents.size(); ++d) {
    const std::int64_t doc = static_cast<std::int64_t>(own_.document_offsets.size() - 1);
    own_.text += documents[d].text;
    own_.document_offsets.push_back(static_cast<std::int64_t>(own_.text.size()));
    own_.names += documents[d].source;
    own_.name_offsets.push_back(static_cast<std::int64_t>(own_.names.size()));
    for (const auto& c : chunks[d]) {
      own_.chunk_document.push_back(doc);
      own_.chunk_span.push_back(static_cast<std::int64_t>(c.begin));
      own_.chunk_span.push_back(static_cast<std::int64_t>(c.end));
      ++row;
    }
  }
  append_raw(e.data.data(), row);
}

template <class Backend>
void BasicSemanticIndex<Backend>::add_embedded(const std::string& source, std::string_view text,
                                               const std::vector<std::pair<std::size_t, std::size_t>>& spans,
                                               const float* vectors) {
  for (std::size_t i = 0; i < spans.size(); ++i)
    if (spans[i].first > spans[i].second || spans[i].second > text.size())
      detail::fail("SemanticIndex.add_embedded", "span " + std::to_string(i) + " [" + std::to_string(spans[i].first) +
                                                     ", " + std::to_string(spans[i].second) + ") is outside the text of " +
                                                     std::to_string(text.size()) + " bytes");
  own();
  const std::int64_t doc = static_cast<std::int64_t>(own_.document_offsets.size() - 1);
  own_.text += text;
  own_.document_offsets.push_back(static_cast<std::int64_t>(own_.text.size()));
  own_.names += source;
  own_.name_offsets.push_back(static_cast<std::int64_t>(own_.names.size()));
  for (const auto& [b, e] : spans) {
    own_.chunk_document.push_back(doc);
    own_.chunk_span.push_back(static_cast<std::int64_t>(b));
    own_.chunk_span.push_back(static_cast<std::int64_t>(e));
  }
  append_raw(vectors, spans.size());
}

template <class Backend>
void BasicSemanticIndex<Backend>::append_raw(const float* raw, std::size_t n) {
  const std::size_t first = own_.vectors.size() / dim_;
  own_.vectors.resize((first + n) * dim_);
  if (fit_statistics_ && options_.standardization != Standardization::none) {
    raw_.insert(raw_.end(), raw, raw + n * dim_);
    dirty_ = true;  // statistics and every vector are computed again before the next search
  } else {
    for (std::size_t i = 0; i < n; ++i) transform(raw + i * dim_, own_.vectors.data() + (first + i) * dim_);
  }
}

template <class Backend>
void BasicSemanticIndex<Backend>::transform(const float* raw, float* out) const {
  const detail::IndexArrays a = arrays();
  for (std::size_t j = 0; j < dim_; ++j) {
    float v = raw[j];
    if (a.mean) v -= a.mean[j];
    if (a.std) v /= a.std[j];
    out[j] = v;
  }
  detail::normalize_l2(out, dim_);
}

template <class Backend>
void BasicSemanticIndex<Backend>::prepare() const {
  std::lock_guard<std::mutex> lock(*mutex_);
  if (!dirty_) return;
  const std::size_t n = raw_.size() / dim_;
  std::vector<double> mean(dim_, 0.0), var(dim_, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim_; ++j) mean[j] += raw_[i * dim_ + j];
  for (double& m : mean) m /= static_cast<double>(n ? n : 1);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim_; ++j) {
      const double d = raw_[i * dim_ + j] - mean[j];
      var[j] += d * d;
    }
  own_.mean.assign(mean.begin(), mean.end());
  own_.std.clear();
  if (options_.standardization == Standardization::standardize)
    for (double v : var) {
      const double sd = std::sqrt(v / static_cast<double>(n ? n : 1));
      own_.std.push_back(sd > 0 ? static_cast<float>(sd) : 1.0f);  // a constant dimension is left as it is
    }
  Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) transform(raw_.data() + i * dim_, own_.vectors.data() + i * dim_);
  });
  dirty_ = false;
}

template <class Backend>
void BasicSemanticIndex<Backend>::build_approximate(int M, int ef_construction) {
  if (M < 2 || M > 1000) detail::fail("build_approximate", "M is " + std::to_string(M) + ", must be in [2, 1000]");
  if (ef_construction < 1) detail::fail("build_approximate", "ef_construction is " + std::to_string(ef_construction));
  prepare();
  graph_ = std::make_unique<detail::HnswGraph>(detail::HnswGraph::build<Backend>(
      arrays().vectors, size(), dim_, static_cast<std::size_t>(M), static_cast<std::size_t>(ef_construction)));
  hnsw_params_ = {{"M", M}, {"ef_construction", ef_construction}};
}

template <class Backend>
nlohmann::json BasicSemanticIndex<Backend>::metadata() const {
  return {{"format", detail::index_format},
          {"version", detail::index_version},
          {"dim", dim_},
          {"rows", size()},
          {"documents", documents()},
          {"model", {{"path", model_path_}, {"fingerprint", fingerprint_ ? detail::hex64(fingerprint_) : ""}}},
          {"embedding", {{"pooling", pooling_name(options_.embedding.pooling)}, {"layer", options_.embedding.layer}}},
          {"standardization", standardization_name(options_.standardization)},
          {"chunk_tokens", options_.chunk_tokens},
          {"chunk_overlap", options_.chunk_overlap},
          {"tinyllm", version_string}};
}

template <class Backend>
void BasicSemanticIndex<Backend>::save(const std::string& path) const {
  prepare();
  detail::IndexArrays a = arrays();
  std::vector<std::uint8_t> graph;
  nlohmann::json m = metadata();
  if (graph_) {
    graph = graph_->to_bytes();
    a.hnsw = graph.data();
    a.hnsw_bytes = graph.size();
  }
  if (a.hnsw) m["hnsw"] = hnsw_params_.is_null() ? nlohmann::json::object() : hnsw_params_;
  detail::write_index(path, a, m);
}

template <class Backend>
void BasicSemanticIndex<Backend>::check_options(const SearchOptions& o) const {
  if (o.k < 1) detail::fail("SearchOptions.k", "is " + std::to_string(o.k) + ", must be at least 1");
  if (o.ef < 0) detail::fail("SearchOptions.ef", "is " + std::to_string(o.ef) + ", must be >= 0");
  if (o.candidates < 0) detail::fail("SearchOptions.candidates", "is " + std::to_string(o.candidates) + ", must be >= 0");
  if (o.approximate && !has_approximate())
    detail::fail("SearchOptions.approximate", "the index has no approximate graph (build_approximate, or "
                                              "`tinyllm index build --hnsw`)");
  if (o.rerank) detail::RerankPrompt check(o.prompt);
}

template <class Backend>
std::vector<float> BasicSemanticIndex<Backend>::embed_queries(const std::vector<std::string>& queries) const {
  if (!model_) detail::fail("SemanticIndex.search", "the index has no model to embed queries with (use_model)");
  EmbeddingOptions eo = options_.embedding;
  eo.normalize = false;
  eo.truncate = true;
  return model_->embed(queries, eo).data;
}

template <class Backend>
std::vector<std::vector<SearchHit>> BasicSemanticIndex<Backend>::search(const std::vector<std::string>& queries,
                                                                        const SearchOptions& o) const {
  check_options(o);
  if (o.rerank && !model_) detail::fail("SearchOptions.rerank", "the index has no model (use_model)");
  const std::vector<float> raw = embed_queries(queries);
  SearchOptions first = o;
  if (o.rerank) first.k = o.candidates ? std::max(o.candidates, o.k) : std::max(o.k, 20);
  prepare();
  std::vector<float> q(raw.size());
  for (std::size_t i = 0; i < queries.size(); ++i) transform(raw.data() + i * dim_, q.data() + i * dim_);
  auto hits = search_transformed(q, queries.size(), first);
  if (!o.rerank) return hits;
  // Rerank: every candidate chunk once, each paired with the queries it is a candidate for.
  std::vector<std::string> docs;
  std::vector<std::size_t> doc_of_row;
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  std::vector<std::pair<std::size_t, std::size_t>> where;  // pair -> (query, position in its hits)
  std::vector<std::size_t> slot(size(), static_cast<std::size_t>(-1));
  for (std::size_t i = 0; i < hits.size(); ++i)
    for (std::size_t h = 0; h < hits[i].size(); ++h) {
      std::size_t& s = slot[hits[i][h].chunk];
      if (s == static_cast<std::size_t>(-1)) {
        s = docs.size();
        docs.push_back(hits[i][h].text);
      }
      pairs.push_back({i, s});
      where.push_back({i, h});
    }
  const std::vector<double> scores = rerank_scores(*model_, queries, docs, pairs, o.prompt);
  for (std::size_t p = 0; p < pairs.size(); ++p) hits[where[p].first][where[p].second].rerank_score = scores[p];
  for (auto& list : hits) {
    std::stable_sort(list.begin(), list.end(),
                     [](const SearchHit& a, const SearchHit& b) { return a.rerank_score > b.rerank_score; });
    if (list.size() > static_cast<std::size_t>(o.k)) list.resize(static_cast<std::size_t>(o.k));
  }
  return hits;
}

template <class Backend>
std::vector<std::vector<SearchHit>> BasicSemanticIndex<Backend>::search_vectors(const float* queries, std::size_t n,
                                                                                const SearchOptions& o) const {
  check_options(o);
  if (o.rerank) detail::fail("SearchOptions.rerank", "needs query texts (search), not vectors");
  prepare();
  std::vector<float> q(n * dim_);
  for (std::size_t i = 0; i < n; ++i) transform(queries + i * dim_, q.data() + i * dim_);
  return search_transformed(q, n, o);
}

template <class Backend>
std::vector<std::vector<SearchHit>> BasicSemanticIndex<Backend>::search_transformed(const std::vector<float>& q,
                                                                                    std::size_t n,
                                                                                    const SearchOptions& o) const {
  const std::size_t k = static_cast<std::size_t>(o.k);
  std::vector<std::vector<detail::Scored>> found;
  if (o.approximate) {
    {
      std::lock_guard<std::mutex> lock(*mutex_);
      const detail::IndexArrays a = arrays();
      if (!graph_)
        graph_ = std::make_unique<detail::HnswGraph>(
            detail::HnswGraph::from_bytes(a.hnsw, a.hnsw_bytes, a.rows, dim_, file_.file ? file_.file->path() : "index"));
    }
    found.resize(n);
    const std::size_t ef = o.ef ? static_cast<std::size_t>(o.ef) : std::max<std::size_t>(k, 64);
    Backend::parallel_for(0, n, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) found[i] = graph_->search(q.data() + i * dim_, k, ef);
    });
  } else {
    found = detail::exact_search<Backend>(f32_matrix(arrays().vectors, size(), dim_), q.data(), n, k);
  }
  std::vector<std::vector<SearchHit>> out(n);
  for (std::size_t i = 0; i < n; ++i)
    for (const detail::Scored& s : found[i]) {
      SearchHit h = chunk(s.row);
      h.score = s.score;
      out[i].push_back(std::move(h));
    }
  return out;
}

template <class Backend>
SearchHit BasicSemanticIndex<Backend>::chunk(std::size_t row) const {
  const detail::IndexArrays a = arrays();
  if (row >= a.rows)
    detail::fail("SemanticIndex.chunk", std::to_string(row) + " is not a chunk (the index has " + std::to_string(a.rows) + ")");
  SearchHit h;
  h.chunk = row;
  h.score = std::numeric_limits<float>::quiet_NaN();
  h.document = static_cast<std::size_t>(a.chunk_document[row]);
  h.source = document_name(h.document);
  h.begin = static_cast<std::size_t>(a.chunk_span[2 * row]);
  h.end = static_cast<std::size_t>(a.chunk_span[2 * row + 1]);
  h.text.assign(a.text + a.document_offsets[h.document] + h.begin, h.end - h.begin);
  return h;
}

template <class Backend>
std::string BasicSemanticIndex<Backend>::document_name(std::size_t d) const {
  const detail::IndexArrays a = arrays();
  if (d >= a.documents) detail::fail("SemanticIndex.document_name", std::to_string(d) + " is not a document");
  return std::string(a.names + a.name_offsets[d], static_cast<std::size_t>(a.name_offsets[d + 1] - a.name_offsets[d]));
}

template <class Backend>
std::string BasicSemanticIndex<Backend>::document_text(std::size_t d) const {
  const detail::IndexArrays a = arrays();
  if (d >= a.documents) detail::fail("SemanticIndex.document_text", std::to_string(d) + " is not a document");
  return std::string(a.text + a.document_offsets[d],
                     static_cast<std::size_t>(a.document_offsets[d + 1] - a.document_offsets[d]));
}

}  // namespace tinyllm
