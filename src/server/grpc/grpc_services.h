// Internal: the two gRPC service implementations (callback API).
#pragma once

#include "encserve.grpc.pb.h"
#include "inference.grpc.pb.h"
#include "server/grpc/grpc_server.h"
#include "server/latency_window.h"

namespace encserve::server::grpc_internal {

// The seed's service. Infer = Embed with the model's defaults; GetMetrics reports the Infer
// latency window (since start or the last ResetMetrics).
class InferenceServiceImpl final : public inference::InferenceService::CallbackService {
 public:
  InferenceServiceImpl(::encserve::server::Service& service, const GrpcOptions& options)
      : service_(service), options_(options) {}
  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* ctx,
                                  const inference::InferRequest* request,
                                  inference::InferResponse* response) override;
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* ctx,
                                       const inference::Empty* request,
                                       inference::MetricsResponse* response) override;
  grpc::ServerUnaryReactor* ResetMetrics(grpc::CallbackServerContext* ctx,
                                         const inference::Empty* request,
                                         inference::Empty* response) override;

 private:
  ::encserve::server::Service& service_;
  const GrpcOptions options_;
  LatencyWindow window_;
};

class EncoderServiceImpl final : public encserve::v1::Encoder::CallbackService {
 public:
  EncoderServiceImpl(::encserve::server::Service& service, const GrpcOptions& options)
      : service_(service), options_(options) {}
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx,
                                  const encserve::v1::EmbedRequest* request,
                                  encserve::v1::EmbedResponse* response) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* ctx,
                                  const encserve::v1::ScoreRequest* request,
                                  encserve::v1::ScoreResponse* response) override;
  grpc::ServerUnaryReactor* Rerank(grpc::CallbackServerContext* ctx,
                                   const encserve::v1::RerankRequest* request,
                                   encserve::v1::RerankResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx,
                                     const encserve::v1::TokenizeRequest* request,
                                     encserve::v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* ctx,
                                 const encserve::v1::InfoRequest* request,
                                 encserve::v1::InfoResponse* response) override;

 private:
  ::encserve::server::Service& service_;
  const GrpcOptions options_;
};

}  // namespace encserve::server::grpc_internal
