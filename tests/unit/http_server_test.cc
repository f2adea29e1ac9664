// HTTP front end over a FakeService: routes, JSON shapes, errors, auth, keep-alive,
// concurrency, disconnects, deadlines, shutdown and TLS.
#include "server/http/http_server.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "http_test_util.h"
#include "server/http/http_json.h"

namespace encserve::server {
namespace {

using encserve::testing::FakeService;
using encserve::testing::HttpClient;
using encserve::testing::Request;
using encserve::testing::Response;
using Json = nlohmann::json;

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpOptions o = {}) {
    o.port = 0;
    auto s = HttpServer::Start(o, svc);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(*s);
    port = server->port();
  }
  void SetUp() override { StartServer(); }
  Response Post(const std::string& target, const std::string& body,
                const std::map<std::string, std::string>& headers = {}) {
    return Request(port, "POST", target, body, headers);
  }
  void ExpectError(const Response& r, int status, const std::string& type) {
    EXPECT_EQ(r.status, status) << r.body;
    Json j = Json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.value("type", ""), type) << r.body;
    EXPECT_TRUE(j["error"].is_string()) << r.body;
  }

  FakeService svc;  // outlives the server
  std::unique_ptr<HttpServer> server;
  int port = 0;
};

TEST_F(HttpServerTest, EmbedReturnsOneRowPerInputInOrder) {
  Response r = Post("/embed", R"({"inputs": "abc"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_EQ(r.Json(), Json::parse("[[3, 1, 0, 0]]"));

  r = Post("/embed", R"({"inputs": ["a", "abcde", "ab"], "normalize": false,
                         "truncate": false, "dimensions": 2})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json(), Json::parse("[[1,1,0,0],[5,1,0,0],[2,1,0,0]]"));
  auto p = svc.LastEmbed();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->texts, (std::vector<std::string>{"a", "abcde", "ab"}));
  EXPECT_EQ(p->normalize, std::optional<bool>(false));
  EXPECT_FALSE(p->truncate);
  EXPECT_EQ(p->dimensions, std::optional<int>(2));
}

TEST_F(HttpServerTest, OpenAiEmbeddingsFloatAndBase64) {
  Response r = Post("/v1/embeddings", R"({"input": ["hello", "hi"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.Json();
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "fake-model");  // absent: the served model
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["total_tokens"], 7);
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["object"], "embedding");
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_EQ(j["data"][1]["embedding"], Json::parse("[2, 1, 0, 0]"));

  r = Post("/v1/embeddings",
           R"({"input": "hello", "model": "other", "encoding_format": "base64"})");
  ASSERT_EQ(r.status, 200) << r.body;
  j = r.Json();
  EXPECT_EQ(j["model"], "other");
  auto bytes = http_json::Base64Decode(j["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(bytes.has_value());
  ASSERT_EQ(bytes->size(), 4 * sizeof(float));
  float v[4];
  std::memcpy(v, bytes->data(), sizeof(v));
  EXPECT_EQ(v[0], 5.0f);
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_EQ(v[2], 0.0f);

  ExpectError(Post("/v1/embeddings", R"({"input": "x", "encoding_format": "int8"})"), 400,
              "invalid_request");
}

TEST(HttpJsonTest, Base64KnownVectorsAndFloats) {
  EXPECT_EQ(http_json::Base64("Man", 3), "TWFu");
  EXPECT_EQ(http_json::Base64("Ma", 2), "TWE=");
  EXPECT_EQ(http_json::Base64("M", 1), "TQ==");
  EXPECT_EQ(http_json::Base64Decode("TWE="), std::optional<std::string>("Ma"));
  const float one = 1.0f;  // 0x3f800000, little-endian bytes 00 00 80 3f
  EXPECT_EQ(http_json::Base64Floats(&one, 1), "AACAPw==");
  std::string s;
  http_json::AppendFloat(&s, 0.1f);
  EXPECT_EQ(s, "0.1");
}

TEST_F(HttpServerTest, RerankSortedWithTextAndTopN) {
  Response r = Post("/rerank", R"({"query": "q", "texts": ["bb", "dddd", "a"],
                                   "return_text": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json(), Json::parse(R"([{"index":1,"score":4,"text":"dddd"},
      {"index":0,"score":2,"text":"bb"},{"index":2,"score":1,"text":"a"}])"));
  r = Post("/rerank", R"({"query": "q", "texts": ["bb", "dddd", "a"], "top_n": 1})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json(), Json::parse(R"([{"index":1,"score":4}])"));
}

TEST_F(HttpServerTest, SimilarityScoreTokenize) {
  Response r =
      Post("/similarity", R"({"inputs": {"source_sentence": "abc", "sentences": ["abc", "a"]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json(), Json::parse("[1, 0.33333334]"));

  r = Post("/score", R"({"pairs": [["a", "bc"], ["", "x"]], "raw_scores": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json(), Json::parse(R"({"scores": [3, 1]})"));

  r = Post("/tokenize", R"({"inputs": "hi"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json(), Json::parse(R"([[{"id":101,"text":"[CLS]","special":true},
      {"id":104,"text":"h","special":false},{"id":105,"text":"i","special":false},
      {"id":102,"text":"[SEP]","special":true}]])"));
  r = Post("/tokenize", R"({"inputs": ["a", "b"], "add_special_tokens": false})");
  EXPECT_EQ(r.Json(), Json::parse(R"([[{"id":97,"text":"a","special":false}],
      [{"id":98,"text":"b","special":false}]])"));
}

TEST_F(HttpServerTest, HealthReadyInfoMetrics) {
  Response r = Request(port, "GET", "/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Json()["status"], "ok");
  EXPECT_EQ(Request(port, "GET", "/ready").status, 200);
  svc.ready = false;
  ExpectError(Request(port, "GET", "/ready"), 503, "unavailable");
  EXPECT_EQ(Request(port, "GET", "/health").status, 200);
  r = Request(port, "GET", "/info");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Json()["model_id"], "fake-model");
  EXPECT_EQ(r.Json()["embedding_dim"], 4);
  r = Request(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "text/plain; version=0.0.4");
  EXPECT_EQ(r.body, "encserve_requests_total 7\n");
  r = Request(port, "GET", "/stats");  // the same metrics as JSON (Service::StatsJson)
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_EQ(r.Json()["metrics"]["encserve_requests_total"]["samples"][0]["value"], 7);
  r = Request(port, "GET", "/dashboard");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<title>encserve dashboard</title>"), std::string::npos);
  EXPECT_NE(r.body.find("fetch(path"), std::string::npos);  // the page's script, embedded whole
  EXPECT_NE(r.body.find("</html>"), std::string::npos);
  ExpectError(Post("/stats", "{}"), 405, "method_not_allowed");
}

TEST_F(HttpServerTest, ClientErrorsAre400WithType) {
  ExpectError(Post("/embed", "{not json"), 400, "invalid_request");
  ExpectError(Post("/embed", ""), 400, "invalid_request");
  ExpectError(Post("/embed", "[1, 2]"), 400, "invalid_request");
  ExpectError(Post("/embed", R"({"text": "a"})"), 400, "invalid_request");
  ExpectError(Post("/embed", R"({"inputs": 5})"), 400, "invalid_request");
  ExpectError(Post("/embed", R"({"inputs": ["a", 2]})"), 400, "invalid_request");
  ExpectError(Post("/embed", R"({"inputs": "a", "normalize": "yes"})"), 400, "invalid_request");
  ExpectError(Post("/embed", R"({"inputs": "a", "dimensions": 1.5})"), 400, "invalid_request");
  ExpectError(Post("/rerank", R"({"query": "q"})"), 400, "invalid_request");
  ExpectError(Post("/score", R"({"pairs": [["a"]]})"), 400, "invalid_request");
  ExpectError(Post("/similarity", R"({"inputs": "a"})"), 400, "invalid_request");
  ExpectError(Post("/embed", R"({"inputs": "a"})", {{"X-Request-Timeout-Ms", "soon"}}), 400,
              "invalid_request");
  ExpectError(Request(port, "GET", "/nope"), 404, "not_found");
  ExpectError(Request(port, "GET", "/embed"), 405, "method_not_allowed");
  ExpectError(Post("/health", "{}"), 405, "method_not_allowed");
  EXPECT_EQ(svc.LastEmbed(), std::nullopt);  // nothing reached the service
}

TEST_F(HttpServerTest, OversizeBodyIs413) {
  server.reset();
  HttpOptions o;
  o.max_body_bytes = 1024;
  StartServer(o);
  std::string big = R"({"inputs": ")" + std::string(2000, 'x') + "\"}";
  ExpectError(Post("/embed", big), 413, "payload_too_large");
  EXPECT_EQ(Post("/embed", R"({"inputs": "ok"})").status, 200);
}

struct ServiceErrorCase {
  Status status;
  int http;
  const char* type;
};

TEST_F(HttpServerTest, ServiceErrorsMapToStatusAndType) {
  const ServiceErrorCase cases[] = {
      {InvalidArgument("empty text"), 422, "validation"},
      {FailedPrecondition("cross-encoder"), 422, "validation"},
      {OutOfRange("too many texts"), 413, "payload_too_large"},
      {ResourceExhausted("queue full"), 429, "overloaded"},
      {Unavailable("shutting down"), 503, "unavailable"},
      {DeadlineExceeded("late"), 504, "timeout"},
      {Internal("boom"), 500, "internal"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.status.ToString());
    svc.SetFail(c.status);
    Response r = Post("/embed", R"({"inputs": "a"})");
    ExpectError(r, c.http, c.type);
    EXPECT_EQ(r.Json()["error"], c.status.message());
    EXPECT_EQ(r.headers.count("Retry-After"), c.http == 429 ? 1u : 0u);
    if (c.http == 429) {
      EXPECT_EQ(r.headers["Retry-After"], "1");
    }
    ExpectError(Post("/tokenize", R"({"inputs": "a"})"), c.http, c.type);
  }
  svc.SetFail(std::nullopt);
}

TEST_F(HttpServerTest, ApiKeyGuardsAllButHealthReadyMetrics) {
  server.reset();
  HttpOptions o;
  o.api_key = "s3cret";
  StartServer(o);
  ExpectError(Post("/embed", R"({"inputs": "a"})"), 401, "unauthorized");
  ExpectError(Post("/embed", R"({"inputs": "a"})", {{"Authorization", "Bearer wrong!"}}), 401,
              "unauthorized");
  ExpectError(Post("/embed", R"({"inputs": "a"})", {{"Authorization", "s3cret"}}), 401,
              "unauthorized");
  ExpectError(Request(port, "GET", "/info"), 401, "unauthorized");
  EXPECT_EQ(Post("/embed", R"({"inputs": "a"})", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(Request(port, "GET", "/health").status, 200);
  EXPECT_EQ(Request(port, "GET", "/ready").status, 200);
  EXPECT_EQ(Request(port, "GET", "/metrics").status, 200);
  EXPECT_EQ(Request(port, "GET", "/stats").status, 200);      // as /metrics (metrics_open)
  EXPECT_EQ(Request(port, "GET", "/dashboard").status, 200);  // a page without data
}

// With metrics_open off, /stats needs the key like /metrics; the dashboard page stays open (it
// asks for the key, then reads /stats with it).
TEST_F(HttpServerTest, MetricsClosedGuardsStatsButNotTheDashboardPage) {
  server.reset();
  HttpOptions o;
  o.api_key = "s3cret";
  o.metrics_open = false;
  StartServer(o);
  ExpectError(Request(port, "GET", "/metrics"), 401, "unauthorized");
  ExpectError(Request(port, "GET", "/stats"), 401, "unauthorized");
  EXPECT_EQ(Request(port, "GET", "/stats", "", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(Request(port, "GET", "/dashboard").status, 200);
}

// Under overload a request that queues model work is refused from its head: 429 with
// Retry-After, its body read but not parsed (a malformed one is refused, not a 400; the
// Service never sees it), and the keep-alive connection stays in step. Without the API key
// it is still 401, and routes that queue nothing (/tokenize) are served as usual.
TEST_F(HttpServerTest, OverloadIsRefusedFromTheHeadBeforeTheBodyIsParsed) {
  server.reset();
  HttpOptions o;
  o.api_key = "k";
  StartServer(o);
  const std::map<std::string, std::string> key = {{"Authorization", "Bearer k"}};
  svc.SetAdmitAny(ResourceExhausted("overloaded: test"));
  HttpClient c(port);
  for (const char* target : {"/embed", "/v1/embeddings", "/rerank", "/similarity", "/score"}) {
    Response r = c.Send("POST", target, "{not json", key);
    ExpectError(r, 429, "overloaded");
    EXPECT_EQ(r.headers["Retry-After"], "1") << target;
    EXPECT_TRUE(r.keep_alive) << target;
  }
  EXPECT_FALSE(svc.LastEmbed().has_value());
  EXPECT_EQ(svc.AdmitAnyCalls(), 5);
  ExpectError(c.Send("POST", "/embed", R"({"inputs": "a"})"), 401, "unauthorized");
  ExpectError(c.Send("POST", "/tokenize", "{not json", key), 400, "invalid_request");
  EXPECT_EQ(c.Send("POST", "/tokenize", R"({"inputs": "ab"})", key).status, 200);
  svc.SetAdmitAny(std::nullopt);
  Response r = c.Send("POST", "/embed", R"({"inputs": "abc"})", key);  // the same connection
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json(), Json::parse("[[3, 1, 0, 0]]"));
  auto refused = [&] {
    int n = 0;
    for (const auto& [route, code] : svc.Records()) n += code == 429 ? 1 : 0;
    return n;
  };
  // Each refusal recorded once, like any other answer (when its write completes).
  EXPECT_TRUE(FakeService::WaitFor([&] { return refused() >= 5; }));
  EXPECT_EQ(refused(), 5);
}

TEST_F(HttpServerTest, DeadlineFromOptionAndHeaderGives504) {
  server.reset();
  HttpOptions o;
  o.request_timeout = std::chrono::milliseconds(300);
  StartServer(o);
  auto before = Clock::now();
  ExpectError(Post("/embed", R"({"inputs": "hold"})"), 504, "timeout");
  auto d = svc.LastDeadline() - before;
  EXPECT_GE(d, std::chrono::milliseconds(300));
  EXPECT_LT(d, std::chrono::seconds(10));
  // The header shortens it (never lengthens beyond request_timeout).
  before = Clock::now();
  ExpectError(Post("/embed", R"({"inputs": "hold"})", {{"X-Request-Timeout-Ms", "50"}}), 504,
              "timeout");
  EXPECT_LT(svc.LastDeadline() - before, std::chrono::milliseconds(300));
  EXPECT_GE(svc.LastDeadline() - before, std::chrono::milliseconds(50));
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpClient c(port);
  for (int i = 1; i <= 5; ++i) {
    Response r = c.Send("POST", "/embed", Json{{"inputs", std::string(i, 'z')}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(r.Json()[0][0], i);
  }
  EXPECT_EQ(c.Send("GET", "/health").status, 200);
  EXPECT_EQ(c.Send("GET", "/nope").status, 404);  // errors keep the connection too
  EXPECT_EQ(c.Send("POST", "/embed", "{bad").status, 400);
  EXPECT_EQ(c.Send("POST", "/embed", R"({"inputs": "abc"})").Json()[0][0], 3);
}

}  // namespace
}  // namespace encserve::server

namespace encserve::server {
namespace {

// curl sends `Expect: 100-continue` for bodies over 1 KiB and waits for the interim reply.
TEST(HttpExpectTest, AnswersExpect100ContinueBeforeTheBody) {
  encserve::testing::FakeService svc;
  HttpOptions o;
  o.port = 0;
  auto server = HttpServer::Start(o, svc);
  ASSERT_TRUE(server.ok());
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), uint16_t((*server)->port())});
  const std::string body = R"({"inputs": "abcd"})";
  const std::string head =
      "POST /embed HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  net::write(s, net::buffer(head));
  std::string got;
  net::read_until(s, net::dynamic_buffer(got), "\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << got;
  net::write(s, net::buffer(body));
  boost::beast::flat_buffer buf;
  if (size_t end = got.find("\r\n\r\n") + 4; end < got.size()) {  // (over-read bytes)
    auto n = net::buffer_copy(buf.prepare(got.size() - end), net::buffer(got.substr(end)));
    buf.commit(n);
  }
  boost::beast::http::response<boost::beast::http::string_body> res;
  boost::beast::http::read(s, buf, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(nlohmann::json::parse(res.body()), nlohmann::json::parse("[[4,1,0,0]]"));
}

}  // namespace
}  // namespace encserve::server
