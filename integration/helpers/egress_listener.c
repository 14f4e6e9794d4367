// egress_listener tcp|udp ADDR[,ADDR...] PORT OUTFILE [TIMEOUT_SECONDS]
//
// The receiving end of the egress tests: binds one socket per ADDR (IPv4 or IPv6
// literal) on PORT, then backgrounds itself (the parent prints the daemon's pid and
// exits 0 only once every socket is bound and listening, so a caller can connect right
// away) and appends one line per event to OUTFILE, each line written with one write():
//
//   tcp ADDR PORT accept SRC          a connection was accepted
//   tcp ADDR PORT data SRC PAYLOAD    what that connection sent, read until EOF
//   udp ADDR PORT data SRC PAYLOAD    one datagram
//
// ADDR is the bound address the traffic arrived at, SRC is "ip:port" of the sender,
// PAYLOAD has every byte outside printable ASCII (and space, backslash) as \xNN, at most
// 4096 bytes a connection or datagram. Exits after TIMEOUT_SECONDS (default 300) or on
// SIGTERM. Exit status 2: usage; 1: a socket could not be set up (reason on stderr).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BOUND 16
#define MAX_CONNS 8192
#define MAX_PAYLOAD 4096

struct bound {
	int fd;
	char addr[INET6_ADDRSTRLEN];
};

struct conn {
	int fd;
	int bound;  // index into bound[]
	char src[INET6_ADDRSTRLEN + 8];
	size_t len;
	char buf[MAX_PAYLOAD];
};

static struct bound bound[MAX_BOUND];
static int nbound;
static struct conn *conns[MAX_CONNS];
static int nconns;
static int out_fd = -1;
static int is_tcp;
static unsigned port;
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "egress_listener: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

// "ip:port" of a peer, with IPv4-mapped IPv6 shown as plain IPv4.
static void format_peer(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned p = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		p = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr))
			inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], ip, sizeof(ip));
		else
			inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		p = ntohs(s->sin6_port);
	}
	snprintf(out, size, "%s:%u", ip, p);
}

static void escape_payload(const char *data, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < size; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c > ' ' && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

static void record(const char *fmt, ...)
{
	char line[MAX_PAYLOAD * 4 + 256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	// One write per line on an O_APPEND fd: a reader never sees half a line.
	if (write(out_fd, line, (size_t)n) < 0)
		perror("egress_listener: write");
}

static void record_data(const char *proto, const char *addr, const char *src, const char *data, size_t len)
{
	char esc[MAX_PAYLOAD * 4 + 1];
	escape_payload(data, len, esc, sizeof(esc));
	record("%s %s %u data %s %s", proto, addr, port, src, esc);
}

static void bind_one(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	int family;
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		die("not an IP address: %s", addr);
	}
	ss.ss_family = (sa_family_t)family;
	int fd = socket(family, (is_tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	// Floods (the sockaddr-flipping attacks) must not be lost to a full receive queue:
	// the tests compare counts. SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back quietly.
	int big = 16 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		die("bind %s port %u: %s", addr, port, strerror(errno));
	if (is_tcp && listen(fd, 4096) != 0)
		die("listen %s port %u: %s", addr, port, strerror(errno));
	if (nbound == MAX_BOUND)
		die("too many addresses");
	bound[nbound].fd = fd;
	snprintf(bound[nbound].addr, sizeof(bound[nbound].addr), "%s", addr);
	nbound++;
}

static void accept_all(int b)
{
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(bound[b].fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct conn *c = calloc(1, sizeof(*c));
		if (!c || nconns == MAX_CONNS) {
			free(c);
			close(fd);
			record("tcp %s %u overflow", bound[b].addr, port);
			continue;
		}
		c->fd = fd;
		c->bound = b;
		format_peer(&peer, c->src, sizeof(c->src));
		record("tcp %s %u accept %s", bound[b].addr, port, c->src);
		conns[nconns++] = c;
	}
}

static void finish_conn(int i)
{
	struct conn *c = conns[i];
	record_data("tcp", bound[c->bound].addr, c->src, c->buf, c->len);
	close(c->fd);
	free(c);
	conns[i] = conns[--nconns];
}

// Reads what is there; at EOF (or an error) records the data and drops the connection.
static void read_conn(int i)
{
	struct conn *c = conns[i];
	for (;;) {
		char tmp[4096];
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n > 0) {
			size_t keep = (size_t)n;
			if (keep > MAX_PAYLOAD - c->len)
				keep = MAX_PAYLOAD - c->len;
			memcpy(c->buf + c->len, tmp, keep);
			c->len += keep;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		finish_conn(i);
		return;
	}
}

static void receive_datagrams(int b)
{
	for (;;) {
		char buf[MAX_PAYLOAD];
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(bound[b].fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
		if (n < 0)
			return;
		char src[INET6_ADDRSTRLEN + 8];
		format_peer(&peer, src, sizeof(src));
		record_data("udp", bound[b].addr, src, buf, (size_t)n);
	}
}

static void serve(int timeout_s)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	static struct pollfd pfd[MAX_BOUND + MAX_CONNS];
	while (!stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout_s)
			break;
		int n = 0;
		for (int b = 0; b < nbound; b++)
			pfd[n++] = (struct pollfd){.fd = bound[b].fd, .events = POLLIN};
		for (int i = 0; i < nconns; i++)
			pfd[n++] = (struct pollfd){.fd = conns[i]->fd, .events = POLLIN};
		int nconns_polled = nconns;
		if (poll(pfd, (nfds_t)n, 200) <= 0)
			continue;
		// Connections first (indexes shift when one is finished: walk backwards).
		for (int i = nconns_polled - 1; i >= 0; i--)
			if (pfd[nbound + i].revents)
				read_conn(i);
		for (int b = 0; b < nbound; b++) {
			if (!pfd[b].revents)
				continue;
			if (is_tcp)
				accept_all(b);
			else
				receive_datagrams(b);
		}
	}
	// Whatever was received by connections still open is recorded too.
	while (nconns > 0)
		finish_conn(nconns - 1);
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 6 || (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "udp") != 0)) {
		fprintf(stderr, "usage: egress_listener tcp|udp ADDR[,ADDR...] PORT OUTFILE [TIMEOUT_SECONDS]\n");
		return 2;
	}
	is_tcp = strcmp(argv[1], "tcp") == 0;
	port = (unsigned)strtoul(argv[3], NULL, 10);
	if (port == 0 || port > 65535) {
		fprintf(stderr, "egress_listener: bad port %s\n", argv[3]);
		return 2;
	}
	int timeout_s = argc == 6 ? atoi(argv[5]) : 300;
	if (timeout_s <= 0)
		timeout_s = 300;

	char *addrs = strdup(argv[2]);
	for (char *save = NULL, *a = strtok_r(addrs, ",", &save); a; a = strtok_r(NULL, ",", &save))
		bind_one(a);
	free(addrs);
	out_fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (out_fd < 0)
		die("open %s: %s", argv[4], strerror(errno));

	// Bound and listening: background ourselves; the caller gets our pid.
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0) {
		printf("%d\n", (int)pid);
		return 0;
	}
	setsid();
	int devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (devnull > 2)
			close(devnull);
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	serve(timeout_s);
	return 0;
}
