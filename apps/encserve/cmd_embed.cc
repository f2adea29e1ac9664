// encserve embed / encserve score: run the model on texts given on the command line or a file.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common.h"

namespace encserve::app {

void RegisterEmbed(CLI::App& app) {
  struct Args {
    BackendFlags engine;
    std::vector<std::string> texts;
    std::string file;
    bool no_normalize = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("embed", "Embed texts and print JSON {dim, embeddings}");
  AddBackendFlags(cmd, &a->engine);
  cmd->add_option("texts", a->texts, "texts to embed");
  cmd->add_option("-f,--file", a->file, "read texts from a file, one per line ('-' = stdin)");
  cmd->add_flag("--no-normalize", a->no_normalize, "skip L2 normalisation");
  cmd->callback([a] {
    std::vector<std::string> texts = a->texts;
    if (!a->file.empty()) {
      auto lines = ReadLines(a->file);
      if (!lines.ok()) {
        std::cerr << "error: " << lines.status().message() << "\n";
        throw CLI::RuntimeError(2);
      }
      texts.insert(texts.end(), lines->begin(), lines->end());
    }
    if (texts.empty()) {
      std::cerr << "error: no texts given (pass texts or --file)\n";
      throw CLI::RuntimeError(2);
    }
    auto engine = LoadPipelineOrReport(a->engine);
    if (!engine) throw CLI::RuntimeError(1);
    std::optional<bool> normalize;
    if (a->no_normalize) normalize = false;
    auto emb = engine->Embed(texts, normalize);
    if (!emb.ok()) {
      std::cerr << "error: " << emb.status().ToString() << "\n";
      throw CLI::RuntimeError(1);
    }
    nlohmann::ordered_json j;
    j["model"] = a->engine.model;
    j["dim"] = emb->dim;
    j["embeddings"] = nlohmann::json::array();
    for (int i = 0; i < emb->rows; ++i) {
      j["embeddings"].push_back(std::vector<float>(emb->row(i), emb->row(i) + emb->dim));
    }
    std::cout << j.dump() << "\n";
  });
}

void RegisterScore(CLI::App& app) {
  struct Args {
    BackendFlags engine;
    std::string query;
    std::string docs_file;
    std::vector<std::string> docs;
    bool sigmoid = false;
    bool sort = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "score",
      "Score a query against documents: cross-encoder logits, or embedding cosine for a "
      "bi-encoder. Prints a JSON list of {index, score, text}");
  AddBackendFlags(cmd, &a->engine);
  cmd->add_option("-q,--query", a->query, "the query")->required();
  cmd->add_option("--docs", a->docs_file, "file with one document per line ('-' = stdin)");
  cmd->add_option("-d,--doc", a->docs, "a document (repeatable)");
  cmd->add_flag("--sigmoid", a->sigmoid, "apply a sigmoid to single-logit cross-encoder scores");
  cmd->add_flag("--sort", a->sort, "sort by descending score (rerank)");
  cmd->callback([a] {
    std::vector<std::string> docs = a->docs;
    if (!a->docs_file.empty()) {
      auto lines = ReadLines(a->docs_file);
      if (!lines.ok()) {
        std::cerr << "error: " << lines.status().message() << "\n";
        throw CLI::RuntimeError(2);
      }
      docs.insert(docs.end(), lines->begin(), lines->end());
    }
    if (docs.empty()) {
      std::cerr << "error: no documents given (pass --docs FILE or --doc TEXT)\n";
      throw CLI::RuntimeError(2);
    }
    auto engine = LoadPipelineOrReport(a->engine);
    if (!engine) throw CLI::RuntimeError(1);
    std::vector<TextPair> pairs;
    for (const auto& d : docs) pairs.emplace_back(a->query, d);
    auto scores =
        engine->Score(pairs, a->sigmoid ? ScoreActivation::kActivate : ScoreActivation::kRaw);
    if (!scores.ok()) {
      std::cerr << "error: " << scores.status().ToString() << "\n";
      throw CLI::RuntimeError(1);
    }
    std::vector<size_t> order(docs.size());
    std::iota(order.begin(), order.end(), 0);
    if (a->sort) {
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t x, size_t y) { return (*scores)[x] > (*scores)[y]; });
    }
    nlohmann::ordered_json out = nlohmann::json::array();
    for (size_t i : order) {
      nlohmann::ordered_json r;
      r["index"] = i;
      r["score"] = (*scores)[i];
      r["text"] = docs[i];
      out.push_back(r);
    }
    std::cout << out.dump(2) << "\n";
  });
}

}  // namespace encserve::app
