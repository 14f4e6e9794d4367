// interleave: wall time of several commands, run in turn (1, 2, ..., n, 1, 2, ...), so
// that drift on a shared machine (other jobs, page cache, RCU state) falls on every
// command alike; hyperfine runs one command's series after the other's.
//
//   interleave [-o RAW] RUNS WARMUP PAUSE_MS -- SPEC \; SPEC \; ...
//   SPEC = [PREPARE ARGS... ::] CMD ARGS... [:: CONCLUDE ARGS...]
//
// Each round starts with the next command in turn (round r starts with command r mod n),
// so no command always follows the same one. PAUSE_MS: sleep before each run (0 for
// back-to-back). A command's PREPARE runs right before each of its runs and its CONCLUDE
// right after (as hyperfine's --prepare and --conclude; untimed, their exit status
// ignored): e.g. `delete` of a leftover, then `create`, before a timed `start`, and the
// container's `delete` after it, so that no command's container outlives its turn.
// A SPEC with one "::" has a PREPARE and no CONCLUDE.
// Prints one line per command: "median_ms mean_ms failures" (over all counted runs).
// -o RAW: every counted run also as a line "ROUND COMMAND MS FAILED" (COMMAND from 0) in
// the file RAW, from which the ratio of two commands can be taken round by round.
// Stdout/stderr of the commands go to /dev/null; their stdin is /dev/null.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// SIGTERM/SIGINT: the run under way (and its conclude) finishes, then interleave exits,
// so that no runtime call is cut in the middle and the caller's clean-up finds all.
static volatile sig_atomic_t stop;
static void on_stop(int sig) { stop = sig; }

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

struct spec {
    char** prepare;  // NULL when none
    char** cmd;
    char** conclude;  // NULL when none
};

// Splits one command's words (NULL-terminated in place) at "::".
static struct spec split_spec(char** words) {
    struct spec s = {NULL, words, NULL};
    char** parts[3] = {words, NULL, NULL};
    int n = 1;
    for (char** w = words; *w; ++w) {
        if (strcmp(*w, "::") == 0 && n < 3) {
            *w = NULL;
            parts[n++] = w + 1;
        }
    }
    if (n == 2) {
        s.prepare = parts[0];
        s.cmd = parts[1];
    } else if (n == 3) {
        s.prepare = parts[0];
        s.cmd = parts[1];
        s.conclude = parts[2];
    }
    return s;
}

int main(int argc, char** argv) {
    FILE* raw = NULL;
    if (argc > 2 && strcmp(argv[1], "-o") == 0) {
        raw = fopen(argv[2], "w");
        if (!raw) {
            perror(argv[2]);
            return 2;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: interleave [-o RAW] RUNS WARMUP PAUSE_MS -- [PREP... ::] CMD ARGS... [:: CONCLUDE...] \\; ...\n");
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
    struct spec specs[64];
    for (int c = 0; c < n; ++c) {
        specs[c] = split_spec(cmds[c]);
        if (!specs[c].cmd[0] || (specs[c].prepare && !specs[c].prepare[0]) ||
            (specs[c].conclude && !specs[c].conclude[0])) {
            fprintf(stderr, "interleave: command %d: an empty part around \"::\"\n", c);
            return 2;
        }
    }
    double* times = calloc((size_t)n * (size_t)runs, sizeof(double));
    int* failures = calloc((size_t)n, sizeof(int));
    if (!times || !failures) return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct timespec pause = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    for (int round = 0; round < warmup + runs; ++round) {
        for (int k = 0; k < n; ++k) {
            int c = (round + k) % n;
            if (pause_ms) nanosleep(&pause, NULL);
            int failed = 0, ignored = 0;
            if (specs[c].prepare) run_once(specs[c].prepare, &ignored);
            double ms = run_once(specs[c].cmd, &failed);
            if (specs[c].conclude) run_once(specs[c].conclude, &ignored);
            if (stop) {
                fprintf(stderr, "interleave: stopped by signal %d\n", (int)stop);
                return 128 + stop;
            }
            if (round < warmup) continue;
            times[c * runs + (round - warmup)] = ms;
            failures[c] += failed;
            if (raw) fprintf(raw, "%d %d %.3f %d\n", round - warmup, c, ms, failed);
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
    if (raw && fclose(raw) != 0) {
        perror("interleave: raw output");
        return 2;
    }
    return 0;
}
