#include "server/server_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "kernels/cpu_features.h"
#include "kernels/precision.h"

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
    return "a string";
  }
  std::string Where(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

Status ApplyModel(Section s, ServerConfig* c) {
  EngineOptions& e = c->service.engine;
  std::string precision, isa, int4_recipe;
  int max_length = 0;
  std::string dir;
  RETURN_IF_ERROR(s.Get("dir", &dir));
  if (!dir.empty()) e.model_dir = dir;
  RETURN_IF_ERROR(s.Get("precision", &precision));
  RETURN_IF_ERROR(s.Get("group_size", &e.group_size));
  RETURN_IF_ERROR(s.Get("int4_recipe", &int4_recipe));
  RETURN_IF_ERROR(s.Get("isa", &isa));
  RETURN_IF_ERROR(s.Get("max_length", &max_length));
  RETURN_IF_ERROR(s.Get("backend", &c->service.backend));
  if (c->service.backend != "encserve" && c->service.backend != "null") {
    return InvalidArgument("model.backend: unknown backend '" + c->service.backend +
                           "' (encserve, or null: zeros without running the model)");
  }
  if (!precision.empty() && !kernels::ParsePrecision(precision, &e.precision)) {
    return InvalidArgument("model.precision: unknown precision '" + precision +
                           "' (fp32, bf16, fp16, int8, int4)");
  }
  if (!int4_recipe.empty()) {
    auto r = ParseInt4Recipe(int4_recipe);
    if (!r.ok()) return InvalidArgument("model.int4_recipe: " + r.status().message());
    e.int4_recipe = *r;
  }
  if (!isa.empty() && isa != "auto") {
    kernels::Isa parsed;
    if (!kernels::ParseIsa(isa, &parsed)) {
      return InvalidArgument("model.isa: unknown ISA '" + isa +
                             "' (auto, scalar, avx2, avx512, amx)");
    }
    e.isa = parsed;
  }
  if (max_length > 0) e.max_length = max_length;
  return s.Finish();
}

}  // namespace

ServerConfig DefaultServerConfig(const std::string& default_model_dir) {
  ServerConfig c;
  c.service.engine.model_dir = default_model_dir;
  c.service.engine.threads = std::max(1u, std::thread::hardware_concurrency());
  c.service.engine.replicas = 1;
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
  auto wrap = [&](Status st) {
    return st.ok() ? st : Status(st.code(), where + ": " + st.message());
  };
  RETURN_IF_ERROR(wrap(top.Get("host", &c->host)));
  RETURN_IF_ERROR(wrap(top.Get("warmup", &c->service.warmup)));
  ASSIGN_OR_RETURN(Section model, top.Child("model"));
  RETURN_IF_ERROR(wrap(ApplyModel(model, c)));

  ASSIGN_OR_RETURN(Section engine, top.Child("engine"));
  int threads = c->service.engine.threads;
  RETURN_IF_ERROR(wrap(engine.Get("threads", &threads)));
  if (threads > 0) c->service.engine.threads = threads;
  RETURN_IF_ERROR(wrap(engine.Get("replicas", &c->service.engine.replicas)));
  RETURN_IF_ERROR(wrap(engine.Get("split_batches", &c->service.engine.split_batches)));
  RETURN_IF_ERROR(wrap(engine.Finish()));

  ASSIGN_OR_RETURN(Section batching, top.Child("batching"));
  scheduler::PolicyOptions& p = c->service.batcher.policy;
  int64_t wait_us = p.max_wait.count();
  RETURN_IF_ERROR(wrap(batching.Get("enabled", &p.enabled)));
  RETURN_IF_ERROR(wrap(batching.Get("max_batch_size", &p.max_batch_size)));
  RETURN_IF_ERROR(wrap(batching.Get("max_batch_tokens", &p.max_batch_tokens)));
  RETURN_IF_ERROR(wrap(batching.Get("max_wait_us", &wait_us)));
  RETURN_IF_ERROR(wrap(batching.Get("group_by_length", &p.group_by_length)));
  RETURN_IF_ERROR(wrap(batching.Finish()));
  p.max_wait = std::chrono::microseconds(wait_us);

  ASSIGN_OR_RETURN(Section queue, top.Child("queue"));
  RETURN_IF_ERROR(wrap(queue.Get("max_items", &c->service.batcher.max_queue_items)));
  RETURN_IF_ERROR(wrap(queue.Get("max_tokens", &c->service.batcher.max_queue_tokens)));
  RETURN_IF_ERROR(wrap(queue.Finish()));

  ASSIGN_OR_RETURN(Section limits, top.Child("limits"));
  RETURN_IF_ERROR(
      wrap(limits.Get("max_client_batch_size", &c->service.limits.max_client_batch_size)));
  RETURN_IF_ERROR(wrap(limits.Get("max_text_chars", &c->service.limits.max_text_chars)));
  RETURN_IF_ERROR(wrap(limits.Get("max_body_bytes", &c->max_body_bytes)));
  RETURN_IF_ERROR(wrap(limits.Get("request_timeout_ms", &c->request_timeout_ms)));
  RETURN_IF_ERROR(wrap(limits.Finish()));

  ASSIGN_OR_RETURN(Section grpc, top.Child("grpc"));
  RETURN_IF_ERROR(wrap(grpc.Get("enabled", &c->grpc_enabled)));
  RETURN_IF_ERROR(wrap(grpc.Get("port", &c->grpc_port)));
  RETURN_IF_ERROR(wrap(grpc.Finish()));

  ASSIGN_OR_RETURN(Section http, top.Child("http"));
  RETURN_IF_ERROR(wrap(http.Get("enabled", &c->http_enabled)));
  RETURN_IF_ERROR(wrap(http.Get("port", &c->http_port)));
  RETURN_IF_ERROR(wrap(http.Get("io_threads", &c->http_io_threads)));
  RETURN_IF_ERROR(wrap(http.Finish()));

  ASSIGN_OR_RETURN(Section auth, top.Child("auth"));
  std::string key_env;
  RETURN_IF_ERROR(wrap(auth.Get("api_key", &c->api_key)));
  RETURN_IF_ERROR(wrap(auth.Get("api_key_env", &key_env)));
  RETURN_IF_ERROR(wrap(auth.Finish()));
  if (!key_env.empty()) {
    const char* v = std::getenv(key_env.c_str());
    if (v == nullptr || *v == 0) {
      return InvalidArgument(where + ": auth.api_key_env names " + key_env + ", which is not set");
    }
    c->api_key = v;
  }

  ASSIGN_OR_RETURN(Section tls, top.Child("tls"));
  RETURN_IF_ERROR(wrap(tls.Get("cert_file", &c->tls_cert_file)));
  RETURN_IF_ERROR(wrap(tls.Get("key_file", &c->tls_key_file)));
  RETURN_IF_ERROR(wrap(tls.Finish()));

  ASSIGN_OR_RETURN(Section shutdown, top.Child("shutdown"));
  RETURN_IF_ERROR(wrap(shutdown.Get("grace_ms", &c->shutdown_grace_ms)));
  RETURN_IF_ERROR(wrap(shutdown.Finish()));
  return wrap(top.Finish());
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
  if (c.service.limits.max_client_batch_size > b.max_queue_items) {
    return InvalidArgument("limits.max_client_batch_size must not exceed queue.max_items");
  }
  return Status::Ok();
}

}  // namespace encserve::server
