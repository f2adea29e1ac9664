// The transport a load run drives: gRPC (grpc_client.h) or HTTP/JSON (http_client.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "bench/workload.h"

namespace encserve::bench {

struct CallResult {
  bool ok = false;
  // "OK", a gRPC code name ("UNAVAILABLE"), "HTTP 503", or a transport failure ("IO_ERROR").
  std::string code;
  std::string message;  // error detail (first one per code is reported)
};

using DoneFn = std::function<void(CallResult)>;

class Client {
 public:
  virtual ~Client() = default;
  // Sends one request on `slot` (0 <= slot < the slot count given at creation). At most one
  // request is outstanding per slot. `done` runs exactly once, on a client thread; it may call
  // Send again (for any free slot).
  virtual void Send(int slot, std::shared_ptr<const Payload> payload, DoneFn done) = 0;
  // Stops the client threads; every outstanding request has completed or been cancelled.
  virtual void Shutdown() = 0;
  // "grpc/seed", "grpc/v1", "http".
  virtual std::string Describe() const = 0;
};

}  // namespace encserve::bench
