#include <malloc.h>

#include "runtime/cli/cli.hpp"

int main(int argc, char** argv) {
    // One malloc arena: a thread of its own (create's kernel-layer maps) would otherwise get
    // a new one, more pages for the processes create forks to copy on write.
    ::mallopt(M_ARENA_MAX, 1);
    return sandlock::cli::run_cli(argc, argv);
}
