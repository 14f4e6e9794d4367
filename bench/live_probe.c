// live_probe: the live-change benchmark of bench/run.sh (`--only live`, issue 12): how
// soon after `sandlock-runc egress ID --allow/--revoke RULE` returns the change holds
// inside the container, and what changes cost a running TCP stream. Linked statically:
// the probe and stream modes run inside the busybox rootfs, which has no C library.
// All times are CLOCK_MONOTONIC, which the container shares with the host (no time
// namespace is used).
//
//   live_probe probe IP PORT INTERVAL_US TIMEOUT_MS
//       container side: connects to IP:PORT in a loop, forever (a non-blocking connect,
//       at most TIMEOUT_MS for the handshake, then closed with RST; INTERVAL_US between
//       the end of one attempt and the start of the next). Each time the outcome changes
//       between allowed and refused it writes one line to stdout, with the time at which
//       the first connect() call of the new outcome was made and the time at which the
//       last one of the old outcome was made (ns; 0 for the first line):
//         ok T_NS LAST_NS                  the handshake completed
//         refused T_NS LAST_NS ERRNAME     the connect failed with EPERM, EACCES or ECONNREFUSED
//       Other outcomes (a timeout, another errno) are neither and change nothing; they
//       are counted, and every 500 attempts a line "stats attempts=N other=M EPERM=A
//       EACCES=B ECONNREFUSED=C" (refusals by errno) follows.
//   live_probe drive ROUNDS WARMUP TIMELINE TIMEOUT_MS -- ALLOW_CMD... \; REVOKE_CMD...
//       host side: waits for the prober (whose stdout is the file TIMELINE) to report
//       "refused", then WARMUP + ROUNDS times: runs ALLOW_CMD, takes the time t_return as
//       soon as it exited, waits (at most TIMEOUT_MS) for the prober's next "ok" line;
//       the same with REVOKE_CMD and "refused". Prints, per counted round and direction:
//         change allow|revoke ROUND CMD_US DELAY_US OLD_US
//       CMD_US: the command's own duration (fork to exit); DELAY_US: the first connect of
//       the new outcome minus t_return (negative: before the command returned); OLD_US:
//       the last connect of the old outcome minus t_return (positive: a connect made after
//       the command returned still got the old verdict, i.e. the change did not hold yet;
//       a positive DELAY_US with a negative OLD_US only says the prober was not running), or
//         fail allow|revoke ROUND WHAT          (the command failed, or no change seen;
//                                               ROUND < 0: a warm-up round)
//   live_probe churn INTERVAL_MS -- ALLOW_CMD... \; REVOKE_CMD...
//       host side: runs ALLOW_CMD and REVOKE_CMD in turn, one starting every INTERVAL_MS
//       (or as soon as the previous one exited, if it took longer), until SIGTERM; then
//       prints "churn changes=N failed=F".
//   live_probe stream IP PORT BYTES MS
//       container side: write() of BYTES on one connected TCP socket for MS ms; prints
//       "MBps=X errors=E" (MBps=nan when it could not connect).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void die(const char *what)
{
	fprintf(stderr, "live_probe: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static void say(const char *line)
{
	size_t len = strlen(line), off = 0;
	while (off < len) {
		ssize_t n = write(1, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			exit(3);
		off += (size_t)n;
	}
}

// ---------------------------------------------------------------- probe

enum outcome { OUT_OK, OUT_REFUSED, OUT_OTHER };

// attempt: one non-blocking connect; *err the errno of a refusal.
static enum outcome attempt(const struct sockaddr_in *to, int timeout_ms, int *err)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return OUT_OTHER;
	struct linger lg = {.l_onoff = 1, .l_linger = 0}; // RST on close: no TIME_WAIT
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	enum outcome o = OUT_OTHER;
	int e = 0;
	if (connect(fd, (const struct sockaddr *)to, sizeof *to) == 0) {
		o = OUT_OK;
	} else if (errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, timeout_ms) == 1) {
			socklen_t len = sizeof e;
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
				o = OUT_OK;
		}
	} else {
		e = errno;
	}
	if (o != OUT_OK && (e == EPERM || e == EACCES || e == ECONNREFUSED)) {
		o = OUT_REFUSED;
		*err = e;
	}
	close(fd);
	return o;
}

static int probe(char **argv)
{
	struct sockaddr_in to;
	if (parse_addr(argv[0], argv[1], &to) < 0)
		return 2;
	long interval = atol(argv[2]);
	int timeout_ms = atoi(argv[3]);
	enum outcome last = OUT_OTHER;
	int64_t last_t = 0; // the last attempt with outcome `last`
	unsigned long attempts = 0, other = 0, eperm = 0, eacces = 0, econnrefused = 0;
	char line[128];
	for (;;) {
		int err = 0;
		int64_t t = now_ns();
		enum outcome o = attempt(&to, timeout_ms, &err);
		attempts++;
		if (o == OUT_REFUSED)
			(err == EPERM ? &eperm : err == EACCES ? &eacces : &econnrefused)[0]++;
		if (o == OUT_OTHER) {
			other++;
		} else if (o != last) {
			if (o == OUT_OK)
				snprintf(line, sizeof line, "ok %lld %lld\n", (long long)t, (long long)last_t);
			else
				snprintf(line, sizeof line, "refused %lld %lld %s\n", (long long)t, (long long)last_t,
					 strerrorname_np(err) ? strerrorname_np(err) : "?");
			say(line);
			last = o;
			last_t = t;
		} else {
			last_t = t;
		}
		if (attempts % 500 == 0) {
			snprintf(line, sizeof line, "stats attempts=%lu other=%lu EPERM=%lu EACCES=%lu ECONNREFUSED=%lu\n",
				 attempts, other, eperm, eacces, econnrefused);
			say(line);
		}
		if (interval > 0)
			sleep_us(interval);
	}
}

// ---------------------------------------------------------------- host side

// run_cmd: fork, exec, wait; the exit status (-1: could not run); *t_end the time it exited.
static int run_cmd(char **cmd, int64_t *t_end)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execvp(cmd[0], cmd);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	*t_end = now_ns();
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The prober's timeline, read as it grows.
static int tl_fd = -1;
static char tl_buf[1 << 16];
static size_t tl_len;

// next_event: waits (at most until deadline) for the timeline's next "ok" or "refused"
// line; its kind into *ok, its time into *t and the old outcome's last into *t_old. 0 on
// success, -1 on timeout.
static int next_event(int64_t deadline, int *ok, int64_t *t, int64_t *t_old)
{
	for (;;) {
		char *nl;
		while ((nl = memchr(tl_buf, '\n', tl_len))) {
			*nl = 0;
			long long v, v_old;
			int found = 0;
			if (sscanf(tl_buf, "ok %lld %lld", &v, &v_old) == 2)
				*ok = 1, found = 1;
			else if (sscanf(tl_buf, "refused %lld %lld", &v, &v_old) == 2)
				*ok = 0, found = 1;
			size_t used = (size_t)(nl - tl_buf) + 1;
			memmove(tl_buf, nl + 1, tl_len - used);
			tl_len -= used;
			if (found) {
				*t = v;
				*t_old = v_old;
				return 0;
			}
		}
		ssize_t n = read(tl_fd, tl_buf + tl_len, sizeof tl_buf - 1 - tl_len);
		if (n < 0 && errno != EINTR)
			die("read the timeline");
		if (n > 0) {
			tl_len += (size_t)n;
			continue;
		}
		if (now_ns() > deadline)
			return -1;
		sleep_us(50);
	}
}

// split_cmds: argv after "--" into two commands separated by ";".
static int split_cmds(int argc, char **argv, char ***a, char ***b)
{
	int i = 0;
	while (i < argc && strcmp(argv[i], "--"))
		i++;
	if (i == argc)
		return -1;
	*a = argv + i + 1;
	for (i = i + 1; i < argc; i++)
		if (!strcmp(argv[i], ";")) {
			argv[i] = NULL;
			*b = argv + i + 1;
			return *a[0] && (*b)[0] ? 0 : -1;
		}
	return -1;
}

static int drive(int argc, char **argv)
{
	char **cmd[2];
	if (argc < 8 || split_cmds(argc, argv, &cmd[0], &cmd[1]) < 0)
		return 2;
	int rounds = atoi(argv[0]), warmup = atoi(argv[1]);
	int64_t timeout = (int64_t)atoi(argv[3]) * 1000000;
	tl_fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (tl_fd < 0)
		die(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	int ok;
	int64_t t, t_old;
	// the prober's first line: refused (the destination is not allowed yet)
	if (next_event(now_ns() + 10 * timeout, &ok, &t, &t_old) < 0 || ok) {
		printf("fail start 0 %s\n", ok ? "the_destination_was_allowed_before_any_change" : "no_timeline");
		return 1;
	}
	static const char *dir[2] = {"allow", "revoke"};
	for (int r = 0; r < warmup + rounds; r++) {
		int round = r - warmup;
		for (int d = 0; d < 2; d++) {
			int64_t t0 = now_ns(), t_ret;
			int rc = run_cmd(cmd[d], &t_ret);
			// a failed command: the state may or may not have changed (wait for it, or give up)
			if (rc != 0)
				printf("fail %s %d command_exit_%d\n", dir[d], round, rc);
			if (next_event(t_ret + timeout, &ok, &t, &t_old) < 0) {
				printf("fail %s %d no_change_within_%lld_ms\n", dir[d], round,
				       (long long)(timeout / 1000000));
				return 1;
			}
			if (ok != (d == 0)) {
				printf("fail %s %d unexpected_%s\n", dir[d], round, ok ? "ok" : "refused");
				return 1;
			}
			if (round >= 0 && rc == 0)
				printf("change %s %d %.1f %.1f %.1f\n", dir[d], round, (t_ret - t0) / 1e3, (t - t_ret) / 1e3,
				       (t_old - t_ret) / 1e3);
		}
	}
	return 0;
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int churn(int argc, char **argv)
{
	char **cmd[2];
	if (argc < 5 || split_cmds(argc, argv, &cmd[0], &cmd[1]) < 0)
		return 2;
	int64_t interval = (int64_t)atoi(argv[0]) * 1000000;
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	unsigned long changes = 0, failed = 0;
	int64_t next = now_ns();
	while (!stop) {
		int64_t t_end;
		if (run_cmd(cmd[changes % 2], &t_end) != 0)
			failed++;
		changes++;
		next += interval;
		int64_t wait = next - now_ns();
		if (wait > 0)
			sleep_us((long)(wait / 1000));
		else
			next = now_ns();
	}
	printf("churn changes=%lu failed=%lu\n", changes, failed);
	return 0;
}

static int stream(char **argv)
{
	struct sockaddr_in to;
	if (parse_addr(argv[0], argv[1], &to) < 0)
		return 2;
	size_t size = (size_t)atol(argv[2]);
	int ms = atoi(argv[3]);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&to, sizeof to) < 0) {
		printf("MBps=nan errors=1 error=connect:%s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
		return 1;
	}
	char *buf = malloc(size);
	if (!buf)
		die("malloc");
	memset(buf, 't', size);
	unsigned long errors = 0;
	double bytes = 0;
	int64_t t0 = now_ns(), end = t0 + (int64_t)ms * 1000000, t = t0;
	while (t < end && errors < 1000) {
		ssize_t n = write(fd, buf, size);
		if (n < 0)
			errors++;
		else
			bytes += (double)n;
		t = now_ns();
	}
	printf("MBps=%.1f errors=%lu\n", bytes * 1e3 / (double)(t - t0), errors); // bytes/ns*1e3 = MB/s
	close(fd);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 6 && !strcmp(argv[1], "probe"))
		return probe(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "stream"))
		return stream(argv + 2);
	if (argc > 2 && !strcmp(argv[1], "drive"))
		return drive(argc - 2, argv + 2);
	if (argc > 2 && !strcmp(argv[1], "churn"))
		return churn(argc - 2, argv + 2);
	fprintf(stderr, "usage: live_probe probe IP PORT INTERVAL_US TIMEOUT_MS | stream IP PORT BYTES MS\n"
			"       | drive ROUNDS WARMUP TIMELINE TIMEOUT_MS -- ALLOW_CMD... \\; REVOKE_CMD...\n"
			"       | churn INTERVAL_MS -- ALLOW_CMD... \\; REVOKE_CMD...\n");
	return 2;
}
