// SemanticIndex and its parts: the search kernels against their scalar twins (inner products within
// a stated tolerance, and bitwise the same alone or among other queries; the threshold scan
// bitwise), top-k selection and exact search against a full sort, chunking (spans, overlap, UTF-8),
// the index end to end on the demo model (a chunk finds itself; save + load give the same results;
// adding after load), LM reranking against log-probabilities from forward(), approximate search's
// recall against exact search (hnswlib), and every malformed index file as an Error naming it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>

#include <tinyllm/semantic_index.hpp>

#include "test_helpers.hpp"

namespace {

using tinyllm::detail::Scored;

const std::vector<tinyllm::Document> demo_docs = {
    {"moby.txt",
     "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and "
     "nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of "
     "the world. It is a way I have of driving off the spleen and regulating the circulation."},
    {"union.txt",
     "The state of the Union is strong. We the people of the United States, in order to form a more perfect union, "
     "establish justice, insure domestic tranquility, provide for the common defense, promote the general welfare."},
    {"whale.txt", "The whale is the largest animal of the sea, and the ship followed it for three days."},
    {"empty.txt", ""},
};

tinyllm::SemanticIndex demo_index(const tinyllm::GPT2& model, tinyllm::Standardization s = tinyllm::Standardization::standardize) {
  tinyllm::IndexOptions o;
  o.chunk_tokens = 24;
  o.chunk_overlap = 6;
  o.standardization = s;
  tinyllm::SemanticIndex index(model, o);
  index.add(demo_docs);
  return index;
}

std::vector<float> unit_vectors(std::size_t n, std::size_t d, std::uint64_t seed) {
  auto v = test::random_floats(n * d, seed);
  for (std::size_t i = 0; i < n; ++i) tinyllm::detail::normalize_l2(v.data() + i * d, d);
  return v;
}

// A safetensors file's header and data, to damage and write back.
struct RawFile {
  nlohmann::json header;
  std::string data;
  explicit RawFile(const std::string& path) {
    const std::string b = test::read_file(path);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(b[static_cast<std::size_t>(i)]);
    header = nlohmann::json::parse(b.substr(8, n));
    data = b.substr(8 + n);
  }
  void write(const std::string& path) const {
    std::string h = header.dump();
    while (h.size() % 8) h += ' ';
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(h.size() >> (8 * i));
    test::write_file(path, out + h + data);
  }
  nlohmann::json meta() const { return nlohmann::json::parse(header["__metadata__"]["tinyllm.index"].get<std::string>()); }
  void set_meta(const nlohmann::json& m) { header["__metadata__"]["tinyllm.index"] = m.dump(); }
  void set_i64(const std::string& tensor, std::size_t i, std::int64_t v) {
    const std::size_t at = header[tensor]["data_offsets"][0].get<std::size_t>() + 8 * i;
    std::memcpy(&data[at], &v, 8);
  }
};

}  // namespace

TEST_CASE("inner_products: the SIMD kernel within 1e-5 x sum|x w| of its scalar twin, and a query alone == among others") {
#ifdef TINYLLM_NO_SIMD
  MESSAGE("skipped: TINYLLM_NO_SIMD, the kernel is its scalar twin");
  return;
#endif
  for (auto type : {tinyllm::WeightType::F32, tinyllm::WeightType::F16, tinyllm::WeightType::BF16})
    for (std::size_t K : {1, 7, 16, 17, 51, 128, 200})
      for (std::size_t M : {1, 2, 5, 6, 7, 13}) {
        const std::size_t N = 37;
        CAPTURE(K);
        CAPTURE(M);
        const auto x = test::random_floats(M * K, K * 31 + M);
        const auto wf = test::random_floats(N * K, K * 7 + 1);
        std::vector<std::uint16_t> half(N * K);
        for (std::size_t i = 0; i < N * K; ++i)
          half[i] = type == tinyllm::WeightType::F16 ? tinyllm::detail::f32_to_f16(wf[i]) : tinyllm::detail::f32_to_bf16(wf[i]);
        tinyllm::WeightView w = tinyllm::f32_matrix(wf.data(), N, K);
        if (type != tinyllm::WeightType::F32) {
          w.type = type;
          w.data = half.data();
        }
        std::vector<float> got(M * N, -1), want(M * N, -2), one(N);
        tinyllm::kernels::impl::inner_products(M, x.data(), K, w, got.data(), N, K, 3, N);
        tinyllm::kernels::scalar::inner_products(M, x.data(), K, w, want.data(), N, K, 3, N);
        for (std::size_t m = 0; m < M; ++m) {
          tinyllm::kernels::impl::inner_products(1, x.data() + m * K, K, w, one.data(), N, K, 3, N);
          CHECK(std::memcmp(one.data() + 3, got.data() + m * N + 3, (N - 3) * 4) == 0);
          CHECK(got[m * N + 2] == -1);  // outside the column range: untouched
          for (std::size_t n = 3; n < N; ++n) {
            double bound = 0;
            for (std::size_t k = 0; k < K; ++k) bound += std::abs(double(x[m * K + k]) * tinyllm::kernels::weight_at(w, n, k));
            CHECK(std::abs(double(got[m * N + n]) - want[m * N + n]) <= 1e-5 * bound);
          }
        }
      }
}

TEST_CASE("first_above: the SIMD scan finds the scalar twin's index, with tails, NaN and -inf") {
#ifdef TINYLLM_NO_SIMD
  MESSAGE("skipped: TINYLLM_NO_SIMD, the kernel is its scalar twin");
  return;
#endif
  std::mt19937_64 rng(5);
  for (std::size_t n : {0, 1, 15, 16, 63, 64, 65, 200, 1000}) {
    auto x = test::random_floats(n, n + 1);
    if (n > 10) x[7] = std::nanf(""), x[9] = -INFINITY;
    for (float t : {-10.0f, 0.0f, 1.5f, 2.5f, 100.0f}) {
      CAPTURE(n);
      CAPTURE(t);
      CHECK(tinyllm::kernels::impl::first_above(x.data(), n, t) == tinyllm::kernels::scalar::first_above(x.data(), n, t));
      for (std::size_t start : {std::size_t(1), std::size_t(3)})
        if (start < n)
          CHECK(tinyllm::kernels::impl::first_above(x.data() + start, n - start, t) ==
                tinyllm::kernels::scalar::first_above(x.data() + start, n - start, t));
    }
  }
}

TEST_CASE("TopK and exact_search: a full sort's k best (ties by row), on any chunking, backend and batch") {
  // scores with many ties: values from a small set
  std::mt19937_64 rng(9);
  std::vector<float> s(5000);
  for (float& v : s) v = static_cast<float>(rng() % 50) / 10.0f;
  s[100] = std::nanf("");
  for (std::size_t k : {1, 5, 10, 77}) {
    std::vector<Scored> all;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (!std::isnan(s[i])) all.push_back({s[i], i});
    std::sort(all.begin(), all.end(), tinyllm::detail::ranks_before);
    all.resize(k);
    tinyllm::detail::TopK whole(k), merged(k);
    whole.scan(s.data(), s.size(), 0);
    for (std::size_t c = 0; c < s.size(); c += 333) {
      tinyllm::detail::TopK part(k);
      part.scan(s.data() + c, std::min<std::size_t>(333, s.size() - c), c);
      merged.merge(part);
    }
    for (const auto* t : {&whole, &merged}) {
      const auto got = t->sorted();
      REQUIRE(got.size() == k);
      for (std::size_t i = 0; i < k; ++i) CHECK((got[i].row == all[i].row && got[i].score == all[i].score));
    }
  }
  // exact_search over random vectors: the k best by the kernel's own scores, one query or many
  const std::size_t N = 20011, d = 48, nq = 70, k = 10;
  const auto vectors = unit_vectors(N, d, 1), queries = unit_vectors(nq, d, 2);
  const auto w = tinyllm::f32_matrix(vectors.data(), N, d);
  const auto many = tinyllm::detail::exact_search<tinyllm::DefaultBackend>(w, queries.data(), nq, k);
  const auto serial = tinyllm::detail::exact_search<tinyllm::Serial>(w, queries.data(), nq, k);
  std::vector<float> scores(N);
  for (std::size_t q = 0; q < nq; ++q) {
    tinyllm::kernels::impl::inner_products(1, queries.data() + q * d, d, w, scores.data(), N, d, 0, N);
    std::vector<Scored> want;
    for (std::size_t i = 0; i < N; ++i) want.push_back({scores[i], i});
    std::sort(want.begin(), want.end(), tinyllm::detail::ranks_before);
    const auto alone = tinyllm::detail::exact_search<tinyllm::DefaultBackend>(w, queries.data() + q * d, 1, k)[0];
    REQUIRE(many[q].size() == k);
    for (std::size_t i = 0; i < k; ++i) {
      CHECK(many[q][i].row == want[i].row);
      CHECK(many[q][i].score == want[i].score);
      CHECK((alone[i].row == want[i].row && alone[i].score == want[i].score));
      CHECK((serial[q][i].row == want[i].row && serial[q][i].score == want[i].score));
    }
  }
}

TEST_CASE("chunking: windows of tokens with overlap, byte spans over the text, widened to whole UTF-8 characters") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const auto& tok = model.tokenizer();
  const std::string text = demo_docs[0].text + " " + demo_docs[1].text;
  const auto ids = tok.encode(text);
  const auto chunks = tinyllm::detail::chunk_text(tok, text, 20, 5);
  REQUIRE(ids.size() > 40);
  CHECK(chunks.size() == (ids.size() - 5 + 14) / 15);
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const auto& c = chunks[i];
    CHECK(std::vector<int>(ids.begin() + static_cast<long>(15 * i),
                           ids.begin() + static_cast<long>(std::min(ids.size(), 15 * i + 20))) == c.ids);
    CHECK(tok.decode(c.ids) == text.substr(c.begin, c.end - c.begin));
  }
  CHECK(chunks.front().begin == 0);
  CHECK(chunks.back().end == text.size());
  CHECK(tinyllm::detail::chunk_text(tok, "", 20, 5).empty());
  // CJK: tokens split characters; spans widen to whole characters and contain the tokens' bytes
  const std::string cjk = "鲸鱼是海里最大的动物。船跟着它走了三天三夜，水手们都累了。";
  for (const auto& c : tinyllm::detail::chunk_text(tok, cjk, 7, 2)) {
    CHECK((c.begin == 0 || !tinyllm::detail::utf8_continuation(static_cast<unsigned char>(cjk[c.begin]))));
    CHECK((c.end == cjk.size() || !tinyllm::detail::utf8_continuation(static_cast<unsigned char>(cjk[c.end]))));
    CHECK(cjk.substr(c.begin, c.end - c.begin).find(tok.decode(c.ids)) != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(tinyllm::detail::chunk_text(tok, text, 8, 8),
                       "chunking: chunk of 8 tokens with an overlap of 8: the overlap must be smaller than the "
                       "chunk (and the chunk at least 1 token)",
                       tinyllm::Error);
}

TEST_CASE("SemanticIndex: a chunk's own text finds it first; the vectors are unit length; every standardisation") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  for (auto s : {tinyllm::Standardization::none, tinyllm::Standardization::center, tinyllm::Standardization::standardize}) {
    CAPTURE(tinyllm::standardization_name(s));
    const auto index = demo_index(model, s);
    CHECK(index.documents() == 4);
    CHECK(index.size() > 4);
    CHECK(index.dim() == 128);
    for (std::size_t r = 0; r < index.size(); ++r) {
      double sq = 0;
      for (std::size_t j = 0; j < index.dim(); ++j) sq += double(index.vectors()[r * index.dim() + j]) * index.vectors()[r * index.dim() + j];
      CHECK(std::abs(sq - 1) < 1e-5);
    }
    std::vector<std::string> queries;
    for (std::size_t r = 0; r < index.size(); ++r) queries.push_back(index.chunk(r).text);
    const auto results = index.search(queries, {3});
    for (std::size_t r = 0; r < index.size(); ++r) {
      REQUIRE(results[r].size() == 3);
      const auto& top = results[r][0];
      CHECK(top.chunk == r);
      CHECK(top.score == doctest::Approx(1.0).epsilon(1e-5));
      CHECK(top.source == demo_docs[top.document].source);
      CHECK(top.text == demo_docs[top.document].text.substr(top.begin, top.end - top.begin));
      CHECK(results[r][1].score <= top.score);
      // one query alone gives the same scores as in the batch
      const auto alone = index.search(queries[r], {3});
      for (std::size_t i = 0; i < 3; ++i) CHECK((alone[i].chunk == results[r][i].chunk && alone[i].score == results[r][i].score));
    }
  }
}

TEST_CASE("SemanticIndex: save and load (mapped) give the same results; adding after load keeps the statistics") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const auto built = demo_index(model);
  test::TempDir tmp;
  built.save(tmp / "a.index");
  const auto loaded = tinyllm::SemanticIndex::load(tmp / "a.index", model);
  CHECK(loaded.size() == built.size());
  CHECK(loaded.documents() == 4);
  CHECK(loaded.options().chunk_tokens == 24);
  CHECK(loaded.options().embedding.pooling == tinyllm::Pooling::weighted_mean);
  CHECK(loaded.model_path() == std::filesystem::absolute(test::demo_model()).lexically_normal().string());
  CHECK(std::memcmp(loaded.vectors(), built.vectors(), built.size() * built.dim() * 4) == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(loaded.vectors()) % 64 == 0);
  const std::vector<std::string> queries = {"a whale and a ship at sea", "the people of the United States"};
  const auto a = built.search(queries, {5}), b = loaded.search(queries, {5});
  for (std::size_t q = 0; q < 2; ++q)
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(a[q][i].chunk == b[q][i].chunk);
      CHECK(a[q][i].score == b[q][i].score);
      CHECK(a[q][i].text == b[q][i].text);
    }
  CHECK(loaded.document_text(2) == demo_docs[2].text);
  CHECK(loaded.document_name(3) == "empty.txt");
  // without a model: searches by vector, not by text
  auto plain = tinyllm::SemanticIndex::load(tmp / "a.index");
  CHECK_THROWS_WITH_AS(plain.search("whale"), "SemanticIndex.search: the index has no model to embed queries with (use_model)",
                       tinyllm::Error);
  tinyllm::EmbeddingOptions eo;
  eo.pooling = tinyllm::Pooling::weighted_mean;
  const auto qv = model.embed(queries[0], eo);
  const auto byvec = plain.search_vectors(qv.data(), 1, {5});
  for (std::size_t i = 0; i < 5; ++i) CHECK((byvec[0][i].chunk == a[0][i].chunk && byvec[0][i].score == a[0][i].score));
  // adding to a loaded index: its statistics stay, the new chunk is searchable
  auto grown = tinyllm::SemanticIndex::load(tmp / "a.index", model);
  grown.add("more.txt", "Ahab stood on the deck of the Pequod and watched the sea.");
  CHECK(grown.documents() == 5);
  CHECK(grown.search("Ahab stood on the deck of the Pequod and watched the sea.", {1})[0].source == "more.txt");
  grown.save(tmp / "b.index");
  const auto reloaded = tinyllm::SemanticIndex::load(tmp / "b.index", model);
  CHECK(std::memcmp(reloaded.vectors(), built.vectors(), built.size() * built.dim() * 4) == 0);  // old rows unchanged
  CHECK(reloaded.size() == built.size() + 1);
}

TEST_CASE("SemanticIndex: vectors from elsewhere, and bad options") {
  tinyllm::SemanticIndex index(4, tinyllm::Standardization::none);
  const std::vector<float> v = {1, 0, 0, 0, 0, 1, 0, 0, 0.6f, 0.8f, 0, 0};
  index.add_embedded("doc", "abcdef", {{0, 2}, {2, 4}, {4, 6}}, v.data());
  const std::vector<float> q = {0, 2, 0, 0};
  const auto hits = index.search_vectors(q.data(), 1, {2});
  REQUIRE(hits[0].size() == 2);
  CHECK(hits[0][0].text == "cd");
  CHECK(hits[0][1].text == "ef");
  CHECK(hits[0][1].score == doctest::Approx(0.8));
  CHECK_THROWS_WITH_AS(index.add_embedded("x", "ab", {{1, 3}}, v.data()),
                       "SemanticIndex.add_embedded: span 0 [1, 3) is outside the text of 2 bytes", tinyllm::Error);
  CHECK_THROWS_WITH_AS(index.search_vectors(q.data(), 1, {0}), "SearchOptions.k: is 0, must be at least 1", tinyllm::Error);
  tinyllm::SearchOptions approx;
  approx.approximate = true;
  CHECK_THROWS_AS(index.search_vectors(q.data(), 1, approx), tinyllm::Error);
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  tinyllm::IndexOptions bad;
  bad.chunk_overlap = bad.chunk_tokens;
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex(model, bad), "IndexOptions.chunk_overlap: is 128, must be in [0, chunk_tokens = 128)",
                       tinyllm::Error);
  bad = {};
  bad.chunk_tokens = 300;
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex(model, bad), "IndexOptions.chunk_tokens: is 300, must be in [1, n_positions = 256]",
                       tinyllm::Error);
  bad = {};
  bad.embedding.pooling = tinyllm::Pooling::none;
  CHECK_THROWS_AS(tinyllm::SemanticIndex(model, bad), tinyllm::Error);
  const auto demo = demo_index(model);
  tinyllm::SearchOptions rr;
  rr.rerank = true;
  rr.prompt = "no placeholders";
  CHECK_THROWS_WITH_AS(demo.search("whale", rr),
                       "rerank prompt: must contain {document} and then {query} (got \"no placeholders\")", tinyllm::Error);
  CHECK_THROWS_WITH_AS(tinyllm::standardization_from_name("whiten", "--standardization"),
                       "--standardization: 'whiten' is not one of none, center, standardize", tinyllm::Error);
}

TEST_CASE("rerank_scores: log p(query | document, prompt) as forward()'s log-softmax gives it, for every pair") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const auto& tok = model.tokenizer();
  const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
  const std::vector<std::string> docs = {demo_docs[0].text, demo_docs[2].text, "", "Short."};
  const std::vector<std::string> queries = {"a whale at sea", "the Union", "x"};
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t i = 0; i < queries.size(); ++i)
    for (std::size_t j = 0; j < docs.size(); ++j) pairs.push_back({i, j});
  for (const std::string prompt : {std::string(tinyllm::default_rerank_prompt), std::string("{document}\n{query}.")}) {
    CAPTURE(prompt);
    const auto got = tinyllm::rerank_scores(model, queries, docs, pairs, prompt);
    const tinyllm::detail::RerankPrompt parts(prompt);
    for (std::size_t p = 0; p < pairs.size(); ++p) {
      std::vector<int> ids = tok.encode(parts.head);
      if (ids.empty()) ids.push_back(model.config().bos_token_id);
      for (const std::string& piece : {docs[pairs[p].second], parts.middle}) {
        const auto more = tok.encode(piece);
        ids.insert(ids.end(), more.begin(), more.end());
      }
      const std::size_t start = ids.size();
      for (const std::string& piece : {queries[pairs[p].first], parts.tail}) {
        const auto more = tok.encode(piece);
        ids.insert(ids.end(), more.begin(), more.end());
      }
      const auto logits = model.forward(ids);
      double want = 0;
      for (std::size_t t = start; t < ids.size(); ++t)
        want += double(logits[(t - 1) * V + static_cast<std::size_t>(ids[t])]) -
                tinyllm::detail::log_normalizer(logits.data() + (t - 1) * V, V);
      CAPTURE(p);
      CHECK(got[p] == want);  // the same rows, bitwise, through cached passes
    }
  }
  // a query that cannot fit the context, and bad pairs
  const std::string huge(3000, 'a');
  CHECK_THROWS_AS(tinyllm::rerank_scores(model, {huge}, docs, {{0, 0}}), tinyllm::Error);
  CHECK_THROWS_WITH_AS(tinyllm::rerank_scores(model, queries, docs, {{0, 9}}), "rerank: pair (0, 9) names no query or document",
                       tinyllm::Error);
  // reranking in a search: the best candidates by the model's scores, which are reported
  const auto index = demo_index(model);
  tinyllm::SearchOptions o;
  o.k = 2;
  o.rerank = true;
  const auto hits = index.search("The whale is the largest animal of the sea", o);
  REQUIRE(hits.size() == 2);
  CHECK(hits[0].rerank_score >= hits[1].rerank_score);
  CHECK(hits[0].source == "whale.txt");
  CHECK(std::isfinite(hits[0].rerank_score));
}

TEST_CASE("approximate search (hnswlib): recall@10 against exact search, kept by save and load") {
  if (!tinyllm::hnsw_available()) {
    MESSAGE("skipped: this build has no hnswlib");
    tinyllm::SemanticIndex index(4, tinyllm::Standardization::none);
    CHECK_THROWS_WITH_AS(index.build_approximate(), "approximate search: this build has no hnswlib (Debian: apt-get install "
                                                    "libhnswlib-dev, then rebuild)", tinyllm::Error);
    return;
  }
  const std::size_t N = 4000, d = 32, nq = 100;
  const auto vectors = unit_vectors(N, d, 3), queries = unit_vectors(nq, d, 4);
  tinyllm::SemanticIndex index(d, tinyllm::Standardization::none);
  std::vector<std::pair<std::size_t, std::size_t>> spans(N, {0, 0});
  index.add_embedded("random", "", spans, vectors.data());
  index.build_approximate(16, 100);
  CHECK(index.has_approximate());
  tinyllm::SearchOptions exact, approx;
  exact.k = approx.k = 10;
  approx.approximate = true;
  approx.ef = 100;
  const auto e = index.search_vectors(queries.data(), nq, exact), a = index.search_vectors(queries.data(), nq, approx);
  std::size_t found = 0;
  for (std::size_t q = 0; q < nq; ++q)
    for (const auto& h : a[q]) {
      for (const auto& x : e[q]) found += x.chunk == h.chunk;
      CHECK(h.score == doctest::Approx(std::inner_product(queries.begin() + static_cast<long>(q * d),
                                                          queries.begin() + static_cast<long>((q + 1) * d),
                                                          vectors.begin() + static_cast<long>(h.chunk * d), 0.0)).epsilon(1e-4));
    }
  const double recall = double(found) / double(nq * 10);
  MESSAGE("recall@10 with ef 100: " << recall);
  CHECK(recall >= 0.95);
  test::TempDir tmp;
  index.save(tmp / "h.index");
  const auto loaded = tinyllm::SemanticIndex::load(tmp / "h.index");
  CHECK(loaded.has_approximate());
  const auto b = loaded.search_vectors(queries.data(), nq, approx);
  for (std::size_t q = 0; q < nq; ++q)
    for (std::size_t i = 0; i < 10; ++i) CHECK((b[q][i].chunk == a[q][i].chunk && b[q][i].score == a[q][i].score));
  // a damaged graph is an Error naming the file, not a crash
  RawFile raw(tmp / "h.index");
  const std::size_t at = raw.header["hnsw"]["data_offsets"][0].get<std::size_t>();
  std::string good = raw.data;
  std::uint64_t count = 7;
  std::memcpy(&raw.data[at + 16], &count, 8);  // hnswlib's element count
  raw.write(tmp / "bad.index");
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(tmp / "bad.index").search_vectors(queries.data(), 1, approx),
                       (tmp / "bad.index" + ": tensor hnsw: is a graph of 7 vectors, the index has 4000").c_str(), tinyllm::Error);
}

TEST_CASE("malformed index files: every case an Error naming the file and the problem") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  test::TempDir tmp;
  const std::string path = tmp / "good.index", bad = tmp / "bad.index";
  demo_index(model).save(path);
  const RawFile good(path);
  const std::size_t rows = good.meta()["rows"];
  auto load_error = [&](const std::string& want) {
    CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad, model), (bad + ": " + want).c_str(), tinyllm::Error);
  };
  auto with = [&](auto change) {
    RawFile r = good;
    change(r);
    r.write(bad);
  };
  // truncated
  const std::string bytes = test::read_file(path);
  test::write_file(bad, bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains((bad + ": tensor").c_str()), tinyllm::Error);
  test::write_file(bad, bytes.substr(0, 5));
  load_error("file is 5 bytes, too small for a safetensors header");
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(tmp / "missing.index"), doctest::Contains("missing.index: cannot open"),
                       tinyllm::Error);
  // a model file, not an index
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(test::demo_model() + "/model.safetensors"),
                       doctest::Contains("not a tinyllm semantic index"), tinyllm::Error);
  // wrong dtype and shape
  with([](RawFile& r) { r.header["vectors"]["dtype"] = "I32"; });
  load_error("tensor vectors has dtype I32, expected F32");
  with([&](RawFile& r) { r.header["vectors"]["shape"] = {rows * 128}; });
  load_error("tensor vectors has shape [" + std::to_string(rows * 128) + "], expected [" + std::to_string(rows) + ",128]");
  with([](RawFile& r) { r.header.erase("chunk_span"); });
  load_error("missing tensor chunk_span (not a tinyllm index, or a damaged one)");
  with([](RawFile& r) { r.header.erase("std"); });
  load_error("missing tensor std (not a tinyllm index, or a damaged one)");
  // bad metadata
  with([](RawFile& r) { r.header["__metadata__"]["tinyllm.index"] = "{not json"; });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains((bad + " (__metadata__ tinyllm.index): invalid JSON").c_str()),
                       tinyllm::Error);
  with([](RawFile& r) { auto m = r.meta(); m["version"] = 2; r.set_meta(m); });
  load_error("is an index of format version 2; this tinyllm reads version 1");
  with([](RawFile& r) { auto m = r.meta(); m.erase("dim"); r.set_meta(m); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), (bad + " (__metadata__ tinyllm.index): missing field 'dim'").c_str(),
                       tinyllm::Error);
  with([](RawFile& r) { auto m = r.meta(); m["rows"] = 3; r.set_meta(m); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains("tensor vectors has shape"), tinyllm::Error);
  with([](RawFile& r) { auto m = r.meta(); m["embedding"]["pooling"] = "max"; r.set_meta(m); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains("embedding.pooling: 'max' is not one of"), tinyllm::Error);
  with([](RawFile& r) { auto m = r.meta(); m["standardization"] = "whiten"; r.set_meta(m); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains("'standardization' is \"whiten\""), tinyllm::Error);
  with([](RawFile& r) { auto m = r.meta(); m["model"]["fingerprint"] = "xyz"; r.set_meta(m); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains("model.fingerprint \"xyz\" is not 16 hexadecimal digits"),
                       tinyllm::Error);
  with([](RawFile& r) { r.header["__metadata__"].erase("tinyllm.index"); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains("not a tinyllm semantic index"), tinyllm::Error);
  // offsets and spans out of range
  const std::int64_t text_bytes = good.header["document_text"]["shape"][0];
  with([&](RawFile& r) { r.set_i64("document_offsets", 4, text_bytes + 1); });
  load_error("tensor document_offsets ends at " + std::to_string(text_bytes + 1) + ", but its text holds " +
             std::to_string(text_bytes) + " bytes");
  with([&](RawFile& r) { r.set_i64("document_offsets", 2, 1); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains("tensor document_offsets decreases at entry 2"),
                       tinyllm::Error);
  with([&](RawFile& r) { r.set_i64("name_offsets", 0, 3); });
  load_error("tensor name_offsets starts at 3, not 0");
  with([&](RawFile& r) { r.set_i64("chunk_span", 1, 100000); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad), doctest::Contains((bad + ": chunk 0 spans bytes [0, 100000) of document 0").c_str()),
                       tinyllm::Error);
  with([&](RawFile& r) { r.set_i64("chunk_document", 0, 99); });
  load_error("chunk 0 names document 99, but the index has 4");
  // the wrong model: another n_embd, or other weights
  const auto other = tinyllm::GPT2::from_pretrained(test::fixture("embeddings/f16-h3-odd"));
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(path, other),
                       doctest::Contains("the index holds vectors of 128 floats, but the model"), tinyllm::Error);
  with([](RawFile& r) { auto m = r.meta(); m["model"]["fingerprint"] = "0123456789abcdef"; r.set_meta(m); });
  CHECK_THROWS_WITH_AS(tinyllm::SemanticIndex::load(bad, model),
                       doctest::Contains("SemanticIndex: the index was built with another model"), tinyllm::Error);
  // and the unchanged file still loads
  CHECK(tinyllm::SemanticIndex::load(path, model).size() == rows);
}
