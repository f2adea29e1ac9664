// Asynchronous gRPC load client: completion-queue threads (a few, not one per slot) and a small
// pool of channels, each its own HTTP/2 connection (slot s uses channel s % channels).
#pragma once

#include <memory>
#include <string>

#include "bench/client.h"
#include "core/status.h"

namespace encserve::bench {

enum class GrpcApi {
  kSeed,  // inference.InferenceService/Infer (embed only)
  kV1,    // encserve.v1.Encoder Embed / Score / Rerank
};

struct GrpcClientOptions {
  std::string target = "127.0.0.1:50051";
  GrpcApi api = GrpcApi::kSeed;
  int slots = 1;       // concurrency slots
  int channels = 0;    // 0: one per 16 slots, at most 8
  int cq_threads = 0;  // 0: min(2, slots)
  int timeout_ms = 30000;
  std::string api_key;  // sent as "authorization: Bearer KEY"
};

// Channels used for `slots` when `channels` is 0.
int DefaultGrpcChannels(int slots);

StatusOr<std::unique_ptr<Client>> MakeGrpcClient(const GrpcClientOptions& options);

// "OK", "CANCELLED", ..., "UNAUTHENTICATED" for a grpc::StatusCode value.
std::string GrpcCodeName(int code);

}  // namespace encserve::bench
