// console_receiver [-w INPUT] [-o OUTFILE] SOCKET
//
// The receiving end of runc's --console-socket protocol: listens on the unix socket
// SOCKET, accepts one connection, receives the pty master as SCM_RIGHTS (the message
// payload is the pty's name), prints "console: NAME", optionally writes INPUT to the
// master, then copies everything the master yields to stdout until EOF or EIO (the
// slave side was closed by every process).
//
// With -o, it goes to the background as soon as the socket is listening (so a caller
// can start the runtime right after it returns, with no race), writes to OUTFILE, and
// creates OUTFILE.done when finished. Gives up after CONSOLE_RECEIVER_TIMEOUT seconds
// (default 60).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_on(const char *path)
{
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof addr.sun_path) {
		fprintf(stderr, "console_receiver: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("console_receiver: socket");
		return -1;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1) != 0) {
		fprintf(stderr, "console_receiver: listen on %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

// Receives one fd and the name sent with it; returns the fd or -1.
static int receive_master(int conn, char *name, size_t name_size)
{
	char control[CMSG_SPACE(sizeof(int))];
	memset(control, 0, sizeof control);
	struct iovec iov = {.iov_base = name, .iov_len = name_size - 1};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof control,
	};
	ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0) {
		perror("console_receiver: recvmsg");
		return -1;
	}
	name[n] = '\0';
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
	    cmsg->cmsg_len != CMSG_LEN(sizeof(int))) {
		fprintf(stderr, "console_receiver: message carried no fd (payload \"%s\")\n", name);
		return -1;
	}
	int fd;
	memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int copy_until_closed(int master)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(master, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == EIO))
			return 0; // every slave fd is closed
		if (n < 0) {
			perror("console_receiver: read pty master");
			return 1;
		}
		if (write_all(STDOUT_FILENO, buf, (size_t)n) != 0)
			return 1;
	}
}

static void go_to_background(const char *outfile, int listener)
{
	int out = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		fprintf(stderr, "console_receiver: open %s: %s\n", outfile, strerror(errno));
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("console_receiver: fork");
		exit(1);
	}
	if (pid > 0)
		_exit(0);
	setsid();
	int null = open("/dev/null", O_RDWR);
	dup2(null, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	dup2(out, STDERR_FILENO);
	for (int fd = 3; fd < 1024; fd++)
		if (fd != out && fd != listener)
			close(fd); // never keep a caller's pipe open
}

static void mark_done(const char *outfile)
{
	char path[4096];
	snprintf(path, sizeof path, "%s.done", outfile);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	const char *input = NULL, *outfile = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "w:o:")) != -1) {
		if (opt == 'w')
			input = optarg;
		else if (opt == 'o')
			outfile = optarg;
		else
			goto usage;
	}
	if (optind != argc - 1)
		goto usage;

	const char *timeout = getenv("CONSOLE_RECEIVER_TIMEOUT");
	int listener = listen_on(argv[optind]);
	if (listener < 0)
		return 1;
	if (outfile)
		go_to_background(outfile, listener);
	alarm(timeout ? (unsigned)atoi(timeout) : 60);

	int status = 1;
	int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) {
		perror("console_receiver: accept");
	} else {
		char name[4096];
		int master = receive_master(conn, name, sizeof name);
		close(conn);
		if (master >= 0) {
			printf("console: %s\n", name);
			fflush(stdout);
			if (input && write_all(master, input, strlen(input)) != 0)
				perror("console_receiver: write pty master");
			status = copy_until_closed(master);
			close(master);
		}
	}
	close(listener);
	unlink(argv[optind]);
	if (outfile)
		mark_done(outfile);
	return status;

usage:
	fprintf(stderr, "usage: console_receiver [-w INPUT] [-o OUTFILE] SOCKET\n");
	return 2;
}
