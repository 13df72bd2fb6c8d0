// The tierflow command: one executable, subcommands for every process and client verb.
#include <CLI/CLI.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"tierflow: hierarchical storage management"};
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
