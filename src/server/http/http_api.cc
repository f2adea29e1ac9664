// Routes (JSON in, JSON out):
//   POST /embed          TEI {"inputs": str|[str], "normalize"?, "truncate"?, "dimensions"?}
//                        -> [[float...], ...]
//   POST /rerank         TEI {"query", "texts", "raw_scores"?, "return_text"?, "truncate"?,
//                        "top_n"?} -> [{"index", "score", "text"?}, ...] by score, descending
//   POST /similarity     TEI {"inputs": {"source_sentence", "sentences"}, "truncate"?}
//                        -> [float...]
//   POST /tokenize       TEI {"inputs": str|[str], "add_special_tokens"?}
//                        -> [[{"id", "text", "special"}, ...], ...]
//   POST /score          {"pairs": [[a, b], ...], "raw_scores"?, "truncate"?} -> {"scores"}
//   POST /, /invocations TEI's default task: /rerank on a cross-encoder; on an embedding model
//                        /similarity when "inputs" is an object, else /embed
//   POST /v1/embeddings  OpenAI {"input": str|[str], "model"?, "encoding_format"?,
//                        "dimensions"?} -> {"object": "list", "data", "model", "usage"}
//   POST /v1/rerank, /v2/rerank, /v1/embed, /v2/embed  Cohere (and Jina's /v1/rerank):
//                        http_compat.h
//   GET /health, /ready (503 unless Ready()), /info, /metrics (Prometheus text),
//       /stats (the same metrics as JSON: metrics_json.h), /dashboard (a live page of /stats)
//   OPTIONS (any path) with CORS configured: the preflight (cors.h)
// Absent "truncate" keeps the Service default (truncate). Errors: {"error", "type"}.
#include "server/http/http_api.h"

#include <charconv>
#include <utility>

#include "server/auth.h"
#include "server/http/dashboard.h"
#include "server/http/http_compat.h"
#include "server/http/http_json.h"

namespace encserve::server {
namespace {

using http_json::Json;

std::string_view PathOf(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

// Who may call a route: anyone (probes, the dashboard's page), the API key holder, or as
// /metrics is configured (metrics_open: open by default).
enum class Access { kOpen, kKey, kMetrics };
struct Route {
  const char* path;
  const char* method;
  Access access;
  bool queues;  // queues model work (admission by the queue budget)
};
constexpr Route kRoutes[] = {
    {"/embed", "POST", Access::kKey, true},      {"/rerank", "POST", Access::kKey, true},
    {"/similarity", "POST", Access::kKey, true}, {"/tokenize", "POST", Access::kKey, false},
    {"/score", "POST", Access::kKey, true},      {"/v1/embeddings", "POST", Access::kKey, true},
    {"/", "POST", Access::kKey, true},           {"/invocations", "POST", Access::kKey, true},
    {"/v1/rerank", "POST", Access::kKey, true},  {"/v2/rerank", "POST", Access::kKey, true},
    {"/v1/embed", "POST", Access::kKey, true},   {"/v2/embed", "POST", Access::kKey, true},
    {"/health", "GET", Access::kOpen, false},    {"/ready", "GET", Access::kOpen, false},
    {"/info", "GET", Access::kKey, false},       {"/metrics", "GET", Access::kMetrics, false},
    {"/stats", "GET", Access::kMetrics, false},  {"/dashboard", "GET", Access::kOpen, false},
};

const Route* FindRoute(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (path == r.path) return &r;
  }
  return nullptr;
}

const char* ErrorType(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
      return "validation";
    case StatusCode::kOutOfRange:
      return "payload_too_large";
    case StatusCode::kResourceExhausted:
      return "overloaded";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kDeadlineExceeded:
      return "timeout";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kUnauthenticated:
      return "unauthorized";
    case StatusCode::kNotFound:
      return "not_found";
    default:
      return "internal";
  }
}

HttpReply BadRequest(const Status& s) {
  return HttpApi::Error(400, s.message(), "invalid_request");
}

HttpReply Ok(std::string body) {
  HttpReply r;
  r.body = std::move(body);
  return r;
}

}  // namespace

HttpApi::HttpApi(Service& service, std::string api_key, std::chrono::milliseconds request_timeout,
                 bool metrics_open, Cors cors)
    : service_(service),
      api_key_(std::move(api_key)),
      request_timeout_(request_timeout),
      metrics_open_(metrics_open),
      cors_(std::move(cors)) {}

std::string HttpApi::RouteLabel(std::string_view target) {
  const Route* r = FindRoute(PathOf(target));
  return r != nullptr ? std::string("http:") + r->path : "http:other";
}

HttpReply HttpApi::Error(int status, std::string_view message, std::string_view type) {
  HttpReply r;
  r.status = status;
  r.body = http_json::ErrorBody(message, type);
  r.retry_after = status == 429;
  return r;
}

HttpReply HttpApi::FromStatus(const Status& status) {
  return Error(HttpStatusFor(status.code()), status.message(), ErrorType(status.code()));
}

std::optional<HttpReply> HttpApi::RefuseEarly(std::string_view method, std::string_view target,
                                              std::string_view authorization,
                                              uint64_t client) const {
  const Route* route = FindRoute(PathOf(target));
  if (route == nullptr || !route->queues || method != route->method || !Authorized(authorization)) {
    return std::nullopt;
  }
  Status st = service_.AdmitAny(client);
  if (st.ok()) return std::nullopt;
  return FromStatus(st);
}

bool HttpApi::Authorized(std::string_view authorization) const {
  return api_key_.empty() || BearerMatches(authorization, api_key_);
}

void HttpApi::Handle(HttpApiRequest req, RequestContext ctx, HttpReplyFn reply) {
  const std::string_view path = PathOf(req.target);
  const Route* route = FindRoute(path);
  if (cors_.IsPreflight(req.method, req.origin, req.cors_method)) {  // (browsers send no key)
    HttpReply r;
    r.status = 204;
    r.content_type.clear();
    r.headers = cors_.PreflightHeaders(req.origin);
    return reply(std::move(r));
  }
  const bool open = route != nullptr && (route->access == Access::kOpen ||
                                         (route->access == Access::kMetrics && metrics_open_));
  if (!open && !Authorized(req.authorization)) {
    return reply(
        Error(401, "missing or wrong API key (Authorization: Bearer <key>)", "unauthorized"));
  }
  if (route == nullptr) return reply(Error(404, "no route " + std::string(path), "not_found"));
  if (req.method != route->method) {
    return reply(Error(405, std::string("use ") + route->method + " for " + route->path,
                       "method_not_allowed"));
  }

  std::chrono::milliseconds timeout = request_timeout_;
  if (!req.timeout_ms.empty()) {
    int64_t ms = 0;
    auto [end, ec] =
        std::from_chars(req.timeout_ms.data(), req.timeout_ms.data() + req.timeout_ms.size(), ms);
    if (ec != std::errc() || end != req.timeout_ms.data() + req.timeout_ms.size() || ms <= 0) {
      return reply(
          Error(400, "X-Request-Timeout-Ms must be a positive integer", "invalid_request"));
    }
    timeout = std::chrono::milliseconds(ms);
    if (request_timeout_.count() > 0) timeout = std::min(timeout, request_timeout_);
  }
  if (timeout.count() > 0) ctx.deadline = Clock::now() + timeout;
  if (!req.priority.empty()) {
    std::optional<RequestPriority> p = ParseRequestPriority(req.priority);
    if (!p) {
      return reply(
          Error(400, "X-Priority must be \"interactive\" or \"batch\"", "invalid_request"));
    }
    ctx.priority = *p;
  }

  if (path == "/health") return reply(Ok(R"({"status":"ok"})"));
  if (path == "/ready") {
    return service_.Ready()
               ? reply(Ok(R"({"status":"ready"})"))
               : reply(Error(503, "not ready: " + service_.NotReadyReason(), "unavailable"));
  }
  if (path == "/info") return reply(Ok(http_json::InfoBody(service_.Info())));
  if (path == "/metrics") {
    HttpReply r = Ok(service_.MetricsText());
    r.content_type = "text/plain; version=0.0.4";
    return reply(std::move(r));
  }
  if (path == "/stats") return reply(Ok(service_.StatsJson()));
  if (path == "/dashboard") {
    HttpReply r = Ok(std::string(DashboardHtml()));
    r.content_type = "text/html; charset=utf-8";
    return reply(std::move(r));
  }
  Dispatch(path, req.body, std::move(ctx), std::move(reply));
}

void HttpApi::Dispatch(std::string_view path, const std::string& body, RequestContext ctx,
                       HttpReplyFn reply) {
  using http_compat::Version;
  auto parsed = http_json::ParseObject(body);
  if (!parsed.ok()) return reply(BadRequest(parsed.status()));
  const Json& j = *parsed;
  // (Every model route takes "priority"; /tokenize ignores it: it does not queue.)
  if (Status st = http_json::GetPriority(j, &ctx.priority); !st.ok()) {
    return reply(BadRequest(st));
  }
  if (path == "/embed") return Embed(j, std::move(ctx), std::move(reply), false);
  if (path == "/v1/embeddings") return Embed(j, std::move(ctx), std::move(reply), true);
  if (path == "/rerank") return Rerank(j, std::move(ctx), std::move(reply));
  if (path == "/similarity") return Similarity(j, std::move(ctx), std::move(reply));
  if (path == "/score") return Score(j, std::move(ctx), std::move(reply));
  if (path == "/tokenize") return Tokenize(j, std::move(reply));
  if (path == "/" || path == "/invocations") return Root(j, std::move(ctx), std::move(reply));
  if (path == "/v1/rerank" || path == "/v2/rerank") {
    const Version v = path == "/v1/rerank" ? Version::kV1 : Version::kV2;
    return http_compat::Rerank(service_, j, v, std::move(ctx), std::move(reply));
  }
  if (path == "/v1/embed" || path == "/v2/embed") {
    const Version v = path == "/v1/embed" ? Version::kV1 : Version::kV2;
    return http_compat::Embed(service_, j, v, std::move(ctx), std::move(reply));
  }
  reply(Error(500, "route without handler", "internal"));
}

// TEI serves the model's default task at / (and /invocations, SageMaker's path): rerank for a
// reranker, embed for an embedding model (similarity there only with TASK=sentence-similarity).
// Here an embedding model's root also takes the similarity body, which huggingface_hub's
// sentence_similarity sends to the root: "inputs" an object, not a string or list.
void HttpApi::Root(const Json& j, RequestContext ctx, HttpReplyFn reply) {
  if (service_.Info().model_kind == "cross-encoder") {
    return Rerank(j, std::move(ctx), std::move(reply));
  }
  auto it = j.find("inputs");
  if (it != j.end() && it->is_object()) return Similarity(j, std::move(ctx), std::move(reply));
  Embed(j, std::move(ctx), std::move(reply), false);
}

void HttpApi::Embed(const Json& j, RequestContext ctx, HttpReplyFn reply, bool openai) {
  EmbedParams p;
  std::optional<std::string> model, format;
  Status st = http_json::GetStringOrList(j, openai ? "input" : "inputs", &p.texts);
  if (st.ok()) st = http_json::GetOptInt(j, "dimensions", &p.dimensions);
  if (st.ok() && !openai) st = http_json::GetOptBool(j, "normalize", &p.normalize);
  if (st.ok() && !openai) st = http_json::GetOptBool(j, "truncate", &p.truncate);
  if (st.ok()) st = http_json::GetTruncationDirection(j, &p.truncate_left);
  if (st.ok() && openai) st = http_json::GetOptString(j, "model", &model);
  if (st.ok() && openai) st = http_json::GetOptString(j, "encoding_format", &format);
  if (st.ok() && format && *format != "float" && *format != "base64") {
    st = InvalidArgument("encoding_format must be \"float\" or \"base64\"");
  }
  if (!st.ok()) return reply(BadRequest(st));
  if (!openai) {
    auto done = ReplyWith<EmbedResult>(std::move(reply), http_json::EmbeddingsBody);
    return service_.Embed(std::move(p), std::move(ctx), std::move(done));
  }
  // Any model name is accepted (one model per server) and echoed back.
  std::string name = model ? *model : service_.Info().model_id;
  const bool base64 = format && *format == "base64";
  auto done = ReplyWith<EmbedResult>(std::move(reply), [name, base64](const EmbedResult& r) {
    return http_json::OpenAiEmbeddingsBody(r, name, base64);
  });
  service_.Embed(std::move(p), std::move(ctx), std::move(done));
}

void HttpApi::Rerank(const Json& j, RequestContext ctx, HttpReplyFn reply) {
  RerankParams p;
  Status st = http_json::GetString(j, "query", &p.query);
  if (st.ok()) st = http_json::GetStringList(j, "texts", &p.documents);
  if (st.ok()) st = http_json::GetOptBool(j, "raw_scores", &p.raw_scores);
  if (st.ok()) st = http_json::GetOptBool(j, "return_text", &p.return_documents);
  if (st.ok()) st = http_json::GetOptBool(j, "truncate", &p.truncate);
  if (st.ok()) st = http_json::GetTruncationDirection(j, &p.truncate_left);
  if (st.ok()) st = http_json::GetOptInt(j, "top_n", &p.top_n);
  if (!st.ok()) return reply(BadRequest(st));
  service_.Rerank(std::move(p), std::move(ctx),
                  ReplyWith<RerankResult>(std::move(reply), http_json::RerankBody));
}

void HttpApi::Similarity(const Json& j, RequestContext ctx, HttpReplyFn reply) {
  SimilarityParams p;
  auto it = j.find("inputs");
  if (it == j.end() || !it->is_object()) {
    return reply(Error(400,
                       "field 'inputs' must be an object with 'source_sentence' and "
                       "'sentences'",
                       "invalid_request"));
  }
  Status st = http_json::GetString(*it, "source_sentence", &p.source_sentence);
  if (st.ok()) st = http_json::GetStringList(*it, "sentences", &p.sentences);
  if (st.ok()) st = http_json::GetOptBool(j, "truncate", &p.truncate);
  if (st.ok()) st = http_json::GetTruncationDirection(j, &p.truncate_left);
  if (!st.ok()) return reply(BadRequest(st));
  service_.Similarity(std::move(p), std::move(ctx),
                      ReplyWith<SimilarityResult>(std::move(reply), [](const SimilarityResult& r) {
                        return http_json::ScoresBody(r.scores, false);
                      }));
}

void HttpApi::Score(const Json& j, RequestContext ctx, HttpReplyFn reply) {
  ScoreParams p;
  Status st = http_json::GetPairs(j, "pairs", &p.pairs);
  if (st.ok()) st = http_json::GetOptBool(j, "raw_scores", &p.raw_scores);
  if (st.ok()) st = http_json::GetOptBool(j, "truncate", &p.truncate);
  if (st.ok()) st = http_json::GetTruncationDirection(j, &p.truncate_left);
  if (!st.ok()) return reply(BadRequest(st));
  service_.Score(std::move(p), std::move(ctx),
                 ReplyWith<ScoreResult>(std::move(reply), [](const ScoreResult& r) {
                   return http_json::ScoresBody(r.scores, true);
                 }));
}

void HttpApi::Tokenize(const Json& j, HttpReplyFn reply) {
  TokenizeParams p;
  Status st = http_json::GetStringOrList(j, "inputs", &p.texts);
  if (st.ok()) st = http_json::GetOptBool(j, "add_special_tokens", &p.add_special_tokens);
  if (st.ok()) st = http_json::GetOptBool(j, "truncate", &p.truncate);
  if (st.ok()) st = http_json::GetTruncationDirection(j, &p.truncate_left);
  if (!st.ok()) return reply(BadRequest(st));
  StatusOr<TokenizeResult> r = service_.Tokenize(p);
  if (!r.ok()) return reply(FromStatus(r.status()));
  reply(Ok(http_json::TokenizeBody(*r)));
}

}  // namespace encserve::server
