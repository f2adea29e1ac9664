// HttpApi: the routes of the HTTP front end, independent of the transport. Turns a complete
// request (method, target, a few headers, body) into a Service call and the result into an
// HttpReply. See http_server.h for the transport and README-level route docs in http_api.cc.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "server/cors.h"
#include "server/service.h"

namespace encserve::server {

struct HttpApiRequest {
  std::string_view method;         // "GET", "POST", ...
  std::string_view target;         // path and optional query
  std::string_view authorization;  // Authorization header ("" if absent)
  std::string_view timeout_ms;     // X-Request-Timeout-Ms header ("" if absent)
  std::string_view origin;         // Origin header ("" if absent)
  std::string_view cors_method;    // Access-Control-Request-Method header ("" if absent)
  std::string_view priority;       // X-Priority header ("" if absent; the body's field wins)
  std::string body;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  bool retry_after = false;  // add `Retry-After: 1` (429)
  HeaderList headers;        // more headers (a CORS preflight's)
  // When set, fills `body` (and may change the rest) where the reply is written, on an io
  // thread: a result's JSON is built there, not on the batcher's worker thread, which would
  // otherwise spend ~1 ms per 32 vectors before it can start the next batch.
  std::function<void(HttpReply&)> encode;
};

using HttpReplyFn = std::function<void(HttpReply)>;

// Runs the reply's `encode` (once), where the reply is to be written.
inline void FinishReply(HttpReply& r) {
  if (!r.encode) return;
  auto encode = std::move(r.encode);
  r.encode = nullptr;
  encode(r);
}

class HttpApi {
 public:
  // /health, /ready (probes) and /dashboard (a page without data) are always open; /metrics
  // and /stats unless metrics_open is false. CORS preflights are answered by `cors` (cors.h).
  HttpApi(Service& service, std::string api_key, std::chrono::milliseconds request_timeout,
          bool metrics_open = true, Cors cors = {});
  const Cors& cors() const { return cors_; }

  // "http:/embed" etc. for known routes, "http:other" otherwise (the RecordRequest label).
  static std::string RouteLabel(std::string_view target);

  // Serves one request. `reply` runs exactly once: before Handle returns (errors, sync routes)
  // or later on a Service thread. `ctx.cancelled` is the caller's (it may set it later).
  void Handle(HttpApiRequest req, RequestContext ctx, HttpReplyFn reply);

  // A 429 for a request that overload refuses whatever its body (Service::AdmitAny), decided
  // from its head alone: a known route that queues model work, authorised. Else nothing, and
  // Handle serves the request as usual. Saves parsing the bodies of refused requests.
  std::optional<HttpReply> RefuseEarly(std::string_view method, std::string_view target,
                                       std::string_view authorization, uint64_t client) const;

  static HttpReply Error(int status, std::string_view message, std::string_view type);
  // The reply for a Service error: HttpStatusFor(code) and a type such as "validation".
  static HttpReply FromStatus(const Status& status);

 private:
  using Json = nlohmann::json;
  bool Authorized(std::string_view authorization) const;
  // The routes with a JSON body, after the checks common to all routes.
  void Dispatch(std::string_view path, const std::string& body, RequestContext ctx,
                HttpReplyFn reply);
  void Root(const Json& j, RequestContext ctx, HttpReplyFn reply);
  void Embed(const Json& j, RequestContext ctx, HttpReplyFn reply, bool openai);
  void Rerank(const Json& j, RequestContext ctx, HttpReplyFn reply);
  void Similarity(const Json& j, RequestContext ctx, HttpReplyFn reply);
  void Score(const Json& j, RequestContext ctx, HttpReplyFn reply);
  void Tokenize(const Json& j, HttpReplyFn reply);

  Service& service_;
  std::string api_key_;
  std::chrono::milliseconds request_timeout_;
  bool metrics_open_;
  Cors cors_;
};

// Wraps `reply` into a Service Done<T>: a 200 with encode(result) as the JSON body, or the
// reply for the Service's error (HttpApi::FromStatus).
template <typename T, typename Encode>
Done<T> ReplyWith(HttpReplyFn reply, Encode encode) {
  return [reply = std::move(reply), encode = std::move(encode)](StatusOr<T> result) {
    if (!result.ok()) return reply(HttpApi::FromStatus(result.status()));
    HttpReply r;
    if constexpr (std::is_same_v<T, EmbedResult>) {
      // The vectors' embedding-space fingerprint (pipeline/embedding_space.h).
      if (!result->embedding_space.empty()) {
        r.headers.emplace_back("X-Embedding-Space", result->embedding_space);
      }
    }
    r.encode = [encode, value = std::make_shared<T>(std::move(result).value())](HttpReply& out) {
      out.body = encode(*value);
    };
    reply(std::move(r));
  };
}

}  // namespace encserve::server
