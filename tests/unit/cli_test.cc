// The encserve binary end to end: info / embed / score output and error exit codes.
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "test_util.h"

namespace encserve {
namespace {

struct CmdResult {
  int code;
  std::string out;
};

CmdResult Exec(const std::string& args) {
  const std::string cmd = testing::Binary() + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(Cli, InfoPrintsTheUnderstoodConfig) {
  CmdResult r = Exec("info --model " + testing::ModelDir());
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["hidden_size"], 384);
  EXPECT_EQ(j["max_seq_length"], 256);
  EXPECT_EQ(j["pooling"], "mean");
  EXPECT_EQ(j["kind"], "embedding");
}

TEST(Cli, EmbedPrintsNormalisedVectors) {
  CmdResult r = Exec("embed --model " + testing::ModelDir() +
                     " 'hello world' 'how long is a flea life cycle'");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["embeddings"].size(), 2u);
  double norm = 0;
  for (double v : j["embeddings"][0]) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-4);
}

TEST(Cli, ScoreRanksDocuments) {
  testing::TempDir tmp;
  testing::WriteFile(tmp / "docs.txt", "The cat sat on the mat.\nA flea lives up to a year.\n");
  CmdResult r = Exec("score --sort --model " + testing::ModelDir() +
                     " --query 'how long do fleas live' --docs " + (tmp / "docs.txt"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["index"], 1);
  EXPECT_GT(j[0]["score"].get<double>(), j[1]["score"].get<double>());
}

// bench-engine's JSON line for every workload (dl19 has no flop count): throughput, and for fixed
// the efficiency against the peak probe and, with --profile, the op table.
TEST(Cli, BenchEngineWritesAJsonLinePerWorkload) {
  testing::TempDir tmp;
  const std::string json = tmp / "bench.jsonl";
  const std::string common =
      "bench-engine --model " + testing::ModelDir() + " -p int8 -t 2 --json " + json;
  for (const std::string w : {"-w fixed --seq 16 -b 4 --limit 3 --profile",
                              "-w msmarco -b 8 --limit 16", "-w dl19 -b 4 --limit 8"}) {
    CmdResult r = Exec(common + " " + w);
    ASSERT_EQ(r.code, 0) << w << "\n" << r.out;
  }
  std::istringstream lines(testing::ReadFile(json));
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& j : rows) EXPECT_GT(j["items_per_s"].get<double>(), 0) << j.dump();
  EXPECT_EQ(rows[0]["workload"], "fixed");
  ASSERT_TRUE(rows[0].contains("op_profile"));
  EXPECT_FALSE(rows[0]["op_profile"].empty());
  ASSERT_TRUE(rows[0].contains("model_gflops"));
  if (rows[0].contains("efficiency")) {  // a peak probe exists for the kernels this CPU runs
    EXPECT_GT(rows[0]["efficiency"].get<double>(), 0.0);
    EXPECT_LT(rows[0]["efficiency"].get<double>(), 1.0) << "a model run faster than the peak probe";
  }
  EXPECT_TRUE(rows[1].contains("efficiency") || rows[1].contains("model_gflops"));
  EXPECT_EQ(rows[2]["workload"], "dl19");
  EXPECT_FALSE(rows[2].contains("model_gflops"));
}

TEST(Cli, ErrorsExitNonZeroWithAMessage) {
  CmdResult r = Exec("info --model /nonexistent");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("does not exist"), std::string::npos) << r.out;
  r = Exec("embed --model " + testing::ModelDir());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("no texts"), std::string::npos) << r.out;
  r = Exec("nonsense");
  EXPECT_NE(r.code, 0);
}

}  // namespace
}  // namespace encserve
