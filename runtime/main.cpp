#include "runtime/cli/cli.hpp"

int main(int argc, char** argv) { return sandlock::cli::run_cli(argc, argv); }
