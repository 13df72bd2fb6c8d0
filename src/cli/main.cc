// The tierflow command: one executable, subcommands for every process and client verb.
#include "cli/cli_app.h"

int main(int argc, char** argv) { return tierflow::cli::Run(argc, argv); }
