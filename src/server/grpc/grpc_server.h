// The gRPC front end: the seed-compatible inference.InferenceService and encserve.v1.Encoder
// (callback API: no thread per call), grpc.health.v1 health and server reflection, optional
// API key (metadata `authorization: Bearer <key>`) and TLS.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "server/request_trace.h"
#include "server/service.h"

namespace encserve::server {

struct GrpcOptions {
  std::string host = "0.0.0.0";
  int port = 50051;                         // 0: pick a free port (see GrpcServer::port())
  std::string api_key;                      // empty: no authentication
  std::string tls_cert_file, tls_key_file;  // both set: TLS
  int max_message_bytes = 8 << 20;
  // Applied when the client sets no deadline (queued work past it is dropped).
  std::chrono::milliseconds default_timeout{30000};
  // One JSON line per call (request_trace.h); null: none.
  std::shared_ptr<AccessLog> access_log;
};

class GrpcServer {
 public:
  static StatusOr<std::unique_ptr<GrpcServer>> Start(const GrpcOptions& options, Service& service);
  ~GrpcServer();
  int port() const;
  // grpc.health.v1 status of the server ("" service) and of each service name.
  void SetServing(bool serving);
  // Stops accepting calls, waits for in-flight calls until `deadline`, then cancels the rest.
  void Shutdown(std::chrono::system_clock::time_point deadline);
  // One line on the calls that reached a handler since start: how many, answered by status
  // code, and how many of those were cancelled (their answer not delivered). After Shutdown every
  // begun call is answered or cancelled; a call gRPC itself refused (a connection it could not
  // accept, a call it dropped at shutdown before any handler ran) is not in it.
  std::string CallAccount() const;

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace encserve::server
