#include "runtime/shim/shim.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "runtime/shim/control.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/log.hpp"
#include "runtime/util/scope.hpp"

namespace sandlock::shim {

using json = nlohmann::json;

namespace {

constexpr const char* kReadyFdEnv = "SANDLOCK_SHIM_READY_FD";
constexpr const char* kAuditEnv = "SANDLOCK_SHIM_AUDIT";
// Set when fd 3 is not a listener but the read end of a pipe `create` holds open until it
// has registered the first listener (launch_shim).
constexpr const char* kCreatorFdEnv = "SANDLOCK_SHIM_CREATOR_FD";
constexpr int kListenerFd = 3;
constexpr int kReadyFd = 4;
constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr int kStopGraceMs = 2000;
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

// Absolute, normalized, without a trailing slash: the form the shim's cmdline carries,
// so that stop_shim can recognise it whatever form its caller used.
std::string canonical_dir(const std::string& dir) {
    std::string abs = fs::absolute(dir);
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    return abs;
}

std::optional<egress::Audit> parse_audit(const std::string& s) {
    for (auto a : {egress::Audit::Off, egress::Audit::Deny, egress::Audit::All})
        if (s == egress::to_string(a)) return a;
    return std::nullopt;
}

bool reply_ok(const json& reply) {
    auto it = reply.find("ok");
    return it != reply.end() && it->is_boolean() && it->get<bool>();
}

std::string reply_error(const json& reply) {
    auto it = reply.find("error");
    return it != reply.end() && it->is_string() ? it->get<std::string>() : "no reason given";
}

bool is_seccomp_listener(int fd) {
    char target[64] = {};
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    return n > 0 && std::string(target, static_cast<size_t>(n)) == "anon_inode:seccomp notify";
}

// ---- starting: everything between fork and execve is async-signal-safe ----------

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

void write_all_raw(int fd, const char* data, size_t len) {
    while (len > 0) {
        const ssize_t n = ::write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        len -= static_cast<size_t>(n);
    }
}

// "<word> <number>\n" without allocating or snprintf.
void report_number(int fd, const char* word, long value) {
    char buf[64];
    size_t len = 0;
    while (word[len] && len < 40) {
        buf[len] = word[len];
        ++len;
    }
    buf[len++] = ' ';
    char digits[24];
    size_t nd = 0;
    unsigned long v = value < 0 ? 0 : static_cast<unsigned long>(value);
    do {
        digits[nd++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (nd > 0) buf[len++] = digits[--nd];
    buf[len++] = '\n';
    write_all_raw(fd, buf, len);
}

// Reports a failed step before execve ("fail-<step> <errno>") and exits.
[[noreturn]] void fail_launch(int report_fd, const char* step) {
    report_number(report_fd, step, errno);
    ::_exit(127);
}

// In the grandchild: fds 0-2 on /dev/null, the listener as fd 3, the ready pipe as
// fd 4, nothing else; default signal state; then the runtime binary itself.
[[noreturn]] void exec_shim(const LaunchPlan& plan, int listener, int ready) {
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);

    // Above 10 first, so that no dup2 below has its source equal to its target.
    const int high_listener = ::fcntl(listener, F_DUPFD_CLOEXEC, 10);
    const int high_ready = ::fcntl(ready, F_DUPFD_CLOEXEC, 10);
    if (high_listener < 0 || high_ready < 0) fail_launch(ready, "fail-dup");
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) fail_launch(ready, "fail-open-/dev/null");
    const int high_null = ::fcntl(null, F_DUPFD_CLOEXEC, 10);
    if (high_null < 0) fail_launch(ready, "fail-dup");
    for (int target : {0, 1, 2})
        if (::dup2(high_null, target) < 0) fail_launch(high_ready, "fail-dup2");
    if (::dup2(high_listener, kListenerFd) < 0 || ::dup2(high_ready, kReadyFd) < 0)
        fail_launch(high_ready, "fail-dup2");
    if (::close_range(kReadyFd + 1, ~0U, 0) != 0) fail_launch(kReadyFd, "fail-close_range");
    // Never pin the caller's working directory (it may be a mount point).
    if (::chdir("/") != 0) fail_launch(kReadyFd, "fail-chdir");
    ::execve(plan.exe.c_str(), plan.argv.data(), plan.envp.data());
    fail_launch(kReadyFd, "fail-exec");
}

// In the child: a new session, then the shim as our child, then exit so that the shim
// is orphaned: it is never a child of create (nor holds create's caller's terminal).
[[noreturn]] void detach_and_launch(const LaunchPlan& plan, int listener, int ready) {
    if (::setsid() < 0) fail_launch(ready, "fail-setsid");
    const pid_t shim = ::fork();
    if (shim < 0) fail_launch(ready, "fail-fork");
    if (shim == 0) exec_shim(plan, listener, ready);
    report_number(ready, "pid", shim);
    ::_exit(0);
}

void reap(pid_t pid) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

// Reads the ready pipe until the shim said "ready <pid>" and closed it (or failed, or
// the time is up).
pid_t await_ready(int fd, const std::string& sock) {
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    std::string buf;
    pid_t launched = 0;
    pid_t ready = 0;
    for (;;) {
        size_t eol;
        while ((eol = buf.find('\n')) != std::string::npos) {
            const std::string line = buf.substr(0, eol);
            buf.erase(0, eol + 1);
            const auto space = line.find(' ');
            const std::string word = line.substr(0, space);
            const std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
            if (word == "pid") launched = static_cast<pid_t>(std::atol(rest.c_str()));
            if (word == "ready") ready = static_cast<pid_t>(std::atol(rest.c_str()));
            if (word == "error") throw Error("egress shim: " + rest);
            if (word.rfind("fail-", 0) == 0)
                throw Error("egress shim: " + word.substr(5) + ": " + std::strerror(std::atoi(rest.c_str())));
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count())));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("egress shim: poll");
        if (n == 0) {
            if (launched > 0) ::kill(launched, SIGKILL);
            throw Error("egress shim: not serving " + sock + " after " +
                        std::to_string(kStartTimeout.count()) + "s");
        }
        char chunk[256];
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw_errno("egress shim: read");
        // EOF after "ready": the shim has closed its end, so it holds nothing of ours.
        if (got == 0 && ready > 0) return ready;
        if (got == 0) throw Error("egress shim: exited before serving " + sock);
        buf.append(chunk, static_cast<size_t>(got));
    }
}

// ---- the shim process ---------------------------------------------------------

// The pipe start_shim waits on: one line, "ready <pid>" or "error <message>".
class ReadyChannel {
public:
    ReadyChannel() {
        const char* v = std::getenv(kReadyFdEnv);
        if (!v) return;
        const int fd = std::atoi(v);
        ::unsetenv(kReadyFdEnv);
        if (fd > 2 && ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) fd_.reset(fd);
    }
    void send(const std::string& line) {
        if (!fd_) return;
        const std::string text = line + "\n";
        write_all_raw(fd_.get(), text.data(), text.size());
        fd_.reset();
    }

private:
    UniqueFd fd_;
};

class AuditLog {
public:
    AuditLog(const std::string& path, egress::Audit mode) : mode_(mode) {
        if (mode_ == egress::Audit::Off) return;
        fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd_) throw_errno("open " + path);
    }
    AuditFn fn() {
        if (mode_ == egress::Audit::Off) return {};
        return [this](const Decision& d) { record(d); };
    }

private:
    void record(const Decision& d) {
        if (!audit_records(mode_, d.allowed)) return;
        const std::string line = audit_line(d, log::rfc3339_now());
        // One write per line on an O_APPEND fd; the lock keeps lines whole anyway.
        std::lock_guard lock(mu_);
        write_all_raw(fd_.get(), line.data(), line.size());
    }

    egress::Audit mode_;
    UniqueFd fd_;
    std::mutex mu_;
};

// Written once serving; removed on exit only if it still names us.
class PidFile {
public:
    explicit PidFile(std::string path) : path_(std::move(path)) {
        fs::write_file_atomic(path_, std::to_string(::getpid()), 0644);
    }
    ~PidFile() {
        try {
            if (fs::read_file(path_) == std::to_string(::getpid())) ::unlink(path_.c_str());
        } catch (const std::exception&) {
            // Already gone.
        }
    }

private:
    std::string path_;
};

// What the control socket does to the Supervisor.
class ShimService {
public:
    ShimService(Supervisor& sup, egress::Audit audit) : sup_(sup), audit_(audit) {}

    json handle(const json& request, UniqueFd fd) {
        auto op = request.find("op");
        if (op == request.end() || !op->is_string()) return refuse("request without \"op\"");
        if (*op == "register") return add(std::move(fd));
        if (*op == "status") return status();
        return refuse("unknown op " + op->dump());
    }
    // After this, registrations are refused: nobody would serve the listener.
    void close() {
        std::lock_guard lock(mu_);
        closing_ = true;
    }
    void terminate() {
        {
            std::lock_guard lock(mu_);
            closing_ = true;
        }
        sup_.stop();
    }

    json status() const {
        const Counters c = sup_.counters();
        return {{"ok", true},
                {"pid", ::getpid()},
                {"listeners", sup_.listener_count()},
                {"audit", egress::to_string(audit_)},
                {"counters",
                 {{"allowed", c.allowed}, {"denied", c.denied}, {"continued", c.continued}, {"errors", c.errors}}}};
    }

private:
    static json refuse(const std::string& why) { return {{"ok", false}, {"error", why}}; }

    json add(UniqueFd fd) {
        if (!fd) return refuse("register: no listener fd attached");
        if (!is_seccomp_listener(fd.get())) return refuse("register: the fd is not a seccomp listener");
        std::lock_guard lock(mu_);
        if (closing_) return refuse("the egress shim is stopping");
        sup_.add_listener(std::move(fd));
        return {{"ok", true}, {"listeners", sup_.listener_count()}};
    }

    Supervisor& sup_;
    egress::Audit audit_;
    std::mutex mu_;
    bool closing_ = false;
};

// SIGTERM/SIGINT/SIGHUP go to the control thread's signalfd, so they are blocked here,
// before any thread exists. SIGPIPE must never kill the shim (a peer that left).
void prepare_signals() {
    sigset_t set;
    ::sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&set, sig);
    if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) throw Error("pthread_sigmask failed");
    ::signal(SIGPIPE, SIG_IGN);
}

// Every exec adds a listener and every on-behalf call a duplicate socket.
void raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

// fd 3 when launch_shim started us: the pipe whose other end `create` holds until it
// has registered the first listener. Invalid when fd 3 is the first listener itself.
UniqueFd take_creator_pipe() {
    const char* v = std::getenv(kCreatorFdEnv);
    if (!v) return {};
    ::unsetenv(kCreatorFdEnv);
    if (::fcntl(kListenerFd, F_SETFD, FD_CLOEXEC) != 0) throw_errno("fcntl fd 3");
    return UniqueFd(kListenerFd);
}

// Until `create` has registered the first listener: if it goes away first (its end of
// the pipe closes with no listener registered), nobody will, and the shim ends.
class CreatorWatch {
public:
    CreatorWatch(UniqueFd pipe, Supervisor& sup) : pipe_(std::move(pipe)) {
        if (!pipe_) return;
        thread_ = std::thread([this, &sup] {
            while (!done_.load()) {
                pollfd p{pipe_.get(), POLLIN, 0};
                if (::poll(&p, 1, 200) > 0) {
                    if (sup.listener_count() == 0) sup.stop();
                    return;
                }
            }
        });
    }
    ~CreatorWatch() {
        done_ = true;
        if (thread_.joinable()) thread_.join();
    }
    CreatorWatch(const CreatorWatch&) = delete;
    CreatorWatch& operator=(const CreatorWatch&) = delete;

private:
    UniqueFd pipe_;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

UniqueFd take_first_listener() {
    if (!is_seccomp_listener(kListenerFd)) throw Error("fd 3 is not a seccomp listener");
    if (::fcntl(kListenerFd, F_SETFD, FD_CLOEXEC) != 0) throw_errno("fcntl fd 3");
    return UniqueFd(kListenerFd);
}

egress::Audit audit_mode_for(const egress::ResolvedPolicy& policy) {
    const char* v = std::getenv(kAuditEnv);
    if (!v) return policy.audit;
    auto mode = parse_audit(v);
    if (!mode) throw Error(std::string("unknown audit mode \"") + v + "\"");
    return *mode;
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

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool pidfd_signal(int pidfd, int sig) {
    return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

// A pidfd is readable once its process has exited.
bool wait_exit(int pidfd, int timeout_ms) {
    pollfd p{pidfd, POLLIN, 0};
    int n;
    do {
        n = ::poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n > 0;
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

bool audit_records(egress::Audit mode, bool allowed) {
    switch (mode) {
        case egress::Audit::All:
            return true;
        case egress::Audit::Deny:
            return !allowed;
        case egress::Audit::Off:
            break;
    }
    return false;
}

std::string audit_line(const Decision& d, const std::string& time) {
    nlohmann::ordered_json j;
    j["time"] = time;
    j["pid"] = d.pid;
    j["syscall"] = d.syscall;
    j["protocol"] = egress::to_string(d.protocol);
    j["destination"] = d.destination;
    j["port"] = d.port;
    j["verdict"] = d.allowed ? "allow" : "deny";
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace {

// Forks the detached shim with fd3 as its fd 3; returns the read end of its ready pipe.
UniqueFd launch(const std::string& state_dir, int fd3, const std::string& audit_mode, bool fd3_is_creator) {
    if (!audit_mode.empty() && !parse_audit(audit_mode))
        throw Error("egress shim: unknown audit mode \"" + audit_mode + "\"");
    if (!fs::exists(policy_path(state_dir)))
        throw Error("egress shim: " + policy_path(state_dir) + " is missing");

    LaunchPlan plan;
    plan.exe = shim_binary();
    plan.args = {plan.exe.ends_with("/sandlock-shim") ? "sandlock-shim" : "sandlock-runc", "shim", state_dir};
    plan.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                std::string(kReadyFdEnv) + "=" + std::to_string(kReadyFd)};
    if (!audit_mode.empty()) plan.env.push_back(std::string(kAuditEnv) + "=" + audit_mode);
    if (fd3_is_creator) plan.env.push_back(std::string(kCreatorFdEnv) + "=" + std::to_string(kListenerFd));
    plan.finish();

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("egress shim: pipe");
    UniqueFd ready_read(p[0]), ready_write(p[1]);
    const pid_t middle = ::fork();
    if (middle < 0) throw_errno("egress shim: fork");
    if (middle == 0) detach_and_launch(plan, fd3, ready_write.get());
    ready_write.reset();
    reap(middle);
    return ready_read;
}

}  // namespace

pid_t start_shim(const std::string& state_dir_arg, UniqueFd first_listener, const std::string& audit_mode) {
    const std::string state_dir = canonical_dir(state_dir_arg);
    if (!first_listener) throw Error("egress shim: no seccomp listener to supervise");
    UniqueFd ready = launch(state_dir, first_listener.get(), audit_mode, false);
    first_listener.reset();  // the shim owns it now
    return await_ready(ready.get(), socket_path(state_dir));
}

PendingShim launch_shim(const std::string& state_dir_arg, const egress::ResolvedPolicy& policy) {
    const std::string state_dir = canonical_dir(state_dir_arg);
    write_policy(state_dir, policy);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("egress shim: pipe");
    UniqueFd creator_read(p[0]), creator_write(p[1]);
    PendingShim pending;
    pending.state_dir = state_dir;
    pending.ready = launch(state_dir, creator_read.get(), egress::to_string(policy.audit), true);
    pending.creator = std::move(creator_write);
    return pending;
}

pid_t finish_shim_launch(PendingShim& pending, UniqueFd first_listener) {
    if (!first_listener) throw Error("egress shim: no seccomp listener to supervise");
    const pid_t pid = await_ready(pending.ready.get(), socket_path(pending.state_dir));
    pending.ready.reset();
    register_listener(pending.state_dir, first_listener.get());
    pending.creator.reset();  // the shim stops watching for our end
    return pid;
}

pid_t start_shim(const std::string& state_dir, const egress::ResolvedPolicy& policy, UniqueFd first_listener) {
    write_policy(state_dir, policy);
    return start_shim(state_dir, std::move(first_listener), egress::to_string(policy.audit));
}

void register_listener(const std::string& state_dir, int listener_fd) {
    json reply;
    try {
        reply = control_request(socket_path(state_dir), {{"op", "register"}}, listener_fd);
    } catch (const ShimUnavailable&) {
        throw Error(kNotRunning);
    }
    if (!reply_ok(reply)) throw Error("egress shim refused the listener: " + reply_error(reply));
}

std::string final_counters_path(const std::string& state_dir) {
    return fs::join(state_dir, "counters.json");
}

json shim_status(const std::string& state_dir) {
    json out;
    const std::string policy_file = policy_path(state_dir);
    out["policy"] = fs::exists(policy_file) ? json::parse(fs::read_file(policy_file)) : json(nullptr);
    out["audit"] = out["policy"].is_object() ? out["policy"].value("audit", "off") : "off";
    const std::string log_file = audit_log_path(state_dir);
    out["audit_log"] = fs::exists(log_file) ? json(log_file) : json(nullptr);
    out["counters"] = nullptr;
    out["shim"] = {{"running", false}};
    try {
        json reply = control_request(socket_path(state_dir), {{"op", "status"}}, -1, 2000);
        if (!reply_ok(reply)) throw Error("egress shim status: " + reply_error(reply));
        out["shim"] = {{"running", true}, {"pid", reply.value("pid", 0)}, {"listeners", reply.value("listeners", 0)}};
        out["counters"] = reply.value("counters", json(nullptr));
        if (reply.contains("audit")) out["audit"] = reply["audit"];
    } catch (const ShimUnavailable&) {
        // Not running: the rules, and the counters it left when it exited, still count.
        const std::string final_file = final_counters_path(state_dir);
        if (fs::exists(final_file)) out["counters"] = json::parse(fs::read_file(final_file), nullptr, false);
    }
    return out;
}

void stop_shim(const std::string& state_dir_arg) {
    const std::string state_dir = canonical_dir(state_dir_arg);
    const std::string pid_file = pid_path(state_dir);
    ScopeExit remove_files([&] {
        remove_if_exists(socket_path(state_dir));
        remove_if_exists(pid_file);
    });
    if (!fs::exists(pid_file)) return;
    const pid_t pid = static_cast<pid_t>(std::atol(fs::read_file(pid_file).c_str()));
    if (pid <= 0) return;
    // The pidfd pins the process we checked: a recycled pid cannot be signalled by mistake.
    UniqueFd pidfd(pidfd_open(pid));
    if (!pidfd) return;  // gone already
    if (!is_our_shim(pid, state_dir)) return;  // a stale pid file naming someone else
    if (!pidfd_signal(pidfd.get(), SIGKILL)) return;
    if (!wait_exit(pidfd.get(), kStopGraceMs))
        log::warn("egress shim " + std::to_string(pid) + " still exiting after SIGKILL");
}

int run_shim_main(const std::string& state_dir_arg) {
    ReadyChannel ready;
    try {
        const std::string state_dir = canonical_dir(state_dir_arg);
        // Its stderr is /dev/null: failures after start go to the state dir.
        log::configure(fs::join(state_dir, "shim.log"), log::Format::Json, false);
        ::umask(0077);
        prepare_signals();
        raise_fd_limit();
        UniqueFd creator = take_creator_pipe();
        UniqueFd first = creator ? UniqueFd() : take_first_listener();
        const auto policy = egress::deserialize_policy(fs::read_file(policy_path(state_dir)));
        const egress::Audit audit = audit_mode_for(policy);
        AuditLog audit_log(audit_log_path(state_dir), audit);
        Supervisor supervisor(policy, audit_log.fn());
        if (first)
            supervisor.add_listener(std::move(first));
        else
            supervisor.await_first_listener();
        CreatorWatch creator_watch(std::move(creator), supervisor);
        ShimService service(supervisor, audit);
        ControlServer server(
            socket_path(state_dir),
            [&service](const json& request, UniqueFd fd) { return service.handle(request, std::move(fd)); },
            [&service](int) { service.terminate(); });
        PidFile pid_file(pid_path(state_dir));
        std::thread control([&server] {
            try {
                server.serve();
            } catch (const std::exception& e) {
                log::warn(std::string("egress shim control socket: ") + e.what());
            }
        });
        ScopeExit join_control([&] {
            server.shutdown();
            control.join();
        });
        ready.send("ready " + std::to_string(::getpid()));
        supervisor.run();
        service.close();
        // The container is gone; `egress ID` still shows what was decided.
        fs::write_file_atomic(final_counters_path(state_dir), service.status().at("counters").dump(), 0600);
        return 0;
    } catch (const std::exception& e) {
        // The log first: once `create` reads the error it removes the state dir.
        log::warn(std::string("egress shim: ") + e.what());
        ready.send(std::string("error ") + e.what());
        return 1;
    }
}

}  // namespace sandlock::shim
