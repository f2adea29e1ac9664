#include "server/cors.h"

#include <algorithm>

namespace encserve::server {

Cors::Cors(std::vector<std::string> origins) : origins_(std::move(origins)) {
  any_ = std::find(origins_.begin(), origins_.end(), "*") != origins_.end();
}

bool Cors::Allows(std::string_view origin) const {
  if (origin.empty() || !enabled()) return false;
  return any_ || std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
}

bool Cors::IsPreflight(std::string_view method, std::string_view origin,
                       std::string_view request_method) const {
  return enabled() && method == "OPTIONS" && !origin.empty() && !request_method.empty();
}

HeaderList Cors::PreflightHeaders(std::string_view origin) const {
  if (!Allows(origin)) return {};
  return {{"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
          {"Access-Control-Allow-Headers",
           "Authorization, Content-Type, X-Request-Id, X-Request-Timeout-Ms, traceparent, "
           "tracestate"},
          {"Access-Control-Max-Age", "600"}};
}

void Cors::AddReplyHeaders(std::string_view origin, HeaderList* headers) const {
  if (!Allows(origin)) {
    // A cache between browsers and us must not reuse one origin's reply for another.
    if (enabled() && !any_) headers->emplace_back("Vary", "Origin");
    return;
  }
  headers->emplace_back("Access-Control-Allow-Origin", any_ ? "*" : std::string(origin));
  headers->emplace_back("Access-Control-Expose-Headers",
                        "X-Request-Id, Server-Timing, Retry-After, X-Embedding-Space");
  headers->emplace_back("Timing-Allow-Origin", any_ ? "*" : std::string(origin));
  if (!any_) headers->emplace_back("Vary", "Origin");
}

bool Cors::ValidOrigin(std::string_view o) {
  if (o == "*") return true;
  size_t scheme = 0;
  if (o.rfind("http://", 0) == 0) {
    scheme = 7;
  } else if (o.rfind("https://", 0) == 0) {
    scheme = 8;
  } else {
    return false;
  }
  const std::string_view host = o.substr(scheme);
  if (host.empty() || host.back() == ':') return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']';
  });
}

}  // namespace encserve::server
