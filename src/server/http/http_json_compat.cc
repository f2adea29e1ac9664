#include "server/http/http_json_compat.h"

#include <cstdint>
#include <cstdio>
#include <random>

namespace encserve::server::http_json {
namespace {

// "meta" of Cohere replies: the API version and what the request cost, in tokens (and for a
// rerank in search units: one per request, as Cohere counts up to 100 documents).
std::string Meta(int api_version, int64_t tokens, bool search_units) {
  const std::string n = std::to_string(tokens);
  std::string out = "{\"api_version\":{\"version\":\"" + std::to_string(api_version) +
                    "\"},\"billed_units\":{\"input_tokens\":" + n;
  if (search_units) out += ",\"search_units\":1";
  return out + "},\"tokens\":{\"input_tokens\":" + n + "}}";
}

void AppendRows(std::string* out, const EmbedResult& r, bool base64) {
  out->push_back('[');
  for (int i = 0; i < r.rows; ++i) {
    if (i > 0) out->push_back(',');
    const float* row = r.data.data() + size_t(i) * r.dim;
    if (base64) {
      *out += '"' + Base64Floats(row, r.dim) + '"';
    } else {
      AppendFloats(out, row, r.dim);
    }
  }
  out->push_back(']');
}

}  // namespace

Status GetDocuments(const Json& obj, const char* key, std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return InvalidArgument(std::string("missing field '") + key + "'");
  }
  const std::string want = std::string("field '") + key +
                           "' must be a list of strings or of objects with a string 'text'";
  if (!it->is_array()) return InvalidArgument(want);
  out->clear();
  out->reserve(it->size());
  for (const Json& d : *it) {
    if (d.is_string()) {
      out->push_back(d.get<std::string>());
      continue;
    }
    auto text = d.is_object() ? d.find("text") : d.end();
    if (!d.is_object() || text == d.end() || !text->is_string()) return InvalidArgument(want);
    out->push_back(text->get<std::string>());
  }
  return Status::Ok();
}

std::string NewId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t hi = (rng() & ~uint64_t(0xf000)) | 0x4000;                  // version 4
  const uint64_t lo = (rng() & ~(uint64_t(3) << 62)) | (uint64_t(2) << 62);  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", unsigned(hi >> 32),
                unsigned(hi >> 16) & 0xffff, unsigned(hi) & 0xffff, unsigned(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

std::string CompatRerankBody(const RerankResult& r, const Json& documents, const CompatReply& c) {
  std::string out = "{\"id\":";
  AppendString(&out, c.id);
  out += ",\"results\":[";
  for (size_t i = 0; i < r.results.size(); ++i) {
    const RankedDocument& d = r.results[i];
    if (i > 0) out.push_back(',');
    out += "{\"index\":" + std::to_string(d.index) + ",\"relevance_score\":";
    AppendFloat(&out, d.score);
    if (d.document) {
      out += ",\"document\":";
      const Json& item = documents.at(size_t(d.index));
      if (item.is_object()) {
        out += item.dump(-1, ' ', false, Json::error_handler_t::replace);
      } else {
        out += "{\"text\":";
        AppendString(&out, *d.document);
        out.push_back('}');
      }
    }
    out.push_back('}');
  }
  out += "],\"meta\":" + Meta(c.api_version, r.prompt_tokens, true) + ",\"model\":";
  AppendString(&out, c.model);
  const std::string n = std::to_string(r.prompt_tokens);
  return out + ",\"usage\":{\"prompt_tokens\":" + n + ",\"total_tokens\":" + n + "}}";
}

std::string CohereEmbedBody(const EmbedResult& r, const std::vector<std::string>& texts,
                            const EmbedTypes& types, const CompatReply& c) {
  std::string out = "{\"response_type\":";
  out += types.by_type ? "\"embeddings_by_type\"" : "\"embeddings_floats\"";
  out.reserve(size_t(r.rows) * r.dim * (types.base64 ? 18 : 12) + 256);
  out += ",\"id\":";
  AppendString(&out, c.id);
  out += ",\"embeddings\":";
  if (!types.by_type) {
    AppendRows(&out, r, false);
  } else {
    out.push_back('{');
    if (types.float32) {
      out += "\"float\":";
      AppendRows(&out, r, false);
    }
    if (types.base64) {
      out += types.float32 ? ",\"base64\":" : "\"base64\":";
      AppendRows(&out, r, true);
    }
    out.push_back('}');
  }
  out += ",\"texts\":[";
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(&out, texts[i]);
  }
  out += "],\"meta\":" + Meta(c.api_version, r.prompt_tokens, false);
  if (!r.embedding_space.empty()) {
    out += ",\"embedding_space\":";
    AppendString(&out, r.embedding_space);
  }
  return out + "}";
}

}  // namespace encserve::server::http_json
