// datapath: the data-path benchmark of bench/run.sh (issue 10): sends and connects from
// inside a container, with and without a policy, measured in interleaved rounds. Linked
// statically: the serve mode runs inside the busybox rootfs, which has no C library.
//
//   datapath sink IP PORT SECONDS
//       host side: a TCP sink (every connection read to EOF, a thread each) and a UDP
//       socket that drains, both on IP:PORT; exits after SECONDS. Prints "ready".
//   datapath serve [LABEL]
//       container side: prints "ready", then runs one measurement per line read on stdin
//       and answers one line "ok KEY=VALUE ... errors=E [error=TEXT]"; exits at EOF.
//       LABEL (default "serve") names the setup in probe_deliver's payloads.
//   datapath drive ROUNDS WARMUP TESTS -- CMD ARGS... \; CMD ARGS... [\; ...]
//       host side: starts every CMD (each runs `datapath serve` in its own container:
//       setup 0, 1, 2 in the order given), then for each line of the file TESTS,
//       "NAME NSETUPS METRIC[,METRIC...] REQUEST...", sends REQUEST to the first NSETUPS
//       setups in turn, WARMUP + ROUNDS times. Round r starts with setup r mod NSETUPS
//       (A B, B A, A B ...), so the runs of one round are next to each other in time
//       and none always goes first. Prints, per counted round, setup and metric,
//       "raw NAME.METRIC ROUND SETUP VALUE" (VALUE nan when the run failed) and, once per
//       test and setup that had errors, "err NAME SETUP TEXT". The ratios are taken
//       round by round by bench/run.sh from those lines.
//
// The measurements (serve's requests; MS is each one's duration in milliseconds):
//   tcp_write IP PORT BYTES MS      write() of BYTES on one connected TCP socket: MBps
//   tcp_send IP PORT BYTES MS       send() of BYTES (the sendto syscall, no address): MBps
//   tcp_sendmsg IP PORT BYTES MS    sendmsg() of BYTES, no address, same: MBps
//   udp_sendto IP PORT BYTES MS     sendto() with the address, unconnected UDP: msgs_per_s
//   udp_send IP PORT BYTES MS       send() on a connected UDP socket: msgs_per_s
//   udp_sendmsg IP PORT BYTES MS    sendmsg() with msg_name, unconnected UDP: msgs_per_s
//   udp_sendmsg_conn IP PORT BYTES MS  sendmsg() without msg_name, connected UDP: msgs_per_s
//   sendmmsg IP PORT BYTES BATCH MS sendmmsg() of BATCH addressed datagrams: msgs_per_s
//   gso IP PORT SEG NSEG MS         sendmsg() of NSEG x SEG bytes with a UDP_SEGMENT
//                                   control message on a connected UDP socket (QUIC's GSO):
//                                   msgs_per_s counts the segments (datagrams on the wire)
//   connect IP PORT N               N connects one after the other: median_us, p99_us
//   connect_tput IP PORT N THREADS  N connects over THREADS threads: ops_per_s
//   probe_udp IP PORT 1             one 1-byte sendto(): sent=1 errno=0, or sent=0 errno=E
//                                   (a check that the policy is enforced, not an error)
//   probe_deliver IP PORT 1         one UDP datagram "LABEL-udp" (sendto) and one TCP connect
//                                   that writes "LABEL-tcp" to IP:PORT: udp_sent, udp_errno,
//                                   tcp_sent, tcp_errno (0/1 and the errno of a refusal);
//                                   a listener there tells which setups got through
// Connect sockets close with SO_LINGER 0 (RST): no TIME_WAIT piles up.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "datapath: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

// ---------------------------------------------------------------- measurements

// What one measurement reports: its figures, its error count and the first error.
struct result {
	char figures[256];
	long errors;
	char first_error[128];
};

static void note_error(struct result *r, const char *call)
{
	if (r->errors++ == 0)
		snprintf(r->first_error, sizeof r->first_error, "%s:%s", call, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
}

// Too many errors: the measurement stops (a refused send fails at once, every time).
#define MAX_ERRORS 1000

static int tcp_connected(const struct sockaddr_in *to, struct result *r)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		note_error(r, "socket");
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)to, sizeof *to) < 0) {
		note_error(r, "connect");
		close(fd);
		return -1;
	}
	return fd;
}

enum tcp_call { TCP_WRITE, TCP_SEND, TCP_SENDMSG };

// tcp_write / tcp_send / tcp_sendmsg: bytes through one connection for `ms` milliseconds.
static void tcp_stream(const struct sockaddr_in *to, size_t size, int ms, enum tcp_call call, struct result *r)
{
	int fd = tcp_connected(to, r);
	if (fd < 0) {
		snprintf(r->figures, sizeof r->figures, "MBps=nan");
		return;
	}
	char *buf = malloc(size);
	if (!buf)
		die("malloc");
	memset(buf, 't', size);
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	double bytes = 0, t0 = now_us(), end = t0 + ms * 1e3, t = t0;
	for (unsigned i = 0; t < end && r->errors < MAX_ERRORS; i++) {
		ssize_t n = call == TCP_SENDMSG ? sendmsg(fd, &msg, MSG_NOSIGNAL)
			    : call == TCP_SEND	 ? send(fd, buf, size, MSG_NOSIGNAL)
						 : write(fd, buf, size);
		if (n < 0)
			note_error(r, call == TCP_SENDMSG ? "sendmsg" : call == TCP_SEND ? "send" : "write");
		else
			bytes += n;
		t = now_us();
	}
	snprintf(r->figures, sizeof r->figures, "MBps=%.1f", bytes / (t - t0)); // bytes/µs = MB/s
	close(fd);
	free(buf);
}

enum udp_kind { UDP_SENDTO, UDP_SEND, UDP_SENDMSG, UDP_SENDMSG_CONN, UDP_SENDMMSG, UDP_GSO };

// The UDP measurements: datagrams sent for `ms` milliseconds. size: one datagram (GSO:
// one segment); batch: datagrams per call (sendmmsg), segments per call (GSO), else 1.
static void udp_stream(const struct sockaddr_in *to, enum udp_kind kind, size_t size, int batch, int ms,
		       struct result *r)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if ((kind == UDP_SEND || kind == UDP_SENDMSG_CONN || kind == UDP_GSO) && connect(fd, (const struct sockaddr *)to, sizeof *to) < 0) {
		note_error(r, "connect");
		snprintf(r->figures, sizeof r->figures, "msgs_per_s=nan");
		close(fd);
		return;
	}
	size_t total = kind == UDP_GSO ? size * batch : size;
	char *buf = malloc(total);
	if (!buf)
		die("malloc");
	memset(buf, 'u', total);
	struct iovec iov = {.iov_base = buf, .iov_len = total};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (kind == UDP_SENDMSG) {
		msg.msg_name = (void *)to;
		msg.msg_namelen = sizeof *to;
	}
	char control[CMSG_SPACE(sizeof(uint16_t))];
	if (kind == UDP_GSO) {
		memset(control, 0, sizeof control);
		msg.msg_control = control;
		msg.msg_controllen = sizeof control;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		uint16_t seg = (uint16_t)size;
		memcpy(CMSG_DATA(c), &seg, sizeof seg);
	}
	struct mmsghdr *mm = NULL;
	if (kind == UDP_SENDMMSG) {
		mm = calloc(batch, sizeof *mm);
		if (!mm)
			die("calloc");
		for (int i = 0; i < batch; i++) {
			mm[i].msg_hdr.msg_name = (void *)to;
			mm[i].msg_hdr.msg_namelen = sizeof *to;
			mm[i].msg_hdr.msg_iov = &iov;
			mm[i].msg_hdr.msg_iovlen = 1;
		}
	}
	double sent = 0, t0 = now_us(), end = t0 + ms * 1e3, t = t0;
	while (t < end && r->errors < MAX_ERRORS) {
		// 8 calls between two clock reads: the clock stays a small part of a 64-byte send
		for (int k = 0; k < 8; k++) {
			ssize_t n;
			switch (kind) {
			case UDP_SENDTO:
				n = sendto(fd, buf, size, 0, (const struct sockaddr *)to, sizeof *to);
				if (n >= 0)
					sent++;
				break;
			case UDP_SEND:
				n = send(fd, buf, size, 0);
				if (n >= 0)
					sent++;
				break;
			case UDP_SENDMSG:
			case UDP_SENDMSG_CONN:
				n = sendmsg(fd, &msg, 0);
				if (n >= 0)
					sent++;
				break;
			case UDP_SENDMMSG:
				n = sendmmsg(fd, mm, batch, 0);
				if (n >= 0)
					sent += n;
				break;
			case UDP_GSO:
			default:
				n = sendmsg(fd, &msg, 0);
				if (n >= 0)
					sent += batch;
				break;
			}
			if (n < 0) {
				static const char *const names[] = {"sendto", "send", "sendmsg", "sendmsg", "sendmmsg", "sendmsg_gso"};
				note_error(r, names[kind]);
				break;
			}
		}
		t = now_us();
	}
	snprintf(r->figures, sizeof r->figures, "msgs_per_s=%.0f", sent / (t - t0) * 1e6);
	free(mm);
	free(buf);
	close(fd);
}

// One connect; its latency in µs, or -1 when it failed.
static double timed_connect(const struct sockaddr_in *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	double t0 = now_us();
	int rc = connect(fd, (const struct sockaddr *)to, sizeof *to);
	double t = now_us() - t0;
	int saved = errno;
	close(fd);
	errno = saved;
	return rc == 0 ? t : -1;
}

static void connect_latency(const struct sockaddr_in *to, int n, struct result *r)
{
	double *lat = calloc(n > 0 ? n : 1, sizeof *lat);
	if (!lat)
		die("calloc");
	int ok = 0;
	for (int i = 0; i < n && r->errors < MAX_ERRORS; i++) {
		double t = timed_connect(to);
		if (t < 0)
			note_error(r, "connect");
		else
			lat[ok++] = t;
	}
	if (ok == 0) {
		snprintf(r->figures, sizeof r->figures, "median_us=nan p99_us=nan");
	} else {
		qsort(lat, ok, sizeof *lat, cmp_double);
		int p99 = (int)(ok * 0.99);
		snprintf(r->figures, sizeof r->figures, "median_us=%.1f p99_us=%.1f", lat[ok / 2], lat[p99 < ok ? p99 : ok - 1]);
	}
	free(lat);
}

struct worker {
	pthread_t thread;
	const struct sockaddr_in *to;
	int n, done, errors, first_errno;
};

static void *connect_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->n && w->errors < MAX_ERRORS; i++) {
		if (timed_connect(w->to) >= 0)
			w->done++;
		else if (w->errors++ == 0)
			w->first_errno = errno;
	}
	return NULL;
}

static void connect_throughput(const struct sockaddr_in *to, int n, int threads, struct result *r)
{
	if (threads < 1 || threads > 64)
		threads = 1;
	struct worker w[64];
	memset(w, 0, sizeof w);
	double t0 = now_us();
	for (int i = 0; i < threads; i++) {
		w[i].to = to;
		w[i].n = n / threads;
		if (pthread_create(&w[i].thread, NULL, connect_worker, &w[i]) != 0)
			die("pthread_create");
	}
	int done = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		done += w[i].done;
		if (w[i].errors) {
			errno = w[i].first_errno;
			note_error(r, "connect");
			r->errors += w[i].errors - 1;
		}
	}
	snprintf(r->figures, sizeof r->figures, "ops_per_s=%.0f", done / ((now_us() - t0) / 1e6));
}

static void probe_udp(const struct sockaddr_in *to, struct result *r)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int sent = sendto(fd, "p", 1, 0, (const struct sockaddr *)to, sizeof *to) == 1;
	snprintf(r->figures, sizeof r->figures, "sent=%d errno=%d", sent, sent ? 0 : errno);
	close(fd);
}

// probe_deliver: a datagram and a connection carrying "LABEL-udp" / "LABEL-tcp".
static void probe_deliver(const struct sockaddr_in *to, const char *label, struct result *r)
{
	char payload[96];
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (udp < 0)
		die("socket");
	int n = snprintf(payload, sizeof payload, "%s-udp", label);
	int udp_sent = sendto(udp, payload, n, 0, (const struct sockaddr *)to, sizeof *to) == n;
	int udp_errno = udp_sent ? 0 : errno;
	close(udp);
	int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tcp < 0)
		die("socket");
	n = snprintf(payload, sizeof payload, "%s-tcp", label);
	int tcp_sent = connect(tcp, (const struct sockaddr *)to, sizeof *to) == 0 && write(tcp, payload, n) == n;
	int tcp_errno = tcp_sent ? 0 : errno;
	close(tcp);
	snprintf(r->figures, sizeof r->figures, "udp_sent=%d udp_errno=%d tcp_sent=%d tcp_errno=%d", udp_sent, udp_errno,
		 tcp_sent, tcp_errno);
}

// serve: one request a line, one answer a line.
static void serve(const char *label)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	char line[512];
	while (fgets(line, sizeof line, stdin)) {
		char *argv[8] = {0};
		int argc = 0;
		for (char *save = NULL, *tok = strtok_r(line, " \t\n", &save); tok && argc < 8; tok = strtok_r(NULL, " \t\n", &save))
			argv[argc++] = tok;
		if (argc == 0)
			continue;
		struct result r = {.errors = 0};
		struct sockaddr_in to;
		const char *op = argv[0];
		long a = argc > 3 ? atol(argv[3]) : 0, b = argc > 4 ? atol(argv[4]) : 0, c = argc > 5 ? atol(argv[5]) : 0;
		if (argc < 4 || parse_addr(argv[1], argv[2], &to) < 0) {
			printf("bad request %s\n", op);
			continue;
		}
		if (!strcmp(op, "tcp_write") && argc == 5)
			tcp_stream(&to, a, b, TCP_WRITE, &r);
		else if (!strcmp(op, "tcp_send") && argc == 5)
			tcp_stream(&to, a, b, TCP_SEND, &r);
		else if (!strcmp(op, "tcp_sendmsg") && argc == 5)
			tcp_stream(&to, a, b, TCP_SENDMSG, &r);
		else if (!strcmp(op, "udp_sendto") && argc == 5)
			udp_stream(&to, UDP_SENDTO, a, 1, b, &r);
		else if (!strcmp(op, "udp_send") && argc == 5)
			udp_stream(&to, UDP_SEND, a, 1, b, &r);
		else if (!strcmp(op, "udp_sendmsg") && argc == 5)
			udp_stream(&to, UDP_SENDMSG, a, 1, b, &r);
		else if (!strcmp(op, "udp_sendmsg_conn") && argc == 5)
			udp_stream(&to, UDP_SENDMSG_CONN, a, 1, b, &r);
		else if (!strcmp(op, "sendmmsg") && argc == 6)
			udp_stream(&to, UDP_SENDMMSG, a, b, c, &r);
		else if (!strcmp(op, "gso") && argc == 6)
			udp_stream(&to, UDP_GSO, a, b, c, &r);
		else if (!strcmp(op, "connect") && argc == 4)
			connect_latency(&to, a, &r);
		else if (!strcmp(op, "connect_tput") && argc == 5)
			connect_throughput(&to, a, b, &r);
		else if (!strcmp(op, "probe_udp") && argc == 4)
			probe_udp(&to, &r);
		else if (!strcmp(op, "probe_deliver") && argc == 4)
			probe_deliver(&to, label, &r);
		else {
			printf("bad request %s\n", op);
			continue;
		}
		printf("ok %s errors=%ld%s%s\n", r.figures, r.errors, r.errors ? " error=" : "", r.first_error);
	}
}

// ---------------------------------------------------------------- host side: sink

static void *sink_connection(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static char buf[1 << 18]; // shared by every reader: the bytes are thrown away
	while (read(fd, buf, sizeof buf) > 0) {
	}
	close(fd);
	return NULL;
}

static void *sink_accept(void *arg)
{
	int fd = *(int *)arg;
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			return NULL;
		}
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, sink_connection, (void *)(intptr_t)c) != 0)
			close(c);
		pthread_attr_destroy(&attr);
	}
}

static void *sink_udp(void *arg)
{
	int fd = *(int *)arg;
	char buf[65536];
	for (;;)
		if (recv(fd, buf, sizeof buf, 0) < 0 && errno != EINTR)
			return NULL;
}

static void sink(const struct sockaddr_in *at, int seconds)
{
	int one = 1, rcvbuf = 4 << 20;
	static int tcp, udp;
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tcp < 0 || udp < 0)
		die("socket");
	setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (bind(tcp, (const struct sockaddr *)at, sizeof *at) < 0 || listen(tcp, 1024) < 0)
		die("bind/listen tcp");
	if (bind(udp, (const struct sockaddr *)at, sizeof *at) < 0)
		die("bind udp");
	pthread_t t[2];
	if (pthread_create(&t[0], NULL, sink_accept, &tcp) != 0 || pthread_create(&t[1], NULL, sink_udp, &udp) != 0)
		die("pthread_create");
	printf("ready\n");
	fflush(stdout);
	sleep(seconds);
	exit(0);
}

// ---------------------------------------------------------------- host side: drive

#define MAX_SETUPS 4

struct setup {
	pid_t pid;
	int in, out; // the setup's stdin (we write) and stdout (we read)
	char buf[4096];
	size_t len;
	int dead;
};

static struct setup setups[MAX_SETUPS];
static int nsetups;

static void spawn(struct setup *s, char **argv)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		die("pipe");
	s->pid = fork();
	if (s->pid < 0)
		die("fork");
	if (s->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execvp(argv[0], argv);
		fprintf(stderr, "datapath: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->in = in[1];
	s->out = out[0];
}

// read_line: the setup's next output line (without the newline) into line, within
// timeout_ms; -1 (and the setup marked dead) on EOF or time-out.
static int read_line(int k, char *line, size_t size, int timeout_ms)
{
	struct setup *s = &setups[k];
	double deadline = now_us() + timeout_ms * 1e3;
	for (;;) {
		char *nl = memchr(s->buf, '\n', s->len);
		if (nl) {
			size_t n = (size_t)(nl - s->buf);
			snprintf(line, size, "%.*s", (int)n, s->buf);
			memmove(s->buf, nl + 1, s->len - n - 1);
			s->len -= n + 1;
			return 0;
		}
		int left = (int)((deadline - now_us()) / 1e3);
		struct pollfd p = {.fd = s->out, .events = POLLIN};
		if (s->dead || left <= 0 || s->len == sizeof s->buf)
			break;
		int rc = poll(&p, 1, left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			break;
		ssize_t n = read(s->out, s->buf + s->len, sizeof s->buf - s->len);
		if (n <= 0)
			break;
		s->len += (size_t)n;
	}
	if (!s->dead)
		printf("err setup %d setup stopped answering (exited, or no answer within %d s)\n", k, timeout_ms / 1000);
	s->dead = 1;
	return -1;
}

// figure LINE KEY: KEY's value in an answer line, or NULL.
static const char *figure(const char *line, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	for (const char *p = line; (p = strstr(p, key)); p += klen) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=') {
			size_t n = strcspn(p + klen + 1, " ");
			snprintf(out, size, "%.*s", (int)n, p + klen + 1);
			return out;
		}
	}
	return NULL;
}

static void run_test(char *spec, int rounds, int warmup)
{
	char name[64], metrics[128];
	int n = 0, used = 0;
	if (sscanf(spec, "%63s %d %127s %n", name, &n, metrics, &used) < 3 || used == 0 || n < 1) {
		printf("err - - bad test line: %s\n", spec);
		return;
	}
	if (n > nsetups)
		n = nsetups;
	char request[512];
	snprintf(request, sizeof request, "%s\n", spec + used);
	int reported[MAX_SETUPS] = {0};
	for (int round = -warmup; round < rounds; round++) {
		for (int j = 0; j < n; j++) {
			int k = ((round + warmup) + j) % n;
			char line[1024] = "", value[64], *save = NULL;
			int ok = 0;
			if (!setups[k].dead) {
				size_t len = strlen(request);
				if (write(setups[k].in, request, len) != (ssize_t)len) {
					printf("err %s %d cannot write the request: %s\n", name, k, strerror(errno));
					setups[k].dead = 1;
				} else if (read_line(k, line, sizeof line, 300000) == 0) {
					ok = !strncmp(line, "ok ", 3);
				}
			}
			char errors[32];
			if (ok && figure(line, "errors", errors, sizeof errors) && strcmp(errors, "0") && !reported[k]) {
				reported[k] = 1;
				printf("err %s %d %s\n", name, k, line + 3);
			} else if (!ok && !setups[k].dead && !reported[k]) {
				reported[k] = 1;
				printf("err %s %d %s\n", name, k, line);
			}
			if (round < 0)
				continue;
			char mcopy[128];
			snprintf(mcopy, sizeof mcopy, "%s", metrics);
			for (char *m = strtok_r(mcopy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
				const char *v = ok ? figure(line, m, value, sizeof value) : NULL;
				printf("raw %s.%s %d %d %s\n", name, m, round, k, v ? v : "nan");
			}
		}
	}
	fflush(stdout);
}

static int drive(int argc, char **argv)
{
	int rounds = atoi(argv[2]), warmup = atoi(argv[3]);
	FILE *tests = fopen(argv[4], "r");
	if (!tests || rounds < 1 || warmup < 0 || strcmp(argv[5], "--"))
		die("drive ROUNDS WARMUP TESTS -- CMD... ; CMD...");
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	char **cmd = &argv[6];
	for (int i = 6; i <= argc; i++) {
		if (i == argc || !strcmp(argv[i], ";")) {
			if (nsetups == MAX_SETUPS)
				die("too many setups");
			argv[i] = NULL;
			if (cmd[0])
				spawn(&setups[nsetups++], cmd);
			cmd = &argv[i + 1];
		}
	}
	for (int k = 0; k < nsetups; k++) {
		char line[256];
		if (read_line(k, line, sizeof line, 60000) == 0 && strcmp(line, "ready")) {
			printf("err setup %d did not start: %s\n", k, line);
			setups[k].dead = 1;
		}
	}
	char spec[512];
	while (fgets(spec, sizeof spec, tests)) {
		spec[strcspn(spec, "\n")] = 0;
		if (spec[0] && spec[0] != '#')
			run_test(spec, rounds, warmup);
	}
	fclose(tests);
	// EOF on stdin ends every serve; their containers exit with them
	for (int k = 0; k < nsetups; k++)
		close(setups[k].in);
	int rc = 0;
	for (int k = 0; k < nsetups; k++) {
		int status = 0, waited = 0;
		for (int t = 0; t < 300 && !(waited = waitpid(setups[k].pid, &status, WNOHANG)); t++)
			usleep(100 * 1000);
		if (!waited) {
			printf("err setup %d did not exit within 30 s of its stdin's end; killed\n", k);
			kill(setups[k].pid, SIGKILL);
			waitpid(setups[k].pid, &status, 0);
			rc = 1;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("err setup %d exited with status %d\n", k, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct sockaddr_in at;
	if ((argc == 2 || argc == 3) && !strcmp(argv[1], "serve")) {
		serve(argc == 3 ? argv[2] : "serve");
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "sink") && parse_addr(argv[2], argv[3], &at) == 0)
		sink(&at, atoi(argv[4]));
	if (argc >= 7 && !strcmp(argv[1], "drive"))
		return drive(argc, argv);
	fprintf(stderr, "usage: datapath serve [LABEL] | sink IP PORT SECONDS | drive ROUNDS WARMUP TESTS -- CMD... \\; CMD...\n");
	return 2;
}
