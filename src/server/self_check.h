// The server checks its own quality (docs/server.md, "Self-check"): at start-up the model
// embeds a shipped golden set — texts with reference embeddings from the fp32 reference stack
// (sentence-transformers), for these exact weights — through the configured backend chain and
// precision, and the lowest cosine to the references decides whether the server becomes ready.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "pipeline/pipeline.h"

namespace encserve::server {

// A golden set file (selfcheck/*.json, written by tools/gen_selfcheck_golden.py).
struct GoldenSet {
  std::string path;
  std::string model;           // e.g. "sentence-transformers/all-MiniLM-L6-v2"
  std::string weights_sha256;  // the weights the references were computed with
  std::string reference;       // how they were computed
  bool normalize = true;       // references are L2-normalised
  int max_length = 0;          // tokens the references were made at (0: not recorded)
  int dim = 0;
  std::vector<std::string> texts;
  std::vector<float> embeddings;  // [texts.size(), dim], row-major
};

// Parses a golden set; INVALID_ARGUMENT naming `where` and the field when malformed (missing
// fields, a row of the wrong length, non-finite values, no texts).
StatusOr<GoldenSet> ParseGoldenSet(const std::string& json_text, const std::string& where);
// The golden set for `weights_sha256`: `file` when set (an error when it does not parse; a
// different weights digest is an error too), else the first *.json in `dirs` (in order; missing
// folders skipped) whose weights_sha256 matches. std::nullopt when none does.
StatusOr<std::optional<GoldenSet>> FindGoldenSet(const std::string& file,
                                                 const std::vector<std::string>& dirs,
                                                 const std::string& weights_sha256);
// Where the server looks when self_check.golden is not set: <model_dir>/encserve-selfcheck,
// $ENCSERVE_SELFCHECK_DIR, then the source tree's selfcheck/ (compiled in).
std::vector<std::string> DefaultGoldenDirs(const std::string& model_dir);

struct SelfCheckOptions {
  bool enabled = true;
  std::string golden;                // a golden set file; "" = search DefaultGoldenDirs
  std::optional<double> min_cosine;  // default: DefaultMinCosine(precision)
  bool refuse = true;                // below the threshold: not ready (false: warn and serve)
};

struct SelfCheckResult {
  std::string status = "off";  // "passed" | "failed" | "skipped" | "off"
  std::string reason;          // why failed / skipped
  std::string note;            // e.g. texts left out for another max_length
  std::string golden;          // the golden set's path
  int texts = 0;
  double min_cosine = 0, mean_cosine = 0, threshold = 0;
  int worst_text = -1;  // index of the text with min_cosine
  double seconds = 0;
  bool blocks_ready() const { return status == "failed" && refuse; }
  bool refuse = true;
};

// The lowest cosine a precision must reach against the fp32 references (the bounds that
// tests/unit/precision_test.cc holds on 800 real texts): fp32 0.9999, fp16 0.9995, bf16 0.999,
// int8 0.99, int4 0.90; others 0.99.
double DefaultMinCosine(const std::string& precision);

// Cosines of `rows` ([n, dim], normalised as the golden set says) to the references.
SelfCheckResult CompareToGolden(const GoldenSet& golden, const std::vector<float>& rows,
                                double threshold);

// The texts of `golden` that give the same tokens at `max_length` as at the golden set's own
// length: all of them when the lengths agree (or the set's is not recorded), else those whose
// whole text fits the smaller length.
GoldenSet RowsForMaxLength(const GoldenSet& golden, const Tokenizer& tokenizer, int max_length);

// The whole check on a loaded pipeline (library path: the same tokenizer, backend chain and
// post-processing as serving). Skipped for cross-encoders, for the null backend (precision
// "none": no real computation) and when no golden set matches the weights.
SelfCheckResult RunSelfCheck(const Pipeline& pipeline, const SelfCheckOptions& options,
                             const std::string& weights_sha256, const std::string& precision);

}  // namespace encserve::server
