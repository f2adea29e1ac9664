// The backend registry: the one list of backends (registry.cc), with the options each takes.
// The CLI, server.yaml and the experiment YAML all read names, precisions and options from
// here; nothing above this file lists backends by name.
//
// Options come in two layers: CommonOptions (every backend: model folder, precision, threads,
// concurrent batches) and a per-backend Section of string key/values (server.yaml's
// `native: {isa: avx512}`, the flag `--isa avx512`, or `--backend-opt native.isa=avx512`),
// checked against the backend's OptionSpecs before its factory parses them into its own
// options struct.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "core/status.h"
#include "kernels/precision.h"

namespace encserve::backends {

// Settings every backend takes.
struct CommonOptions {
  std::string model_dir;
  kernels::Precision precision = kernels::Precision::kF32;
  int threads = 1;   // intra-op threads per concurrent batch
  int replicas = 1;  // batches computed at once
};

using Section = std::map<std::string, std::string, std::less<>>;  // key -> value
using Sections = std::map<std::string, Section, std::less<>>;     // backend name -> section

struct OptionSpec {
  std::string key;            // in the backend's section
  std::string default_value;  // as written in YAML
  std::string help;
  std::vector<std::string> allowed;  // empty: any value (the factory checks it)
  // CLI: a flag of its own ("--isa" takes a value) or, with flag_value set, a switch that
  // stores flag_value ("--no-split" stores "false"). Empty: only --backend-opt NAME.KEY=VALUE.
  std::string flag;
  std::string flag_value;
};

struct BackendSpec {
  std::string name;
  std::string description;                     // one line, for --help and docs
  std::vector<kernels::Precision> precisions;  // what it can compute in
  // Why a precision it lacks is missing (the "not supported" error quotes it).
  std::map<kernels::Precision, std::string> precision_notes;
  std::vector<OptionSpec> options;
  bool for_tests = false;  // a test double (fault injection): hidden from the main help
  bool computes = true;    // false: answers are not the model's (null): no quality checks
  // Non-empty: registered but not available in this build; CreateBackend fails with this.
  std::string unavailable;
  // Builds the backend; `sections` holds every backend's section (a wrapper reads its inner's).
  std::function<StatusOr<std::unique_ptr<Backend>>(const CommonOptions&, const Sections&)> create;
};

// Every registered backend, in registry order.
const std::vector<BackendSpec>& Registry();
const BackendSpec* FindBackend(std::string_view name);
// "native | null | fault" (all, or only those not for tests).
std::string BackendNames(bool include_test_backends = true);
bool SupportsPrecision(const BackendSpec& spec, kernels::Precision p);
// "backend X does not support precision P (it supports ...): <note>".
std::string UnsupportedPrecision(const BackendSpec& spec, kernels::Precision p);

// Unknown keys, values outside `allowed`: InvalidArgument naming "<backend>.<key>".
Status ValidateSection(const BackendSpec& spec, const Section& section);
// The section's value for key, or the spec's default.
std::string OptionValue(const BackendSpec& spec, const Section& section, std::string_view key);
// Parses "NAME.KEY=VALUE" into sections (the --backend-opt flag).
Status ParseBackendOpt(std::string_view text, Sections* sections);

// Checks the name, the precision and the section, then loads. Errors name the backend.
StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name, const CommonOptions& common,
                                                 const Sections& sections);

// Helpers for factories: parse an option value or fail naming "<backend>.<key>".
StatusOr<bool> ParseBoolOption(std::string_view backend, std::string_view key,
                               const std::string& value);
StatusOr<int> ParseIntOption(std::string_view backend, std::string_view key,
                             const std::string& value, int min, int max);

}  // namespace encserve::backends
