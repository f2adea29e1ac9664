// encserve: one binary, subcommands. `encserve --help` lists them.
#include <CLI/CLI.hpp>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"encserve " ENCSERVE_VERSION
               ": inference for transformer encoders (BERT embeddings and cross-encoders)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", ENCSERVE_VERSION);
  encserve::app::RegisterInfo(app);
  encserve::app::RegisterEmbed(app);
  encserve::app::RegisterScore(app);
  encserve::app::RegisterDemo(app);
  encserve::app::RegisterEvalSts(app);
  encserve::app::RegisterBenchEngine(app);
  encserve::app::RegisterServe(app);
  encserve::app::RegisterExperiment(app);
  encserve::app::RegisterBench(app);
  encserve::app::RegisterReport(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
