// The JSON form of the metrics registry (GET /stats, read by the dashboard): one reading of the
// same counters, gauges and histograms /metrics prints, so that the page and a Prometheus scrape
// agree. Shape:
//   {"time": <unix seconds>,
//    "metrics": {"<name>": {"type": "counter"|"gauge"|"histogram", "help": "...",
//                           "bounds": [<upper bounds>, null],        (histograms; null: +Inf)
//                           "samples": [{"labels": {"k": "v"}, "value": <number|null>}     or
//                                       {"labels": {...}, "counts": [<per bucket>], "sum": x}]}}}
// Non-finite values (NaN, ±Inf) are null. Counts are per bucket, not cumulative.
#pragma once

#include <string>
#include <vector>

#include "server/metrics_registry.h"

namespace encserve::server {

std::string MetricsJson(const std::vector<MetricsRegistry::FamilySnapshot>& families,
                        double unix_time);

// The label text of a snapshot child (name="value",..., values escaped as Prometheus does) as a
// JSON object.
std::string LabelsJson(std::string_view label_text);

}  // namespace encserve::server
