// seccomp_listener SOCKET JSONFILE [ERRNO]
//
// A minimal seccomp agent for linux.seccomp.listenerPath (runc's protocol): listens
// on the unix socket SOCKET, accepts one connection, receives the
// ContainerProcessState JSON with the notify listener fd (SCM_RIGHTS), writes the
// JSON to JSONFILE (atomically: JSONFILE.tmp then rename), then answers every
// notification with -ERRNO (default EPERM = 1) until no process uses the filter.
// Writes the number of answered notifications to JSONFILE.count when it ends.
//
// Goes to the background once the socket is listening, so the caller can start the
// runtime as soon as it returns. Gives up after SECCOMP_LISTENER_TIMEOUT seconds
// (default 60).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "seccomp_listener: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int listen_on(const char *path)
{
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		die(path);
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1) != 0)
		die(path);
	return fd;
}

static void daemonize(int keep)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid > 0)
		_exit(0);
	setsid();
	int null = open("/dev/null", O_RDWR);
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	// stderr stays: a failure message is useful, and it is the caller's choice.
	for (int fd = 3; fd < 1024; fd++)
		if (fd != keep)
			close(fd); // never keep a caller's pipe open
}

// Receives the JSON (up to size-1 bytes) and the fd sent with it; returns the fd.
static int receive_state(int conn, char *json, size_t size)
{
	char control[CMSG_SPACE(sizeof(int))];
	memset(control, 0, sizeof control);
	struct iovec iov = {.iov_base = json, .iov_len = size - 1};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof control,
	};
	ssize_t n;
	do
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("recvmsg");
	json[n] = '\0';
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
		fprintf(stderr, "seccomp_listener: no fd received\n");
		exit(1);
	}
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

static void write_file(const char *path, const char *data)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(data, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		die(path);
}

// Answers notifications until the filter has no users (POLLHUP); returns the count.
static long answer_all(int listener, int err)
{
	long answered = 0;
	for (;;) {
		struct pollfd pfd = {.fd = listener, .events = POLLIN};
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (!(pfd.revents & POLLIN))
			return answered; // POLLHUP: every process using the filter is gone
		struct seccomp_notif req;
		memset(&req, 0, sizeof req);
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
			if (errno == EINTR || errno == ENOENT)
				continue; // the caller was interrupted or died meanwhile
			die("SECCOMP_IOCTL_NOTIF_RECV");
		}
		struct seccomp_notif_resp resp;
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		resp.error = -err;
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0)
			answered++;
		else if (errno != ENOENT)
			die("SECCOMP_IOCTL_NOTIF_SEND");
	}
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: seccomp_listener SOCKET JSONFILE [ERRNO]\n");
		return 2;
	}
	int err = argc == 4 ? atoi(argv[3]) : EPERM;
	const char *timeout = getenv("SECCOMP_LISTENER_TIMEOUT");

	int sock = listen_on(argv[1]);
	daemonize(sock);
	alarm(timeout ? (unsigned)atoi(timeout) : 60);

	int conn;
	do
		conn = accept4(sock, NULL, NULL, SOCK_CLOEXEC);
	while (conn < 0 && errno == EINTR);
	if (conn < 0)
		die("accept");
	close(sock);
	unlink(argv[1]);

	static char json[65536];
	int listener = receive_state(conn, json, sizeof json);
	close(conn);
	write_file(argv[2], json);

	long answered = answer_all(listener, err);
	char count[32], path[4096];
	snprintf(count, sizeof count, "%ld\n", answered);
	snprintf(path, sizeof path, "%s.count", argv[2]);
	write_file(path, count);
	return 0;
}
