#include "server/grpc/grpc_common.h"
#include "server/grpc/grpc_services.h"

namespace encserve::server::grpc_internal {

namespace v1 = encserve::v1;

namespace {
// The request's priority field, when set, over the x-priority metadata (BeginCall).
void ApplyPriority(v1::Priority priority, RequestContext* ctx) {
  if (priority == v1::PRIORITY_INTERACTIVE) ctx->priority = RequestPriority::kInteractive;
  if (priority == v1::PRIORITY_BATCH) ctx->priority = RequestPriority::kBatch;
}
}  // namespace

// Authenticates, then parses the raw request into `request` (finishing the call on failure).
#define ENCSERVE_BEGIN_CALL(route, Request)                                               \
  static const std::string kRoute = route;                                                \
  CallSetup call;                                                                         \
  if (!BeginCall(ctx, options_, service_, kRoute, counters_, &call)) return call.reactor; \
  Request request_msg;                                                                    \
  if (!ParseRequest(raw, &request_msg, call, service_, kRoute)) return call.reactor;      \
  const Request* request = &request_msg;                                                  \
  (void)request;

grpc::ServerUnaryReactor* EncoderServiceImpl::Embed(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* raw,
                                                    grpc::ByteBuffer* out) {
  ENCSERVE_BEGIN_CALL("grpc:encserve.v1.Embed", v1::EmbedRequest);
  auto response = std::make_shared<v1::EmbedResponse>();
  EmbedParams p;
  p.texts.assign(request->texts().begin(), request->texts().end());
  if (request->has_normalize()) p.normalize = request->normalize();
  if (request->has_truncate()) p.truncate = request->truncate();
  p.truncate_left = request->truncation_direction() == v1::TRUNCATION_DIRECTION_LEFT;
  if (request->has_dimensions()) p.dimensions = request->dimensions();
  ApplyPriority(request->priority(), &call.ctx);
  service_.Embed(std::move(p), call.ctx, [this, call, response, out](StatusOr<EmbedResult> r) {
    if (!r.ok()) return EndCall(call, service_, kRoute, ToGrpc(r.status()));
    for (int i = 0; i < r->rows; ++i) {
      const float* row = r->data.data() + static_cast<size_t>(i) * r->dim;
      response->add_embeddings()->mutable_values()->Assign(row, row + r->dim);
    }
    response->set_dim(r->dim);
    response->set_prompt_tokens(r->prompt_tokens);
    response->set_embedding_space(r->embedding_space);
    EndCallWith(call, service_, kRoute, *response, out);
  });
  return call.reactor;
}

grpc::ServerUnaryReactor* EncoderServiceImpl::Score(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* raw,
                                                    grpc::ByteBuffer* out) {
  ENCSERVE_BEGIN_CALL("grpc:encserve.v1.Score", v1::ScoreRequest);
  auto response = std::make_shared<v1::ScoreResponse>();
  ScoreParams p;
  for (const v1::TextPair& pair : request->pairs()) p.pairs.emplace_back(pair.a(), pair.b());
  p.raw_scores = request->raw_scores();
  if (request->has_truncate()) p.truncate = request->truncate();
  p.truncate_left = request->truncation_direction() == v1::TRUNCATION_DIRECTION_LEFT;
  ApplyPriority(request->priority(), &call.ctx);
  service_.Score(std::move(p), call.ctx, [this, call, response, out](StatusOr<ScoreResult> r) {
    if (!r.ok()) return EndCall(call, service_, kRoute, ToGrpc(r.status()));
    response->mutable_scores()->Assign(r->scores.begin(), r->scores.end());
    response->set_prompt_tokens(r->prompt_tokens);
    EndCallWith(call, service_, kRoute, *response, out);
  });
  return call.reactor;
}

grpc::ServerUnaryReactor* EncoderServiceImpl::Rerank(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* raw,
                                                     grpc::ByteBuffer* out) {
  ENCSERVE_BEGIN_CALL("grpc:encserve.v1.Rerank", v1::RerankRequest);
  auto response = std::make_shared<v1::RerankResponse>();
  RerankParams p;
  p.query = request->query();
  p.documents.assign(request->documents().begin(), request->documents().end());
  if (request->has_top_n()) p.top_n = request->top_n();
  p.return_documents = request->return_documents();
  p.raw_scores = request->raw_scores();
  if (request->has_truncate()) p.truncate = request->truncate();
  p.truncate_left = request->truncation_direction() == v1::TRUNCATION_DIRECTION_LEFT;
  ApplyPriority(request->priority(), &call.ctx);
  service_.Rerank(std::move(p), call.ctx, [this, call, response, out](StatusOr<RerankResult> r) {
    if (!r.ok()) return EndCall(call, service_, kRoute, ToGrpc(r.status()));
    for (const RankedDocument& d : r->results) {
      v1::RankedDocument* out = response->add_results();
      out->set_index(d.index);
      out->set_score(d.score);
      if (d.document) out->set_document(*d.document);
    }
    response->set_prompt_tokens(r->prompt_tokens);
    EndCallWith(call, service_, kRoute, *response, out);
  });
  return call.reactor;
}

grpc::ServerUnaryReactor* EncoderServiceImpl::Tokenize(grpc::CallbackServerContext* ctx,
                                                       const grpc::ByteBuffer* raw,
                                                       grpc::ByteBuffer* out) {
  ENCSERVE_BEGIN_CALL("grpc:encserve.v1.Tokenize", v1::TokenizeRequest);
  auto response = std::make_shared<v1::TokenizeResponse>();
  TokenizeParams p;
  p.texts.assign(request->texts().begin(), request->texts().end());
  if (request->has_add_special_tokens()) p.add_special_tokens = request->add_special_tokens();
  p.truncate = request->truncate();
  p.truncate_left = request->truncation_direction() == v1::TRUNCATION_DIRECTION_LEFT;
  StatusOr<TokenizeResult> r = service_.Tokenize(p);
  if (r.ok()) {
    for (const auto& list : r->tokens) {
      v1::TokenList* out = response->add_texts();
      for (const Token& t : list) {
        v1::Token* tok = out->add_tokens();
        tok->set_id(t.id);
        tok->set_text(t.text);
        tok->set_special(t.special);
      }
    }
  }
  if (r.ok()) {
    EndCallWith(call, service_, kRoute, *response, out);
  } else {
    EndCall(call, service_, kRoute, ToGrpc(r.status()));
  }
  return call.reactor;
}

grpc::ServerUnaryReactor* EncoderServiceImpl::Info(grpc::CallbackServerContext* ctx,
                                                   const grpc::ByteBuffer* raw,
                                                   grpc::ByteBuffer* out) {
  ENCSERVE_BEGIN_CALL("grpc:encserve.v1.Info", v1::InfoRequest);
  auto response = std::make_shared<v1::InfoResponse>();
  const ServiceInfo i = service_.Info();
  response->set_model_id(i.model_id);
  response->set_model_kind(i.model_kind);
  response->set_precision(i.precision);
  response->set_backend(i.backend);
  response->set_isa(i.isa);
  response->set_version(i.version);
  response->set_embedding_dim(i.embedding_dim);
  response->set_num_labels(i.num_labels);
  response->set_max_input_length(i.max_input_length);
  response->set_max_batch_size(i.max_batch_size);
  response->set_max_batch_tokens(i.max_batch_tokens);
  response->set_max_client_batch_size(i.max_client_batch_size);
  response->set_max_text_chars(i.max_text_chars);
  response->set_batching(i.batching);
  response->set_device(i.device);
  response->set_quant_kernels(i.quant_kernels);
  response->set_library(i.library);
  for (const BackendStatus& b : i.backends) {
    v1::BackendStatus* o = response->add_backends();
    o->set_name(b.name);
    o->set_role(b.role);
    o->set_loaded(b.loaded);
    o->set_in_service(b.in_service);
    o->set_load_error(b.load_error);
    o->set_precision(b.precision);
    o->set_fp32_kernels(b.fp32_kernels);
    o->set_quant_kernels(b.quant_kernels);
    o->set_batches(b.batches);
    o->set_failures(b.failures);
    o->set_library(b.library);
  }
  EndCallWith(call, service_, kRoute, *response, out);
  return call.reactor;
}

}  // namespace encserve::server::grpc_internal
