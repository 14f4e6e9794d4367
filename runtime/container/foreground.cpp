#include "runtime/container/foreground.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "runtime/container/process.hpp"
#include "runtime/linux/terminal.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::container {
namespace {

sigset_t forwarded_set() {
    sigset_t set;
    sigfillset(&set);
    // Signals that report a fault of ours must keep their default action.
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGKILL, SIGSTOP})
        sigdelset(&set, sig);
    return set;
}

// Reaps every exited descendant; returns true once `pid` is among them.
bool reap(pid_t pid, int* status) {
    bool done = false;
    for (;;) {
        int st = 0;
        pid_t r = ::waitpid(-1, &st, WNOHANG);
        if (r <= 0) break;
        if (r == pid) {
            *status = st;
            done = true;
        }
    }
    return done;
}

}  // namespace

void block_forwarded_signals() {
    sigset_t set = forwarded_set();
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) throw_errno("sigprocmask");
}

void unblock_all_signals() {
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
}

void become_subreaper() {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) throw_errno("prctl PR_SET_CHILD_SUBREAPER");
}

int wait_foreground(pid_t pid, UniqueFd pty_master) {
    sigset_t set = forwarded_set();
    UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sfd) throw_errno("signalfd");
    std::unique_ptr<os::PtyProxy> proxy;
    if (pty_master) proxy = std::make_unique<os::PtyProxy>(std::move(pty_master));

    int status = 0;
    if (reap(pid, &status)) {
        if (proxy) proxy->drain();
        return exit_code_from_wait_status(status);
    }
    for (;;) {
        if (proxy) {
            struct pollfd p {sfd.get(), POLLIN, 0};
            if (::poll(&p, 1, 0) <= 0 && !proxy->pump(50)) {
                // The pty closed: the process is about to exit; stop proxying.
                proxy->drain();
                proxy.reset();
            }
        } else {
            struct pollfd p {sfd.get(), POLLIN, 0};
            ::poll(&p, 1, -1);
        }
        signalfd_siginfo info{};
        while (::read(sfd.get(), &info, sizeof info) == sizeof info) {
            int sig = static_cast<int>(info.ssi_signo);
            if (sig == SIGCHLD) continue;
            if (sig == SIGWINCH) {
                if (proxy) proxy->resize_from_stdin();
                continue;
            }
            ::kill(pid, sig);
        }
        if (reap(pid, &status)) {
            if (proxy) proxy->drain();
            return exit_code_from_wait_status(status);
        }
    }
}

}  // namespace sandlock::container
