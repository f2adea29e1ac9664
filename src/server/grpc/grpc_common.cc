#include "server/grpc/grpc_common.h"

#include "server/auth.h"

namespace encserve::server::grpc_internal {

grpc::Status ToGrpc(const Status& status) {
  using G = grpc::StatusCode;
  G code = G::UNKNOWN;
  switch (status.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kInvalidArgument:
      code = G::INVALID_ARGUMENT;
      break;
    case StatusCode::kNotFound:
      code = G::NOT_FOUND;
      break;
    case StatusCode::kDataLoss:
      code = G::DATA_LOSS;
      break;
    case StatusCode::kUnimplemented:
      code = G::UNIMPLEMENTED;
      break;
    case StatusCode::kFailedPrecondition:
      code = G::FAILED_PRECONDITION;
      break;
    case StatusCode::kResourceExhausted:
      code = G::RESOURCE_EXHAUSTED;
      break;
    case StatusCode::kInternal:
      code = G::INTERNAL;
      break;
    case StatusCode::kOutOfRange:
      code = G::OUT_OF_RANGE;
      break;
    case StatusCode::kDeadlineExceeded:
      code = G::DEADLINE_EXCEEDED;
      break;
    case StatusCode::kCancelled:
      code = G::CANCELLED;
      break;
    case StatusCode::kUnavailable:
      code = G::UNAVAILABLE;
      break;
    case StatusCode::kUnauthenticated:
      code = G::UNAUTHENTICATED;
      break;
  }
  return grpc::Status(code, status.message());
}

int HttpCodeOf(const grpc::Status& status) {
  using G = grpc::StatusCode;
  switch (status.error_code()) {
    case G::OK:
      return 200;
    case G::INVALID_ARGUMENT:
    case G::FAILED_PRECONDITION:
      return 422;
    case G::OUT_OF_RANGE:
      return 413;
    case G::UNAUTHENTICATED:
      return 401;
    case G::NOT_FOUND:
      return 404;
    case G::RESOURCE_EXHAUSTED:
      return 429;
    case G::CANCELLED:
      return 499;
    case G::UNAVAILABLE:
      return 503;
    case G::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

namespace {
std::string_view Metadata(const grpc::CallbackServerContext* ctx, const char* key) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(key);
  return it == md.end() ? std::string_view()
                        : std::string_view(it->second.data(), it->second.size());
}
}  // namespace

bool BeginCall(grpc::CallbackServerContext* ctx, const GrpcOptions& options, Service& service,
               const std::string& route, CallCounters& counters, CallSetup* setup) {
  const std::string& api_key = options.api_key;
  setup->start = std::chrono::steady_clock::now();
  setup->server_ctx = ctx;
  setup->ctx.timing = std::make_shared<RequestTiming>();
  setup->access_log = options.access_log;
  RequestIds ids = IdsOf(Metadata(ctx, "x-request-id"), Metadata(ctx, "traceparent"));
  setup->id = std::move(ids.id);
  setup->traceparent = std::move(ids.traceparent);
  ctx->AddInitialMetadata("x-request-id", setup->id);
  counters.begun.fetch_add(1, std::memory_order_relaxed);
  setup->counters = &counters;
  setup->reactor = new Reactor(setup->ctx.cancelled, counters);
  setup->ctx.client = std::hash<std::string>()(ctx->peer());  // per connection
  // The client's deadline (system clock) as a steady-clock time point; none: the default.
  const auto sys_now = std::chrono::system_clock::now();
  const auto client_deadline = ctx->deadline();
  if (client_deadline < sys_now + std::chrono::hours(24 * 365)) {
    setup->ctx.deadline = setup->start + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             client_deadline - sys_now);
  } else {
    setup->ctx.deadline = setup->start + options.default_timeout;
  }
  if (!api_key.empty()) {
    if (!BearerMatches(Metadata(ctx, "authorization"), api_key)) {
      EndCall(*setup, service, route,
              grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                           "missing or wrong API key (metadata authorization: Bearer <key>)"));
      return false;
    }
  }
  if (std::string_view p = Metadata(ctx, "x-priority"); !p.empty()) {
    std::optional<RequestPriority> priority = ParseRequestPriority(p);
    if (!priority) {
      EndCall(*setup, service, route,
              grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           "metadata x-priority must be \"interactive\" or \"batch\""));
      return false;
    }
    setup->ctx.priority = *priority;
  }
  return true;
}

void EndCall(const CallSetup& setup, Service& service, const std::string& route,
             const grpc::Status& status) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - setup.start).count();
  const int http_code = HttpCodeOf(status);
  service.RecordRequest(route, http_code, seconds);
  setup.server_ctx->AddTrailingMetadata("server-timing",
                                        ServerTimingValue(setup.ctx.timing.get(), seconds));
  if (setup.access_log) {
    setup.access_log->Write(AccessRecord{setup.id, setup.traceparent, route, setup.ctx.client,
                                         http_code, static_cast<int>(status.error_code()),
                                         setup.ctx.timing.get(), seconds});
  }
  const auto code = static_cast<size_t>(status.error_code());
  if (code < setup.counters->answered.size()) {
    setup.counters->answered[code].fetch_add(1, std::memory_order_relaxed);
  }
  setup.reactor->Finish(status);
}

}  // namespace encserve::server::grpc_internal
