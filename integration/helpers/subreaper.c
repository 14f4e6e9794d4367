// subreaper PIDFILE -- CMD [ARGS...]
//
// Plays the part of conmon / containerd-shim: becomes a child subreaper, runs CMD (e.g. a
// shell running `runtime create --pid-file PIDFILE ...; runtime start ...`), reaps every
// descendant, and finally reports the exit status of the process whose pid the runtime
// wrote to PIDFILE. That pid can only be reaped here if the container's init was
// reparented to us, which is what callers depend on.
//
// Prints "subreaper: pid P exited with status N" (or "killed by signal S") and exits with
// N, or 128+S. Exits 125 when the pid in PIDFILE was never reaped, 124 on timeout
// (SUBREAPER_TIMEOUT seconds, default 60).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct reaped {
	pid_t pid;
	int status;
};

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

static pid_t read_pid_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long pid = -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 125;
}

static void describe(pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		printf("subreaper: pid %d killed by signal %d\n", (int)pid, WTERMSIG(status));
	else
		printf("subreaper: pid %d exited with status %d\n", (int)pid, exit_code_of(status));
	fflush(stdout);
}

static void install_timeout(void)
{
	const char *env = getenv("SUBREAPER_TIMEOUT");
	unsigned seconds = env ? (unsigned)strtoul(env, NULL, 10) : 60;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; // no SA_RESTART: waitpid must return EINTR
	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
}

int main(int argc, char **argv)
{
	if (argc < 4 || strcmp(argv[2], "--") != 0) {
		fprintf(stderr, "usage: subreaper PIDFILE -- CMD [ARGS...]\n");
		return 2;
	}
	const char *pid_file = argv[1];
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("subreaper: prctl(PR_SET_CHILD_SUBREAPER)");
		return 2;
	}
	install_timeout();

	pid_t cmd = fork();
	if (cmd < 0) {
		perror("subreaper: fork");
		return 2;
	}
	if (cmd == 0) {
		execvp(argv[3], &argv[3]);
		fprintf(stderr, "subreaper: exec %s: %s\n", argv[3], strerror(errno));
		_exit(127);
	}

	struct reaped *all = NULL;
	size_t count = 0;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR && timed_out) {
			fprintf(stderr, "subreaper: timed out waiting for descendants\n");
			return 124;
		}
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break; // ECHILD: every descendant has been reaped
		struct reaped *grown = realloc(all, (count + 1) * sizeof *all);
		if (!grown) {
			perror("subreaper: realloc");
			return 2;
		}
		all = grown;
		all[count++] = (struct reaped){pid, status};
		if (pid == cmd && exit_code_of(status) != 0)
			fprintf(stderr, "subreaper: command exited with status %d\n", exit_code_of(status));
	}

	pid_t target = read_pid_file(pid_file);
	if (target <= 0) {
		fprintf(stderr, "subreaper: no pid in %s\n", pid_file);
		free(all);
		return 125;
	}
	for (size_t i = 0; i < count; i++) {
		if (all[i].pid == target) {
			int status = all[i].status;
			free(all);
			describe(target, status);
			return exit_code_of(status);
		}
	}
	fprintf(stderr, "subreaper: pid %d from %s was never reaped here (not reparented to us)\n",
		(int)target, pid_file);
	free(all);
	return 125;
}
