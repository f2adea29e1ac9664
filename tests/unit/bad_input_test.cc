// Every bad input gives a clear error (never a crash): damaged or incomplete model folders,
// unsupported architectures, invalid UTF-8, empty batches, bad engine options.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "native_pipeline.h"
#include "test_util.h"

namespace encserve {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A writable copy of the tiny cross-encoder folder.
std::string CopyTiny(const TempDir& dir) {
  const std::string dst = dir / "model";
  fs::copy(testing::TestData() + "/tiny-cross-encoder", dst, fs::copy_options::recursive);
  return dst;
}

Status LoadStatus(const std::string& dir) {
  testing::NativeLoad o;
  o.model_dir = dir;
  auto e = testing::LoadNative(o);
  return e.ok() ? Status::Ok() : e.status();
}

void ExpectError(const Status& s, StatusCode code, const std::string& needle) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos)
      << "\"" << needle << "\" not in: " << s.message();
}

void EditConfig(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(testing::ReadFile(dir + "/config.json"));
  edit(j);
  testing::WriteFile(dir + "/config.json", j.dump());
}

TEST(BadModel, TruncatedSafetensorsNamesTheTensor) {
  TempDir tmp;
  const std::string dir = CopyTiny(tmp);
  const auto size = fs::file_size(dir + "/model.safetensors");
  fs::resize_file(dir + "/model.safetensors", size - 100);
  ExpectError(LoadStatus(dir), StatusCode::kDataLoss, "tensor \"");
  fs::resize_file(dir + "/model.safetensors", 5);
  ExpectError(LoadStatus(dir), StatusCode::kDataLoss, "too short");
}

TEST(BadModel, CorruptHeader) {
  TempDir tmp;
  const std::string dir = CopyTiny(tmp);
  std::string bytes = testing::ReadFile(dir + "/model.safetensors");
  bytes[8] = '#';  // the header's opening brace
  testing::WriteFile(dir + "/model.safetensors", bytes);
  ExpectError(LoadStatus(dir), StatusCode::kDataLoss, "not a valid JSON");
}

TEST(BadModel, MissingFiles) {
  ExpectError(LoadStatus("/nonexistent/model"), StatusCode::kNotFound, "does not exist");
  for (const char* missing : {"config.json", "model.safetensors", "vocab.txt"}) {
    TempDir tmp;
    const std::string dir = CopyTiny(tmp);
    fs::remove(dir + "/" + missing);
    Status s = LoadStatus(dir);
    EXPECT_FALSE(s.ok()) << missing;
    EXPECT_NE(s.message().find(missing == std::string("vocab.txt") ? "vocab" : missing),
              std::string::npos)
        << s.message();
  }
}

TEST(BadModel, WrongShapeNamesTheTensor) {
  TempDir tmp;
  const std::string dir = CopyTiny(tmp);
  EditConfig(dir, [](nlohmann::json& j) { j["intermediate_size"] = 48; });
  ExpectError(LoadStatus(dir), StatusCode::kInvalidArgument,
              "encoder.layer.0.intermediate.dense.weight");
}

TEST(BadModel, UnsupportedArchitectureAndActivation) {
  TempDir tmp;
  const std::string dir = CopyTiny(tmp);
  EditConfig(dir, [](nlohmann::json& j) {
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
  });
  ExpectError(LoadStatus(dir), StatusCode::kUnimplemented, "GPT2LMHeadModel");
  EditConfig(dir, [](nlohmann::json& j) {
    j["architectures"] = {"BertModel"};
    j["model_type"] = "bert";
    j["hidden_act"] = "relu";
  });
  ExpectError(LoadStatus(dir), StatusCode::kUnimplemented, "relu");
  EditConfig(dir, [](nlohmann::json& j) {
    j["hidden_act"] = "gelu";
    j["num_attention_heads"] = 5;
  });
  ExpectError(LoadStatus(dir), StatusCode::kInvalidArgument, "divisible");
  testing::WriteFile(dir + "/config.json", "{\"hidden_size\": ");
  ExpectError(LoadStatus(dir), StatusCode::kInvalidArgument, "config.json");
}

TEST(BadInput, InvalidUtf8EmptyBatchAndBadOptions) {
  testing::NativeLoad o;
  o.model_dir = testing::ModelDir();
  auto engine = testing::LoadNative(o);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ExpectError((*engine)->Embed({"fine", std::string("bad \xc3\x28 utf8")}).status(),
              StatusCode::kInvalidArgument, "text 1");
  ExpectError((*engine)->Embed({}).status(), StatusCode::kInvalidArgument, "no texts");
  ExpectError((*engine)->Score({}).status(), StatusCode::kInvalidArgument, "no pairs");
  ExpectError((*engine)->Logits({{"a", "b"}}).status(), StatusCode::kFailedPrecondition,
              "cross-encoder");
  // Still serving after the errors.
  EXPECT_TRUE((*engine)->Embed({"still works"}).ok());
  TokenBatch bad;
  bad.Add({101, 999999, 102}, {});
  EXPECT_EQ((*engine)->backend().Run(backends::Task::kEmbed, bad).status().code(),
            StatusCode::kInvalidArgument);
  o.threads = 0;
  EXPECT_EQ(testing::LoadNative(o).status().code(), StatusCode::kInvalidArgument);
  o.threads = 1;
  o.max_length = 1000;
  ExpectError(testing::LoadNative(o).status(), StatusCode::kInvalidArgument, "max_length");
}

TEST(ModelConfig, ReadsSentenceTransformersSettings) {
  auto c = LoadModelConfig(testing::ModelDir());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, ModelKind::kEmbedding);
  EXPECT_EQ(c->bert.hidden_size, 384);
  EXPECT_EQ(c->bert.num_layers, 6);
  EXPECT_EQ(c->bert.num_heads, 12);
  EXPECT_EQ(c->bert.intermediate_size, 1536);
  EXPECT_EQ(c->max_seq_length, 256);
  EXPECT_EQ(c->pooling, PoolingMode::kMean);
  EXPECT_TRUE(c->normalize);
  EXPECT_TRUE(c->sentence_transformers);
  auto t = LoadModelConfig(testing::TestData() + "/tiny-cross-encoder-2labels");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kind, ModelKind::kCrossEncoder);
  EXPECT_EQ(t->num_labels, 2);
}

}  // namespace
}  // namespace encserve
