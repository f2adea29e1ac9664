#include "server/request_trace.h"

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <random>

namespace encserve::server {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZeros(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct IdSeed {
  uint64_t hi = 0, lo = 0;
  IdSeed() {
    std::random_device rd;
    const auto now =
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    hi = (uint64_t{rd()} << 32 | rd()) ^ now;
    lo = uint64_t{rd()} << 32 | rd();
  }
};

// Microseconds, rounded.
long long Us(double seconds) {
  return static_cast<long long>(seconds * 1e6 + 0.5);
}

// A JSON string for the few fields that come from clients (already restricted to visible ASCII,
// but escaped anyway).
void AppendQuoted(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

std::string UtcNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

std::string NewRequestId() {
  static const IdSeed seed;
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  // A bijection of the counter keyed by the seed: unique, and unpredictable without the seed.
  const uint64_t a = SplitMix(seed.hi + n), b = SplitMix(seed.lo ^ n) ^ n;
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64, a, SplitMix(a) ^ b);
  return buf;
}

std::optional<std::string> TraceIdOf(std::string_view tp) {
  // version "-" trace-id (32) "-" parent-id (16) "-" flags (2); later versions may append
  // "-..." fields, version 00 may not; version ff is invalid.
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return std::nullopt;
  const std::string_view version = tp.substr(0, 2), trace = tp.substr(3, 32),
                         parent = tp.substr(36, 16), flags = tp.substr(53, 2);
  if (!IsLowerHex(version) || version == "ff") return std::nullopt;
  if (version == "00" ? tp.size() != 55 : (tp.size() > 55 && tp[55] != '-')) return std::nullopt;
  if (!IsLowerHex(trace) || !IsLowerHex(parent) || !IsLowerHex(flags)) return std::nullopt;
  if (AllZeros(trace) || AllZeros(parent)) return std::nullopt;
  return std::string(trace);
}

std::string ChooseRequestId(std::string_view given, std::string_view traceparent) {
  return IdsOf(given, traceparent).id;
}

RequestIds IdsOf(std::string_view given, std::string_view traceparent) {
  RequestIds ids;
  const std::optional<std::string> trace = TraceIdOf(traceparent);
  if (trace) ids.traceparent = std::string(traceparent);
  ids.id = ValidRequestId(given) ? std::string(given) : trace ? *trace : NewRequestId();
  return ids;
}

std::string ServerTimingValue(const RequestTiming* t, double total_s) {
  char buf[160];
  if (t == nullptr || t->items == 0) {
    std::snprintf(buf, sizeof buf, "total;dur=%.3f", total_s * 1e3);
  } else {
    std::snprintf(buf, sizeof buf,
                  "tokenize;dur=%.3f, queue;dur=%.3f, infer;dur=%.3f, total;dur=%.3f",
                  t->tokenize_s * 1e3, t->queue_s * 1e3, t->infer_s * 1e3, total_s * 1e3);
  }
  return buf;
}

std::string AccessLogLine(const AccessRecord& r) {
  static const RequestTiming kNone;
  const RequestTiming& t = r.timing != nullptr ? *r.timing : kNone;
  std::string out;
  out.reserve(320);
  out += "{\"ts\":\"" + UtcNow() + "\",\"id\":";
  AppendQuoted(out, r.id);
  if (!r.traceparent.empty()) {
    out += ",\"traceparent\":";
    AppendQuoted(out, r.traceparent);
  }
  out += ",\"route\":";
  AppendQuoted(out, r.route);
  char buf[256];
  std::snprintf(buf, sizeof buf, ",\"client\":%" PRIu64 ",\"status\":%d", r.client, r.status);
  out += buf;
  if (r.grpc_code >= 0) out += ",\"grpc_code\":" + std::to_string(r.grpc_code);
  std::snprintf(buf, sizeof buf,
                ",\"items\":%" PRId64 ",\"tokens\":%" PRId64
                ",\"tokenize_us\":%lld,\"queue_us\":%lld,\"infer_us\":%lld,\"total_us\":%lld}\n",
                t.items, t.tokens, Us(t.tokenize_s), Us(t.queue_s), Us(t.infer_s), Us(r.total_s));
  out += buf;
  return out;
}

StatusOr<std::shared_ptr<AccessLog>> AccessLog::Open(const std::string& path) {
  if (path == "-") return std::shared_ptr<AccessLog>(new AccessLog(stderr, false));
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) {
    return InvalidArgument("cannot open the access log " + path + ": " + std::strerror(errno));
  }
  return std::shared_ptr<AccessLog>(new AccessLog(f, true));
}

AccessLog::~AccessLog() {
  if (owned_) std::fclose(file_);
}

void AccessLog::Write(const AccessRecord& record) {
  const std::string line = AccessLogLine(record);
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

bool IsMonitoringRoute(std::string_view route) {
  for (std::string_view r :
       {"http:/health", "http:/ready", "http:/metrics", "http:/stats", "http:/dashboard"}) {
    if (route == r) return true;
  }
  return false;
}

}  // namespace encserve::server
