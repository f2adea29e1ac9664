// HTTP front end lifecycle over a FakeService: concurrency, client disconnects, metrics
// reporting, graceful shutdown, TLS.
#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <future>

#include "http_test_util.h"
#include "server/http/http_server.h"
#include "test_util.h"

namespace encserve::server {
namespace {

using encserve::testing::FakeService;
using encserve::testing::HttpClient;
using encserve::testing::Request;
using encserve::testing::Response;
using Json = nlohmann::json;

HttpOptions Threads(int n) {
  HttpOptions o;
  o.io_threads = n;
  return o;
}

std::unique_ptr<HttpServer> StartOrDie(Service& svc, HttpOptions o = {}) {
  o.port = 0;
  auto s = HttpServer::Start(o, svc);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(HttpLifecycleTest, SixtyFourConcurrentClientsGetTheirOwnResults) {
  FakeService svc;
  auto server = StartOrDie(svc, Threads(2));
  ASSERT_NE(server, nullptr);
  std::vector<std::future<Response>> results;
  for (int i = 0; i < 64; ++i) {
    results.push_back(std::async(std::launch::async, [&, i] {
      HttpClient c(server->port());
      Response last;
      for (int k = 0; k < 3; ++k) {
        last = c.Send("POST", "/embed", Json{{"inputs", {std::string(i + 1, 'a'), "b"}}}.dump());
        if (last.status != 200) break;
      }
      return last;
    }));
  }
  for (int i = 0; i < 64; ++i) {
    Response r = results[i].get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json(), Json::parse("[[" + std::to_string(i + 1) + ",1,0,0],[1,1,0,0]]"));
  }
  // A request leaves in_flight once its reply is written, which may be just after the client
  // has read it.
  EXPECT_TRUE(FakeService::WaitFor([&] { return server->in_flight() == 0; }));
}

TEST(HttpLifecycleTest, EveryRequestIsRecordedWithRouteAndCode) {
  FakeService svc;
  auto server = StartOrDie(svc);
  ASSERT_NE(server, nullptr);
  Request(server->port(), "POST", "/embed", R"({"inputs": "a"})");
  Request(server->port(), "GET", "/does/not/exist");
  Request(server->port(), "POST", "/rerank", "{");
  Request(server->port(), "GET", "/health");
  ASSERT_TRUE(FakeService::WaitFor([&] { return svc.Records().size() >= 4; }));
  auto rec = svc.Records();
  using R = std::pair<std::string, int>;
  EXPECT_EQ(rec, (std::vector<R>{{"http:/embed", 200},
                                 {"http:other", 404},
                                 {"http:/rerank", 400},
                                 {"http:/health", 200}}));
}

TEST(HttpLifecycleTest, ClientDisconnectCancelsQueuedRequest) {
  FakeService svc;
  auto server = StartOrDie(svc);
  ASSERT_NE(server, nullptr);
  // A: a held request that stays connected (must not be cancelled).
  auto client = std::async(std::launch::async, [&] {
    return Request(server->port(), "POST", "/embed", R"({"inputs": "hold me"})").status;
  });
  ASSERT_TRUE(svc.WaitHeld(1));
  EXPECT_EQ(server->in_flight(), 1u);
  // B: a raw client that sends a held request and goes away.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket raw(ioc);
  raw.connect({boost::asio::ip::make_address("127.0.0.1"), uint16_t(server->port())});
  std::string req =
      "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 19\r\n\r\n{\"inputs\": \"hold2\"}";
  boost::asio::write(raw, boost::asio::buffer(req));
  ASSERT_TRUE(svc.WaitHeld(2));
  raw.close();
  // The fake fails cancelled requests at once, so "held" drops back to 1.
  ASSERT_TRUE(FakeService::WaitFor([&] { return svc.Held() == 1; }));
  ASSERT_TRUE(FakeService::WaitFor([&] { return server->in_flight() == 1; }));
  auto rec = svc.Records();
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0], (std::pair<std::string, int>{"http:/embed", 499}));
  EXPECT_FALSE(svc.AnyHeldCancelled());
  svc.Release();
  EXPECT_EQ(client.get(), 200);
  ASSERT_TRUE(FakeService::WaitFor([&] { return server->in_flight() == 0; }));
}

TEST(HttpLifecycleTest, ShutdownWaitsForInFlightThenReturns) {
  FakeService svc;
  auto server = StartOrDie(svc);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  auto client = std::async(
      std::launch::async, [&] { return Request(port, "POST", "/embed", R"({"inputs": "hold"})"); });
  ASSERT_TRUE(svc.WaitHeld(1));
  server->StopAccepting();
  EXPECT_THROW(Request(port, "GET", "/health"), std::exception);  // refused
  std::atomic<bool> returned{false};
  auto shutdown = std::async(std::launch::async, [&] {
    server->Shutdown(Clock::now() + std::chrono::seconds(30));
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(returned.load());  // still waiting for the held request
  EXPECT_EQ(server->in_flight(), 1u);
  svc.Release();
  Response r = client.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.keep_alive);  // draining: the connection is closed after the reply
  EXPECT_EQ(r.Json(), Json::parse("[[4,1,0,0]]"));
  shutdown.get();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(server->in_flight(), 0u);
}

TEST(HttpLifecycleTest, ShutdownDeadlineDropsLateReplies) {
  FakeService svc;
  auto server = StartOrDie(svc, Threads(2));
  ASSERT_NE(server, nullptr);
  auto client = std::async(std::launch::async, [&] {
    try {
      return Request(server->port(), "POST", "/embed", R"({"inputs": "hold"})").status;
    } catch (const std::exception&) {
      return -1;  // connection closed without a reply
    }
  });
  ASSERT_TRUE(svc.WaitHeld(1));
  server->Shutdown(Clock::now() + std::chrono::milliseconds(100));
  EXPECT_EQ(client.get(), -1);
  svc.Release();  // the reply arrives after the server stopped: dropped, no crash
  ASSERT_TRUE(FakeService::WaitFor([&] { return server->in_flight() == 0; }));
  server.reset();
  auto rec = svc.Records();
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].second, 499);
}

// Raw bytes in, all of the server's bytes until it closes (or 10 s) out.
std::string RawExchange(int port, const std::string& bytes) {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), uint16_t(port)});
  net::write(s, net::buffer(bytes));
  std::string got;
  boost::system::error_code ec;
  net::read(s, net::dynamic_buffer(got), ec);  // until EOF
  return got;
}

TEST(HttpLifecycleTest, PipelinedRequestsAnsweredInOrderAndConnectionCloseHonoured) {
  FakeService svc;
  auto server = StartOrDie(svc);
  ASSERT_NE(server, nullptr);
  auto req = [](const std::string& body, bool close) {
    return "POST /embed HTTP/1.1\r\nHost: x\r\n" +
           std::string(close ? "Connection: close\r\n" : "") +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  std::string got = RawExchange(
      server->port(), req(R"({"inputs":"aa"})", false) + req(R"({"inputs":"bbbbb"})", true));
  size_t first = got.find("[[2,1,0,0]]"), second = got.find("[[5,1,0,0]]");
  EXPECT_NE(first, std::string::npos) << got;
  EXPECT_NE(second, std::string::npos) << got;
  EXPECT_LT(first, second);
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
}

TEST(HttpLifecycleTest, MalformedHttpIs400AndClosed) {
  FakeService svc;
  auto server = StartOrDie(svc);
  ASSERT_NE(server, nullptr);
  std::string got = RawExchange(server->port(), "GARBAGE\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
  EXPECT_NE(got.find("invalid_request"), std::string::npos) << got;
}

TEST(HttpLifecycleTest, TlsOptionsAreChecked) {
  FakeService svc;
  HttpOptions o;
  o.port = 0;
  o.tls_cert_file = "/nonexistent/cert.pem";
  o.tls_key_file = "/nonexistent/key.pem";
  auto s = HttpServer::Start(o, svc);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("/nonexistent/cert.pem"), std::string::npos);
  o.tls_key_file.clear();
  EXPECT_EQ(HttpServer::Start(o, svc).status().code(), StatusCode::kInvalidArgument);

  encserve::testing::TempDir dir;
  encserve::testing::WriteFile(dir / "bad.pem", "not a certificate");
  o.tls_cert_file = o.tls_key_file = dir / "bad.pem";
  s = HttpServer::Start(o, svc);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("certificate"), std::string::npos);
}

TEST(HttpLifecycleTest, HttpsRoundTripWithSelfSignedCert) {
  encserve::testing::TempDir dir;
  const std::string cert = dir / "cert.pem", key = dir / "key.pem";
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
      " -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl CLI not available";
  FakeService svc;
  HttpOptions o;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  auto server = StartOrDie(svc, o);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->tls());

  namespace net = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_verify_mode(net::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(stream).connect(
      {net::ip::make_address("127.0.0.1"), uint16_t(server->port())});
  stream.handshake(net::ssl::stream_base::client);
  beast::flat_buffer buf;
  for (int i = 0; i < 2; ++i) {  // keep-alive over TLS
    http::request<http::string_body> req(http::verb::post, "/embed", 11);
    req.set(http::field::host, "localhost");
    req.body() = R"({"inputs": "tls"})";
    req.prepare_payload();
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(Json::parse(res.body()), Json::parse("[[3,1,0,0]]"));
  }
  // A plain-HTTP client gets no HTTP reply from the TLS port.
  EXPECT_THROW(Request(server->port(), "GET", "/health"), std::exception);
}

}  // namespace
}  // namespace encserve::server
