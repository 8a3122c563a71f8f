// Shared by the server's tests: the demo model, fixtures, and an in-process server on a free port.
#pragma once

#include <memory>   // std::unique_ptr
#include <string>   // std::string
#include <thread>   // std::thread

#include <tinyllm/gpt2.hpp>

#include "server.hpp"

namespace test {

inline std::string demo_model() { return std::string(TINYLLM_MODELS_DIR) + "/tiny-sotu"; }
inline std::string fixture(const std::string& name) { return std::string(TINYLLM_TEST_DIR) + "/fixtures/" + name; }

inline const tinyllm::GPT2& demo() {
  static const tinyllm::GPT2 model = tinyllm::GPT2::from_pretrained(demo_model());
  return model;
}

// A server on 127.0.0.1 and a free port, listening on its own thread until the object dies (drained).
struct LiveServer {
  std::unique_ptr<tinyllm::server::Server> server;
  int port = 0;
  std::thread thread;
  bool listen_ok = false;

  explicit LiveServer(tinyllm::server::ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (o.model_name.empty()) o.model_name = "tiny-sotu";
    server = std::make_unique<tinyllm::server::Server>(demo(), o);
    port = server->bind();
    thread = std::thread([this] { listen_ok = server->listen(); });
  }
  void stop(double timeout = 5) {
    if (!thread.joinable()) return;
    server->drain(timeout);
    thread.join();
  }
  ~LiveServer() { stop(); }
};

}  // namespace test
