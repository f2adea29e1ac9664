#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "backends/registry.h"
#include "kernels/precision.h"

namespace encserve::app {

std::string DefaultModelDir() {
  const char* env = std::getenv("ENCSERVE_MODEL");
  return env && *env ? env : ENCSERVE_DEFAULT_MODEL_DIR;
}

std::string DefaultDataDir() {
  const char* env = std::getenv("ENCSERVE_DATA_DIR");
  return env && *env ? env : ENCSERVE_DEFAULT_DATA_DIR;
}

void AddBackendFlags(CLI::App* cmd, BackendFlags* flags) {
  flags->cmd = cmd;
  flags->model = DefaultModelDir();
  cmd->add_option("-m,--model", flags->model,
                  "Hugging Face model folder (env ENCSERVE_MODEL overrides the default)")
      ->capture_default_str();
  cmd->add_option("--backend", flags->backend,
                  "what runs the model: " + backends::BackendNames(false) + " (docs/backends.md)")
      ->capture_default_str();
  cmd->add_option("--fallback", flags->fallback,
                  "backends tried in order when --backend fails to load or fails a batch")
      ->delimiter(',');
  cmd->add_option("--backend-opt", flags->backend_opts,
                  "a backend option NAME.KEY=VALUE (repeatable), e.g. native.isa=avx512");
  cmd->add_option("-p,--precision", flags->precision,
                  "weights: fp32 | bf16 | fp16 | int8 | int4 (what each backend supports: "
                  "docs/backends.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "int8", "int4"}));
  cmd->add_option("-t,--threads", flags->threads, "threads per replica")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--replicas", flags->replicas, "batches computed concurrently")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-length", flags->max_length,
                  "truncate inputs to this many tokens (default: the model's max_seq_length)");
  // Each backend's own flags, from the registry.
  for (const backends::BackendSpec& spec : backends::Registry()) {
    for (const backends::OptionSpec& o : spec.options) {
      if (o.flag.empty() || cmd->get_option_no_throw(o.flag) != nullptr) continue;
      const std::string id = spec.name + "." + o.key;
      const std::string help = o.help + " (" + id + ")";
      if (!o.flag_value.empty()) {
        cmd->add_flag(o.flag, flags->switches[id], help);
      } else {
        auto* opt = cmd->add_option(o.flag, flags->values[id], help);
        if (!o.allowed.empty()) opt->check(CLI::IsMember(o.allowed));
      }
    }
  }
}

Status ApplyBackendFlags(const BackendFlags& f, bool only_given, PipelineOptions* p) {
  auto use = [&](const char* flag) { return !only_given || f.Given(flag); };
  if (use("--model")) p->common.model_dir = f.model;
  if (use("--backend")) p->backend = f.backend;
  if (use("--fallback")) p->fallback = f.fallback;
  if (use("--precision")) kernels::ParsePrecision(f.precision, &p->common.precision);
  if (use("--threads")) p->common.threads = f.threads;
  if (use("--replicas")) p->common.replicas = f.replicas;
  if (f.Given("--max-length") && f.max_length > 0) p->max_length = f.max_length;
  for (const backends::BackendSpec& spec : backends::Registry()) {
    for (const backends::OptionSpec& o : spec.options) {
      const std::string id = spec.name + "." + o.key;
      if (o.flag.empty() || !f.Given(o.flag.c_str())) continue;
      p->sections[spec.name][o.key] = o.flag_value.empty() ? f.values.at(id) : o.flag_value;
    }
  }
  for (const std::string& opt : f.backend_opts) {
    RETURN_IF_ERROR(backends::ParseBackendOpt(opt, &p->sections));
  }
  return Status::Ok();
}

std::unique_ptr<Pipeline> LoadPipelineOrReport(const BackendFlags& flags) {
  PipelineOptions o;
  Status st = ApplyBackendFlags(flags, /*only_given=*/false, &o);
  if (!st.ok()) {
    std::cerr << "error: " << st.message() << "\n";
    return nullptr;
  }
  backends::FallbackObserver observer;
  observer.log = [](const std::string& line) { std::cerr << "[backend] " << line << "\n"; };
  auto pipeline = Pipeline::Load(o, observer);
  if (!pipeline.ok()) {
    std::cerr << "error: cannot load model: " << pipeline.status().ToString() << "\n";
    return nullptr;
  }
  return std::move(pipeline).value();
}

std::string DescribeBackend(const backends::BackendInfo& info) {
  const std::string kernels = info.kernels();
  return info.name + " (" + info.precision + (kernels.empty() ? "" : ", kernels " + kernels) + ")";
}

std::string BackendOption(const Pipeline& pipeline, const std::string& backend,
                          const std::string& key) {
  const backends::BackendSpec* spec = backends::FindBackend(backend);
  if (spec == nullptr) return "";
  auto it = pipeline.options().sections.find(backend);
  const backends::Section none;
  return backends::OptionValue(*spec, it == pipeline.options().sections.end() ? none : it->second,
                               key);
}

void AddBackendJson(const Pipeline& pipeline, nlohmann::ordered_json* j) {
  const backends::BackendInfo& info = pipeline.backend().info();
  (*j)["backend"] = info.name;
  (*j)["precision"] = info.precision;
  (*j)["library"] = info.library;
  if (pipeline.options().common.precision == kernels::Precision::kInt4 && info.name == "native") {
    (*j)["group_size"] = std::stoi(BackendOption(pipeline, "native", "group_size"));
    (*j)["int4_recipe"] = BackendOption(pipeline, "native", "int4_recipe");
  }
  (*j)["kernels"] = info.fp32_kernels;
  (*j)["quant_kernels"] = info.quant_kernels;
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
