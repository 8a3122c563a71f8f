// tinyllm serve: an OpenAI-compatible HTTP server over one model folder, with continuous batching
// (examples/server/). SIGINT / SIGTERM stop accepting connections and let in-flight requests finish
// (up to --drain-timeout; a second signal cancels them at once); the exit status is then 0.
#include <pthread.h>  // pthread_sigmask
#include <signal.h>   // sigset_t, sigtimedwait, SIGINT, SIGTERM

#include <atomic>   // std::atomic
#include <cstdio>   // std::fprintf
#include <memory>   // std::make_shared
#include <string>   // std::string
#include <thread>   // std::thread

#include "cli.hpp"
#include "server.hpp"

namespace tinyllm::cli {
namespace {

struct ServeArgs {
  std::string model, type, api_key_file;
  double drain_timeout = 30;
  server::ServerOptions opt;
};

void add_flags(CLI::App& app, ServeArgs& a) {
  server::ServerOptions& o = a.opt;
  app.add_option("-m,--model", a.model, "Hugging Face GPT-2 folder")->required();
  app.add_option("--host", o.host, "address to listen on (0.0.0.0: every interface)")->capture_default_str();
  app.add_option("--port", o.port, "port to listen on (0: any free port, printed at start)")->capture_default_str();
  auto* key = app.add_option("--api-key", o.api_key,
                             "require 'Authorization: Bearer KEY' on every request but GET /health (or set "
                             "TINYLLM_API_KEY; a file is safer than the command line, which `ps` shows)")
                  ->envname("TINYLLM_API_KEY");
  app.add_option("--api-key-file", a.api_key_file, "read the API key from this file (its first line)")->excludes(key);
  app.add_option("--parallel", o.engine.parallel, "sequences decoded together in the running batch")
      ->capture_default_str();
  app.add_option("--max-queue", o.engine.max_queue, "requests waiting for a slot before 503 (Retry-After)")
      ->capture_default_str();
  app.add_option("--type", a.type, "load the weights as this type (default: as stored)")
      ->check(CLI::IsMember(weight_type_names));
  app.add_option("--alias", o.model_name, "the model's id in the API (default: the folder's name)");
  app.add_option("--max-tokens", o.max_tokens, "largest max_tokens a request may ask for (default: the context)");
  app.add_option("--max-prompt-tokens", o.max_prompt_tokens, "longest prompt in tokens (default: the context)");
  app.add_option("--max-body-size", o.max_body_bytes, "largest request body in bytes (413 above)")->capture_default_str();
  app.add_option("--timeout", o.timeout, "seconds a request may take from arrival to its last token (0: no limit)")
      ->capture_default_str();
  app.add_option("--drain-timeout", a.drain_timeout,
                 "seconds in-flight requests get to finish after SIGINT / SIGTERM before they are cancelled")
      ->capture_default_str();
  app.add_option("--prefill-chunk", o.engine.prefill_chunk,
                 "prompt tokens run per step (a long prompt is spread over steps; smaller: smoother streams)")
      ->capture_default_str();
  app.add_option("--http-threads", o.http_threads, "connections served at once (default: parallel + max-queue + 16)");
  app.add_flag("--log-requests", o.log_requests, "one line per request on stderr");
}

std::string folder_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::size_t slash = dir.rfind('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

std::string read_key(const std::string& path) {
  std::string key = read_file(path);
  key = key.substr(0, key.find('\n'));
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) key.pop_back();
  if (key.empty()) throw Error("--api-key-file: " + path + " has no key on its first line");
  return key;
}

bool loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

int run_serve(ServeArgs& a) {
  // Signals go to the watcher thread below only: blocked here, before any other thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::ServerOptions& o = a.opt;
  if (!a.api_key_file.empty()) o.api_key = read_key(a.api_key_file);
  if (o.model_name.empty()) o.model_name = folder_name(a.model);
  const GPT2 model = load(a.model, a.type);
  server::Server server(model, o);
  const int port = server.bind();
  std::fprintf(stderr, "[tinyllm] serving %s as \"%s\" at http://%s:%d/v1 (%d in the batch, %d queued at most%s)\n",
               a.model.c_str(), o.model_name.c_str(), o.host.c_str(), port, o.engine.parallel, o.engine.max_queue,
               o.api_key.empty() ? ", no API key" : ", API key required");
  if (o.api_key.empty() && !loopback(o.host))
    std::fprintf(stderr, "[tinyllm] warning: listening on %s without an API key: anyone who can reach it can use it\n",
                 o.host.c_str());

  std::atomic<bool> stopped{false};
  std::thread drainer;
  std::thread watcher([&] {
    const timespec tick{0, 100 * 1000 * 1000};
    for (int seen = 0; !stopped;) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig < 0) continue;
      if (++seen == 1) {
        std::fprintf(stderr, "[tinyllm] %s: no new connections; finishing in-flight requests (up to %.0f s)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", a.drain_timeout);
        drainer = std::thread([&] { server.drain(a.drain_timeout); });
      } else {
        std::fprintf(stderr, "[tinyllm] second signal: cancelling in-flight requests\n");
        server.drain(0);
      }
    }
  });
  const bool ok = server.listen();
  stopped = true;
  watcher.join();
  if (drainer.joinable()) drainer.join();
  std::fprintf(stderr, "[tinyllm] stopped\n");
  return ok ? 0 : 1;
}

}  // namespace

Command add_serve(CLI::App& tool) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* app = tool.add_subcommand("serve", "an OpenAI-compatible HTTP server (completions, tokenize, metrics)");
  add_flags(*app, *args);
  return {app, [args] { return run_serve(*args); }};
}

}  // namespace tinyllm::cli
