// HttpServer: the HTTP/JSON front end (TEI- and OpenAI-compatible routes) over a Service.
//
// Boost.Beast, asynchronous: a fixed set of io threads runs every connection (no thread per
// connection); each connection is served on its own strand, HTTP/1.1 keep-alive, one request
// at a time per connection. Requests are translated by HttpApi (http_api.h) into Service
// calls; the Service's `done` callback (on a batcher thread) posts the reply back onto the
// connection's strand.
//
// Client disconnects: while a request is with the Service the connection waits for the socket
// to become readable; if the peer has closed it (EOF / error, seen with a MSG_PEEK), the
// request's ctx.cancelled is set and the connection is closed. If instead the client sends
// more bytes (a pipelined request) watching stops and a disconnect is only seen when the reply
// cannot be written. A client that half-closes (shutdown(SHUT_WR)) while waiting counts as
// gone.
//
// Deadlines: ctx.deadline = now + request_timeout, or now + X-Request-Timeout-Ms when the
// client sends that header (capped at request_timeout when request_timeout > 0).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/request_trace.h"
#include "server/service.h"

namespace encserve::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: pick a free port (see HttpServer::port())
  int io_threads = 1;
  std::string api_key;  // empty: no auth; else `Authorization: Bearer <key>` on all but
                        // /health, /ready and (when metrics_open) /metrics
  bool metrics_open = true;
  std::string tls_cert_file, tls_key_file;           // both set: HTTPS (PEM files); one set: error
  size_t max_body_bytes = 2 << 20;                   // larger bodies get 413
  size_t max_header_bytes = 16 << 10;                // larger request heads get 431
  std::chrono::milliseconds request_timeout{30000};  // -> RequestContext.deadline; 0: none
  // Slow or silent clients: each phase of a connection has its own timeout; when it passes
  // the connection is closed (no worker is ever held: the io threads never block on a client).
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive: waiting for the next request
  std::chrono::milliseconds header_timeout{10000};  // request line + headers, from the 1st byte
  std::chrono::milliseconds body_timeout{30000};    // the whole body
  std::chrono::milliseconds write_timeout{10000};   // the whole reply (a client that won't read)
  // Connections open at once; over it a new connection is closed at once. Descriptors are
  // also guarded (listener.h, FdBudget): a connection is closed when fewer than 64 are left.
  int max_connections = 4096;
  // Origins allowed to call the API from a browser ("*": any; empty: CORS off; cors.h).
  std::vector<std::string> cors_origins;
  // One JSON line per API request (request_trace.h); null: none.
  std::shared_ptr<AccessLog> access_log;
};

class HttpServer {
 public:
  // Binds, listens and starts the io threads. Errors: InvalidArgument (bad options, TLS files
  // that cannot be loaded), Unavailable (cannot resolve / bind / listen).
  static StatusOr<std::unique_ptr<HttpServer>> Start(const HttpOptions& options, Service& service);
  // Shutdown(now) unless Shutdown was called.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;  // the bound port
  bool tls() const;  // serving HTTPS

  // Shutdown step 1: closes the listening socket (new connections are refused). Returns once
  // it is closed. Open connections keep being served, each closed after its next reply.
  void StopAccepting();
  // Stops accepting, waits until every in-flight request has been answered or `deadline`
  // passes, then closes all connections and joins the io threads. Replies that arrive later
  // from the Service are dropped. Idempotent.
  void Shutdown(Clock::time_point deadline);

  // Requests read and not yet answered (reply written, or dropped).
  size_t in_flight() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace encserve::server
