// Looking inside a GPT-2 from C++: the exact attentions and hidden states (Hugging Face's layout),
// then the logit lens, direct logit attribution, attention rollout and occlusion saliency of the
// token the model expects next. `tinyllm explain` draws the same as a web page.
//
//   ./build/examples/explain [MODEL_DIR] [PROMPT]
//
// The demo model (models/tiny-sotu) writes State-of-the-Union-flavoured English and knows no facts:
// its "next token" is about style and grammar, not about what is true.
#include <algorithm>  // std::sort
#include <cmath>      // std::exp
#include <cstdio>     // std::printf
#include <string>     // std::string
#include <utility>    // std::pair
#include <vector>     // std::vector

#include <tinyllm/explain.hpp>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : TINYLLM_DEMO_MODEL;
  const std::string prompt = argc > 2 ? argv[2] : "The President shall from time to time give to the Congress";
  try {
    const auto model = tinyllm::GPT2::from_pretrained(dir);
    const auto& tok = model.tokenizer();
    const std::vector<int> ids = tok.encode(prompt);
    const int T = static_cast<int>(ids.size()), L = model.config().n_layer, H = model.config().n_head;
    auto text = [&](int id) { return "\"" + tok.decode_text({id}) + "\""; };

    // One pass, HF's output_attentions + output_hidden_states.
    tinyllm::InspectOptions opts;
    opts.attentions = opts.hidden_states = true;
    const tinyllm::Inspection insp = model.inspect(ids, opts);
    std::printf("%d tokens; attentions: %d x [%d, %d, %d]; hidden states: %zu x [%d, %d]\n", T, L, H, T, T,
                insp.hidden_states.size(), T, model.config().n_embd);
    std::printf("layer %d, head 0: the last token %s attends most to", L - 1, text(ids.back()).c_str());
    std::vector<std::pair<float, int>> keys;
    for (int k = 0; k < T; ++k) keys.push_back({insp.attention(L - 1, 0, T - 1, k), k});
    std::sort(keys.rbegin(), keys.rend());
    for (int i = 0; i < 3 && i < T; ++i) std::printf(" %s (%.2f)", text(ids[keys[i].second]).c_str(), keys[i].first);
    std::printf("\n\n");

    // The logit lens at the last position: what the stream predicts after each block.
    const tinyllm::LogitLens lens = tinyllm::logit_lens(model, insp);
    const int target = lens.at(lens.n_rows - 1, T - 1)[0].id;  // the model's own choice
    std::printf("logit lens after %s:\n", text(ids.back()).c_str());
    for (int row = 0; row < lens.n_rows; ++row) {
      const tinyllm::TokenLogprob& best = lens.at(row, T - 1)[0];
      const std::string depth = row == 0 ? "embeddings" : "after block " + std::to_string(row - 1);
      std::printf("  %-14s %-12s p = %.3f\n", depth.c_str(), text(best.id).c_str(), std::exp(best.logprob));
    }

    // Direct logit attribution of that token: which layers and heads push it up.
    const tinyllm::LogitAttribution a = tinyllm::direct_logit_attribution(model, ids, target);
    std::printf("\nlogit of %s = %.3f = embeddings %.3f + ln_f bias %.3f", text(target).c_str(), a.logit,
                a.token_embedding + a.position_embedding, a.ln_f_bias);
    for (int l = 0; l < L; ++l) std::printf(" + attn%d %.3f + mlp%d %.3f", l, a.attn[static_cast<std::size_t>(l)], l,
                                            a.mlp[static_cast<std::size_t>(l)]);
    std::printf("\n  (the parts sum to %.3f)\n", a.total());
    int best_l = 0, best_h = 0;
    for (int l = 0; l < L; ++l)
      for (int h = 0; h < H; ++h)
        if (a.head(l, h) > a.head(best_l, best_h)) best_l = l, best_h = h;
    std::printf("  the head that adds most: layer %d head %d (%.3f)\n", best_l, best_h, a.head(best_l, best_h));

    // Attention rollout and occlusion: which prompt tokens the prediction rests on.
    const auto rollout = tinyllm::attention_rollout(insp);
    const tinyllm::Occlusion occ = tinyllm::occlusion(model, ids, target);
    std::printf("\n%-16s %9s %10s\n", "token", "rollout", "occlusion");
    for (int i = 0; i < T; ++i)
      std::printf("%-16s %9.3f %+10.3f\n", text(ids[static_cast<std::size_t>(i)]).c_str(),
                  rollout.back()[static_cast<std::size_t>((T - 1) * T + i)], occ.saliency[static_cast<std::size_t>(i)]);
  } catch (const tinyllm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
