#include "server/server_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "backends/registry.h"
#include "kernels/precision.h"
#include "server/cors.h"

namespace encserve::server {
namespace {

// Reads the keys of one YAML mapping; Finish() rejects keys nobody asked for.
class Section {
 public:
  Section(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  bool Has(const char* key) const { return node_[key].IsDefined() && !node_[key].IsNull(); }

  template <typename T>
  Status Get(const char* key, T* out) {
    seen_.insert(key);
    if (!Has(key)) return Status::Ok();
    try {
      *out = node_[key].as<T>();
    } catch (const YAML::Exception&) {
      return InvalidArgument(Where(key) + ": expected " + TypeName<T>());
    }
    return Status::Ok();
  }

  StatusOr<Section> Child(const char* key) {
    seen_.insert(key);
    YAML::Node child = node_[key];
    if (child.IsDefined() && !child.IsNull() && !child.IsMap()) {
      return InvalidArgument(Where(key) + ": expected a mapping");
    }
    return Section(child.IsMap() ? child : YAML::Node(YAML::NodeType::Map), Where(key));
  }

  // Every key of the mapping as a string (a backend's section; the registry checks them).
  StatusOr<backends::Section> Scalars() {
    backends::Section out;
    if (!node_.IsMap()) return out;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      seen_.insert(key);
      if (!kv.second.IsScalar()) return InvalidArgument(Where(key.c_str()) + ": expected a value");
      out[key] = kv.second.as<std::string>();
    }
    return out;
  }

  Status Finish() const {
    if (!node_.IsMap()) return Status::Ok();
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (!seen_.count(key)) {
        std::string known;
        for (const std::string& k : seen_) known += (known.empty() ? "" : ", ") + k;
        return InvalidArgument("unknown key " + Where(key.c_str()) + " (known: " + known + ")");
      }
    }
    return Status::Ok();
  }

 private:
  template <typename T>
  static const char* TypeName() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of names";
    return "a string";
  }
  std::string Where(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

// Keys of earlier versions, and where they live now.
Status MovedKey(const Section& s, const char* key, const char* now) {
  if (!s.Has(key)) return Status::Ok();
  return InvalidArgument(std::string(key) + " has moved: write " + now + " (docs/server.md)");
}

Status ApplyModel(Section s, ServerConfig* c) {
  backends::CommonOptions& e = c->service.pipeline.common;
  std::string precision, dir;
  int max_length = 0;
  RETURN_IF_ERROR(MovedKey(s, "isa", "native.isa"));
  RETURN_IF_ERROR(MovedKey(s, "group_size", "native.group_size"));
  RETURN_IF_ERROR(MovedKey(s, "int4_recipe", "native.int4_recipe"));
  RETURN_IF_ERROR(MovedKey(s, "backend", "backend: NAME at the top level"));
  RETURN_IF_ERROR(s.Get("dir", &dir));
  if (!dir.empty()) e.model_dir = dir;
  RETURN_IF_ERROR(s.Get("precision", &precision));
  RETURN_IF_ERROR(s.Get("max_length", &max_length));
  if (!precision.empty() && !kernels::ParsePrecision(precision, &e.precision)) {
    return InvalidArgument("model.precision: unknown precision '" + precision +
                           "' (fp32, bf16, fp16, int8, int4)");
  }
  if (max_length > 0) c->service.pipeline.max_length = max_length;
  return s.Finish();
}

Status ApplyEngine(Section s, ServerConfig* c) {
  RETURN_IF_ERROR(MovedKey(s, "split_batches", "native.split_batches"));
  backends::CommonOptions& e = c->service.pipeline.common;
  int threads = e.threads;
  RETURN_IF_ERROR(s.Get("threads", &threads));
  if (threads > 0) e.threads = threads;
  RETURN_IF_ERROR(s.Get("replicas", &e.replicas));
  RETURN_IF_ERROR(s.Get("nice", &c->compute_nice));
  return s.Finish();
}

// Every backend named (backend, fallback) is in the registry.
Status CheckBackendNames(const PipelineOptions& p) {
  std::vector<std::pair<std::string, std::string>> named{{"backend", p.backend}};
  for (const std::string& f : p.fallback) named.emplace_back("fallback", f);
  for (const auto& [key, name] : named) {
    if (backends::FindBackend(name) == nullptr) {
      return InvalidArgument(key + ": unknown backend '" + name + "' (" + backends::BackendNames() +
                             ")");
    }
  }
  return Status::Ok();
}

// backend, fallback, fallback_policy and every registered backend's section.
Status ApplyBackends(Section& top, ServerConfig* c) {
  PipelineOptions& p = c->service.pipeline;
  RETURN_IF_ERROR(top.Get("backend", &p.backend));
  RETURN_IF_ERROR(top.Get("fallback", &p.fallback));
  RETURN_IF_ERROR(CheckBackendNames(p));
  ASSIGN_OR_RETURN(Section policy, top.Child("fallback_policy"));
  RETURN_IF_ERROR(policy.Get("max_failures", &p.fallback_policy.max_failures));
  RETURN_IF_ERROR(policy.Get("retry_after_ms", &p.fallback_policy.retry_after_ms));
  RETURN_IF_ERROR(policy.Get("batch_timeout_ms", &p.fallback_policy.batch_timeout_ms));
  RETURN_IF_ERROR(policy.Finish());
  for (const backends::BackendSpec& spec : backends::Registry()) {
    ASSIGN_OR_RETURN(Section section, top.Child(spec.name.c_str()));
    ASSIGN_OR_RETURN(backends::Section values, section.Scalars());
    RETURN_IF_ERROR(backends::ValidateSection(spec, values));
    for (auto& [k, v] : values) p.sections[spec.name][k] = v;
  }
  return Status::Ok();
}

Status ApplyBatching(Section s, scheduler::PolicyOptions* p) {
  int64_t wait_us = p->max_wait.count();
  RETURN_IF_ERROR(s.Get("enabled", &p->enabled));
  RETURN_IF_ERROR(s.Get("max_batch_size", &p->max_batch_size));
  RETURN_IF_ERROR(s.Get("max_batch_tokens", &p->max_batch_tokens));
  RETURN_IF_ERROR(s.Get("max_wait_us", &wait_us));
  RETURN_IF_ERROR(s.Get("group_by_length", &p->group_by_length));
  p->max_wait = std::chrono::microseconds(wait_us);
  return s.Finish();
}

Status ApplyLimits(Section s, ServerConfig* c) {
  RETURN_IF_ERROR(s.Get("max_client_batch_size", &c->service.limits.max_client_batch_size));
  RETURN_IF_ERROR(s.Get("max_text_chars", &c->service.limits.max_text_chars));
  RETURN_IF_ERROR(s.Get("max_tokenize_tokens", &c->service.limits.max_tokenize_tokens));
  RETURN_IF_ERROR(s.Get("max_body_bytes", &c->max_body_bytes));
  RETURN_IF_ERROR(s.Get("request_timeout_ms", &c->request_timeout_ms));
  return s.Finish();
}

Status ApplyAuth(Section s, ServerConfig* c) {
  std::string key_env;
  RETURN_IF_ERROR(s.Get("api_key", &c->api_key));
  RETURN_IF_ERROR(s.Get("api_key_env", &key_env));
  RETURN_IF_ERROR(s.Get("metrics_open", &c->metrics_open));
  RETURN_IF_ERROR(s.Finish());
  if (!key_env.empty()) {
    const char* v = std::getenv(key_env.c_str());
    if (v == nullptr || *v == 0) {
      return InvalidArgument("auth.api_key_env names " + key_env + ", which is not set");
    }
    c->api_key = v;
  }
  return Status::Ok();
}

// priority: the default class and how batch work yields (batcher.h).
Status ApplyPriority(Section& top, ServerConfig* c) {
  ASSIGN_OR_RETURN(Section s, top.Child("priority"));
  scheduler::BatcherOptions& b = c->service.batcher;
  std::string def =
      c->service.default_priority == scheduler::Priority::kBatch ? "batch" : "interactive";
  double slice_ms = static_cast<double>(b.batch_slice.count()) * 1e-3;
  int64_t starvation_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(b.policy.batch_starvation_bound)
          .count();
  RETURN_IF_ERROR(s.Get("default", &def));
  RETURN_IF_ERROR(s.Get("batch_slice_ms", &slice_ms));
  RETURN_IF_ERROR(s.Get("batch_max_wait_ms", &starvation_ms));
  RETURN_IF_ERROR(s.Finish());
  std::optional<RequestPriority> p = ParseRequestPriority(def);
  if (!p) return InvalidArgument("priority.default: '" + def + "' is not interactive or batch");
  c->service.default_priority = *p == RequestPriority::kBatch ? scheduler::Priority::kBatch
                                                              : scheduler::Priority::kInteractive;
  if (!(slice_ms >= 0 && slice_ms <= 60000)) {
    return InvalidArgument("priority.batch_slice_ms must be 0..60000 (0: no cap)");
  }
  if (starvation_ms < 1) return InvalidArgument("priority.batch_max_wait_ms must be positive");
  b.batch_slice = std::chrono::microseconds(static_cast<int64_t>(slice_ms * 1e3));
  b.policy.batch_starvation_bound = std::chrono::milliseconds(starvation_ms);
  return Status::Ok();
}

// The small sections: queue, grpc, http, tls, shutdown.
Status ApplyServing(Section& top, ServerConfig* c) {
  ASSIGN_OR_RETURN(Section queue, top.Child("queue"));
  RETURN_IF_ERROR(queue.Get("max_items", &c->service.batcher.max_queue_items));
  RETURN_IF_ERROR(queue.Get("max_tokens", &c->service.batcher.max_queue_tokens));
  int64_t budget_ms = c->service.batcher.queue_budget.count();
  RETURN_IF_ERROR(queue.Get("budget_ms", &budget_ms));
  c->service.batcher.queue_budget = std::chrono::milliseconds(budget_ms);
  RETURN_IF_ERROR(queue.Finish());
  RETURN_IF_ERROR(ApplyPriority(top, c));
  ASSIGN_OR_RETURN(Section grpc, top.Child("grpc"));
  RETURN_IF_ERROR(grpc.Get("enabled", &c->grpc_enabled));
  RETURN_IF_ERROR(grpc.Get("port", &c->grpc_port));
  RETURN_IF_ERROR(grpc.Finish());
  ASSIGN_OR_RETURN(Section http, top.Child("http"));
  RETURN_IF_ERROR(http.Get("enabled", &c->http_enabled));
  RETURN_IF_ERROR(http.Get("port", &c->http_port));
  RETURN_IF_ERROR(http.Get("io_threads", &c->http_io_threads));
  RETURN_IF_ERROR(http.Get("max_connections", &c->http_max_connections));
  RETURN_IF_ERROR(http.Get("max_header_bytes", &c->http_max_header_bytes));
  RETURN_IF_ERROR(http.Get("header_timeout_ms", &c->http_header_timeout_ms));
  RETURN_IF_ERROR(http.Get("body_timeout_ms", &c->http_body_timeout_ms));
  RETURN_IF_ERROR(http.Get("idle_timeout_ms", &c->http_idle_timeout_ms));
  RETURN_IF_ERROR(http.Get("write_timeout_ms", &c->http_write_timeout_ms));
  RETURN_IF_ERROR(http.Get("cors_origins", &c->cors_origins));
  RETURN_IF_ERROR(http.Finish());
  ASSIGN_OR_RETURN(Section log, top.Child("log"));
  RETURN_IF_ERROR(log.Get("access_log", &c->access_log));
  RETURN_IF_ERROR(log.Finish());
  ASSIGN_OR_RETURN(Section tls, top.Child("tls"));
  RETURN_IF_ERROR(tls.Get("cert_file", &c->tls_cert_file));
  RETURN_IF_ERROR(tls.Get("key_file", &c->tls_key_file));
  RETURN_IF_ERROR(tls.Finish());
  ASSIGN_OR_RETURN(Section shutdown, top.Child("shutdown"));
  RETURN_IF_ERROR(shutdown.Get("grace_ms", &c->shutdown_grace_ms));
  return shutdown.Finish();
}

// self_check: enabled, golden, min_cosine (0 = the precision's default), action.
Status ApplySelfCheck(Section s, SelfCheckOptions* o) {
  double min_cosine = o->min_cosine.value_or(0.0);
  std::string action = o->refuse ? "refuse" : "warn";
  RETURN_IF_ERROR(s.Get("enabled", &o->enabled));
  RETURN_IF_ERROR(s.Get("golden", &o->golden));
  RETURN_IF_ERROR(s.Get("min_cosine", &min_cosine));
  RETURN_IF_ERROR(s.Get("action", &action));
  if (action != "refuse" && action != "warn") {
    return InvalidArgument("self_check.action: '" + action + "' is not refuse or warn");
  }
  if (!(min_cosine >= 0.0 && min_cosine <= 1.0)) {
    return InvalidArgument("self_check.min_cosine must be in 0..1 (0: the precision's default)");
  }
  o->refuse = action == "refuse";
  if (s.Has("min_cosine")) {
    o->min_cosine = min_cosine > 0.0 ? std::optional<double>(min_cosine) : std::nullopt;
  }
  return s.Finish();
}

Status ApplyTop(Section& top, ServerConfig* c) {
  RETURN_IF_ERROR(top.Get("host", &c->host));
  RETURN_IF_ERROR(top.Get("warmup", &c->service.warmup));
  ASSIGN_OR_RETURN(Section model, top.Child("model"));
  RETURN_IF_ERROR(ApplyModel(model, c));
  ASSIGN_OR_RETURN(Section engine, top.Child("engine"));
  RETURN_IF_ERROR(ApplyEngine(engine, c));
  RETURN_IF_ERROR(ApplyBackends(top, c));
  ASSIGN_OR_RETURN(Section batching, top.Child("batching"));
  RETURN_IF_ERROR(ApplyBatching(batching, &c->service.batcher.policy));
  ASSIGN_OR_RETURN(Section limits, top.Child("limits"));
  RETURN_IF_ERROR(ApplyLimits(limits, c));
  ASSIGN_OR_RETURN(Section auth, top.Child("auth"));
  RETURN_IF_ERROR(ApplyAuth(auth, c));
  RETURN_IF_ERROR(ApplyServing(top, c));
  ASSIGN_OR_RETURN(Section self_check, top.Child("self_check"));
  RETURN_IF_ERROR(ApplySelfCheck(self_check, &c->service.self_check));
  return top.Finish();
}

}  // namespace

ServerConfig DefaultServerConfig(const std::string& default_model_dir) {
  ServerConfig c;
  c.service.pipeline.common.model_dir = default_model_dir;
  c.service.pipeline.common.threads = std::max(1u, std::thread::hardware_concurrency());
  c.service.pipeline.common.replicas = 1;
  c.service.batcher.queue_budget = std::chrono::milliseconds(100);
  return c;
}

Status ApplyServerYaml(const std::string& yaml_text, const std::string& where, ServerConfig* c) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(where + ": not valid YAML: " + e.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument(where + ": expected a mapping at the top level");
  Section top(root, "");
  Status st = ApplyTop(top, c);
  return st.ok() ? st : Status(st.code(), where + ": " + st.message());
}

Status ApplyServerYamlFile(const std::string& path, ServerConfig* config) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read config file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ApplyServerYaml(ss.str(), path, config);
}

Status ValidateServerConfig(const ServerConfig& c) {
  auto port_ok = [](int p) { return p >= 0 && p <= 65535; };
  if (!port_ok(c.grpc_port) || !port_ok(c.http_port))
    return InvalidArgument("ports must be 0..65535");
  if (!c.grpc_enabled && !c.http_enabled) return InvalidArgument("both gRPC and HTTP are disabled");
  if (c.grpc_enabled && c.http_enabled && c.grpc_port == c.http_port && c.grpc_port != 0) {
    return InvalidArgument("gRPC and HTTP cannot share port " + std::to_string(c.grpc_port));
  }
  if (c.http_io_threads < 1 || c.http_io_threads > 64)
    return InvalidArgument("http.io_threads must be 1..64");
  if (c.http_max_connections < 1) return InvalidArgument("http.max_connections must be >= 1");
  if (c.http_max_header_bytes < 1024) {
    return InvalidArgument("http.max_header_bytes must be >= 1024");
  }
  for (int t : {c.http_header_timeout_ms, c.http_body_timeout_ms, c.http_idle_timeout_ms,
                c.http_write_timeout_ms}) {
    if (t < 1) return InvalidArgument("http.*_timeout_ms must be positive");
  }
  if (c.compute_nice < 0 || c.compute_nice > 19)
    return InvalidArgument("engine.nice must be 0..19");
  if (c.service.batcher.queue_budget.count() < 0) {
    return InvalidArgument("queue.budget_ms must be >= 0 (0: no time bound)");
  }
  if (c.service.limits.max_tokenize_tokens < 1) {
    return InvalidArgument("limits.max_tokenize_tokens must be positive");
  }
  for (const std::string& origin : c.cors_origins) {
    if (!Cors::ValidOrigin(origin)) {
      return InvalidArgument("http.cors_origins: '" + origin +
                             "' is not \"*\" or an origin such as https://app.example.com "
                             "(lowercase scheme://host[:port], no path)");
    }
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return InvalidArgument("tls needs both cert_file and key_file");
  }
  if (c.max_body_bytes < 1024) return InvalidArgument("limits.max_body_bytes must be >= 1024");
  if (c.request_timeout_ms < 1)
    return InvalidArgument("limits.request_timeout_ms must be positive");
  if (c.shutdown_grace_ms < 0) return InvalidArgument("shutdown.grace_ms must be >= 0");
  const auto& b = c.service.batcher;
  if (b.policy.max_batch_size < 1 || b.policy.max_batch_tokens < 1) {
    return InvalidArgument("batching.max_batch_size and max_batch_tokens must be positive");
  }
  if (b.policy.max_wait.count() < 0) return InvalidArgument("batching.max_wait_us must be >= 0");
  if (b.max_queue_items < 1 || b.max_queue_tokens < 1) {
    return InvalidArgument("queue.max_items and queue.max_tokens must be positive");
  }
  const PipelineOptions& p = c.service.pipeline;
  RETURN_IF_ERROR(CheckBackendNames(p));  // flags may have named them
  const backends::FallbackPolicy& f = p.fallback_policy;
  if (f.max_failures < 1) return InvalidArgument("fallback_policy.max_failures must be >= 1");
  if (f.retry_after_ms < 1 || f.batch_timeout_ms < 0) {
    return InvalidArgument("fallback_policy.retry_after_ms must be >= 1 and batch_timeout_ms >= 0");
  }
  if (c.service.limits.max_client_batch_size > b.max_queue_items) {
    return InvalidArgument("limits.max_client_batch_size must not exceed queue.max_items");
  }
  return Status::Ok();
}

}  // namespace encserve::server
