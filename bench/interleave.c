// interleave: wall time of several commands, run in turn (1, 2, ..., n, 1, 2, ...), so
// that drift on a shared machine (other jobs, page cache, RCU state) falls on every
// command alike; hyperfine runs one command's series after the other's.
//
//   interleave RUNS WARMUP PAUSE_MS -- CMD1 ARGS... \; CMD2 ARGS... \; ...
//
// Each round starts with the next command in turn (round r starts with command r mod n),
// so no command always follows the same one. PAUSE_MS: sleep before each run (0 for
// back-to-back). Prints one line per command: "median_ms mean_ms failures".
// Stdout/stderr of the commands go to /dev/null; their stdin is /dev/null.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

// Runs argv; returns its wall time in ms, *failed set when it did not exit 0.
static double run_once(char** argv, int* failed) {
    double start = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    double ms = now_ms() - start;
    *failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return ms;
}

int main(int argc, char** argv) {
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: interleave RUNS WARMUP PAUSE_MS -- CMD ARGS... \\; CMD ARGS...\n");
        return 2;
    }
    int runs = atoi(argv[1]), warmup = atoi(argv[2]), pause_ms = atoi(argv[3]);
    if (runs <= 0 || warmup < 0 || pause_ms < 0) {
        fprintf(stderr, "interleave: bad RUNS, WARMUP or PAUSE_MS\n");
        return 2;
    }
    // Split the rest at ";" into commands (argv entries are replaced by NULL terminators).
    char** cmds[64];
    int n = 0;
    cmds[n++] = &argv[5];
    for (int i = 5; i < argc; ++i) {
        if (strcmp(argv[i], ";") == 0) {
            argv[i] = NULL;
            if (i + 1 < argc) {
                if (n == 64) {
                    fprintf(stderr, "interleave: too many commands\n");
                    return 2;
                }
                cmds[n++] = &argv[i + 1];
            }
        }
    }
    double* times = calloc((size_t)n * (size_t)runs, sizeof(double));
    int* failures = calloc((size_t)n, sizeof(int));
    if (!times || !failures) return 2;
    struct timespec pause = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    for (int round = 0; round < warmup + runs; ++round) {
        for (int k = 0; k < n; ++k) {
            int c = (round + k) % n;
            if (pause_ms) nanosleep(&pause, NULL);
            int failed = 0;
            double ms = run_once(cmds[c], &failed);
            if (round < warmup) continue;
            times[c * runs + (round - warmup)] = ms;
            failures[c] += failed;
        }
    }
    for (int c = 0; c < n; ++c) {
        double* t = &times[c * runs];
        double sum = 0;
        for (int i = 0; i < runs; ++i) sum += t[i];
        qsort(t, (size_t)runs, sizeof(double), cmp_double);
        double median = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
        printf("%.3f %.3f %d\n", median, sum / runs, failures[c]);
    }
    free(times);
    free(failures);
    return 0;
}
