// Internal helpers shared by the gRPC services.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "server/grpc/grpc_server.h"
#include "server/request_trace.h"
#include "server/service.h"

namespace encserve::server::grpc_internal {

grpc::Status ToGrpc(const Status& status);
// The HTTP status matching a gRPC code (for the requests metric's `code` label).
int HttpCodeOf(const grpc::Status& status);

// What became of the calls that reached a handler, counted for the account the server gives at
// exit (GrpcServer::CallAccount): calls begun, calls answered by status code, and of those the
// calls cancelled, their answer not delivered (client gone, its deadline, or the shutdown
// deadline).
struct CallCounters {
  std::atomic<uint64_t> begun{0};
  std::array<std::atomic<uint64_t>, 17> answered{};  // by grpc::StatusCode (0..16)
  std::atomic<uint64_t> cancelled{0};
};

// A unary reactor that flags cancellation to the batcher and deletes itself when done.
class Reactor final : public grpc::ServerUnaryReactor {
 public:
  Reactor(std::shared_ptr<std::atomic<bool>> cancelled, CallCounters& counters)
      : cancelled_(std::move(cancelled)), counters_(counters) {}
  void OnCancel() override {
    cancelled_->store(true);
    counters_.cancelled.fetch_add(1, std::memory_order_relaxed);
  }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<std::atomic<bool>> cancelled_;
  CallCounters& counters_;
};

struct CallSetup {
  RequestContext ctx;
  Reactor* reactor = nullptr;
  CallCounters* counters = nullptr;
  std::chrono::steady_clock::time_point start;
  grpc::CallbackServerContext* server_ctx = nullptr;
  // Following the call (request_trace.h): its id (metadata x-request-id, else traceparent's
  // trace id, else new; sent back in the initial metadata), the traceparent when valid.
  std::string id, traceparent;
  std::shared_ptr<AccessLog> access_log;
};

// Builds the request context (deadline from the client's or the default timeout, timing), the
// reactor and the call's id and, when an API key is configured and the call lacks it, finishes
// the call with UNAUTHENTICATED and returns false.
bool BeginCall(grpc::CallbackServerContext* ctx, const GrpcOptions& options, Service& service,
               const std::string& route, CallCounters& counters, CallSetup* setup);

// Finishes the call (trailing metadata server-timing) and records it in the service's request
// metrics, the call counters and the access log.
void EndCall(const CallSetup& setup, Service& service, const std::string& route,
             const grpc::Status& status);

// The services take their requests as raw bytes (generated WithRawCallbackMethod_*), so that a
// message that does not parse is answered here with INVALID_ARGUMENT and counted like any
// other request (gRPC's own deserialisation failure would answer it with a generic status and
// log a line per message). Returns false after finishing the call.
template <class Req>
bool ParseRequest(const grpc::ByteBuffer* raw, Req* request, const CallSetup& setup,
                  Service& service, const std::string& route) {
  // The reader only walks the buffer's slices (its API takes a non-const pointer).
  grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(raw));
  if (request->ParseFromZeroCopyStream(&reader)) return true;
  EndCall(setup, service, route,
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "the request is not a valid " + request->GetTypeName() + " message"));
  return false;
}

// Serialises `response` into the call's raw reply and finishes the call with OK.
template <class Resp>
void EndCallWith(const CallSetup& setup, Service& service, const std::string& route,
                 const Resp& response, grpc::ByteBuffer* out) {
  bool own_buffer = false;
  grpc::Status st =
      grpc::GenericSerialize<grpc::ProtoBufferWriter, Resp>(response, out, &own_buffer);
  EndCall(setup, service, route, st);
}

}  // namespace encserve::server::grpc_internal
