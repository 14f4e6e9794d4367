#include "runtime/shim/process.hpp"

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

#include <chrono>
#include <condition_variable>
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
#include "runtime/egress/dns.hpp"
#include "runtime/egress/learn.hpp"
#include "runtime/egress/live_change.hpp"
#include "runtime/shim/client.hpp"
#include "runtime/shim/container_hosts.hpp"
#include "runtime/shim/name_refresh.hpp"
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

constexpr off_t kDefaultAuditMaxSize = 16 << 20;
// Decisions recorded per second at most (a burst of as many); the rest are counted
// and the count written as one record when recording resumes.
constexpr double kAuditLinesPerSecond = 1000;

bool is_seccomp_listener(int fd) {
    char target[64] = {};
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    return n > 0 && std::string(target, static_cast<size_t>(n)) == "anon_inode:seccomp notify";
}

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

// audit.log: one JSON line per decision the mode records, bounded whatever the container
// does. Rate-limited (a token bucket of kAuditLinesPerSecond; what it drops is counted
// and reported as {"time", "suppressed": N}), and size-capped: a line that would take
// the file past max_size first moves it to audit.log.1 (replacing the older one), so
// the two files hold at most 2 * max_size.
class AuditLog {
public:
    AuditLog(std::string path, egress::Audit mode, off_t max_size)
        : path_(std::move(path)), mode_(mode), max_size_(max_size) {
        if (mode_ == egress::Audit::Off) return;
        open_file();
        struct stat st {};
        if (::fstat(fd_.get(), &st) == 0) written_ = st.st_size;
    }
    AuditFn fn() {
        if (mode_ == egress::Audit::Off) return {};
        return [this](const Decision& d) { record(d); };
    }

private:
    void open_file() {
        fd_.reset(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd_) throw_errno("open " + path_);
    }

    void record(const Decision& d) {
        if (!audit_records(mode_, d.allowed)) return;
        std::lock_guard lock(mu_);
        if (!take_token()) {
            ++suppressed_;
            return;
        }
        const std::string now = log::rfc3339_now();
        if (suppressed_ > 0) {
            nlohmann::ordered_json s;
            s["time"] = now;
            s["suppressed"] = suppressed_;
            write_line(s.dump() + "\n");
            suppressed_ = 0;
        }
        write_line(audit_line(d, now));
    }

    bool take_token() {
        const auto now = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(now - refilled_).count();
        refilled_ = now;
        tokens_ = std::min(kAuditLinesPerSecond, tokens_ + elapsed * kAuditLinesPerSecond);
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

    // One write per line on an O_APPEND fd, under the lock.
    void write_line(const std::string& line) {
        if (written_ + static_cast<off_t>(line.size()) > max_size_ && written_ > 0) rotate();
        write_all_raw(fd_.get(), line.data(), line.size());
        written_ += static_cast<off_t>(line.size());
    }

    // Never throws (it runs on the supervisor's threads): if the new file cannot be made,
    // the records go on to the renamed one.
    void rotate() {
        const std::string older = path_ + ".1";
        if (::rename(path_.c_str(), older.c_str()) != 0) return;
        UniqueFd fresh(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fresh) return;
        fd_ = std::move(fresh);
        written_ = 0;
    }

    std::string path_;
    egress::Audit mode_;
    off_t max_size_;
    off_t written_ = 0;
    UniqueFd fd_;
    std::mutex mu_;
    double tokens_ = kAuditLinesPerSecond;
    std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
    std::uint64_t suppressed_ = 0;
};

// The cap the runtime passed on, else the default; a malformed value is the default.
off_t audit_max_size() {
    const char* v = std::getenv(kAuditMaxSizeEnv);
    if (!v || !*v) return kDefaultAuditMaxSize;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    return (*end == '\0' && n >= 4096 && n <= (1ULL << 40)) ? static_cast<off_t>(n) : kDefaultAuditMaxSize;
}

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

// The kernel layer's audit events: drained from its ring buffer into the audit log by a
// thread of their own (the programs wake it when the buffer was empty; a full buffer drops
// events, which the kernel counts as lost).
class KernelEventPump {
public:
    KernelEventPump(egress::KernelLayer& layer, AuditFn audit) : layer_(layer), audit_(std::move(audit)) {
        thread_ = std::thread([this] { pump(); });
    }
    ~KernelEventPump() {
        done_ = true;
        thread_.join();
    }
    KernelEventPump(const KernelEventPump&) = delete;
    KernelEventPump& operator=(const KernelEventPump&) = delete;

private:
    void pump() {
        const std::function<void(const egress::KernelEvent&)> record = [this](const egress::KernelEvent& e) {
            Decision d;
            d.pid = e.pid;
            d.syscall = egress::to_string(e.hook);
            d.protocol = e.protocol;
            d.destination = e.destination.to_string();
            d.port = e.port;
            d.allowed = e.allowed;
            d.kernel = true;
            audit_(d);
        };
        while (!done_.load()) {
            pollfd p{layer_.events_fd(), POLLIN, 0};
            ::poll(&p, 1, 200);
            try {
                layer_.drain_events(record);
            } catch (const std::exception& e) {
                log::warn(std::string("egress shim: kernel events: ") + e.what());
                return;
            }
        }
    }

    egress::KernelLayer& layer_;
    AuditFn audit_;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

// Learning mode: every allowed destination, once, in learned.json (written as it grows, so
// that `egress ID --suggest` has it whether or not the shim still runs). Called from the
// supervisor's and the kernel event pump's threads.
class LearnedRecorder {
public:
    explicit LearnedRecorder(std::string path) : path_(std::move(path)) { save(); }
    void record(const Decision& d) {
        if (!d.allowed) return;
        const auto ip = egress::IpAddr::parse(d.destination);
        if (!ip) return;
        std::lock_guard lock(mu_);
        const std::uint64_t dropped = set_.dropped();
        const bool added = set_.add({d.protocol, *ip, d.protocol == egress::Protocol::Icmp ? std::uint16_t{0} : d.port});
        // past the cap, the count of what was not kept is saved now and then
        if (added || (set_.dropped() != dropped && (set_.dropped() & (set_.dropped() - 1)) == 0)) save();
    }

private:
    void save() {
        try {
            fs::write_file_atomic(path_, set_.to_json().dump(), 0600);
        } catch (const Error& e) {
            log::warn(std::string("egress shim: learned destinations: ") + e.what());
        }
    }
    std::string path_;
    std::mutex mu_;
    egress::LearnedSet set_;
};

// What the control socket does to the Supervisor and the kernel layer.
class ShimService {
public:
    ShimService(Supervisor& sup, std::string state_dir, Supervisor::PolicyPtr policy, egress::Audit audit,
                AuditFn audit_fn)
        : sup_(sup), state_dir_(std::move(state_dir)), policy_(std::move(policy)), audit_(audit),
          audit_fn_(std::move(audit_fn)) {
        if (policy_->refresh && policy_->mode == egress::Mode::Allow && !policy_->hosts.empty()) {
            names_.emplace(*policy_->refresh);
            names_->track(policy_->hosts, NameSchedule::Clock::now());
            refresher_ = std::thread([this] { refresh_names(); });
        }
    }
    ~ShimService() {
        {
            std::lock_guard change_lock(change_mu_);
            stop_refresh_ = true;
        }
        wake_refresh_.notify_all();
        if (refresher_.joinable()) refresher_.join();
        std::lock_guard lock(mu_);
        pump_.reset();  // before the layer it reads
    }

    json handle(const json& request, std::vector<UniqueFd> fds) {
        auto op = request.find("op");
        if (op == request.end() || !op->is_string()) return refuse("request without \"op\"");
        if (*op == "register") return add(request, std::move(fds));
        if (*op == "status") return status();
        if (*op == "update") return update(request, std::move(fds));
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
        json names = nullptr;  // before mu_: change_mu_ is taken first where both are
        {
            std::lock_guard change_lock(change_mu_);
            if (names_) names = names_->status(NameSchedule::Clock::now());
        }
        const Counters c = sup_.counters();
        json counters = {{"allowed", c.allowed}, {"denied", c.denied}, {"continued", c.continued},
                         {"errors", c.errors},   {"busy", c.busy}};
        std::lock_guard lock(mu_);
        if (kernel_) {
            try {
                counters["kernel"] = kernel_counters(kernel_->counters());
            } catch (const Error& e) {
                counters["kernel"] = {{"error", e.what()}};
            }
        }
        return {{"ok", true},
                {"names", names},
                {"pid", ::getpid()},
                {"listeners", sup_.listener_count()},
                {"audit", egress::to_string(audit_)},
                {"enforcement", kernel_ ? "kernel" : "supervisor"},
                {"counters", counters}};
    }

private:
    static json refuse(const std::string& why) { return {{"ok", false}, {"error", why}}; }

    static json pair(const egress::KernelCounters::Pair& p) { return {{"allowed", p.allowed}, {"denied", p.denied}}; }

    static json kernel_counters(const egress::KernelCounters& k) {
        json rules = json::array();
        for (const auto& r : k.rules) rules.push_back(pair(r));
        return {{"allowed", k.allowed()},
                {"denied", k.denied()},
                {"no_rule", pair(k.no_rule)},
                {"loopback", pair(k.loopback)},
                {"open", pair(k.open)},
                {"no_address", k.no_address.allowed},
                {"refused_sockets", k.refused_sockets},
                {"routed_packets", k.routed_packets},
                {"lost_events", k.lost_events},
                {"rules", rules}};
    }

    // A listener to serve. The first one of a container whose kernel layer create attached
    // comes with that layer's maps ("kernel_layer": its id; the listener's fd first, then
    // the maps): from then on the shim owns them, and answers allowed connects CONTINUE.
    json add(const json& request, std::vector<UniqueFd> fds) {
        if (fds.empty() || !fds[0]) return refuse("register: no listener fd attached");
        UniqueFd fd = std::move(fds[0]);
        if (!is_seccomp_listener(fd.get())) return refuse("register: the fd is not a seccomp listener");
        if (const auto init = request.find("init_pid"); init != request.end() && init->is_number_integer()) {
            // Alive and the container's: create registers while init waits before execve.
            const pid_t pid = init->get<pid_t>();
            std::lock_guard change_lock(change_mu_);
            if (UniqueFd pidfd = proc::open_pidfd(pid); pidfd && !init_) init_.emplace(Init{pid, std::move(pidfd)});
        }
        std::lock_guard lock(mu_);
        if (closing_) return refuse("the egress shim is stopping");
        if (const auto k = request.find("kernel_layer"); k != request.end()) {
            if (kernel_) return refuse("register: the kernel layer is handed over already");
            if (sup_.listener_count() > 0) return refuse("register: the kernel layer must come with the first listener");
            if (!k->is_object() || !k->contains("id") || !k->at("id").is_number_unsigned())
                return refuse("register: \"kernel_layer\" needs an \"id\"");
            std::vector<UniqueFd> maps(std::make_move_iterator(fds.begin() + 1), std::make_move_iterator(fds.end()));
            try {
                kernel_.emplace(egress::KernelLayer::adopt(*policy_, k->at("id").get<std::uint64_t>(), std::move(maps)));
            } catch (const Error& e) {
                return refuse(e.what());
            }
            sup_.set_kernel_layer();
            if (audit_fn_) pump_.emplace(*kernel_, audit_fn_);
        }
        sup_.add_listener(std::move(fd));
        return {{"ok", true}, {"listeners", sup_.listener_count()}};
    }

    static std::optional<std::vector<std::string>> strings_of(const json& request, const char* key) {
        std::vector<std::string> out;
        const auto it = request.find(key);
        if (it == request.end()) return out;
        if (!it->is_array()) return std::nullopt;
        for (const auto& v : *it) {
            if (!v.is_string()) return std::nullopt;
            out.push_back(v.get<std::string>());
        }
        return out;
    }

    // A live change (`egress ID --allow/--revoke`): {"op": "update", "allow": [rules],
    // "revoke": [rules], "pid": init's pid} with a pidfd of init attached (for /etc/hosts).
    // One change at a time, each on top of the last (apply_policy).
    json update(const json& request, std::vector<UniqueFd> fds) {
        const auto allow = strings_of(request, "allow");
        const auto revoke = strings_of(request, "revoke");
        if (!allow || !revoke) return refuse("update: \"allow\" and \"revoke\" must be lists of rules");
        std::lock_guard change_lock(change_mu_);
        if (sup_.listener_count() == 0) return refuse("the container is not running");
        egress::ResolvedPolicy next, narrowed;
        try {
            egress::SystemResolver resolver;
            const egress::PolicyChange change = egress::parse_change(*allow, *revoke);
            next = egress::apply_change(*policy_, change, resolver);
            // what both the current policy and the next one allow: the current one less the revokes
            narrowed = egress::apply_change(*policy_, {{}, change.revoke}, resolver);
        } catch (const Error& e) {
            return refuse(e.what());
        }
        json reply = {{"ok", true}, {"changed", next != *policy_}};
        if (next == *policy_) return reply;
        if (!fds.empty() && fds[0] && !init_) {
            const auto pid = request.find("pid");
            if (pid != request.end() && pid->is_number_integer()) init_.emplace(Init{pid->get<pid_t>(), std::move(fds[0])});
        }
        try {
            if (const auto hosts = apply_policy(std::move(next), std::move(narrowed))) reply["hosts"] = *hosts;
        } catch (const Error& e) {
            return refuse(std::string(e.what()) + " (the policy is unchanged)");
        }
        return reply;
    }

    // The policy becomes `next` (a live change or a name refresh; change_mu_ held).
    // `narrowed` allows only what both the current policy and `next` allow. The two layers
    // cannot switch at one instant, so: the shim's verdicts narrow first, then the kernel's
    // maps switch to `next`, then the shim's verdicts too. Every connect is judged by both,
    // so in between it is allowed only when both the old and the new policy allow it: each
    // call gets the old policy's verdict or the new one's. And the kernel never refuses
    // what the shim let through, so every refusal is the shim's (ECONNREFUSED, audited with
    // the host name), never the kernel program's EPERM. Then egress.json (exec'd processes,
    // `egress ID`, the record of the change), the names' schedule and the container's
    // /etc/hosts. Throws sandlock::Error, the policy unchanged, when the kernel's maps
    // cannot switch. Returns what became of /etc/hosts when the names changed.
    std::optional<std::string> apply_policy(egress::ResolvedPolicy next, std::optional<egress::ResolvedPolicy> narrowed) {
        {
            std::lock_guard lock(mu_);
            if (kernel_) {
                // delete's record of the version about to enter the kernel's tables,
                // before it does (a shim killed in between must not leave it behind)
                record_kernel_version(state_dir_, kernel_->version() + 1);
                if (narrowed && *narrowed != *policy_)
                    sup_.set_policy(std::make_shared<const egress::ResolvedPolicy>(std::move(*narrowed)));
                try {
                    kernel_->replace(next);
                } catch (const Error&) {
                    sup_.set_policy(policy_);
                    throw;
                }
            }
        }
        const bool names_changed = next.hosts != policy_->hosts;
        policy_ = std::make_shared<const egress::ResolvedPolicy>(std::move(next));
        sup_.set_policy(policy_);
        ++version_;
        try {
            fs::write_file_atomic(policy_path(state_dir_), egress::serialize(*policy_), 0600);
        } catch (const Error& e) {
            log::warn(std::string("egress shim: keep the changed policy: ") + e.what());
        }
        if (names_) names_->track(policy_->hosts, NameSchedule::Clock::now());
        wake_refresh_.notify_all();
        if (!names_changed) return std::nullopt;
        return update_hosts();
    }

    // resolve.refresh: the names that are due are asked of DNS (without the lock: a slow
    // server must not hold up live changes), and when what they admit changed (a new
    // address, or a retired one whose grace ended) the policy changes as a live change does.
    void refresh_names() {
        using Clock = NameSchedule::Clock;
        std::unique_lock lock(change_mu_);
        while (!stop_refresh_) {
            const auto next = names_->next_event();
            if (next == Clock::time_point::max())
                wake_refresh_.wait(lock);
            else
                wake_refresh_.wait_until(lock, next);
            if (stop_refresh_) break;
            // Addresses whose grace ended: a narrowing on its own (the shim first).
            if (names_->expire(Clock::now())) apply_refreshed(true);
            bool changed = false;
            const auto due = names_->due(Clock::now());
            if (!due.empty()) {
                lock.unlock();
                std::vector<std::pair<std::string, std::optional<egress::DnsAnswer>>> answers;
                for (const auto& name : due) {
                    try {
                        answers.emplace_back(name, egress::query_addresses(name));
                    } catch (const Error& e) {
                        log::warn(std::string("egress shim: refresh ") + name + ": " + e.what());
                        answers.emplace_back(name, std::nullopt);
                    }
                }
                lock.lock();
                if (stop_refresh_) break;
                const auto now = Clock::now();
                for (const auto& [name, answer] : answers) {
                    if (answer) changed |= names_->answer(name, *answer, now);
                    else names_->failed(name, now);
                }
            }
            // New addresses: a widening (an address that left the answer is in its grace).
            if (changed) apply_refreshed(false);
        }
    }

    // The schedule's addresses become the policy's. narrowing: only addresses went (the
    // new policy is what both allow); else only addresses came (the current one is).
    void apply_refreshed(bool narrowing) {
        try {
            egress::ResolvedPolicy next = egress::with_names(*policy_, names_->hosts());
            std::optional<egress::ResolvedPolicy> narrowed = narrowing ? next : *policy_;
            apply_policy(std::move(next), std::move(narrowed));
        } catch (const Error& e) {
            log::warn(std::string("egress shim: refresh: ") + e.what());
        }
    }

    // "updated", or why the container's /etc/hosts could not follow (the policy holds).
    std::string update_hosts() {
        if (!init_) return "not updated: the shim does not know the container's init";
        try {
            std::string written = update_container_hosts(state_dir_, version_, init_->pidfd.get(), init_->pid, *policy_);
            // the file it replaced is unmounted: its copy goes too (create's own stays)
            if (!last_hosts_file_.empty()) ::unlink(last_hosts_file_.c_str());
            last_hosts_file_ = std::move(written);
            return "updated";
        } catch (const Error& e) {
            log::warn(std::string("egress shim: ") + e.what());
            return std::string("not updated: ") + e.what();
        }
    }

    struct Init {
        pid_t pid;
        UniqueFd pidfd;
    };

    Supervisor& sup_;
    const std::string state_dir_;
    // Guarded by change_mu_ (adopt reads policy_ before any change can be made). Taken
    // before mu_ when both are.
    mutable std::mutex change_mu_;
    Supervisor::PolicyPtr policy_;  // the one the Supervisor judges by
    unsigned version_ = 0;
    std::optional<Init> init_;  // for /etc/hosts; set at registration (create) or by a change
    std::string last_hosts_file_;  // the hosts.N mounted last
    std::optional<NameSchedule> names_;  // with resolve.refresh
    std::condition_variable wake_refresh_;
    bool stop_refresh_ = false;
    std::thread refresher_;
    egress::Audit audit_;
    AuditFn audit_fn_;
    mutable std::mutex mu_;
    bool closing_ = false;
    std::optional<egress::KernelLayer> kernel_;
    std::optional<KernelEventPump> pump_;
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

UniqueFd take_first_listener() {
    if (!is_seccomp_listener(kListenerFd)) throw Error("fd 3 is not a seccomp listener");
    if (::fcntl(kListenerFd, F_SETFD, FD_CLOEXEC) != 0) throw_errno("fcntl fd 3");
    return UniqueFd(kListenerFd);
}

egress::Audit audit_mode_for(const egress::ResolvedPolicy& policy) {
    if (policy.learn) return egress::Audit::All;  // learning mode records every decision
    const char* v = std::getenv(kAuditEnv);
    if (!v) return policy.audit;
    auto mode = parse_audit(v);
    if (!mode) throw Error(std::string("unknown audit mode \"") + v + "\"");
    return *mode;
}

}  // namespace

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
    if (d.kernel) j["layer"] = "kernel";
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace {

// First thing: spawn_shim execs us with every signal blocked, and an ignored one stays
// ignored across execve. The ones the shim acts on get their default action back (an
// ignored SIGTERM would never reach the control thread's signalfd); then nothing is
// blocked, as for any new process, until prepare_signals.
void restore_signal_state() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Before anything else: waits for create's byte on the proceed channel (it comes once
// this process is in its own cgroup); exits quietly at EOF (create gave up).
void hold_until_released() {
    const char* v = std::getenv(kProceedFdEnv);
    if (!v) return;
    const int fd = std::atoi(v);
    char byte = 0;
    ssize_t n;
    while ((n = ::read(fd, &byte, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) ::_exit(0);
    ::close(fd);
    ::unsetenv(kProceedFdEnv);
}

}  // namespace

int run_shim_main(const std::string& state_dir_arg) {
    restore_signal_state();
    hold_until_released();
    // One malloc arena for all its threads: glibc gives each new thread its own (a 64 MiB
    // reservation and the pages it touches), page faults and resident memory a shim that
    // makes few allocations, on a rarely contended lock, does not need.
    ::mallopt(M_ARENA_MAX, 1);
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
        const auto policy = std::make_shared<const egress::ResolvedPolicy>(
            egress::deserialize_policy(fs::read_file(policy_path(state_dir))));
        const egress::Audit audit = audit_mode_for(*policy);
        AuditLog audit_log(audit_log_path(state_dir), audit, audit_max_size());
        AuditFn audit_fn = audit_log.fn();
        std::optional<LearnedRecorder> learned;
        if (policy->learn) {
            learned.emplace(learned_path(state_dir));
            audit_fn = [&learned, log_fn = std::move(audit_fn)](const Decision& d) {
                learned->record(d);
                if (log_fn) log_fn(d);
            };
        }
        Supervisor supervisor(policy, audit_fn, audit_records(audit, true));
        // Until `create` has registered the first listener: if it goes away first (its
        // end of the pipe closes with no listener registered), nobody will, and the shim ends.
        if (first)
            supervisor.add_listener(std::move(first));
        else
            supervisor.await_first_listener(std::move(creator));
        ShimService service(supervisor, state_dir, policy, audit, audit_fn);
        ControlServer server(
            socket_path(state_dir),
            [&service](const json& request, std::vector<UniqueFd> fds) { return service.handle(request, std::move(fds)); },
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
