// Number and label formatting for the Prometheus text format, and bucket helpers.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "server/metrics_registry.h"

namespace encserve::server {

namespace {

[[noreturn]] void BadBuckets(const char* what) {
  std::fprintf(stderr, "metrics: bad %s arguments\n", what);
  std::abort();
}

}  // namespace

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) BadBuckets("ExponentialBuckets");
  std::vector<double> b(count);
  for (int i = 0; i < count; ++i) b[i] = i == 0 ? start : b[i - 1] * factor;
  return b;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  if (!(width > 0) || count < 1) BadBuckets("LinearBuckets");
  std::vector<double> b(count);
  for (int i = 0; i < count; ++i) b[i] = start + width * i;
  return b;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";  // also -0
  char buf[64];
  const bool exact_int = std::trunc(v) == v && std::fabs(v) < 9007199254740992.0;  // 2^53
  const auto r = exact_int ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                           : std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace encserve::server
