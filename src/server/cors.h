// CORS for the HTTP front end (off by default): browsers on the configured origins may call the
// API and read its replies, X-Request-Id and Server-Timing included. (Here beside auth.h, not in
// http/: the server.yaml checks use ValidOrigin.)
//
//   origins      exact origins ("https://app.example.com": scheme, host and port as the
//                browser sends them in Origin) or "*" for any; empty: CORS off (no CORS headers,
//                OPTIONS is answered like any other unknown method: 405 / 401).
//   preflight    OPTIONS with Origin and Access-Control-Request-Method: 204, without
//                authentication, with the methods and headers the API takes (allowed origins;
//                a disallowed one gets the 204 without them, which the browser refuses).
//   other replies  from an allowed origin: Access-Control-Allow-Origin (the origin, or "*"),
//                Access-Control-Expose-Headers, Timing-Allow-Origin and Vary: Origin.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace encserve::server {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class Cors {
 public:
  Cors() = default;
  explicit Cors(std::vector<std::string> origins);
  bool enabled() const { return !origins_.empty(); }
  bool Allows(std::string_view origin) const;
  // Whether a request is a preflight this policy answers.
  bool IsPreflight(std::string_view method, std::string_view origin,
                   std::string_view request_method) const;
  // The preflight's own headers (Allow-Methods, Allow-Headers, Max-Age); the reply also gets
  // ReplyHeaders like any other.
  HeaderList PreflightHeaders(std::string_view origin) const;
  // Appends the headers of a reply to a request from `origin` ("" when it sent none).
  void AddReplyHeaders(std::string_view origin, HeaderList* headers) const;

  // The checked form of an origin list: each "*" or "scheme://host[:port]" (http or https).
  static bool ValidOrigin(std::string_view origin);

 private:
  std::vector<std::string> origins_;
  bool any_ = false;
};

}  // namespace encserve::server
