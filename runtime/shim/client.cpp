#include "runtime/shim/client.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <atomic>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "runtime/egress/kernel_layer.hpp"
#include "runtime/shim/control.hpp"
#include "runtime/shim/launch.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/log.hpp"
#include "runtime/util/process.hpp"
#include "runtime/util/scope.hpp"

namespace sandlock::shim {

using json = nlohmann::json;
using namespace startup;

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopGrace = std::chrono::milliseconds(5000);
constexpr const char* kNotRunning =
    "egress shim is not running; refusing to exec without egress supervision";

// sandlock-shim next to the running binary when it is there (smaller: see
// runtime/shim_main.cpp), else this binary's own hidden `shim` subcommand.
std::string default_shim_binary() {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const std::filesystem::path next_to_us = self.parent_path() / "sandlock-shim";
        if (::access(next_to_us.c_str(), X_OK) == 0) return next_to_us.string();
    }
    return "/proc/self/exe";
}

std::string& shim_binary() {
    static std::string path = default_shim_binary();
    return path;
}

bool reply_ok(const json& reply) {
    auto it = reply.find("ok");
    return it != reply.end() && it->is_boolean() && it->get<bool>();
}

std::string reply_error(const json& reply) {
    auto it = reply.find("error");
    return it != reply.end() && it->is_string() ? it->get<std::string>() : "no reason given";
}

// ---- starting: everything between clone and execve is async-signal-safe ----------

struct LaunchPlan {
    std::string exe;
    std::vector<std::string> args, env;
    std::vector<char*> argv, envp;

    void finish() {
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
    }
};

// What spawn_shim's child shares with create: the plan and fds going in; the step that
// failed and its errno coming out (create reads them once the child has exited).
struct SpawnArgs {
    const LaunchPlan* plan;
    int listener, ready, proceed;
    const char* failed_step = nullptr;
    int failed_errno = 0;
};

[[noreturn]] void fail_spawn(SpawnArgs& a, const char* step) {
    a.failed_errno = errno;
    a.failed_step = step;
    ::_exit(127);
}

// In the child of spawn_shim (create's memory, create suspended until the execve): a
// new session; fds 0-2 on /dev/null, the listener (or creator pipe) as fd 3, the ready
// pipe as fd 4, the proceed channel as fd 5, nothing else; then the shim's binary, with
// every signal still blocked: none of create's handlers can run on this child's stack,
// execve resets them, and the shim sets its own signal state first thing
// (restore_signal_state). The shim waits on fd 5 before it does anything else
// (hold_until_released).
int spawned_shim(void* arg) {
    SpawnArgs& a = *static_cast<SpawnArgs*>(arg);
    if (::setsid() < 0) fail_spawn(a, "setsid");

    // Above 10 first, so that no dup2 below has its source equal to its target.
    const int high_listener = ::fcntl(a.listener, F_DUPFD_CLOEXEC, 10);
    const int high_ready = ::fcntl(a.ready, F_DUPFD_CLOEXEC, 10);
    const int high_proceed = ::fcntl(a.proceed, F_DUPFD_CLOEXEC, 10);
    if (high_listener < 0 || high_ready < 0 || high_proceed < 0) fail_spawn(a, "dup");
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) fail_spawn(a, "open /dev/null");
    const int high_null = ::fcntl(null, F_DUPFD_CLOEXEC, 10);
    if (high_null < 0) fail_spawn(a, "dup");
    for (int target : {0, 1, 2})
        if (::dup2(high_null, target) < 0) fail_spawn(a, "dup2");
    if (::dup2(high_listener, kListenerFd) < 0 || ::dup2(high_ready, kReadyFd) < 0 ||
        ::dup2(high_proceed, kProceedFd) < 0)
        fail_spawn(a, "dup2");
    if (::close_range(kProceedFd + 1, ~0U, 0) != 0) fail_spawn(a, "close_range");
    // Never pin the caller's working directory (it may be a mount point).
    if (::chdir("/") != 0) fail_spawn(a, "chdir");
    ::execve(a.plan->exe.c_str(), a.plan->argv.data(), a.plan->envp.data());
    fail_spawn(a, "exec");
}

struct Spawned {
    pid_t pid = 0;
    UniqueFd pidfd;
};

// Starts the shim as a child of ours the way posix_spawn does (clone with CLONE_VM and
// CLONE_VFORK: no copy of create's memory, whose pages a fork would make copy-on-write
// for both, while the maps' thread writes them) and returns it, with the pidfd clone
// made for it (CLONE_PIDFD), once it has called execve. Signals stay blocked here until
// then, and in the child through its execve, so that no handler of create's runs on the
// child's stack (the handlers reset one by one instead were 64 system calls while create
// waits). The shim is create's child only until create exits (then the caller's
// subreaper's, or init's, as runc's init becomes); `run` reaps it.
Spawned spawn_shim(const LaunchPlan& plan, int listener, int ready, int proceed) {
    // Not zeroed: the child touches a page or two of it, and every page first touched costs
    // a fault (11 us on the development machine), 16 of them for a zeroed 64 KiB.
    constexpr std::size_t kStackWords = 64 * 1024 / sizeof(std::max_align_t);
    const auto stack = std::make_unique_for_overwrite<std::max_align_t[]>(kStackWords);
    SpawnArgs args{&plan, listener, ready, proceed};
    int pidfd = -1;
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    const pid_t pid = ::clone(spawned_shim, stack.get() + kStackWords,
                              CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args, &pidfd);
    const int err = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) throw_errno("egress shim: clone", err);
    Spawned shim{pid, UniqueFd(pidfd)};
    if (args.failed_step) {  // it has exited
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        throw Error(std::string("egress shim: ") + args.failed_step + ": " + std::strerror(args.failed_errno));
    }
    return shim;
}

// One line of the ready pipe as (word, rest); throws for an error line.
std::pair<std::string, std::string> parse_ready_line(const std::string& line) {
    const auto space = line.find(' ');
    std::string word = line.substr(0, space);
    std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
    if (word == "error") throw Error("egress shim: " + rest);
    return {std::move(word), std::move(rest)};
}

// create's end of the shim's ready pipe: "ready <pid>" or "error <message>".
class ReadyPipe {
public:
    explicit ReadyPipe(UniqueFd fd) : fd_(std::move(fd)) {}

    // The next line's word and rest; nullopt at EOF. Throws on an error line or at the
    // deadline.
    std::optional<std::pair<std::string, std::string>> next(std::chrono::steady_clock::time_point deadline,
                                                            const std::string& sock) {
        for (;;) {
            const size_t eol = buf_.find('\n');
            if (eol != std::string::npos) {
                const std::string line = buf_.substr(0, eol);
                buf_.erase(0, eol + 1);
                return parse_ready_line(line);
            }
            if (!fill(deadline)) {
                if (eof_) return std::nullopt;
                throw Error("egress shim: not serving " + sock + " after " +
                            std::to_string(kStartTimeout.count()) + "s");
            }
        }
    }

private:
    // Reads what is there; false at EOF or when the deadline passed.
    bool fill(std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{fd_.get(), POLLIN, 0};
            const int n = ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count())));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw_errno("egress shim: poll");
            if (n == 0) return false;
            char chunk[256];
            const ssize_t got = ::read(fd_.get(), chunk, sizeof chunk);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) throw_errno("egress shim: read");
            if (got == 0) {
                eof_ = true;
                return false;
            }
            buf_.append(chunk, static_cast<size_t>(got));
            return true;
        }
    }

    UniqueFd fd_;
    std::string buf_;
    bool eof_ = false;
};

// Reads the ready pipe until the shim said "ready <pid>" and closed it (or failed, or
// the time is up: then the shim is killed through its pidfd).
pid_t await_ready(ReadyPipe& pipe, int pidfd, const std::string& sock) {
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    pid_t ready = 0;
    try {
        while (auto line = pipe.next(deadline, sock))
            if (line->first == "ready") ready = static_cast<pid_t>(std::atol(line->second.c_str()));
    } catch (const Error&) {
        if (pidfd >= 0) proc::send_signal(pidfd, SIGKILL);
        throw;
    }
    // EOF after "ready": the shim has closed its end, so it holds nothing of ours.
    if (ready > 0) return ready;
    throw Error("egress shim: exited before serving " + sock);
}

void remove_if_exists(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno("remove " + path);
}

std::vector<std::string> read_cmdline(pid_t pid) {
    std::vector<std::string> args;
    std::string raw;
    try {
        raw = fs::read_file("/proc/" + std::to_string(pid) + "/cmdline");
    } catch (const Error&) {
        return args;
    }
    size_t start = 0;
    while (start < raw.size()) {
        size_t end = raw.find('\0', start);
        if (end == std::string::npos) end = raw.size();
        args.push_back(raw.substr(start, end - start));
        start = end + 1;
    }
    return args;
}

bool is_our_shim(pid_t pid, const std::string& state_dir) {
    const auto args = read_cmdline(pid);
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "shim" && args[i + 1] == state_dir) return true;
    return false;
}

// SIGKILL through a pidfd and wait for the exit; throws if it does not come.
void kill_and_wait(int pidfd, pid_t pid) {
    if (!proc::send_signal(pidfd, SIGKILL) && errno != ESRCH) throw_errno("egress shim: kill " + std::to_string(pid));
    if (!proc::wait_exit(pidfd, kStopGrace))
        throw Error("egress shim " + std::to_string(pid) + " did not exit within " +
                    std::to_string(kStopGrace.count()) + " ms of SIGKILL");
}

}  // namespace

std::string policy_path(const std::string& state_dir) { return fs::join(state_dir, "egress.json"); }
std::string socket_path(const std::string& state_dir) { return fs::join(state_dir, "shim.sock"); }
std::string pid_path(const std::string& state_dir) { return fs::join(state_dir, "shim.pid"); }
std::string audit_log_path(const std::string& state_dir) { return fs::join(state_dir, "audit.log"); }

void write_policy(const std::string& state_dir, const egress::ResolvedPolicy& policy) {
    fs::write_file_atomic(policy_path(state_dir), egress::serialize(policy), 0600);
}

void set_shim_binary(const std::string& path) { shim_binary() = path; }

namespace {

struct Launched {
    UniqueFd ready;    // the read end of its ready pipe
    pid_t pid = 0;
    UniqueFd pidfd;
    UniqueFd proceed;  // the shim waits before it does anything until a byte comes (release)
};

// Lets a launched shim go on; it ends instead if the channel closes without the byte.
// (A socket pair, so that a shim already gone is EPIPE here, not SIGPIPE: its ready pipe
// then says it exited before serving.)
void release(UniqueFd& proceed) {
    if (!proceed) return;
    const char go = 'g';
    ssize_t n;
    while ((n = ::send(proceed.get(), &go, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    const int err = errno;
    proceed.reset();
    if (n != 1 && err != EPIPE && err != ECONNRESET) throw_errno("egress shim: release", err);
}

// Spawns the shim with fd3 as its fd 3, held until release().
Launched launch(const std::string& state_dir, int fd3, const std::string& audit_mode, bool fd3_is_creator) {
    if (!audit_mode.empty() && !parse_audit(audit_mode))
        throw Error("egress shim: unknown audit mode \"" + audit_mode + "\"");
    if (!fs::exists(policy_path(state_dir)))
        throw Error("egress shim: " + policy_path(state_dir) + " is missing");

    LaunchPlan plan;
    plan.exe = shim_binary();
    plan.args = {plan.exe.ends_with("/sandlock-shim") ? "sandlock-shim" : "sandlock-runc", "shim", state_dir};
    plan.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                std::string(kReadyFdEnv) + "=" + std::to_string(kReadyFd),
                std::string(kProceedFdEnv) + "=" + std::to_string(kProceedFd)};
    if (!audit_mode.empty()) plan.env.push_back(std::string(kAuditEnv) + "=" + audit_mode);
    if (const char* cap = std::getenv(kAuditMaxSizeEnv)) plan.env.push_back(std::string(kAuditMaxSizeEnv) + "=" + cap);
    if (fd3_is_creator) plan.env.push_back(std::string(kCreatorFdEnv) + "=" + std::to_string(kListenerFd));
    plan.finish();

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("egress shim: pipe");
    UniqueFd ready_read(p[0]), ready_write(p[1]);
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0) throw_errno("egress shim: socketpair");
    UniqueFd proceed_read(p[0]), proceed_write(p[1]);
    Spawned spawned = spawn_shim(plan, fd3, ready_write.get(), proceed_read.get());
    Launched shim;
    shim.pid = spawned.pid;
    shim.pidfd = std::move(spawned.pidfd);
    shim.proceed = std::move(proceed_write);
    shim.ready = std::move(ready_read);
    return shim;
}

pid_t await_ready(Launched& shim, const std::string& sock) {
    ReadyPipe pipe(std::move(shim.ready));
    return await_ready(pipe, shim.pidfd.get(), sock);
}

}  // namespace

pid_t start_shim(const std::string& state_dir_arg, UniqueFd first_listener, const std::string& audit_mode) {
    const std::string state_dir = canonical_dir(state_dir_arg);
    if (!first_listener) throw Error("egress shim: no seccomp listener to supervise");
    Launched shim = launch(state_dir, first_listener.get(), audit_mode, false);
    first_listener.reset();  // the shim owns it now
    release(shim.proceed);
    return await_ready(shim, socket_path(state_dir));
}

PendingShim launch_shim(const std::string& state_dir_arg, const egress::ResolvedPolicy& policy, bool held) {
    const std::string state_dir = canonical_dir(state_dir_arg);
    write_policy(state_dir, policy);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("egress shim: pipe");
    UniqueFd creator_read(p[0]), creator_write(p[1]);
    PendingShim pending;
    pending.state_dir = state_dir;
    Launched shim = launch(state_dir, creator_read.get(), egress::to_string(policy.audit), true);
    pending.ready = std::move(shim.ready);
    pending.pid = shim.pid;
    pending.pidfd = std::move(shim.pidfd);
    pending.creator = std::move(creator_write);
    pending.held = std::move(shim.proceed);
    if (!held) release(pending.held);
    return pending;
}

void release_shim(PendingShim& pending) { release(pending.held); }

namespace {

// Once: until the shim said "ready", shim.sock may not be served yet.
void await_pending_shim(PendingShim& pending) {
    if (pending.held) throw Error("egress shim: still held before its start (release_shim)");
    if (!pending.ready) return;
    ReadyPipe pipe(std::move(pending.ready));
    await_ready(pipe, pending.pidfd.get(), socket_path(pending.state_dir));
}

}  // namespace

namespace {

// A "register" request (a listener, maybe with the kernel layer's maps) and its answer.
void send_register(const std::string& state_dir, const json& request, const std::vector<int>& fds) {
    json reply;
    try {
        reply = control_request(socket_path(state_dir), request, fds);
    } catch (const ShimUnavailable&) {
        throw Error(kNotRunning);
    }
    if (!reply_ok(reply)) throw Error("egress shim refused the listener: " + reply_error(reply));
}

}  // namespace

proc::Identity finish_shim_launch(PendingShim& pending, UniqueFd first_listener, egress::KernelLayer* kernel_layer,
                                  pid_t init_pid) {
    if (!first_listener) throw Error("egress shim: no seccomp listener to supervise");
    await_pending_shim(pending);
    // Read while it waits for this listener: after the registration it may end at once.
    const auto identity = proc::identify(pending.pidfd.get(), pending.pid);
    if (!identity) throw Error("egress shim: exited before serving " + socket_path(pending.state_dir));
    json request = {{"op", "register"}};
    if (init_pid > 0) request["init_pid"] = init_pid;
    std::vector<int> fds = {first_listener.get()};
    if (kernel_layer) {
        const egress::KernelLayer::Handover h = kernel_layer->handover();
        request["kernel_layer"] = {{"id", h.id}};
        fds.insert(fds.end(), h.fds.begin(), h.fds.end());
    }
    send_register(pending.state_dir, request, fds);
    if (kernel_layer) kernel_layer->handed_over();  // the shim removes the container's entries now
    pending.creator.reset();  // the shim stops watching for our end
    return *identity;
}

void stop_pending_shim(PendingShim& pending) {
    pending.held.reset();     // a held shim ends before execve
    pending.creator.reset();  // an abandoned shim ends by itself; the kill makes it now
    ScopeExit remove_files([&] {
        remove_if_exists(socket_path(pending.state_dir));
        remove_if_exists(pid_path(pending.state_dir));
    });
    if (!pending.pidfd) return;
    kill_and_wait(pending.pidfd.get(), pending.pid);
    siginfo_t info{};  // our child: reaped
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pending.pidfd.get()), &info, WEXITED | WNOHANG);
}

pid_t start_shim(const std::string& state_dir, const egress::ResolvedPolicy& policy, UniqueFd first_listener) {
    write_policy(state_dir, policy);
    return start_shim(state_dir, std::move(first_listener), egress::to_string(policy.audit));
}

void register_listener(const std::string& state_dir, int listener_fd) {
    send_register(state_dir, {{"op", "register"}}, listener_fd >= 0 ? std::vector<int>{listener_fd} : std::vector<int>{});
}

json update_policy(const std::string& state_dir, const std::vector<std::string>& allow,
                  const std::vector<std::string>& revoke, int init_pidfd, pid_t init_pid) {
    const json request = {{"op", "update"}, {"allow", allow}, {"revoke", revoke}, {"pid", init_pid}};
    json reply;
    try {
        // A new name is resolved by the shim: allow for a slow resolver.
        reply = control_request(socket_path(state_dir), request, std::vector<int>{init_pidfd}, 30000);
    } catch (const ShimUnavailable&) {
        throw Error("egress shim is not running: the policy cannot change (a dead shim fails closed)");
    }
    if (!reply_ok(reply)) throw Error(reply_error(reply));
    return reply;
}

std::string learned_path(const std::string& state_dir) { return fs::join(state_dir, "learned.json"); }

std::string kernel_version_path(const std::string& state_dir) { return fs::join(state_dir, "kernel-version"); }

void record_kernel_version(const std::string& state_dir, std::uint64_t version) {
    fs::write_file_atomic(kernel_version_path(state_dir), std::to_string(version) + "\n", 0600);
}

std::optional<std::uint64_t> recorded_kernel_version(const std::string& state_dir) {
    const auto text = fs::try_read_file(kernel_version_path(state_dir));
    if (!text) return 0;
    std::uint64_t version = 0;
    const char* end = text->data() + text->size();
    const auto [ptr, ec] = std::from_chars(text->data(), end, version);
    if (ec != std::errc() || ptr == text->data() || (ptr != end && *ptr != '\n')) return std::nullopt;
    return version;
}

std::string final_counters_path(const std::string& state_dir) {
    return fs::join(state_dir, "counters.json");
}

json shim_status(const std::string& state_dir) {
    json out;
    const std::string policy_file = policy_path(state_dir);
    // The readable form (destinations as objects), whatever form the file has.
    out["policy"] = fs::exists(policy_file) ? json(egress::deserialize_policy(fs::read_file(policy_file))) : json(nullptr);
    out["audit"] = out["policy"].is_object() ? out["policy"].value("audit", "off") : "off";
    const std::string log_file = audit_log_path(state_dir);
    out["audit_log"] = fs::exists(log_file) ? json(log_file) : json(nullptr);
    out["counters"] = nullptr;
    out["names"] = nullptr;  // with resolve.refresh: each name's addresses, TTL, next lookup, retiring ones
    out["shim"] = {{"running", false}};
    try {
        json reply = control_request(socket_path(state_dir), {{"op", "status"}}, -1, 2000);
        if (!reply_ok(reply)) throw Error("egress shim status: " + reply_error(reply));
        out["shim"] = {{"running", true}, {"pid", reply.value("pid", 0)}, {"listeners", reply.value("listeners", 0)}};
        out["counters"] = reply.value("counters", json(nullptr));
        out["names"] = reply.value("names", json(nullptr));
        if (reply.contains("audit")) out["audit"] = reply["audit"];
    } catch (const ShimUnavailable&) {
        // Not running: the rules, and the counters it left when it exited, still count.
        const std::string final_file = final_counters_path(state_dir);
        if (fs::exists(final_file)) out["counters"] = json::parse(fs::read_file(final_file), nullptr, false);
    }
    return out;
}

void stop_shim(const std::string& state_dir_arg, const proc::Identity& shim) {
    const std::string state_dir = canonical_dir(state_dir_arg);
    ScopeExit remove_files([&] {
        remove_if_exists(socket_path(state_dir));
        remove_if_exists(pid_path(state_dir));
    });
    UniqueFd pidfd;
    pid_t pid = shim.pid;
    if (shim.known()) {
        pidfd = proc::open_pidfd(shim);  // empty: exited, or the pid names another process now
    } else {
        // A record without the shim's identity: shim.pid, if the shim is still there to
        // have it, and the pid proved by its command line after the pidfd pinned it.
        const auto text = fs::try_read_file(pid_path(state_dir));
        pid = text ? static_cast<pid_t>(std::atol(text->c_str())) : 0;
        pidfd = proc::open_pidfd(pid);
        if (pidfd && !is_our_shim(pid, state_dir)) pidfd.reset();
    }
    if (pidfd) kill_and_wait(pidfd.get(), pid);
}

}  // namespace sandlock::shim
