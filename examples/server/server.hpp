// tinyllm serve's HTTP side: cpp-httplib routes for the OpenAI-compatible endpoints, API-key checks,
// bounded bodies, server-sent events, and a drain that stops accepting connections and lets in-flight
// requests finish. The engine (engine.hpp) does the model's work; api.hpp and choice.hpp shape the
// JSON. Usable in-process (tests, benchmarks): bind() to port 0, listen() on a thread, drain().
#pragma once

#include <atomic>   // std::atomic
#include <cstddef>  // std::size_t
#include <memory>   // std::unique_ptr
#include <string>   // std::string

#include <tinyllm/gpt2.hpp>

#include "api.hpp"
#include "engine.hpp"
#include "metrics.hpp"

namespace httplib {
class Request;
struct Response;
}  // namespace httplib

namespace tinyllm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port (bind() says which)
  std::string api_key;             // non-empty: every request but GET /health needs "Authorization: Bearer KEY"
  std::string model_name;          // the model's id for clients (default: the folder's name)
  EngineOptions engine;
  int max_tokens = 0;                     // the largest max_tokens a request may ask for (0: n_positions)
  int max_prompt_tokens = 0;              // the longest prompt in tokens (0: n_positions)
  std::size_t max_body_bytes = 1 << 20;   // request bodies above this get 413
  double timeout = 600;                   // seconds from a request's arrival to its end, at most (0: none)
  int http_threads = 0;                   // connections served at once (0: parallel + max_queue + 16)
  bool log_requests = false;              // one line per request on stderr
};

class Server {
 public:
  Server(const GPT2& model, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns its port. Throws Error when it cannot.
  int bind();
  // Serves connections until drain() ends it; false if the listener failed for another reason.
  bool listen();
  // Stops accepting connections (new requests on open ones get 503), gives queued and running requests
  // up to `timeout` seconds to finish, cancels what is left (503), and makes listen() return once every
  // connection is done. Callable from any thread, more than once (a shorter timeout cuts the wait).
  void drain(double timeout);

  Metrics& metrics() { return metrics_; }
  Engine& engine() { return engine_; }
  const ModelInfo& model_info() const { return info_; }

 private:
  class Http;
  class Stream;
  void routes();
  bool authorized(const httplib::Request& req, httplib::Response& res) const;
  void completions(const httplib::Request& req, httplib::Response& res, const std::string& body);
  void embeddings(const httplib::Request& req, httplib::Response& res, const std::string& body);
  std::shared_ptr<Job> submit(const CompletionRequest& r);
  json completion_json(const CompletionRequest& r, const std::vector<SequenceResult>& results, const std::string& id,
                       long long created) const;

  const GPT2 model_;
  const ServerOptions opt_;
  ModelInfo info_;
  Limits limits_;
  long long created_;
  Metrics metrics_;
  Engine engine_;
  std::unique_ptr<Http> http_;
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};  // completion requests being answered (streams until their last write)
};

}  // namespace tinyllm::server
