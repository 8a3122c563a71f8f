// tinyllm quantize: write a folder whose matrices are --type and load memory-mapped, with no conversion.
#include <cstdio>  // std::fprintf
#include <memory>  // std::make_shared
#include <string>  // std::string

#include "cli.hpp"

namespace tinyllm::cli {
namespace {

struct QuantizeArgs {
  std::string model, out, type = "q8";
};

int run_quantize(const QuantizeArgs& a) {
  const auto model = load(a.model, a.type);  // converted at load: the kernels' layout
  const auto t0 = Clock::now();
  model.save_pretrained(a.out);  // as loaded: maps with no conversion
  std::fprintf(stderr, "[tinyllm] wrote %s (%s weights) in %.0f ms\n", a.out.c_str(), a.type.c_str(), ms_since(t0));
  return 0;
}

}  // namespace

Command add_quantize(CLI::App& tool) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* q = tool.add_subcommand("quantize", "write a folder whose weights load memory-mapped as --type");
  q->add_option("-m,--model", a->model, "Hugging Face GPT-2 folder")->required();
  q->add_option("-o,--out", a->out, "output folder (created; its files are overwritten)")->required();
  q->add_option("--type", a->type, "weight type of the matrices")->check(CLI::IsMember(weight_type_names))
      ->capture_default_str();
  return {q, [a] { return run_quantize(*a); }};
}

}  // namespace tinyllm::cli
