// libFuzzer target: server.yaml (server/server_config.h) on arbitrary text: ApplyServerYaml over
// the defaults, then ValidateServerConfig, as `encserve serve --config` does. Unknown keys and
// wrong types must be errors (INVALID_ARGUMENT), never a crash or an escaped exception.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "server/server_config.h"

namespace {

// Known bug, reported (issue 17): src/server/server_config.cc reads mapping keys with
// kv.first.as<std::string>() (Section::Scalars, Section::Finish) outside its try block, so a key
// that is a mapping or a list (`? [a]: 1`) throws YAML::TypedBadConversion out of
// ApplyServerYaml: std::terminate in `encserve serve --config`. While true such inputs are
// skipped so that fuzzing goes on past it (the crash is fuzz/regressions/server_config/); set to
// false once server_config.cc rejects them.
constexpr bool kSkipNonScalarKeys = true;

bool HasNonScalarKey(const YAML::Node& node, int depth, int* budget) {
  if (depth > 64 || --*budget < 0) return false;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar() && !kv.first.IsNull()) return true;
      if (HasNonScalarKey(kv.second, depth + 1, budget)) return true;
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) {
      if (HasNonScalarKey(item, depth + 1, budget)) return true;
    }
  }
  return false;
}

bool KnownBug(const std::string& text) {
  if (!kSkipNonScalarKeys) return false;
  try {
    int budget = 1 << 16;
    return HasNonScalarKey(YAML::Load(text), 0, &budget);
  } catch (const YAML::Exception&) {
    return false;
  }
}

const encserve::server::ServerConfig* defaults = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  defaults = new encserve::server::ServerConfig(
      encserve::server::DefaultServerConfig(encserve::fuzz::ModelDir()));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace encserve;
  server::ServerConfig config = *defaults;
  const std::string text(fuzz::AsText(data, size));
  if (KnownBug(text)) return 0;
  const Status applied = server::ApplyServerYaml(text, "fuzz.yaml", &config);
  if (!applied.ok()) {
    FUZZ_CHECK(applied.code() == StatusCode::kInvalidArgument, applied.ToString());
    return 0;
  }
  const Status valid = server::ValidateServerConfig(config);
  // (Validation also asks the backend registry about sections: any error code but INTERNAL.)
  FUZZ_CHECK(valid.ok() || valid.code() != StatusCode::kInternal, valid.ToString());
  return 0;
}
