// Internal helpers shared by the gRPC services.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "server/service.h"

namespace encserve::server::grpc_internal {

grpc::Status ToGrpc(const Status& status);
// The HTTP status matching a gRPC code (for the requests metric's `code` label).
int HttpCodeOf(const grpc::Status& status);

// A unary reactor that flags cancellation to the batcher and deletes itself when done.
class Reactor final : public grpc::ServerUnaryReactor {
 public:
  explicit Reactor(std::shared_ptr<std::atomic<bool>> cancelled)
      : cancelled_(std::move(cancelled)) {}
  void OnCancel() override { cancelled_->store(true); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

struct CallSetup {
  RequestContext ctx;
  Reactor* reactor = nullptr;
  std::chrono::steady_clock::time_point start;
};

// Builds the request context (deadline from the client's or the default timeout), the reactor
// and, when an API key is configured and the call lacks it, finishes the call with
// UNAUTHENTICATED and returns false.
bool BeginCall(grpc::CallbackServerContext* ctx, const std::string& api_key,
               std::chrono::milliseconds default_timeout, Service& service,
               const std::string& route, CallSetup* setup);

// Finishes the call and records it in the service's request metrics.
void EndCall(const CallSetup& setup, Service& service, const std::string& route,
             const grpc::Status& status);

}  // namespace encserve::server::grpc_internal
