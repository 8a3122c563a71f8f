// Looking inside the model: inspect()'s attentions and hidden states against the PyTorch oracle
// (tests/reference/make_explain_fixtures.py, HF semantics) on fixtures of other sizes, n_head 3, 4
// and 5, F32 / F16 / BF16 weights, an untied head, a sequence longer than the attention kernel's
// query block, and the demo model; the logit lens, direct logit attribution (and its sum identity),
// attention rollout and occlusion saliency against the oracle and on hand-made models whose
// answers are known; bad arguments.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <tinyllm/explain.hpp>
#include <tinyllm/io/safetensors_writer.hpp>

#include "test_helpers.hpp"

namespace {

struct Fixture {
  std::string name, dir;
};
const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> f = {
      {"f32-hub", test::fixture("f32-hub")},
      {"f16-prefix-odd", test::fixture("f16-prefix-odd")},
      {"bf16-untied-tokjson", test::fixture("bf16-untied-tokjson")},
      {"f32-sharded-inner", test::fixture("f32-sharded-inner")},
      {"f32-explain-long", test::fixture("f32-explain-long")},
      {"demo", test::demo_model()},
  };
  return f;
}
std::string expected_dir(const Fixture& f) { return f.name == "demo" ? test::fixture("demo_explain") : f.dir; }
nlohmann::json expected(const Fixture& f) { return test::read_json(expected_dir(f) + "/explain_expected.json"); }

// max |a - b| <= tol * max |b| over n values
void check_close(const float* a, const float* b, std::size_t n, double tol, const std::string& label) {
  double d, m;
  test::max_errors(a, b, n, d, m);
  INFO(label << ": max |diff| " << d << ", max |ref| " << m << ", ratio " << d / m);
  CHECK(d <= tol * m);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The message of the Error that f throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const tinyllm::Error& e) {
    return e.what();
  }
  return "";
}

// A hand-made GPT-2 (F32, vocabulary 40, no tokenizer): random weights, except that `silent` blocks
// write nothing into the residual stream (attention and MLP c_proj all zero) and `uniform` blocks
// attend uniformly (the query part of c_attn zero, so every score is 0).
void write_handmade(const std::string& dir, bool silent, bool uniform) {
  tinyllm::GPT2Config c;
  c.vocab_size = 40, c.n_positions = 32, c.n_embd = 16, c.n_layer = 2, c.n_head = 2;
  test::write_file(dir + "/config.json",
                   nlohmann::json{{"model_type", "gpt2"}, {"vocab_size", c.vocab_size}, {"n_positions", c.n_positions},
                                  {"n_embd", c.n_embd}, {"n_layer", c.n_layer}, {"n_head", c.n_head},
                                  {"bos_token_id", 0}, {"eos_token_id", 0}}
                       .dump());
  std::vector<std::vector<float>> data;
  std::vector<tinyllm::detail::TensorToWrite> tensors;
  tinyllm::GPT2Weights w;
  std::uint64_t seed = 11;
  const std::size_t C = static_cast<std::size_t>(c.n_embd);
  tinyllm::for_each_tensor(c, w, [&](const tinyllm::TensorSpec& spec, auto&) {
    if (spec.optional) return;
    std::size_t n = 1;
    for (auto d : spec.shape) n *= static_cast<std::size_t>(d);
    std::vector<float> v = test::random_floats(n, ++seed, 0.5f);
    const std::string& name = spec.name;
    if (contains(name, "ln_") && contains(name, ".weight"))
      for (float& x : v) x = 1.0f + 0.1f * x;
    if (silent && contains(name, "c_proj")) v.assign(n, 0.0f);
    if (uniform && contains(name, "c_attn.weight"))
      for (std::size_t r = 0; r < C; ++r)
        for (std::size_t j = 0; j < C; ++j) v[r * 3 * C + j] = 0.0f;  // q = a @ W[:, :C] + b[:C]
    if (uniform && contains(name, "c_attn.bias"))
      for (std::size_t j = 0; j < C; ++j) v[j] = 0.0f;
    data.push_back(std::move(v));
    tensors.push_back({name, tinyllm::DType::F32, spec.shape, nullptr, n * sizeof(float)});
  });
  for (std::size_t i = 0; i < tensors.size(); ++i) tensors[i].data = data[i].data();
  tinyllm::detail::write_safetensors(dir + "/model.safetensors", tensors);
}

tinyllm::InspectOptions everything() {
  tinyllm::InspectOptions o;
  o.attentions = o.hidden_states = true;
  return o;
}

}  // namespace

TEST_CASE("inspect: attentions and hidden states equal the PyTorch oracle's (HF layout) within 1e-5 x max|value|") {
  for (const Fixture& f : fixtures()) {
    CAPTURE(f.name);
    const auto model = tinyllm::GPT2::from_pretrained(f.dir);
    const auto& c = model.config();
    const auto exp = expected(f);
    const std::vector<int> ids = exp["ids"];
    const std::size_t T = ids.size(), C = static_cast<std::size_t>(c.n_embd), H = static_cast<std::size_t>(c.n_head);
    const auto att = test::read_f32(expected_dir(f) + "/" + exp["attentions"]["file"].get<std::string>());
    const auto hid = test::read_f32(expected_dir(f) + "/" + exp["hidden_states"]["file"].get<std::string>());
    REQUIRE(att.size() == static_cast<std::size_t>(c.n_layer) * H * T * T);
    REQUIRE(hid.size() == static_cast<std::size_t>(c.n_layer + 1) * T * C);

    const tinyllm::Inspection insp = model.inspect(ids, everything());
    REQUIRE(insp.size() == T);
    REQUIRE(insp.attentions.size() == static_cast<std::size_t>(c.n_layer));
    REQUIRE(insp.hidden_states.size() == static_cast<std::size_t>(c.n_layer + 1));
    for (int l = 0; l < c.n_layer; ++l) {
      const std::size_t L = static_cast<std::size_t>(l);
      REQUIRE(insp.attentions[L].size() == H * T * T);
      check_close(insp.attentions[L].data(), att.data() + L * H * T * T, H * T * T, 1e-5,
                  "attentions[" + std::to_string(l) + "]");
    }
    for (int l = 0; l <= c.n_layer; ++l) {
      const std::size_t L = static_cast<std::size_t>(l);
      REQUIRE(insp.hidden_states[L].size() == T * C);
      check_close(insp.hidden_states[L].data(), hid.data() + L * T * C, T * C, 1e-5,
                  "hidden_states[" + std::to_string(l) + "]");
    }
    // the logits are forward()'s, bit for bit
    CHECK(insp.logits == model.forward(ids));
  }
}

TEST_CASE("inspect: attention rows sum to 1 with zeros right of the diagonal; hidden states as HF defines them") {
  for (const Fixture& f : fixtures()) {
    CAPTURE(f.name);
    const auto model = tinyllm::GPT2::from_pretrained(f.dir);
    const auto& c = model.config();
    const std::vector<int> ids = expected(f)["ids"];
    const std::size_t T = ids.size(), C = static_cast<std::size_t>(c.n_embd);
    const auto insp = model.inspect(ids, everything());
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h) {
        const float* a = insp.attention(l, h);
        for (std::size_t q = 0; q < T; ++q) {
          double sum = 0;
          for (std::size_t k = 0; k <= q; ++k) {
            CHECK(a[q * T + k] >= 0.0f);
            sum += a[q * T + k];
          }
          CHECK(std::abs(sum - 1.0) < 1e-5);
          for (std::size_t k = q + 1; k < T; ++k) REQUIRE(a[q * T + k] == 0.0f);
        }
        CHECK(insp.attention(l, h, 0, 0) == 1.0f);  // the first token sees only itself
      }
    // [0] = wte[id] + wpe[pos]; [n_layer] = the ln_f output the head reads (so logits = it @ W_U)
    std::vector<float> row(C);
    for (std::size_t t = 0; t < T; ++t) {
      tinyllm::kernels::impl::dequantize_row(model.weights().wte, static_cast<std::size_t>(ids[t]), row.data());
      for (std::size_t j = 0; j < C; ++j) REQUIRE(insp.hidden_state(0)[t * C + j] == row[j] + model.weights().wpe[t * C + j]);
    }
    const std::size_t V = static_cast<std::size_t>(c.vocab_size);
    std::vector<float> logits(V);
    tinyllm::detail::lm_head<tinyllm::DefaultBackend>(model.weights(), insp.hidden_state(c.n_layer) + (T - 1) * C, 1,
                                                      logits.data());
    CHECK(std::equal(logits.begin(), logits.end(), insp.logits.begin() + static_cast<long>((T - 1) * V)));
  }
}

TEST_CASE("inspect: records only what is asked; a sequence seen through the cache gives the same attentions") {
  const auto model = tinyllm::GPT2::from_pretrained(test::fixture("f32-explain-long"));
  const std::vector<int> ids = expected(fixtures()[4])["ids"];
  tinyllm::InspectOptions none;
  none.logits = false;
  const auto bare = model.inspect(ids, none);
  CHECK(bare.attentions.empty());
  CHECK(bare.hidden_states.empty());
  CHECK(bare.logits.empty());
  CHECK(contains(error_of([&] { bare.attention(0, 0); }), "not recorded"));
  CHECK(contains(error_of([&] { bare.hidden_state(0); }), "not recorded"));
  // The attention kernel's optional output, fed in two pieces (a prompt, then the rest against the
  // cache), gives the rows of the one-piece pass: [n_head, T, pos0 + T] per call.
  const auto& c = model.config();
  const std::size_t T = ids.size(), split = 37, H = static_cast<std::size_t>(c.n_head);
  const auto whole = model.inspect(ids, everything());
  struct Probs : tinyllm::detail::ObserverHooks {
    std::vector<std::vector<float>> by_layer;
    std::size_t size = 0;
    float* attention_probs(int l) {
      by_layer[static_cast<std::size_t>(l)].assign(size, 0.0f);
      return by_layer[static_cast<std::size_t>(l)].data();
    }
  } probs;
  probs.by_layer.resize(static_cast<std::size_t>(c.n_layer));
  tinyllm::detail::InferenceState s(c);
  probs.size = H * split * split;
  tinyllm::detail::observed_forward<tinyllm::DefaultBackend>(c, model.weights(), s, ids.data(), split, probs);
  probs.size = H * (T - split) * T;
  tinyllm::detail::observed_forward<tinyllm::DefaultBackend>(c, model.weights(), s, ids.data() + split, T - split, probs);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t q = split; q < T; ++q)
      for (std::size_t k = 0; k < T; ++k)
        REQUIRE(probs.by_layer[1][(h * (T - split) + q - split) * T + k] ==
                whole.attention(1, static_cast<int>(h), static_cast<int>(q), static_cast<int>(k)));
}

TEST_CASE("logit lens: top tokens and the target's log-probability per layer equal the oracle's; the last row is the output") {
  for (const Fixture& f : fixtures()) {
    CAPTURE(f.name);
    const auto model = tinyllm::GPT2::from_pretrained(f.dir);
    const auto exp = expected(f);
    const std::vector<int> ids = exp["ids"];
    const int target = exp["target"], k = exp["top_k"];
    tinyllm::LogitLensOptions opts;
    opts.top_k = k;
    opts.target = target;
    const auto insp = model.inspect(ids, everything());
    const auto lens = tinyllm::logit_lens(model, insp, opts);
    REQUIRE(lens.n_rows == model.config().n_layer + 1);
    REQUIRE(lens.n_positions == static_cast<int>(ids.size()));
    for (int row = 0; row < lens.n_rows; ++row) {
      const auto& want = exp["logit_lens"][static_cast<std::size_t>(row)];
      for (int t = 0; t < lens.n_positions; ++t) {
        CAPTURE(row);
        CAPTURE(t);
        const std::size_t ut = static_cast<std::size_t>(t);
        const tinyllm::TokenLogprob* top = lens.at(row, t);
        for (int j = 0; j < k; ++j) {
          const std::size_t uj = static_cast<std::size_t>(j);
          CHECK(std::abs(top[j].logprob - want["logprobs"][ut][uj].get<double>()) < 2e-5);
          if (want["min_margin"][ut].get<double>() > 1e-4) CHECK(top[j].id == want["ids"][ut][uj].get<int>());
        }
        CHECK(std::abs(lens.target_logprob(row, t) - want["target_logprobs"][ut].get<double>()) < 2e-5);
      }
    }
    // the last row is the model's own distribution: its top ids are the argmax of forward's logits
    const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
    for (int t = 0; t < lens.n_positions; ++t)
      CHECK(lens.at(lens.n_rows - 1, t)[0].id ==
            tinyllm::detail::argmax(insp.logits.data() + static_cast<std::size_t>(t) * V, V));
    // from ids: the same lens
    const auto again = tinyllm::logit_lens(model, ids, opts);
    CHECK(again.target_logprobs == lens.target_logprobs);
  }
}

TEST_CASE("direct logit attribution: parts equal the oracle's, sum to the logit, heads + bias make each attention") {
  for (const Fixture& f : fixtures()) {
    CAPTURE(f.name);
    const auto model = tinyllm::GPT2::from_pretrained(f.dir);
    const auto exp = expected(f);
    const auto& want = exp["attribution"];
    const std::vector<int> ids = exp["ids"];
    const auto a = tinyllm::direct_logit_attribution(model, ids, exp["target"].get<int>());
    const double logit = want["logit"];
    // scale of the comparison: the largest part
    double scale = std::abs(logit);
    for (double m : want["mlp"].get<std::vector<double>>()) scale = std::max(scale, std::abs(m));
    const double tol = 2e-5 * std::max(1.0, scale);
    CHECK(a.position == static_cast<int>(ids.size()) - 1);
    CHECK(std::abs(a.logit - logit) < tol);
    CHECK(std::abs(a.logprob - want["logprob"].get<double>()) < tol);
    CHECK(std::abs(a.sigma - want["sigma"].get<double>()) < 1e-5 * want["sigma"].get<double>());
    CHECK(std::abs(a.token_embedding - want["token_embedding"].get<double>()) < tol);
    CHECK(std::abs(a.position_embedding - want["position_embedding"].get<double>()) < tol);
    CHECK(std::abs(a.ln_f_bias - want["ln_f_bias"].get<double>()) < tol);
    for (int l = 0; l < a.n_layer; ++l) {
      CAPTURE(l);
      const std::size_t L = static_cast<std::size_t>(l);
      CHECK(std::abs(a.attn[L] - want["attn"][L].get<double>()) < tol);
      CHECK(std::abs(a.attn_bias[L] - want["attn_bias"][L].get<double>()) < tol);
      CHECK(std::abs(a.mlp[L] - want["mlp"][L].get<double>()) < tol);
      double heads = a.attn_bias[L];
      for (int h = 0; h < a.n_head; ++h) {
        CHECK(std::abs(a.head(l, h) - want["heads"][L][static_cast<std::size_t>(h)].get<double>()) < tol);
        heads += a.head(l, h);
      }
      CHECK(std::abs(heads - a.attn[L]) < tol);  // the heads and c_proj's bias are the attention's output
    }
    // The identity: embeddings + attention and MLP outputs + beta . u = the logit forward() gives
    CHECK(std::abs(a.total() - a.logit) < tol);
    // ... at any position
    const auto mid = tinyllm::direct_logit_attribution(model, ids, ids[1], 5);
    CHECK(mid.position == 5);
    CHECK(std::abs(mid.total() - mid.logit) < tol);
    const auto logits = model.forward(std::vector<int>(ids.begin(), ids.begin() + 6));
    CHECK(mid.logit == logits[5 * static_cast<std::size_t>(model.config().vocab_size) + static_cast<std::size_t>(ids[1])]);
  }
}

TEST_CASE("attention rollout: equals the oracle's; rows sum to 1, zero right of the diagonal") {
  for (const Fixture& f : fixtures()) {
    CAPTURE(f.name);
    const auto model = tinyllm::GPT2::from_pretrained(f.dir);
    const auto exp = expected(f);
    const std::vector<int> ids = exp["ids"];
    const std::size_t T = ids.size();
    const auto want = test::read_f32(expected_dir(f) + "/" + exp["rollout"]["file"].get<std::string>());
    const auto r = tinyllm::attention_rollout(model.inspect(ids, everything()));
    REQUIRE(r.size() == static_cast<std::size_t>(model.config().n_layer));
    for (std::size_t l = 0; l < r.size(); ++l) {
      REQUIRE(r[l].size() == T * T);
      check_close(r[l].data(), want.data() + l * T * T, T * T, 1e-5, "rollout[" + std::to_string(l) + "]");
      for (std::size_t q = 0; q < T; ++q) {
        double sum = 0;
        for (std::size_t k = 0; k < T; ++k) sum += r[l][q * T + k];
        CHECK(std::abs(sum - 1.0) < 1e-5);
        for (std::size_t k = q + 1; k < T; ++k) REQUIRE(r[l][q * T + k] == 0.0f);
      }
    }
  }
}

TEST_CASE("occlusion: removing or replacing each token, through the cached prefix, equals the oracle's full passes") {
  for (const Fixture& f : fixtures()) {
    CAPTURE(f.name);
    const auto model = tinyllm::GPT2::from_pretrained(f.dir);
    const auto exp = expected(f);
    const auto& want = exp["occlusion"];
    const std::vector<int> ids = want["ids"];
    const int target = exp["target"];
    const auto removed = tinyllm::occlusion(model, ids, target);
    tinyllm::OcclusionOptions replace;
    replace.replacement = want["replacement"];
    const auto replaced = tinyllm::occlusion(model, ids, target, replace);
    const double tol = 2e-5 * std::max(1.0, std::abs(want["logprob"].get<double>()));
    CHECK(std::abs(removed.logprob - want["logprob"].get<double>()) < tol);
    REQUIRE(removed.saliency.size() == ids.size());
    const std::size_t V = static_cast<std::size_t>(model.config().vocab_size);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      CAPTURE(i);
      CHECK(std::abs(removed.saliency[i] - want["removed"][i].get<double>()) < tol);
      CHECK(std::abs(replaced.saliency[i] - want["replaced"][i].get<double>()) < tol);
      // the cached pass gives what a fresh pass over the shorter sequence gives
      std::vector<int> without = ids;
      without.erase(without.begin() + static_cast<long>(i));
      if (without.empty()) continue;
      const auto last = model.logits(without);
      const double log_z = tinyllm::detail::log_normalizer(last.data(), V);
      CHECK(std::abs(removed.occluded[i] - (last[static_cast<std::size_t>(target)] - log_z)) < 1e-5);
    }
  }
}

TEST_CASE("hand-made: blocks that write nothing leave every lens row equal, all attribution on the embeddings") {
  test::TempDir dir;
  write_handmade(dir.str(), /*silent=*/true, /*uniform=*/false);
  const auto model = tinyllm::GPT2::from_pretrained(dir.str());
  const std::vector<int> ids = {3, 17, 5, 5, 29, 8, 1};
  tinyllm::LogitLensOptions lo;
  lo.top_k = 4;
  lo.target = 9;
  const auto lens = tinyllm::logit_lens(model, ids, lo);
  for (int row = 0; row + 1 < lens.n_rows; ++row)
    for (int t = 0; t < lens.n_positions; ++t) {
      for (int j = 0; j < 4; ++j) {
        CHECK(lens.at(row, t)[j].id == lens.at(lens.n_rows - 1, t)[j].id);
        CHECK(lens.at(row, t)[j].logprob == lens.at(lens.n_rows - 1, t)[j].logprob);
      }
      CHECK(lens.target_logprob(row, t) == lens.target_logprob(lens.n_rows - 1, t));
    }
  const auto a = tinyllm::direct_logit_attribution(model, ids, 9);
  for (int l = 0; l < a.n_layer; ++l) {
    CHECK(a.attn[static_cast<std::size_t>(l)] == 0.0);
    CHECK(a.mlp[static_cast<std::size_t>(l)] == 0.0);
    for (int h = 0; h < a.n_head; ++h) CHECK(a.head(l, h) == 0.0);
  }
  CHECK(std::abs(a.token_embedding + a.position_embedding + a.ln_f_bias - a.logit) < 1e-5 * std::max(1.0f, std::abs(a.logit)));
  // Only the last token reaches the prediction: replacing any other changes nothing, to the bit.
  tinyllm::OcclusionOptions rep;
  rep.replacement = 0;
  const auto occ = tinyllm::occlusion(model, ids, 9, rep);
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) CHECK(occ.saliency[i] == 0.0f);
  CHECK(occ.saliency.back() != 0.0f);
}

TEST_CASE("hand-made: uniform attention, and its rollout worked out by hand") {
  test::TempDir dir;
  write_handmade(dir.str(), /*silent=*/false, /*uniform=*/true);
  const auto model = tinyllm::GPT2::from_pretrained(dir.str());
  const std::vector<int> ids = {4, 4, 30};
  const auto insp = model.inspect(ids, everything());
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 2; ++h)
      for (int q = 0; q < 3; ++q)
        for (int k = 0; k <= q; ++k) CHECK(insp.attention(l, h, q, k) == doctest::Approx(1.0 / (q + 1)).epsilon(1e-6));
  // A = (U + I) / 2 = [[1,0,0],[1/4,3/4,0],[1/6,1/6,2/3]]; rollout after two layers = A A
  const auto r = tinyllm::attention_rollout(insp);
  const double a[3][3] = {{1, 0, 0}, {0.25, 0.75, 0}, {1.0 / 6, 1.0 / 6, 2.0 / 3}};
  for (int q = 0; q < 3; ++q)
    for (int k = 0; k < 3; ++k) {
      double aa = 0;
      for (int j = 0; j < 3; ++j) aa += a[q][j] * a[j][k];
      CHECK(r[0][static_cast<std::size_t>(q * 3 + k)] == doctest::Approx(a[q][k]).epsilon(1e-6));
      CHECK(r[1][static_cast<std::size_t>(q * 3 + k)] == doctest::Approx(aa).epsilon(1e-6));
    }
  CHECK(r[1][3] == doctest::Approx(0.4375));  // row 1: 1/4 + 3/4 * 1/4 on the first token
}

TEST_CASE("explain: bad arguments are Errors naming them") {
  const auto model = tinyllm::GPT2::from_pretrained(test::demo_model());
  const std::vector<int> ids = model.tokenizer().encode("The state of the Union");
  CHECK(contains(error_of([&] { model.inspect({}); }), "inspect: ids is empty"));
  CHECK(contains(error_of([&] { model.inspect(std::vector<int>(257, 1)); }), "n_positions = 256"));
  CHECK(contains(error_of([&] { model.inspect({1, 60000}); }), "token id 60000 at position 1"));
  const auto insp = model.inspect(ids, everything());
  CHECK(contains(error_of([&] { insp.attention(4, 0); }), "Inspection.attention: layer 4 is not in [0, 4)"));
  CHECK(contains(error_of([&] { insp.attention(0, -1); }), "head -1 is not in [0, 4)"));
  CHECK(contains(error_of([&] { insp.attention(0, 0, 5, 0); }), "query 5 is not in [0, 5)"));
  CHECK(contains(error_of([&] { insp.hidden_state(5); }), "Inspection.hidden_state: index 5"));
  CHECK(contains(error_of([&] { tinyllm::direct_logit_attribution(model, ids, 50257); }), "target 50257"));
  CHECK(contains(error_of([&] { tinyllm::direct_logit_attribution(model, ids, 1, 5); }), "position 5 is not in [0, 5)"));
  CHECK(contains(error_of([&] { tinyllm::direct_logit_attribution(model, {}, 1); }), "ids is empty"));
  tinyllm::LogitLensOptions lo;
  lo.top_k = 0;
  CHECK(contains(error_of([&] { tinyllm::logit_lens(model, ids, lo); }), "logit_lens: top_k is 0"));
  lo.top_k = 3;
  lo.target = -5;
  CHECK(contains(error_of([&] { tinyllm::logit_lens(model, ids, lo); }), "target -5"));
  CHECK(contains(error_of([&] { tinyllm::logit_lens(model, model.inspect(ids)); }), "no hidden states"));
  CHECK(contains(error_of([&] { tinyllm::attention_rollout(model.inspect(ids)); }), "no attentions"));
  tinyllm::OcclusionOptions oo;
  oo.replacement = 50257;
  CHECK(contains(error_of([&] { tinyllm::occlusion(model, ids, 1, oo); }), "OcclusionOptions.replacement"));
  CHECK(contains(error_of([&] { tinyllm::occlusion(model, ids, -1); }), "occlusion: target -1"));
  // a target text must be one token, and the message says which tokens it is
  const auto& tok = model.tokenizer();
  CHECK(tinyllm::single_token(tok, " the") == 262);
  const std::string two = error_of([&] { tinyllm::single_token(tok, " the Union", "--target"); });
  CHECK(contains(two, "--target: \" the Union\" is 2 tokens, \" the\" (262) + \" Union\" (4479), not one"));
  CHECK(contains(error_of([&] { tinyllm::single_token(tok, "", "--target"); }), "--target: is empty"));
}
