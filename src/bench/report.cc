#include "bench/report.h"

#include <cstdio>

namespace encserve::bench {

nlohmann::ordered_json ReportJson(const BenchParams& p, const LoadResult& r) {
  nlohmann::ordered_json j;
  auto& params = j["params"];
  params["protocol"] = p.protocol;
  if (p.protocol == "grpc") params["api"] = p.api;
  params["target"] = p.target;
  params["workload"] = p.workload;
  params["data_dir"] = p.data_dir;
  params["mode"] = r.open_loop ? "open" : "closed";
  params["concurrency"] = p.concurrency;
  if (r.open_loop) params["max_outstanding"] = p.max_outstanding;
  params["batch_size"] = p.batch;
  params["requests"] = p.requests;
  params["duration_s"] = p.duration_s;
  params["warmup_requests"] = p.warmup_requests;
  params["warmup_s"] = p.warmup_s;
  params["rate"] = p.rate;
  params["seed"] = p.seed;
  if (p.protocol == "grpc") params["channels"] = p.channels;
  params["client_threads"] = p.client_threads;
  params["timeout_ms"] = p.timeout_ms;

  j["mode"] = r.open_loop ? "open" : "closed";
  auto& req = j["requests"];
  req["sent"] = r.sent;
  req["ok"] = r.ok;
  req["errors"] = r.errors;
  req["errors_by_code"] = nlohmann::ordered_json::object();
  for (const auto& [code, n] : r.errors_by_code) req["errors_by_code"][code] = n;
  req["first_error"] = nlohmann::ordered_json::object();
  for (const auto& [code, msg] : r.first_error) req["first_error"][code] = msg;
  j["items"] = r.items;
  j["seconds"] = r.seconds;
  j["requests_per_s"] = r.requests_per_s;
  j["items_per_s"] = r.items_per_s;
  j["latency_ms"] = ToJson(r.latency);
  j["warmup"] = {{"sent", r.warmup_sent}, {"errors", r.warmup_errors}};
  if (r.open_loop) {
    auto& o = j["open_loop"];
    o["scheduled"] = r.scheduled;
    o["offered_rate"] = r.offered_rate;
    o["late"] = r.late;
    o["not_sent"] = r.not_sent;
    o["mean_send_delay_ms"] = r.mean_send_delay_ms;
    o["max_send_delay_ms"] = r.max_send_delay_ms;
  }
  return j;
}

std::string ReportText(const BenchParams& p, const LoadResult& r) {
  char buf[1024];
  std::string s;
  const std::string proto = p.protocol == "grpc" ? "grpc/" + p.api : p.protocol;
  char mode[96];
  if (r.open_loop) {
    std::snprintf(mode, sizeof mode, "open-loop rate=%g/s max_outstanding=%d", p.rate,
                  p.max_outstanding);
  } else {
    std::snprintf(mode, sizeof mode, "closed-loop concurrency=%d", p.concurrency);
  }
  std::snprintf(buf, sizeof buf, "bench: %s %s workload=%s batch=%d target=%s\n", proto.c_str(),
                mode, p.workload.c_str(), p.batch, p.target.c_str());
  s += buf;
  std::snprintf(buf, sizeof buf,
                "  requests: %ld sent, %ld ok, %ld errors in %.3f s (warm-up: %ld sent, %ld "
                "errors, excluded)\n",
                r.sent, r.ok, r.errors, r.seconds, r.warmup_sent, r.warmup_errors);
  s += buf;
  std::snprintf(buf, sizeof buf, "  throughput: %.2f requests/s, %.1f items/s (%ld items)\n",
                r.requests_per_s, r.items_per_s, r.items);
  s += buf;
  const LatencySummary& l = r.latency;
  std::snprintf(buf, sizeof buf,
                "  latency ms (%s): mean %.3f  p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  p99.9 %.3f  "
                "max %.3f  (n=%zu)\n",
                r.open_loop ? "from scheduled send" : "from send", l.mean, l.p50, l.p90, l.p95,
                l.p99, l.p999, l.max, l.count);
  s += buf;
  if (r.open_loop) {
    std::snprintf(buf, sizeof buf,
                  "  open loop: %ld scheduled (offered %.2f/s), %ld late (waited for a free "
                  "slot), %ld not sent; send delay mean %.3f ms, max %.3f ms\n",
                  r.scheduled, r.offered_rate, r.late, r.not_sent, r.mean_send_delay_ms,
                  r.max_send_delay_ms);
    s += buf;
  }
  for (const auto& [code, n] : r.errors_by_code) {
    auto it = r.first_error.find(code);
    std::snprintf(buf, sizeof buf, "  error %s: %ld (first: %.200s)\n", code.c_str(), n,
                  it == r.first_error.end() ? "" : it->second.c_str());
    s += buf;
  }
  return s;
}

}  // namespace encserve::bench
