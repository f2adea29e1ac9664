#include "bench/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace encserve::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::pair<std::string, std::string> HttpRequestFor(const Payload& p) {
  nlohmann::json j;
  switch (p.op) {
    case Payload::Op::kEmbed:
      j["inputs"] = p.texts;
      return {"/embed", j.dump()};
    case Payload::Op::kScore: {
      auto pairs = nlohmann::json::array();
      for (const auto& [a, b] : p.pairs) pairs.push_back({a, b});
      j["pairs"] = std::move(pairs);
      return {"/score", j.dump()};
    }
    case Payload::Op::kRerank:
      j["query"] = p.query;
      j["texts"] = p.documents;
      return {"/rerank", j.dump()};
  }
  return {"/", "{}"};
}

namespace {

// One keep-alive connection; at most one request in flight.
struct Connection {
  explicit Connection(asio::io_context& ioc) : stream(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  http::response<http::string_body> res;
  bool connected = false;
  bool retried = false;  // a reused connection failed once: reconnected and resent
  DoneFn done;
};

class HttpClient : public Client {
 public:
  HttpClient(const HttpClientOptions& o, tcp::resolver::results_type endpoints, std::string host)
      : options_(o),
        endpoints_(std::move(endpoints)),
        host_(std::move(host)),
        work_(asio::make_work_guard(ioc_)) {
    for (int s = 0; s < o.slots; ++s) conns_.push_back(std::make_unique<Connection>(ioc_));
    const int threads = o.io_threads > 0 ? o.io_threads : std::min(2, std::max(1, o.slots));
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~HttpClient() override { Shutdown(); }

  std::string Describe() const override { return "http"; }

  void Send(int slot, std::shared_ptr<const Payload> p, DoneFn done) override {
    Connection& c = *conns_[static_cast<size_t>(slot)];
    auto [route, body] = HttpRequestFor(*p);
    c.req = {};
    c.req.method(http::verb::post);
    c.req.target(route);
    c.req.version(11);
    c.req.set(http::field::host, host_);
    c.req.set(http::field::content_type, "application/json");
    c.req.keep_alive(true);
    if (!options_.api_key.empty()) {
      c.req.set(http::field::authorization, "Bearer " + options_.api_key);
    }
    c.req.body() = std::move(body);
    c.req.prepare_payload();
    c.done = std::move(done);
    c.retried = false;
    // Start on the io threads, so all of a connection's handlers run there.
    asio::post(ioc_, [this, &c] { Begin(c); });
  }

  void Shutdown() override {
    if (threads_.empty()) return;
    work_.reset();
    asio::post(ioc_, [this] {
      for (auto& c : conns_) c->stream.socket().close();
    });
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Begin(Connection& c) {
    c.stream.expires_after(std::chrono::milliseconds(options_.timeout_ms));
    if (c.connected) return Write(c);
    c.stream.async_connect(endpoints_, [this, &c](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return Fail(c, "CONNECT_ERROR", ec.message());
      c.connected = true;
      c.stream.socket().set_option(tcp::no_delay(true));
      c.retried = true;  // a fresh connection is not retried
      Write(c);
    });
  }

  void Write(Connection& c) {
    http::async_write(c.stream, c.req, [this, &c](beast::error_code ec, size_t) {
      if (ec) return IoError(c, ec);
      c.res = {};
      http::async_read(c.stream, c.buffer, c.res,
                       [this, &c](beast::error_code ec, size_t) { OnRead(c, ec); });
    });
  }

  void OnRead(Connection& c, beast::error_code ec) {
    if (ec) return IoError(c, ec);
    if (!c.res.keep_alive()) Close(c);
    CallResult r;
    const int status = static_cast<int>(c.res.result_int());
    r.ok = status == 200;
    r.code = r.ok ? "OK" : "HTTP " + std::to_string(status);
    if (!r.ok) r.message = c.res.body().substr(0, 200);
    Finish(c, std::move(r));
  }

  // A kept-alive connection the server closed meanwhile fails on first use: reconnect once.
  void IoError(Connection& c, beast::error_code ec) {
    Close(c);
    if (!c.retried && ec != beast::error::timeout) {
      c.retried = true;
      return Begin(c);
    }
    Fail(c, ec == beast::error::timeout ? "TIMEOUT" : "IO_ERROR", ec.message());
  }

  void Fail(Connection& c, const char* code, std::string message) {
    Close(c);
    Finish(c, CallResult{false, code, std::move(message)});
  }

  static void Close(Connection& c) {
    beast::error_code ignored;
    c.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    c.stream.socket().close(ignored);
    c.buffer.clear();
    c.connected = false;
  }

  static void Finish(Connection& c, CallResult r) {
    DoneFn done = std::move(c.done);
    c.done = nullptr;
    done(std::move(r));
  }

  HttpClientOptions options_;
  tcp::resolver::results_type endpoints_;
  std::string host_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<Connection>> conns_;
  std::vector<std::thread> threads_;
};

}  // namespace

StatusOr<std::unique_ptr<Client>> MakeHttpClient(const HttpClientOptions& options) {
  if (options.slots < 1) return InvalidArgument("HTTP client needs at least one slot");
  const auto colon = options.target.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("--target must be host:port, got '" + options.target + "'");
  }
  std::string host = options.target.substr(0, colon);
  const std::string port = options.target.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return InvalidArgument("cannot resolve " + options.target + ": " + ec.message());
  return std::unique_ptr<Client>(new HttpClient(options, std::move(endpoints), options.target));
}

}  // namespace encserve::bench
