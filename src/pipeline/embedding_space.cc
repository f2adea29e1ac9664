#include "pipeline/embedding_space.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "core/sha256.h"

namespace encserve {
namespace fs = std::filesystem;
namespace {

StatusOr<std::string> WeightsDigest(const fs::path& dir) {
  if (fs::exists(dir / "model.safetensors")) {
    return Sha256FileHex((dir / "model.safetensors").string());
  }
  std::vector<std::string> shards;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".safetensors") {
      shards.push_back(e.path().filename().string());
    }
  }
  std::sort(shards.begin(), shards.end());
  if (shards.empty()) {
    if (fs::exists(dir / "pytorch_model.bin")) {
      return Sha256FileHex((dir / "pytorch_model.bin").string());
    }
    return NotFound(dir.string() + ": no weights file (model.safetensors, *.safetensors or " +
                    "pytorch_model.bin) to fingerprint");
  }
  std::string lines;
  for (const std::string& s : shards) {
    ASSIGN_OR_RETURN(std::string d, Sha256FileHex((dir / s).string()));
    lines += s + " " + d + "\n";
  }
  return Sha256Hex(lines);
}

}  // namespace

StatusOr<EmbeddingSpace> DescribeEmbeddingSpace(const std::string& model_dir,
                                                const ModelConfig& config, int hidden_size,
                                                int max_tokens) {
  const fs::path dir(model_dir);
  EmbeddingSpace s;
  ASSIGN_OR_RETURN(s.weights_sha256, WeightsDigest(dir));
  const fs::path tok =
      fs::exists(dir / "tokenizer.json") ? dir / "tokenizer.json" : dir / "vocab.txt";
  ASSIGN_OR_RETURN(s.tokenizer_sha256, Sha256FileHex(tok.string()));
  s.pooling = PoolingModeName(config.pooling);
  s.normalize = config.normalize;
  s.dimensions = hidden_size;
  s.max_tokens = max_tokens;
  return s;
}

EmbeddingSpace WithOutput(EmbeddingSpace space, int dimensions, bool normalize) {
  space.dimensions = dimensions;
  space.normalize = normalize;
  return space;
}

std::string CanonicalText(const EmbeddingSpace& s) {
  return "encserve-embedding-space/1\nweights=" + s.weights_sha256 +
         "\ntokenizer=" + s.tokenizer_sha256 + "\npooling=" + s.pooling +
         "\nnormalize=" + (s.normalize ? "true" : "false") +
         "\ndimensions=" + std::to_string(s.dimensions) + "\nprompt=" + Sha256Hex(s.prompt) +
         "\nmax_tokens=" + std::to_string(s.max_tokens) + "\n";
}

std::string Fingerprint(const EmbeddingSpace& space) {
  return "es1-" + Sha256Hex(CanonicalText(space)).substr(0, 32);
}

}  // namespace encserve
