#include "server/http/http_json.h"

#include <bit>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>

namespace encserve::server::http_json {
namespace {

const Json* Find(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Status TypeError(const char* key, const char* want) {
  return InvalidArgument(std::string("field '") + key + "' must be " + want);
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

StatusOr<Json> ParseObject(std::string_view body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("request body is not valid JSON");
  if (!j.is_object()) return InvalidArgument("request body must be a JSON object");
  return j;
}

Status GetString(const Json& obj, const char* key, std::string* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return InvalidArgument(std::string("missing field '") + key + "'");
  if (!v->is_string()) return TypeError(key, "a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

Status GetStringList(const Json& obj, const char* key, std::vector<std::string>* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return InvalidArgument(std::string("missing field '") + key + "'");
  if (!v->is_array()) return TypeError(key, "a list of strings");
  out->clear();
  out->reserve(v->size());
  for (const Json& e : *v) {
    if (!e.is_string()) return TypeError(key, "a list of strings");
    out->push_back(e.get<std::string>());
  }
  return Status::Ok();
}

Status GetStringOrList(const Json& obj, const char* key, std::vector<std::string>* out) {
  const Json* v = Find(obj, key);
  if (v != nullptr && v->is_string()) {
    out->assign(1, v->get<std::string>());
    return Status::Ok();
  }
  if (v != nullptr && !v->is_array()) return TypeError(key, "a string or a list of strings");
  return GetStringList(obj, key, out);
}

Status GetOptBool(const Json& obj, const char* key, bool* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_boolean()) return TypeError(key, "a boolean");
  *out = v->get<bool>();
  return Status::Ok();
}

Status GetOptBool(const Json& obj, const char* key, std::optional<bool>* out) {
  bool b = false;
  if (Find(obj, key) == nullptr) return Status::Ok();
  RETURN_IF_ERROR(GetOptBool(obj, key, &b));
  *out = b;
  return Status::Ok();
}

Status GetOptInt(const Json& obj, const char* key, std::optional<int>* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_number_integer()) return TypeError(key, "an integer");
  if (v->is_number_unsigned() ? v->get<uint64_t>() > uint64_t(INT_MAX)
                              : (v->get<int64_t>() > INT_MAX || v->get<int64_t>() < INT_MIN)) {
    return TypeError(key, "an integer in 32-bit range");
  }
  *out = v->get<int>();
  return Status::Ok();
}

Status GetOptString(const Json& obj, const char* key, std::optional<std::string>* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return Status::Ok();
  if (!v->is_string()) return TypeError(key, "a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

Status GetTruncationDirection(const Json& obj, bool* left) {
  std::optional<std::string> d;
  RETURN_IF_ERROR(GetOptString(obj, "truncation_direction", &d));
  if (!d) return Status::Ok();
  std::string v = *d;
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v != "left" && v != "right") {
    return InvalidArgument("truncation_direction must be \"left\" or \"right\"");
  }
  *left = v == "left";
  return Status::Ok();
}

Status GetPriority(const Json& obj, RequestPriority* priority) {
  // Cohere's integer priority (0, its default, is handled first): 0 interactive, above batch.
  if (const Json* v = Find(obj, "priority"); v != nullptr && v->is_number_integer()) {
    if (v->get<int64_t>() < 0) return InvalidArgument("priority must not be negative");
    *priority = v->get<int64_t>() == 0 ? RequestPriority::kInteractive : RequestPriority::kBatch;
    return Status::Ok();
  }
  std::optional<std::string> p;
  RETURN_IF_ERROR(GetOptString(obj, "priority", &p));
  if (!p) return Status::Ok();
  std::optional<RequestPriority> parsed = ParseRequestPriority(*p);
  if (!parsed) {
    return InvalidArgument("priority must be \"interactive\" or \"batch\" (or Cohere's integer)");
  }
  *priority = *parsed;
  return Status::Ok();
}

Status GetPairs(const Json& obj, const char* key,
                std::vector<std::pair<std::string, std::string>>* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return InvalidArgument(std::string("missing field '") + key + "'");
  if (!v->is_array()) return TypeError(key, "a list of [string, string] pairs");
  out->clear();
  for (const Json& p : *v) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string()) {
      return TypeError(key, "a list of [string, string] pairs");
    }
    out->emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
  }
  return Status::Ok();
}

void AppendFloat(std::string* out, float v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ec == std::errc() ? end : buf);
}

void AppendFloats(std::string* out, const float* v, size_t n) {
  out->push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    AppendFloat(out, v[i]);
  }
  out->push_back(']');
}

void AppendString(std::string* out, std::string_view s) {
  // nlohmann escapes control characters and replaces invalid UTF-8 (never throws).
  out->append(Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace));
}

std::string Base64(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t chunk = uint32_t(p[i]) << 16;
    if (i + 1 < n) chunk |= uint32_t(p[i + 1]) << 8;
    if (i + 2 < n) chunk |= p[i + 2];
    out.push_back(kB64[(chunk >> 18) & 63]);
    out.push_back(kB64[(chunk >> 12) & 63]);
    out.push_back(i + 1 < n ? kB64[(chunk >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kB64[chunk & 63] : '=');
  }
  return out;
}

std::string Base64Floats(const float* v, size_t n) {
  static_assert(std::endian::native == std::endian::little, "float32 bytes must be LE");
  return Base64(v, n * sizeof(float));
}

std::optional<std::string> Base64Decode(std::string_view s) {
  if (s.size() % 4 != 0) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '=') {
      if (i + 2 < s.size()) return std::nullopt;
      break;
    }
    const char* pos = std::strchr(kB64, c);
    if (pos == nullptr || c == '\0') return std::nullopt;
    acc = (acc << 6) | uint32_t(pos - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string ErrorBody(std::string_view message, std::string_view type) {
  std::string out = "{\"error\":";
  AppendString(&out, message);
  out += ",\"type\":";
  AppendString(&out, type);
  out += '}';
  return out;
}

std::string EmbeddingsBody(const EmbedResult& r) {
  std::string out;
  out.reserve(size_t(r.rows) * r.dim * 12 + 2);
  out.push_back('[');
  for (int i = 0; i < r.rows; ++i) {
    if (i > 0) out.push_back(',');
    AppendFloats(&out, r.data.data() + size_t(i) * r.dim, r.dim);
  }
  out.push_back(']');
  return out;
}

std::string OpenAiEmbeddingsBody(const EmbedResult& r, std::string_view model, bool base64) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  out.reserve(size_t(r.rows) * r.dim * 12 + 128);
  for (int i = 0; i < r.rows; ++i) {
    if (i > 0) out.push_back(',');
    out += "{\"object\":\"embedding\",\"index\":" + std::to_string(i) + ",\"embedding\":";
    const float* row = r.data.data() + size_t(i) * r.dim;
    if (base64) {
      out += '"' + Base64Floats(row, r.dim) + '"';
    } else {
      AppendFloats(&out, row, r.dim);
    }
    out.push_back('}');
  }
  out += "],\"model\":";
  AppendString(&out, model);
  const std::string tokens = std::to_string(r.prompt_tokens);
  out += ",\"usage\":{\"prompt_tokens\":" + tokens + ",\"total_tokens\":" + tokens + "}";
  if (!r.embedding_space.empty()) {
    out += ",\"embedding_space\":";
    AppendString(&out, r.embedding_space);
  }
  return out + "}";
}

std::string ScoresBody(const std::vector<float>& scores, bool wrap) {
  std::string out = wrap ? "{\"scores\":" : "";
  AppendFloats(&out, scores.data(), scores.size());
  if (wrap) out.push_back('}');
  return out;
}

std::string RerankBody(const RerankResult& r) {
  std::string out = "[";
  for (size_t i = 0; i < r.results.size(); ++i) {
    const RankedDocument& d = r.results[i];
    if (i > 0) out.push_back(',');
    out += "{\"index\":" + std::to_string(d.index) + ",\"score\":";
    AppendFloat(&out, d.score);
    if (d.document) {
      out += ",\"text\":";
      AppendString(&out, *d.document);
    }
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

std::string TokenizeBody(const TokenizeResult& r) {
  std::string out = "[";
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('[');
    for (size_t k = 0; k < r.tokens[i].size(); ++k) {
      const Token& t = r.tokens[i][k];
      if (k > 0) out.push_back(',');
      out += "{\"id\":" + std::to_string(t.id) + ",\"text\":";
      AppendString(&out, t.text);
      out += t.special ? ",\"special\":true}" : ",\"special\":false}";
    }
    out.push_back(']');
  }
  out.push_back(']');
  return out;
}

std::string InfoBody(const ServiceInfo& info) {
  Json j = {{"model_id", info.model_id},
            {"model_dir", info.model_dir},
            {"model_kind", info.model_kind},
            {"precision", info.precision},
            {"backend", info.backend},
            {"isa", info.isa},
            {"version", info.version},
            {"embedding_dim", info.embedding_dim},
            {"num_labels", info.num_labels},
            {"max_input_length", info.max_input_length},
            {"max_batch_size", info.max_batch_size},
            {"max_batch_tokens", info.max_batch_tokens},
            {"max_client_batch_size", info.max_client_batch_size},
            {"max_text_chars", info.max_text_chars},
            {"batching", info.batching},
            {"device", info.device},
            {"library", info.library},
            {"quant_kernels", info.quant_kernels}};
  j["kernels"] = {{"fp32", info.isa}, {"quantized", info.quant_kernels}};
  j["embedding_space"] = {{"fingerprint", info.fingerprint},
                          {"weights_sha256", info.weights_sha256},
                          {"tokenizer_sha256", info.tokenizer_sha256},
                          {"pooling", info.pooling},
                          {"normalize", info.normalize},
                          {"dimensions", info.embedding_dim},
                          {"prompt", ""},
                          {"max_tokens", info.max_tokens},
                          {"precision", info.precision},
                          {"backend", info.backend}};
  if (!info.space_error.empty()) j["embedding_space"]["error"] = info.space_error;
  j["self_check"] = {{"status", info.self_check_status},
                     {"reason", info.self_check_reason},
                     {"note", info.self_check_note},
                     {"golden", info.self_check_golden},
                     {"texts", info.self_check_texts},
                     {"min_cosine", info.self_check_min_cosine},
                     {"mean_cosine", info.self_check_mean_cosine},
                     {"threshold", info.self_check_threshold},
                     {"seconds", info.self_check_seconds},
                     {"action", info.self_check_refuse ? "refuse" : "warn"}};
  j["backends"] = Json::array();
  for (const BackendStatus& b : info.backends) {
    j["backends"].push_back(
        {{"name", b.name},
         {"role", b.role},
         {"loaded", b.loaded},
         {"in_service", b.in_service},
         {"load_error", b.load_error},
         {"precision", b.precision},
         {"device", b.device},
         {"library", b.library},
         {"kernels", {{"fp32", b.fp32_kernels}, {"quantized", b.quant_kernels}}},
         {"batches", b.batches},
         {"failures", b.failures}});
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace encserve::server::http_json
