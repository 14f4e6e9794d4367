// build: static
// (runs inside the busybox test rootfs, which has no C library: link with -static)
//
// shim_attack SUBCOMMAND ARGS...: the workloads of integration/shim_bounds.bats, which
// try to make a container's egress shim (supervisor mode: it performs every send and
// connect on the caller's behalf) hold memory, threads or disk without bound. Each prints
// one result line: "LABEL ok key=value..." (exit 0), or "LABEL error WHAT" (exit 1).
//
//   zero-send ADDR PORT ROUNDS THREADS
//       A 64 MiB PROT_READ anonymous mapping that is never touched (it costs the caller
//       nothing: every page is the zero page), sent ROUNDS times in all by THREADS
//       threads, each on its own TCP connection to ADDR:PORT, in turn as sendto(),
//       sendmsg() with one 64 MiB iovec, sendmmsg() of two such messages, and a UDP
//       sendto() of 64 MiB (EMSGSIZE). Every call names the same 64 MiB, so the pages
//       the shim's reads fault in (on kernels that do not map the zero page for them)
//       stay those of its first 256 KiB. Prints calls= sent= (bytes the calls
//       reported) and one ENAME=count per errno seen.
//   blackhole-connect ADDR PORT TOTAL CONCURRENCY HOLD_MS
//       TOTAL blocking TCP connects to ADDR:PORT (a destination that never answers),
//       each in a child process of its own, CONCURRENCY at a time; each child is killed
//       (SIGKILL) HOLD_MS after it started, its connect still waiting. Prints started=
//       and finished= (connects that returned before the kill: an error such as EAGAIN).
//   refused-sends ADDR PORT N THREADS
//       N UDP sendto() to ADDR:PORT in all (a destination the policy refuses), by
//       THREADS threads. Prints n= and one ENAME=count per errno seen (ok= for successes).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ZERO_LEN ((size_t)64 << 20)
#define MAX_ERRNO 256

static const char *label = "attack";
static struct sockaddr_in target;
static atomic_long errors[MAX_ERRNO];
static atomic_long calls, sent, oks;
static long rounds;
static char *zero;

static void usage(void)
{
	fprintf(stderr, "usage: shim_attack zero-send ADDR PORT ROUNDS THREADS\n"
			"       shim_attack blackhole-connect ADDR PORT TOTAL CONCURRENCY HOLD_MS\n"
			"       shim_attack refused-sends ADDR PORT N THREADS\n");
	exit(2);
}

static long number(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 0)
		usage();
	return v;
}

static void set_target(const char *addr, const char *port)
{
	memset(&target, 0, sizeof target);
	target.sin_family = AF_INET;
	target.sin_port = htons((unsigned short)number(port));
	if (inet_pton(AF_INET, addr, &target.sin_addr) != 1)
		usage();
}

static void count_errno(int err)
{
	if (err > 0 && err < MAX_ERRNO)
		atomic_fetch_add(&errors[err], 1);
}

static void print_errors(void)
{
	for (int e = 1; e < MAX_ERRNO; e++) {
		long n = atomic_load(&errors[e]);
		if (n == 0)
			continue;
		const char *name = strerrorname_np(e);
		printf(" %s=%ld", name ? name : "E?", n);
	}
	printf("\n");
}

static void run_threads(int n, void *(*fn)(void *))
{
	pthread_t t[64];
	if (n < 1 || n > 64)
		usage();
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, NULL) != 0) {
			printf("%s error pthread_create\n", label);
			exit(1);
		}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

// ---- zero-send

static int connect_tcp(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0) {
		count_errno(errno);
		close(fd);
		return -1;
	}
	return fd;
}

static void *zero_sender(void *arg)
{
	(void)arg;
	int tcp = -1;
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	for (;;) {
		long i = atomic_fetch_add(&calls, 1);
		if (i >= rounds)
			break;
		long kind = i % 4;
		if (tcp < 0 && (tcp = connect_tcp()) < 0) {
			usleep(10000);
			continue;
		}
		ssize_t rc;
		struct iovec iov = {zero, ZERO_LEN};
		if (kind == 0) {
			// (with an address, so that the shim is asked: it ignores it for TCP, as the
			// kernel does; a plain send() is not the shim's to perform)
			rc = sendto(tcp, zero, ZERO_LEN, MSG_NOSIGNAL, (struct sockaddr *)&target, sizeof target);
		} else if (kind == 1) {
			struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
			rc = sendmsg(tcp, &m, MSG_NOSIGNAL);
		} else if (kind == 2) {
			struct mmsghdr mm[2];
			memset(mm, 0, sizeof mm);
			for (int i = 0; i < 2; i++) {
				mm[i].msg_hdr.msg_iov = &iov;
				mm[i].msg_hdr.msg_iovlen = 1;
			}
			int n = sendmmsg(tcp, mm, 2, MSG_NOSIGNAL);
			rc = n < 0 ? -1 : (ssize_t)(mm[0].msg_len + (n > 1 ? mm[1].msg_len : 0));
		} else {
			rc = sendto(udp, zero, ZERO_LEN, 0, (struct sockaddr *)&target, sizeof target);
		}
		if (rc >= 0) {
			atomic_fetch_add(&sent, rc);
		} else {
			count_errno(errno);
			if (kind != 3 && errno != EAGAIN) {
				close(tcp);
				tcp = -1;
			}
		}
	}
	if (tcp >= 0)
		close(tcp);
	close(udp);
	return NULL;
}

static int zero_send(char **argv)
{
	set_target(argv[0], argv[1]);
	rounds = number(argv[2]);
	zero = mmap(NULL, ZERO_LEN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (zero == MAP_FAILED) {
		printf("%s error mmap: %s\n", label, strerror(errno));
		return 1;
	}
	run_threads((int)number(argv[3]), zero_sender);
	printf("%s ok calls=%ld sent=%ld", label, rounds, atomic_load(&sent));
	print_errors();
	return 0;
}

// ---- blackhole-connect

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int blackhole_connect(char **argv)
{
	set_target(argv[0], argv[1]);
	long total = number(argv[2]), concurrency = number(argv[3]), hold = number(argv[4]);
	pid_t pids[64];
	long started_at[64];
	long started = 0, finished = 0, running = 0;
	if (concurrency < 1 || concurrency > 64)
		usage();
	for (int i = 0; i < concurrency; i++)
		pids[i] = 0;
	while (started < total || running > 0) {
		for (int i = 0; i < concurrency; i++) {
			if (pids[i] == 0 && started < total) {
				pid_t pid = fork();
				if (pid < 0) {
					usleep(10000);
					continue;
				}
				if (pid == 0) {
					int fd = socket(AF_INET, SOCK_STREAM, 0);
					connect(fd, (struct sockaddr *)&target, sizeof target);
					_exit(0);  // returned before the kill (an error, or it connected)
				}
				pids[i] = pid;
				started_at[i] = now_ms();
				started++;
				running++;
			} else if (pids[i] > 0) {
				int status;
				pid_t r = waitpid(pids[i], &status, WNOHANG);
				if (r == pids[i]) {
					if (WIFEXITED(status))
						finished++;
					pids[i] = 0;
					running--;
				} else if (now_ms() - started_at[i] >= hold) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], &status, 0);
					if (WIFEXITED(status))
						finished++;
					pids[i] = 0;
					running--;
				}
			}
		}
		usleep(2000);
	}
	printf("%s ok started=%ld finished=%ld\n", label, started, finished);
	return 0;
}

// ---- refused-sends

static void *refused_sender(void *arg)
{
	(void)arg;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	while (atomic_fetch_add(&calls, 1) < rounds) {
		if (sendto(fd, "refused", 7, 0, (struct sockaddr *)&target, sizeof target) >= 0)
			atomic_fetch_add(&oks, 1);
		else
			count_errno(errno);
	}
	close(fd);
	return NULL;
}

static int refused_sends(char **argv)
{
	set_target(argv[0], argv[1]);
	rounds = number(argv[2]);
	run_threads((int)number(argv[3]), refused_sender);
	printf("%s ok n=%ld ok=%ld", label, rounds, atomic_load(&oks));
	print_errors();
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		usage();
	label = argv[1];
	if (strcmp(argv[1], "zero-send") == 0 && argc == 6)
		return zero_send(argv + 2);
	if (strcmp(argv[1], "blackhole-connect") == 0 && argc == 7)
		return blackhole_connect(argv + 2);
	if (strcmp(argv[1], "refused-sends") == 0 && argc == 6)
		return refused_sends(argv + 2);
	usage();
}
