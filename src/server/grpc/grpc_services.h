// Internal: the two gRPC service implementations (callback API).
#pragma once

#include "encserve.grpc.pb.h"
#include "inference.grpc.pb.h"
#include "server/grpc/grpc_common.h"
#include "server/grpc/grpc_server.h"
#include "server/latency_window.h"

namespace encserve::server::grpc_internal {

// Every method takes its request as raw bytes and parses it itself (grpc_common.h,
// ParseRequest): a message that does not parse gets INVALID_ARGUMENT.
using InferenceRaw = inference::InferenceService::WithRawCallbackMethod_Infer<
    inference::InferenceService::WithRawCallbackMethod_GetMetrics<
        inference::InferenceService::WithRawCallbackMethod_ResetMetrics<
            inference::InferenceService::Service>>>;
using EncoderRaw = encserve::v1::Encoder::WithRawCallbackMethod_Embed<
    encserve::v1::Encoder::WithRawCallbackMethod_Score<
        encserve::v1::Encoder::WithRawCallbackMethod_Rerank<
            encserve::v1::Encoder::WithRawCallbackMethod_Tokenize<
                encserve::v1::Encoder::WithRawCallbackMethod_Info<
                    encserve::v1::Encoder::Service>>>>>;

// The seed's service. Infer = Embed with the model's defaults; GetMetrics reports the Infer
// latency window (since start or the last ResetMetrics).
class InferenceServiceImpl final : public InferenceRaw {
 public:
  InferenceServiceImpl(::encserve::server::Service& service, const GrpcOptions& options,
                       CallCounters& counters)
      : service_(service), options_(options), counters_(counters) {}
  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* ctx,
                                       const grpc::ByteBuffer* raw, grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* ResetMetrics(grpc::CallbackServerContext* ctx,
                                         const grpc::ByteBuffer* raw,
                                         grpc::ByteBuffer* out) override;

 private:
  ::encserve::server::Service& service_;
  const GrpcOptions options_;
  CallCounters& counters_;
  LatencyWindow window_;
};

class EncoderServiceImpl final : public EncoderRaw {
 public:
  EncoderServiceImpl(::encserve::server::Service& service, const GrpcOptions& options,
                     CallCounters& counters)
      : service_(service), options_(options), counters_(counters) {}
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Rerank(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                   grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                     grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw,
                                 grpc::ByteBuffer* out) override;

 private:
  ::encserve::server::Service& service_;
  const GrpcOptions options_;
  CallCounters& counters_;
};

}  // namespace encserve::server::grpc_internal
