#include "server/http/http_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "server/http/http_session.h"
#include "server/listener.h"

namespace encserve::server {

using namespace http_internal;  // NOLINT: beast, net, tcp, ServerState, HttpSession

struct HttpServer::Impl {
  Impl(Service& service, const HttpOptions& options)
      : state(std::make_shared<ServerState>(service, options)),
        ssl(net::ssl::context::tls_server),
        acceptor(net::make_strand(ioc)) {}
  ~Impl() {
    if (spare >= 0) ::close(spare);
  }

  void Accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec == net::error::no_descriptors || ec.value() == ENFILE) {
        return OnNoDescriptors(ec.value());
      }
      if (!ec && Admit(s)) {
        beast::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
        if (tls) {
          std::make_shared<HttpSession<beast::ssl_stream<beast::tcp_stream>>>(state, std::move(s),
                                                                              ssl)
              ->Start();
        } else {
          std::make_shared<HttpSession<beast::tcp_stream>>(state, std::move(s))->Start();
        }
      }
      Accept();
    });
  }

  // The connection cap and the descriptor reserve (listener.h): over either, the new
  // connection is closed at once (logged once per episode).
  bool Admit(tcp::socket& s) {
    size_t open = 0;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      open = state->sessions.size();
    }
    bool ok = fds.Admit(s.native_handle());
    if (ok && open >= static_cast<size_t>(state->options.max_connections)) {
      ok = false;
      if (!at_cap.exchange(true)) {
        std::fprintf(stderr,
                     "[serve] HTTP: %zu connections open (http.max_connections): new "
                     "connections are closed until some close\n",
                     open);
      }
    } else if (ok) {
      at_cap.store(false);
    }
    if (!ok) {
      beast::error_code ignored;
      s.close(ignored);
    }
    return ok;
  }

  // accept() failed for lack of descriptors: release the spare one to take the pending
  // connection off the queue and close it, so the acceptor neither spins nor leaves the client
  // hanging; without a spare, retry after a pause.
  void OnNoDescriptors(int err) {
    fds.OnAcceptError(err);
    if (spare >= 0) {
      ::close(spare);
      const int c = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) ::close(c);
      spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (spare >= 0) return Accept();
    }
    retry.expires_after(std::chrono::milliseconds(50));
    retry.async_wait([this](beast::error_code ec) {
      if (ec || !acceptor.is_open()) return;
      if (spare < 0) spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      Accept();
    });
  }

  std::shared_ptr<ServerState> state;  // members in destruction-safe order
  net::ssl::context ssl;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::steady_timer retry{acceptor.get_executor()};
  FdBudget fds{"HTTP"};
  std::atomic<bool> at_cap{false};
  int spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // see OnNoDescriptors
  std::vector<std::thread> threads;
  bool tls = false;
  int port = 0;
  std::mutex shutdown_mu;
  bool accepting = true;
  bool shut_down = false;
};

namespace {

Status LoadTls(const HttpOptions& o, net::ssl::context& ssl) {
  for (const std::string* f : {&o.tls_cert_file, &o.tls_key_file}) {
    if (!std::filesystem::is_regular_file(*f)) {
      return InvalidArgument("TLS file '" + *f + "' does not exist or is not a file");
    }
  }
  beast::error_code ec;
  ssl.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                      net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                      net::ssl::context::no_tlsv1_1,
                  ec);
  ssl.use_certificate_chain_file(o.tls_cert_file, ec);
  if (ec) {
    return InvalidArgument("cannot load TLS certificate '" + o.tls_cert_file +
                           "': " + ec.message());
  }
  ssl.use_private_key_file(o.tls_key_file, net::ssl::context::pem, ec);
  if (ec) {
    return InvalidArgument("cannot load TLS private key '" + o.tls_key_file + "': " + ec.message());
  }
  if (SSL_CTX_check_private_key(ssl.native_handle()) != 1) {
    return InvalidArgument("TLS private key '" + o.tls_key_file +
                           "' does not match the certificate '" + o.tls_cert_file + "'");
  }
  return Status::Ok();
}

Status Listen(const HttpOptions& o, tcp::acceptor& acceptor, net::io_context& ioc) {
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(o.host, std::to_string(o.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return Unavailable("cannot resolve HTTP host '" + o.host + "': " + ec.message());
  }
  const tcp::endpoint ep = endpoints.begin()->endpoint();
  const std::string where = o.host + ":" + std::to_string(o.port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (ec) return Unavailable("cannot bind HTTP " + where + ": " + ec.message());
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on HTTP " + where + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpOptions& options,
                                                        Service& service) {
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgument("HTTP port must be in [0, 65535]");
  }
  if (options.io_threads < 1) return InvalidArgument("HTTP io_threads must be >= 1");
  if (options.max_connections < 1) return InvalidArgument("HTTP max_connections must be >= 1");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgument("HTTPS needs both a TLS certificate and a key file");
  }
  auto impl = std::make_unique<Impl>(service, options);
  impl->tls = !options.tls_cert_file.empty();
  if (impl->tls) RETURN_IF_ERROR(LoadTls(options, impl->ssl));
  RETURN_IF_ERROR(Listen(options, impl->acceptor, impl->ioc));
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  for (int i = 0; i < options.io_threads; ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Shutdown(Clock::now());
}

int HttpServer::port() const {
  return impl_->port;
}
bool HttpServer::tls() const {
  return impl_->tls;
}

void HttpServer::StopAccepting() {
  std::lock_guard<std::mutex> lock(impl_->shutdown_mu);
  if (!impl_->accepting) return;
  impl_->accepting = false;
  impl_->state->draining = true;  // from now on every reply closes its connection
  // Closed on the acceptor's strand (the accept handler touches it there); must not be
  // called from an io thread.
  std::promise<void> closed;
  net::post(impl_->acceptor.get_executor(), [this, &closed] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->retry.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
}

void HttpServer::Shutdown(Clock::time_point deadline) {
  StopAccepting();
  std::lock_guard<std::mutex> lock(impl_->shutdown_mu);
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  ServerState& state = *impl_->state;
  state.draining = true;
  {
    std::unique_lock<std::mutex> l(state.mu);
    state.cv.wait_until(l, deadline, [&] { return state.in_flight == 0; });
  }
  {
    std::lock_guard<std::mutex> gate(state.gate_mu);
    state.gate_open = false;
  }
  impl_->ioc.stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
  std::vector<std::weak_ptr<SessionBase>> sessions;
  {
    std::lock_guard<std::mutex> l(state.mu);
    for (auto& [id, s] : state.sessions) sessions.push_back(s);
  }
  for (auto& weak : sessions) {
    if (auto s = weak.lock()) s->ForceClose();
  }
}

size_t HttpServer::in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->state->mu);
  return impl_->state->in_flight;
}

}  // namespace encserve::server
