// Shared helpers for tests: locations from the environment CTest sets, small file utilities.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace encserve::testing {

// The environment variable `name` if set, else the location CMake compiled in.
inline std::string Env(const char* name, const char* compiled_default) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : compiled_default;
}
inline std::string ModelDir() {
  return Env("ENCSERVE_MODEL_DIR", ENCSERVE_MODEL_DIR);
}
inline std::string DataDir() {
  return Env("ENCSERVE_DATA_DIR", ENCSERVE_DATA_DIR);
}
inline std::string TestData() {
  return Env("ENCSERVE_TEST_DATA", ENCSERVE_TEST_DATA);
}
inline std::string GoldenDir() {
  return Env("ENCSERVE_GOLDEN_DIR", ENCSERVE_GOLDEN_DIR);
}
inline std::string Binary() {
  return Env("ENCSERVE_BIN", ENCSERVE_BIN);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A fresh temporary directory, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "encserve-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline double Cosine(const float* a, const float* b, int n) {
  double dot = 0, na = 0, nb = 0;
  for (int i = 0; i < n; ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

// n normal(0, scale) floats from a fixed seed.
inline std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// max_i |a_i − b_i| / (1 + |b_i|)
inline float MaxRelErr(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]) / (1.0f + std::fabs(b[i])));
  }
  return worst;
}

inline float MaxAbsDiff(const float* a, const float* b, int n) {
  float m = 0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace encserve::testing
