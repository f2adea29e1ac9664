// server.yaml: the shipped file equals the built-in defaults, overrides apply, and typos or
// wrong types are clear errors.
#include "server/server_config.h"

#include <gtest/gtest.h>

#include "backends/registry.h"
#include "test_util.h"

namespace encserve::server {
namespace {

const std::string kSourceDir = ENCSERVE_SOURCE_DIR;

TEST(ServerConfig, ShippedFileEqualsTheDefaults) {
  ServerConfig defaults = DefaultServerConfig("/m");
  ServerConfig c = DefaultServerConfig("/m");
  ASSERT_TRUE(ApplyServerYamlFile(kSourceDir + "/configs/server.yaml", &c).ok());
  EXPECT_EQ(c.host, defaults.host);
  EXPECT_EQ(c.grpc_port, 50051);
  EXPECT_EQ(c.http_port, 8080);
  const PipelineOptions& p = c.service.pipeline;
  EXPECT_EQ(p.common.model_dir, "/m");
  EXPECT_EQ(p.common.threads, defaults.service.pipeline.common.threads);
  EXPECT_EQ(p.common.precision, kernels::Precision::kF32);
  EXPECT_EQ(p.backend, "native");
  EXPECT_TRUE(p.fallback.empty());
  EXPECT_FALSE(p.max_length.has_value());
  // The file spells out every option of every backend with its registry default.
  for (const backends::BackendSpec& spec : backends::Registry()) {
    for (const backends::OptionSpec& o : spec.options) {
      auto it = p.sections.find(spec.name);
      ASSERT_NE(it, p.sections.end()) << spec.name << " has no section in server.yaml";
      ASSERT_TRUE(it->second.count(o.key)) << spec.name << "." << o.key << " missing";
      EXPECT_EQ(it->second.at(o.key), o.default_value) << spec.name << "." << o.key;
    }
  }
  const backends::FallbackPolicy policy;
  EXPECT_EQ(p.fallback_policy.max_failures, policy.max_failures);
  EXPECT_EQ(p.fallback_policy.retry_after_ms, policy.retry_after_ms);
  EXPECT_EQ(p.fallback_policy.batch_timeout_ms, policy.batch_timeout_ms);
  EXPECT_EQ(c.service.batcher.policy.max_batch_size,
            defaults.service.batcher.policy.max_batch_size);
  EXPECT_EQ(c.service.batcher.policy.max_batch_tokens,
            defaults.service.batcher.policy.max_batch_tokens);
  EXPECT_EQ(c.service.batcher.policy.max_wait, defaults.service.batcher.policy.max_wait);
  EXPECT_EQ(c.service.batcher.max_queue_items, defaults.service.batcher.max_queue_items);
  EXPECT_EQ(c.service.batcher.max_queue_tokens, defaults.service.batcher.max_queue_tokens);
  EXPECT_EQ(c.service.limits.max_client_batch_size, defaults.service.limits.max_client_batch_size);
  EXPECT_EQ(c.service.limits.max_text_chars, defaults.service.limits.max_text_chars);
  EXPECT_EQ(c.max_body_bytes, defaults.max_body_bytes);
  EXPECT_EQ(c.request_timeout_ms, defaults.request_timeout_ms);
  EXPECT_EQ(c.shutdown_grace_ms, defaults.shutdown_grace_ms);
  EXPECT_TRUE(c.cors_origins.empty());  // CORS off
  EXPECT_EQ(c.access_log, "");          // no access log
  EXPECT_TRUE(ValidateServerConfig(c).ok());
}

TEST(ServerConfig, CorsOriginsAndAccessLog) {
  ServerConfig c = DefaultServerConfig("/m");
  ASSERT_TRUE(ApplyServerYaml(R"(
http: {cors_origins: ["https://app.example.com", "http://localhost:3000"]}
log: {access_log: /var/log/encserve/access.log}
)",
                              "t.yaml", &c)
                  .ok());
  EXPECT_EQ(c.cors_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:3000"}));
  EXPECT_EQ(c.access_log, "/var/log/encserve/access.log");
  EXPECT_TRUE(ValidateServerConfig(c).ok());
  c.cors_origins = {"https://app.example.com/"};
  EXPECT_NE(ValidateServerConfig(c).message().find("http.cors_origins: 'https://app.example.com/'"),
            std::string::npos);
  ServerConfig d = DefaultServerConfig("/m");
  EXPECT_NE(ApplyServerYaml("log: {acess_log: x}", "t.yaml", &d).message().find("log.acess_log"),
            std::string::npos);
}

TEST(ServerConfig, SelfCheck) {
  ServerConfig c = DefaultServerConfig("/m");
  EXPECT_TRUE(c.service.self_check.enabled);
  EXPECT_TRUE(c.service.self_check.refuse);
  EXPECT_FALSE(c.service.self_check.min_cosine.has_value());
  // The shipped file spells out the defaults (poisoned values are overwritten).
  c.service.self_check = {false, "x.json", 0.5, false};
  ASSERT_TRUE(ApplyServerYamlFile(kSourceDir + "/configs/server.yaml", &c).ok());
  EXPECT_TRUE(c.service.self_check.enabled);
  EXPECT_TRUE(c.service.self_check.refuse);
  EXPECT_EQ(c.service.self_check.golden, "");
  EXPECT_FALSE(c.service.self_check.min_cosine.has_value());
  ASSERT_TRUE(ApplyServerYaml("self_check: {action: warn, min_cosine: 0.995, golden: /g.json}",
                              "t.yaml", &c)
                  .ok());
  EXPECT_FALSE(c.service.self_check.refuse);
  EXPECT_DOUBLE_EQ(c.service.self_check.min_cosine.value_or(0), 0.995);
  EXPECT_EQ(c.service.self_check.golden, "/g.json");
  EXPECT_NE(ApplyServerYaml("self_check: {action: ignore}", "t.yaml", &c)
                .message()
                .find("self_check.action: 'ignore' is not refuse or warn"),
            std::string::npos);
  EXPECT_NE(ApplyServerYaml("self_check: {min_cosine: 1.5}", "t.yaml", &c)
                .message()
                .find("self_check.min_cosine must be in 0..1"),
            std::string::npos);
  EXPECT_NE(ApplyServerYaml("self_check: {treshold: 0.9}", "t.yaml", &c)
                .message()
                .find("self_check.treshold"),
            std::string::npos);
}

// priority: the shipped file spells out the defaults; values and errors.
TEST(ServerConfig, Priority) {
  ServerConfig c = DefaultServerConfig("/m");
  const ServerConfig defaults = c;
  EXPECT_EQ(c.service.default_priority, scheduler::Priority::kInteractive);
  // The shipped file spells out the defaults (poisoned values are overwritten).
  c.service.default_priority = scheduler::Priority::kBatch;
  c.service.batcher.batch_slice = std::chrono::microseconds(1);
  c.service.batcher.policy.batch_starvation_bound = std::chrono::microseconds(1);
  ASSERT_TRUE(ApplyServerYamlFile(kSourceDir + "/configs/server.yaml", &c).ok());
  EXPECT_EQ(c.service.default_priority, scheduler::Priority::kInteractive);
  EXPECT_EQ(c.service.batcher.batch_slice, defaults.service.batcher.batch_slice);
  EXPECT_EQ(c.service.batcher.policy.batch_starvation_bound,
            defaults.service.batcher.policy.batch_starvation_bound);
  ASSERT_TRUE(ApplyServerYaml("priority: {default: Batch, batch_slice_ms: 0.5, "
                              "batch_max_wait_ms: 300}",
                              "t.yaml", &c)
                  .ok());
  EXPECT_EQ(c.service.default_priority, scheduler::Priority::kBatch);
  EXPECT_EQ(c.service.batcher.batch_slice, std::chrono::microseconds(500));
  EXPECT_EQ(c.service.batcher.policy.batch_starvation_bound, std::chrono::milliseconds(300));
  EXPECT_NE(ApplyServerYaml("priority: {default: urgent}", "t.yaml", &c)
                .message()
                .find("priority.default: 'urgent' is not interactive or batch"),
            std::string::npos);
  EXPECT_NE(ApplyServerYaml("priority: {batch_slice_ms: -1}", "t.yaml", &c)
                .message()
                .find("priority.batch_slice_ms must be 0..60000"),
            std::string::npos);
  EXPECT_NE(ApplyServerYaml("priority: {batch_max_wait_ms: 0}", "t.yaml", &c)
                .message()
                .find("priority.batch_max_wait_ms must be positive"),
            std::string::npos);
  EXPECT_NE(ApplyServerYaml("priority: {slice: 1}", "t.yaml", &c).message().find("priority.slice"),
            std::string::npos);
}

// The reliability options: the shipped file sets each one (poisoned values are overwritten)
// to the built-in default.
TEST(ServerConfig, ShippedFileSetsTheReliabilityOptions) {
  const ServerConfig d = DefaultServerConfig("/m");
  ServerConfig c = d;
  c.service.batcher.queue_budget = std::chrono::milliseconds(7);
  c.service.limits.max_tokenize_tokens = 7;
  c.http_max_connections = c.http_max_header_bytes = 7;
  c.http_header_timeout_ms = c.http_body_timeout_ms = 7;
  c.http_idle_timeout_ms = c.http_write_timeout_ms = 7;
  c.metrics_open = false;
  c.compute_nice = 7;
  ASSERT_TRUE(ApplyServerYamlFile(kSourceDir + "/configs/server.yaml", &c).ok());
  EXPECT_EQ(c.service.batcher.queue_budget, std::chrono::milliseconds(100));
  EXPECT_EQ(c.service.batcher.queue_budget, d.service.batcher.queue_budget);
  EXPECT_EQ(c.service.limits.max_tokenize_tokens, d.service.limits.max_tokenize_tokens);
  EXPECT_EQ(c.http_max_connections, d.http_max_connections);
  EXPECT_EQ(c.http_max_header_bytes, d.http_max_header_bytes);
  EXPECT_EQ(c.http_header_timeout_ms, d.http_header_timeout_ms);
  EXPECT_EQ(c.http_body_timeout_ms, d.http_body_timeout_ms);
  EXPECT_EQ(c.http_idle_timeout_ms, d.http_idle_timeout_ms);
  EXPECT_EQ(c.http_write_timeout_ms, d.http_write_timeout_ms);
  EXPECT_TRUE(c.metrics_open);
  EXPECT_EQ(c.compute_nice, d.compute_nice);
  ServerConfig bad = d;
  ASSERT_TRUE(ApplyServerYaml("queue: {budget_ms: -1}", "t", &bad).ok());
  EXPECT_NE(ValidateServerConfig(bad).message().find("budget_ms"), std::string::npos);
}

TEST(ServerConfig, OverridesApply) {
  ServerConfig c = DefaultServerConfig("/m");
  ASSERT_TRUE(ApplyServerYaml(R"(
model: {precision: int8, max_length: 128}
engine: {threads: 1, replicas: 2}
backend: fault
fallback: [native, "null"]
fallback_policy: {max_failures: 5, retry_after_ms: 100, batch_timeout_ms: 250}
native: {int4_recipe: rotate, split_batches: false}
fault: {fail_every: 3}
batching: {enabled: false, max_batch_size: 8, max_wait_us: 1500}
http: {port: 9000}
)",
                              "t.yaml", &c)
                  .ok());
  const PipelineOptions& p = c.service.pipeline;
  EXPECT_EQ(p.common.precision, kernels::Precision::kInt8);
  EXPECT_EQ(p.max_length, 128);
  EXPECT_EQ(p.sections.at("native").at("int4_recipe"), "rotate");
  EXPECT_EQ(p.sections.at("native").at("split_batches"), "false");
  EXPECT_EQ(p.sections.at("fault").at("fail_every"), "3");
  EXPECT_EQ(p.common.replicas, 2);
  EXPECT_EQ(p.backend, "fault");
  EXPECT_EQ(p.fallback, (std::vector<std::string>{"native", "null"}));
  EXPECT_EQ(p.fallback_policy.max_failures, 5);
  EXPECT_EQ(p.fallback_policy.retry_after_ms, 100);
  EXPECT_EQ(p.fallback_policy.batch_timeout_ms, 250);
  EXPECT_FALSE(c.service.batcher.policy.enabled);
  EXPECT_EQ(c.service.batcher.policy.max_batch_size, 8);
  EXPECT_EQ(c.service.batcher.policy.max_wait.count(), 1500);
  EXPECT_EQ(c.http_port, 9000);
  EXPECT_EQ(c.grpc_port, 50051);
}

TEST(ServerConfig, ErrorsAreClear) {
  auto err = [](const std::string& yaml) {
    ServerConfig c = DefaultServerConfig("/m");
    Status st = ApplyServerYaml(yaml, "t.yaml", &c);
    return st.ok() ? std::string("OK") : st.message();
  };
  EXPECT_NE(err("batching: {max_batch_sise: 8}").find("unknown key batching.max_batch_sise"),
            std::string::npos);
  EXPECT_NE(err("grpc: {port: fifty}").find("grpc.port: expected an integer"), std::string::npos);
  EXPECT_NE(err("model: {precision: int3}").find("unknown precision"), std::string::npos);
  EXPECT_NE(err("native: {int4_recipe: awq}").find("native.int4_recipe: 'awq' is not one of"),
            std::string::npos);
  EXPECT_NE(err("native: {colour: blue}").find("native.colour: unknown option of backend native"),
            std::string::npos);
  EXPECT_NE(err("backend: tpu").find("unknown backend 'tpu' (native | null | fault | torch"),
            std::string::npos);
  EXPECT_NE(err("fallback: [native, tpu]").find("fallback: unknown backend 'tpu'"),
            std::string::npos);
  EXPECT_NE(err("fallback: native").find("fallback: expected a list"), std::string::npos);
  // Keys of earlier versions say where they went.
  EXPECT_NE(err("model: {isa: avx2}").find("write native.isa"), std::string::npos);
  EXPECT_NE(err("model: {backend: encserve}").find("backend: NAME at the top level"),
            std::string::npos);
  EXPECT_NE(err("engine: {split_batches: false}").find("native.split_batches"), std::string::npos);
  EXPECT_NE(err("engine: 3").find("engine: expected a mapping"), std::string::npos);
  EXPECT_NE(err("a: [b").find("not valid YAML"), std::string::npos);
  EXPECT_NE(err("colour: blue").find("unknown key colour"), std::string::npos);
  EXPECT_NE(err("auth: {api_key_env: ENCSERVE_NO_SUCH_VARIABLE}").find("not set"),
            std::string::npos);
  ServerConfig c = DefaultServerConfig("/m");
  c.http_port = c.grpc_port;
  EXPECT_FALSE(ValidateServerConfig(c).ok());
  c = DefaultServerConfig("/m");
  c.tls_cert_file = "x.pem";
  EXPECT_FALSE(ValidateServerConfig(c).ok());
  c = DefaultServerConfig("/m");
  c.service.pipeline.fallback_policy.max_failures = 0;
  EXPECT_FALSE(ValidateServerConfig(c).ok());
}

}  // namespace
}  // namespace encserve::server
