// The JSON form of the metrics registry (/stats): the same values as the Prometheus text, labels
// unescaped into objects, non-finite values as null, histograms as per-bucket counts.
#include "server/metrics_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "server/metrics_registry.h"

namespace encserve::server {
namespace {

using nlohmann::json;

TEST(MetricsJson, SameValuesAsTheExposition) {
  MetricsRegistry r;
  r.AddCounter("requests_total", "Requests.\nBy \"route\".",
               {{"route", "http:/embed"}, {"code", "200"}})
      .Inc(3);
  r.AddCounter("requests_total", "", {{"route", "a\"b\\c\nd,e=f"}, {"code", "4"}}).Inc(0.5);
  r.AddGauge("nan_gauge", "Not a number.").Set(NAN);
  r.AddCallbackGauge("queue_depth", "Queued.", {}, [] { return 7.0; });
  Histogram& h = r.AddHistogram("latency_seconds", "Latency.", {0.005, 0.1, 1}, {{"route", "x"}});
  for (double v : {0.001, 0.005, 0.05, 0.5, 0.5, 3.0}) h.Observe(v);

  const json j = json::parse(MetricsJson(r.Snapshot(), 1733500000.25));
  EXPECT_EQ(j["time"].get<double>(), 1733500000.25);
  const json& m = j["metrics"];
  ASSERT_EQ(m.size(), 4u);

  const json& req = m["requests_total"];
  EXPECT_EQ(req["type"], "counter");
  EXPECT_EQ(req["help"], "Requests.\nBy \"route\".");
  ASSERT_EQ(req["samples"].size(), 2u);
  EXPECT_EQ(req["samples"][0]["labels"], (json{{"code", "200"}, {"route", "http:/embed"}}));
  EXPECT_EQ(req["samples"][0]["value"].get<double>(), 3.0);
  EXPECT_EQ(req["samples"][1]["labels"], (json{{"code", "4"}, {"route", "a\"b\\c\nd,e=f"}}));
  EXPECT_EQ(req["samples"][1]["value"].get<double>(), 0.5);

  EXPECT_TRUE(m["nan_gauge"]["samples"][0]["value"].is_null());
  EXPECT_EQ(m["queue_depth"]["samples"][0]["value"].get<double>(), 7.0);
  EXPECT_EQ(m["queue_depth"]["samples"][0]["labels"], json::object());

  const json& lat = m["latency_seconds"];
  EXPECT_EQ(lat["type"], "histogram");
  EXPECT_EQ(lat["bounds"], (json{0.005, 0.1, 1, nullptr}));  // null: +Inf
  EXPECT_EQ(lat["samples"][0]["labels"], (json{{"route", "x"}}));
  EXPECT_EQ(lat["samples"][0]["counts"], (json{2, 1, 2, 1}));  // per bucket, not cumulative
  EXPECT_DOUBLE_EQ(lat["samples"][0]["sum"].get<double>(), 4.056);

  // The exposition is printed from the same snapshot form.
  const std::string text = r.Exposition();
  EXPECT_NE(text.find("requests_total{code=\"200\",route=\"http:/embed\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"x\",le=\"1\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("queue_depth 7\n"), std::string::npos);
}

TEST(MetricsJson, EmptyRegistryAndControlCharacters) {
  MetricsRegistry r;
  EXPECT_EQ(json::parse(MetricsJson(r.Snapshot(), 0))["metrics"], json::object());
  // (A backslash in a value is escaped in the label text; a control character is not.)
  EXPECT_EQ(json::parse(LabelsJson("a=\"x\\\\ty\x01\"")), (json{{"a", "x\\ty\x01"}}));
  EXPECT_EQ(json::parse(LabelsJson("")), json::object());
}

}  // namespace
}  // namespace encserve::server
