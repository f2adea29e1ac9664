// Cohere's (and Jina's) rerank and Cohere's embed over the Service: docs/http.md, "Compatible
// APIs", lists what differs from the originals. Malformed fields are 400s (as on the other
// routes); well-formed options that encserve cannot honour are 422s of type "unsupported",
// never ignored.
#include "server/http/http_compat.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/http/http_json_compat.h"

namespace encserve::server::http_compat {
namespace {

using http_json::Json;

HttpReply BadRequest(const Status& s) {
  return HttpApi::Error(400, s.message(), "invalid_request");
}

HttpReply Unsupported(const std::string& message) {
  return HttpApi::Error(422, message, "unsupported");
}

// A per-text token budget (Cohere's max_tokens_per_doc, max_tokens): every text is cut to the
// model's max_input_length tokens anyway, so a budget at least that large is what encserve does
// already; a smaller one would need per-request truncation, which the Service does not offer.
std::optional<HttpReply> CheckTokenBudget(const char* key, std::optional<int> budget,
                                          int max_input_length) {
  if (!budget) return std::nullopt;
  if (*budget < 1) return HttpApi::Error(422, std::string(key) + " must be positive", "validation");
  if (*budget >= max_input_length) return std::nullopt;
  return Unsupported(std::string(key) + " below the model's max_input_length (" +
                     std::to_string(max_input_length) +
                     " tokens) is not supported: texts are cut at max_input_length");
}

// Rerank options encserve cannot honour; std::nullopt when the request is servable.
std::optional<HttpReply> CheckRerankOptions(const Json& j, const ServiceInfo& info) {
  std::optional<int> max_tokens, max_chunks;
  std::vector<std::string> rank_fields;
  Status st = http_json::GetOptInt(j, "max_tokens_per_doc", &max_tokens);
  if (st.ok()) st = http_json::GetOptInt(j, "max_chunks_per_doc", &max_chunks);
  if (st.ok() && j.contains("rank_fields") && !j["rank_fields"].is_null()) {
    st = http_json::GetStringList(j, "rank_fields", &rank_fields);
  }
  if (!st.ok()) return BadRequest(st);
  if (!rank_fields.empty() && rank_fields != std::vector<std::string>{"text"}) {
    return Unsupported("rank_fields other than [\"text\"] are not supported");
  }
  if (max_chunks && *max_chunks != 1) {
    return Unsupported(
        "max_chunks_per_doc other than 1 is not supported: documents are cut "
        "at the model's max_input_length, not split into chunks");
  }
  auto spans = j.find("relevant_spans");
  if (spans != j.end() && spans->is_object() && spans->value("mode", "") == "enabled") {
    return Unsupported("relevant_spans are not supported");
  }
  return CheckTokenBudget("max_tokens_per_doc", max_tokens, info.max_input_length);
}

// Cohere's truncate: "END" (the default: cut the end), "START" (cut the beginning: keep the
// end), "NONE" (a text that is too long fails).
std::optional<HttpReply> ParseTruncate(const Json& j, bool* truncate, bool* left) {
  std::optional<std::string> t;
  Status st = http_json::GetOptString(j, "truncate", &t);
  if (!st.ok()) return BadRequest(st);
  if (!t || *t == "END") return std::nullopt;
  if (*t == "NONE") {
    *truncate = false;
    return std::nullopt;
  }
  if (*t == "START") {
    *left = true;
    return std::nullopt;
  }
  return BadRequest(InvalidArgument("truncate must be \"NONE\", \"START\" or \"END\""));
}

// input_type and embedding_types. The model has no per-input-type prompts: all text input
// types embed alike.
std::optional<HttpReply> ParseEmbedTypes(const Json& j, Version version,
                                         http_json::EmbedTypes* types) {
  std::optional<std::string> input_type;
  std::vector<std::string> names;
  Status st = http_json::GetOptString(j, "input_type", &input_type);
  const bool listed = j.contains("embedding_types") && !j["embedding_types"].is_null();
  if (st.ok() && listed) st = http_json::GetStringList(j, "embedding_types", &names);
  if (!st.ok()) return BadRequest(st);
  if (input_type && *input_type == "image") return Unsupported("input_type \"image\": text only");
  if (input_type && *input_type != "search_document" && *input_type != "search_query" &&
      *input_type != "classification" && *input_type != "clustering") {
    return BadRequest(
        InvalidArgument("input_type must be one of search_document, search_query, "
                        "classification, clustering"));
  }
  *types = {.by_type = listed || version == Version::kV2, .float32 = !listed, .base64 = false};
  for (const std::string& n : names) {
    if (n == "float") {
      types->float32 = true;
    } else if (n == "base64") {
      types->base64 = true;
    } else if (n == "int8" || n == "uint8" || n == "binary" || n == "ubinary") {
      return Unsupported("embedding type \"" + n + "\" is not supported (float, base64)");
    } else {
      return BadRequest(InvalidArgument("unknown embedding type \"" + n + "\""));
    }
  }
  if (listed && names.empty()) {
    return BadRequest(InvalidArgument("field 'embedding_types' must not be empty"));
  }
  return std::nullopt;
}

}  // namespace

void Rerank(Service& service, const Json& j, Version version, RequestContext ctx,
            HttpReplyFn reply) {
  RerankParams p;
  std::optional<std::string> model;
  Status st = http_json::GetString(j, "query", &p.query);
  if (st.ok()) st = http_json::GetDocuments(j, "documents", &p.documents);
  if (st.ok()) st = http_json::GetOptInt(j, "top_n", &p.top_n);
  if (st.ok()) st = http_json::GetOptBool(j, "return_documents", &p.return_documents);
  if (st.ok()) st = http_json::GetOptString(j, "model", &model);
  if (!st.ok()) return reply(BadRequest(st));
  const ServiceInfo info = service.Info();
  if (auto refused = CheckRerankOptions(j, info)) return reply(std::move(*refused));
  http_json::CompatReply c{http_json::NewId(), model ? *model : info.model_id,
                           version == Version::kV1 ? 1 : 2};
  Json documents = p.return_documents ? j.at("documents") : Json();
  auto done = ReplyWith<RerankResult>(
      std::move(reply),
      [c = std::move(c), documents = std::move(documents)](const RerankResult& r) {
        return http_json::CompatRerankBody(r, documents, c);
      });
  service.Rerank(std::move(p), std::move(ctx), std::move(done));
}

void Embed(Service& service, const Json& j, Version version, RequestContext ctx,
           HttpReplyFn reply) {
  for (const char* other : {"images", "inputs"}) {
    if (j.contains(other) && !j[other].is_null()) {
      return reply(Unsupported(std::string("field '") + other + "': text only (use 'texts')"));
    }
  }
  EmbedParams p;
  std::optional<std::string> model;
  std::optional<int> max_tokens;
  Status st = http_json::GetStringList(j, "texts", &p.texts);
  if (st.ok()) st = http_json::GetOptString(j, "model", &model);
  if (st.ok()) st = http_json::GetOptInt(j, "output_dimension", &p.dimensions);
  if (st.ok()) st = http_json::GetOptInt(j, "max_tokens", &max_tokens);
  if (!st.ok()) return reply(BadRequest(st));
  http_json::EmbedTypes types;
  if (auto bad = ParseEmbedTypes(j, version, &types)) return reply(std::move(*bad));
  if (auto bad = ParseTruncate(j, &p.truncate, &p.truncate_left)) return reply(std::move(*bad));
  const ServiceInfo info = service.Info();
  if (auto bad = CheckTokenBudget("max_tokens", max_tokens, info.max_input_length)) {
    return reply(std::move(*bad));
  }
  http_json::CompatReply c{http_json::NewId(), model ? *model : info.model_id,
                           version == Version::kV1 ? 1 : 2};
  auto done = ReplyWith<EmbedResult>(
      std::move(reply), [c = std::move(c), texts = p.texts, types](const EmbedResult& r) {
        return http_json::CohereEmbedBody(r, texts, types, c);
      });
  service.Embed(std::move(p), std::move(ctx), std::move(done));
}

}  // namespace encserve::server::http_compat
