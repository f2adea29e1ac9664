// Internals of HttpServer (http_server.cc): the state shared by all connections, the in-flight
// token and the per-connection session (plain TCP or TLS). Not part of the public API.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "server/http/http_api.h"
#include "server/http/http_server.h"
#include "server/http/http_state.h"

namespace encserve::server::http_internal {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

inline std::string_view Sv(beast::string_view s) {
  return {s.data(), s.size()};
}

// The session whose OnRead is inside HttpApi::Handle on this thread (null otherwise): a reply
// callback that finds its own session here runs within Handle, on the io thread.
inline thread_local const void* tl_handling_session = nullptr;

// One connection. Stream: beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>. All
// members are used on the connection's strand only (ForceClose: after the io threads stop).
template <class Stream>
class HttpSession : public SessionBase, public std::enable_shared_from_this<HttpSession<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  template <class... Args>
  HttpSession(std::shared_ptr<ServerState> state, tcp::socket&& socket, Args&... tls)
      : state_(std::move(state)), stream_(std::move(socket), tls...) {}
  ~HttpSession() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->sessions.erase(id_);
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      id_ = state_->next_session++;
      state_->sessions[id_] = this->shared_from_this();
    }
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void ForceClose() override {
    closed_ = true;
    beast::error_code ec;
    Socket().close(ec);
    self_hold_.reset();
  }

 private:
  auto& Lowest() { return beast::get_lowest_layer(stream_); }
  tcp::socket& Socket() { return Lowest().socket(); }
  const HttpOptions& Opt() const { return state_->options; }
  std::chrono::milliseconds Idle() const { return Opt().idle_timeout; }

  void Begin() {
    if constexpr (kTls) {
      Lowest().expires_after(Opt().header_timeout);
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->ReadHeader();
                              });
    } else {
      ReadHeader();
    }
  }

  // Keep-alive: waits up to idle_timeout for the next request's first bytes, then gives the
  // request head header_timeout (a client that trickles its headers cannot hold the
  // connection for longer than that).
  void DoRead() {
    if (closed_) return;
    if (buffer_.size() > 0) return ReadHeader();  // pipelined: already here
    Lowest().expires_after(Idle());
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec || self->closed_) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    if (closed_) return;
    parser_.emplace();
    early_reply_.reset();
    parser_->body_limit(Opt().max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(Opt().max_header_bytes));
    Lowest().expires_after(Opt().header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // Answers `Expect: 100-continue` (curl sends it for bodies over 1 KiB), then reads the body.
  // A request that overload refuses whatever its body is refused from its head: the body is
  // still read (the connection stays in step) but not parsed (HttpApi::RefuseEarly).
  void OnHeader(beast::error_code ec) {
    if (ec || closed_) return OnRead(ec);
    const auto& head = parser_->get();
    if (beast::iequals(head[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      return http::async_write(
          stream_, *cont, [self = this->shared_from_this(), cont](beast::error_code ec, size_t) {
            if (ec) return self->Close();
            self->ReadBody();
          });
    }
    early_reply_ = state_->api.RefuseEarly(Sv(head.method_string()), Sv(head.target()),
                                           Sv(head[http::field::authorization]), id_ + 1);
    ReadBody();
  }

  void ReadBody() {
    Lowest().expires_after(Opt().body_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (closed_) return;
    if (ec == http::error::body_limit) {
      auto token =
          std::make_shared<InFlight>(state_, HttpApi::RouteLabel(Sv(parser_->get().target())),
                                     TraceOf(parser_->get(), id_ + 1));
      keep_alive_ = false;
      return WriteReply(
          HttpApi::Error(413, "request body larger than the limit", "payload_too_large"),
          std::move(token));
    }
    if (ec == http::error::header_limit) {
      keep_alive_ = false;
      return WriteReply(
          HttpApi::Error(431, "request header fields larger than the limit", "header_too_large"),
          std::make_shared<InFlight>(state_, "http:other", NewTrace()));
    }
    if (ec && ec != http::error::end_of_stream && ec != http::error::partial_message &&
        ec.category() == beast::http::make_error_code(http::error::bad_target).category()) {
      keep_alive_ = false;
      return WriteReply(
          HttpApi::Error(400, "malformed HTTP request: " + ec.message(), "invalid_request"),
          std::make_shared<InFlight>(state_, "http:other", NewTrace()));
    }
    if (ec) return Close();

    http::request<http::string_body> req = parser_->release();
    auto token = std::make_shared<InFlight>(state_, HttpApi::RouteLabel(Sv(req.target())),
                                            TraceOf(req, id_ + 1));
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    if (early_reply_) {
      HttpReply r = std::move(*early_reply_);
      early_reply_.reset();
      return WriteReply(std::move(r), std::move(token));
    }
    awaiting_ = true;
    ++generation_;
    self_hold_ = this->shared_from_this();
    Lowest().expires_never();

    RequestContext ctx;
    ctx.client = id_ + 1;  // per connection
    ctx.timing = token->trace().timing;
    cancelled_ = ctx.cancelled;
    HttpApiRequest api_req{Sv(req.method_string()),
                           Sv(req.target()),
                           Sv(req[http::field::authorization]),
                           Sv(req["X-Request-Timeout-Ms"]),
                           Sv(req[http::field::origin]),
                           Sv(req[http::field::access_control_request_method]),
                           Sv(req["X-Priority"]),
                           std::move(req.body())};
    std::weak_ptr<HttpSession> weak = this->shared_from_this();
    auto state = state_;
    HttpSession* raw = this;
    tl_handling_session = raw;
    state_->api.Handle(std::move(api_req), std::move(ctx), [weak, raw, state, token](HttpReply r) {
      if (tl_handling_session == raw) {
        // Answered within Handle, on this io thread (a refusal, an invalid request): kept for
        // OnRead, which is on the stack and holds the session, to write at once, without a hop
        // through the io queue or a peer watch.
        raw->inline_reply_.emplace(std::move(r));
        return;
      }
      // From a Service thread: the session is only touched (and kept alive) while the gate is
      // open, so that it is never destroyed here after the io_context is gone.
      std::lock_guard<std::mutex> lock(state->gate_mu);
      if (!state->gate_open) return;  // server gone: drop the reply
      auto self = weak.lock();
      if (!self) return;  // connection gone: drop the reply
      auto executor = self->stream_.get_executor();
      net::post(executor, [self = std::move(self), token, r = std::move(r)]() mutable {
        self->OnReply(std::move(r), std::move(token));
      });
    });
    tl_handling_session = nullptr;
    if (inline_reply_) {
      HttpReply r = std::move(*inline_reply_);
      inline_reply_.reset();
      awaiting_ = false;
      ++generation_;
      self_hold_.reset();
      return WriteReply(std::move(r), std::move(token));
    }
    if (awaiting_) WatchPeer();
  }

  // Waits for the socket to become readable while the request is with the Service: EOF (or
  // an error) there means the client went away.
  void WatchPeer() {
    Socket().async_wait(tcp::socket::wait_read,
                        [self = this->shared_from_this(), gen = generation_](beast::error_code ec) {
                          self->OnPeerReadable(ec, gen);
                        });
  }

  void OnPeerReadable(beast::error_code ec, uint64_t gen) {
    if (ec || gen != generation_ || !awaiting_ || closed_) return;
    char c;
    ssize_t n = ::recv(Socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;  // pipelined bytes: stop watching
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return WatchPeer();
    cancelled_->store(true);
    Close();
  }

  void OnReply(HttpReply r, std::shared_ptr<InFlight> token) {
    if (closed_ || !awaiting_) return;  // token dropped: recorded as 499
    awaiting_ = false;
    ++generation_;
    beast::error_code ignored;
    Socket().cancel(ignored);  // ends WatchPeer's wait
    self_hold_.reset();
    WriteReply(std::move(r), std::move(token));
  }

  void WriteReply(HttpReply r, std::shared_ptr<InFlight> token) {
    FinishReply(r);  // (the body, built here on the io thread: http_api.h)
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(version_);
    res->result(static_cast<unsigned>(r.status));
    if (r.status == 499) res->reason("Client Closed Request");
    res->set(http::field::server, "encserve");
    if (!r.content_type.empty()) res->set(http::field::content_type, r.content_type);
    if (r.retry_after) res->set(http::field::retry_after, "1");
    const RequestTrace& trace = token->trace();
    res->set("X-Request-Id", trace.id);
    res->set("Server-Timing", ServerTimingValue(trace.timing.get(), token->Seconds()));
    state_->api.cors().AddReplyHeaders(trace.origin, &r.headers);
    for (const auto& [name, value] : r.headers) res->insert(name, value);
    const bool keep = keep_alive_ && !state_->draining.load();
    res->keep_alive(keep);
    res->body() = std::move(r.body);
    res->prepare_payload();
    token->code = r.status;
    Lowest().expires_after(Opt().write_timeout);
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res, token = std::move(token), keep](
                          beast::error_code ec, size_t) mutable {
                        token.reset();  // answered
                        if (ec) return self->Close();
                        if (!keep) return self->GracefulClose();
                        self->DoRead();
                      });
  }

  // After a final reply: TLS close_notify, or for TCP a half-close and a short drain of what
  // the client still sends (so that closing does not reset the connection under the reply).
  void GracefulClose() {
    if (closed_) return;
    Lowest().expires_after(std::min<std::chrono::milliseconds>(Idle(), std::chrono::seconds(2)));
    if constexpr (kTls) {
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      beast::error_code ignored;
      Socket().shutdown(tcp::socket::shutdown_send, ignored);
      Drain();
    }
  }

  void Drain() {
    Lowest().async_read_some(net::buffer(drain_buf_),
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Close();
                               self->Drain();
                             });
  }

  // A request whose head could not be read: a new id, no timing.
  RequestTrace NewTrace() const {
    RequestTrace t;
    t.id = NewRequestId();
    t.client = id_ + 1;
    return t;
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    self_hold_.reset();
    beast::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  std::shared_ptr<ServerState> state_;  // first: outlives the stream
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  uint64_t id_ = 0;
  bool keep_alive_ = true;
  unsigned version_ = 11;  // of the request being answered
  bool awaiting_ = false;  // a request is with the Service
  bool closed_ = false;
  uint64_t generation_ = 0;  // invalidates stale peer watches
  std::shared_ptr<std::atomic<bool>> cancelled_;
  std::shared_ptr<HttpSession> self_hold_;  // keeps the session while the Service works
  // A reply given synchronously within HttpApi::Handle (set and used on the io thread only).
  std::optional<HttpReply> inline_reply_;
  std::optional<HttpReply> early_reply_;  // refused from its head (OnHeader), for OnRead
  char drain_buf_[4096];
};

}  // namespace encserve::server::http_internal
