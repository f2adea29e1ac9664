// Following a request through the HTTP front end over a FakeService (which reports fixed times:
// 0.5 ms tokenising, 1 ms queued, 2 ms computing): X-Request-Id, traceparent, Server-Timing,
// the access log and CORS on every kind of reply.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "http_test_util.h"
#include "server/http/http_server.h"

namespace encserve::server {
namespace {

using encserve::testing::FakeService;
using encserve::testing::Request;
using encserve::testing::Response;
using Json = nlohmann::json;

constexpr const char* kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool IsHexId(const std::string& id) {
  return std::regex_match(id, std::regex("[0-9a-f]{32}"));
}

class HttpTraceTest : public ::testing::Test {
 protected:
  void Start(HttpOptions o = {}) {
    server_.reset();
    o.port = 0;
    auto s = HttpServer::Start(o, svc_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  void SetUp() override { Start(); }
  Response Post(const std::string& target, const std::string& body,
                const std::map<std::string, std::string>& headers = {}) {
    return Request(server_->port(), "POST", target, body, headers);
  }

  FakeService svc_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpTraceTest, RequestIdIsTheClientsTheTraceIdOrNew) {
  Response r = Post("/embed", R"({"inputs": "a"})", {{"X-Request-Id", "order-42/item:7"}});
  EXPECT_EQ(r.headers["X-Request-Id"], "order-42/item:7");
  r = Post("/embed", R"({"inputs": "a"})", {{"traceparent", kTraceparent}});
  EXPECT_EQ(r.headers["X-Request-Id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  r = Post("/embed", R"({"inputs": "a"})", {{"X-Request-Id", std::string(200, 'x')}});
  EXPECT_TRUE(IsHexId(r.headers["X-Request-Id"])) << "an overlong id is replaced";
  const std::string a = Post("/embed", R"({"inputs": "a"})").headers["X-Request-Id"];
  const std::string b = Post("/embed", R"({"inputs": "a"})").headers["X-Request-Id"];
  EXPECT_TRUE(IsHexId(a)) << a;
  EXPECT_NE(a, b);
  // Every reply has one: errors, probes, a body over the limit, a refusal from the head.
  EXPECT_TRUE(IsHexId(Post("/embed", "{not json").headers["X-Request-Id"]));
  EXPECT_TRUE(IsHexId(Request(server_->port(), "GET", "/health").headers["X-Request-Id"]));
  EXPECT_TRUE(IsHexId(Request(server_->port(), "GET", "/nope").headers["X-Request-Id"]));
  HttpOptions small;
  small.max_body_bytes = 1024;
  Start(small);
  r = Post("/embed", std::string(4096, ' '), {{"X-Request-Id", "big-1"}});
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.headers["X-Request-Id"], "big-1");
  svc_.SetAdmitAny(ResourceExhausted("overloaded"));
  r = Post("/embed", R"({"inputs": "a"})", {{"X-Request-Id", "refused-1"}});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.headers["X-Request-Id"], "refused-1");
  EXPECT_EQ(r.headers["Server-Timing"].rfind("total;dur=", 0), 0u) << "never reached the model";
}

TEST_F(HttpTraceTest, ServerTimingCarriesTheServicesTimes) {
  Response r = Post("/embed", R"({"inputs": ["a", "bc"]})");
  ASSERT_EQ(r.status, 200);
  std::smatch m;
  const std::string st = r.headers["Server-Timing"];
  ASSERT_TRUE(std::regex_match(st, m,
                               std::regex("tokenize;dur=0\\.500, queue;dur=1\\.000, "
                                          "infer;dur=2\\.000, total;dur=([0-9]+\\.[0-9]{3})")))
      << st;
  EXPECT_GE(std::stod(m[1]), 0.0);
  r = Request(server_->port(), "GET", "/info");
  EXPECT_TRUE(std::regex_match(r.headers["Server-Timing"], std::regex("total;dur=[0-9.]+")))
      << r.headers["Server-Timing"];
}

// One line per API request when the reply is done; probes and monitoring are left out.
TEST_F(HttpTraceTest, AccessLogHasALinePerApiRequest) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("encserve-http-access-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  HttpOptions o;
  auto log = AccessLog::Open(path.string());
  ASSERT_TRUE(log.ok());
  o.access_log = *log;
  Start(o);
  Post("/embed", R"({"inputs": ["a", "bc"]})",
       {{"X-Request-Id", "r1"}, {"traceparent", kTraceparent}});
  Request(server_->port(), "GET", "/health");
  Request(server_->port(), "GET", "/metrics");
  Request(server_->port(), "GET", "/stats");
  Post("/embed", "{not json", {{"X-Request-Id", "r2"}});
  Request(server_->port(), "GET", "/nope", "", {{"X-Request-Id", "r3"}});
  std::vector<Json> lines;
  ASSERT_TRUE(FakeService::WaitFor([&] {
    lines.clear();
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) lines.push_back(Json::parse(line));
    return lines.size() >= 3;
  }));
  ASSERT_EQ(lines.size(), 3u);
  std::map<std::string, Json> by_id;
  for (const Json& j : lines) by_id[j["id"]] = j;
  const Json& ok = by_id["r1"];
  EXPECT_EQ(ok["route"], "http:/embed");
  EXPECT_EQ(ok["status"], 200);
  EXPECT_EQ(ok["traceparent"], kTraceparent);
  EXPECT_EQ(ok["items"], 2);
  EXPECT_EQ(ok["tokens"], 3);
  EXPECT_EQ(ok["tokenize_us"], 500);
  EXPECT_EQ(ok["queue_us"], 1000);
  EXPECT_EQ(ok["infer_us"], 2000);
  EXPECT_GT(ok["client"], 0);
  EXPECT_EQ(by_id["r2"]["status"], 400);
  EXPECT_EQ(by_id["r2"]["items"], 0);
  EXPECT_EQ(by_id["r3"]["status"], 404);
  EXPECT_EQ(by_id["r3"]["route"], "http:other");
  server_.reset();
  std::filesystem::remove(path);
}

TEST_F(HttpTraceTest, CorsOffAnswersNoOriginAndNoPreflight) {
  Response r = Post("/embed", R"({"inputs": "a"})", {{"Origin", "https://a.example"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.count("Access-Control-Allow-Origin"), 0u);
  r = Request(server_->port(), "OPTIONS", "/embed", "",
              {{"Origin", "https://a.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(r.status, 405);
}

TEST_F(HttpTraceTest, CorsGrantsConfiguredOriginsEvenWithAnApiKey) {
  HttpOptions o;
  o.cors_origins = {"https://a.example"};
  o.api_key = "s3cret";
  Start(o);
  const std::map<std::string, std::string> preflight = {
      {"Origin", "https://a.example"},
      {"Access-Control-Request-Method", "POST"},
      {"Access-Control-Request-Headers", "authorization, content-type"}};
  Response r = Request(server_->port(), "OPTIONS", "/embed", "", preflight);
  EXPECT_EQ(r.status, 204) << "a preflight carries no key";
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.headers["Access-Control-Allow-Origin"], "https://a.example");
  EXPECT_NE(r.headers["Access-Control-Allow-Headers"].find("Authorization"), std::string::npos);
  EXPECT_NE(r.headers["Access-Control-Allow-Methods"].find("POST"), std::string::npos);
  r = Post("/embed", R"({"inputs": "a"})",
           {{"Origin", "https://a.example"}, {"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Access-Control-Allow-Origin"], "https://a.example");
  EXPECT_NE(r.headers["Access-Control-Expose-Headers"].find("X-Request-Id"), std::string::npos);
  EXPECT_EQ(r.headers["Vary"], "Origin");
  // Errors are readable by the page too (else the browser hides a 401 as a network error).
  r = Post("/embed", R"({"inputs": "a"})", {{"Origin", "https://a.example"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.headers["Access-Control-Allow-Origin"], "https://a.example");
  // Another origin: no grant.
  r = Request(server_->port(), "OPTIONS", "/embed", "",
              {{"Origin", "https://b.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.headers.count("Access-Control-Allow-Origin"), 0u);
  EXPECT_EQ(r.headers.count("Access-Control-Allow-Methods"), 0u);
}

}  // namespace
}  // namespace encserve::server
