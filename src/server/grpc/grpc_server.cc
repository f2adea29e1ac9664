#include "server/grpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_posix.h>


#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/file.h"
#include "server/grpc/grpc_services.h"
#include "server/listener.h"

namespace encserve::server {

struct GrpcServer::Impl {
  grpc_internal::CallCounters counters;  // first: outlives the services and the server
  std::unique_ptr<grpc_internal::InferenceServiceImpl> inference;
  std::unique_ptr<grpc_internal::EncoderServiceImpl> encoder;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<Listener> listener;  // plain TCP: our accept loop (listener.h)
  int port = 0;
  bool shut_down = false;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() {
  Shutdown(std::chrono::system_clock::now());
}

StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcOptions& options,
                                                        Service& service) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgument("gRPC TLS needs both a certificate and a key file");
  }
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(std::string cert, ReadFileBytes(options.tls_cert_file));
    ASSIGN_OR_RETURN(std::string key, ReadFileBytes(options.tls_key_file));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({key, cert});
    creds = grpc::SslServerCredentials(ssl);
  }
  // Debian's abseil is built without NDEBUG, so every absl::Mutex inside gRPC tracks a lock-order
  // graph for deadlock detection (a debugging aid; about 2-3 % of the gRPC threads' CPU per call
  // in a profile of a 10x overload). Off, as in release builds of abseil.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  auto impl = std::make_unique<Impl>();
  impl->inference =
      std::make_unique<grpc_internal::InferenceServiceImpl>(service, options, impl->counters);
  impl->encoder =
      std::make_unique<grpc_internal::EncoderServiceImpl>(service, options, impl->counters);
  grpc::ServerBuilder builder;
  const std::string address = options.host + ":" + std::to_string(options.port);
  if (options.tls_cert_file.empty()) {
    // Plain TCP: our own accept loop hands connections to gRPC (survives descriptor
    // exhaustion, refuses a port already in use).
    ListenerOptions lo;
    lo.host = options.host;
    lo.port = options.port;
    lo.name = "gRPC";
    ASSIGN_OR_RETURN(impl->listener, Listener::Bind(lo));
    impl->port = impl->listener->port();
  } else {
    // TLS: gRPC's own listener (TLS cannot be added to a handed-over descriptor), without
    // SO_REUSEPORT so that a port in use is an error rather than shared.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort(address, creds, &impl->port);
  }
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(impl->inference.get());
  builder.RegisterService(impl->encoder.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return Unavailable("gRPC server could not listen on " + address +
                       " (port in use, bad address or bad TLS files?)");
  }
  if (impl->listener) {
    grpc::Server* server = impl->server.get();
    impl->listener->Start([server](int fd) { grpc::AddInsecureChannelFromFd(server, fd); });
  }
  std::unique_ptr<GrpcServer> s(new GrpcServer(std::move(impl)));
  s->SetServing(service.Ready());
  return s;
}

int GrpcServer::port() const {
  return impl_->port;
}

void GrpcServer::SetServing(bool serving) {
  if (impl_->shut_down) return;
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(serving);
    health->SetServingStatus("inference.InferenceService", serving);
    health->SetServingStatus("encserve.v1.Encoder", serving);
  }
}

std::string GrpcServer::CallAccount() const {
  const grpc_internal::CallCounters& c = impl_->counters;
  uint64_t answered = 0;
  std::string by_code;
  for (size_t i = 0; i < c.answered.size(); ++i) {
    const uint64_t n = c.answered[i].load();
    if (n == 0) continue;
    answered += n;
    // (gRPC's status codes are abseil's, number for number.)
    by_code += std::string(by_code.empty() ? "" : ", ") +
               absl::StatusCodeToString(static_cast<absl::StatusCode>(i)) + " " + std::to_string(n);
  }
  return "gRPC calls: " + std::to_string(c.begun.load()) + " reached a handler, " +
         std::to_string(answered) + " answered (" + (by_code.empty() ? "none" : by_code) + "), " +
         std::to_string(c.cancelled.load()) +
         " of them cancelled, their answer not delivered (client gone, its deadline or the "
         "shutdown deadline)";
}

void GrpcServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (impl_->shut_down) return;
  SetServing(false);
  impl_->shut_down = true;
  if (impl_->listener) impl_->listener->Stop();
  impl_->server->Shutdown(deadline);
  impl_->server->Wait();
}

}  // namespace encserve::server
