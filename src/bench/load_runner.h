// Drives a Client with a workload, closed or open loop, and gathers the figures.
//
// Closed loop: `concurrency` slots, each sends its next request as soon as the previous one
// completes. Open loop (rate > 0): requests arrive as a seeded Poisson process; each is sent on
// a free slot (at most `slots` outstanding) and its latency runs from its *scheduled* send
// time, so a server that falls behind is charged for the wait (no coordinated omission). An
// arrival that finds every slot busy waits for one and is counted `late`; with a duration,
// arrivals not sent by the end of the run are dropped and counted `not_sent`.
//
// Warm-up (warmup_requests and/or warmup_s) runs first, closed loop at `concurrency`, and is
// excluded from every figure; the workload's item sequence continues after it. The measured
// interval runs from the first measured send to the last completion.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "bench/client.h"
#include "bench/latency_stats.h"
#include "bench/workload.h"

namespace encserve::bench {

struct LoadOptions {
  int concurrency = 1;  // closed loop: requests in flight (also the warm-up's)
  int slots = 0;        // the client's slots (open loop: max outstanding); 0: concurrency
  int batch = 8;        // items per request (rerank: one query group per request)
  long requests = 0;    // measured requests; 0: run for duration_s
  double duration_s = 0;
  long warmup_requests = 0;
  double warmup_s = 0;
  double rate = 0;  // requests/s; > 0: open loop
  uint64_t seed = 1;
  std::FILE* progress = stderr;  // a line per second; null: quiet
};

struct LoadResult {
  bool open_loop = false;
  LatencySummary latency;  // successful requests, ms
  long sent = 0;           // measured requests sent
  long ok = 0;
  long errors = 0;
  std::map<std::string, long> errors_by_code;
  std::map<std::string, std::string> first_error;  // code -> first message
  long items = 0;                                  // items in successful requests
  double seconds = 0;                              // measured interval
  double requests_per_s = 0;                       // successful requests / seconds
  double items_per_s = 0;
  long warmup_sent = 0;
  long warmup_errors = 0;
  // Open loop only.
  long scheduled = 0;       // arrivals generated
  long late = 0;            // found no free slot at their scheduled time (sent late)
  long not_sent = 0;        // dropped: no free slot before the run ended
  double offered_rate = 0;  // scheduled / schedule span
  double max_send_delay_ms = 0;
  double mean_send_delay_ms = 0;
};

// Runs the load; `client` must have at least max(concurrency, slots) slots.
LoadResult RunLoad(Client& client, const Workload& workload, const LoadOptions& options);

}  // namespace encserve::bench
