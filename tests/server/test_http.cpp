// tinyllm serve over real HTTP (cpp-httplib's client against an in-process server on a free port):
// the completion the library gives, OpenAI's shapes, the API key, body and token limits, the bounded
// queue, timeouts, a disconnecting client freeing its slot, and draining at shutdown.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "server_test_helpers.hpp"

using tinyllm::server::ServerOptions;
using namespace std::chrono_literals;
using json = nlohmann::json;  // replies compared as values (key order aside)

namespace {

struct Reply {
  int status = 0;
  json body;
  httplib::Headers headers;
  std::string header(const std::string& k) const {
    const auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

Reply request(int port, const std::string& method, const std::string& path, const std::string& body = "",
              httplib::Headers headers = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  httplib::Result r = method == "GET" ? c.Get(path.c_str(), headers) : c.Post(path.c_str(), headers, body, "application/json");
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.headers = r->headers;
  out.body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (out.body.is_discarded()) out.body = r->body;
  return out;
}
Reply post(int port, const std::string& path, const std::string& body, httplib::Headers headers = {}) {
  return request(port, "POST", path, body, std::move(headers));
}

// A streamed completion's "data:" payloads, in order. on_event(i, payload) returning false hangs up.
struct Events {
  int status = 0;
  std::string content_type;
  std::vector<std::string> data;
  bool framing_ok = true;  // every event is "data: ...\n\n"
};
Events stream(int port, const std::string& body, std::function<bool(std::size_t, const std::string&)> on_event = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body;
  req.set_header("Content-Type", "application/json");
  Events ev;
  std::string buf;
  req.response_handler = [&](const httplib::Response& r) {
    ev.status = r.status;
    ev.content_type = r.get_header_value("Content-Type");
    return true;
  };
  req.content_receiver = [&](const char* d, std::size_t n, std::uint64_t, std::uint64_t) {
    buf.append(d, n);
    for (std::size_t end; (end = buf.find("\n\n")) != std::string::npos;) {
      const std::string e = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (e.rfind("data: ", 0) != 0) ev.framing_ok = false;
      ev.data.push_back(e.substr(6));
      if (on_event && !on_event(ev.data.size() - 1, ev.data.back())) return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err;
  c.send(req, res, err);
  if (ev.status == 0) ev.status = res.status;
  if (!buf.empty()) ev.framing_ok = false;
  return ev;
}

std::string text_of(const Events& ev) {
  std::string s;
  for (const std::string& d : ev.data)
    if (d != "[DONE]") {
      const json j = json::parse(d);
      if (j.contains("choices") && !j["choices"].empty()) s += j["choices"][0]["text"].get<std::string>();
    }
  return s;
}

// The demo model's greedy continuation of "The state of the Union" (35 tokens): the PyTorch oracle's.
std::string demo_continuation() {
  std::ifstream in(test::fixture("demo_greedy.txt"));
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.substr(std::string("The state of the Union").size());
}
const std::string demo_request = R"({"model": "tiny-sotu", "prompt": "The state of the Union", "max_tokens": 35, "temperature": 0)";

ServerOptions options() {
  ServerOptions o;
  o.engine.parallel = 4;
  o.engine.max_queue = 8;
  return o;
}

}  // namespace

TEST_CASE("HTTP: a greedy completion is the library's, streamed or not, in OpenAI's shape") {
  test::LiveServer s(options());
  const Reply r = post(s.port, "/v1/completions", demo_request + "}");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/json");
  const json& b = r.body;
  CHECK(b["object"] == "text_completion");
  CHECK(b["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  CHECK(b["model"] == "tiny-sotu");
  CHECK(b["created"].is_number_integer());
  REQUIRE(b["choices"].size() == 1);
  CHECK(b["choices"][0]["text"] == demo_continuation());
  CHECK(b["choices"][0]["index"] == 0);
  CHECK(b["choices"][0]["logprobs"].is_null());
  CHECK(b["choices"][0]["finish_reason"] == "length");
  CHECK(b["usage"] == json({{"prompt_tokens", 5}, {"completion_tokens", 35}, {"total_tokens", 40}}));

  const Events ev = stream(s.port, demo_request + R"(, "stream": true, "stream_options": {"include_usage": true}})");
  CHECK(ev.status == 200);
  CHECK(ev.content_type == "text/event-stream");
  CHECK(ev.framing_ok);
  REQUIRE(ev.data.size() >= 3);
  CHECK(ev.data.back() == "[DONE]");
  CHECK(text_of(ev) == demo_continuation());
  const json usage = json::parse(ev.data[ev.data.size() - 2]);  // the usage chunk: no choices
  CHECK(usage["choices"].empty());
  CHECK(usage["usage"]["completion_tokens"] == 35);
  const json last = json::parse(ev.data[ev.data.size() - 3]);
  CHECK(last["choices"][0]["finish_reason"] == "length");
  CHECK(last["usage"].is_null());
  CHECK(json::parse(ev.data[0])["choices"][0]["finish_reason"].is_null());
}

TEST_CASE("HTTP: several prompts, n, best_of, echo with log-probs, stop sequences") {
  test::LiveServer s(options());
  // Two prompts x n = 2: choices indexed prompt * n + j; seeded samples repeat exactly.
  const std::string body = R"({"prompt": ["The state of the Union", "Tonight"], "n": 2, "max_tokens": 8, "seed": 42,
                               "temperature": 0.8})";
  const Reply a = post(s.port, "/v1/completions", body), b = post(s.port, "/v1/completions", body);
  REQUIRE(a.status == 200);
  REQUIRE(a.body["choices"].size() == 4);
  for (int i = 0; i < 4; ++i) {
    CHECK(a.body["choices"][i]["index"] == i);
    CHECK(a.body["choices"][i]["text"] == b.body["choices"][i]["text"]);
  }
  CHECK(a.body["usage"]["prompt_tokens"] == 5 + 1);
  CHECK(a.body["usage"]["completion_tokens"] == 4 * 8);
  // best_of 3, n 1: the completion with the highest mean log-prob; all three are billed
  const Reply best = post(s.port, "/v1/completions", R"({"prompt": "Tonight", "best_of": 3, "max_tokens": 6, "seed": 1})");
  REQUIRE(best.status == 200);
  CHECK(best.body["choices"].size() == 1);
  CHECK(best.body["usage"]["completion_tokens"] == 18);
  // echo + logprobs + max_tokens 0: the prompt scored, as evaluation harnesses ask
  const Reply echo = post(s.port, "/v1/completions", R"({"prompt": "The state of the Union", "echo": true, "logprobs": 2,
                                                         "max_tokens": 0})");
  REQUIRE(echo.status == 200);
  const json& lp = echo.body["choices"][0]["logprobs"];
  CHECK(echo.body["choices"][0]["text"] == "The state of the Union");
  CHECK(lp["tokens"] == json({"The", " state", " of", " the", " Union"}));
  CHECK(lp["token_logprobs"][0].is_null());
  CHECK(lp["token_logprobs"][1].get<double>() < 0);
  CHECK(lp["top_logprobs"][1].size() <= 3);
  CHECK(lp["text_offset"] == json({0, 3, 9, 12, 16}));
  CHECK(echo.body["usage"]["completion_tokens"] == 0);
  // a stop sequence: the text ends before it, finish_reason "stop"
  const Reply stop = post(s.port, "/v1/completions", demo_request + R"(, "stop": [" States"]})");
  CHECK(stop.body["choices"][0]["text"] == ", and the United");
  CHECK(stop.body["choices"][0]["finish_reason"] == "stop");
  const Events sev = stream(s.port, demo_request + R"(, "stop": [" States"], "stream": true})");
  CHECK(text_of(sev) == ", and the United");
}

TEST_CASE("HTTP: with an API key, requests without 'Authorization: Bearer KEY' get 401") {
  ServerOptions o = options();
  o.api_key = "s3cret-key";
  test::LiveServer s(o);
  const Reply none = post(s.port, "/v1/completions", demo_request + "}");
  CHECK(none.status == 401);
  CHECK(none.header("WWW-Authenticate") == "Bearer");
  CHECK(none.body["error"]["type"] == "invalid_request_error");
  CHECK(none.body["error"]["code"] == "invalid_api_key");
  CHECK(none.body["error"]["message"].get<std::string>().find("didn't provide an API key") != std::string::npos);
  const Reply wrong = post(s.port, "/v1/completions", demo_request + "}", {{"Authorization", "Bearer s3cret-kez"}});
  CHECK(wrong.status == 401);
  CHECK(wrong.body["error"]["message"] == "Incorrect API key provided.");
  CHECK(post(s.port, "/v1/completions", demo_request + "}", {{"Authorization", "Bearer s3cret-key-and-more"}}).status == 401);
  CHECK(post(s.port, "/v1/completions", demo_request + "}", {{"Authorization", "s3cret-key"}}).status == 401);
  CHECK(post(s.port, "/v1/completions", demo_request + "}", {{"Authorization", "Bearer s3cret-key"}}).status == 200);
  CHECK(post(s.port, "/tokenize", R"({"prompt": "x"})", {{"Authorization", "bearer s3cret-key"}}).status == 200);
  CHECK(request(s.port, "GET", "/v1/models").status == 401);
  CHECK(request(s.port, "GET", "/metrics").status == 401);
  CHECK(request(s.port, "GET", "/v1/models", "", {{"Authorization", "Bearer s3cret-key"}}).status == 200);
  CHECK(request(s.port, "GET", "/health").status == 200);  // load balancers probe without the key
}

TEST_CASE("HTTP: bounded bodies (413), token limits and bad requests (400 naming the field), unknown routes") {
  ServerOptions o = options();
  o.max_body_bytes = 2048;
  o.max_tokens = 64;
  o.max_prompt_tokens = 32;
  test::LiveServer s(o);
  const std::string big = R"({"prompt": ")" + std::string(4000, 'a') + R"("})";
  const Reply large = post(s.port, "/v1/completions", big);
  CHECK(large.status == 413);
  CHECK(large.body["error"]["code"] == "request_too_large");
  {  // the same body sent in chunks, without a Content-Length
    httplib::Client c("127.0.0.1", s.port);
    std::size_t sent = 0;
    auto r = c.Post(
        "/v1/completions",
        [&](std::size_t, httplib::DataSink& sink) {
          if (sent >= big.size()) {
            sink.done();
            return true;
          }
          const std::size_t n = std::min<std::size_t>(512, big.size() - sent);
          sink.write(big.data() + sent, n);
          sent += n;
          return true;
        },
        "application/json");
    REQUIRE(r);
    CHECK(r->status == 413);
  }
  const Reply many = post(s.port, "/v1/completions", R"({"prompt": "x", "max_tokens": 65})");
  CHECK(many.status == 400);
  CHECK(many.body["error"]["param"] == "max_tokens");
  std::string ids = "13";
  for (int i = 0; i < 32; ++i) ids += ",13";
  const Reply longp = post(s.port, "/v1/completions", R"({"prompt": [)" + ids + "]}");
  CHECK(longp.status == 400);
  CHECK(longp.body["error"]["param"] == "prompt");
  const Reply bad = post(s.port, "/v1/completions", "{\"prompt\": ");
  CHECK(bad.status == 400);
  CHECK(bad.body["error"]["message"].get<std::string>().find("could not parse the JSON body") != std::string::npos);
  const Reply unknown = post(s.port, "/v1/completions", R"({"prompt": "x", "frobnicate": true})");
  CHECK(unknown.status == 400);
  CHECK(unknown.body["error"]["message"] == "Unrecognized request argument supplied: frobnicate");
  const Reply type = post(s.port, "/v1/completions", R"({"prompt": "x", "n": "2"})");
  CHECK(type.status == 400);
  CHECK(type.body["error"]["param"] == "n");
  const Reply nope = request(s.port, "GET", "/v2/whatever");
  CHECK(nope.status == 404);
  CHECK(nope.body["error"]["code"] == "unknown_url");
  const Reply method = request(s.port, "GET", "/v1/completions");
  CHECK(method.status == 405);
  CHECK(method.header("Allow") == "POST");
  CHECK(post(s.port, "/v1/models", "{}").status == 405);
  // the server still answers after all of these
  CHECK(post(s.port, "/v1/completions", demo_request + "}").body["choices"][0]["text"] == demo_continuation());
}

TEST_CASE("HTTP: a full queue answers 503 with Retry-After; a client that hangs up frees its slot") {
  ServerOptions o = options();
  o.engine.parallel = 1;
  o.engine.max_queue = 0;
  test::LiveServer s(o);
  std::atomic<bool> first{false}, hang_up{false};
  std::thread a([&] {
    stream(s.port, R"({"prompt": "The state of the Union", "max_tokens": 200, "temperature": 0, "stream": true})",
           [&](std::size_t, const std::string&) {
             first = true;
             return !hang_up;  // false: the client goes away mid-stream
           });
  });
  while (!first) std::this_thread::sleep_for(5ms);
  const Reply busy = post(s.port, "/v1/completions", R"({"prompt": "x", "max_tokens": 2})");
  CHECK(busy.status == 503);
  CHECK(busy.header("Retry-After") == "1");
  CHECK(busy.body["error"]["code"] == "queue_full");
  hang_up = true;
  a.join();
  // The engine drops the stream at its next step: the slot is free again at once.
  const auto t0 = std::chrono::steady_clock::now();
  Reply next;
  do {
    next = post(s.port, "/v1/completions", R"({"prompt": "x", "max_tokens": 2})");
  } while (next.status == 503 && std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(next.status == 200);
  CHECK(s.server->engine().wait_idle(5s));
  const std::string metrics = request(s.port, "GET", "/metrics").body.get<std::string>();
  CHECK(metrics.find(R"(tinyllm_requests_total{endpoint="/v1/completions",status="503"} )") != std::string::npos);
}

TEST_CASE("HTTP: a client that gives up on a non-streamed completion frees its slot") {
  ServerOptions o = options();
  o.engine.parallel = 1;
  test::LiveServer s(o);
  {  // 8 x 240 tokens, one sequence at a time: the client leaves long before they are done
    httplib::Client c("127.0.0.1", s.port);
    c.set_read_timeout(0, 300 * 1000);
    CHECK_FALSE(c.Post("/v1/completions", R"({"prompt": "The state of the Union", "n": 8, "max_tokens": 240,
                                              "min_new_tokens": 240, "temperature": 0, "logprobs": 5})",
                       "application/json"));
  }
  REQUIRE(s.server->engine().wait_idle(30s));
  const std::string metrics = request(s.port, "GET", "/metrics").body.get<std::string>();
  const std::size_t at = metrics.find("\ntinyllm_generation_tokens_total ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoul(metrics.substr(at + 33)) < 8 * 240);
}

TEST_CASE("HTTP: a burst of 64 clients connecting at once is served, the excess queued") {
  ServerOptions o = options();
  o.engine.parallel = 8;
  o.engine.max_queue = 64;
  test::LiveServer s(o);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 64; ++i)
    clients.emplace_back([&] {
      const Reply r = post(s.port, "/v1/completions", R"({"prompt": "Tonight", "max_tokens": 2, "temperature": 0})");
      ok += r.status == 200 && r.body["usage"]["completion_tokens"] == 2;
    });
  for (auto& c : clients) c.join();
  CHECK(ok == 64);
}

TEST_CASE("HTTP: a request past --timeout is cancelled (503, or an error event in a stream)") {
  ServerOptions o = options();
  o.timeout = 0.05;
  o.engine.parallel = 1;
  test::LiveServer s(o);
  // 250 tokens with 5 alternatives each take several times 50 ms on the demo model
  const std::string slow = R"({"prompt": "The state of the Union", "max_tokens": 250, "temperature": 0, "logprobs": 5)";
  const Reply r = post(s.port, "/v1/completions", slow + "}");
  CHECK(r.status == 503);
  CHECK(r.body["error"]["code"] == "timeout");
  const Events ev = stream(s.port, slow + R"(, "stream": true})");
  REQUIRE(ev.data.size() >= 2);
  CHECK(ev.data.back() == "[DONE]");
  const json err = json::parse(ev.data[ev.data.size() - 2]);
  CHECK(err["error"]["code"] == "timeout");
}

TEST_CASE("HTTP: drain stops accepting connections and lets in-flight streams finish") {
  test::LiveServer s(options());
  std::atomic<bool> first{false};
  Events ev;
  std::thread a([&] {
    ev = stream(s.port, R"({"prompt": "The state of the Union", "max_tokens": 150, "temperature": 0, "stream": true})",
                [&](std::size_t, const std::string&) {
                  first = true;
                  return true;
                });
  });
  while (!first) std::this_thread::sleep_for(5ms);
  std::thread drain([&] { s.stop(30); });
  std::this_thread::sleep_for(50ms);
  httplib::Client c("127.0.0.1", s.port);
  CHECK_FALSE(c.Get("/health"));  // the listening socket is closed: connection refused
  a.join();
  drain.join();
  CHECK(s.listen_ok);
  CHECK(ev.data.back() == "[DONE]");
  CHECK(json::parse(ev.data[ev.data.size() - 2])["choices"][0]["finish_reason"] == "length");
  CHECK(text_of(ev).size() > 100);
}

TEST_CASE("HTTP: a drain that runs out of time cancels in-flight requests with an error event") {
  test::LiveServer s(options());
  std::atomic<bool> first{false};
  Events ev;
  std::thread a([&] {
    ev = stream(s.port, R"({"prompt": "The state of the Union", "max_tokens": 250, "temperature": 0, "logprobs": 5,
                            "stream": true})",
                [&](std::size_t, const std::string&) {
                  first = true;
                  return true;
                });
  });
  while (!first) std::this_thread::sleep_for(5ms);
  s.stop(0.01);
  a.join();
  CHECK(s.listen_ok);
  REQUIRE(ev.data.size() >= 2);
  CHECK(ev.data.back() == "[DONE]");
  CHECK(json::parse(ev.data[ev.data.size() - 2])["error"]["code"] == "shutting_down");
}

TEST_CASE("HTTP: tokenize, detokenize, models, health, metrics, embeddings; chat says why not") {
  test::LiveServer s(options());
  const Reply t = post(s.port, "/tokenize", R"({"prompt": "It's a fine day; we've", "return_token_strs": true})");
  REQUIRE(t.status == 200);
  CHECK(t.body["tokens"] == json({1026, 338, 257, 3734, 1110, 26, 356, 1053}));  // tiktoken's gpt2 ids
  CHECK(t.body["count"] == 8);
  CHECK(t.body["max_model_len"] == 256);
  CHECK(t.body["token_strs"][1] == "'s");
  CHECK(post(s.port, "/tokenize", R"({"prompt": "<|endoftext|>"})").body["tokens"] == json({50256}));
  CHECK(post(s.port, "/tokenize", R"({"prompt": "<|endoftext|>", "add_special_tokens": false})").body["count"] == 7);
  const Reply d = post(s.port, "/detokenize", R"({"tokens": [1026, 338, 257, 3734, 1110, 26, 356, 1053]})");
  CHECK(d.body["prompt"] == "It's a fine day; we've");
  const Reply m = request(s.port, "GET", "/v1/models");
  CHECK(m.body["object"] == "list");
  CHECK(m.body["data"][0]["id"] == "tiny-sotu");
  CHECK(m.body["data"][0]["object"] == "model");
  CHECK(request(s.port, "GET", "/v1/models/tiny-sotu").body["id"] == "tiny-sotu");
  CHECK(request(s.port, "GET", "/v1/models/gpt-4").status == 404);
  CHECK(request(s.port, "GET", "/health").body == json({{"status", "ok"}}));
  const Reply chat = post(s.port, "/v1/chat/completions", R"({"model": "tiny-sotu", "messages": []})");
  CHECK(chat.status == 404);
  CHECK(chat.body["error"]["message"].get<std::string>().find("not a chat model") != std::string::npos);
  // Embeddings over HTTP are the library's, bitwise (the oracle comparison is the openai client's test).
  const Reply emb = post(s.port, "/v1/embeddings", R"({"model": "tiny-sotu", "input": [[1026, 338, 257], [464, 1181]], "pooling": "last"})");
  REQUIRE(emb.status == 200);
  CHECK(emb.body["object"] == "list");
  CHECK(emb.body["usage"]["prompt_tokens"] == 5);
  tinyllm::EmbeddingOptions eo;
  eo.pooling = tinyllm::Pooling::last;
  eo.normalize = true;
  const std::vector<float> want = test::demo().embed(std::vector<int>{464, 1181}, eo);
  REQUIRE(emb.body["data"][1]["embedding"].size() == want.size());
  for (std::size_t k = 0; k < want.size(); ++k) CHECK(emb.body["data"][1]["embedding"][k].get<float>() == want[k]);
  CHECK(post(s.port, "/v1/embeddings", R"({"input": "x", "pooling": "max"})").body["error"]["param"] == "pooling");
  CHECK(post(s.port, "/v1/embeddings", R"({"input": 3.5})").body["error"]["param"] == "input");
  CHECK(post(s.port, "/v1/embeddings", R"({"model": "tiny-sotu"})").status == 400);
  post(s.port, "/v1/completions", demo_request + "}");
  const std::string metrics = request(s.port, "GET", "/metrics").body.get<std::string>();
  for (const char* line : {R"(tinyllm_requests_total{endpoint="/v1/completions",status="200"} 1)",
                           R"(tinyllm_requests_total{endpoint="/v1/chat/completions",status="404"} 1)",
                           "tinyllm_prompt_tokens_total 10", "tinyllm_generation_tokens_total 35",  // prompts: 5 embedded, 5 completed
                           "# TYPE tinyllm_generation_tokens_per_second gauge", "tinyllm_requests_waiting 0",
                           "tinyllm_batch_capacity 4", "tinyllm_time_to_first_token_seconds_count 1",
                           "tinyllm_speculative_acceptance_rate 0"})
    CHECK_MESSAGE(metrics.find(line) != std::string::npos, line);
}
