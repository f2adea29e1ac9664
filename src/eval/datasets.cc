#include "eval/datasets.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace encserve::eval {
namespace {

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

StatusOr<std::ifstream> OpenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open data file " + path);
  return in;
}

}  // namespace

StatusOr<std::vector<std::string>> LoadMsMarcoQueries(const std::string& path) {
  ASSIGN_OR_RETURN(std::ifstream in, OpenFile(path));
  std::vector<std::string> queries;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      return InvalidArgument(path + ":" + std::to_string(lineno) + ": expected qid<TAB>query");
    }
    queries.push_back(line.substr(tab + 1));
  }
  return queries;
}

StatusOr<std::vector<StsPair>> LoadStsB(const std::string& path) {
  ASSIGN_OR_RETURN(std::ifstream in, OpenFile(path));
  std::vector<StsPair> pairs;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f = SplitTabs(line);
    if (f.size() < 7) {
      return InvalidArgument(path + ":" + std::to_string(lineno) + ": expected at least 7 fields");
    }
    StsPair p;
    try {
      p.score = std::stod(f[4]);
    } catch (...) {
      return InvalidArgument(path + ":" + std::to_string(lineno) + ": bad score \"" + f[4] + "\"");
    }
    p.a = f[5];
    p.b = f[6];
    pairs.push_back(std::move(p));
  }
  return pairs;
}

StatusOr<std::vector<RerankQuery>> LoadTrecRunJson(const std::string& path) {
  ASSIGN_OR_RETURN(std::ifstream in, OpenFile(path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_array()) return InvalidArgument(path + ": expected a JSON list");
  std::vector<RerankQuery> out;
  for (const auto& q : j) {
    if (!q.is_object() || !q.contains("query") || !q.contains("hits") || !q["hits"].is_array()) {
      return InvalidArgument(path + ": each entry needs query and hits");
    }
    RerankQuery rq;
    rq.query = q["query"].get<std::string>();
    for (const auto& h : q["hits"]) {
      if (!h.contains("content") || !h["content"].is_string()) {
        return InvalidArgument(path + ": a hit has no content");
      }
      if (rq.qid.empty() && h.contains("qid")) rq.qid = h["qid"].dump();
      rq.docids.push_back(h.contains("docid") && h["docid"].is_string()
                              ? h["docid"].get<std::string>()
                              : h.value("docid", nlohmann::json()).dump());
      rq.passages.push_back(h["content"].get<std::string>());
    }
    out.push_back(std::move(rq));
  }
  return out;
}

}  // namespace encserve::eval
