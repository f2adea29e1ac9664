// What a Hugging Face model folder says about the model: BERT hyper-parameters (config.json),
// the task head, and sentence-transformers settings (modules.json, 1_Pooling/config.json,
// sentence_bert_config.json).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace encserve {

struct BertConfig {
  std::string architecture;  // e.g. "BertModel", "BertForSequenceClassification"
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  int type_vocab_size = 0;
  float layer_norm_eps = 1e-12f;
  std::string hidden_act;  // only "gelu" (exact, erf) is supported
  int pad_token_id = 0;
  int head_dim() const { return num_heads ? hidden_size / num_heads : 0; }
};

enum class ModelKind {
  kEmbedding,     // bi-encoder: pooled, optionally normalised sentence embeddings
  kCrossEncoder,  // BertForSequenceClassification: pooler + classifier logits per pair
};
enum class PoolingMode { kMean, kCls, kMax };

struct ModelConfig {
  BertConfig bert;
  ModelKind kind = ModelKind::kEmbedding;
  int num_labels = 0;               // cross-encoder only
  std::vector<std::string> labels;  // config.json id2label in id order (empty if absent)
  PoolingMode pooling = PoolingMode::kMean;
  bool normalize = true;     // L2-normalise embeddings (sentence-transformers Normalize module)
  int max_seq_length = 512;  // tokens incl. specials; truncation length for requests
  bool sentence_transformers = false;  // modules.json was found
};

const char* ModelKindName(ModelKind kind);
const char* PoolingModeName(PoolingMode mode);

// Reads and validates <dir>/config.json and the optional sentence-transformers files.
StatusOr<ModelConfig> LoadModelConfig(const std::string& dir);

// A file of a model folder by its path (<dir>/name): its text, std::nullopt when it does not
// exist, or an error when it exists but cannot be read.
using ModelFileReader =
    std::function<StatusOr<std::optional<std::string>>(const std::filesystem::path& file)>;
// LoadModelConfig on the files `read` gives (`dir` is the folder, for their paths and messages):
// no file system access of its own. For tests and the fuzzer (fuzz/model_config_fuzz.cc).
StatusOr<ModelConfig> ParseModelConfig(const std::string& dir, const ModelFileReader& read);

// Parses config.json text (exposed for tests). `where` names the file in error messages.
StatusOr<BertConfig> ParseBertConfig(const std::string& json_text, const std::string& where,
                                     int* num_labels);

}  // namespace encserve
