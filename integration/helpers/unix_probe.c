// build: static
// (runs inside the busybox test rootfs, which has no C library: link with -static)
//
// unix_probe [--label NAME] SUBCOMMAND ARGS...
//
// The workload of integration/egress_unix.bats: unix sockets under an egress policy, and
// the fd-swap attacks on the calls the shim lets through for them. One result line per
// subcommand, starting with its label (as egress_probe's):
//
//   LABEL ok [key=value...]          LABEL errno ENAME [key=value...]
//
//   swap KIND ADDR PORT N            N calls of KIND on one fd number that a thread keeps
//                                    switching between a unix socket (the address buffer
//                                    then a sockaddr_un of a path that does not exist)
//                                    and an IP socket (the buffer a sockaddr_in of
//                                    ADDR:PORT), with random dwells. A shim that lets the
//                                    unix call through with CONTINUE lets the kernel look
//                                    the fd up again: the call may land on the IP socket.
//                                    KIND: sendmsg, sendmmsg (unix/UDP datagram sockets;
//                                    payload "uswap-KIND-I"), tfo-sendto, tfo-sendmsg
//                                    (unix/TCP stream sockets, MSG_FASTOPEN), connect
//                                    (unix/TCP stream). The thread sends "uswap-KIND-K" on
//                                    every TCP socket it finds connected, and replaces it.
//                                    Prints n= ok= ip_connected= and ENAME=count per errno.
//                                    With a last argument until-ip it goes on after the N
//                                    calls until one landed on the IP socket (ok or
//                                    ip_connected), for at most 10*N calls or 30 s (the
//                                    controls: a race that needs a rare interleaving).
//   functions DIR                    inside the container: a unix stream listener and a
//                                    datagram socket bound in DIR; a connect by absolute
//                                    and by relative path (cwd DIR), a datagram sendto by
//                                    path, sendmsg with SCM_RIGHTS (a pipe's write end,
//                                    used by the receiver), sendmmsg, SO_PEERCRED and
//                                    SCM_CREDENTIALS seen by the receiver (the sender's
//                                    own pid and uid), an explicit SCM_CREDENTIALS with a
//                                    pid not the sender's (EPERM). One line per check:
//                                    LABEL-CHECK ok|errno ...
//   (a PATH of "@NAME" below is the abstract name NAME)
//   connect PATH [PAYLOAD]           connect a unix stream socket to PATH, send PAYLOAD
//   dgram PATH PAYLOAD               sendto a unix datagram to PATH
//   as-user UID CMD ARGS...          run the rest as UID (setgroups([]), setgid, setuid)
//   listen-stream PATH N             (host side) listen at PATH (mode 0777), print how
//                                    many connections and datagrams arrived after N
//                                    seconds or at SIGUSR1: "LABEL ok accepted=A data=D"
//   listen-dgram PATH N              (host side) the same for datagrams
//   landlock-abi                     print this kernel's Landlock ABI (0: none)
//   loop-sendmsg N                   N sendmsg of 64 bytes on a connected unix stream
//                                    pair (socketpair), the other end drained by a
//                                    thread: the data path; prints ns_per_call=
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static const char *label = "unix_probe";

static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("%s\n", line);
	fflush(stdout);
}

static const char *ename(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case EPIPE: return "EPIPE";
	case ENOTSOCK: return "ENOTSOCK";
	case EDESTADDRREQ: return "EDESTADDRREQ";
	case EMSGSIZE: return "EMSGSIZE";
	case EPROTOTYPE: return "EPROTOTYPE";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EADDRINUSE: return "EADDRINUSE";
	case ENETUNREACH: return "ENETUNREACH";
	case ECONNRESET: return "ECONNRESET";
	case EISCONN: return "EISCONN";
	case ENOTCONN: return "ENOTCONN";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EALREADY: return "EALREADY";
	case EINPROGRESS: return "EINPROGRESS";
	case ENOSYS: return "ENOSYS";
	case EIO: return "EIO";
	case ENOTDIR: return "ENOTDIR";
	case ELOOP: return "ELOOP";
	default: {
		static char buf[16];
		snprintf(buf, sizeof(buf), "E%d", e);
		return buf;
	}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: unix_probe [--label NAME] SUBCOMMAND ARGS... (see the source)\n");
	exit(2);
}

static int fail(const char *what)
{
	say("%s errno %s %s", label, ename(errno), what);
	return 1;
}

// PATH, or "@NAME" for the abstract name NAME (a leading NUL, no file).
static int is_abstract(const char *path) { return path[0] == '@'; }

static socklen_t unix_addr(struct sockaddr_un *un, const char *path)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	if (is_abstract(path)) {
		snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "%s", path + 1);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un->sun_path + 1));
	}
	snprintf(un->sun_path, sizeof(un->sun_path), "%s", path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(un->sun_path) + 1);
}

static void write_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

// ---------------------------------------------------------------- the fd-swap attacks

enum { K_SENDMSG, K_SENDMMSG, K_TFO_SENDTO, K_TFO_SENDMSG, K_CONNECT };
static const char *kind_names[] = {"sendmsg", "sendmmsg", "tfo-sendto", "tfo-sendmsg", "connect"};

static struct sockaddr_storage swap_buf __attribute__((aligned(64)));
static struct sockaddr_in swap_sin;
static struct sockaddr_un swap_sun;
static int swap_fd = 200, swap_unix, swap_kind, swap_stop, swap_ip_connected;
static unsigned swap_count;

static int swap_stream(void) { return swap_kind != K_SENDMSG && swap_kind != K_SENDMMSG; }

static int swap_ip_socket(void)
{
	return socket(AF_INET, (swap_stream() ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
}

static void swap_spin(unsigned *r)
{
	*r = *r * 1103515245u + 12345u;
	for (volatile unsigned spin = (*r >> 16) & 1023; spin; spin--)
		;
}

static void *swapper(void *arg)
{
	(void)arg;
	int ip = swap_ip_socket();
	unsigned k = 0, r = 7;
	while (ip >= 0 && !__atomic_load_n(&swap_stop, __ATOMIC_RELAXED)) {
		dup2(ip, swap_fd);
		memcpy(&swap_buf, &swap_sin, sizeof(swap_sin));
		__asm__ volatile("" ::: "memory");
		swap_spin(&r);
		dup2(swap_unix, swap_fd);
		memcpy(&swap_buf, &swap_sun, sizeof(swap_sun));
		__asm__ volatile("" ::: "memory");
		__atomic_store_n(&swap_count, ++k, __ATOMIC_RELAXED);
		swap_spin(&r);
		if (swap_stream()) {
			struct sockaddr_in peer;
			socklen_t plen = sizeof(peer);
			int err = 0;
			socklen_t elen = sizeof(err);
			getsockopt(ip, SOL_SOCKET, SO_ERROR, &err, &elen);
			if (getpeername(ip, (struct sockaddr *)&peer, &plen) == 0) {
				char payload[48];
				snprintf(payload, sizeof(payload), "uswap-%s-c%u", kind_names[swap_kind], k);
				write_all(ip, payload, strlen(payload));
				__atomic_fetch_add(&swap_ip_connected, 1, __ATOMIC_RELAXED);
				close(ip);
				ip = swap_ip_socket();
			} else if (err != 0) {
				close(ip);
				ip = swap_ip_socket();
			}
		}
	}
	if (ip >= 0)
		close(ip);
	return NULL;
}

struct errcount {
	int err, count;
};

static void count_errno(struct errcount *errs, int n, int e)
{
	for (int i = 0; i < n; i++) {
		if (errs[i].err == e || errs[i].err == 0) {
			errs[i].err = e;
			errs[i].count++;
			return;
		}
	}
}

static int do_swap(const char *kind, const char *addr, unsigned port, int n, int until_ip)
{
	swap_kind = -1;
	for (int i = 0; i < 5; i++)
		if (!strcmp(kind, kind_names[i]))
			swap_kind = i;
	if (swap_kind < 0 || inet_pton(AF_INET, addr, &swap_sin.sin_addr) != 1)
		usage();
	swap_sin.sin_family = AF_INET;
	swap_sin.sin_port = htons((uint16_t)port);
	unix_addr(&swap_sun, "/nonexistent-uswap");
	swap_unix = socket(AF_UNIX, (swap_stream() ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
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
	time_t start = time(NULL);
	int i;
	for (i = 0;; i++) {
		if (i >= n && (!until_ip || ok + __atomic_load_n(&swap_ip_connected, __ATOMIC_RELAXED) > 0 ||
			       i >= 10 * n || time(NULL) - start > 30))
			break;
		while (__atomic_load_n(&swap_count, __ATOMIC_RELAXED) == seen)
			sched_yield();
		seen = __atomic_load_n(&swap_count, __ATOMIC_RELAXED);
		char payload[48];
		snprintf(payload, sizeof(payload), "uswap-%s-%d", kind, i);
		struct iovec iov = {.iov_base = payload, .iov_len = strlen(payload)};
		struct msghdr mh = {.msg_name = &swap_buf, .msg_namelen = sizeof(struct sockaddr_un),
				    .msg_iov = &iov, .msg_iovlen = 1};
		int rc;
		switch (swap_kind) {
		case K_SENDMSG:
			rc = (int)sendmsg(swap_fd, &mh, MSG_DONTWAIT);
			break;
		case K_SENDMMSG: {
			struct mmsghdr mm = {.msg_hdr = mh};
			rc = sendmmsg(swap_fd, &mm, 1, MSG_DONTWAIT);
			break;
		}
		case K_TFO_SENDTO:
			rc = (int)sendto(swap_fd, payload, strlen(payload), MSG_FASTOPEN | MSG_DONTWAIT,
					 (struct sockaddr *)&swap_buf, sizeof(struct sockaddr_un));
			break;
		case K_TFO_SENDMSG:
			rc = (int)sendmsg(swap_fd, &mh, MSG_FASTOPEN | MSG_DONTWAIT);
			break;
		default:
			rc = connect(swap_fd, (struct sockaddr *)&swap_buf, sizeof(struct sockaddr_un));
			break;
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

// ---------------------------------------------------------------- unix functions

static void check(const char *what, int ok, const char *fmt, ...)
{
	char extra[256] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(extra, sizeof(extra), fmt, ap);
		va_end(ap);
	}
	if (ok)
		say("%s-%s ok%s%s", label, what, *extra ? " " : "", extra);
	else
		say("%s-%s errno %s%s%s", label, what, ename(errno), *extra ? " " : "", extra);
}

static int recv_with_creds(int fd, char *buf, size_t len, struct ucred *cred, int *passed_fd)
{
	union {
		char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1) {
		errno = ETIMEDOUT;
		return -1;
	}
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	buf[n] = 0;
	if (cred)
		memset(cred, 0, sizeof(*cred));
	if (passed_fd)
		*passed_fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && cred)
			memcpy(cred, CMSG_DATA(c), sizeof(*cred));
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && passed_fd)
			memcpy(passed_fd, CMSG_DATA(c), sizeof(int));
	}
	return (int)n;
}

static int do_functions(const char *dir)
{
	char spath[108], dpath[108];
	snprintf(spath, sizeof(spath), "%s/s.sock", dir);
	snprintf(dpath, sizeof(dpath), "%s/d.sock", dir);
	unlink(spath);
	unlink(dpath);
	struct sockaddr_un un;
	socklen_t ulen;
	int one = 1;

	// a stream listener, reached by an absolute and a relative path
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ulen = unix_addr(&un, spath);
	if (srv < 0 || bind(srv, (struct sockaddr *)&un, ulen) != 0 || listen(srv, 16) != 0)
		return fail("at=listen");
	int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = connect(c1, (struct sockaddr *)&un, ulen);
	check("connect-abs", rc == 0, NULL);
	if (chdir(dir) != 0)
		return fail("at=chdir");
	int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ulen = unix_addr(&un, "s.sock");
	rc = connect(c2, (struct sockaddr *)&un, ulen);
	check("connect-rel", rc == 0, NULL);
	int a1 = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	int a2 = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	struct ucred pc = {0};
	socklen_t pclen = sizeof(pc);
	rc = a1 >= 0 ? getsockopt(a1, SOL_SOCKET, SO_PEERCRED, &pc, &pclen) : -1;
	check("peercred", rc == 0 && pc.uid == getuid() && pc.gid == getgid(), "uid=%u gid=%u pid=%d self_uid=%u",
	      pc.uid, pc.gid, pc.pid, getuid());

	// sendmsg with SCM_RIGHTS: a pipe's write end, which the receiver writes through;
	// the receiver has SO_PASSCRED and sees the sender's pid and uid
	setsockopt(a1, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return fail("at=pipe");
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	char msg[] = "rights";
	struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg) - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pfd[1], sizeof(int));
	rc = (int)sendmsg(c1, &mh, 0);
	check("sendmsg-rights", rc == (int)iov.iov_len, NULL);
	close(pfd[1]);
	char buf[256];
	struct ucred rc_cred;
	int passed = -1;
	rc = recv_with_creds(a1, buf, sizeof(buf), &rc_cred, &passed);
	int through = 0;
	if (rc > 0 && passed >= 0) {
		write_all(passed, "via-fd", 6);
		close(passed);
		char got[16] = {0};
		through = read(pfd[0], got, sizeof(got) - 1) == 6 && !strcmp(got, "via-fd");
	}
	check("recv-rights", rc > 0 && !strcmp(buf, "rights") && through, "fd=%d", passed);
	check("scm-creds", rc > 0 && rc_cred.pid == getpid() && rc_cred.uid == getuid(),
	      "pid=%d self_pid=%d uid=%u", rc_cred.pid, getpid(), rc_cred.uid);

	// an explicit SCM_CREDENTIALS: the sender's own is accepted, another pid is EPERM
	union {
		char b[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} uc;
	struct ucred mine = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
	for (int fake = 0; fake < 2; fake++) {
		memset(&uc, 0, sizeof(uc));
		struct ucred claim = mine;
		if (fake)
			claim.pid = getpid() == 1 ? 2 : 1;
		struct msghdr m2 = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = uc.b, .msg_controllen = sizeof(uc.b)};
		cm = CMSG_FIRSTHDR(&m2);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_CREDENTIALS;
		cm->cmsg_len = CMSG_LEN(sizeof(struct ucred));
		memcpy(CMSG_DATA(cm), &claim, sizeof(claim));
		rc = (int)sendmsg(c1, &m2, 0);
		if (!fake) {
			struct ucred got;
			int r2 = rc > 0 ? recv_with_creds(a1, buf, sizeof(buf), &got, NULL) : -1;
			check("creds-own", r2 > 0 && got.pid == getpid(), "pid=%d", r2 > 0 ? got.pid : 0);
		} else {
			check("creds-fake", rc < 0 && errno == EPERM, "rc=%d", rc);
		}
	}

	// datagrams: sendto by path (relative: cwd is DIR), sendmmsg on a connected one
	int ds = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ulen = unix_addr(&un, dpath);
	if (ds < 0 || bind(ds, (struct sockaddr *)&un, ulen) != 0)
		return fail("at=bind-dgram");
	setsockopt(ds, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	int dc = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ulen = unix_addr(&un, "d.sock");
	rc = (int)sendto(dc, "dgram", 5, 0, (struct sockaddr *)&un, ulen);
	struct ucred dcred;
	int r2 = rc == 5 ? recv_with_creds(ds, buf, sizeof(buf), &dcred, NULL) : -1;
	check("sendto-path", r2 == 5 && !strcmp(buf, "dgram") && dcred.pid == getpid(), "rc=%d pid=%d", rc,
	      r2 > 0 ? dcred.pid : 0);
	ulen = unix_addr(&un, dpath);
	rc = connect(dc, (struct sockaddr *)&un, ulen);
	check("connect-dgram", rc == 0, NULL);
	struct mmsghdr mm[2];
	struct iovec mi[2] = {{.iov_base = "mm-0", .iov_len = 4}, {.iov_base = "mm-1", .iov_len = 4}};
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 2; i++) {
		mm[i].msg_hdr.msg_iov = &mi[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	rc = sendmmsg(dc, mm, 2, 0);
	int got0 = recv_with_creds(ds, buf, sizeof(buf), NULL, NULL) == 4 && !strcmp(buf, "mm-0");
	int got1 = recv_with_creds(ds, buf, sizeof(buf), NULL, NULL) == 4 && !strcmp(buf, "mm-1");
	check("sendmmsg", rc == 2 && got0 && got1, "rc=%d", rc);

	// a stream data path: 1 MiB through sendmsg on the relative connection, in order
	static char big[1 << 20];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	pid_t kid = fork();
	if (kid == 0) {
		struct iovec bi = {.iov_base = big, .iov_len = sizeof(big)};
		struct msghdr bm = {.msg_iov = &bi, .msg_iovlen = 1};
		size_t off = 0;
		while (off < sizeof(big)) {
			bi.iov_base = big + off;
			bi.iov_len = sizeof(big) - off;
			ssize_t w = sendmsg(c2, &bm, 0);
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	static char in[1 << 20];
	size_t got = 0;
	while (got < sizeof(in)) {
		ssize_t r = read(a2, in + got, sizeof(in) - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	int st = 0;
	waitpid(kid, &st, 0);
	check("stream-1mib", got == sizeof(in) && !memcmp(in, big, sizeof(in)) && WIFEXITED(st) && !WEXITSTATUS(st),
	      "got=%zu", got);
	unlink(spath);
	unlink(dpath);
	return 0;
}

static int do_connect(const char *path, const char *payload)
{
	struct sockaddr_un un;
	socklen_t len = unix_addr(&un, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&un, len) != 0)
		return fail("at=connect");
	if (payload)
		write_all(fd, payload, strlen(payload));
	close(fd);
	say("%s ok", label);
	return 0;
}

static int do_dgram(const char *path, const char *payload)
{
	struct sockaddr_un un;
	socklen_t len = unix_addr(&un, path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sendto(fd, payload, strlen(payload), 0, (struct sockaddr *)&un, len) < 0)
		return fail("at=sendto");
	say("%s ok", label);
	return 0;
}

static volatile sig_atomic_t listen_stop;
static void on_usr1(int sig)
{
	(void)sig;
	listen_stop = 1;
}

static int do_listen(int type, const char *path, int seconds)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	struct sockaddr_un un;
	socklen_t len = unix_addr(&un, path);
	if (!is_abstract(path))
		unlink(path);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&un, len) != 0 || (type == SOCK_STREAM && listen(fd, 64) != 0))
		return fail("at=listen");
	if (!is_abstract(path))
		chmod(path, 0777);
	say("%s listening", label);
	int accepted = 0, data = 0;
	time_t end = time(NULL) + seconds;
	while (time(NULL) < end && !listen_stop) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) != 1)
			continue;
		char buf[256];
		if (type == SOCK_STREAM) {
			int c = accept(fd, NULL, NULL);
			if (c >= 0) {
				accepted++;
				close(c);
			}
		} else if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
			data++;
		}
	}
	if (!is_abstract(path))
		unlink(path);
	say("%s ok accepted=%d data=%d", label, accepted, data);
	return 0;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *drain(void *arg)
{
	int fd = *(int *)arg;
	char buf[65536];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static int do_loop(int n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return fail("at=socketpair");
	pthread_t t;
	pthread_create(&t, NULL, drain, &sv[1]);
	char payload[64];
	memset(payload, 'x', sizeof(payload));
	struct iovec iov = {.iov_base = payload, .iov_len = sizeof(payload)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	long long t0 = now_ns();
	for (int i = 0; i < n; i++)
		if (sendmsg(sv[0], &mh, 0) != (ssize_t)sizeof(payload))
			return fail("at=sendmsg");
	long long dt = now_ns() - t0;
	shutdown(sv[0], SHUT_WR);
	pthread_join(t, NULL);
	say("%s ok n=%d ns_per_call=%lld", label, n, dt / (n > 0 ? n : 1));
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	signal(SIGPIPE, SIG_IGN); // a listener that closes at once must not kill the sender
	if (i + 1 < argc && !strcmp(argv[i], "--label")) {
		label = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		usage();
	const char *cmd = argv[i++];
	char **a = argv + i;
	int n = argc - i;
	if (!strcmp(cmd, "swap") && (n == 4 || (n == 5 && !strcmp(a[4], "until-ip"))))
		return do_swap(a[0], a[1], (unsigned)atoi(a[2]), atoi(a[3]), n == 5);
	if (!strcmp(cmd, "functions") && n == 1)
		return do_functions(a[0]);
	if (!strcmp(cmd, "connect") && (n == 1 || n == 2))
		return do_connect(a[0], n == 2 ? a[1] : NULL);
	if (!strcmp(cmd, "dgram") && n == 2)
		return do_dgram(a[0], a[1]);
	if (!strcmp(cmd, "listen-stream") && n == 2)
		return do_listen(SOCK_STREAM, a[0], atoi(a[1]));
	if (!strcmp(cmd, "listen-dgram") && n == 2)
		return do_listen(SOCK_DGRAM, a[0], atoi(a[1]));
	if (!strcmp(cmd, "loop-sendmsg") && n == 1)
		return do_loop(atoi(a[0]));
	if (!strcmp(cmd, "landlock-abi") && n == 0) {
		long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1UL /* _VERSION */);
		printf("%ld\n", abi < 0 ? 0 : abi);
		return 0;
	}
	if (!strcmp(cmd, "as-user") && n >= 2) {
		uid_t uid = (uid_t)atoi(a[0]);
		if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
			return fail("at=setuid");
		char *args[64] = {argv[0], "--label", (char *)label};
		int k = 3;
		for (int j = 1; j < n && k < 63; j++)
			args[k++] = a[j];
		args[k] = NULL;
		execv("/proc/self/exe", args);
		return fail("at=exec");
	}
	usage();
	return 2;
}
