#include "server/grpc/grpc_common.h"
#include "server/grpc/grpc_services.h"

namespace encserve::server::grpc_internal {

grpc::ServerUnaryReactor* InferenceServiceImpl::Infer(grpc::CallbackServerContext* ctx,
                                                      const inference::InferRequest* request,
                                                      inference::InferResponse* response) {
  static const std::string kRoute = "grpc:inference.Infer";
  CallSetup call;
  if (!BeginCall(ctx, options_.api_key, options_.default_timeout, service_, kRoute, &call)) {
    return call.reactor;
  }
  EmbedParams params;
  params.texts.assign(request->texts().begin(), request->texts().end());
  service_.Embed(std::move(params), call.ctx, [this, call, response](StatusOr<EmbedResult> r) {
    if (!r.ok()) return EndCall(call, service_, kRoute, ToGrpc(r.status()));
    response->mutable_embeddings()->Assign(r->data.begin(), r->data.end());
    response->set_embedding_dim(r->dim);
    response->set_num_texts(r->rows);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - call.start)
            .count();
    response->set_latency_ms(static_cast<float>(ms));
    window_.Record(ms);
    EndCall(call, service_, kRoute, grpc::Status::OK);
  });
  return call.reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::GetMetrics(grpc::CallbackServerContext* ctx,
                                                           const inference::Empty*,
                                                           inference::MetricsResponse* response) {
  static const std::string kRoute = "grpc:inference.GetMetrics";
  CallSetup call;
  if (!BeginCall(ctx, options_.api_key, options_.default_timeout, service_, kRoute, &call)) {
    return call.reactor;
  }
  const LatencySnapshot s = window_.Snapshot();
  response->set_count(static_cast<int32_t>(s.count));
  response->set_avg_ms(static_cast<float>(s.avg_ms));
  response->set_p50_ms(static_cast<float>(s.p50_ms));
  response->set_p95_ms(static_cast<float>(s.p95_ms));
  response->set_p99_ms(static_cast<float>(s.p99_ms));
  response->set_throughput_rps(static_cast<float>(s.throughput_rps));
  EndCall(call, service_, kRoute, grpc::Status::OK);
  return call.reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ResetMetrics(grpc::CallbackServerContext* ctx,
                                                             const inference::Empty*,
                                                             inference::Empty*) {
  static const std::string kRoute = "grpc:inference.ResetMetrics";
  CallSetup call;
  if (!BeginCall(ctx, options_.api_key, options_.default_timeout, service_, kRoute, &call)) {
    return call.reactor;
  }
  window_.Reset();
  EndCall(call, service_, kRoute, grpc::Status::OK);
  return call.reactor;
}

}  // namespace encserve::server::grpc_internal
