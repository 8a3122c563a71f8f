// Application code: print a greedy continuation. Usage: fc_generate MODEL_DIR PROMPT [MAX_LENGTH]
#include <cstdlib>
#include <iostream>

#include <tinyllm/gpt2.hpp>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR PROMPT [MAX_LENGTH]\n";
    return 2;
  }
  try {
    const auto model = tinyllm::GPT2::from_pretrained(argv[1]);
    std::cout << model.generate_text(argv[2], argc > 3 ? std::atoi(argv[3]) : 50) << "\n";
  } catch (const tinyllm::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
