// sandlock-shim: the egress supervisor as a program of its own. It is the same code
// as `sandlock-runc shim` (runtime/shim/process.hpp), without the command line, the OCI
// model and the container code, so that the process each confined container keeps
// running maps and touches a fraction of the runtime's pages (bench/RESULTS.md).
// Usage (by start_shim only): sandlock-shim shim STATE_DIR, fd 3 the first listener.
#include <cstdio>
#include <cstring>

#include "runtime/shim/process.hpp"

int main(int argc, char** argv) {
    if (argc != 3 || std::strcmp(argv[1], "shim") != 0) {
        std::fputs("usage: sandlock-shim shim STATE_DIR (started by sandlock-runc create)\n", stderr);
        return 1;
    }
    return sandlock::shim::run_shim_main(argv[2]);
}
