// libFuzzer target: raw bytes as an HTTP/1.1 connection's input. Boost.Beast's request parser
// (string body) with the server's limits reads up to kMaxRequests pipelined requests; each one
// that parses completely is served by HttpApi (the routes of the HTTP front end) over a real
// EngineService on the `null` backend, and its reply is checked (fuzz_service.h: one reply,
// status 200..599, a JSON body, errors with a message).
//
// A request with an Authorization header goes to an HttpApi that has an API key (kApiKey:
// wrong keys get 401, CORS preflights from https://a.example are answered), one without to an
// HttpApi without a key or CORS. The request id chosen from its headers is checked to be valid.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_service.h"
#include "fuzz/fuzz_util.h"
#include "server/request_trace.h"
#include "server/server_config.h"

namespace {

namespace http = boost::beast::http;
using encserve::server::HttpApi;

constexpr int kMaxRequests = 4;
constexpr const char* kApiKey = "fuzz-key";
// The server's limits: server.yaml's max_body_bytes default (4 MiB) and the HTTP front end's
// header limit (HttpOptions::max_header_bytes, 16 KiB).
constexpr uint32_t kHeaderLimit = 16 << 10;
uint64_t body_limit = 0;
HttpApi* open_api = nullptr;
HttpApi* keyed_api = nullptr;

std::string_view Sv(boost::beast::string_view s) {
  return {s.data(), s.size()};
}

// Parses one request from the front of `in`; the bytes it used, or 0 if none parsed.
size_t ParseOne(std::string_view in, http::request_parser<http::string_body>* p) {
  p->body_limit(body_limit);
  p->header_limit(kHeaderLimit);
  p->eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (!p->is_done() && used < in.size()) {
    const size_t n = p->put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) {
      ec = {};
      if (n == 0) break;  // the rest is a partial request
      continue;
    }
    if (ec) return 0;
  }
  if (!p->is_done()) p->put_eof(ec);
  return !ec && p->is_done() ? used : 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace encserve;
  server::Service& service = fuzz::NullService();
  body_limit = uint64_t(server::DefaultServerConfig(fuzz::ModelDir()).max_body_bytes);
  open_api = new HttpApi(service, "", std::chrono::milliseconds(5000));
  keyed_api = new HttpApi(service, kApiKey, std::chrono::milliseconds(5000), true,
                          server::Cors({"https://a.example"}));  // (CORS preflights too)
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace encserve;
  std::string_view in = fuzz::AsText(data, size);
  for (int i = 0; i < kMaxRequests && !in.empty(); ++i) {
    http::request_parser<http::string_body> parser;
    const size_t used = ParseOne(in, &parser);
    if (used == 0) break;
    in.remove_prefix(used);
    http::request<http::string_body> req = parser.release();
    const bool has_auth = req.find(http::field::authorization) != req.end();
    // The request's id from its headers (request_trace.h) is always a valid one.
    const std::string id = server::ChooseRequestId(Sv(req["X-Request-Id"]), Sv(req["traceparent"]));
    FUZZ_CHECK(server::ValidRequestId(id), "request id '" + id + "' is not valid");
    server::HttpApiRequest api_req{
        .method = Sv(req.method_string()),
        .target = Sv(req.target()),
        .authorization = Sv(req[http::field::authorization]),
        .timeout_ms = Sv(req["X-Request-Timeout-Ms"]),
        .origin = Sv(req[http::field::origin]),
        .cors_method = Sv(req[http::field::access_control_request_method]),
        .body = std::move(req.body())};
    const std::string label = HttpApi::RouteLabel(api_req.target);
    const server::HttpReply r =
        fuzz::HandleAndCheck(has_auth ? *keyed_api : *open_api, std::move(api_req));
    fuzz::NullService().RecordRequest(label, r.status, 0.001);
    if (!req.keep_alive()) break;
  }
  return 0;
}
