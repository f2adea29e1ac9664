#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

namespace encserve::app {

std::string DefaultModelDir() {
  const char* env = std::getenv("ENCSERVE_MODEL");
  return env && *env ? env : ENCSERVE_DEFAULT_MODEL_DIR;
}

std::string DefaultDataDir() {
  const char* env = std::getenv("ENCSERVE_DATA_DIR");
  return env && *env ? env : ENCSERVE_DEFAULT_DATA_DIR;
}

void AddEngineFlags(CLI::App* cmd, EngineFlags* flags) {
  flags->model = DefaultModelDir();
  cmd->add_option("-m,--model", flags->model,
                  "Hugging Face model folder (env ENCSERVE_MODEL overrides the default)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", flags->threads, "threads per replica")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--replicas", flags->replicas, "engine replicas (concurrent batches)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--no-split", flags->no_split,
                "never split a batch into per-thread runs of sequences; split every op over the "
                "threads instead (intra-op only)");
  cmd->add_option("--isa", flags->isa,
                  "force kernels: scalar|avx2|avx512|amx (avx512: no AMX tiles; default: best)")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512", "amx"}));
  cmd->add_option("-p,--precision", flags->precision,
                  "weights: fp32 | bf16 (AMX / AVX512-BF16 bf16 products where available) | fp16 "
                  "(storage; fp32 compute) | int8 | int4")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "int8", "int4"}));
  cmd->add_option("--group-size", flags->group_size, "int4 group size along K")
      ->capture_default_str()
      ->check(CLI::IsMember({32, 64, 128}));
  cmd->add_option("--int4-recipe", flags->int4_recipe,
                  "int4 weights: rtn (round to nearest) | rotate (+ Hadamard rotation, clip "
                  "search) | gptq (+ GPTQ on data-free calibration; a few seconds more to load)")
      ->capture_default_str()
      ->check(CLI::IsMember({"rtn", "rotate", "gptq"}));
  cmd->add_option("--max-length", flags->max_length,
                  "truncate inputs to this many tokens (default: the model's max_seq_length)");
}

std::unique_ptr<Engine> LoadEngineOrReport(const EngineFlags& flags) {
  EngineOptions o;
  o.model_dir = flags.model;
  o.threads = flags.threads;
  o.replicas = flags.replicas;
  o.split_batches = !flags.no_split;
  if (flags.max_length > 0) o.max_length = flags.max_length;
  kernels::ParsePrecision(flags.precision, &o.precision);
  o.group_size = flags.group_size;
  o.int4_recipe = ParseInt4Recipe(flags.int4_recipe).value();  // checked by the flag
  if (!flags.isa.empty()) {
    kernels::Isa isa;
    kernels::ParseIsa(flags.isa, &isa);
    o.isa = isa;
  }
  auto engine = Engine::Load(o);
  if (!engine.ok()) {
    std::cerr << "error: cannot load model: " << engine.status().ToString() << "\n";
    return nullptr;
  }
  return std::move(engine).value();
}

StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) return NotFound("cannot open " + path);
    in = &file;
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(*in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

}  // namespace encserve::app
