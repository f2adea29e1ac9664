#include "server/grpc/grpc_common.h"
#include "server/grpc/grpc_services.h"

namespace encserve::server::grpc_internal {

namespace {
// Authenticates and parses the raw request; false: the call is already finished.
template <class Req>
bool Begin(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw, const GrpcOptions& o,
           Service& service, const std::string& route, CallCounters& counters, CallSetup* call,
           Req* request) {
  return BeginCall(ctx, o, service, route, counters, call) &&
         ParseRequest(raw, request, *call, service, route);
}
}  // namespace

grpc::ServerUnaryReactor* InferenceServiceImpl::Infer(grpc::CallbackServerContext* ctx,
                                                      const grpc::ByteBuffer* raw,
                                                      grpc::ByteBuffer* out) {
  static const std::string kRoute = "grpc:inference.Infer";
  CallSetup call;
  inference::InferRequest request;
  if (!Begin(ctx, raw, options_, service_, kRoute, counters_, &call, &request)) return call.reactor;
  EmbedParams params;
  params.texts.assign(request.texts().begin(), request.texts().end());
  service_.Embed(std::move(params), call.ctx, [this, call, out](StatusOr<EmbedResult> r) {
    if (!r.ok()) return EndCall(call, service_, kRoute, ToGrpc(r.status()));
    inference::InferResponse reply;
    inference::InferResponse* response = &reply;
    response->mutable_embeddings()->Assign(r->data.begin(), r->data.end());
    response->set_embedding_dim(r->dim);
    response->set_num_texts(r->rows);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - call.start)
            .count();
    response->set_latency_ms(static_cast<float>(ms));
    window_.Record(ms);
    EndCallWith(call, service_, kRoute, reply, out);
  });
  return call.reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::GetMetrics(grpc::CallbackServerContext* ctx,
                                                           const grpc::ByteBuffer* raw,
                                                           grpc::ByteBuffer* out) {
  static const std::string kRoute = "grpc:inference.GetMetrics";
  CallSetup call;
  inference::Empty request;
  if (!Begin(ctx, raw, options_, service_, kRoute, counters_, &call, &request)) return call.reactor;
  inference::MetricsResponse reply;
  inference::MetricsResponse* response = &reply;
  const LatencySnapshot s = window_.Snapshot();
  response->set_count(static_cast<int32_t>(s.count));
  response->set_avg_ms(static_cast<float>(s.avg_ms));
  response->set_p50_ms(static_cast<float>(s.p50_ms));
  response->set_p95_ms(static_cast<float>(s.p95_ms));
  response->set_p99_ms(static_cast<float>(s.p99_ms));
  response->set_throughput_rps(static_cast<float>(s.throughput_rps));
  EndCallWith(call, service_, kRoute, reply, out);
  return call.reactor;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::ResetMetrics(grpc::CallbackServerContext* ctx,
                                                             const grpc::ByteBuffer* raw,
                                                             grpc::ByteBuffer* out) {
  static const std::string kRoute = "grpc:inference.ResetMetrics";
  CallSetup call;
  inference::Empty request;
  if (!Begin(ctx, raw, options_, service_, kRoute, counters_, &call, &request)) return call.reactor;
  window_.Reset();
  EndCallWith(call, service_, kRoute, inference::Empty(), out);
  return call.reactor;
}

}  // namespace encserve::server::grpc_internal
