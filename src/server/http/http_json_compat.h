// JSON shapes of the compatibility routes (http_compat.h): Cohere's and Jina's rerank and
// Cohere's embed. Readers report errors as http_json's do; writers use its float format.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/http/http_json.h"

namespace encserve::server::http_json {

// Rerank documents: a list whose items are strings or objects with a string "text" (other
// fields of an object are kept for the reply, not ranked). Required.
Status GetDocuments(const Json& obj, const char* key, std::vector<std::string>* out);

// A random version-4 UUID, the "id" of Cohere replies.
std::string NewId();

struct CompatReply {
  std::string id;     // NewId()
  std::string model;  // echoed
  int api_version = 1;
};

// {"id", "results": [{"index", "relevance_score", "document"?}], "meta", "model", "usage"}.
// `documents` (the request's list) is read for results with a document: a string item is
// returned as {"text": item}, an object item as it came.
std::string CompatRerankBody(const RerankResult& r, const Json& documents, const CompatReply& c);

// Cohere embed: by_type false gives "embeddings_floats" ({"embeddings": [[...]]}); true gives
// "embeddings_by_type" ({"embeddings": {"float"?: [[...]], "base64"?: [...]}}).
struct EmbedTypes {
  bool by_type = true;
  bool float32 = true;
  bool base64 = false;
};
std::string CohereEmbedBody(const EmbedResult& r, const std::vector<std::string>& texts,
                            const EmbedTypes& types, const CompatReply& c);

}  // namespace encserve::server::http_json
