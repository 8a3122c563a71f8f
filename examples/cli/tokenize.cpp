// tinyllm tokenize: the token ids of a text or file (GPT-2's byte-level BPE), or one token per line.
#include <cstdio>    // std::fprintf
#include <iostream>  // std::cout
#include <memory>    // std::make_shared
#include <string>    // std::string
#include <vector>    // std::vector

#include "cli.hpp"

namespace tinyllm::cli {
namespace {

struct TokenizeArgs {
  std::string model, text, file;
  bool show = false;
};

int run_tokenize(const TokenizeArgs& a) {
  const auto t0 = Clock::now();
  const auto tok = Tokenizer::from_pretrained(a.model);
  std::fprintf(stderr, "[tinyllm] tokenizer loaded in %.0f ms\n", ms_since(t0));
  const std::string text = a.file.empty() ? a.text : read_file(a.file);
  const auto t1 = Clock::now();
  const std::vector<int> ids = tok.encode(text);
  const double ms = ms_since(t1);
  if (a.show) {
    for (int id : ids) std::cout << id << "\t" << tok.decode_text({id}) << "\n";
  } else {
    for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  std::fprintf(stderr, "[tinyllm] %zu bytes -> %zu tokens in %.1f ms (%.1f MB/s)\n", text.size(), ids.size(), ms,
               ms > 0 ? static_cast<double>(text.size()) / 1e3 / ms : 0.0);
  return 0;
}

}  // namespace

Command add_tokenize(CLI::App& tool) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* t = tool.add_subcommand("tokenize", "print the token ids of a text (GPT-2's byte-level BPE)");
  t->add_option("-m,--model", a->model, "folder with vocab.json + merges.txt or tokenizer.json")->required();
  auto* text_opt = t->add_option("-p,--prompt,--text", a->text, "text to tokenize");
  t->add_option("-f,--file", a->file, "file to tokenize")->excludes(text_opt);
  t->add_flag("--show", a->show, "one token per line: id and text");
  return {t, [a] { return run_tokenize(*a); }};
}

}  // namespace tinyllm::cli
