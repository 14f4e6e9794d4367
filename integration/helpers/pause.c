// build: static
// (the only file of the CRI tests' sandbox image, which has no C library)
//
// pause
//
// The pod sandbox's process, as Kubernetes' pause image runs it: holds the pod's
// namespaces open and does nothing else. Exits 0 on SIGTERM or SIGINT; as pid 1 of the
// pod's pid namespace, reaps whatever is reparented to it.
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	sigset_t wanted;
	sigemptyset(&wanted);
	sigaddset(&wanted, SIGTERM);
	sigaddset(&wanted, SIGINT);
	sigaddset(&wanted, SIGCHLD);
	// (a signal blocked before it arrives is never lost: sigwait picks it up)
	sigprocmask(SIG_BLOCK, &wanted, NULL);
	for (;;) {
		int sig = 0;
		if (sigwait(&wanted, &sig) != 0)
			continue;
		if (sig != SIGCHLD)
			return 0;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
