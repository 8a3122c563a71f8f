// Translation by prompting, GPT-2 paper style: "English: ... French: ..." pairs, then the sentences
// to translate, all run together with generate_batch (one pass over the weights per step for every
// sentence). Each translation stops at the end of its line.
//
//   translation [MODEL_DIR] ["English sentence" ...]
//
// The demo model (models/tiny-sotu) knows no French: use a real GPT-2 (gpt2-large, gpt2-xl) to see
// the effect the GPT-2 paper describes.
#include <iostream>
#include <string>
#include <vector>

#include <tinyllm/gpt2.hpp>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : TINYLLM_DEMO_MODEL;
  std::vector<std::string> sentences(argv + (argc > 2 ? 2 : argc), argv + argc);
  if (sentences.empty()) sentences = {"The house is small.", "I like the sea.", "Where is the train station?"};
  const std::string examples =
      "English: Good morning.\nFrench: Bonjour.\n"
      "English: Thank you very much.\nFrench: Merci beaucoup.\n"
      "English: The cat is black.\nFrench: Le chat est noir.\n";
  try {
    const auto model = tinyllm::GPT2::from_pretrained(dir);
    const auto& tok = model.tokenizer();
    std::vector<std::vector<int>> prompts;
    for (const std::string& s : sentences) prompts.push_back(tok.encode(examples + "English: " + s + "\nFrench:"));
    tinyllm::GenerationConfig cfg;
    cfg.max_new_tokens = 32;
    cfg.stop_strings = {"\n"};
    const auto out = model.generate_batch(prompts, cfg);
    for (std::size_t i = 0; i < sentences.size(); ++i) {
      std::string french =
          tok.decode_text(std::vector<int>(out[i].begin() + static_cast<long>(prompts[i].size()), out[i].end()), true);
      if (const auto nl = french.find('\n'); nl != std::string::npos) french.resize(nl);
      std::cout << "English: " << sentences[i] << "\nFrench:" << french << "\n";
    }
  } catch (const tinyllm::Error& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
