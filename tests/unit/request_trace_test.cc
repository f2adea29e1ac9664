// Request ids, traceparent, Server-Timing and the access log's lines (request_trace.h), and the
// CORS policy (cors.h).
#include "server/request_trace.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "server/cors.h"

namespace encserve::server {
namespace {

constexpr const char* kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool IsHexId(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST(RequestId, ClientIdsAreCheckedAndNewOnesAreUniqueHex) {
  EXPECT_TRUE(ValidRequestId("abc-123"));
  EXPECT_TRUE(ValidRequestId(std::string(128, 'x')));
  EXPECT_FALSE(ValidRequestId(std::string(129, 'x')));
  EXPECT_FALSE(ValidRequestId(""));
  EXPECT_FALSE(ValidRequestId("has space"));
  EXPECT_FALSE(ValidRequestId("quote\""));
  EXPECT_FALSE(ValidRequestId("back\\slash"));
  EXPECT_FALSE(ValidRequestId("tab\t"));
  EXPECT_FALSE(ValidRequestId("caf\xc3\xa9"));
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) {
    std::string id = NewRequestId();
    ASSERT_TRUE(IsHexId(id)) << id;
    ASSERT_TRUE(seen.insert(id).second) << "duplicate " << id;
  }
}

TEST(RequestId, TraceparentFollowsW3C) {
  EXPECT_EQ(TraceIdOf(kTraceparent), "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may append fields; version 00 may not; ff is forbidden.
  EXPECT_TRUE(TraceIdOf("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
  EXPECT_FALSE(TraceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
  EXPECT_FALSE(TraceIdOf("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(TraceIdOf("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));  // uppercase
  EXPECT_FALSE(TraceIdOf("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(TraceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(TraceIdOf("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"));  // short
  EXPECT_FALSE(TraceIdOf(""));
  // The id: the client's, else the trace id, else a new one.
  EXPECT_EQ(ChooseRequestId("mine", kTraceparent), "mine");
  EXPECT_EQ(ChooseRequestId("not mine", kTraceparent), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_TRUE(IsHexId(ChooseRequestId("", "garbage")));
  // With the traceparent kept (as received) only when valid.
  RequestIds ids = IdsOf("mine", kTraceparent);
  EXPECT_EQ(ids.id, "mine");
  EXPECT_EQ(ids.traceparent, kTraceparent);
  ids = IdsOf("", "00-garbage");
  EXPECT_TRUE(IsHexId(ids.id));
  EXPECT_EQ(ids.traceparent, "");
}

TEST(ServerTiming, MillisecondsPerStepAndTheTotal) {
  RequestTiming t{0.0005, 0.00125, 0.002, 3, 30};
  EXPECT_EQ(ServerTimingValue(&t, 0.004),
            "tokenize;dur=0.500, queue;dur=1.250, infer;dur=2.000, total;dur=4.000");
  RequestTiming none;  // never reached the model
  EXPECT_EQ(ServerTimingValue(&none, 0.0001), "total;dur=0.100");
  EXPECT_EQ(ServerTimingValue(nullptr, 0.0001), "total;dur=0.100");
}

TEST(AccessLogLine, IsOneJsonObjectWithEveryField) {
  RequestTiming t{0.0005, 0.00125, 0.002, 3, 30};
  const std::string line =
      AccessLogLine({"id\"1", kTraceparent, "http:/embed", 7, 200, -1, &t, 0.004});
  ASSERT_EQ(line.back(), '\n');
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["id"], "id\"1");  // escaped in the line, intact once parsed
  EXPECT_EQ(j["traceparent"], kTraceparent);
  EXPECT_EQ(j["route"], "http:/embed");
  EXPECT_EQ(j["client"], 7);
  EXPECT_EQ(j["status"], 200);
  EXPECT_FALSE(j.contains("grpc_code"));
  EXPECT_EQ(j["items"], 3);
  EXPECT_EQ(j["tokens"], 30);
  EXPECT_EQ(j["tokenize_us"], 500);
  EXPECT_EQ(j["queue_us"], 1250);
  EXPECT_EQ(j["infer_us"], 2000);
  EXPECT_EQ(j["total_us"], 4000);
  const std::string ts = j["ts"];
  EXPECT_EQ(ts.size(), 24u) << ts;  // 2026-12-07T12:00:00.123Z
  EXPECT_EQ(ts.back(), 'Z');

  auto g = nlohmann::json::parse(
      AccessLogLine({"x", "", "grpc:encserve.v1.Embed", 1, 429, 8, nullptr, 0.001}));
  EXPECT_EQ(g["grpc_code"], 8);
  EXPECT_FALSE(g.contains("traceparent"));
  EXPECT_EQ(g["items"], 0);
}

TEST(AccessLog, ConcurrentWritersLeaveWholeLines) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("encserve-access-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  {
    auto log = AccessLog::Open(path.string());
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    std::vector<std::thread> threads;
    for (int k = 0; k < 8; ++k) {
      threads.emplace_back([&, k] {
        RequestTiming t{0, 0, 0, k, k};
        const std::string id = "writer-" + std::to_string(k);
        for (int i = 0; i < 500; ++i) (*log)->Write({id, "", "http:/embed", 1, 200, -1, &t, 0});
      });
    }
    for (auto& t : threads) t.join();
  }
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  std::vector<int> per_writer(8, 0);
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    ++per_writer[j["items"].get<int>()];
    ++lines;
  }
  EXPECT_EQ(lines, 4000);
  for (int n : per_writer) EXPECT_EQ(n, 500);
  std::filesystem::remove(path);
  auto bad = AccessLog::Open("/nonexistent-dir/access.log");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/nonexistent-dir/access.log"), std::string::npos);
}

TEST(AccessLog, ProbesAndMonitoringAreNotLogged) {
  for (const char* r :
       {"http:/health", "http:/ready", "http:/metrics", "http:/stats", "http:/dashboard"}) {
    EXPECT_TRUE(IsMonitoringRoute(r)) << r;
  }
  for (const char* r : {"http:/embed", "http:/info", "http:other", "grpc:encserve.v1.Embed"}) {
    EXPECT_FALSE(IsMonitoringRoute(r)) << r;
  }
}

HeaderList Headers(const Cors& cors, std::string_view origin) {
  HeaderList h;
  cors.AddReplyHeaders(origin, &h);
  return h;
}

std::string Find(const HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h) {
    if (k == name) return v;
  }
  return "<none>";
}

TEST(Cors, OffByDefaultExactOriginsOrAny) {
  const Cors off;
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(Headers(off, "https://a.example").empty());
  EXPECT_FALSE(off.IsPreflight("OPTIONS", "https://a.example", "POST"));

  const Cors one({"https://a.example"});
  EXPECT_TRUE(one.IsPreflight("OPTIONS", "https://a.example", "POST"));
  EXPECT_FALSE(one.IsPreflight("OPTIONS", "https://a.example", ""));  // a plain OPTIONS
  EXPECT_FALSE(one.IsPreflight("POST", "https://a.example", "POST"));
  HeaderList h = Headers(one, "https://a.example");
  EXPECT_EQ(Find(h, "Access-Control-Allow-Origin"), "https://a.example");
  EXPECT_NE(Find(h, "Access-Control-Expose-Headers").find("Server-Timing"), std::string::npos);
  EXPECT_EQ(Find(h, "Vary"), "Origin");
  h = Headers(one, "https://b.example");  // not allowed: no grant, still Vary
  EXPECT_EQ(Find(h, "Access-Control-Allow-Origin"), "<none>");
  EXPECT_EQ(Find(h, "Vary"), "Origin");
  EXPECT_FALSE(one.Allows("https://a.example:8443"));
  EXPECT_TRUE(one.PreflightHeaders("https://b.example").empty());
  h = one.PreflightHeaders("https://a.example");
  EXPECT_NE(Find(h, "Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
  EXPECT_NE(Find(h, "Access-Control-Allow-Methods").find("POST"), std::string::npos);

  const Cors any({"*"});
  EXPECT_EQ(Find(Headers(any, "https://x.example"), "Access-Control-Allow-Origin"), "*");
  EXPECT_TRUE(Headers(any, "").empty());  // not a CORS request
}

TEST(Cors, OriginsInTheConfigAreChecked) {
  for (const char* ok :
       {"*", "https://app.example.com", "http://localhost:3000", "http://[::1]:80"}) {
    EXPECT_TRUE(Cors::ValidOrigin(ok)) << ok;
  }
  for (const char* bad : {"", "app.example.com", "https://", "https://app.example.com/",
                          "https://App.example.com", "ftp://x", "https://x:"}) {
    EXPECT_FALSE(Cors::ValidOrigin(bad)) << bad;
  }
}

}  // namespace
}  // namespace encserve::server
