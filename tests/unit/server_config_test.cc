// server.yaml: the shipped file equals the built-in defaults, overrides apply, and typos or
// wrong types are clear errors.
#include "server/server_config.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(c.service.engine.model_dir, "/m");
  EXPECT_EQ(c.service.engine.threads, defaults.service.engine.threads);
  EXPECT_EQ(c.service.engine.precision, kernels::Precision::kF32);
  EXPECT_EQ(c.service.engine.int4_recipe, defaults.service.engine.int4_recipe);
  EXPECT_FALSE(c.service.engine.isa.has_value());
  EXPECT_FALSE(c.service.engine.max_length.has_value());
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
  EXPECT_TRUE(ValidateServerConfig(c).ok());
}

TEST(ServerConfig, OverridesApply) {
  ServerConfig c = DefaultServerConfig("/m");
  ASSERT_TRUE(ApplyServerYaml(R"(
model: {precision: int8, max_length: 128, int4_recipe: rotate}
engine: {threads: 1, replicas: 2, split_batches: false}
batching: {enabled: false, max_batch_size: 8, max_wait_us: 1500}
http: {port: 9000}
)",
                              "t.yaml", &c)
                  .ok());
  EXPECT_EQ(c.service.engine.precision, kernels::Precision::kInt8);
  EXPECT_EQ(c.service.engine.max_length, 128);
  EXPECT_EQ(c.service.engine.int4_recipe, Int4Recipe::kRotate);
  EXPECT_EQ(c.service.engine.replicas, 2);
  EXPECT_FALSE(c.service.engine.split_batches);
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
  EXPECT_NE(err("model: {int4_recipe: awq}").find("model.int4_recipe: int4 recipe must be"),
            std::string::npos);
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
}

}  // namespace
}  // namespace encserve::server
