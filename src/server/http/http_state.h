// Internals of HttpServer: the state shared by all connections and the in-flight token of one
// request (what it is counted, logged and timed by). Not part of the public API.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "server/http/http_api.h"
#include "server/http/http_server.h"
#include "server/request_trace.h"

namespace encserve::server::http_internal {

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Closes the socket and drops the self reference; only once the io threads have stopped.
  virtual void ForceClose() = 0;
};

struct ServerState {
  ServerState(Service& s, const HttpOptions& o)
      : service(s),
        options(o),
        api(s, o.api_key, o.request_timeout, o.metrics_open, Cors(o.cors_origins)) {}

  Service& service;
  const HttpOptions options;
  HttpApi api;
  std::atomic<bool> draining{false};  // shutting down: replies close their connection

  std::mutex mu;  // guards in_flight, sessions
  std::condition_variable cv;
  size_t in_flight = 0;
  std::map<uint64_t, std::weak_ptr<SessionBase>> sessions;
  uint64_t next_session = 0;

  // Replies from Service threads are posted to the io_context only while the gate is open;
  // Shutdown closes it before the io_context goes away. (Taken before `mu`, never after.)
  std::mutex gate_mu;
  bool gate_open = true;
};

// What follows a request through the server (request_trace.h).
struct RequestTrace {
  std::string id;
  std::string traceparent;  // as received, when valid
  std::string origin;       // the Origin header (CORS)
  uint64_t client = 0;      // the connection
  std::shared_ptr<RequestTiming> timing = std::make_shared<RequestTiming>();
};

// The trace of a request from its headers (X-Request-Id, traceparent, Origin).
template <class Fields>
RequestTrace TraceOf(const Fields& head, uint64_t client) {
  auto sv = [](auto s) { return std::string_view(s.data(), s.size()); };
  RequestTrace t;
  RequestIds ids = IdsOf(sv(head["X-Request-Id"]), sv(head["traceparent"]));
  t.id = std::move(ids.id);
  t.traceparent = std::move(ids.traceparent);
  t.origin = std::string(sv(head["Origin"]));
  t.client = client;
  return t;
}

// One request from reading to answering: counted in in_flight, and reported to
// Service::RecordRequest and the access log (with `code`, 499 if never answered) when destroyed.
class InFlight {
 public:
  InFlight(std::shared_ptr<ServerState> state, std::string route, RequestTrace trace)
      : state_(std::move(state)),
        route_(std::move(route)),
        trace_(std::move(trace)),
        start_(Clock::now()) {
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->in_flight;
  }
  ~InFlight() {
    const double seconds = Seconds();
    state_->service.RecordRequest(route_, code, seconds);
    if (state_->options.access_log && !IsMonitoringRoute(route_)) {
      state_->options.access_log->Write(AccessRecord{trace_.id, trace_.traceparent, route_,
                                                     trace_.client, code, -1, trace_.timing.get(),
                                                     seconds});
    }
    std::lock_guard<std::mutex> lock(state_->mu);
    --state_->in_flight;
    state_->cv.notify_all();
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  const RequestTrace& trace() const { return trace_; }
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  int code = 499;

 private:
  std::shared_ptr<ServerState> state_;
  std::string route_;
  RequestTrace trace_;
  Clock::time_point start_;
};

}  // namespace encserve::server::http_internal
