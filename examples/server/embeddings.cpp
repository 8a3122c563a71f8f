// POST /v1/embeddings. This build's library has no model.embed(), so the endpoint answers OpenAI's
// 404 error saying so. With it, this one handler becomes: parse {"input", "model", "encoding_format",
// "dimensions", "user"} like api.cpp's parsers, run model.embed() inside engine_.run_exclusive() (the
// engine thread owns the model's compute), and answer {"object": "list", "data": [{"object":
// "embedding", "index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}.
#include <httplib.h>

#include "server.hpp"

namespace tinyllm::server {

void Server::embeddings(const httplib::Request&, httplib::Response&, const std::string&) {
  throw ApiError(404,
                 "Embeddings are not available in this build of tinyllm serve: its library has no model.embed(). "
                 "Use POST /v1/completions, or a tinyllm built with embedding support.",
                 "invalid_request_error", std::nullopt, std::string("embeddings_not_available"));
}

}  // namespace tinyllm::server
