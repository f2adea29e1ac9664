#include "server/metrics_json.h"

#include <cmath>

namespace encserve::server {
namespace {

void AppendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
}

void AppendNumber(std::string& out, double v) {
  out += std::isfinite(v) ? FormatMetricValue(v) : std::string("null");
}

}  // namespace

std::string LabelsJson(std::string_view text) {
  // name="value" pairs separated by commas; in values \\, \" and \n are escapes.
  std::string out = "{";
  size_t i = 0;
  bool first = true;
  while (i < text.size()) {
    const size_t eq = text.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') break;
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value += text[j] == 'n' ? '\n' : text[j];
      } else {
        value += text[j];
      }
    }
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, text.substr(i, eq - i));
    out += ':';
    AppendJsonString(out, value);
    i = j + 1;                                   // past the closing quote
    if (i < text.size() && text[i] == ',') ++i;  // the next pair
  }
  return out + "}";
}

std::string MetricsJson(const std::vector<MetricsRegistry::FamilySnapshot>& families,
                        double unix_time) {
  std::string out = "{\"time\":";
  AppendNumber(out, unix_time);
  out += ",\"metrics\":{";
  for (size_t f = 0; f < families.size(); ++f) {
    const MetricsRegistry::FamilySnapshot& fam = families[f];
    if (f > 0) out += ',';
    AppendJsonString(out, fam.name);
    out += ":{\"type\":\"";
    out += MetricTypeName(fam.type);
    out += "\",\"help\":";
    AppendJsonString(out, fam.help);
    if (fam.type == MetricType::kHistogram) {
      out += ",\"bounds\":[";
      for (double b : fam.bounds) {
        AppendNumber(out, b);
        out += ',';
      }
      out += "null]";
    }
    out += ",\"samples\":[";
    for (size_t c = 0; c < fam.children.size(); ++c) {
      const MetricsRegistry::ChildSnapshot& ch = fam.children[c];
      if (c > 0) out += ',';
      out += "{\"labels\":" + LabelsJson(ch.labels);
      if (fam.type == MetricType::kHistogram) {
        out += ",\"counts\":[";
        for (size_t k = 0; k < ch.counts.size(); ++k) {
          if (k > 0) out += ',';
          out += std::to_string(ch.counts[k]);
        }
        out += "],\"sum\":";
        AppendNumber(out, ch.sum);
      } else {
        out += ",\"value\":";
        AppendNumber(out, ch.value);
      }
      out += '}';
    }
    out += "]}";
  }
  return out + "}}";
}

}  // namespace encserve::server
