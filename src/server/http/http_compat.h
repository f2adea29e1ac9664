// Routes for the clients of other APIs (docs/http.md, "Compatible APIs"): the HttpApi route
// table binds them; these turn the other API's JSON into Service calls and back.
//   POST /v1/rerank, /v2/rerank  Cohere rerank {"model"?, "query", "documents": [str | {"text"}],
//                                "top_n"?, "return_documents"?, "max_tokens_per_doc"?}
//                                -> {"id", "results": [{"index", "relevance_score",
//                                "document"?}], "meta", "model", "usage"} (/v1/rerank is also
//                                Jina's rerank: its request and response are a subset of this)
//   POST /v1/embed, /v2/embed    Cohere embed {"model"?, "texts", "input_type"?,
//                                "embedding_types"?: ["float" | "base64"], "truncate"?,
//                                "output_dimension"?, "max_tokens"?} -> {"id", "embeddings",
//                                "texts", "meta", "response_type"}
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "server/http/http_api.h"
#include "server/service.h"

namespace encserve::server::http_compat {

enum class Version { kV1, kV2 };

void Rerank(Service& service, const nlohmann::json& body, Version version, RequestContext ctx,
            HttpReplyFn reply);
void Embed(Service& service, const nlohmann::json& body, Version version, RequestContext ctx,
           HttpReplyFn reply);

}  // namespace encserve::server::http_compat
