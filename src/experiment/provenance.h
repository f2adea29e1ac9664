// Where and with what a result was measured: git commit, version, machine, OS, date.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace encserve::experiment {

// {"git_commit", "git_dirty", "encserve_version", "date_utc", "cpu_model", "cpu_flags",
//  "cores", "memory_bytes", "os", "hostname"}; `source_dir` is the git checkout to describe.
nlohmann::ordered_json Provenance(const std::string& source_dir);

// "20261126T001500Z" (for result folder names) and "2026-11-26T00:15:00Z".
std::string UtcStamp();
std::string UtcIso();

}  // namespace encserve::experiment
