// The embedding space a model's vectors live in, and its fingerprint: a short hash of what
// decides where a text lands — the weights, the tokenizer, the pooling, the normalisation, the
// prompt, the output dimensions and the token length texts are truncated to — so that a vector
// store can refuse to mix vectors from two spaces. Precision and backend are not part of it (they
// change the vectors within the precision's tolerance, which the self-check measures:
// server/self_check.h); they are reported beside it. Documented in docs/server.md ("Embedding-space
// fingerprint").
#pragma once

#include <string>

#include "core/status.h"
#include "model/config.h"

namespace encserve {

struct EmbeddingSpace {
  std::string weights_sha256;    // the weights file's SHA-256 (several files: see below)
  std::string tokenizer_sha256;  // tokenizer.json's, else vocab.txt's
  std::string pooling;           // "mean" | "cls" | ...
  bool normalize = true;         // L2-normalised output
  int dimensions = 0;            // output dimensions (after a Matryoshka cut)
  std::string prompt;            // text put before every input ("" none)
  int max_tokens = 0;            // truncation length, specials included (max_length)
};

// Reads the folder's weights and tokenizer files and hashes them; pooling, normalize and
// dimensions (the full hidden size) from `config`; max_tokens as served. Weights:
// model.safetensors, else every top-level *.safetensors (sharded; hashed as their sorted "name
// digest" lines), else pytorch_model.bin. NOT_FOUND when the folder has no weights or tokenizer
// file.
StatusOr<EmbeddingSpace> DescribeEmbeddingSpace(const std::string& model_dir,
                                                const ModelConfig& config, int hidden_size,
                                                int max_tokens);

// The space of a request's vectors: `space` with its own dimensions / normalisation.
EmbeddingSpace WithOutput(EmbeddingSpace space, int dimensions, bool normalize);

// The canonical text the fingerprint hashes, one "key=value" line per field after a version
// line ("encserve-embedding-space/1").
std::string CanonicalText(const EmbeddingSpace& space);
// "es1-" + the first 32 hex digits of SHA-256(CanonicalText(space)).
std::string Fingerprint(const EmbeddingSpace& space);

}  // namespace encserve
