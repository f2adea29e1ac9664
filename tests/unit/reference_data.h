// Tests: the committed reference outputs — sentence-transformers embeddings of 1,028 real texts
// (tools/gen_embedding_golden.py) and the tiny cross-encoders' transformers logits
// (tools/gen_tiny_cross_encoder.py).
#pragma once

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"

namespace encserve::testing {

struct Golden {
  std::vector<std::string> texts;
  std::vector<float> emb;  // [texts, dim]
  int dim = 384;
  const float* row(size_t i) const { return emb.data() + i * dim; }
};

inline const Golden& LoadGolden() {
  static const Golden g = [] {
    Golden g;
    const std::string dir = TestData() + "/minilm_golden";
    std::ifstream in(dir + "/texts.jsonl");
    std::string line;
    while (std::getline(in, line))
      g.texts.push_back(nlohmann::json::parse(line).get<std::string>());
    const std::string bytes = ReadFile(dir + "/embeddings.f32");
    g.emb.resize(bytes.size() / 4);
    std::memcpy(g.emb.data(), bytes.data(), g.emb.size() * 4);
    return g;
  }();
  return g;
}

struct CrossEncoderCase {
  std::string query, passage;
  std::vector<int32_t> ids, type_ids;
  std::vector<float> logits;
};

inline std::vector<CrossEncoderCase> LoadCrossEncoderCases(const std::string& dir) {
  std::vector<CrossEncoderCase> cases;
  std::ifstream in(dir + "/expected.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    cases.push_back({j["query"], j["passage"], j["input_ids"], j["token_type_ids"], j["logits"]});
  }
  return cases;
}

}  // namespace encserve::testing
