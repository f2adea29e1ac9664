// encserve demo: the README's main job. Loads the default model, embeds and scores a few real
// sentences from shared/data, prints the results and timings, then a short throughput run.
#include <cstdio>
#include <iostream>

#include "common.h"
#include "eval/datasets.h"

namespace encserve::app {
namespace {

void Fail(const Status& s) {
  std::cerr << "error: " << s.ToString() << "\n";
  throw CLI::RuntimeError(1);
}

std::string Clip(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

}  // namespace

void RegisterDemo(CLI::App& app) {
  struct Args {
    BackendFlags engine;
    std::string data;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Embed and score real sentences with the default model; print results and timing");
  AddBackendFlags(cmd, &a->engine);
  a->engine.threads = 2;
  a->data = DefaultDataDir();
  cmd->add_option("--data", a->data, "folder with the shared data sets")->capture_default_str();
  cmd->callback([a] {
    auto t0 = std::chrono::steady_clock::now();
    auto engine = LoadPipelineOrReport(a->engine);
    if (!engine) throw CLI::RuntimeError(1);
    std::printf("loaded %s in %.0f ms (%s, backend %s, %d threads)\n", a->engine.model.c_str(),
                MillisSince(t0), ModelKindName(engine->config().kind),
                DescribeBackend(engine->backend().info()).c_str(), a->engine.threads);

    auto sts = eval::LoadStsB(a->data + "/sts-b-test.tsv");
    if (!sts.ok()) Fail(sts.status());
    std::printf("\nSTS-B sentence pairs: gold score (0-5) vs cosine similarity\n");
    std::vector<TextPair> pairs;
    for (size_t i = 0; i < sts->size() && pairs.size() < 6; i += 200) {
      pairs.emplace_back((*sts)[i].a, (*sts)[i].b);
    }
    t0 = std::chrono::steady_clock::now();
    auto cos = engine->Score(pairs);
    if (!cos.ok()) Fail(cos.status());
    const double score_ms = MillisSince(t0);
    for (size_t i = 0, k = 0; k < pairs.size(); i += 200, ++k) {
      std::printf("  gold %.2f  cos %+.4f  | %s | %s\n", (*sts)[i].score, (*cos)[k],
                  Clip(pairs[k].first, 45).c_str(), Clip(pairs[k].second, 45).c_str());
    }
    std::printf("  (%zu pairs in %.1f ms)\n", pairs.size(), score_ms);

    auto dl19 = eval::LoadTrecRunJson(a->data + "/trec-dl19-bm25-top100.json");
    if (!dl19.ok()) Fail(dl19.status());
    const auto& q = (*dl19)[0];
    std::vector<TextPair> qp;
    for (size_t i = 0; i < 10 && i < q.passages.size(); ++i)
      qp.emplace_back(q.query, q.passages[i]);
    t0 = std::chrono::steady_clock::now();
    auto s = engine->Score(qp);
    if (!s.ok()) Fail(s.status());
    std::printf("\nDL19 query \"%s\": BM25 top-10 passages scored in %.1f ms\n", q.query.c_str(),
                MillisSince(t0));
    for (size_t i = 0; i < qp.size(); ++i) {
      std::printf("  BM25 rank %2zu  score %+.4f  %s\n", i + 1, (*s)[i],
                  Clip(q.passages[i], 70).c_str());
    }

    auto queries = eval::LoadMsMarcoQueries(a->data + "/msmarco-dev-small-queries.tsv");
    if (!queries.ok()) Fail(queries.status());
    const size_t n = std::min<size_t>(queries->size(), 1024);
    std::vector<double> lat;
    t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; i += 32) {
      std::vector<std::string> batch(queries->begin() + i, queries->begin() + std::min(n, i + 32));
      auto tb = std::chrono::steady_clock::now();
      if (auto r = engine->Embed(batch); !r.ok()) Fail(r.status());
      lat.push_back(MillisSince(tb));
    }
    const double secs = MillisSince(t0) / 1000.0;
    std::printf(
        "\nembedded %zu MS MARCO queries in batches of 32: %.0f texts/s, batch p50 %.2f ms, "
        "p99 %.2f ms\n",
        n, n / secs, Percentile(lat, 50), Percentile(lat, 99));
  });
}

}  // namespace encserve::app
