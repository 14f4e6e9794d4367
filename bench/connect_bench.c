// connect_bench: the egress micro-benchmarks of bench/run.sh. Linked statically: the
// client modes run inside the busybox rootfs, which has no C library.
//
//   connect_bench listen IP PORT SECONDS
//       host side: a TCP listener that accepts and closes, and a UDP socket that drains,
//       both on IP:PORT; exits after SECONDS. Prints "ready" once both are bound.
//   connect_bench connect IP PORT N
//       N sequential TCP connects; the latency of connect() alone, in microseconds.
//       Prints "connect n=N median_us=M p99_us=P mean_us=A errors=E".
//   connect_bench connect_tput IP PORT N THREADS
//       N connects spread over THREADS threads. Prints "connect_tput threads=T ops_per_s=R errors=E".
//   connect_bench udp IP PORT N
//       N sendto() of 64 bytes on one unconnected UDP socket.
//       Prints "udp n=N ops_per_s=R median_us=M errors=E".
//   connect_bench sendmmsg IP PORT N BATCH
//       sendmmsg() of BATCH 64-byte datagrams per call until N are sent.
//       Prints "sendmmsg n=N batch=B msgs_per_s=R errors=E".
//   connect_bench hol IP PORT N DROP_IP DROP_PORT
//       head-of-line: a child process connects to DROP_IP:DROP_PORT (which hangs), then
//       N connects to IP:PORT are timed as in "connect". Prints
//       "hol n=N median_us=M p99_us=P hung=1|0 errors=E" (hung=1: the child's connect
//       was still pending when the measurement ended, as it should be).
//
// Client sockets close with SO_LINGER 0 (RST), so that thousands of connects leave no
// TIME_WAIT behind to exhaust the ports of later runs.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "connect_bench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static struct sockaddr_in parse_addr(const char *ip, const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		fprintf(stderr, "connect_bench: bad IPv4 address %s\n", ip);
		exit(2);
	}
	return sa;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

// One connect to `to`; its latency in µs, or -1 when it failed.
static double timed_connect(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	double t0 = now_us();
	int rc = connect(fd, (const struct sockaddr *)to, sizeof *to);
	double t = now_us() - t0;
	close(fd);
	return rc == 0 ? t : -1;
}

static void print_latencies(const char *label, double *lat, int n, int errors, const char *extra)
{
	int ok = 0;
	double sum = 0;
	for (int i = 0; i < n; i++)
		if (lat[i] >= 0) {
			lat[ok++] = lat[i];
			sum += lat[i];
		}
	if (ok == 0) {
		printf("%s n=%d median_us=nan p99_us=nan mean_us=nan errors=%d%s\n", label, n, errors, extra);
		return;
	}
	qsort(lat, ok, sizeof *lat, cmp_double);
	printf("%s n=%d median_us=%.1f p99_us=%.1f mean_us=%.1f errors=%d%s\n", label, n, lat[ok / 2],
	       lat[(int)(ok * 0.99) < ok ? (int)(ok * 0.99) : ok - 1], sum / ok, errors, extra);
}

static void run_connects(const char *label, int n, const char *extra)
{
	double *lat = calloc(n, sizeof *lat);
	int errors = 0;
	if (!lat)
		die("calloc");
	for (int i = 0; i < n; i++) {
		lat[i] = timed_connect(&target);
		if (lat[i] < 0 && ++errors == 1)
			fprintf(stderr, "connect_bench: connect: %s\n", strerror(errno));
	}
	print_latencies(label, lat, n, errors, extra);
	free(lat);
}

struct worker {
	pthread_t thread;
	int n, errors;
};

static void *connect_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->n; i++)
		if (timed_connect(&target) < 0)
			w->errors++;
	return NULL;
}

static void connect_throughput(int n, int threads)
{
	struct worker *w = calloc(threads, sizeof *w);
	if (!w)
		die("calloc");
	double t0 = now_us();
	for (int i = 0; i < threads; i++) {
		w[i].n = n / threads;
		if (pthread_create(&w[i].thread, NULL, connect_worker, &w[i]) != 0)
			die("pthread_create");
	}
	int errors = 0, done = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		errors += w[i].errors;
		done += w[i].n;
	}
	double secs = (now_us() - t0) / 1e6;
	printf("connect_tput threads=%d n=%d ops_per_s=%.0f errors=%d\n", threads, done, done / secs, errors);
	free(w);
}

static void udp_sendto(int n)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	char payload[64];
	memset(payload, 'u', sizeof payload);
	double *lat = calloc(n, sizeof *lat);
	if (!lat)
		die("calloc");
	int errors = 0;
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		double t = now_us();
		if (sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&target, sizeof target) < 0)
			errors++;
		lat[i] = now_us() - t;
	}
	double secs = (now_us() - t0) / 1e6;
	qsort(lat, n, sizeof *lat, cmp_double);
	printf("udp n=%d ops_per_s=%.0f median_us=%.1f errors=%d\n", n, n / secs, lat[n / 2], errors);
	free(lat);
	close(fd);
}

static void udp_sendmmsg(int n, int batch)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	char payload[64];
	memset(payload, 'm', sizeof payload);
	struct iovec iov = {.iov_base = payload, .iov_len = sizeof payload};
	struct mmsghdr *msgs = calloc(batch, sizeof *msgs);
	if (!msgs)
		die("calloc");
	for (int i = 0; i < batch; i++) {
		msgs[i].msg_hdr.msg_name = &target;
		msgs[i].msg_hdr.msg_namelen = sizeof target;
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	int sent = 0, errors = 0;
	double t0 = now_us();
	while (sent < n) {
		int rc = sendmmsg(fd, msgs, batch, 0);
		if (rc <= 0) {
			if (++errors > 100)
				break;
			continue;
		}
		sent += rc;
	}
	double secs = (now_us() - t0) / 1e6;
	printf("sendmmsg n=%d batch=%d msgs_per_s=%.0f errors=%d\n", sent, batch, sent / secs, errors);
	free(msgs);
	close(fd);
}

// The head-of-line case: another process's connect hangs while ours are timed.
static void head_of_line(int n, struct sockaddr_in drop)
{
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		connect(fd, (struct sockaddr *)&drop, sizeof drop);
		_exit(0);
	}
	usleep(200 * 1000); // the child's connect is pending (and in the supervisor) by now
	run_connects("hol", n, "");
	int status;
	int hung = waitpid(child, &status, WNOHANG) == 0;
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	printf("hol_child hung=%d\n", hung);
}

static void *drain_udp(void *arg)
{
	int fd = *(int *)arg;
	char buf[2048];
	for (;;)
		if (recv(fd, buf, sizeof buf, 0) < 0 && errno != EINTR)
			return NULL;
}

static void *accept_loop(void *arg)
{
	int fd = *(int *)arg;
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED)
			return NULL;
	}
}

static void listen_on(struct sockaddr_in at, int seconds)
{
	int one = 1;
	int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tcp < 0 || udp < 0)
		die("socket");
	setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rcvbuf = 4 << 20;
	setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (bind(tcp, (struct sockaddr *)&at, sizeof at) < 0 || listen(tcp, 4096) < 0)
		die("bind/listen tcp");
	if (bind(udp, (struct sockaddr *)&at, sizeof at) < 0)
		die("bind udp");
	pthread_t t[3];
	pthread_create(&t[0], NULL, accept_loop, &tcp);
	pthread_create(&t[1], NULL, accept_loop, &tcp);
	pthread_create(&t[2], NULL, drain_udp, &udp);
	printf("ready\n");
	fflush(stdout);
	sleep(seconds);
	exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: connect_bench listen|connect|connect_tput|udp|sendmmsg|hol IP PORT ...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *mode = argv[1];
	target = parse_addr(argv[2], argv[3]);
	int n = argc > 4 ? atoi(argv[4]) : 1000;
	if (!strcmp(mode, "listen"))
		listen_on(target, n);
	else if (!strcmp(mode, "connect"))
		run_connects("connect", n, "");
	else if (!strcmp(mode, "connect_tput") && argc > 5)
		connect_throughput(n, atoi(argv[5]));
	else if (!strcmp(mode, "udp"))
		udp_sendto(n);
	else if (!strcmp(mode, "sendmmsg") && argc > 5)
		udp_sendmmsg(n, atoi(argv[5]));
	else if (!strcmp(mode, "hol") && argc > 6)
		head_of_line(n, parse_addr(argv[5], argv[6]));
	else {
		fprintf(stderr, "connect_bench: bad arguments for %s\n", mode);
		return 2;
	}
	return 0;
}
