// Helpers shared by the libFuzzer targets (fuzz/*_fuzz.cc): locations, invariant checks that
// abort with a message (a finding), splitting an input into parts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace encserve::fuzz {

// The environment variable `name` if set, else the location CMake compiled in.
inline std::string Env(const char* name, const char* compiled_default) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : compiled_default;
}
// The MiniLM folder (scripts/setup.sh fetches it): env ENCSERVE_MODEL_DIR or the build's default.
inline std::string ModelDir() {
  return Env("ENCSERVE_MODEL_DIR", ENCSERVE_MODEL_DIR);
}
inline std::string SourceDir() {
  return Env("ENCSERVE_SOURCE_DIR", ENCSERVE_SOURCE_DIR);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Setup that cannot fail in a working checkout (model missing, ...): a clear message, exit 2.
[[noreturn]] inline void SetupFailed(const std::string& what) {
  std::fprintf(stderr, "fuzz setup failed: %s\n", what.c_str());
  std::exit(2);
}

// An invariant that does not hold: a finding (libFuzzer saves the input as a crash artifact).
[[noreturn]] inline void Violation(const char* file, int line, const char* cond,
                                   const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant violated: %s %s\n", file, line, cond, detail.c_str());
  std::abort();
}
#define FUZZ_CHECK(cond, detail)                                                   \
  do {                                                                             \
    if (!(cond)) ::encserve::fuzz::Violation(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

// Splits `data` at each occurrence of `sep` into at most `max_parts` parts (the last keeps the
// rest, separators included).
inline std::vector<std::string> Split(std::string_view data, std::string_view sep,
                                      size_t max_parts) {
  std::vector<std::string> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t at = data.find(sep);
    if (at == std::string_view::npos) break;
    parts.emplace_back(data.substr(0, at));
    data.remove_prefix(at + sep.size());
  }
  parts.emplace_back(data);
  return parts;
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace encserve::fuzz
