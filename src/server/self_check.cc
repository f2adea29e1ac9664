#include "server/self_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/file.h"

#ifndef ENCSERVE_SELFCHECK_DIR
#define ENCSERVE_SELFCHECK_DIR ""
#endif

namespace encserve::server {
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

Status ReadRows(const Json& rows, const std::string& where, GoldenSet* g) {
  if (!rows.is_array() || rows.size() != g->texts.size()) {
    return InvalidArgument(where + ": 'embeddings' must hold one row per text (" +
                           std::to_string(g->texts.size()) + ")");
  }
  g->embeddings.reserve(g->texts.size() * static_cast<size_t>(g->dim));
  for (size_t i = 0; i < rows.size(); ++i) {
    const Json& r = rows[i];
    if (!r.is_array() || r.size() != static_cast<size_t>(g->dim)) {
      return InvalidArgument(where + ": embeddings[" + std::to_string(i) + "] must have " +
                             std::to_string(g->dim) + " numbers");
    }
    for (const Json& v : r) {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        return InvalidArgument(where + ": embeddings[" + std::to_string(i) +
                               "] holds a value that is not a finite number");
      }
      g->embeddings.push_back(v.get<float>());
    }
  }
  return Status::Ok();
}

}  // namespace

namespace {
StatusOr<GoldenSet> GoldenSetOf(const Json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": not a JSON object");
  if (j.value("format", "") != "encserve-selfcheck/1") {
    return InvalidArgument(where + ": 'format' must be \"encserve-selfcheck/1\"");
  }
  GoldenSet g;
  g.path = where;
  try {
    g.model = j.at("model").get<std::string>();
    g.weights_sha256 = j.at("weights_sha256").get<std::string>();
    g.reference = j.value("reference", "");
    g.normalize = j.at("normalize").get<bool>();
    g.max_length = j.value("max_seq_length", 0);
    g.dim = j.at("dim").get<int>();
    g.texts = j.at("texts").get<std::vector<std::string>>();
  } catch (const Json::exception& e) {
    return InvalidArgument(where + ": " + e.what());
  }
  if (g.texts.empty() || g.dim < 1) return InvalidArgument(where + ": no texts or dim < 1");
  if (!j.contains("embeddings")) return InvalidArgument(where + ": no 'embeddings'");
  RETURN_IF_ERROR(ReadRows(j["embeddings"], where, &g));
  return g;
}
}  // namespace

StatusOr<GoldenSet> ParseGoldenSet(const std::string& json_text, const std::string& where) {
  return GoldenSetOf(Json::parse(json_text, nullptr, /*allow_exceptions=*/false), where);
}

StatusOr<std::optional<GoldenSet>> FindGoldenSet(const std::string& file,
                                                 const std::vector<std::string>& dirs,
                                                 const std::string& weights_sha256) {
  if (!file.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFileBytes(file));
    ASSIGN_OR_RETURN(GoldenSet g, ParseGoldenSet(text, file));
    if (g.weights_sha256 != weights_sha256) {
      return InvalidArgument(file + " was made for weights " + g.weights_sha256.substr(0, 12) +
                             "..., not the model's " + weights_sha256.substr(0, 12) + "...");
    }
    return std::optional<GoldenSet>(std::move(g));
  }
  for (const std::string& dir : dirs) {
    std::error_code ec;
    if (dir.empty() || !fs::is_directory(dir, ec)) continue;
    std::map<std::string, fs::path> files;  // sorted: the same choice every time
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".json") files[e.path().filename().string()] = e.path();
    }
    for (const auto& [name, path] : files) {
      ASSIGN_OR_RETURN(std::string text, ReadFileBytes(path.string()));
      const Json j = Json::parse(text, nullptr, false);
      if (!j.is_object() || j.value("weights_sha256", "") != weights_sha256) continue;
      ASSIGN_OR_RETURN(GoldenSet g, GoldenSetOf(j, path.string()));
      return std::optional<GoldenSet>(std::move(g));
    }
  }
  return std::optional<GoldenSet>();
}

std::vector<std::string> DefaultGoldenDirs(const std::string& model_dir) {
  std::vector<std::string> dirs{(fs::path(model_dir) / "encserve-selfcheck").string()};
  if (const char* env = std::getenv("ENCSERVE_SELFCHECK_DIR"); env != nullptr && *env != 0) {
    dirs.emplace_back(env);
  }
  dirs.emplace_back(ENCSERVE_SELFCHECK_DIR);
  return dirs;
}

double DefaultMinCosine(const std::string& precision) {
  static const std::map<std::string, double> kMin{
      {"fp32", 0.9999}, {"fp16", 0.9995}, {"bf16", 0.999}, {"int8", 0.99}, {"int4", 0.90}};
  const auto it = kMin.find(precision);
  return it == kMin.end() ? 0.99 : it->second;
}

SelfCheckResult CompareToGolden(const GoldenSet& golden, const std::vector<float>& rows,
                                double threshold) {
  SelfCheckResult r;
  r.golden = golden.path;
  r.threshold = threshold;
  const size_t n = golden.texts.size(), d = static_cast<size_t>(golden.dim);
  if (rows.size() != n * d) {
    r.status = "failed";
    r.reason = "the model gave " + std::to_string(rows.size()) + " values for " +
               std::to_string(n) + " texts of " + std::to_string(d) + " dimensions";
    return r;
  }
  r.texts = static_cast<int>(n);
  r.min_cosine = 2.0;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    double dot = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < d; ++k) {
      const double a = rows[i * d + k], b = golden.embeddings[i * d + k];
      dot += a * b;
      aa += a * a;
      bb += b * b;
    }
    const double cos = (aa > 0 && bb > 0) ? dot / std::sqrt(aa * bb) : 0.0;
    sum += cos;
    if (!(cos >= r.min_cosine)) {  // (a NaN is the worst)
      r.min_cosine = std::isnan(cos) ? -2.0 : cos;
      r.worst_text = static_cast<int>(i);
    }
  }
  r.mean_cosine = sum / static_cast<double>(n);
  r.status = r.min_cosine >= threshold ? "passed" : "failed";
  if (r.status == "failed") {
    std::ostringstream why;
    why << "min cosine " << r.min_cosine << " (text " << r.worst_text << ") below " << threshold
        << " against " << golden.path;
    r.reason = why.str();
  }
  return r;
}

GoldenSet RowsForMaxLength(const GoldenSet& golden, const Tokenizer& tokenizer, int max_length) {
  if (golden.max_length <= 0 || golden.max_length == max_length) return golden;
  const size_t limit = static_cast<size_t>(std::min(golden.max_length, max_length));
  GoldenSet out = golden;
  out.texts.clear();
  out.embeddings.clear();
  const size_t d = static_cast<size_t>(golden.dim);
  for (size_t i = 0; i < golden.texts.size(); ++i) {
    auto enc = tokenizer.Encode(golden.texts[i], size_t{1} << 20);
    if (!enc.ok() || enc->ids.size() > limit) continue;
    out.texts.push_back(golden.texts[i]);
    out.embeddings.insert(out.embeddings.end(), golden.embeddings.begin() + i * d,
                          golden.embeddings.begin() + (i + 1) * d);
  }
  return out;
}

SelfCheckResult RunSelfCheck(const Pipeline& pipeline, const SelfCheckOptions& options,
                             const std::string& weights_sha256, const std::string& precision) {
  SelfCheckResult r;
  r.refuse = options.refuse;
  if (!options.enabled) return r;
  r.status = "skipped";
  if (pipeline.config().kind != ModelKind::kEmbedding) {
    r.reason = "cross-encoder (the golden sets hold embeddings)";
    return r;
  }
  if (precision == "none") {
    r.reason = "the backend computes no embeddings (null)";
    return r;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto found = FindGoldenSet(options.golden, DefaultGoldenDirs(pipeline.options().common.model_dir),
                             weights_sha256);
  SelfCheckResult out;
  if (!found.ok()) {
    out.status = "failed";
    out.reason = found.status().message();
  } else if (!found->has_value()) {
    r.reason = "no golden set for weights " + weights_sha256.substr(0, 12) + "...";
    return r;
  } else {
    const GoldenSet g = RowsForMaxLength(**found, pipeline.tokenizer(), pipeline.max_length());
    std::string note;
    if (g.texts.size() < (*found)->texts.size()) {
      note = std::to_string((*found)->texts.size() - g.texts.size()) + " of " +
             std::to_string((*found)->texts.size()) + " texts left out: longer than max_length " +
             std::to_string(pipeline.max_length()) + " or the golden set's " +
             std::to_string((*found)->max_length) + " tokens";
    }
    if (g.texts.empty()) {
      r.reason = "no golden text fits max_length " + std::to_string(pipeline.max_length());
      return r;
    }
    auto rows = pipeline.Embed(g.texts, g.normalize);
    if (!rows.ok()) {
      out.status = "failed";
      out.reason = "embedding the golden set failed: " + rows.status().message();
      out.golden = g.path;
    } else {
      out =
          CompareToGolden(g, rows->data, options.min_cosine.value_or(DefaultMinCosine(precision)));
    }
    out.note = note;
  }
  out.refuse = options.refuse;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace encserve::server
