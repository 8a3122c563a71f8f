// The seed program: load a GPT-2 folder and print a greedy continuation of a prompt.
//
//   generate [MODEL_DIR] [PROMPT] [MAX_LENGTH]
//
// MODEL_DIR defaults to the demo model (models/tiny-sotu), PROMPT to a State of the Union opening,
// MAX_LENGTH (prompt + new tokens, as in Hugging Face) to 50.
#include <cstdlib>
#include <iostream>
#include <string>

#include <tinyllm/gpt2.hpp>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : TINYLLM_DEMO_MODEL;
  const std::string prompt = argc > 2 ? argv[2] : "Mr. Speaker, the state of our Union";
  const int max_length = argc > 3 ? std::atoi(argv[3]) : 50;
  try {
    const auto model = tinyllm::GPT2::from_pretrained(dir);
    std::cout << model.generate_text(prompt, max_length) << std::endl;
  } catch (const tinyllm::Error& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
