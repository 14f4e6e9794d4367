// build: static
// (runs inside the busybox test rootfs, which has no C library: link with -static)
//
// egress_probe [--label NAME] SUBCOMMAND ARGS...
//
// The egress tests' workload: every way a process may try to send something out of a
// confined container. Each subcommand prints one machine-readable result line, starting
// with its label (the subcommand's name unless --label is given):
//
//   LABEL ok [key=value...]          the call succeeded (and the payload was sent)
//   LABEL errno ENAME [key=value...] the call failed with that errno
//
// A result line never proves anything by itself: the tests judge at the listener.
// Exit status: 0 ok, 1 a call failed, 2 usage.
//
//   connect tcp ADDR PORT [PAYLOAD]      connect, send PAYLOAD, wait for the peer's EOF
//   hold ADDR PORT PAYLOAD GATE          connect, send PAYLOAD-before, wait (at most 60 s)
//                                        until the file GATE exists, send PAYLOAD-after on
//                                        the same connection, wait for the peer's EOF
//   udp-hold ADDR PORT PAYLOAD N GATE    one UDP socket: N sendto of PAYLOAD-before, wait (at
//                                        most 60 s) until the file GATE exists, one sendto of
//                                        PAYLOAD-after on the same socket
//   connect-many ADDR PORT N             N sequential connects (payload "many-I"); prints
//                                        ok=N' max_ms= total_ms= and the first errno
//   connect udp ADDR PORT PAYLOAD        a UDP socket connected there, then send() PAYLOAD
//   sendto udp ADDR PORT PAYLOAD
//   sendmsg udp ADDR PORT PAYLOAD        msg_name carries the destination
//   sendmmsg udp A1 P1 [A2 P2 ...]       one call, entry I carries "LABEL-I"; prints ret=R
//   ping ADDR                            ping socket (SOCK_DGRAM/IPPROTO_ICMP[V6]); ok
//                                        reply=1 when the echo reply came back
//   connect6-mapped ADDR4 PORT [PAYLOAD] an AF_INET6 socket to ::ffff:ADDR4
//   sendto6-mapped ADDR4 PORT PAYLOAD
//   tfo ADDR PORT PAYLOAD                sendto(MSG_FASTOPEN) on a fresh TCP socket
//   raw ADDR PORT [cloexec]              socket(AF_INET, SOCK_RAW, IPPROTO_UDP); when it
//                                        works, sends a hand-built UDP datagram "raw-bypass"
//   proto-send TYPE PROTO ADDR PORT PAYLOAD  socket(family of ADDR, TYPE, PROTO) by number,
//                                        then sendto (SOCK_DGRAM) or connect + send
//   packet IFNAME DSTMAC SRC ADDR PORT   socket(AF_PACKET, SOCK_DGRAM); when it works,
//                                        sends a hand-built IPv4/UDP "packet-bypass"
//   iouring ADDR PORT PAYLOAD            io_uring_setup; when it works, IORING_OP_CONNECT
//                                        then sends PAYLOAD (ok = the bypass worked)
//   flip-connect ALLOWED DENIED PORT N   N connects while a thread rewrites the sockaddr
//   flip-sendto ALLOWED DENIED PORT N    ... N UDP sendto (payload "flip-I")
//   flip-sendmsg ALLOWED DENIED PORT N   ... N UDP sendmsg, msg_name being rewritten
//                                        the thread cycles: AF_INET ALLOWED, AF_INET DENIED,
//                                        AF_UNIX, AF_INET6 ::ffff:DENIED. Prints n= ok=
//                                        peer_denied= (connects that reached DENIED) and
//                                        one ENAME=count per errno seen.
//   fdswap-connect ADDR PORT N           N connects on one fd number that a thread keeps
//   fdswap-sendto ADDR PORT N            switching between an AF_UNIX socket (the buffer a
//                                        sockaddr_un) and an AF_INET socket (the buffer a
//                                        sockaddr_in of ADDR:PORT): a shim that CONTINUEs the
//                                        unix call lets the kernel look the fd up again.
//                                        connect: TCP, the thread sends "fdswap-K" on each
//                                        IP socket it finds connected and replaces it;
//                                        sendto: UDP, payload "fdswap-I". Prints n= ok=
//                                        ip_connected= and one ENAME=count per errno seen.
//   fdswap-ping ADDR N                   the same with a ping socket (ADDR IPv4 or IPv6):
//                                        N sendto of an ICMP echo request (payload
//                                        "fdswap-I") on the unix/ping fd; prints n= ok=
//                                        and one ENAME=count per errno seen.
//   The flip-* and fdswap-* subcommands take an optional last argument UNTIL, a comma
//   list of outcomes (ok, peer_denied, ip_connected or an errno name such as EPERM):
//   after the N calls they go on until each was seen once, for at most 10*N calls or
//   30 s, so a race that needs a rare interleaving is not lost on a busy machine (n= is
//   then the number of calls made).
//   cgroup-progs DIR                     (host side) how many programs are attached to the
//                                        cgroup2 directory DIR per egress hook: sock_create=
//                                        connect4= connect6= sendmsg4= sendmsg6=
//                                        inet_egress= sock_release=
//   sendto-many ADDR PORT N              N UDP sendto on one socket (payload "LABEL-I");
//                                        prints ok=N' n=N and the first errno
//   route-sendmsg DEST PORT HOP PAYLOAD [sticky]
//                                        a UDP datagram to DEST:PORT that carries a source
//                                        route through HOP: IPv4 an LSRR option (IP_RETOPTS
//                                        control message, or with sticky IP_OPTIONS), IPv6 a
//                                        routing header (IPV6_RTHDR: a type-2 one as control
//                                        message, a segment routing one as sticky option); the
//                                        packet's own destination is HOP.
//                                        at=setsockopt when the option was refused
//   route-ping DEST HOP                  an ICMP echo request to DEST with the same control
//                                        message (ping socket)
//   route-connect DEST PORT HOP PAYLOAD  TCP with the sticky option (IP_OPTIONS LSRR or
//                                        IPV6_RTHDR segment routing), then a connect that waits 1 s at most:
//                                        ok connected=0|1 once the SYN was sent
//   quic DEST PORT N [SEGMENT]           QUIC's way of sending: a connected UDP socket, then
//                                        N sendmsg without an address, each with an IP_TOS
//                                        (IPv6: IPV6_TCLASS) control message, and with
//                                        SEGMENT a UDP_SEGMENT one (GSO: 3 datagrams of
//                                        SEGMENT bytes per call); payloads "LABEL-I-J...".
//                                        prints ok=calls n= datagrams=
//   fork-connect ADDR PORT PAYLOAD       connect from a forked child
//   thread-connect ADDR PORT PAYLOAD     connect from a second thread
//   exec-connect ADDR PORT PAYLOAD       connect from a grandchild that re-exec'd this program
//   resolve NAME                         NAME's addresses in /etc/hosts ("resolve NAME ADDR"
//                                        lines, or "resolve NAME none")
//
// ADDR is an IPv4/IPv6 literal or a name looked up in /etc/hosts by this program (a
// static binary cannot use the C library's NSS modules in a rootfs without them).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/io_uring.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <netinet/ip6.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

static const char *label;

struct dest {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static const char *ename(int e)
{
	static char buf[16];
	const char *n = strerrorname_np(e);
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static int fail(const char *extra)
{
	int e = errno;
	say("%s errno %s%s%s", label, ename(e), extra ? " " : "", extra ? extra : "");
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: egress_probe [--label NAME] SUBCOMMAND ARGS... (see the source)\n");
	exit(2);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static unsigned parse_port(const char *s)
{
	char *end;
	unsigned long p = strtoul(s, &end, 10);
	if (*end || p > 65535) {
		fprintf(stderr, "egress_probe: bad port %s\n", s);
		exit(2);
	}
	return (unsigned)p;
}

// The first address of NAME in /etc/hosts (of any family), or all of them with print.
static int hosts_lookup(const char *name, char *out, size_t size, int print)
{
	FILE *f = fopen("/etc/hosts", "r");
	if (!f)
		return 0;
	char line[1024];
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *save = NULL;
		char *addr = strtok_r(line, " \t\r\n", &save);
		if (!addr)
			continue;
		for (char *n = strtok_r(NULL, " \t\r\n", &save); n; n = strtok_r(NULL, " \t\r\n", &save)) {
			if (strcasecmp(n, name) != 0)
				continue;
			if (print)
				say("resolve %s %s", name, addr);
			if (!found)
				snprintf(out, size, "%s", addr);
			found++;
			break;
		}
		if (found && !print)
			break;
	}
	fclose(f);
	return found;
}

static void make_dest(const char *host, unsigned port, struct dest *d)
{
	memset(d, 0, sizeof(*d));
	char resolved[256];
	if (!strchr(host, ':') && inet_pton(AF_INET, host, &(struct in_addr){0}) != 1 &&
	    hosts_lookup(host, resolved, sizeof(resolved), 0))
		host = resolved;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&d->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&d->ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		d->len = sizeof(*s4);
		d->family = AF_INET;
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		d->len = sizeof(*s6);
		d->family = AF_INET6;
	} else {
		say("%s errno ENONAME host=%s", label, host);
		exit(1);
	}
}

static void mapped_host(const char *addr4, char *out, size_t size)
{
	struct in_addr a;
	if (inet_pton(AF_INET, addr4, &a) != 1) {
		fprintf(stderr, "egress_probe: not an IPv4 address: %s\n", addr4);
		exit(2);
	}
	snprintf(out, size, "::ffff:%s", addr4);
}

static void write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

// After our data: half-close and wait (bounded) for the peer's EOF, so that the listener
// has recorded the payload by the time we report.
static void finish_stream(int fd)
{
	shutdown(fd, SHUT_WR);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	long deadline = now_ms() + 3000;
	char buf[256];
	while (now_ms() < deadline && poll(&p, 1, 200) >= 0) {
		if (p.revents && read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
}

// connect (+ payload); the result line carries the connect's duration.
static int do_connect(const char *host, unsigned port, const char *payload)
{
	struct dest d;
	make_dest(host, port, &d);
	int fd = socket(d.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("at=socket");
	long t0 = now_ms();
	if (connect(fd, (struct sockaddr *)&d.ss, d.len) != 0) {
		char extra[32];
		snprintf(extra, sizeof(extra), "ms=%ld", now_ms() - t0);
		return fail(extra);
	}
	long ms = now_ms() - t0;
	if (payload)
		write_all(fd, payload, strlen(payload));
	finish_stream(fd);
	close(fd);
	say("%s ok ms=%ld", label, ms);
	return 0;
}

// 0 once the file GATE exists, -1 (errno ETIMEDOUT) after 60 s.
static int wait_for_gate(const char *gate)
{
	for (int i = 0; access(gate, F_OK) != 0; i++) {
		if (i >= 6000) {
			errno = ETIMEDOUT;
			return -1;
		}
		usleep(10000);
	}
	return 0;
}

static int do_hold(const char *host, unsigned port, const char *payload, const char *gate)
{
	struct dest d;
	make_dest(host, port, &d);
	int fd = socket(d.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("at=socket");
	if (connect(fd, (struct sockaddr *)&d.ss, d.len) != 0)
		return fail("at=connect");
	char buf[256];
	snprintf(buf, sizeof(buf), "%s-before", payload);
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
		return fail("at=before");
	if (wait_for_gate(gate) != 0)
		return fail("at=gate");
	snprintf(buf, sizeof(buf), "%s-after", payload);
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
		return fail("at=after");
	finish_stream(fd);
	close(fd);
	say("%s ok", label);
	return 0;
}

static int do_connect_many(const char *host, unsigned port, int n)
{
	struct dest d;
	make_dest(host, port, &d);
	long max_ms = 0, t_all = now_ms();
	int ok = 0, first_errno = 0;
	for (int i = 0; i < n; i++) {
		int fd = socket(d.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail("at=socket");
		long t0 = now_ms();
		int rc = connect(fd, (struct sockaddr *)&d.ss, d.len);
		int e = errno;
		long ms = now_ms() - t0;
		if (ms > max_ms)
			max_ms = ms;
		if (rc == 0) {
			char payload[32];
			snprintf(payload, sizeof(payload), "many-%d", i);
			write_all(fd, payload, strlen(payload));
			finish_stream(fd);
			ok++;
		} else if (!first_errno) {
			first_errno = e;
		}
		close(fd);
	}
	say("%s %s ok=%d n=%d max_ms=%ld total_ms=%ld%s%s", label, ok == n ? "ok" : "errno", ok, n, max_ms,
	    now_ms() - t_all, first_errno ? " first_errno=" : "", first_errno ? ename(first_errno) : "");
	return ok == n ? 0 : 1;
}

static int udp_socket(const struct dest *d)
{
	return socket(d->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

// A UDP socket for HOST:PORT (*d its address), or -1 with the failure reported.
static int udp_socket_to(const char *host, unsigned port, struct dest *d)
{
	make_dest(host, port, d);
	int fd = udp_socket(d);
	if (fd < 0)
		fail("at=socket");
	return fd;
}

static int do_sendto(const char *host, unsigned port, const char *payload)
{
	struct dest d;
	int fd = udp_socket_to(host, port, &d);
	if (fd < 0)
		return 1;
	ssize_t n = sendto(fd, payload, strlen(payload), 0, (struct sockaddr *)&d.ss, d.len);
	if (n < 0)
		return fail(NULL);
	say("%s ok bytes=%zd", label, n);
	return 0;
}

static int do_udp_hold(const char *host, unsigned port, const char *payload, int n, const char *gate)
{
	struct dest d;
	int fd = udp_socket_to(host, port, &d);
	if (fd < 0)
		return 1;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s-before", payload);
	for (int i = 0; i < n; i++)
		if (sendto(fd, buf, strlen(buf), 0, (struct sockaddr *)&d.ss, d.len) < 0)
			return fail("at=before");
	if (wait_for_gate(gate) != 0)
		return fail("at=gate");
	snprintf(buf, sizeof(buf), "%s-after", payload);
	if (sendto(fd, buf, strlen(buf), 0, (struct sockaddr *)&d.ss, d.len) < 0)
		return fail("at=after");
	close(fd);
	say("%s ok", label);
	return 0;
}

static int do_connect_udp(const char *host, unsigned port, const char *payload)
{
	struct dest d;
	int fd = udp_socket_to(host, port, &d);
	if (fd < 0)
		return 1;
	if (connect(fd, (struct sockaddr *)&d.ss, d.len) != 0)
		return fail("at=connect");
	ssize_t n = send(fd, payload, strlen(payload), 0);
	if (n < 0)
		return fail("at=send");
	say("%s ok bytes=%zd", label, n);
	return 0;
}

static int do_sendmsg(const char *host, unsigned port, const char *payload)
{
	struct dest d;
	int fd = udp_socket_to(host, port, &d);
	if (fd < 0)
		return 1;
	struct iovec iov = {.iov_base = (void *)payload, .iov_len = strlen(payload)};
	struct msghdr m = {.msg_name = &d.ss, .msg_namelen = d.len, .msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n = sendmsg(fd, &m, 0);
	if (n < 0)
		return fail(NULL);
	say("%s ok bytes=%zd", label, n);
	return 0;
}

static int do_sendmmsg(int argc, char **argv)
{
	if (argc < 2 || argc % 2 != 0 || argc / 2 > 64)
		usage();
	int k = argc / 2;
	struct dest d[64];
	struct mmsghdr mm[64];
	struct iovec iov[64];
	char payload[64][32];
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < k; i++) {
		make_dest(argv[2 * i], parse_port(argv[2 * i + 1]), &d[i]);
		snprintf(payload[i], sizeof(payload[i]), "%.20s-%d", label, i + 1);
		iov[i] = (struct iovec){.iov_base = payload[i], .iov_len = strlen(payload[i])};
		mm[i].msg_hdr = (struct msghdr){.msg_name = &d[i].ss, .msg_namelen = d[i].len, .msg_iov = &iov[i], .msg_iovlen = 1};
	}
	int fd = udp_socket(&d[0]);
	if (fd < 0)
		return fail("at=socket");
	int r = sendmmsg(fd, mm, (unsigned)k, 0);
	if (r < 0)
		return fail(NULL);
	say("%s ok ret=%d", label, r);
	return 0;
}

static int do_ping(const char *host)
{
	struct dest d;
	make_dest(host, 0, &d);
	int v6 = d.family == AF_INET6;
	int fd = socket(d.family, SOCK_DGRAM | SOCK_CLOEXEC, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	if (fd < 0)
		return fail("at=socket");
	unsigned char pkt[64];
	memset(pkt, 0, sizeof(pkt));
	if (v6) {
		struct icmp6_hdr *h = (struct icmp6_hdr *)pkt;
		h->icmp6_type = ICMP6_ECHO_REQUEST;
		h->icmp6_seq = htons(1);
	} else {
		struct icmphdr *h = (struct icmphdr *)pkt;
		h->type = ICMP_ECHO;
		h->un.echo.sequence = htons(1);
	}
	memcpy(pkt + 8, "slit-ping", 9);
	if (sendto(fd, pkt, 8 + 9, 0, (struct sockaddr *)&d.ss, d.len) < 0)
		return fail(NULL);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int reply = 0;
	if (poll(&p, 1, 2000) == 1) {
		unsigned char in[128];
		ssize_t n = recv(fd, in, sizeof(in), 0);
		reply = n >= 8 && (v6 ? in[0] == ICMP6_ECHO_REPLY : in[0] == ICMP_ECHOREPLY);
	}
	say("%s ok reply=%d", label, reply);
	return 0;
}

static int do_tfo(const char *host, unsigned port, const char *payload)
{
	struct dest d;
	make_dest(host, port, &d);
	int fd = socket(d.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("at=socket");
	ssize_t n = sendto(fd, payload, strlen(payload), MSG_FASTOPEN, (struct sockaddr *)&d.ss, d.len);
	if (n < 0)
		return fail(NULL);
	if ((size_t)n < strlen(payload))
		write_all(fd, payload + n, strlen(payload) - (size_t)n);
	finish_stream(fd);
	close(fd);
	say("%s ok bytes=%zd", label, n);
	return 0;
}

// socket(family of ADDR, TYPE, PROTO) with numbers, then sendto (SOCK_DGRAM) or connect
// and send (other types): the IP sockets a policy cannot judge (UDP-Lite, SCTP ...).
static int do_proto_send(int type, int proto, const char *host, unsigned port, const char *payload)
{
	struct dest d;
	make_dest(host, port, &d);
	int fd = socket(d.family, type | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return fail("at=socket");
	if (type == SOCK_DGRAM) {
		if (sendto(fd, payload, strlen(payload), 0, (struct sockaddr *)&d.ss, d.len) < 0)
			return fail("at=sendto");
	} else {
		if (connect(fd, (struct sockaddr *)&d.ss, d.len) < 0)
			return fail("at=connect");
		write_all(fd, payload, strlen(payload));
	}
	close(fd);
	say("%s ok", label);
	return 0;
}

static uint16_t ip_checksum(const void *data, size_t len)
{
	const uint8_t *b = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

// A UDP header + payload (checksum 0: none, valid over IPv4).
static size_t build_udp(uint8_t *buf, unsigned port, const char *payload)
{
	struct udphdr *u = (struct udphdr *)buf;
	size_t plen = strlen(payload);
	u->source = htons(40000);
	u->dest = htons((uint16_t)port);
	u->len = htons((uint16_t)(sizeof(*u) + plen));
	u->check = 0;
	memcpy(buf + sizeof(*u), payload, plen);
	return sizeof(*u) + plen;
}

static int do_raw(const char *host, unsigned port, int cloexec)
{
	struct dest d;
	make_dest(host, 0, &d);
	int fd = socket(AF_INET, SOCK_RAW | (cloexec ? SOCK_CLOEXEC : 0), IPPROTO_UDP);
	if (fd < 0)
		return fail(NULL);
	uint8_t buf[256];
	size_t n = build_udp(buf, port, "raw-bypass");
	if (sendto(fd, buf, n, 0, (struct sockaddr *)&d.ss, d.len) < 0)
		return fail("at=sendto");
	say("%s ok sent=1", label);
	return 0;
}

static int do_packet(const char *ifname, const char *mac, const char *src, const char *dst, unsigned port)
{
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
	if (fd < 0)
		return fail(NULL);
	uint8_t buf[256];
	struct iphdr *ip = (struct iphdr *)buf;
	memset(buf, 0, sizeof(buf));
	size_t ulen = build_udp(buf + sizeof(*ip), port, "packet-bypass");
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)(sizeof(*ip) + ulen));
	if (inet_pton(AF_INET, src, &ip->saddr) != 1 || inet_pton(AF_INET, dst, &ip->daddr) != 1)
		usage();
	ip->check = ip_checksum(ip, sizeof(*ip));
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_halen = 6};
	ll.sll_ifindex = (int)if_nametoindex(ifname);
	unsigned m[6];
	if (sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		usage();
	for (int i = 0; i < 6; i++)
		ll.sll_addr[i] = (unsigned char)m[i];
	if (sendto(fd, buf, sizeof(*ip) + ulen, 0, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return fail("at=sendto");
	say("%s ok sent=1", label);
	return 0;
}

// io_uring's operations are not system calls seccomp sees: IORING_OP_CONNECT would
// reach any destination. The filter must refuse io_uring_setup.
static int do_iouring(const char *host, unsigned port, const char *payload)
{
	struct dest d;
	make_dest(host, port, &d);
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int rfd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (rfd < 0)
		return fail(NULL);
	size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
	size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_size = cq_size = sq_size > cq_size ? sq_size : cq_size;
	uint8_t *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_SQ_RING);
	uint8_t *cq = (p.features & IORING_FEAT_SINGLE_MMAP)
			      ? sq
			      : mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return fail("at=mmap");
	int fd = socket(d.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("at=socket");
	uint32_t *sq_tail = (uint32_t *)(sq + p.sq_off.tail);
	uint32_t *sq_mask = (uint32_t *)(sq + p.sq_off.ring_mask);
	uint32_t *sq_array = (uint32_t *)(sq + p.sq_off.array);
	uint32_t tail = __atomic_load_n(sq_tail, __ATOMIC_ACQUIRE);
	uint32_t idx = tail & *sq_mask;
	struct io_uring_sqe *sqe = &sqes[idx];
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_CONNECT;
	sqe->fd = fd;
	sqe->addr = (uint64_t)(uintptr_t)&d.ss;
	sqe->off = d.len;  // IORING_OP_CONNECT takes the address length in off
	sqe->user_data = 1;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, rfd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return fail("at=io_uring_enter");
	uint32_t *cq_head = (uint32_t *)(cq + p.cq_off.head);
	uint32_t *cq_mask = (uint32_t *)(cq + p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	uint32_t head = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
	int res = cqes[head & *cq_mask].res;
	__atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
	if (res < 0) {
		errno = -res;
		return fail("at=connect");
	}
	write_all(fd, payload, strlen(payload));
	finish_stream(fd);
	say("%s ok connected=1", label);
	return 0;
}

// ---------------------------------------------------------------- flipping attacks

enum { FLIP_CONNECT, FLIP_SENDTO, FLIP_SENDMSG };

static struct sockaddr_storage flip_shared __attribute__((aligned(64)));
static struct sockaddr_storage flip_template[4];
static int flip_stop;
static unsigned flip_count;

static void *flipper(void *arg)
{
	(void)arg;
	unsigned k = 0, r = 1;
	while (!__atomic_load_n(&flip_stop, __ATOMIC_RELAXED)) {
		memcpy(&flip_shared, &flip_template[k++ & 3], sizeof(struct sockaddr_in6));
		// Every store must really happen: the victim reads it from another thread.
		__asm__ volatile("" ::: "memory");
		__atomic_store_n(&flip_count, k, __ATOMIC_RELAXED);
		// A random dwell (0 included, for torn reads): a tight loop phase-locks with the
		// victim's reads through the cache line and shows it the same state every time.
		r = r * 1103515245u + 12345u;
		for (volatile unsigned spin = (r >> 16) & 1023; spin; spin--)
			;
	}
	return NULL;
}

struct errcount {
	int err;
	int count;
};

static void count_errno(struct errcount *c, int n, int e)
{
	for (int i = 0; i < n; i++) {
		if (c[i].err == e || c[i].err == 0) {
			c[i].err = e;
			c[i].count++;
			return;
		}
	}
}

// One outcome of a race: "ok", a counter of the subcommand, or an errno name.
struct outcome_counts {
	int ok;
	const char *counter;
	int counter_value;
	const struct errcount *errs;
};

static int outcome_seen(const struct outcome_counts *c, const char *name, size_t len)
{
	if (len == 2 && !strncmp(name, "ok", 2))
		return c->ok > 0;
	if (strlen(c->counter) == len && !strncmp(name, c->counter, len))
		return c->counter_value > 0;
	for (int i = 0; i < 16 && c->errs[i].err; i++)
		if (strlen(ename(c->errs[i].err)) == len && !strncmp(name, ename(c->errs[i].err), len))
			return c->errs[i].count > 0;
	return 0;
}

// Whether call I (0-based) of N should be made: always the first N, then more while an
// outcome listed in UNTIL is still missing, up to 10*N calls and 30 s from START_MS.
static int keep_going(int i, int n, const char *until, const struct outcome_counts *c, long start_ms)
{
	if (i < n)
		return 1;
	if (!until || i >= 10 * n || now_ms() - start_ms > 30000)
		return 0;
	for (const char *p = until; *p;) {
		size_t len = strcspn(p, ",");
		if (len && !outcome_seen(c, p, len))
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

static int do_flip(int kind, const char *allowed, const char *denied, unsigned port, int n,
		   const char *until)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in dn = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/nonexistent-slit"};
	struct sockaddr_in6 m = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	char mapped[64];
	mapped_host(denied, mapped, sizeof(mapped));
	if (inet_pton(AF_INET, allowed, &a.sin_addr) != 1 || inet_pton(AF_INET, denied, &dn.sin_addr) != 1 ||
	    inet_pton(AF_INET6, mapped, &m.sin6_addr) != 1)
		usage();
	memcpy(&flip_template[0], &a, sizeof(a));
	memcpy(&flip_template[1], &dn, sizeof(dn));
	memcpy(&flip_template[2], &un, sizeof(un) < sizeof(flip_template[2]) ? sizeof(un) : sizeof(flip_template[2]));
	memcpy(&flip_template[3], &m, sizeof(m));
	memcpy(&flip_shared, &a, sizeof(a));

	pthread_t t;
	if (pthread_create(&t, NULL, flipper, NULL) != 0)
		usage();
	// Start only once the flipper runs, or a fast loop could finish before it does.
	while (__atomic_load_n(&flip_count, __ATOMIC_RELAXED) < 1000)
		sched_yield();
	int ok = 0, peer_denied = 0;
	struct errcount errs[16];
	memset(errs, 0, sizeof(errs));
	int udp = -1;
	if (kind != FLIP_CONNECT)
		udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned seen = 0;
	long start_ms = now_ms();
	int i;
	for (i = 0;; i++) {
		struct outcome_counts oc = {ok, "peer_denied", peer_denied, errs};
		if (!keep_going(i, n, until, &oc, start_ms))
			break;
		char payload[32];
		snprintf(payload, sizeof(payload), "flip-%d", i);
		// On a busy machine the flipper may be off the CPU for a whole burst of calls:
		// each call waits for at least one flip since the previous one.
		while (__atomic_load_n(&flip_count, __ATOMIC_RELAXED) == seen)
			sched_yield();
		seen = __atomic_load_n(&flip_count, __ATOMIC_RELAXED);
		int rc;
		if (kind == FLIP_CONNECT) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			rc = connect(fd, (struct sockaddr *)&flip_shared, sizeof(struct sockaddr_in6));
			int e = errno;
			if (rc == 0) {
				struct sockaddr_in peer;
				socklen_t plen = sizeof(peer);
				if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 &&
				    peer.sin_addr.s_addr == dn.sin_addr.s_addr)
					peer_denied++;
				write_all(fd, payload, strlen(payload));
			}
			close(fd);
			errno = e;
		} else if (kind == FLIP_SENDTO) {
			rc = (int)sendto(udp, payload, strlen(payload), 0, (struct sockaddr *)&flip_shared,
					 sizeof(struct sockaddr_in6));
		} else {
			struct iovec iov = {.iov_base = payload, .iov_len = strlen(payload)};
			struct msghdr mh = {.msg_name = &flip_shared, .msg_namelen = sizeof(struct sockaddr_in6),
					    .msg_iov = &iov, .msg_iovlen = 1};
			rc = (int)sendmsg(udp, &mh, 0);
		}
		if (rc >= 0)
			ok++;
		else
			count_errno(errs, 16, errno);
	}
	__atomic_store_n(&flip_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	char line[512];
	int o = snprintf(line, sizeof(line), "%s ok n=%d ok=%d peer_denied=%d", label, i, ok, peer_denied);
	for (int j = 0; j < 16 && errs[j].err; j++)
		o += snprintf(line + o, sizeof(line) - (size_t)o, " %s=%d", ename(errs[j].err), errs[j].count);
	say("%s", line);
	return 0;
}

// ---------------------------------------------------------------- fd-swap attack

enum { SWAP_CONNECT, SWAP_SENDTO, SWAP_PING };

static struct sockaddr_storage swap_buf __attribute__((aligned(64)));
static struct sockaddr_storage swap_sin;
static socklen_t swap_sin_len;
static struct sockaddr_un swap_sun = {.sun_family = AF_UNIX, .sun_path = "/nonexistent-slit"};
static int swap_fd = 200, swap_unix, swap_kind, swap_stop, swap_ip_connected;
static unsigned swap_count;

static int swap_ip_socket(void)
{
	int family = swap_sin.ss_family;
	if (swap_kind == SWAP_PING)
		return socket(family, SOCK_DGRAM | SOCK_CLOEXEC, family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	return socket(family, (swap_kind == SWAP_CONNECT ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
}

static void swap_spin(unsigned *r)
{
	*r = *r * 1103515245u + 12345u;
	for (volatile unsigned spin = (*r >> 16) & 1023; spin; spin--)
		;
}

// Alternates the fd number between the IP socket (with an IP address in the buffer) and
// the unix socket (with a unix address), with random dwells in both states.
static void *swapper(void *arg)
{
	(void)arg;
	int ip = swap_ip_socket();
	unsigned k = 0, r = 7;
	while (ip >= 0 && !__atomic_load_n(&swap_stop, __ATOMIC_RELAXED)) {
		dup2(ip, swap_fd);
		memcpy(&swap_buf, &swap_sin, swap_sin_len);
		__asm__ volatile("" ::: "memory");
		swap_spin(&r);
		dup2(swap_unix, swap_fd);
		memcpy(&swap_buf, &swap_sun, sizeof(swap_sun));
		__asm__ volatile("" ::: "memory");
		__atomic_store_n(&swap_count, ++k, __ATOMIC_RELAXED);
		swap_spin(&r);
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		if (swap_kind == SWAP_CONNECT && getpeername(ip, (struct sockaddr *)&peer, &plen) == 0) {
			// A connect on the fd reached the IP socket: show the listener, use a fresh one.
			char payload[32];
			snprintf(payload, sizeof(payload), "fdswap-%u", k);
			write_all(ip, payload, strlen(payload));
			close(ip);
			ip = swap_ip_socket();
			__atomic_fetch_add(&swap_ip_connected, 1, __ATOMIC_RELAXED);
		}
	}
	if (ip >= 0)
		close(ip);
	return NULL;
}

static int do_fdswap(int kind, const char *addr, unsigned port, int n, const char *until)
{
	swap_kind = kind;
	struct sockaddr_in *sin = (struct sockaddr_in *)&swap_sin;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&swap_sin;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		swap_sin_len = sizeof(*sin);
	} else if (kind == SWAP_PING && inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		swap_sin_len = sizeof(*sin6);
	} else {
		usage();
	}
	swap_unix = socket(AF_UNIX, (kind == SWAP_CONNECT ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (swap_unix < 0 || dup2(swap_unix, swap_fd) < 0)
		return fail("at=socket");
	memcpy(&swap_buf, &swap_sun, sizeof(swap_sun));
	pthread_t t;
	if (pthread_create(&t, NULL, swapper, NULL) != 0)
		return fail("at=pthread_create");
	while (__atomic_load_n(&swap_count, __ATOMIC_RELAXED) < 100)
		sched_yield();
	int ok = 0;
	struct errcount errs[16];
	memset(errs, 0, sizeof(errs));
	unsigned seen = 0;
	long start_ms = now_ms();
	int i;
	for (i = 0;; i++) {
		struct outcome_counts oc = {ok, "ip_connected", __atomic_load_n(&swap_ip_connected, __ATOMIC_RELAXED),
					    errs};
		if (!keep_going(i, n, until, &oc, start_ms))
			break;
		// at least one swap cycle between calls (the swapper may be off the CPU)
		while (__atomic_load_n(&swap_count, __ATOMIC_RELAXED) == seen)
			sched_yield();
		seen = __atomic_load_n(&swap_count, __ATOMIC_RELAXED);
		int rc;
		if (kind == SWAP_CONNECT) {
			rc = connect(swap_fd, (struct sockaddr *)&swap_buf, sizeof(struct sockaddr_un));
		} else if (kind == SWAP_PING) {
			// an echo request (type, code, checksum, id, sequence: the kernel fills
			// the checksum and id), then the payload
			unsigned char pkt[40];
			memset(pkt, 0, 8);
			pkt[0] = swap_sin.ss_family == AF_INET6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
			int len = 8 + snprintf((char *)pkt + 8, sizeof(pkt) - 8, "fdswap-%d", i);
			rc = (int)sendto(swap_fd, pkt, (size_t)len, 0, (struct sockaddr *)&swap_buf,
					 sizeof(struct sockaddr_un));
		} else {
			char payload[32];
			snprintf(payload, sizeof(payload), "fdswap-%d", i);
			rc = (int)sendto(swap_fd, payload, strlen(payload), 0, (struct sockaddr *)&swap_buf,
					 sizeof(struct sockaddr_un));
		}
		if (rc >= 0)
			ok++;
		else
			count_errno(errs, 16, errno);
	}
	__atomic_store_n(&swap_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	char line[512];
	int o = snprintf(line, sizeof(line), "%s ok n=%d ok=%d ip_connected=%d", label, i, ok, swap_ip_connected);
	for (int j = 0; j < 16 && errs[j].err; j++)
		o += snprintf(line + o, sizeof(line) - (size_t)o, " %s=%d", ename(errs[j].err), errs[j].count);
	say("%s", line);
	return 0;
}

// BPF_PROG_QUERY on the cgroup for each egress hook (run on the host: no bpftool needed).
static int do_cgroup_progs(const char *dir)
{
	static const struct {
		const char *name;
		enum bpf_attach_type type;
	} hooks[] = {{"sock_create", BPF_CGROUP_INET_SOCK_CREATE}, {"connect4", BPF_CGROUP_INET4_CONNECT},
		     {"connect6", BPF_CGROUP_INET6_CONNECT},       {"sendmsg4", BPF_CGROUP_UDP4_SENDMSG},
		     {"sendmsg6", BPF_CGROUP_UDP6_SENDMSG},        {"inet_egress", BPF_CGROUP_INET_EGRESS},
		     {"sock_release", BPF_CGROUP_INET_SOCK_RELEASE}};
	int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return fail("at=open");
	char line[256];
	int o = snprintf(line, sizeof(line), "%s ok", label);
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.query.target_fd = (uint32_t)cg;
		attr.query.attach_type = hooks[i].type;
		if (syscall(__NR_bpf, BPF_PROG_QUERY, &attr, sizeof(attr)) != 0)
			return fail("at=BPF_PROG_QUERY");
		o += snprintf(line + o, sizeof(line) - (size_t)o, " %s=%u", hooks[i].name, attr.query.prog_cnt);
	}
	close(cg);
	say("%s", line);
	return 0;
}

// ---------------------------------------------------------------- sources routes and QUIC

static int do_sendto_many(const char *host, unsigned port, int n)
{
	struct dest d;
	int fd = udp_socket_to(host, port, &d);
	if (fd < 0)
		return 1;
	int ok = 0, first_errno = 0;
	for (int i = 0; i < n; i++) {
		char payload[64];
		snprintf(payload, sizeof(payload), "%.40s-%d", label, i);
		if (sendto(fd, payload, strlen(payload), 0, (struct sockaddr *)&d.ss, d.len) >= 0)
			ok++;
		else if (!first_errno)
			first_errno = errno;
	}
	close(fd);
	say("%s %s ok=%d n=%d%s%s", label, ok == n ? "ok" : "errno", ok, n, first_errno ? " first_errno=" : "",
	    first_errno ? ename(first_errno) : "");
	return ok == n ? 0 : 1;
}

// The routing option that sends a packet for DEST through HOP: IPv4 a loose source route
// (NOP, LSRR length 7 pointer 4, HOP: the kernel routes to the first address and puts
// DEST last). IPv6: as a control message a type-2 routing header (Mobile IPv6, only on
// kernels with CONFIG_IPV6_MIP6; elsewhere EINVAL): HOP becomes the packet's destination,
// DEST goes in the header; as the sticky option (sticky != 0) a segment routing header
// (type 4, which every kernel accepts there) with the segments HOP then DEST. Returns its
// length; level and names for the control message and the sticky socket option.
static size_t route_option(const struct dest *d, const struct dest *hop, int sticky, unsigned char *opt,
			   int *level, int *cmsg_type, int *sockopt)
{
	if (hop->family == AF_INET) {
		opt[0] = IPOPT_NOP;
		opt[1] = IPOPT_LSRR;
		opt[2] = 7;
		opt[3] = 4;
		memcpy(opt + 4, &((struct sockaddr_in *)&hop->ss)->sin_addr, 4);
		*level = IPPROTO_IP;
		*cmsg_type = IP_RETOPTS;
		*sockopt = IP_OPTIONS;
		return 8;
	}
	*level = IPPROTO_IPV6;
	*cmsg_type = IPV6_RTHDR;
	*sockopt = IPV6_RTHDR;
	const struct in6_addr *h = &((struct sockaddr_in6 *)&hop->ss)->sin6_addr;
	if (!sticky) {
		memset(opt, 0, 24);
		opt[1] = 2; // length: 2 units of 8 bytes past the first 8
		opt[2] = 2; // type 2
		opt[3] = 1; // segments left
		memcpy(opt + 8, h, 16);
		return 24;
	}
	// SRH: next header, length 4 (two segments), type 4, segments left 1, last entry 1,
	// flags, tag; segments[0] is the last one (DEST), segments[1] the first (HOP)
	memset(opt, 0, 40);
	opt[1] = 4;
	opt[2] = 4;
	opt[3] = 1;
	opt[4] = 1;
	memcpy(opt + 8, &((struct sockaddr_in6 *)&d->ss)->sin6_addr, 16);
	memcpy(opt + 24, h, 16);
	return 40;
}

// sendmsg of DATA to D with one control message (level, type, opt) or none (len 0).
static ssize_t send_with_cmsg(int fd, const struct dest *d, const void *data, size_t dlen, int level, int type,
			      const void *opt, size_t len)
{
	union {
		struct cmsghdr align;
		unsigned char buf[CMSG_SPACE(64)];
	} control;
	memset(&control, 0, sizeof(control));
	struct iovec iov = {.iov_base = (void *)data, .iov_len = dlen};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (d) {
		m.msg_name = (void *)&d->ss;
		m.msg_namelen = d->len;
	}
	if (len) {
		m.msg_control = control.buf;
		m.msg_controllen = CMSG_SPACE(len);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = level;
		c->cmsg_type = type;
		c->cmsg_len = CMSG_LEN(len);
		memcpy(CMSG_DATA(c), opt, len);
	}
	return sendmsg(fd, &m, 0);
}

static int do_route_sendmsg(const char *host, unsigned port, const char *hop_host, const char *payload, int sticky,
			    int ping)
{
	struct dest d, hop;
	make_dest(host, port, &d);
	make_dest(hop_host, 0, &hop);
	if (hop.family != d.family)
		usage();
	unsigned char opt[40];
	int level, type, sockopt;
	size_t len = route_option(&d, &hop, sticky, opt, &level, &type, &sockopt);
	int v6 = d.family == AF_INET6;
	int fd = ping ? socket(d.family, SOCK_DGRAM | SOCK_CLOEXEC, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP)
		      : udp_socket(&d);
	if (fd < 0)
		return fail("at=socket");
	if (sticky) {
		if (setsockopt(fd, level, sockopt, opt, (socklen_t)len) != 0)
			return fail("at=setsockopt");
		len = 0;
	}
	unsigned char pkt[64];
	size_t plen;
	if (ping) {
		memset(pkt, 0, 8);
		pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
		plen = 8 + (size_t)snprintf((char *)pkt + 8, sizeof(pkt) - 8, "%.40s", payload);
	} else {
		plen = (size_t)snprintf((char *)pkt, sizeof(pkt), "%.60s", payload);
	}
	ssize_t n = send_with_cmsg(fd, &d, pkt, plen, level, type, opt, len);
	if (n < 0)
		return fail("at=sendmsg");
	close(fd);
	say("%s ok bytes=%zd", label, n);
	return 0;
}

static int do_route_connect(const char *host, unsigned port, const char *hop_host, const char *payload)
{
	struct dest d, hop;
	make_dest(host, port, &d);
	make_dest(hop_host, 0, &hop);
	if (hop.family != d.family)
		usage();
	unsigned char opt[40];
	int level, type, sockopt;
	size_t len = route_option(&d, &hop, 1, opt, &level, &type, &sockopt);
	int fd = socket(d.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail("at=socket");
	if (setsockopt(fd, level, sockopt, opt, (socklen_t)len) != 0)
		return fail("at=setsockopt");
	if (connect(fd, (struct sockaddr *)&d.ss, d.len) != 0 && errno != EINPROGRESS)
		return fail("at=connect");
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int connected = 0, err = 0;
	socklen_t elen = sizeof(err);
	if (poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0) {
		connected = 1;
		write_all(fd, payload, strlen(payload));
	}
	close(fd);
	say("%s ok connected=%d", label, connected);
	return 0;
}

// QUIC's sender: connect, then sendmsg without an address with IP_TOS/IPV6_TCLASS and,
// with GSO, UDP_SEGMENT (one control message each: both in one buffer).
static int do_quic(const char *host, unsigned port, int n, unsigned segment)
{
	struct dest d;
	make_dest(host, port, &d);
	int v6 = d.family == AF_INET6;
	int fd = udp_socket(&d);
	if (fd < 0)
		return fail("at=socket");
	if (connect(fd, (struct sockaddr *)&d.ss, d.len) != 0)
		return fail("at=connect");
	int ok = 0, datagrams = 0, first_errno = 0;
	for (int i = 0; i < n; i++) {
		char data[3 * 1400];
		size_t dlen = 0;
		int segs = segment ? 3 : 1;
		size_t seglen = segment ? segment : 64;
		if (seglen * 3 > sizeof(data))
			usage();
		for (int j = 0; j < segs; j++) {
			memset(data + dlen, '.', seglen);
			int w = snprintf(data + dlen, seglen, "%.20s-%d-%d", label, i, j);
			data[dlen + (size_t)w] = '.';
			dlen += seglen;
		}
		union {
			struct cmsghdr align;
			unsigned char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint16_t))];
		} control;
		memset(&control, 0, sizeof(control));
		struct iovec iov = {.iov_base = data, .iov_len = dlen};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf};
		m.msg_controllen = CMSG_SPACE(sizeof(int)) + (segment ? CMSG_SPACE(sizeof(uint16_t)) : 0);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		int tos = 0x10;
		c->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
		c->cmsg_type = v6 ? IPV6_TCLASS : IP_TOS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &tos, sizeof(tos));
		if (segment) {
			uint16_t gso = (uint16_t)segment;
			c = CMSG_NXTHDR(&m, c);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(gso));
			memcpy(CMSG_DATA(c), &gso, sizeof(gso));
		}
		if (sendmsg(fd, &m, 0) >= 0) {
			ok++;
			datagrams += segs;
		} else if (!first_errno) {
			first_errno = errno;
		}
	}
	close(fd);
	say("%s %s ok=%d n=%d datagrams=%d%s%s", label, ok == n ? "ok" : "errno", ok, n, datagrams,
	    first_errno ? " first_errno=" : "", first_errno ? ename(first_errno) : "");
	return ok == n ? 0 : 1;
}

// ---------------------------------------------------------------- other processes

struct thread_args {
	const char *host;
	unsigned port;
	const char *payload;
	int rc;
};

static void *connect_thread(void *arg)
{
	struct thread_args *t = arg;
	t->rc = do_connect(t->host, t->port, t->payload);
	return NULL;
}

static int wait_child(pid_t pid)
{
	int st;
	if (pid < 0)
		return fail("at=fork");
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return fail("at=waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static int do_exec_connect(const char *host, const char *port, const char *payload)
{
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		pid_t grandchild = fork();
		if (grandchild == 0) {
			execl("/proc/self/exe", "egress_probe", "--label", label, "connect", "tcp", host, port, payload,
			      (char *)NULL);
			fail("at=execve");
			_exit(1);
		}
		_exit(wait_child(grandchild));
	}
	return wait_child(child);
}

int main(int argc, char **argv)
{
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "--label") == 0) {
		label = argv[2];
		i = 3;
	}
	if (i >= argc)
		usage();
	const char *cmd = argv[i];
	char **a = argv + i + 1;
	int n = argc - i - 1;
	if (!label)
		label = cmd;
	signal(SIGPIPE, SIG_IGN);

	if (!strcmp(cmd, "connect") && (n == 3 || n == 4) && !strcmp(a[0], "tcp"))
		return do_connect(a[1], parse_port(a[2]), n == 4 ? a[3] : NULL);
	if (!strcmp(cmd, "connect") && n == 4 && !strcmp(a[0], "udp"))
		return do_connect_udp(a[1], parse_port(a[2]), a[3]);
	if (!strcmp(cmd, "hold") && n == 4)
		return do_hold(a[0], parse_port(a[1]), a[2], a[3]);
	if (!strcmp(cmd, "udp-hold") && n == 5)
		return do_udp_hold(a[0], parse_port(a[1]), a[2], atoi(a[3]), a[4]);
	if (!strcmp(cmd, "connect-many") && n == 3)
		return do_connect_many(a[0], parse_port(a[1]), atoi(a[2]));
	if (!strcmp(cmd, "sendto") && n == 4 && !strcmp(a[0], "udp"))
		return do_sendto(a[1], parse_port(a[2]), a[3]);
	if (!strcmp(cmd, "sendmsg") && n == 4 && !strcmp(a[0], "udp"))
		return do_sendmsg(a[1], parse_port(a[2]), a[3]);
	if (!strcmp(cmd, "sendmmsg") && n >= 3 && !strcmp(a[0], "udp"))
		return do_sendmmsg(n - 1, a + 1);
	if (!strcmp(cmd, "ping") && n == 1)
		return do_ping(a[0]);
	if ((!strcmp(cmd, "connect6-mapped") && (n == 2 || n == 3)) || (!strcmp(cmd, "sendto6-mapped") && n == 3)) {
		char mapped[64];
		mapped_host(a[0], mapped, sizeof(mapped));
		if (cmd[0] == 'c')
			return do_connect(mapped, parse_port(a[1]), n == 3 ? a[2] : NULL);
		return do_sendto(mapped, parse_port(a[1]), a[2]);
	}
	if (!strcmp(cmd, "tfo") && n == 3)
		return do_tfo(a[0], parse_port(a[1]), a[2]);
	if (!strcmp(cmd, "raw") && (n == 2 || (n == 3 && !strcmp(a[2], "cloexec"))))
		return do_raw(a[0], parse_port(a[1]), n == 3);
	if (!strcmp(cmd, "proto-send") && n == 5)
		return do_proto_send(atoi(a[0]), atoi(a[1]), a[2], parse_port(a[3]), a[4]);
	if (!strcmp(cmd, "packet") && n == 5)
		return do_packet(a[0], a[1], a[2], a[3], parse_port(a[4]));
	if (!strcmp(cmd, "iouring") && n == 3)
		return do_iouring(a[0], parse_port(a[1]), a[2]);
	if (!strcmp(cmd, "flip-connect") && (n == 4 || n == 5))
		return do_flip(FLIP_CONNECT, a[0], a[1], parse_port(a[2]), atoi(a[3]), n == 5 ? a[4] : NULL);
	if (!strcmp(cmd, "flip-sendto") && (n == 4 || n == 5))
		return do_flip(FLIP_SENDTO, a[0], a[1], parse_port(a[2]), atoi(a[3]), n == 5 ? a[4] : NULL);
	if (!strcmp(cmd, "flip-sendmsg") && (n == 4 || n == 5))
		return do_flip(FLIP_SENDMSG, a[0], a[1], parse_port(a[2]), atoi(a[3]), n == 5 ? a[4] : NULL);
	if (!strcmp(cmd, "fdswap-connect") && (n == 3 || n == 4))
		return do_fdswap(SWAP_CONNECT, a[0], parse_port(a[1]), atoi(a[2]), n == 4 ? a[3] : NULL);
	if (!strcmp(cmd, "fdswap-sendto") && (n == 3 || n == 4))
		return do_fdswap(SWAP_SENDTO, a[0], parse_port(a[1]), atoi(a[2]), n == 4 ? a[3] : NULL);
	if (!strcmp(cmd, "fdswap-ping") && (n == 2 || n == 3))
		return do_fdswap(SWAP_PING, a[0], 0, atoi(a[1]), n == 3 ? a[2] : NULL);
	if (!strcmp(cmd, "sendto-many") && n == 3)
		return do_sendto_many(a[0], parse_port(a[1]), atoi(a[2]));
	if (!strcmp(cmd, "route-sendmsg") && (n == 4 || (n == 5 && !strcmp(a[4], "sticky"))))
		return do_route_sendmsg(a[0], parse_port(a[1]), a[2], a[3], n == 5, 0);
	if (!strcmp(cmd, "route-ping") && n == 2)
		return do_route_sendmsg(a[0], 0, a[1], "slit-route-ping", 0, 1);
	if (!strcmp(cmd, "route-connect") && n == 4)
		return do_route_connect(a[0], parse_port(a[1]), a[2], a[3]);
	if (!strcmp(cmd, "quic") && (n == 3 || n == 4))
		return do_quic(a[0], parse_port(a[1]), atoi(a[2]), n == 4 ? (unsigned)atoi(a[3]) : 0);
	if (!strcmp(cmd, "cgroup-progs") && n == 1)
		return do_cgroup_progs(a[0]);
	if (!strcmp(cmd, "fork-connect") && n == 3) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(do_connect(a[0], parse_port(a[1]), a[2]));
		return wait_child(pid);
	}
	if (!strcmp(cmd, "thread-connect") && n == 3) {
		struct thread_args t = {.host = a[0], .port = parse_port(a[1]), .payload = a[2]};
		pthread_t th;
		if (pthread_create(&th, NULL, connect_thread, &t) != 0)
			return fail("at=pthread_create");
		pthread_join(th, NULL);
		return t.rc;
	}
	if (!strcmp(cmd, "exec-connect") && n == 3)
		return do_exec_connect(a[0], a[1], a[2]);
	if (!strcmp(cmd, "resolve") && n == 1) {
		char first[256];
		if (!hosts_lookup(a[0], first, sizeof(first), 1))
			say("resolve %s none", a[0]);
		return 0;
	}
	usage();
	return 2;
}
