// HTTP routes, authentication, limits, server-sent events and draining (server.hpp).
#include "server.hpp"

#include <dirent.h>      // opendir, readdir (the connection's socket, below)
#include <netdb.h>       // getnameinfo
#include <sys/socket.h>  // ::shutdown, getpeername, getsockname, recv

#include <algorithm>  // std::sort, std::min, std::equal
#include <cctype>     // std::tolower
#include <cerrno>     // errno
#include <chrono>     // std::chrono
#include <cstdlib>    // std::atoi
#include <cstdio>     // std::fprintf
#include <ctime>      // std::time
#include <random>     // std::random_device, std::mt19937_64
#include <thread>     // std::this_thread

#include <httplib.h>
#include <openssl/crypto.h>  // CRYPTO_memcmp
#include <openssl/sha.h>     // SHA256

#include "choice.hpp"

namespace tinyllm::server {

// cpp-httplib's server, with a way to stop accepting connections while the open ones finish: closing
// the listening socket ends the accept loop (listen() then waits for its connections), whereas
// httplib's stop() also cuts every response being streamed.
class Server::Http : public httplib::Server {
 public:
  // httplib listens with a backlog of 5: a burst of clients connecting at once overflows it, and a
  // connection whose handshake the kernel dropped may send its request too late for the server's
  // wait. Listening again on the bound socket sets the backlog.
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
  void close_listener() { ::shutdown(svr_sock_, SHUT_RDWR); }
  // Ends keep-alive loops after their current request (streams in progress would end too).
  void end_connections() { svr_sock_ = INVALID_SOCKET; }
};

namespace {

using httplib::DataSink;
using httplib::Request;
using httplib::Response;

std::mt19937_64& rng() {
  thread_local std::mt19937_64 g([] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }());
  return g;
}

std::string random_id(const char* prefix) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += alphabet[rng()() % (sizeof alphabet - 1)];
  return id;
}

long long unix_time() { return static_cast<long long>(std::time(nullptr)); }

// system_fingerprint: what produced the tokens (the seed contract holds within one version).
std::string fingerprint() {
  return "tinyllm-" + std::to_string(TINYLLM_VERSION_MAJOR) + "." + std::to_string(TINYLLM_VERSION_MINOR) + "." +
         std::to_string(TINYLLM_VERSION_PATCH);
}

// JSON text; a string that is not valid UTF-8 (none should be: the text is decoded whole) gets U+FFFD
// rather than an exception.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(Response& res, const ApiError& e) {
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  if (e.status == 503) res.set_header("Retry-After", "1");
  send_json(res, e.status, e.body());
}

ApiError server_busy() {
  return ApiError(503, "The server is busy: every slot is taken and the queue is full. Retry later.", "server_error",
                  std::nullopt, std::string("queue_full"));
}
ApiError shutting_down() {
  return ApiError(503, "The server is shutting down.", "server_error", std::nullopt, std::string("shutting_down"));
}

// SHA-256 both, then compare the digests in constant time: the time depends on neither the key's
// length nor where a guess first differs.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

// The route a path belongs to, for metrics (a bounded set of labels).
std::string endpoint_label(const std::string& path) {
  for (const char* p : {"/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/models", "/tokenize",
                        "/detokenize", "/health", "/metrics"})
    if (path == p) return p;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{model}";
  return "other";
}

// Reads a request body of at most `limit` bytes; false (and the error answered) if it is larger or
// the connection fails. The rest of a body too large is read and dropped (up to 64 times the limit),
// so that the client, still sending, gets to read the 413, as httplib does for a Content-Length
// above it.
bool read_body(const httplib::ContentReader& reader, Response& res, std::size_t limit, std::string& body) {
  std::size_t seen = 0;
  const bool ok = reader([&](const char* data, std::size_t n) {
    seen += n;
    if (seen <= limit) body.append(data, n);
    return seen <= 64 * limit;
  });
  if (ok && seen <= limit) return true;
  if (seen > limit || res.status == 413)
    send_error(res, ApiError(413, "The request body is larger than this server's limit of " + std::to_string(limit) +
                                      " bytes (--max-body-size).",
                             "invalid_request_error", std::nullopt, std::string("request_too_large")));
  else
    send_error(res, invalid_request("The request body could not be read."));
  return false;
}

// The socket a request came on, found by its addresses, since httplib 0.11 gives a handler no way to
// its connection: the descriptor whose peer is the request's remote address and port and whose own
// port is the request's local port. -1 when there is none (or no /proc/self/fd to list).
int connection_socket(const Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  auto port_and_host = [](const sockaddr_storage& a, socklen_t len, std::string* host) {
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV))
      return -1;
    if (host) *host = h;
    return std::atoi(p);
  };
  int found = -1;
  while (const dirent* e = readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;  // ".", "..", standard streams
    sockaddr_storage peer{}, local{};
    socklen_t pl = sizeof peer, ll = sizeof local;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0)
      continue;
    std::string host;
    if (port_and_host(peer, pl, &host) == req.remote_port && port_and_host(local, ll, nullptr) == req.local_port &&
        host == req.remote_addr) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

// Whether the client has closed its end (a read would see the end of the stream). Bytes waiting (a
// pipelined request) mean it has not.
bool hung_up(int fd) {
  if (fd < 0) return false;
  char c;
  const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// Counts a request from its arrival to the end of its answer (a stream's last write).
struct InFlight {
  std::atomic<int>* n;
  explicit InFlight(std::atomic<int>& c) : n(&c) { ++*n; }
  ~InFlight() { --*n; }
};

}  // namespace

Server::Server(const GPT2& model, ServerOptions options)
    : model_(model), opt_(std::move(options)), created_(unix_time()),
      engine_(model_, opt_.engine, &metrics_), http_(std::make_unique<Http>()) {
  const GPT2Config& c = model_.config();
  info_.id = opt_.model_name;
  info_.tokenizer = &model_.tokenizer();  // throws when the folder has none: a server needs one
  info_.vocab_size = c.vocab_size;
  info_.n_positions = c.n_positions;
  info_.bos_token_id = c.bos_token_id;
  limits_.max_tokens = opt_.max_tokens > 0 ? std::min(opt_.max_tokens, c.n_positions) : c.n_positions;
  limits_.max_prompt_tokens = opt_.max_prompt_tokens > 0 ? std::min(opt_.max_prompt_tokens, c.n_positions) : c.n_positions;
  if (opt_.timeout < 0) detail::fail("--timeout", "must be >= 0 (0: no limit)");
  if (opt_.max_body_bytes == 0) detail::fail("--max-body-size", "must be > 0");

  const int threads = opt_.http_threads > 0 ? opt_.http_threads : opt_.engine.parallel + opt_.engine.max_queue + 16;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  http_->set_payload_max_length(opt_.max_body_bytes);
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
  http_->set_keep_alive_max_count(1000);
  http_->set_keep_alive_timeout(5);
  http_->set_tcp_nodelay(true);  // a streamed token goes out at once
  routes();
}

Server::~Server() = default;

int Server::bind() {
  int port = opt_.port;
  if (port == 0)
    port = http_->bind_to_any_port(opt_.host);
  else if (!http_->bind_to_port(opt_.host, port))
    port = -1;
  if (port <= 0)
    detail::fail("--host/--port", "cannot listen on " + opt_.host + ":" + std::to_string(opt_.port) +
                                      " (address in use, or not an address of this machine)");
  http_->widen_backlog();
  return port;
}

bool Server::listen() {
  const bool ok = http_->listen_after_bind();
  return ok || draining_;
}

void Server::drain(double timeout) {
  if (!draining_.exchange(true)) http_->close_listener();
  engine_.close();
  const auto ms = [](double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); };
  if (!engine_.wait_idle(ms(timeout))) {
    engine_.cancel_all(shutting_down());
    engine_.wait_idle(std::chrono::seconds(5));  // the step under way ends first
  }
  // Answers being written (a stream's last events) get a moment before connections are told to end.
  for (int i = 0; i < 500 && in_flight_ > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http_->end_connections();
}

bool Server::authorized(const Request& req, Response& res) const {
  if (opt_.api_key.empty()) return true;
  const std::string h = req.get_header_value("Authorization");
  const std::string scheme = "bearer ";
  const bool bearer = h.size() > scheme.size() &&
                      std::equal(scheme.begin(), scheme.end(), h.begin(), [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
  if (!bearer) {
    send_error(res, ApiError(401,
                             "You didn't provide an API key. You need to provide your API key in an Authorization "
                             "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                             "invalid_request_error", std::nullopt, std::string("invalid_api_key")));
    return false;
  }
  if (!same_secret(h.substr(scheme.size()), opt_.api_key)) {
    send_error(res, ApiError(401, "Incorrect API key provided.", "invalid_request_error", std::nullopt,
                             std::string("invalid_api_key")));
    return false;
  }
  return true;
}

void Server::routes() {
  Http& h = *http_;
  using Handler = std::function<void(const Request&, Response&, const std::string&)>;
  // Every route: the body read within its bound, the key checked, a draining server answering 503,
  // and an ApiError thrown anywhere becoming OpenAI's error response.
  auto guarded = [this](Handler fn, bool while_draining = false) {
    return [this, fn, while_draining](const Request& req, Response& res, const std::string& body) {
      if (!authorized(req, res)) return;
      if (draining_ && !while_draining) return send_error(res, shutting_down());
      try {
        fn(req, res, body);
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    };
  };
  auto post = [this, &h](const std::string& path, Handler fn) {
    h.Post(path, [this, fn](const Request& req, Response& res, const httplib::ContentReader& reader) {
      std::string body;
      if (read_body(reader, res, opt_.max_body_bytes, body)) fn(req, res, body);
    });
  };
  auto get = [&h](const std::string& path, Handler fn) {
    h.Get(path, [fn](const Request& req, Response& res) { fn(req, res, std::string()); });
  };

  post("/v1/completions", guarded([this](const Request& req, Response& res, const std::string& body) {
         completions(req, res, body);
       }));
  post("/v1/embeddings", guarded([this](const Request& req, Response& res, const std::string& body) {
         embeddings(req, res, body);
       }));
  post("/v1/chat/completions", guarded([](const Request&, Response&, const std::string&) {
         throw ApiError(404,
                        "This is not a chat model and thus not supported in the v1/chat/completions endpoint. Did you "
                        "mean to use v1/completions? GPT-2 has no chat template: it continues text. Write the "
                        "conversation into a prompt (e.g. \"User: ...\\nAssistant:\") and pass stop: [\"\\nUser:\"].",
                        "invalid_request_error", std::string("model"), std::string("chat_not_supported"));
       }));
  post("/tokenize", guarded([this](const Request&, Response& res, const std::string& body) {
         const TokenizeRequest r = parse_tokenize_request(body, info_);
         const Tokenizer& tok = *info_.tokenizer;
         const std::vector<int> ids = r.add_special_tokens ? tok.encode(r.prompt) : tok.encode_ordinary(r.prompt);
         json out = {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", info_.n_positions}};
         if (r.return_token_strs) {
           json strs = json::array();
           for (int id : ids) strs.push_back(token_string(tok, id));
           out["token_strs"] = strs;
         }
         send_json(res, 200, out);
       }));
  post("/detokenize", guarded([this](const Request&, Response& res, const std::string& body) {
         const std::vector<int> ids = parse_detokenize_request(body, info_);
         send_json(res, 200, {{"prompt", info_.tokenizer->decode_text(ids, /*skip_special_tokens=*/false)}});
       }));
  get("/v1/models", guarded([this](const Request&, Response& res, const std::string&) {
        send_json(res, 200, {{"object", "list"}, {"data", {model_json(info_.id, created_, info_.n_positions)}}});
      }));
  get(R"(/v1/models/(.+))", guarded([this](const Request& req, Response& res, const std::string&) {
        if (req.matches[1] != info_.id)
          throw ApiError(404, "The model `" + req.matches[1].str() + "` does not exist or you do not have access to it.",
                         "invalid_request_error", std::string("model"), std::string("model_not_found"));
        send_json(res, 200, model_json(info_.id, created_, info_.n_positions));
      }));
  // A load balancer's probe: no key needed, 503 once the server drains so traffic moves elsewhere.
  h.Get("/health", [this](const Request&, Response& res) {
    if (draining_) return send_json(res, 503, {{"status", "shutting down"}});
    send_json(res, 200, {{"status", "ok"}});
  });
  get("/metrics", guarded(
                      [this](const Request&, Response& res, const std::string&) {
                        const EngineOptions& e = engine_.options();
                        res.set_content(metrics_.render(engine_.queued(), engine_.running(),
                                                        static_cast<std::size_t>(e.parallel),
                                                        static_cast<std::size_t>(e.max_queue)),
                                        "text/plain; version=0.0.4; charset=utf-8");
                      },
                      /*while_draining=*/true));

  // Anything else: 404, or 405 for a known path with another method; bodies read within the bound.
  auto unknown = [](const Request& req, Response& res) {
    const std::string label = endpoint_label(req.path);
    static const std::vector<std::string> posts = {"/v1/completions", "/v1/chat/completions", "/v1/embeddings",
                                                   "/tokenize", "/detokenize"};
    const bool post_route = std::find(posts.begin(), posts.end(), label) != posts.end();
    if (label != "other") {
      res.set_header("Allow", post_route ? "POST" : "GET");
      return send_error(res, ApiError(405, "Method " + req.method + " is not allowed for " + req.path + ".",
                                      "invalid_request_error", std::nullopt, std::string("method_not_allowed")));
    }
    send_error(res, ApiError(404, "Unknown request URL: " + req.method + " " + req.path + ".",
                             "invalid_request_error", std::nullopt, std::string("unknown_url")));
  };
  auto unknown_with_body = [this, unknown](const Request& req, Response& res, const httplib::ContentReader& reader) {
    std::string body;
    if (read_body(reader, res, opt_.max_body_bytes, body)) unknown(req, res);
  };
  h.Get(".*", unknown);
  h.Post(".*", unknown_with_body);
  h.Put(".*", unknown_with_body);
  h.Patch(".*", unknown_with_body);
  h.Delete(".*", unknown_with_body);

  // Errors httplib answers itself (a malformed request line, a body over the limit): OpenAI's shape.
  h.set_error_handler(httplib::Server::HandlerWithResponse([](const Request&, Response& res) {
    if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    const int s = res.status;
    send_error(res, ApiError(s,
                             s == 413   ? "The request body is larger than this server's limit (--max-body-size)."
                             : s == 414 ? "The request URL is too long."
                             : s == 400 ? "The HTTP request is malformed."
                                        : "The HTTP request could not be handled (status " + std::to_string(s) + ").",
                             s >= 500 ? "server_error" : "invalid_request_error"));
    return httplib::Server::HandlerResponse::Handled;
  }));
  h.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, "The server had an error while processing your request: " + what, "server_error"));
  });
  h.set_logger([this](const Request& req, const Response& res) {
    metrics_.request(endpoint_label(req.path), res.status);
    if (opt_.log_requests)
      std::fprintf(stderr, "[tinyllm] %s %s %s -> %d\n", req.remote_addr.c_str(), req.method.c_str(), req.path.c_str(),
                   res.status);
  });
}

// --- completions ------------------------------------------------------------------------------------

std::shared_ptr<Job> Server::submit(const CompletionRequest& r) {
  const std::uint64_t seed = r.seed ? *r.seed : rng()();
  std::vector<SequenceSpec> specs;
  for (const Prompt& p : r.prompts)
    for (int j = 0; j < r.best_of; ++j) {
      SequenceSpec s;
      s.prompt = p.ids;
      s.cfg = r.cfg;
      s.cfg.seed = seed;
      s.stream = static_cast<std::size_t>(j);
      s.logprobs = r.logprobs >= 0 || r.best_of > r.n;  // best_of ranks by log-prob
      s.prompt_logprobs = r.echo && r.logprobs >= 0;
      s.adjust = r.adjust;
      specs.push_back(std::move(s));
    }
  const auto deadline = opt_.timeout > 0 ? Clock::now() + std::chrono::milliseconds(static_cast<long long>(opt_.timeout * 1000))
                                         : Clock::time_point::max();
  auto job = std::make_shared<Job>(std::move(specs), deadline);
  switch (engine_.submit(job)) {
    case Engine::Submit::accepted: return job;
    case Engine::Submit::queue_full: throw server_busy();
    case Engine::Submit::closed: throw shutting_down();
  }
  return job;
}

namespace {
// Mean log-prob per token (best_of's ranking); a sequence without tokens ranks last.
double mean_logprob(const SequenceResult& s) {
  if (s.tokens.empty()) return -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (const TokenOut& t : s.tokens) sum += t.logprob;
  return sum / static_cast<double>(s.tokens.size());
}

std::size_t completion_tokens(const std::vector<SequenceResult>& results) {
  std::size_t n = 0;
  for (const SequenceResult& s : results) n += s.tokens.size();
  return n;
}
std::size_t prompt_tokens(const CompletionRequest& r) {
  std::size_t n = 0;
  for (const Prompt& p : r.prompts) n += p.ids.size();
  return n;
}
}  // namespace

json Server::completion_json(const CompletionRequest& r, const std::vector<SequenceResult>& results,
                             const std::string& id, long long created) const {
  json choices = json::array();
  const std::size_t best_of = static_cast<std::size_t>(r.best_of), n = static_cast<std::size_t>(r.n);
  for (std::size_t p = 0; p < r.prompts.size(); ++p) {
    std::vector<std::size_t> order(best_of);
    for (std::size_t j = 0; j < best_of; ++j) order[j] = p * best_of + j;
    if (best_of > n)
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return mean_logprob(results[a]) > mean_logprob(results[b]); });
    for (std::size_t j = 0; j < n; ++j) {
      const SequenceResult& s = results[order[j]];
      const Prompt& prompt = r.prompts[p];
      ChoiceText c(*info_.tokenizer, r.cfg.stop_strings, r.logprobs >= 0, code_points(prompt.text));
      if (r.echo) c.echo(prompt, s.prompt);
      for (const TokenOut& t : s.tokens) c.push(t);
      c.finish(s.reason == FinishReason::stop_string);
      ChoiceText::Piece piece = c.take();
      choices.push_back({{"text", piece.text},
                         {"index", p * n + j},
                         {"logprobs", r.logprobs >= 0 ? piece.logprobs.to_json() : json(nullptr)},
                         {"finish_reason", finish_reason_name(s.reason)}});
    }
  }
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", info_.id},
          {"system_fingerprint", fingerprint()},
          {"choices", choices},
          {"usage", usage_json(prompt_tokens(r), completion_tokens(results))}};
}

// A completion's server-sent events: what each choice has ready, a chunk per choice, then usage (if
// asked) and "data: [DONE]". The content provider calls next() until it is done; a client that went
// away cancels the job, and its sequences leave the batch at the engine's next step.
class Server::Stream {
 public:
  Stream(const Server& server, CompletionRequest r, std::shared_ptr<Job> job)
      : server_(server), r_(std::move(r)), job_(std::move(job)), id_(random_id("cmpl-")), created_(unix_time()) {
    const Tokenizer& tok = *server_.info_.tokenizer;
    for (std::size_t i = 0; i < job_->specs().size(); ++i) {
      const Prompt& p = r_.prompts[i / static_cast<std::size_t>(r_.n)];
      choices_.emplace_back(tok, r_.cfg.stop_strings, r_.logprobs >= 0, code_points(p.text));
    }
    taken_.assign(choices_.size(), 0);
    echoed_.assign(choices_.size(), !r_.echo);
    finished_.assign(choices_.size(), false);
  }

  // One round: waits briefly for tokens, writes what is ready. False when the client is gone.
  bool next(DataSink& sink) {
    if (!sink.is_writable()) return gone();
    std::string out;
    bool done = false;
    std::optional<ApiError> error;
    job_->read(std::chrono::milliseconds(100), [&](const std::vector<SequenceResult>& results, bool d,
                                                   const std::optional<ApiError>& e) {
      for (std::size_t i = 0; i < results.size(); ++i) collect(i, results[i], out);
      done = d;
      error = e;
    });
    if (error) {
      out += event(error->body());
    } else if (done && r_.include_usage) {
      json u = chunk(json::array());
      std::size_t completion = 0;
      job_->read(std::chrono::milliseconds(0), [&](const std::vector<SequenceResult>& results, bool, const auto&) {
        completion = completion_tokens(results);
      });
      u["usage"] = usage_json(prompt_tokens(r_), completion);
      out += event(u);
    }
    if (done || error) out += "data: [DONE]\n\n";
    if (!out.empty() && !sink.write(out.data(), out.size())) return gone();
    if (done || error) sink.done();
    return true;
  }

 private:
  bool gone() {
    job_->cancel();
    return false;
  }
  static std::string event(const json& j) { return "data: " + dump(j) + "\n\n"; }
  json chunk(json choices) const {
    json c = {{"id", id_},
              {"object", "text_completion"},
              {"created", created_},
              {"model", server_.info_.id},
              {"system_fingerprint", fingerprint()},
              {"choices", std::move(choices)}};
    if (r_.include_usage) c["usage"] = nullptr;
    return c;
  }
  // Appends choice i's events: the echoed prompt, then an event per new token (its text and log-prob),
  // the last one with the finish reason. A token whose text is held back (an incomplete character,
  // the start of a stop sequence) goes out with a later one.
  void collect(std::size_t i, const SequenceResult& s, std::string& out) {
    if (finished_[i]) return;
    ChoiceText& c = choices_[i];
    if (!echoed_[i]) {  // the prompt first, once its log-probs (computed with the prompt) are all there
      if (r_.logprobs >= 0 && s.tokens.empty() && !s.finished) return;
      c.echo(r_.prompts[i / static_cast<std::size_t>(r_.n)], s.prompt);
      echoed_[i] = true;
      emit(i, c.take(), nullptr, out);
    }
    while (taken_[i] < s.tokens.size()) {
      c.push(s.tokens[taken_[i]++]);
      const bool last = s.finished && taken_[i] == s.tokens.size();
      if (last) c.finish(s.reason == FinishReason::stop_string);
      emit(i, c.take(), last ? finish_reason_name(s.reason) : nullptr, out);
      finished_[i] = last;
    }
    if (s.finished && !finished_[i]) {  // finished without a new token (max_tokens 0)
      c.finish(s.reason == FinishReason::stop_string);
      emit(i, c.take(), finish_reason_name(s.reason), out);
      finished_[i] = true;
    }
  }
  void emit(std::size_t i, ChoiceText::Piece piece, const char* finish_reason, std::string& out) const {
    if (piece.text.empty() && piece.logprobs.empty() && !finish_reason) return;
    json choice = {{"text", piece.text},
                   {"index", i},
                   {"logprobs", r_.logprobs >= 0 ? piece.logprobs.to_json() : json(nullptr)},
                   {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
    out += event(chunk(json::array({choice})));
  }

  const Server& server_;
  const CompletionRequest r_;
  const std::shared_ptr<Job> job_;
  const std::string id_;
  const long long created_;
  std::vector<ChoiceText> choices_;
  std::vector<std::size_t> taken_;
  std::vector<bool> echoed_, finished_;
};

void Server::completions(const Request& req, Response& res, const std::string& body) {
  CompletionRequest r = parse_completion_request(body, info_, limits_);
  auto in_flight = std::make_shared<InFlight>(in_flight_);
  std::shared_ptr<Job> job = submit(r);
  if (!r.stream) {  // waits, and cancels the job if the client hangs up meanwhile
    const int fd = connection_socket(req);
    while (!job->wait_done(std::chrono::milliseconds(100)))
      if (hung_up(fd)) job->cancel();
    std::optional<ApiError> error;
    json out;
    job->read(std::chrono::milliseconds(0), [&](const std::vector<SequenceResult>& results, bool,
                                                const std::optional<ApiError>& e) {
      if (e)
        error = e;
      else
        out = completion_json(r, results, random_id("cmpl-"), unix_time());
    });
    if (error) throw *error;
    return send_json(res, 200, out);
  }
  auto stream = std::make_shared<Stream>(*this, std::move(r), job);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass each event on at once
  res.set_chunked_content_provider(
      "text/event-stream", [stream](std::size_t, DataSink& sink) { return stream->next(sink); },
      [job, in_flight](bool) { job->cancel(); });  // ends with the response; a finished job ignores it
}

}  // namespace tinyllm::server
