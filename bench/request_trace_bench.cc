// What following a request costs per request (request_trace.h): the id, the Server-Timing value
// and an access-log line (formatting, and the write to a file). Compare with a request's own
// time (a one-text /embed is ~2-4 ms on 2 cores): the budget is 2 % of serving (issue 18).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <string>

#include "server/request_trace.h"

namespace encserve::server {
namespace {

constexpr const char* kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

void BM_NewRequestId(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(NewRequestId());
}
BENCHMARK(BM_NewRequestId);

void BM_ChooseRequestIdFromTraceparent(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ChooseRequestId("", kTraceparent));
}
BENCHMARK(BM_ChooseRequestIdFromTraceparent);

void BM_ServerTimingValue(benchmark::State& state) {
  RequestTiming t{0.0005, 0.00125, 0.002, 3, 30};
  for (auto _ : state) benchmark::DoNotOptimize(ServerTimingValue(&t, 0.004));
}
BENCHMARK(BM_ServerTimingValue);

void BM_AccessLogLine(benchmark::State& state) {
  RequestTiming t{0.0005, 0.00125, 0.002, 3, 30};
  const std::string id = NewRequestId();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        AccessLogLine({id, kTraceparent, "http:/embed", 7, 200, -1, &t, 0.004}));
  }
}
BENCHMARK(BM_AccessLogLine);

// Formatting plus the write and flush to a file (one write(2) per line).
void BM_AccessLogWriteToFile(benchmark::State& state) {
  const std::string path = "/tmp/encserve-access-bench-" + std::to_string(::getpid()) + ".log";
  auto log = AccessLog::Open(path);
  if (!log.ok()) return state.SkipWithError(log.status().message().c_str());
  RequestTiming t{0.0005, 0.00125, 0.002, 3, 30};
  const std::string id = NewRequestId();
  for (auto _ : state) (*log)->Write({id, kTraceparent, "http:/embed", 7, 200, -1, &t, 0.004});
  ::unlink(path.c_str());
}
BENCHMARK(BM_AccessLogWriteToFile);

}  // namespace
}  // namespace encserve::server

BENCHMARK_MAIN();
