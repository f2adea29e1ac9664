// Following a request: its id, where its time went, and the access log. Shared by the HTTP and
// gRPC front ends (docs/server.md, "Following a request").
//
//   id           the client's X-Request-Id header / x-request-id metadata when valid (1..128
//                visible ASCII characters, no '"' or '\'), else the trace id of a valid W3C
//                traceparent, else a new 32-hex-digit id. Returned on every reply.
//   timing       filled by the Service (EngineService) before it answers: tokenise, queue
//                (enqueued until its first batch starts) and inference (first batch start until
//                its last row is done) times, items and tokens. Front ends add the total.
//   access log   one JSON object per line per API request (not the probes and monitoring
//                routes), written when the reply is given; off unless configured.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace encserve::server {

// Written by the Service before its `done` callback runs; read by the front end after it (the
// callback orders the two). Zero where a step did not happen (a refused request never queued).
struct RequestTiming {
  double tokenize_s = 0;
  double queue_s = 0;
  double infer_s = 0;
  int64_t items = 0;   // texts, pairs or documents sent to the model
  int64_t tokens = 0;  // their tokens, specials included
};

// Whether a client's request id is used as given (else a new one replaces it).
bool ValidRequestId(std::string_view id);
// 32 lowercase hex digits, unique within the process and not predictable across processes.
std::string NewRequestId();
// The trace id (32 lowercase hex digits) of a valid W3C traceparent header
// ("00-<trace-id>-<parent-id>-<flags>"), nullopt when invalid or absent.
std::optional<std::string> TraceIdOf(std::string_view traceparent);
// The id a request gets from its header / metadata values ("" when absent).
std::string ChooseRequestId(std::string_view given, std::string_view traceparent);
// Both front ends' view of a request's headers / metadata: its id (ChooseRequestId) and its
// traceparent as received when valid, else "" (parsed once for both).
struct RequestIds {
  std::string id;
  std::string traceparent;
};
RequestIds IdsOf(std::string_view given, std::string_view traceparent);

// The Server-Timing header value, in milliseconds: "tokenize;dur=0.052, queue;dur=0.310,
// infer;dur=2.104, total;dur=2.600" (the first three only when the request reached the model).
std::string ServerTimingValue(const RequestTiming* timing, double total_s);

// One access-log line's content.
struct AccessRecord {
  std::string_view id;
  std::string_view traceparent;  // as received when valid, else ""
  std::string_view route;        // the metrics label: "http:/embed", "grpc:encserve.v1.Embed"
  uint64_t client = 0;           // the connection (HTTP) / peer (gRPC) the request came from
  int status = 0;                // HTTP status (gRPC: the matching HTTP status, as in metrics)
  int grpc_code = -1;            // the gRPC status code; -1 for HTTP
  const RequestTiming* timing = nullptr;
  double total_s = 0;
};

// The JSON line of a record (with its '\n'): {"ts", "id", "traceparent"?, "route", "client",
// "status", "grpc_code"?, "items", "tokens", "tokenize_us", "queue_us", "infer_us",
// "total_us"}; ts is UTC with milliseconds.
std::string AccessLogLine(const AccessRecord& record);

// Appends access-log lines to a file ("-": standard error). Thread-safe; each line is written
// whole with one write and flushed.
class AccessLog {
 public:
  static StatusOr<std::shared_ptr<AccessLog>> Open(const std::string& path);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  void Write(const AccessRecord& record);

 private:
  AccessLog(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  std::mutex mu_;
  std::FILE* file_;
  bool owned_;
};

// Routes that are not logged: probes and monitoring (scraped and polled all the time).
bool IsMonitoringRoute(std::string_view route);

}  // namespace encserve::server
