#include "backends/registry.h"

#include <algorithm>
#include <charconv>

#include "backends/fault/fault_backend.h"
#include "backends/mlx/mlx_backend.h"
#include "backends/native/native_backend.h"
#include "backends/null/null_backend.h"
#include "backends/openvino/openvino_backend.h"
#include "backends/torch/torch_backend.h"

namespace encserve::backends {

const std::vector<BackendSpec>& Registry() {
  // The one list of backends: to add one, add its folder and one line here (docs/backends.md).
  static const std::vector<BackendSpec> registry = {
      NativeBackendSpec(),    // encserve's own kernels
      NullBackendSpec(),      // zeros: server/client capacity
      FaultBackendSpec(),     // test double: fault injection
      TorchBackendSpec(),     // PyTorch (libtorch)
      OpenVinoBackendSpec(),  // "onnx": ONNX models on OpenVINO
      MlxBackendSpec(),       // MLX
  };
  return registry;
}

const BackendSpec* FindBackend(std::string_view name) {
  for (const BackendSpec& s : Registry()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string BackendNames(bool include_test_backends) {
  std::string out;
  for (const BackendSpec& s : Registry()) {
    if ((s.for_tests || !s.unavailable.empty()) && !include_test_backends) continue;
    out += (out.empty() ? "" : " | ") + s.name;
  }
  return out;
}

bool SupportsPrecision(const BackendSpec& spec, kernels::Precision p) {
  return std::find(spec.precisions.begin(), spec.precisions.end(), p) != spec.precisions.end();
}

std::string UnsupportedPrecision(const BackendSpec& spec, kernels::Precision p) {
  std::string ps;
  for (kernels::Precision q : spec.precisions) {
    ps += (ps.empty() ? "" : ", ") + std::string(kernels::PrecisionName(q));
  }
  std::string out = "backend " + spec.name + " does not support precision " +
                    kernels::PrecisionName(p) + " (it supports " + ps + ")";
  if (auto it = spec.precision_notes.find(p); it != spec.precision_notes.end()) {
    out += ": " + it->second;
  }
  return out;
}

namespace {
const OptionSpec* FindOption(const BackendSpec& spec, std::string_view key) {
  for (const OptionSpec& o : spec.options) {
    if (o.key == key) return &o;
  }
  return nullptr;
}
std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}
}  // namespace

Status ValidateSection(const BackendSpec& spec, const Section& section) {
  for (const auto& [key, value] : section) {
    const OptionSpec* o = FindOption(spec, key);
    if (o == nullptr) {
      std::vector<std::string> keys;
      for (const OptionSpec& k : spec.options) keys.push_back(k.key);
      return InvalidArgument(spec.name + "." + key + ": unknown option of backend " + spec.name +
                             " (" + (keys.empty() ? "it takes none" : "known: " + Join(keys)) +
                             ")");
    }
    if (!o->allowed.empty() &&
        std::find(o->allowed.begin(), o->allowed.end(), value) == o->allowed.end()) {
      return InvalidArgument(spec.name + "." + key + ": '" + value + "' is not one of " +
                             Join(o->allowed));
    }
  }
  return Status::Ok();
}

std::string OptionValue(const BackendSpec& spec, const Section& section, std::string_view key) {
  if (auto it = section.find(key); it != section.end()) return it->second;
  const OptionSpec* o = FindOption(spec, key);
  return o ? o->default_value : "";
}

Status ParseBackendOpt(std::string_view text, Sections* sections) {
  const size_t dot = text.find('.'), eq = text.find('=');
  if (dot == std::string_view::npos || eq == std::string_view::npos || dot == 0 || eq < dot + 2) {
    return InvalidArgument("--backend-opt '" + std::string(text) +
                           "': expected BACKEND.KEY=VALUE, e.g. native.isa=avx512");
  }
  const std::string name(text.substr(0, dot));
  if (FindBackend(name) == nullptr) {
    return InvalidArgument("--backend-opt '" + std::string(text) + "': unknown backend '" + name +
                           "' (" + BackendNames() + ")");
  }
  (*sections)[name][std::string(text.substr(dot + 1, eq - dot - 1))] =
      std::string(text.substr(eq + 1));
  return Status::Ok();
}

StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name, const CommonOptions& common,
                                                 const Sections& sections) {
  const BackendSpec* spec = FindBackend(name);
  if (spec == nullptr) {
    return InvalidArgument("unknown backend '" + std::string(name) + "' (" + BackendNames() + ")");
  }
  if (!spec->unavailable.empty()) {
    return Unimplemented("backend " + spec->name + " is not available: " + spec->unavailable);
  }
  if (!SupportsPrecision(*spec, common.precision)) {
    return Unimplemented(UnsupportedPrecision(*spec, common.precision));
  }
  if (common.threads < 1 || common.threads > 256) return InvalidArgument("threads must be 1..256");
  if (common.replicas < 1 || common.replicas > 64) {
    return InvalidArgument("replicas must be 1..64");
  }
  static const Section kEmpty;
  auto it = sections.find(name);
  RETURN_IF_ERROR(ValidateSection(*spec, it == sections.end() ? kEmpty : it->second));
  auto backend = spec->create(common, sections);
  if (!backend.ok()) {
    return Status(backend.status().code(),
                  "backend " + spec->name + ": " + backend.status().message());
  }
  return backend;
}

StatusOr<bool> ParseBoolOption(std::string_view backend, std::string_view key,
                               const std::string& value) {
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  return InvalidArgument(std::string(backend) + "." + std::string(key) + ": '" + value +
                         "' is not a boolean (true | false)");
}

StatusOr<int> ParseIntOption(std::string_view backend, std::string_view key,
                             const std::string& value, int min, int max) {
  int v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < min || v > max) {
    return InvalidArgument(std::string(backend) + "." + std::string(key) + ": '" + value +
                           "' is not an integer in " + std::to_string(min) + ".." +
                           std::to_string(max));
  }
  return v;
}

}  // namespace encserve::backends
