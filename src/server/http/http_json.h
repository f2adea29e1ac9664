// JSON helpers of the HTTP front end: typed field access for request bodies (errors are the
// front end's 400s) and compact writers for results (floats in shortest round-trip form).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "server/service.h"

namespace encserve::server::http_json {

using Json = nlohmann::json;

// Parses a request body; an InvalidArgument Status when it is not a JSON object.
StatusOr<Json> ParseObject(std::string_view body);

// Field readers. Absent (or null) optional fields leave `out` untouched; a present field of the
// wrong type is an InvalidArgument naming the field.
Status GetString(const Json& obj, const char* key, std::string* out);  // required
Status GetStringList(const Json& obj, const char* key, std::vector<std::string>* out);
// A string or a list of strings; required.
Status GetStringOrList(const Json& obj, const char* key, std::vector<std::string>* out);
Status GetOptBool(const Json& obj, const char* key, bool* out);
Status GetOptBool(const Json& obj, const char* key, std::optional<bool>* out);
Status GetOptInt(const Json& obj, const char* key, std::optional<int>* out);
Status GetOptString(const Json& obj, const char* key, std::optional<std::string>* out);
// "truncation_direction": "left" | "right" (any case, as TEI's "Left" / "Right"); absent: kept.
Status GetTruncationDirection(const Json& obj, bool* left);
// "priority": "interactive" | "batch" (any case), or Cohere's integer (0: interactive, above:
// batch), when present.
Status GetPriority(const Json& obj, RequestPriority* priority);
// [[a, b], ...] of strings.
Status GetPairs(const Json& obj, const char* key,
                std::vector<std::pair<std::string, std::string>>* out);

// Writers.
void AppendFloat(std::string* out, float v);  // shortest round-trip; NaN / inf as null
void AppendFloats(std::string* out, const float* v, size_t n);  // [a,b,...]
void AppendString(std::string* out, std::string_view s);        // quoted, escaped
std::string Base64(const void* data, size_t n);
// Base64 of the little-endian float32 bytes (OpenAI encoding_format=base64).
std::string Base64Floats(const float* v, size_t n);
std::optional<std::string> Base64Decode(std::string_view s);

std::string ErrorBody(std::string_view message, std::string_view type);
std::string EmbeddingsBody(const EmbedResult& r);  // [[...], ...]
std::string OpenAiEmbeddingsBody(const EmbedResult& r, std::string_view model, bool base64);
std::string ScoresBody(const std::vector<float>& scores, bool wrap);  // [..] or {"scores":[..]}
std::string RerankBody(const RerankResult& r);
std::string TokenizeBody(const TokenizeResult& r);
std::string InfoBody(const ServiceInfo& info);

}  // namespace encserve::server::http_json
