// tinyllm explain: what the model does with a prompt, as one self-contained HTML page (no network:
// the page's CSS and JavaScript are examples/cli/explain_page.html, built into the tool, with the
// data inline) and/or JSON: the attention of every layer and head, attention rollout, the logit
// lens, the direct logit attribution and occlusion saliency of a target token, and the greedy
// continuation with each token's probability and alternatives. docs/explain.md describes it.
#include <algorithm>  // std::min, std::max, std::partial_sort
#include <cmath>      // std::exp, std::lround, std::round
#include <cstdint>    // std::uint8_t
#include <cstdio>     // std::fprintf, std::snprintf
#include <fstream>    // std::ofstream
#include <map>        // std::map
#include <memory>     // std::make_shared
#include <numeric>    // std::iota
#include <optional>   // std::optional
#include <string>     // std::string
#include <vector>     // std::vector

#include <nlohmann/json.hpp>
#include <tinyllm/explain.hpp>

#include "cli.hpp"
#include "explain_page_html.hpp"  // explain_page: generated from explain_page.html

namespace tinyllm::cli {
namespace {

using nlohmann::json;

struct ExplainArgs {
  std::string model, prompt, file, target, out, json_out, type, occlude_with;
  int new_tokens = 0, top_k = 5, layer = -1, head = -1, dense_limit = 256;
  bool no_occlusion = false;
};

// Keys each query keeps in the page when the sequence is longer than --dense-limit.
constexpr std::size_t thin_keys = 16;

std::string base64(const std::vector<std::uint8_t>& bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s;
  s.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const unsigned n = static_cast<unsigned>(bytes[i]) << 16 | (i + 1 < bytes.size() ? bytes[i + 1] << 8 : 0) |
                       (i + 2 < bytes.size() ? bytes[i + 2] : 0);
    s += abc[n >> 18 & 63];
    s += abc[n >> 12 & 63];
    s += i + 1 < bytes.size() ? abc[n >> 6 & 63] : '=';
    s += i + 2 < bytes.size() ? abc[n & 63] : '=';
  }
  return s;
}

std::uint8_t byte_of(float p) {
  return static_cast<std::uint8_t>(std::lround(std::min(1.0f, std::max(0.0f, p)) * 255.0f));
}

// A [T, T] causal matrix for the page. Dense: the lower triangle, row by row, a byte per weight
// (p * 255). Thin: each row's `thin_keys` largest weights, as key indices (uint16, 65535 = none) and
// bytes. Adds the weight the thin rows keep to `kept`.
json encode_matrix(const float* m, std::size_t T, bool dense, double& kept) {
  if (dense) {
    std::vector<std::uint8_t> tri;
    tri.reserve(T * (T + 1) / 2);
    for (std::size_t q = 0; q < T; ++q)
      for (std::size_t k = 0; k <= q; ++k) tri.push_back(byte_of(m[q * T + k]));
    return base64(tri);
  }
  std::vector<std::uint8_t> idx, w;
  std::vector<std::size_t> order(T);
  for (std::size_t q = 0; q < T; ++q) {
    const float* row = m + q * T;
    std::iota(order.begin(), order.begin() + static_cast<long>(q + 1), 0);
    const std::size_t n = std::min(thin_keys, q + 1);
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(n), order.begin() + static_cast<long>(q + 1),
                      [&](std::size_t a, std::size_t b) { return row[a] > row[b]; });
    for (std::size_t j = 0; j < thin_keys; ++j) {
      const std::size_t k = j < n ? order[j] : 65535;
      idx.push_back(static_cast<std::uint8_t>(k & 255));
      idx.push_back(static_cast<std::uint8_t>(k >> 8));
      w.push_back(j < n ? byte_of(row[k]) : 0);
      if (j < n) kept += row[k];
    }
  }
  return json{{"idx", base64(idx)}, {"w", base64(w)}};
}

struct Texts {  // token texts for the page, looked up once per id
  const Tokenizer& tok;
  std::map<int, std::string> seen;
  std::string operator()(int id) {
    auto it = seen.find(id);
    if (it != seen.end()) return it->second;
    const std::string s = id < tok.vocab_size() ? tok.decode_text({id}) : "<id " + std::to_string(id) + ">";
    return seen[id] = s;
  }
};

double round_to(double v, double unit) { return std::round(v / unit) * unit; }

// "models/gpt2/" -> "gpt2"
std::string folder_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::size_t slash = dir.find_last_of('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

json attribution_json(const LogitAttribution& a) {
  return json{{"target", a.target},
              {"position", a.position},
              {"logit", a.logit},
              {"logprob", a.logprob},
              {"sigma", a.sigma},
              {"token_embedding", a.token_embedding},
              {"position_embedding", a.position_embedding},
              {"attn", a.attn},
              {"attn_bias", a.attn_bias},
              {"heads", a.heads},
              {"mlp", a.mlp},
              {"ln_f_bias", a.ln_f_bias},
              {"total", a.total()}};
}

// The prompt's ids, after checking every argument against the model.
std::vector<int> checked_prompt(const ExplainArgs& a, const GPT2& model) {
  const GPT2Config& c = model.config();
  const std::string text = a.file.empty() ? a.prompt : read_file(a.file);
  const char* arg = a.file.empty() ? "--prompt" : "--file";
  if (text.empty()) detail::fail(arg, "is empty: explain needs a prompt of at least one token");
  const std::vector<int> ids = model.tokenizer().encode(text);
  const std::size_t n_ctx = static_cast<std::size_t>(c.n_positions);
  if (ids.size() > n_ctx)
    detail::fail(arg, std::to_string(ids.size()) + " tokens is more than the model's context of n_positions = " +
                          std::to_string(n_ctx));
  if (a.new_tokens < 0 || ids.size() + static_cast<std::size_t>(a.new_tokens) > n_ctx)
    detail::fail("-n/--max_new_tokens", "is " + std::to_string(a.new_tokens) + ": must be in [0, " +
                                            std::to_string(n_ctx - ids.size()) + "] (the prompt's " +
                                            std::to_string(ids.size()) + " tokens + new tokens <= n_positions)");
  auto check_index = [](const char* name, int v, int n) {
    if (v < -1 || v >= n) detail::fail(name, std::to_string(v) + " is not in [0, " + std::to_string(n) + ")");
  };
  check_index("--layer", a.layer, c.n_layer);
  check_index("--head", a.head, c.n_head);
  if (a.top_k < 1 || a.top_k > 20) detail::fail("--top_k", "is " + std::to_string(a.top_k) + ", must be in [1, 20]");
  if (a.dense_limit < 1) detail::fail("--dense-limit", "must be at least 1");
  return ids;
}

// Everything the page and the JSON show.
struct Explained {
  std::vector<int> ids, seq;  // the prompt; prompt + continuation
  int target = 0, replacement = -1;
  GenerationResult gen;
  Inspection insp;
  LogitLens lens;
  std::vector<std::vector<float>> rollout;
  LogitAttribution dla;
  std::optional<Occlusion> occ;
};

Explained explain(const ExplainArgs& a, const GPT2& model, const std::vector<int>& ids) {
  const Tokenizer& tok = model.tokenizer();
  Explained e;
  e.ids = e.seq = ids;
  auto t0 = Clock::now();
  if (a.target.empty()) {
    const std::vector<float> last = model.logits(ids);
    e.target = detail::argmax(last.data(), last.size());
  } else {
    e.target = single_token(tok, a.target, "--target");
  }
  if (!a.occlude_with.empty()) e.replacement = single_token(tok, a.occlude_with, "--occlude-with");
  if (a.new_tokens > 0) {
    GenerationConfig cfg;
    cfg.max_new_tokens = a.new_tokens;
    cfg.top_logprobs = a.top_k;
    e.gen = model.generate_with_scores(ids, cfg)[0];
    e.seq = e.gen.sequence;
  }
  InspectOptions io;
  io.attentions = io.hidden_states = true;
  io.logits = false;
  e.insp = model.inspect(e.seq, io);
  LogitLensOptions lo;
  lo.top_k = a.top_k;
  lo.target = e.target;
  e.lens = logit_lens(model, e.insp, lo);
  e.rollout = attention_rollout(e.insp);
  e.dla = direct_logit_attribution(model, ids, e.target);
  std::fprintf(stderr, "[tinyllm] %zu tokens: continuation, inspection, lens, rollout, attribution in %.0f ms\n",
               e.seq.size(), ms_since(t0));
  if (!a.no_occlusion) {
    t0 = Clock::now();
    OcclusionOptions oo;
    oo.replacement = e.replacement;
    e.occ = occlusion(model, ids, e.target, oo);
    std::fprintf(stderr, "[tinyllm] occlusion of %zu tokens in %.0f ms\n", ids.size(), ms_since(t0));
  }
  return e;
}

// [T][T] rows of a matrix as JSON.
json rows_json(const float* m, std::size_t T) {
  json rows = json::array();
  for (std::size_t q = 0; q < T; ++q) rows.push_back(std::vector<float>(m + q * T, m + (q + 1) * T));
  return rows;
}

// Full precision; attentions in bertviz's layout [layer][batch 1][head][query][key].
json full_json(const Explained& e, Texts& texts) {
  const std::size_t T = e.seq.size();
  json att = json::array(), roll = json::array(), tokens = json::array(), lens = json::array();
  for (int id : e.seq) tokens.push_back(texts(id));
  for (int l = 0; l < e.insp.n_layer; ++l) {
    json heads = json::array();
    for (int h = 0; h < e.insp.n_head; ++h) heads.push_back(rows_json(e.insp.attention(l, h), T));
    att.push_back(json::array({std::move(heads)}));
    roll.push_back(rows_json(e.rollout[static_cast<std::size_t>(l)].data(), T));
  }
  for (int row = 0; row < e.lens.n_rows; ++row) {
    json r = json::array();
    for (int t = 0; t < e.lens.n_positions; ++t) {
      json cell = json::array();
      for (int j = 0; j < e.lens.top_k; ++j) {
        const TokenLogprob& tl = e.lens.at(row, t)[j];
        cell.push_back({{"id", tl.id}, {"token", texts(tl.id)}, {"logprob", tl.logprob}});
      }
      r.push_back(std::move(cell));
    }
    lens.push_back(std::move(r));
  }
  json j = {{"tokens", std::move(tokens)},
            {"ids", e.seq},
            {"prompt_length", e.ids.size()},
            {"target", {{"id", e.target}, {"token", texts(e.target)}}},
            {"attention", std::move(att)},
            {"rollout", std::move(roll)},
            {"logit_lens", {{"rows", std::move(lens)}, {"target_logprobs", e.lens.target_logprobs}}},
            {"attribution", attribution_json(e.dla)}};
  if (e.occ)
    j["occlusion"] = {{"logprob", e.occ->logprob}, {"occluded", e.occ->occluded}, {"saliency", e.occ->saliency},
                      {"replacement", e.replacement}};
  return j;
}

// The page's attention and rollout matrices (bytes, dense or thinned) and the note on thinning.
json page_attention(const Explained& e, std::size_t dense_limit, json& notes) {
  const std::size_t T = e.seq.size(), L = e.rollout.size(), H = static_cast<std::size_t>(e.insp.n_head);
  const bool dense = T <= dense_limit;
  double kept = 0, unused = 0;
  json layers = json::array(), roll = json::array();
  for (std::size_t l = 0; l < L; ++l) {
    json heads = json::array();
    for (std::size_t h = 0; h < H; ++h)
      heads.push_back(encode_matrix(e.insp.attention(static_cast<int>(l), static_cast<int>(h)), T, dense, kept));
    layers.push_back(std::move(heads));
    roll.push_back(encode_matrix(e.rollout[l].data(), T, dense, unused));
  }
  if (!dense) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%zu tokens, more than %zu: the attention views keep each query's %zu strongest keys "
                  "(%.0f%% of the attention weight); the rest is not drawn.",
                  T, dense_limit, thin_keys, 100.0 * kept / static_cast<double>(L * H * T));
    notes.push_back(buf);
  }
  return {{"dense", dense}, {"keys", thin_keys}, {"layers", std::move(layers)}, {"rollout", std::move(roll)}};
}

// The logit lens for the page: flat [rows, T, top_k] ids and log-probabilities (4 decimals).
json page_lens(const LogitLens& lens, Texts& texts) {
  json ids = json::array(), lps = json::array(), target = json::array();
  for (int row = 0; row < lens.n_rows; ++row)
    for (int t = 0; t < lens.n_positions; ++t)
      for (int j = 0; j < lens.top_k; ++j) {
        ids.push_back(lens.at(row, t)[j].id);
        lps.push_back(round_to(lens.at(row, t)[j].logprob, 1e-4));
        texts(lens.at(row, t)[j].id);
      }
  for (float v : lens.target_logprobs) target.push_back(round_to(v, 1e-4));
  return {{"top_k", lens.top_k}, {"ids", std::move(ids)}, {"logprobs", std::move(lps)}, {"target_logprobs", target}};
}

json page_data(const ExplainArgs& a, const GPT2& model, const Explained& e, Texts& texts) {
  const GPT2Config& c = model.config();
  json notes = json::array(), tokens = json::array(), cont = json::array();
  for (int id : e.seq) tokens.push_back(texts(id));
  for (std::size_t i = 0; i < e.gen.logprobs.size(); ++i) {
    json alts = json::array();
    for (const TokenLogprob& tl : e.gen.top_logprobs[i])
      alts.push_back({tl.id, round_to(tl.logprob, 1e-4), texts(tl.id)});
    cont.push_back({{"id", e.seq[e.ids.size() + i]}, {"logprob", e.gen.logprobs[i]}, {"top", std::move(alts)}});
  }
  json data = {
      {"model", {{"name", folder_name(a.model)}, {"n_layer", c.n_layer}, {"n_head", c.n_head}, {"n_embd", c.n_embd},
                 {"n_positions", c.n_positions}, {"vocab_size", c.vocab_size},
                 {"weights", weight_type_name(model.weights().h.front().mlp_c_fc.weight.type)}}},
      {"tokens", std::move(tokens)},
      {"ids", e.seq},
      {"prompt_length", e.ids.size()},
      {"target", {{"id", e.target}, {"token", texts(e.target)}, {"given", !a.target.empty()}}},
      {"attention", page_attention(e, static_cast<std::size_t>(a.dense_limit), notes)},
      {"lens", page_lens(e.lens, texts)},
      {"attribution", attribution_json(e.dla)},
      {"occlusion", e.occ ? json{{"logprob", e.occ->logprob}, {"saliency", e.occ->saliency},
                                 {"replacement", e.replacement < 0 ? json(nullptr) : json(texts(e.replacement))}}
                          : json(nullptr)},
      {"continuation", std::move(cont)},
      {"notes", std::move(notes)},
      {"selection", {{"layer", a.layer < 0 ? 0 : a.layer}, {"head", a.head}}},
  };
  json vocab = json::object();  // every token the page names by id
  for (const auto& [id, s] : texts.seen) vocab[std::to_string(id)] = s;
  data["vocab"] = std::move(vocab);
  return data;
}

// The template with the data in place of its marker ("</" escaped so the data cannot end its script).
std::string page_html(const json& data) {
  std::string payload = data.dump(-1, ' ', false, json::error_handler_t::replace);
  for (std::size_t p = 0; (p = payload.find("</", p)) != std::string::npos; p += 3) payload.replace(p, 2, "<\\/");
  std::string page = explain_page;
  const std::string marker = "{{TINYLLM_EXPLAIN_DATA}}";
  const std::size_t at = page.find(marker);
  if (at == std::string::npos) throw Error("explain: the page template has no data marker");
  return page.replace(at, marker.size(), payload);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) throw Error(path + ": cannot write");
}

int run_explain(const ExplainArgs& a) {
  if (a.out.empty() && a.json_out.empty()) throw Error("explain: give -o PAGE.html and/or --json FILE.json");
  const GPT2 model = load(a.model, a.type);
  const Explained e = explain(a, model, checked_prompt(a, model));
  Texts texts{model.tokenizer(), {}};
  if (!a.json_out.empty()) {
    write_text(a.json_out, full_json(e, texts).dump() + "\n");
    std::fprintf(stderr, "[tinyllm] wrote %s\n", a.json_out.c_str());
  }
  if (!a.out.empty()) {
    const std::string page = page_html(page_data(a, model, e, texts));
    write_text(a.out, page);
    std::fprintf(stderr, "[tinyllm] wrote %s (%.0f kB): target \"%s\", p = %.3f\n", a.out.c_str(),
                 static_cast<double>(page.size()) / 1e3, texts(e.target).c_str(), std::exp(e.dla.logprob));
  }
  return 0;
}

}  // namespace

Command add_explain(CLI::App& tool) {
  auto a = std::make_shared<ExplainArgs>();
  CLI::App* e = tool.add_subcommand("explain", "look inside the model: an offline HTML page (and/or JSON) of "
                                               "attention, logit lens, attribution and saliency for a prompt");
  e->add_option("-m,--model", a->model, "Hugging Face GPT-2 folder")->required();
  auto* text = e->add_option("-p,--prompt", a->prompt, "the prompt");
  e->add_option("-f,--file", a->file, "read the prompt from a file")->excludes(text);
  e->add_option("--target", a->target,
                "the token to explain after the prompt, e.g. \" the\" (default: the most likely)");
  e->add_option("-n,--max_new_tokens,--max-new-tokens", a->new_tokens, "greedy continuation shown with probabilities")
      ->capture_default_str();
  e->add_option("-o,--output", a->out, "write the HTML page here");
  e->add_option("--json", a->json_out,
                "write the data as JSON (attentions in bertviz's [layer][1][head][q][k] layout)");
  e->add_option("--layer", a->layer, "layer shown first (default 0)");
  e->add_option("--head", a->head, "head shown first (default: the mean of the heads)");
  e->add_option("--top_k,--top-k", a->top_k, "tokens per logit-lens cell and alternatives per new token")
      ->capture_default_str();
  e->add_option("--dense-limit,--dense_limit", a->dense_limit,
                "longer sequences keep each query's 16 strongest keys in the page's attention views")
      ->capture_default_str();
  e->add_option("--occlude-with,--occlude_with", a->occlude_with,
                "occlusion replaces each token by this one (default: removes it)");
  e->add_flag("--no-occlusion,--no_occlusion", a->no_occlusion, "skip occlusion saliency (n (n-1) / 2 token passes)");
  e->add_option("--type", a->type, "convert the weights at load (default: as stored)")
      ->check(CLI::IsMember(weight_type_names));
  return {e, [a] { return run_explain(*a); }};
}

}  // namespace tinyllm::cli
