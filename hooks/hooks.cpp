#include "hooks/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::hooks {
namespace {

// What we keep of a hook's stdout/stderr for the error message; the rest is read and dropped
// so a chatty hook never blocks on a full pipe.
constexpr size_t kMaxCaptured = 64 * 1024;
// After the hook exits, read at most this much more: a grandchild holding the pipe and
// writing forever must not keep us here.
constexpr size_t kMaxFinalDrain = 1024 * 1024;
// Poll interval when the kernel has no pidfd_open (before 5.3).
constexpr int kReapPollMs = 20;

struct Pipe {
    UniqueFd read;
    UniqueFd write;
};

// Moves fd above 2, so the child's dup2 onto 0-2 never overwrites another pipe end (the
// caller may run with stdin/stdout/stderr closed).
UniqueFd above_stdio(UniqueFd fd) {
    if (fd.get() > 2) return fd;
    int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) throw_errno("fcntl F_DUPFD_CLOEXEC");
    return UniqueFd(moved);
}

Pipe make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    UniqueFd r(fds[0]);
    UniqueFd w(fds[1]);
    return Pipe{above_stdio(std::move(r)), above_stdio(std::move(w))};
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno("fcntl O_NONBLOCK");
}

// Blocks SIGPIPE while we write the state to a hook that may not read it (we get EPIPE
// instead), then consumes a SIGPIPE we caused and restores the caller's mask, so the
// process's signal disposition is never changed.
class SigpipeBlocked {
public:
    SigpipeBlocked() {
        sigemptyset(&pipe_set_);
        sigaddset(&pipe_set_, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
        was_pending_ = is_pending();
    }
    ~SigpipeBlocked() {
        if (!was_pending_ && is_pending()) {
            struct timespec zero {};
            ::sigtimedwait(&pipe_set_, nullptr, &zero);
        }
        ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    }
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

private:
    bool is_pending() const {
        sigset_t pending;
        return ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    }
    sigset_t pipe_set_{};
    sigset_t old_mask_{};
    bool was_pending_ = false;
};

// argv/envp as execve wants them, built before fork (the child may only call
// async-signal-safe functions).
struct ExecVectors {
    std::vector<char*> argv;
    std::vector<char*> envp;
};

ExecVectors exec_vectors(const spec::Hook& hook) {
    ExecVectors v;
    auto c_str = [](const std::string& s) { return const_cast<char*>(s.c_str()); };
    if (hook.args.empty()) {
        v.argv.push_back(c_str(hook.path));
    } else {
        for (const auto& a : hook.args) v.argv.push_back(c_str(a));
    }
    v.argv.push_back(nullptr);
    for (const auto& e : hook.env) v.envp.push_back(c_str(e));
    v.envp.push_back(nullptr);
    return v;
}

[[noreturn]] void report_and_exit(int report_fd) {
    int err = errno;
    ssize_t ignored = ::write(report_fd, &err, sizeof err);
    (void)ignored;
    ::_exit(127);
}

// In the forked child: own process group (so a timeout kills what the hook started too),
// default signal state, the three pipes on 0-2, every other fd closed on exec.
[[noreturn]] void exec_hook(const char* path, const ExecVectors& v, int in, int out, int err,
                            int report_fd) {
    ::setpgid(0, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) report_and_exit(report_fd);
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(path, v.argv.data(), v.envp.data());
    report_and_exit(report_fd);
}

// The errno the child reported before execve failed, or 0 once execve closed the pipe.
int read_exec_error(int report_fd) {
    int err = 0;
    for (;;) {
        ssize_t n = ::read(report_fd, &err, sizeof err);
        if (n < 0 && errno == EINTR) continue;
        return n == static_cast<ssize_t>(sizeof err) ? err : 0;
    }
}

// A started hook; killed (whole process group) and reaped if we leave before it ended.
class HookProcess {
public:
    explicit HookProcess(pid_t pid) : pid_(pid) {
        pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    }
    ~HookProcess() {
        if (!reaped_) {
            kill_group();
            wait_blocking();
        }
    }
    HookProcess(const HookProcess&) = delete;
    HookProcess& operator=(const HookProcess&) = delete;

    int pidfd() const { return pidfd_.get(); }

    // The wait status once the hook has exited (reaping it), nullopt while it runs.
    std::optional<int> try_reap() {
        for (;;) {
            int status = 0;
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                reaped_ = true;
                return status;
            }
            if (r == 0) return std::nullopt;
            if (errno == EINTR) continue;
            reaped_ = true;  // ECHILD: someone else reaped it; nothing left to kill
            throw_errno("waitpid");
        }
    }

    int wait_blocking() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        reaped_ = true;
        return status;
    }

    void kill_group() {
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
    }

private:
    pid_t pid_;
    UniqueFd pidfd_;
    bool reaped_ = false;
};

// Writes the state to the hook's stdin without ever blocking; gives up silently on EPIPE
// (the hook need not read it) and closes the pipe when done so the hook sees EOF.
struct StdinFeeder {
    UniqueFd fd;
    const std::string& data;
    size_t offset = 0;

    void feed() {
        while (fd && offset < data.size()) {
            ssize_t n = ::write(fd.get(), data.data() + offset, data.size() - offset);
            if (n > 0) {
                offset += static_cast<size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno == EAGAIN) {
                return;
            } else {
                fd.reset();  // EPIPE or worse: the hook does not want it
            }
        }
        fd.reset();
    }
};

struct OutputCapture {
    UniqueFd fd;
    std::string data;

    // Reads what is available now, at most `limit` bytes; closes the fd at EOF.
    void read_available(size_t limit = SIZE_MAX) {
        char buf[8192];
        size_t total = 0;
        while (fd && total < limit) {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n > 0) {
                total += static_cast<size_t>(n);
                size_t keep = std::min(static_cast<size_t>(n), kMaxCaptured - std::min(kMaxCaptured, data.size()));
                data.append(buf, keep);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno == EAGAIN) {
                return;
            } else {
                fd.reset();
            }
        }
    }
};

std::string trim_trailing_space(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s;
}

// The Go wording runc prints: "exit status 1", "signal: killed".
std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const char* desc = ::strsignal(WTERMSIG(status));
        std::string name = desc ? desc : "signal " + std::to_string(WTERMSIG(status));
        if (!name.empty()) name[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[0])));
        return "signal: " + name;
    }
    return "wait status " + std::to_string(status);
}

std::string timeout_message(int seconds) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "hook ran past specified timeout of %.1fs",
                  static_cast<double>(seconds));
    return buf;
}

using Clock = std::chrono::steady_clock;

// Milliseconds to wait in poll(): until the deadline, and in short steps without a pidfd.
int poll_timeout_ms(const std::optional<Clock::time_point>& deadline, bool have_pidfd) {
    int wait_ms = have_pidfd ? -1 : kReapPollMs;
    if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
        int left_ms = static_cast<int>(std::max<int64_t>(0, left.count() + 1));
        wait_ms = wait_ms < 0 ? left_ms : std::min(wait_ms, left_ms);
    }
    return wait_ms;
}

// Feeds stdin and collects output until the hook exits (returns its wait status) or the
// deadline passes (returns nullopt; the hook is still running).
std::optional<int> supervise(HookProcess& proc, StdinFeeder& in, OutputCapture& out,
                             OutputCapture& err, const std::optional<Clock::time_point>& deadline) {
    in.feed();
    for (;;) {
        if (auto status = proc.try_reap()) {
            out.read_available(kMaxFinalDrain);
            err.read_available(kMaxFinalDrain);
            return status;
        }
        if (deadline && Clock::now() >= *deadline) return std::nullopt;

        pollfd fds[4];
        nfds_t n = 0;
        auto add = [&](int fd, short events) {
            if (fd >= 0) fds[n++] = pollfd{fd, events, 0};
        };
        add(proc.pidfd(), POLLIN);
        add(in.fd.get(), POLLOUT);
        add(out.fd.get(), POLLIN);
        add(err.fd.get(), POLLIN);
        int ready = ::poll(fds, n, poll_timeout_ms(deadline, proc.pidfd() >= 0));
        if (ready < 0 && errno != EINTR) throw_errno("poll");
        // Every handler is non-blocking, so running them all is cheaper than matching revents.
        if (ready > 0) {
            in.feed();
            out.read_available();
            err.read_available();
        }
    }
}

}  // namespace

void run_hook(const spec::Hook& hook, const std::string& state_json) {
    ExecVectors vectors = exec_vectors(hook);
    Pipe in = make_pipe();
    Pipe out = make_pipe();
    Pipe err = make_pipe();
    Pipe report = make_pipe();
    SigpipeBlocked no_sigpipe;

    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork/exec " + hook.path);
    if (pid == 0) {
        exec_hook(hook.path.c_str(), vectors, in.read.get(), out.write.get(), err.write.get(),
                  report.write.get());
    }
    HookProcess proc(pid);
    in.read.reset();
    out.write.reset();
    err.write.reset();
    report.write.reset();

    if (int exec_errno = read_exec_error(report.read.get())) {
        proc.wait_blocking();
        throw_errno("fork/exec " + hook.path, exec_errno);
    }

    set_nonblocking(in.write.get());
    set_nonblocking(out.read.get());
    set_nonblocking(err.read.get());
    StdinFeeder feeder{std::move(in.write), state_json};
    OutputCapture stdout_capture{std::move(out.read), {}};
    OutputCapture stderr_capture{std::move(err.read), {}};

    std::optional<Clock::time_point> deadline;
    if (hook.timeout && *hook.timeout > 0) deadline = Clock::now() + std::chrono::seconds(*hook.timeout);

    std::optional<int> status = supervise(proc, feeder, stdout_capture, stderr_capture, deadline);
    if (!status) {
        proc.kill_group();
        proc.wait_blocking();
        throw Error(timeout_message(*hook.timeout));
    }
    if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return;
    throw Error("error running hook: " + describe_status(*status) +
                ", stdout: " + trim_trailing_space(stdout_capture.data) +
                ", stderr: " + trim_trailing_space(stderr_capture.data));
}

static std::string failure_prefix(const char* kind, size_t index) {
    return std::string("error running ") + kind + " hook #" + std::to_string(index) + ": ";
}

void run_hooks(const std::vector<spec::Hook>& hooks, const std::string& state_json,
               const char* kind) {
    for (size_t i = 0; i < hooks.size(); ++i) {
        try {
            run_hook(hooks[i], state_json);
        } catch (const Error& e) {
            throw Error(failure_prefix(kind, i) + e.what());
        }
    }
}

std::vector<std::string> run_hooks_warn(const std::vector<spec::Hook>& hooks,
                                        const std::string& state_json, const char* kind) {
    std::vector<std::string> warnings;
    for (size_t i = 0; i < hooks.size(); ++i) {
        try {
            run_hook(hooks[i], state_json);
        } catch (const Error& e) {
            warnings.push_back(failure_prefix(kind, i) + e.what());
        }
    }
    return warnings;
}

}  // namespace sandlock::hooks
