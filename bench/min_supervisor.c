// min_supervisor: the floor for the cost of egress supervision with seccomp user
// notification. Runs CMD under a filter that sends connect() and sendto() with an address
// to this process, which copies the sockaddr out once, allows exactly one IPv4 IP:PORT
// (TCP and UDP alike), and performs allowed calls itself on a duplicate of the caller's
// socket (pidfd_getfd), returning their result; anything else fails with ECONNREFUSED.
// No policy lookup, no logging, one thread: the least a supervisor can do.
//
//   min_supervisor [--continue] IP PORT CMD [ARGS...]
//
// --continue: the floor of the kernel-first mode (issue 10): only connect() is notified;
// an allowed one is answered SECCOMP_USER_NOTIF_FLAG_CONTINUE (the kernel then connects in
// the caller's own thread), a refused one ECONNREFUSED. Nothing is done on behalf.
//
// Uses SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP when the kernel has it (says so on stderr).
// Linked statically: it runs inside the busybox rootfs. Exits with CMD's status.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static struct sockaddr_in allowed;
static int child_pidfd;
static int continue_mode;

static void die(const char *what)
{
	fprintf(stderr, "min_supervisor: %s: %s\n", what, strerror(errno));
	exit(125);
}

#define ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#define ARG_HI(n) (offsetof(struct seccomp_data, args) + 8 * (n) + 4)

// connect → notify; sendto with a non-NULL address → notify; everything else → allow.
static int install_filter(void)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 6, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendto, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(4)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(4)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	// --continue: connect → notify; everything else → allow
	struct sock_filter connect_only[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
	if (continue_mode) {
		prog.len = sizeof connect_only / sizeof connect_only[0];
		prog.filter = connect_only;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS");
	int fd = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		die("seccomp");
	return fd;
}

static void send_fd(int sock, int fd)
{
	char control[CMSG_SPACE(sizeof(int))] = {0};
	char byte = 'f';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(sock, &msg, 0) < 0)
		die("sendmsg listener");
}

static int recv_fd(int sock)
{
	char control[CMSG_SPACE(sizeof(int))] = {0};
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	if (recvmsg(sock, &msg, 0) <= 0)
		die("recvmsg listener");
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		die("no listener fd");
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

static int is_allowed(const struct sockaddr_in *sa, size_t len)
{
	return len >= sizeof *sa && sa->sin_family == AF_INET && sa->sin_addr.s_addr == allowed.sin_addr.s_addr &&
	       sa->sin_port == allowed.sin_port;
}

static ssize_t read_remote(pid_t pid, void *dst, unsigned long src, size_t len)
{
	struct iovec local = {.iov_base = dst, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)src, .iov_len = len};
	return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

// The call's result for the response: val on success, or error = -errno.
static void handle(int listener, const struct seccomp_notif *req, struct seccomp_notif_resp *resp)
{
	const __u64 *a = req->data.args;
	struct sockaddr_storage ss;
	size_t addrlen = req->data.nr == __NR_connect ? a[2] : a[5];
	if (addrlen > sizeof ss)
		addrlen = sizeof ss;
	unsigned long addr_ptr = req->data.nr == __NR_connect ? a[1] : a[4];
	if (read_remote(req->pid, &ss, addr_ptr, addrlen) != (ssize_t)addrlen) {
		resp->error = -EFAULT;
		return;
	}
	static char data[65536];
	size_t datalen = 0;
	if (req->data.nr == __NR_sendto) {
		datalen = a[2] > sizeof data ? sizeof data : a[2];
		if (datalen && read_remote(req->pid, data, a[1], datalen) != (ssize_t)datalen) {
			resp->error = -EFAULT;
			return;
		}
	}
	// What was read belongs to the caller that is still waiting for this notification.
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) {
		resp->error = -ESRCH;
		return;
	}
	if (!is_allowed((struct sockaddr_in *)&ss, addrlen)) {
		resp->error = -ECONNREFUSED;
		return;
	}
	if (continue_mode) {
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		return;
	}
	int fd = (int)syscall(SYS_pidfd_getfd, child_pidfd, (int)a[0], 0);
	if (fd < 0) {
		resp->error = -errno;
		return;
	}
	long rc = req->data.nr == __NR_connect
			  ? connect(fd, (struct sockaddr *)&ss, (socklen_t)addrlen)
			  : sendto(fd, data, datalen, (int)a[3], (struct sockaddr *)&ss, (socklen_t)addrlen);
	if (rc < 0)
		resp->error = -errno;
	else
		resp->val = rc;
	close(fd);
}

static void serve(int listener)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	for (;;) {
		// The pidfd turns readable when the child exits (a zombie still holds the filter,
		// so the listener itself would only hang up after we reap it).
		struct pollfd p[2] = {{.fd = listener, .events = POLLIN}, {.fd = child_pidfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if ((p[0].revents & (POLLHUP | POLLERR)) || p[1].revents)
			return;
		if (!(p[0].revents & POLLIN))
			continue;
		memset(&req, 0, sizeof req);
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			die("SECCOMP_IOCTL_NOTIF_RECV");
		}
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		handle(listener, &req, &resp);
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
			die("SECCOMP_IOCTL_NOTIF_SEND");
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--continue")) {
		continue_mode = 1;
		argv++;
		argc--;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: min_supervisor [--continue] IP PORT CMD [ARGS...]\n");
		return 125;
	}
	allowed.sin_family = AF_INET;
	allowed.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &allowed.sin_addr) != 1) {
		fprintf(stderr, "min_supervisor: bad IPv4 address %s\n", argv[1]);
		return 125;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(sv[0]);
		int listener = install_filter();
		send_fd(sv[1], listener);
		close(listener);
		close(sv[1]);
		execvp(argv[3], argv + 3);
		die(argv[3]);
	}
	close(sv[1]);
	int listener = recv_fd(sv[0]);
	close(sv[0]);
	child_pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	if (child_pidfd < 0)
		die("pidfd_open");
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) == 0)
		fprintf(stderr, "min_supervisor: SYNC_WAKE_UP on\n");
	else
		fprintf(stderr, "min_supervisor: SYNC_WAKE_UP unavailable (%s)\n", strerror(errno));
	serve(listener);
	int status;
	if (waitpid(child, &status, 0) < 0)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
