// tinyllm: the command-line tool. One file per command (generate.cpp, tokenize.cpp, ...), each adding
// its subcommand; `tinyllm COMMAND --help` lists its flags. Timing goes to stderr, results to stdout.
#include <cstdio>  // std::fprintf
#include <vector>  // std::vector

#include "cli.hpp"

int main(int argc, char** argv) {
  CLI::App app{"tinyllm: GPT-2 models from Hugging Face folders, on the CPU"};
  app.require_subcommand(1);
  app.fallthrough();  // --threads may come after the command
  int threads = 0;
  app.add_option("-t,--threads", threads, "threads (default: OMP_NUM_THREADS, else all cores)");

  using namespace tinyllm::cli;
  const std::vector<Command> commands = {add_generate(app), add_tokenize(app), add_perplexity(app),
                                         add_quantize(app), add_explain(app), add_embed(app), add_index(app),
                                         add_serve(app)};
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) tinyllm::set_num_threads(threads);
  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const tinyllm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
