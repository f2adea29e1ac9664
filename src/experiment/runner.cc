#include "experiment/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include "experiment/provenance.h"
#include "experiment/results_report.h"
#include "experiment/runner_internal.h"
#include "experiment/server_process.h"

namespace encserve::experiment {
namespace {

using json = nlohmann::ordered_json;
using internal::Point;

// What a sweep needs besides the server settings: where it writes and logs, what it sends.
struct SweepEnv {
  const ExperimentConfig* c = nullptr;
  const RunOptions* o = nullptr;
  const bench::Workload* workload = nullptr;
  std::string dir, yaml, log_path;
  std::string variant;  // the variant's label; "" for a single-model experiment
  std::function<void(const std::string&)> log;
};

// What a just-started server reports: /info, its load time and its resident memory before any
// load (process_resident_memory_bytes from /metrics).
StatusOr<json> ServerInfo(const ServerProcess& server, double load_seconds) {
  ASSIGN_OR_RETURN(std::string info_text, HttpGet(server.http_port(), "/info"));
  const nlohmann::json info = nlohmann::json::parse(info_text, nullptr, false);
  if (info.is_discarded()) return Internal("GET /info: not JSON: " + info_text.substr(0, 80));
  json out = {{"precision", info.value("precision", "")},
              {"kernels", info.value("isa", "")},
              {"quant_kernels", info.value("quant_kernels", "")},
              {"backend", info.value("backend", "")},
              {"backends", info.value("backends", nlohmann::json::array())},
              {"model_id", info.value("model_id", "")},
              {"model_kind", info.value("model_kind", "")},
              {"load_seconds", load_seconds},
              {"resident_mb", nullptr}};
  auto metrics = server.Metrics();
  if (metrics.ok()) {
    auto it = metrics->find("process_resident_memory_bytes");
    if (it != metrics->end()) out["resident_mb"] = it->second / (1024.0 * 1024.0);
  }
  return out;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Starts the server once per max_wait value and runs every point with it. Points go to *points
// (tagged with the variant's label, if any); the first start's ServerInfo to *server.
Status RunSweep(const SweepEnv& env, const ServerSettings& s, json* server, json* points) {
  const ExperimentConfig& c = *env.c;
  std::vector<int> waits = c.sweep.max_wait_us;
  if (waits.empty()) waits.push_back(s.max_wait_us);
  const size_t per_server =
      (c.sweep.batch_sizes.size() * (c.sweep.concurrency_levels.size() + c.sweep.rates.size())) *
      static_cast<size_t>(c.sweep.repeats);
  const size_t total = per_server * waits.size();
  size_t done = 0;
  for (int wait : waits) {
    env.log("starting the server (" + s.precision + ", backend " + s.backend + ", max_wait_us " +
            std::to_string(wait) + ")");
    const auto t0 = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(ServerProcess proc,
                     ServerProcess::Start(env.o->binary, internal::ServeArgs(s, wait, env.yaml),
                                          env.dir, env.log_path));
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (server->empty()) {
      ASSIGN_OR_RETURN(*server, ServerInfo(proc, load_s));
      const json& rss = (*server)["resident_mb"];
      env.log("ready in " + Fixed(load_s, 2) + " s, resident " +
              (rss.is_number() ? Fixed(rss.get<double>(), 0) + " MB" : std::string("unknown")));
    }
    env.log("live dashboard of this server while it runs: http://127.0.0.1:" +
            std::to_string(proc.http_port()) + "/dashboard");
    for (int rep = 0; rep < c.sweep.repeats; ++rep) {
      for (int batch : c.sweep.batch_sizes) {
        for (auto [conc, rate] : internal::Shapes(c.sweep)) {
          std::string line;
          ASSIGN_OR_RETURN(json p, internal::RunPoint(c, proc, *env.workload,
                                                      Point{batch, conc, wait, rep, rate}, &line));
          if (!env.variant.empty()) p["variant"] = env.variant;
          points->push_back(std::move(p));
          env.log("point " + std::to_string(++done) + "/" + std::to_string(total) + ": " + line);
        }
      }
    }
    const int rc = proc.Stop();
    if (rc != 0) env.log("warning: the server exited with " + std::to_string(rc));
  }
  return Status::Ok();
}

std::string ModelDir(const ServerSettings& s, const RunOptions& o) {
  return s.model_dir.empty() ? o.default_model_dir : s.model_dir;
}

// One entry of results["variants"]: the sweep, then quality, for one variant. A backend not in
// this build, or a variant that fails, gets its status and the run goes on with the next.
json RunVariant(const SweepEnv& env, const Variant& v, json* points) {
  json out;
  out["label"] = v.label;
  out["backend"] = v.server.backend;
  out["precision"] = v.server.precision;
  out["status"] = "ok";
  json options = json::object();
  if (const backends::BackendSpec* spec = backends::FindBackend(v.server.backend)) {
    const auto it = v.server.sections.find(spec->name);
    const backends::Section section =
        it == v.server.sections.end() ? backends::Section{} : it->second;
    for (const backends::OptionSpec& opt : spec->options) {
      options[opt.key] = backends::OptionValue(*spec, section, opt.key);
    }
  }
  out["options"] = options;
  out["server"] = json::object();
  out["load_seconds"] = nullptr;
  out["resident_mb"] = nullptr;
  out["quality"] = {{"sts_b_spearman", nullptr}, {"dl19_ndcg10", nullptr}};
  if (!v.unavailable.empty()) {
    out["status"] = "backend not available: " + v.unavailable;
    env.log(out["status"].get<std::string>());
    return out;
  }
  json server = json::object();
  Status st = RunSweep(env, v.server, &server, points);
  out["server"] = server;
  if (server.contains("load_seconds")) out["load_seconds"] = server["load_seconds"];
  if (server.contains("resident_mb")) out["resident_mb"] = server["resident_mb"];
  if (st.ok()) {
    env.log("measuring quality (in-process, same backend and precision)");
    json quality;
    st = internal::Quality(*env.c, v.server, ModelDir(v.server, *env.o), env.o->data_dir, &quality);
    if (st.ok()) out["quality"] = quality;
    if (!st.ok()) st = Status(st.code(), "quality: " + st.message());
  }
  if (!st.ok()) {
    out["status"] = "failed: " + st.message();
    env.log(out["status"].get<std::string>());
  }
  return out;
}

// Every variant in order, each with its own server log and progress lines that name it.
void RunVariants(const SweepEnv& env, json* r) {
  const ExperimentConfig& c = *env.c;
  (*r)["variants"] = json::array();
  for (size_t i = 0; i < c.variants.size(); ++i) {
    const Variant& v = c.variants[i];
    SweepEnv ve = env;
    ve.variant = v.label;
    ve.log_path = env.dir + "/server-" + v.label + ".log";
    const std::string prefix = "variant " + v.label + " (" + std::to_string(i + 1) + "/" +
                               std::to_string(c.variants.size()) + "): ";
    ve.log = [log = env.log, prefix](const std::string& line) { log(prefix + line); };
    (*r)["variants"].push_back(RunVariant(ve, v, &(*r)["points"]));
  }
}

}  // namespace

StatusOr<RunOutcome> RunExperiment(const ExperimentConfig& c, const RunOptions& o) {
  RunOutcome out;
  out.dir = o.results_root + "/" + c.name + "/" + UtcStamp();
  std::filesystem::create_directories(out.dir);
  auto log = [&](const std::string& line) {
    if (o.progress) std::fprintf(stderr, "[experiment %s] %s\n", c.name.c_str(), line.c_str());
  };
  json& r = out.results;
  r["schema"] = 1;
  r["name"] = c.name;
  r["description"] = c.description;
  r["status"] = "ok";
  r["provenance"] = Provenance(o.source_dir);
  r["config"] = c.resolved;
  ASSIGN_OR_RETURN(bench::WorkloadKind kind, bench::ParseWorkload(c.workload.name));
  r["items_name"] = kind == bench::WorkloadKind::kMsMarcoQueries ? "texts" : "pairs";
  r["server"] = json::object();
  r["quality"] = {{"sts_b_spearman", nullptr}, {"dl19_ndcg10", nullptr}};
  r["points"] = json::array();
  auto finish = [&]() -> StatusOr<RunOutcome> {
    std::ofstream(out.dir + "/results.json") << r.dump(2) << "\n";
    RETURN_IF_ERROR(WriteRunOutputs(r, out.dir));
    log("wrote " + out.dir);
    return out;
  };
  if (const backends::BackendSpec* spec = backends::FindBackend(c.server.backend);
      c.variants.empty() && !spec->unavailable.empty()) {
    r["status"] = "backend not available: " + spec->unavailable;
    log(r["status"].get<std::string>());
    return finish();
  }
  std::optional<bench::Workload> workload;
  bool any_available = c.variants.empty();
  for (const Variant& v : c.variants) any_available = any_available || v.unavailable.empty();
  if (any_available) {
    ASSIGN_OR_RETURN(workload, bench::Workload::Load(kind, o.data_dir));
  }
  const std::string yaml = out.dir + "/server.yaml";
  std::ofstream(yaml) << "limits:\n  max_client_batch_size: " << c.server.max_client_batch_size
                      << "\nqueue:\n  max_items: " << std::max(4096, c.server.max_client_batch_size)
                      << "\n";
  const SweepEnv env{
      &c, &o, workload ? &*workload : nullptr, out.dir, yaml, out.dir + "/server.log", "", log};
  if (!c.variants.empty()) {
    RunVariants(env, &r);
    return finish();
  }
  RETURN_IF_ERROR(RunSweep(env, c.server, &r["server"], &r["points"]));
  log("measuring quality (in-process, same backend and precision)");
  json quality;
  RETURN_IF_ERROR(internal::Quality(c, c.server, ModelDir(c.server, o), o.data_dir, &quality));
  r["quality"] = quality;
  return finish();
}

}  // namespace encserve::experiment
