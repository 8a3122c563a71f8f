// POST /v1/embeddings: the request parsed (api.cpp), model.embed() run on the engine thread between
// two decoding steps (that thread owns the model's compute), and OpenAI's list of embeddings.
#include <httplib.h>

#include <tinyllm/error.hpp>

#include "server.hpp"

namespace tinyllm::server {

void Server::embeddings(const httplib::Request&, httplib::Response& res, const std::string& body) {
  const EmbeddingRequest r = parse_embedding_request(body, info_, limits_, model_.config().n_embd);
  EmbeddingOptions opts;
  opts.pooling = pooling_from_name(r.pooling);
  opts.normalize = r.normalize;
  Embeddings e;
  try {
    engine_.run_exclusive([&] { e = model_.embed(r.inputs, opts); });
  } catch (const Error& err) {  // the parser checked what a request controls; anything left is the server's
    throw ApiError(500, std::string("The embeddings could not be computed: ") + err.what(), "server_error");
  }
  json data = json::array();
  for (std::size_t i = 0; i < r.inputs.size(); ++i) {
    const float* v = e[i];
    json item = {{"object", "embedding"}, {"index", i}};
    if (r.base64) {
      item["embedding"] = base64_floats(v, e.dim);
    } else {
      json floats = json::array();
      for (std::size_t k = 0; k < e.dim; ++k) floats.push_back(v[k]);
      item["embedding"] = std::move(floats);
    }
    data.push_back(std::move(item));
  }
  const std::size_t tokens = e.total_tokens();
  metrics_.prompt_tokens(tokens);
  const json out = {{"object", "list"}, {"data", std::move(data)}, {"model", info_.id},
                    {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
  res.status = 200;
  res.set_content(out.dump(), "application/json");  // floats and ASCII only: dump cannot throw
}

}  // namespace tinyllm::server
