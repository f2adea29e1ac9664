// HTTP/JSON load client (Boost.Beast): one keep-alive connection per slot, opened on first use
// and reopened after the server closes it, driven by a few io threads. Routes: POST /embed
// {"inputs": [...]}, POST /score {"pairs": [[a, b], ...]}, POST /rerank {"query", "texts"}.
#pragma once

#include <memory>
#include <string>

#include "bench/client.h"
#include "core/status.h"

namespace encserve::bench {

struct HttpClientOptions {
  std::string target = "127.0.0.1:8080";  // host:port
  int slots = 1;                          // connections
  int io_threads = 0;                     // 0: min(2, slots)
  int timeout_ms = 30000;
  std::string api_key;  // "Authorization: Bearer KEY"
};

StatusOr<std::unique_ptr<Client>> MakeHttpClient(const HttpClientOptions& options);

// The route and JSON body for one payload, e.g. {"/embed", R"({"inputs":["a","b"]})"}.
std::pair<std::string, std::string> HttpRequestFor(const Payload& p);

}  // namespace encserve::bench
