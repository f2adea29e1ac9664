#include "experiment/experiment_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <type_traits>

#include "experiment/experiment_origin.h"

namespace encserve::experiment {
namespace {

using internal::Origin;
using internal::VariantItem;
using internal::VariantList;

// The readers below take every mapping key as a string and walk the tree recursively: a key
// that is a mapping or a list (`? [a]: 1`, `{[a]: 1}`) would throw from as<std::string>(), and
// aliases can make a small text a huge or deep tree (`&a [*a, *a]` nested: exponential). Such
// documents are errors here (found by fuzz/experiment_config_fuzz.cc).
constexpr int kMaxYamlDepth = 64;
constexpr int64_t kMaxYamlNodes = int64_t{1} << 16;  // aliases expanded

Status CheckTree(const YAML::Node& node, int depth, int64_t* nodes, const std::string& where) {
  if (depth > kMaxYamlDepth) {
    return InvalidArgument(where + ": nested deeper than " + std::to_string(kMaxYamlDepth));
  }
  if (++*nodes > kMaxYamlNodes) {
    return InvalidArgument(where + ": more than " + std::to_string(kMaxYamlNodes) +
                           " YAML nodes (aliases expanded)");
  }
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar() && !kv.first.IsNull()) {
        return InvalidArgument(where + ": a mapping key must be a plain value, not a " +
                               (kv.first.IsMap() ? "mapping" : "list"));
      }
      RETURN_IF_ERROR(CheckTree(kv.second, depth + 1, nodes, where));
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) RETURN_IF_ERROR(CheckTree(item, depth + 1, nodes, where));
  }
  return Status::Ok();
}

StatusOr<YAML::Node> ParseYaml(const std::string& text, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(where + ": not valid YAML: " + e.what());
  }
  if (!root.IsDefined() || root.IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return InvalidArgument(where + ": expected a mapping at the top level");
  int64_t nodes = 0;
  RETURN_IF_ERROR(CheckTree(root, 0, &nodes, where));
  return root;
}

// `over` deep-merged over `base`: mappings merge key by key, anything else replaces, and a null
// in `over` keeps the base's value. Returns a fresh tree (neither input is modified).
YAML::Node Merge(const YAML::Node& base, const YAML::Node& over) {
  if (!over.IsDefined() || over.IsNull()) return YAML::Clone(base);
  if (!base.IsDefined() || !base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& kv : base) {
    const std::string key = kv.first.as<std::string>();
    if (!over[key].IsDefined()) out[key] = YAML::Clone(kv.second);
  }
  for (const auto& kv : over) {
    const std::string key = kv.first.as<std::string>();
    out[key] = Merge(base[key], kv.second);
  }
  return out;
}

// Reads the keys of one mapping of the merged document and records each key's final value (the
// default when no file set it) in `json`; Finish() rejects keys nobody asked for.
class Section {
 public:
  Section(YAML::Node node, std::string path, const Origin* origin, nlohmann::json* json)
      : node_(std::move(node)), path_(std::move(path)), origin_(origin), json_(json) {}

  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool Has(const char* key) const { return node_[key].IsDefined() && !node_[key].IsNull(); }

  template <typename T>
  Status Get(const char* key, T* out) {
    seen_.push_back(key);
    YAML::Node value = node_[key];
    if (value.IsDefined() && !value.IsNull()) RETURN_IF_ERROR(Convert(value, Path(key), out));
    (*json_)[key] = *out;
    return Status::Ok();
  }

  template <typename T>
  Status GetList(const char* key, std::vector<T>* out) {
    seen_.push_back(key);
    YAML::Node value = node_[key];
    (*json_)[key] = *out;
    if (!value.IsDefined() || value.IsNull()) return Status::Ok();
    if (!value.IsSequence()) return origin_->Error(Path(key), Path(key) + ": expected a list");
    std::vector<T> items(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
      RETURN_IF_ERROR(Convert(value[i], Path(key) + "[" + std::to_string(i) + "]", &items[i]));
    }
    *out = std::move(items);
    (*json_)[key] = *out;
    return Status::Ok();
  }

  // A backend's section: every key as a string (the registry checks them), recorded in json.
  Status GetSection(const std::string& key, backends::Section* out) {
    seen_.push_back(key);
    YAML::Node value = node_[key];
    if (value.IsDefined() && !value.IsNull()) {
      if (!value.IsMap()) return origin_->Error(Path(key), Path(key) + ": expected a mapping");
      for (const auto& kv : value) {
        const std::string k = kv.first.as<std::string>();
        if (!kv.second.IsScalar()) {
          return origin_->Error(Path(key) + "." + k, Path(key) + "." + k + ": expected a value");
        }
        (*out)[k] = kv.second.as<std::string>();
      }
    }
    if (!out->empty()) (*json_)[key] = *out;
    return Status::Ok();
  }

  // A key with a shape of its own: marked as known; the caller reads the node and fills json.
  YAML::Node Raw(const char* key) {
    seen_.push_back(key);
    return node_[key];
  }
  nlohmann::json& Out(const char* key) { return (*json_)[key]; }

  StatusOr<Section> Child(const char* key) {
    seen_.push_back(key);
    YAML::Node child = node_[key];
    if (child.IsDefined() && !child.IsNull() && !child.IsMap()) {
      return origin_->Error(Path(key), Path(key) + ": expected a mapping");
    }
    return Section(child.IsMap() ? child : YAML::Node(YAML::NodeType::Map), Path(key), origin_,
                   &(*json_)[key]);  // std::map-backed: the reference stays valid
  }

  Status Finish() const {
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (std::find(seen_.begin(), seen_.end(), key) != seen_.end()) continue;
      std::string known;
      for (const std::string& k : seen_) known += (known.empty() ? "" : ", ") + k;
      return origin_->Error(Path(key), "unknown key " + Path(key) + " (known: " + known + ")");
    }
    return Status::Ok();
  }

 private:
  template <typename T>
  Status Convert(const YAML::Node& value, const std::string& path, T* out) const {
    const char* expected = std::is_same_v<T, bool>       ? "true or false"
                           : std::is_integral_v<T>       ? "an integer"
                           : std::is_floating_point_v<T> ? "a number"
                                                         : "a string";
    auto bad = [&] { return origin_->Error(path, path + ": expected " + std::string(expected)); };
    if (!value.IsScalar()) return bad();
    // A quoted scalar ("8", "true") is a string, never a number or a boolean.
    if (!std::is_same_v<T, std::string> && value.Tag() == "!") return bad();
    try {
      *out = value.as<T>();
    } catch (const YAML::Exception&) {
      return bad();
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(*out)) return bad();
    }
    return Status::Ok();
  }

  YAML::Node node_;
  std::string path_;
  const Origin* origin_;
  nlohmann::json* json_;
  std::vector<std::string> seen_;
};

// One list entry of model.variants: backend, precision, label and backend sections.
Status ReadVariantItem(const YAML::Node& item, const std::string& path, const Origin& origin,
                       nlohmann::json* json, VariantItem* v) {
  if (!item.IsMap()) {
    return origin.Error(path, path +
                                  ": expected a mapping {backend, precision, label, "
                                  "<backend>: {options}}");
  }
  if (item["backend"].IsDefined() && item["backend"].IsNull()) {
    return origin.Error(path + ".backend", path +
                                               ".backend: empty; for the null backend write "
                                               "backend: \"null\" (quoted)");
  }
  Section s(item, path, &origin, json);
  RETURN_IF_ERROR(s.Get("backend", &v->backend));
  RETURN_IF_ERROR(s.Get("precision", &v->precision));
  RETURN_IF_ERROR(s.Get("label", &v->label));
  for (const backends::BackendSpec& spec : backends::Registry()) {
    RETURN_IF_ERROR(s.GetSection(spec.name, &v->sections[spec.name]));
    if (v->sections[spec.name].empty()) v->sections.erase(spec.name);
  }
  return s.Finish();
}

Status ReadVariants(Section& model, const Origin& origin, VariantList* out) {
  const std::string path = model.Path("variants");
  const YAML::Node node = model.Raw("variants");
  nlohmann::json& json = model.Out("variants");
  json = nlohmann::json::array();
  if (!node.IsDefined() || node.IsNull()) return Status::Ok();
  if (node.IsScalar() && node.as<std::string>() == "registry") {
    out->registry = true;
    json = "registry";
    return Status::Ok();
  }
  if (!node.IsSequence()) {
    return origin.Error(path, path +
                                  ": expected registry or a list of {backend, precision, "
                                  "label, <backend>: {options}}");
  }
  for (size_t i = 0; i < node.size(); ++i) {
    json.push_back(nlohmann::json::object());
    out->items.emplace_back();
    RETURN_IF_ERROR(ReadVariantItem(node[i], path + "[" + std::to_string(i) + "]", origin,
                                    &json.back(), &out->items.back()));
  }
  return Status::Ok();
}

// model: dir, precision, backend, fallback, variants and each registered backend's section.
Status ReadModel(Section& model, const Origin& origin, ServerSettings* s, VariantList* variants) {
  for (const char* key : {"isa", "group_size", "int4_recipe"}) {
    if (model.Has(key)) {
      return origin.Error(model.Path(key), model.Path(key) + " has moved: write model.native." +
                                               key + " (docs/experiments.md)");
    }
  }
  RETURN_IF_ERROR(model.Get("dir", &s->model_dir));
  RETURN_IF_ERROR(model.Get("precision", &s->precision));
  RETURN_IF_ERROR(model.Get("backend", &s->backend));
  RETURN_IF_ERROR(model.GetList("fallback", &s->fallback));
  RETURN_IF_ERROR(ReadVariants(model, origin, variants));
  for (const backends::BackendSpec& spec : backends::Registry()) {
    RETURN_IF_ERROR(model.GetSection(spec.name, &s->sections[spec.name]));
    if (s->sections[spec.name].empty()) s->sections.erase(spec.name);
  }
  return model.Finish();
}

Status ReadDocument(const YAML::Node& root, const Origin& origin, ExperimentConfig* c) {
  c->resolved = nlohmann::json::object();
  Section top(root, "", &origin, &c->resolved);
  RETURN_IF_ERROR(top.Get("name", &c->name));
  RETURN_IF_ERROR(top.Get("description", &c->description));

  ServerSettings& s = c->server;
  ASSIGN_OR_RETURN(Section model, top.Child("model"));
  VariantList variants;
  RETURN_IF_ERROR(ReadModel(model, origin, &s, &variants));
  // Provenance: every option of the backends in use, defaults included (in `sections` too, so
  // that parsing `resolved` again gives the same settings).
  std::vector<std::string> used{s.backend};
  used.insert(used.end(), s.fallback.begin(), s.fallback.end());
  for (const std::string& name : used) {
    const backends::BackendSpec* spec = backends::FindBackend(name);
    if (spec == nullptr) continue;  // Validate names it
    backends::Section& section = s.sections[name];
    for (const backends::OptionSpec& opt : spec->options) {
      section[opt.key] = backends::OptionValue(*spec, section, opt.key);
      c->resolved["model"][name][opt.key] = section[opt.key];
    }
    if (section.empty()) s.sections.erase(name);
  }

  ASSIGN_OR_RETURN(Section server, top.Child("server"));
  RETURN_IF_ERROR(server.Get("threads", &s.threads));
  RETURN_IF_ERROR(server.Get("replicas", &s.replicas));
  RETURN_IF_ERROR(server.Get("max_client_batch_size", &s.max_client_batch_size));
  ASSIGN_OR_RETURN(Section batching, server.Child("batching"));
  RETURN_IF_ERROR(batching.Get("enabled", &s.batching));
  RETURN_IF_ERROR(batching.Get("max_batch_size", &s.max_batch_size));
  RETURN_IF_ERROR(batching.Get("max_batch_tokens", &s.max_batch_tokens));
  RETURN_IF_ERROR(batching.Get("max_wait_us", &s.max_wait_us));
  RETURN_IF_ERROR(batching.Finish());
  RETURN_IF_ERROR(server.Finish());

  ASSIGN_OR_RETURN(Section workload, top.Child("workload"));
  RETURN_IF_ERROR(workload.Get("name", &c->workload.name));
  RETURN_IF_ERROR(workload.Get("protocol", &c->workload.protocol));
  RETURN_IF_ERROR(workload.Get("api", &c->workload.api));
  RETURN_IF_ERROR(workload.Finish());

  SweepSettings& w = c->sweep;
  ASSIGN_OR_RETURN(Section sweep, top.Child("sweep"));
  RETURN_IF_ERROR(sweep.GetList("batch_sizes", &w.batch_sizes));
  RETURN_IF_ERROR(sweep.GetList("concurrency_levels", &w.concurrency_levels));
  RETURN_IF_ERROR(sweep.GetList("rates", &w.rates));
  RETURN_IF_ERROR(sweep.GetList("max_wait_us", &w.max_wait_us));
  RETURN_IF_ERROR(sweep.Get("requests_per_point", &w.requests_per_point));
  RETURN_IF_ERROR(sweep.Get("duration_s", &w.duration_s));
  RETURN_IF_ERROR(sweep.Get("warmup_requests", &w.warmup_requests));
  RETURN_IF_ERROR(sweep.Get("repeats", &w.repeats));
  RETURN_IF_ERROR(sweep.Finish());

  ASSIGN_OR_RETURN(Section quality, top.Child("quality"));
  RETURN_IF_ERROR(quality.Get("sts_b", &c->quality.sts_b));
  RETURN_IF_ERROR(quality.Get("dl19_ndcg", &c->quality.dl19_ndcg));
  RETURN_IF_ERROR(quality.Finish());
  RETURN_IF_ERROR(top.Finish());
  internal::ExpandVariants(variants, c);
  return Status::Ok();
}

StatusOr<ExperimentConfig> Parse(const std::string& text, const std::string& base_text,
                                 const std::string& where, const std::string& base_where) {
  ASSIGN_OR_RETURN(YAML::Node experiment, ParseYaml(text, where));
  ASSIGN_OR_RETURN(YAML::Node base, ParseYaml(base_text, base_where));
  const Origin origin(experiment, base, where, base_where);
  // An unquoted `backend: null` is YAML's empty value, which would silently keep the base's
  // backend: insist on the string.
  for (const auto& [doc, name] : {std::pair{experiment, where}, std::pair{base, base_where}}) {
    // (const lookups of a missing key give a node that throws unless IsDefined() is asked first)
    const YAML::Node model = static_cast<const YAML::Node&>(doc)["model"];
    if (model.IsDefined() && model.IsMap() && model["backend"].IsDefined() &&
        model["backend"].IsNull()) {
      return InvalidArgument(name +
                             ": model.backend: empty; for the null backend write "
                             "backend: \"null\" (quoted)");
    }
  }
  ExperimentConfig c;
  RETURN_IF_ERROR(ReadDocument(Merge(base, experiment), origin, &c));
  RETURN_IF_ERROR(internal::Validate(c, origin));
  return c;
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read experiment file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

StatusOr<ExperimentConfig> ParseExperiment(const std::string& yaml_text,
                                           const std::string& base_yaml_text,
                                           const std::string& where) {
  return Parse(yaml_text, base_yaml_text, where, "base");
}

StatusOr<ExperimentConfig> LoadExperiment(const std::string& path, const std::string& base_path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::string base = base_path;
  if (base.empty()) {
    const std::filesystem::path implicit = std::filesystem::path(path).parent_path() / "base.yaml";
    std::error_code ec;
    if (std::filesystem::exists(implicit, ec) && !std::filesystem::equivalent(implicit, path, ec)) {
      base = implicit.string();
    }
  }
  std::string base_text;
  if (!base.empty()) {
    ASSIGN_OR_RETURN(base_text, ReadFile(base));
  }
  return Parse(text, base_text, path, base.empty() ? "base" : base);
}

}  // namespace encserve::experiment
