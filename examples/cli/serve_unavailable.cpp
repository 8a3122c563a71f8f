// tinyllm serve in a build without cpp-httplib: the command exists and says what it needs.
#include <cstdio>  // std::fprintf

#include "cli.hpp"

namespace tinyllm::cli {

Command add_serve(CLI::App& tool) {
  CLI::App* app = tool.add_subcommand("serve", "an OpenAI-compatible HTTP server (not in this build)");
  app->allow_extras();
  return {app, [] {
            std::fprintf(stderr,
                         "error: this tinyllm was built without cpp-httplib, so it cannot serve; install it "
                         "(Debian: apt-get install libcpp-httplib-dev) and build again\n");
            return 1;
          }};
}

}  // namespace tinyllm::cli
