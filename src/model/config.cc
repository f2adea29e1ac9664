#include "model/config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace encserve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The file's JSON; std::nullopt when `read` says it does not exist.
StatusOr<std::optional<json>> ReadJson(const ModelFileReader& read, const fs::path& path) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, read(path));
  if (!text) return std::optional<json>();
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path.string() + " is not valid JSON");
  return std::optional<json>(std::move(j));
}

// The real folder: a file that is absent is std::nullopt, one that cannot be opened an error.
StatusOr<std::optional<std::string>> ReadModelFile(const fs::path& path) {
  std::error_code ec;  // (e.g. a name too long: treated as absent, never thrown)
  if (!fs::exists(path, ec)) return std::optional<std::string>();
  std::ifstream in(path);
  if (!in) return NotFound("cannot open " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return std::optional<std::string>(ss.str());
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

// j[key] as a string / bool into *out, which keeps its value when the key is absent; another
// type is an error (json::value() would throw out of the loader: fuzz/regressions/model_config/).
Status GetString(const json& j, const char* key, const std::string& where, std::string* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  if (!it->is_string()) return InvalidArgument(where + ": \"" + key + "\" must be a string");
  *out = it->get<std::string>();
  return Status::Ok();
}
Status GetBool(const json& j, const char* key, const std::string& where, bool* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  if (!it->is_boolean()) return InvalidArgument(where + ": \"" + key + "\" must be true or false");
  *out = it->get<bool>();
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
  std::string model_type;
  RETURN_IF_ERROR(GetString(j, "model_type", where, &model_type));
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
  c.hidden_act = "gelu";
  RETURN_IF_ERROR(GetString(j, "hidden_act", where, &c.hidden_act));
  if (c.hidden_act != "gelu") {
    return Unimplemented(where + ": hidden_act \"" + c.hidden_act +
                         "\" is not supported (gelu only)");
  }
  std::string pos = "absolute";
  RETURN_IF_ERROR(GetString(j, "position_embedding_type", where, &pos));
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
  if (!fs::is_directory(fs::path(dir))) return NotFound("model folder " + dir + " does not exist");
  return ParseModelConfig(dir, ReadModelFile);
}

namespace {
// The Pooling module's config.json (in `dir`): mean, CLS or max pooling.
StatusOr<PoolingMode> ReadPooling(const ModelFileReader& read, const fs::path& dir) {
  const fs::path pool = dir / "config.json";
  ASSIGN_OR_RETURN(std::optional<json> pc, ReadJson(read, pool));
  if (!pc) return NotFound("cannot open " + pool.string());
  if (!pc->is_object()) return InvalidArgument(pool.string() + ": not a JSON object");
  bool mean = false, cls = false, max = false;
  RETURN_IF_ERROR(GetBool(*pc, "pooling_mode_mean_tokens", pool.string(), &mean));
  RETURN_IF_ERROR(GetBool(*pc, "pooling_mode_cls_token", pool.string(), &cls));
  RETURN_IF_ERROR(GetBool(*pc, "pooling_mode_max_tokens", pool.string(), &max));
  if (mean) return PoolingMode::kMean;
  if (cls) return PoolingMode::kCls;
  if (max) return PoolingMode::kMax;
  return Unimplemented(pool.string() + ": only mean, cls or max pooling is supported");
}
}  // namespace

StatusOr<ModelConfig> ParseModelConfig(const std::string& dir, const ModelFileReader& read) {
  const fs::path root(dir);
  const fs::path cfg_path = root / "config.json";
  StatusOr<std::optional<std::string>> cfg_text = read(cfg_path);
  if (!cfg_text.ok() || !cfg_text->has_value()) {
    return NotFound("model folder " + dir + " has no config.json");
  }
  const std::string& cfg = **cfg_text;
  ModelConfig mc;
  int labels = 0;
  ASSIGN_OR_RETURN(mc.bert, ParseBertConfig(cfg, cfg_path.string(), &labels));
  if (mc.bert.architecture == "BertForSequenceClassification") {
    mc.kind = ModelKind::kCrossEncoder;
    mc.num_labels = labels;
    if (labels < 1) return InvalidArgument(cfg_path.string() + ": num_labels must be >= 1");
    mc.labels = ParseLabels(cfg, labels);
  }
  mc.max_seq_length = mc.bert.max_position_embeddings;

  // Tokenizer limit (model_max_length) caps the length, as Hugging Face does.
  ASSIGN_OR_RETURN(std::optional<json> tc, ReadJson(read, root / "tokenizer_config.json"));
  if (tc && tc->contains("model_max_length") && (*tc)["model_max_length"].is_number_integer()) {
    long long mml = (*tc)["model_max_length"].get<long long>();
    if (mml > 0 && mml < mc.max_seq_length) mc.max_seq_length = int(mml);
  }

  // sentence-transformers: modules.json lists Transformer / Pooling / Normalize modules.
  ASSIGN_OR_RETURN(std::optional<json> modules, ReadJson(read, root / "modules.json"));
  if (modules) {
    if (!modules->is_array())
      return InvalidArgument((root / "modules.json").string() + ": not a list");
    mc.sentence_transformers = true;
    mc.normalize = false;
    const std::string where = (root / "modules.json").string();
    for (const json& m : *modules) {
      if (!m.is_object()) return InvalidArgument(where + ": a module must be an object");
      std::string type, path;
      RETURN_IF_ERROR(GetString(m, "type", where, &type));
      RETURN_IF_ERROR(GetString(m, "path", where, &path));
      if (type.ends_with("models.Normalize")) mc.normalize = true;
      if (type.ends_with("models.Pooling")) {
        ASSIGN_OR_RETURN(mc.pooling, ReadPooling(read, root / path));
      }
    }
  }
  ASSIGN_OR_RETURN(std::optional<json> sb, ReadJson(read, root / "sentence_bert_config.json"));
  if (sb && sb->contains("max_seq_length") && (*sb)["max_seq_length"].is_number_integer()) {
    mc.max_seq_length =
        std::min((*sb)["max_seq_length"].get<int>(), mc.bert.max_position_embeddings);
  }
  if (mc.max_seq_length < 2) return InvalidArgument(dir + ": max sequence length must be >= 2");
  return mc;
}

}  // namespace encserve
