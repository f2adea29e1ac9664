// encserve info: what the loader understood about a model folder, and the kernels in use.
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "kernels/cpu_features.h"
#include "server/process_stats.h"

namespace encserve::app {

void RegisterInfo(CLI::App& app) {
  auto flags = std::make_shared<BackendFlags>();
  CLI::App* cmd = app.add_subcommand("info", "Print the model configuration encserve understood");
  AddBackendFlags(cmd, flags.get());
  cmd->callback([flags] {
    const double rss_before = server::ProcessResidentBytes();
    const auto t0 = std::chrono::steady_clock::now();
    auto engine = LoadPipelineOrReport(*flags);
    if (!engine) throw CLI::RuntimeError(1);
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ModelConfig& c = engine->config();
    const BertConfig& b = c.bert;
    nlohmann::ordered_json j;
    j["model_dir"] = engine->options().common.model_dir;
    j["architecture"] = b.architecture;
    j["kind"] = ModelKindName(c.kind);
    j["vocab_size"] = b.vocab_size;
    j["hidden_size"] = b.hidden_size;
    j["num_layers"] = b.num_layers;
    j["num_heads"] = b.num_heads;
    j["head_dim"] = b.head_dim();
    j["intermediate_size"] = b.intermediate_size;
    j["max_position_embeddings"] = b.max_position_embeddings;
    j["type_vocab_size"] = b.type_vocab_size;
    j["layer_norm_eps"] = b.layer_norm_eps;
    j["hidden_act"] = b.hidden_act;
    if (c.kind == ModelKind::kCrossEncoder) j["num_labels"] = c.num_labels;
    j["pooling"] = PoolingModeName(c.pooling);
    j["normalize"] = c.normalize;
    j["max_seq_length"] = engine->max_length();
    j["sentence_transformers"] = c.sentence_transformers;
    j["tokenizer_vocab_size"] = engine->tokenizer().vocab_size();
    AddBackendJson(*engine, &j);
    j["cpu"] = kernels::DetectCpu().brand;
    j["cpu_flags"] = kernels::CpuFlagsString();
    j["threads"] = engine->options().common.threads;
    j["replicas"] = engine->options().common.replicas;
    // What loading cost: wall time (tokenizer + backend chain) and this process's resident
    // memory after the load, and the growth the load caused.
    j["load_seconds"] = std::round(load_s * 1000) / 1000;
    j["resident_mb"] = std::round(server::ProcessResidentBytes() / 1e6 * 10) / 10;
    j["resident_mb_added_by_load"] =
        std::round((server::ProcessResidentBytes() - rss_before) / 1e6 * 10) / 10;
    std::cout << j.dump(2) << "\n";
  });
}

}  // namespace encserve::app
