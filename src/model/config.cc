#include "model/config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace encserve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

StatusOr<json> ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path.string() + " is not valid JSON");
  return j;
}

Status GetInt(const json& j, const char* key, const std::string& where, int* out, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    return required ? InvalidArgument(where + ": missing \"" + key + "\"") : Status::Ok();
  }
  if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() > (1 << 30)) {
    return InvalidArgument(where + ": \"" + key + "\" must be a non-negative integer");
  }
  *out = it->get<int>();
  return Status::Ok();
}

}  // namespace

const char* ModelKindName(ModelKind kind) {
  return kind == ModelKind::kEmbedding ? "embedding" : "cross-encoder";
}

const char* PoolingModeName(PoolingMode mode) {
  switch (mode) {
    case PoolingMode::kMean:
      return "mean";
    case PoolingMode::kCls:
      return "cls";
    case PoolingMode::kMax:
      return "max";
  }
  return "?";
}

StatusOr<BertConfig> ParseBertConfig(const std::string& text, const std::string& where,
                                     int* num_labels) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(where + " is not a JSON object");
  BertConfig c;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    c.architecture = j["architectures"][0].get<std::string>();
  }
  const std::string model_type = j.value("model_type", std::string());
  static const char* kSupported[] = {"BertModel", "BertForSequenceClassification"};
  bool supported = false;
  for (const char* a : kSupported) supported |= c.architecture == a;
  if (c.architecture.empty() && model_type == "bert") {
    c.architecture = "BertModel";
    supported = true;
  }
  if (!supported) {
    return Unimplemented(where + ": unsupported architecture \"" + c.architecture +
                         "\" (model_type \"" + model_type +
                         "\"); supported: BertModel, BertForSequenceClassification");
  }
  if (!model_type.empty() && model_type != "bert") {
    return Unimplemented(where + ": unsupported model_type \"" + model_type + "\" (need \"bert\")");
  }
  RETURN_IF_ERROR(GetInt(j, "vocab_size", where, &c.vocab_size, true));
  RETURN_IF_ERROR(GetInt(j, "hidden_size", where, &c.hidden_size, true));
  RETURN_IF_ERROR(GetInt(j, "num_hidden_layers", where, &c.num_layers, true));
  RETURN_IF_ERROR(GetInt(j, "num_attention_heads", where, &c.num_heads, true));
  RETURN_IF_ERROR(GetInt(j, "intermediate_size", where, &c.intermediate_size, true));
  RETURN_IF_ERROR(GetInt(j, "max_position_embeddings", where, &c.max_position_embeddings, true));
  c.type_vocab_size = 2;
  RETURN_IF_ERROR(GetInt(j, "type_vocab_size", where, &c.type_vocab_size, false));
  RETURN_IF_ERROR(GetInt(j, "pad_token_id", where, &c.pad_token_id, false));
  if (j.contains("layer_norm_eps")) {
    if (!j["layer_norm_eps"].is_number()) return InvalidArgument(where + ": bad layer_norm_eps");
    c.layer_norm_eps = j["layer_norm_eps"].get<float>();
  }
  c.hidden_act = j.value("hidden_act", std::string("gelu"));
  if (c.hidden_act != "gelu") {
    return Unimplemented(where + ": hidden_act \"" + c.hidden_act +
                         "\" is not supported (gelu only)");
  }
  const std::string pos = j.value("position_embedding_type", std::string("absolute"));
  if (pos != "absolute") {
    return Unimplemented(where + ": position_embedding_type \"" + pos + "\" is not supported");
  }
  if (c.vocab_size == 0 || c.hidden_size == 0 || c.num_layers == 0 || c.num_heads == 0 ||
      c.intermediate_size == 0 || c.max_position_embeddings == 0 || c.type_vocab_size == 0) {
    return InvalidArgument(where + ": model dimensions must be positive");
  }
  if (c.hidden_size % c.num_heads != 0) {
    return InvalidArgument(where + ": hidden_size " + std::to_string(c.hidden_size) +
                           " is not divisible by num_attention_heads " +
                           std::to_string(c.num_heads));
  }
  // HF: num_labels, else the size of id2label, else 2.
  int labels = 2;
  if (j.contains("id2label") && j["id2label"].is_object()) labels = int(j["id2label"].size());
  RETURN_IF_ERROR(GetInt(j, "num_labels", where, &labels, false));
  if (num_labels) *num_labels = labels;
  return c;
}

namespace {
// id2label names in id order; empty unless it names exactly ids 0 .. n-1 with strings.
std::vector<std::string> ParseLabels(const std::string& text, int n) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("id2label") || !j["id2label"].is_object()) return {};
  std::vector<std::string> labels(n);
  for (int i = 0; i < n; ++i) {
    const auto it = j["id2label"].find(std::to_string(i));
    if (it == j["id2label"].end() || !it->is_string()) return {};
    labels[i] = it->get<std::string>();
  }
  return labels;
}
}  // namespace

StatusOr<ModelConfig> LoadModelConfig(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) return NotFound("model folder " + dir + " does not exist");
  const fs::path cfg_path = root / "config.json";
  std::ifstream in(cfg_path);
  if (!in) return NotFound("model folder " + dir + " has no config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  ModelConfig mc;
  int labels = 0;
  ASSIGN_OR_RETURN(mc.bert, ParseBertConfig(ss.str(), cfg_path.string(), &labels));
  if (mc.bert.architecture == "BertForSequenceClassification") {
    mc.kind = ModelKind::kCrossEncoder;
    mc.num_labels = labels;
    if (labels < 1) return InvalidArgument(cfg_path.string() + ": num_labels must be >= 1");
    mc.labels = ParseLabels(ss.str(), labels);
  }
  mc.max_seq_length = mc.bert.max_position_embeddings;

  // Tokenizer limit (model_max_length) caps the length, as Hugging Face does.
  if (fs::exists(root / "tokenizer_config.json")) {
    ASSIGN_OR_RETURN(json tc, ReadJson(root / "tokenizer_config.json"));
    if (tc.contains("model_max_length") && tc["model_max_length"].is_number_integer()) {
      long long mml = tc["model_max_length"].get<long long>();
      if (mml > 0 && mml < mc.max_seq_length) mc.max_seq_length = int(mml);
    }
  }

  // sentence-transformers: modules.json lists Transformer / Pooling / Normalize modules.
  if (fs::exists(root / "modules.json")) {
    ASSIGN_OR_RETURN(json modules, ReadJson(root / "modules.json"));
    if (!modules.is_array())
      return InvalidArgument((root / "modules.json").string() + ": not a list");
    mc.sentence_transformers = true;
    mc.normalize = false;
    for (const json& m : modules) {
      const std::string type = m.value("type", std::string());
      const std::string path = m.value("path", std::string());
      if (type.ends_with("models.Normalize")) mc.normalize = true;
      if (type.ends_with("models.Pooling")) {
        const fs::path pool = root / path / "config.json";
        ASSIGN_OR_RETURN(json pc, ReadJson(pool));
        if (pc.value("pooling_mode_mean_tokens", false))
          mc.pooling = PoolingMode::kMean;
        else if (pc.value("pooling_mode_cls_token", false))
          mc.pooling = PoolingMode::kCls;
        else if (pc.value("pooling_mode_max_tokens", false))
          mc.pooling = PoolingMode::kMax;
        else
          return Unimplemented(pool.string() + ": only mean, cls or max pooling is supported");
      }
    }
  }
  if (fs::exists(root / "sentence_bert_config.json")) {
    ASSIGN_OR_RETURN(json sb, ReadJson(root / "sentence_bert_config.json"));
    if (sb.contains("max_seq_length") && sb["max_seq_length"].is_number_integer()) {
      mc.max_seq_length =
          std::min(sb["max_seq_length"].get<int>(), mc.bert.max_position_embeddings);
    }
  }
  if (mc.max_seq_length < 2) return InvalidArgument(dir + ": max sequence length must be >= 2");
  return mc;
}

}  // namespace encserve
