// Question answering by prompting: a few question/answer pairs, then the user's question; the model
// continues with an answer, which stops at the end of the line (stop_strings = {"\n"}).
// A Session holds the examples' KV cache, so they are processed once for all the questions.
//
//   question_answering [MODEL_DIR] ["QUESTION" ...]
//
// The demo model (models/tiny-sotu) knows no facts: run it with a real GPT-2 (scripts/download-model.sh
// gpt2-medium or larger) for sensible answers.
#include <iostream>
#include <string>
#include <vector>

#include <tinyllm/gpt2.hpp>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : TINYLLM_DEMO_MODEL;
  std::vector<std::string> questions(argv + (argc > 2 ? 2 : argc), argv + argc);
  if (questions.empty())
    questions = {"What is the capital of Italy?", "Who was the first President of the United States?"};
  const std::string examples =
      "Q: What is the capital of France?\nA: Paris.\n"
      "Q: Who wrote Moby-Dick?\nA: Herman Melville.\n"
      "Q: How many days are there in a week?\nA: Seven.\n";
  try {
    const auto model = tinyllm::GPT2::from_pretrained(dir);
    tinyllm::Session session(model);
    session.append(examples);
    const std::size_t shared = session.size();
    tinyllm::GenerationConfig cfg;
    cfg.max_new_tokens = 24;
    cfg.stop_strings = {"\n"};
    for (const std::string& q : questions) {
      session.truncate(shared);  // back to the examples; their cache is kept
      session.append("Q: " + q + "\nA:");
      std::cout << "Q: " << q << "\nA:" << std::flush;
      const std::string answer =
          session.generate_text(cfg, [](std::string_view piece) { std::cout << piece << std::flush; });
      if (answer.empty() || answer.back() != '\n') std::cout << "\n";
    }
  } catch (const tinyllm::Error& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
