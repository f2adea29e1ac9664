// libFuzzer target: the model folder's config parsers (model/config.h): config.json,
// tokenizer_config.json, modules.json, the Pooling module's config.json and
// sentence_bert_config.json, through ParseModelConfig (LoadModelConfig without the disk).
//
// Input: the files' texts separated by kSeparator, in the order of kFiles; a missing or empty
// part is an absent file. The Pooling config is served for whatever path modules.json names.
// Invariants of a config that loads: positive dimensions, hidden_size divisible by the heads,
// 2 <= max_seq_length <= max_position_embeddings, a cross-encoder has >= 1 label and its label
// names are absent or one per label.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "model/config.h"

namespace encserve::fuzz {
namespace {

constexpr const char* kSeparator = "\n%%\n";
constexpr const char* kDir = "/fuzz-model";
// Parts 0-3 by name; part 4 is any other file (the Pooling module's config.json).
constexpr const char* kFiles[] = {"config.json", "tokenizer_config.json", "modules.json",
                                  "sentence_bert_config.json"};
constexpr size_t kParts = 5;

void CheckConfig(const ModelConfig& c) {
  const BertConfig& b = c.bert;
  FUZZ_CHECK(b.vocab_size > 0 && b.hidden_size > 0 && b.num_layers > 0 && b.num_heads > 0 &&
                 b.intermediate_size > 0 && b.max_position_embeddings > 0 && b.type_vocab_size > 0,
             "dimensions");
  FUZZ_CHECK(b.hidden_size % b.num_heads == 0, "heads");
  FUZZ_CHECK(c.max_seq_length >= 2 && c.max_seq_length <= b.max_position_embeddings,
             "max_seq_length " + std::to_string(c.max_seq_length));
  if (c.kind == ModelKind::kCrossEncoder) {
    FUZZ_CHECK(c.num_labels >= 1, "num_labels");
    FUZZ_CHECK(c.labels.empty() || c.labels.size() == size_t(c.num_labels), "labels");
  }
}

}  // namespace
}  // namespace encserve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace encserve;
  using namespace encserve::fuzz;
  const std::vector<std::string> parts = Split(AsText(data, size), kSeparator, kParts);
  auto part = [&](size_t i) {
    return i < parts.size() && !parts[i].empty() ? std::optional<std::string>(parts[i])
                                                 : std::nullopt;
  };
  const ModelFileReader read =
      [&](const std::filesystem::path& file) -> StatusOr<std::optional<std::string>> {
    for (size_t i = 0; i < std::size(kFiles); ++i) {
      if (file == std::filesystem::path(kDir) / kFiles[i]) return part(i);
    }
    return part(kParts - 1);
  };
  auto config = ParseModelConfig(kDir, read);
  if (config.ok()) CheckConfig(*config);

  // config.json's parser alone, as the tests call it.
  int labels = -1;
  auto bert = ParseBertConfig(parts[0], "config.json", &labels);
  if (bert.ok()) FUZZ_CHECK(bert->num_heads > 0 && labels >= 0, "ParseBertConfig");
  return 0;
}
