// The egress shim process and its control socket. The shim is the real runtime binary
// (env SANDLOCK_RUNC, default build/sandlock-runc relative to the repo root where make
// runs); its tests are skipped with a message when it is missing or we are not root.
// Listeners come from forked children that install a NOTIFY-on-connect filter; the test
// takes each listener with pidfd_getfd, as the runtime does.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>

#include "runtime/egress/policy.hpp"
#include "runtime/linux/seccomp.hpp"
#include "runtime/shim/control.hpp"
#include "runtime/util/unix_socket.hpp"
#include "runtime/shim/client.hpp"
#include "runtime/shim/process.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/scope.hpp"

namespace shim_process {
using namespace sandlock;
using json = nlohmann::json;

const char* const kNotRunning = "egress shim is not running; refusing to exec without egress supervision";

std::string runtime_binary() {
    const char* env = std::getenv("SANDLOCK_RUNC");
    return fs::absolute(env && *env ? env : "build/sandlock-runc");
}

boost::test_tools::assertion_result shim_runnable(boost::unit_test::test_unit_id) {
    boost::test_tools::assertion_result r(true);
    if (::geteuid() != 0) {
        r = false;
        r.message() << "shim tests need root";
    } else if (::access(runtime_binary().c_str(), X_OK) != 0) {
        r = false;
        r.message() << "the sandlock-runc binary is not at " << runtime_binary()
                    << " (build it with make, or set SANDLOCK_RUNC)";
    }
    return r;
}

boost::test_tools::assertion_result is_root(boost::unit_test::test_unit_id) {
    boost::test_tools::assertion_result r(::geteuid() == 0);
    if (!r) r.message() << "needs root";
    return r;
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/shim-test-XXXXXX";
        if (!::mkdtemp(tmpl)) throw_errno("mkdtemp");
        path = tmpl;
    }
    ~TempDir() {
        try {
            shim::stop_shim(path);
        } catch (...) {
        }
        std::filesystem::remove_all(path);
    }
};

// Allow mode without rules and loopback=deny: every destination is denied.
egress::ResolvedPolicy deny_everything(egress::Audit audit) {
    egress::ResolvedPolicy p;
    p.mode = egress::Mode::Allow;
    p.loopback = egress::Loopback::Deny;
    p.audit = audit;
    return p;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// True once pid has exited (a pidfd turns readable), within timeout_ms.
bool exits_within(pid_t pid, int timeout_ms) {
    UniqueFd pidfd(pidfd_open(pid));
    if (!pidfd) return true;
    pollfd p{pidfd.get(), POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

std::string fd_target(pid_t pid, const std::string& fd) {
    char buf[512];
    const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + fd;
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::map<int, std::string> open_fds(pid_t pid) {
    std::map<int, std::string> fds;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        fds[std::stoi(e.path().filename())] = fd_target(pid, e.path().filename());
    return fds;
}

void write_all(int fd, const void* data, size_t len) {
    if (::write(fd, data, len) != static_cast<ssize_t>(len)) throw_errno("write");
}

void read_all(int fd, void* data, size_t len) {
    if (::read(fd, data, len) != static_cast<ssize_t>(len)) throw Error("short read from child");
}

// A forked child confined by a NOTIFY-on-connect filter. It obeys one-byte commands:
// 'c' + port: connect to 127.0.0.1:port and report errno (0 on success); 'k': close
// its copy of the listener; 'q': exit 0.
class FilteredChild {
public:
    FilteredChild() {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0) != 0)
            throw Error("seccomp rule");
        const auto prog = os::export_bpf(ctx);
        seccomp_release(ctx);
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
        UniqueFd mine(sv[0]), theirs(sv[1]);
        pid_ = ::fork();
        if (pid_ < 0) throw_errno("fork");
        if (pid_ == 0) {
            mine.reset();
            ::_exit(child_main(prog, theirs.get()));
        }
        control_ = std::move(mine);
        int fd_number = -1;
        read_all(control_.get(), &fd_number, sizeof fd_number);
        if (fd_number < 0) throw Error("child could not install its filter");
        UniqueFd pidfd(pidfd_open(pid_));
        if (!pidfd) throw_errno("pidfd_open");
        listener_.reset(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), fd_number, 0)));
        if (!listener_) throw_errno("pidfd_getfd");
        // The confined process keeps no copy (else a dead shim would not fail it closed).
        char cmd = 'k';
        write_all(control_.get(), &cmd, 1);
    }
    ~FilteredChild() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    pid_t pid() const { return pid_; }
    UniqueFd take_listener() { return std::move(listener_); }

    int connect_to(uint16_t port) {
        char cmd = 'c';
        write_all(control_.get(), &cmd, 1);
        write_all(control_.get(), &port, sizeof port);
        int err = -1;
        read_all(control_.get(), &err, sizeof err);
        return err;
    }
    int finish() {
        char cmd = 'q';
        write_all(control_.get(), &cmd, 1);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    static int child_main(const std::vector<sock_filter>& prog, int sock) {
        int fd_number = -1;
        try {
            if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 97;
            fd_number = os::install_bpf(prog, SECCOMP_FILTER_FLAG_NEW_LISTENER).release();
        } catch (...) {
        }
        if (::write(sock, &fd_number, sizeof fd_number) != sizeof fd_number) return 98;
        for (;;) {
            char cmd = 0;
            if (::read(sock, &cmd, 1) != 1 || cmd == 'q') return 0;
            if (cmd == 'k') {
                ::close(fd_number);
                continue;
            }
            uint16_t port = 0;
            if (::read(sock, &port, sizeof port) != sizeof port) return 96;
            int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            sin.sin_port = htons(port);
            sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            int err = ::connect(s, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0 ? 0 : errno;
            ::close(s);
            if (::write(sock, &err, sizeof err) != sizeof err) return 95;
        }
    }

    pid_t pid_ = -1;
    UniqueFd control_;
    UniqueFd listener_;
};

// A TCP listener on 127.0.0.1 (an allowed connect would succeed against it).
struct LoopbackServer {
    UniqueFd sock;
    uint16_t port = 0;
    LoopbackServer() {
        sock.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) throw_errno("bind");
        if (::listen(sock.get(), 8) != 0) throw_errno("listen");
        socklen_t len = sizeof sin;
        ::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&sin), &len);
        port = ntohs(sin.sin_port);
    }
};

std::string register_error(const std::string& dir, int fd) {
    try {
        shim::register_listener(dir, fd);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// A shim serving dir with the first listener of `first`.
pid_t start_for(const std::string& dir, FilteredChild& first, const std::string& audit = "deny") {
    shim::set_shim_binary(runtime_binary());
    shim::write_policy(dir, deny_everything(egress::Audit::Off));
    return shim::start_shim(dir, first.take_listener(), audit);
}

}  // namespace shim_process

BOOST_AUTO_TEST_SUITE(shim_process)

BOOST_AUTO_TEST_CASE(audit_line_format) {
    shim::Decision d{4242, "sendto", egress::Protocol::Udp, "10.1.2.3", 53, false};
    BOOST_CHECK_EQUAL(shim::audit_line(d, "2024-01-02T03:04:05.000000006Z"),
                      "{\"time\":\"2024-01-02T03:04:05.000000006Z\",\"pid\":4242,\"syscall\":\"sendto\","
                      "\"protocol\":\"udp\",\"destination\":\"10.1.2.3\",\"port\":53,\"verdict\":\"deny\"}\n");
    d.allowed = true;
    BOOST_CHECK(shim::audit_line(d, "t").find("\"verdict\":\"allow\"") != std::string::npos);
    BOOST_CHECK(!shim::audit_records(egress::Audit::Off, false));
    BOOST_CHECK(shim::audit_records(egress::Audit::Deny, false));
    BOOST_CHECK(!shim::audit_records(egress::Audit::Deny, true));
    BOOST_CHECK(shim::audit_records(egress::Audit::All, true));
}

BOOST_AUTO_TEST_CASE(control_server_long_path_and_errors) {
    TempDir tmp;
    // Longer than sun_path (108): reached through /proc/self/fd/N/.
    const std::string dir = tmp.path + "/" + std::string(100, 'd');
    fs::mkdir_p(dir);
    const std::string sock = dir + "/shim.sock";
    auto server = std::make_unique<shim::ControlServer>(
        sock,
        [](const json& req, std::vector<UniqueFd> fds) -> json {
            if (req.at("op") == "boom") throw Error("boom failed");
            return {{"ok", true}, {"echo", req.at("op")}, {"fd", !fds.empty() && fds[0].valid()}, {"fds", fds.size()}};
        },
        nullptr);
    std::thread t([&] { server->serve(); });
    struct stat st {};
    BOOST_CHECK_EQUAL(::stat(sock.c_str(), &st), 0);
    BOOST_CHECK(S_ISSOCK(st.st_mode));
    BOOST_CHECK_EQUAL(st.st_mode & 07777, 0600u);
    json r = shim::control_request(sock, {{"op", "hello"}});
    BOOST_CHECK_EQUAL(r.dump(), R"({"echo":"hello","fd":false,"fds":0,"ok":true})");
    int p[2];
    BOOST_REQUIRE_EQUAL(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd a(p[0]), b(p[1]);
    r = shim::control_request(sock, {{"op", "x"}}, a.get());
    BOOST_CHECK_EQUAL(r.at("fd"), true);
    r = shim::control_request(sock, {{"op", "x"}}, std::vector<int>{a.get(), b.get(), a.get()});
    BOOST_CHECK_EQUAL(r.at("fds"), 3);
    // More than a message may carry: refused by the client, nothing sent.
    BOOST_CHECK_THROW(shim::control_request(sock, {{"op", "x"}}, std::vector<int>(unix_socket::kMaxFds + 1, a.get())), Error);
    r = shim::control_request(sock, {{"op", "boom"}});
    BOOST_CHECK_EQUAL(r.dump(), R"({"error":"boom failed","ok":false})");
    server->shutdown();
    t.join();
    server.reset();  // unlinks the socket
    BOOST_CHECK(!fs::exists(sock));
    BOOST_CHECK_THROW(shim::control_request(sock, {{"op", "hello"}}), shim::ShimUnavailable);
}

BOOST_AUTO_TEST_CASE(lifecycle, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    const std::string& dir = tmp.path;
    // Not close-on-exec: the shim must close it anyway.
    int leak[2];
    BOOST_REQUIRE_EQUAL(::pipe(leak), 0);
    UniqueFd leak_r(leak[0]), leak_w(leak[1]);
    const std::string leaked = fd_target(::getpid(), std::to_string(leak[0]));

    LoopbackServer server;
    FilteredChild first;
    shim::set_shim_binary(runtime_binary());
    shim::write_policy(dir, deny_everything(egress::Audit::Off));
    const pid_t pid = shim::start_shim(dir, first.take_listener(), "deny");  // overrides Off
    BOOST_REQUIRE_GT(pid, 0);

    // Files: socket 0600, pid file naming the live shim.
    struct stat st {};
    BOOST_REQUIRE_EQUAL(::stat((dir + "/shim.sock").c_str(), &st), 0);
    BOOST_CHECK(S_ISSOCK(st.st_mode));
    BOOST_CHECK_EQUAL(st.st_mode & 07777, 0600u);
    BOOST_CHECK_EQUAL(fs::read_file(dir + "/shim.pid"), std::to_string(pid));
    BOOST_CHECK_EQUAL(::kill(pid, 0), 0);

    // Detached: own session, stdio on /dev/null, nothing inherited. Our child (spawned
    // without a copy of our memory) until we exit, as runc's init is runc create's.
    BOOST_CHECK_NE(::getsid(pid), ::getsid(0));
    BOOST_CHECK_EQUAL(::waitpid(pid, nullptr, WNOHANG), 0);  // ours, running
    const auto fds = open_fds(pid);
    for (int i : {0, 1, 2}) BOOST_CHECK_EQUAL(fds.count(i) ? fds.at(i) : "", "/dev/null");
    BOOST_CHECK_EQUAL(fds.count(3) ? fds.at(3) : "", "anon_inode:seccomp notify");
    for (const auto& [fd, target] : fds) {
        BOOST_TEST_CONTEXT("shim fd " << fd << " -> " << target) {
            BOOST_CHECK_NE(target, leaked);
            const bool expected = target == "/dev/null" || target.rfind("anon_inode:", 0) == 0 ||
                                  target.rfind("socket:", 0) == 0 || target.rfind(dir + "/", 0) == 0;
            BOOST_CHECK(expected);
        }
    }
    BOOST_CHECK(fs::read_file("/proc/" + std::to_string(pid) + "/cmdline").find(std::string("shim\0", 5) + dir) !=
                std::string::npos);

    // Status.
    json s = shim::shim_status(dir);
    BOOST_CHECK_EQUAL(s.at("shim").at("running"), true);
    BOOST_CHECK_EQUAL(s.at("shim").at("pid"), pid);
    BOOST_CHECK_EQUAL(s.at("shim").at("listeners"), 1);
    BOOST_CHECK_EQUAL(s.at("audit"), "deny");
    BOOST_CHECK_EQUAL(s.at("policy").at("mode"), "allow");
    BOOST_CHECK_EQUAL(s.at("audit_log"), dir + "/audit.log");
    BOOST_CHECK_EQUAL(s.at("counters").at("denied"), 0);

    // A denied connect is refused, counted and audited.
    BOOST_CHECK_EQUAL(first.connect_to(server.port), ECONNREFUSED);
    s = shim::shim_status(dir);
    BOOST_CHECK_EQUAL(s.at("counters").at("denied"), 1);
    const std::string audit = fs::read_file(dir + "/audit.log");
    BOOST_REQUIRE(!audit.empty());
    json line = json::parse(audit.substr(0, audit.find('\n')));
    BOOST_CHECK_EQUAL(line.at("pid"), first.pid());
    BOOST_CHECK_EQUAL(line.at("syscall"), "connect");
    BOOST_CHECK_EQUAL(line.at("protocol"), "tcp");
    BOOST_CHECK_EQUAL(line.at("destination"), "127.0.0.1");
    BOOST_CHECK_EQUAL(line.at("port"), server.port);
    BOOST_CHECK_EQUAL(line.at("verdict"), "deny");
    BOOST_CHECK_EQUAL(line.at("time").get<std::string>().back(), 'Z');

    // A second listener, as exec registers it.
    FilteredChild second;
    {
        UniqueFd l2 = second.take_listener();
        shim::register_listener(dir, l2.get());
    }
    BOOST_CHECK_EQUAL(shim::shim_status(dir).at("shim").at("listeners"), 2);
    BOOST_CHECK_EQUAL(second.connect_to(server.port), ECONNREFUSED);

    // The shim outlives the first child and exits with the last one.
    BOOST_CHECK_EQUAL(first.finish(), 0);
    BOOST_CHECK(!exits_within(pid, 300));
    BOOST_CHECK_EQUAL(shim::shim_status(dir).at("shim").at("running"), true);
    BOOST_CHECK_EQUAL(second.finish(), 0);
    BOOST_CHECK(exits_within(pid, 5000));
    BOOST_CHECK(!fs::exists(dir + "/shim.sock"));
    BOOST_CHECK(!fs::exists(dir + "/shim.pid"));
    BOOST_CHECK_EQUAL(shim::shim_status(dir).at("shim").at("running"), false);

    // Gone: exec must refuse.
    FilteredChild late;
    UniqueFd l3 = late.take_listener();
    BOOST_CHECK_EQUAL(register_error(dir, l3.get()), kNotRunning);
}

BOOST_AUTO_TEST_CASE(stop_shim_kills_it, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    FilteredChild child;
    const pid_t pid = start_for(tmp.path, child);
    BOOST_REQUIRE_EQUAL(::kill(pid, 0), 0);
    shim::stop_shim(tmp.path);
    BOOST_CHECK(exits_within(pid, 1000));
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.sock"));
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.pid"));
    UniqueFd l2 = FilteredChild().take_listener();
    BOOST_CHECK_EQUAL(register_error(tmp.path, l2.get()), kNotRunning);
    // Fail closed: the confined child's connect now fails (ENOSYS from the kernel).
    BOOST_CHECK_EQUAL(child.connect_to(1), ENOSYS);
    BOOST_CHECK_NO_THROW(shim::stop_shim(tmp.path));  // nothing left to stop
}

// create's early start: the shim runs before there is a listener, gets the first one
// over shim.sock, and supervises it like a shim started with it.
BOOST_AUTO_TEST_CASE(launched_early_then_given_its_first_listener, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    LoopbackServer server;
    FilteredChild child;
    shim::set_shim_binary(runtime_binary());
    shim::PendingShim pending = shim::launch_shim(tmp.path, deny_everything(egress::Audit::Off));
    const proc::Identity shim_id = shim::finish_shim_launch(pending, child.take_listener());
    const pid_t pid = shim_id.pid;
    BOOST_REQUIRE_GT(pid, 0);
    BOOST_CHECK_EQUAL(shim_id.start_time, proc::start_time(pid).value_or(0));
    BOOST_CHECK(!pending.creator);
    json s = shim::shim_status(tmp.path);
    BOOST_CHECK_EQUAL(s.at("shim").at("pid"), pid);
    BOOST_CHECK_EQUAL(s.at("shim").at("listeners"), 1);
    BOOST_CHECK_EQUAL(child.connect_to(server.port), ECONNREFUSED);
    BOOST_CHECK_EQUAL(shim::shim_status(tmp.path).at("counters").at("denied"), 1);
    shim::stop_shim(tmp.path, shim_id);
    BOOST_CHECK(exits_within(pid, 1000));
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.pid"));
    // Idempotent: the same identity again, the shim gone and its files too.
    BOOST_CHECK_NO_THROW(shim::stop_shim(tmp.path, shim_id));
}

// create launches the shim held: launch_shim returns once the shim has called execve (it
// was spawned with no copy of our memory, so there is no window in which it runs ours),
// and the shim does nothing (no socket, no pid file) until it is released; closed
// instead, it ends without having done anything.
BOOST_AUTO_TEST_CASE(a_held_shim_does_nothing_until_released, *boost::unit_test::precondition(shim_runnable)) {
    shim::set_shim_binary(runtime_binary());
    char exe[PATH_MAX] = {};
    const std::string real = std::filesystem::canonical(runtime_binary()).string();
    {
        TempDir tmp;
        shim::PendingShim pending = shim::launch_shim(tmp.path, deny_everything(egress::Audit::Off), true);
        const std::string link = "/proc/" + std::to_string(pending.pid) + "/exe";
        BOOST_REQUIRE_GT(::readlink(link.c_str(), exe, sizeof exe - 1), 0);
        BOOST_CHECK_EQUAL(std::string(exe), real);
        ::usleep(200'000);
        BOOST_CHECK(!fs::exists(tmp.path + "/shim.sock"));
        BOOST_CHECK(!fs::exists(tmp.path + "/shim.pid"));
        BOOST_CHECK(proc::running(pending.pid));
        LoopbackServer server;
        FilteredChild child;
        shim::release_shim(pending);
        const proc::Identity id = shim::finish_shim_launch(pending, child.take_listener());
        BOOST_CHECK_EQUAL(child.connect_to(server.port), ECONNREFUSED);
        shim::stop_shim(tmp.path, id);
    }
    {
        TempDir tmp;
        shim::PendingShim pending = shim::launch_shim(tmp.path, deny_everything(egress::Audit::Off), true);
        const pid_t pid = pending.pid;
        shim::stop_pending_shim(pending);
        BOOST_CHECK(!proc::running(pid));
        BOOST_CHECK(!fs::exists(tmp.path + "/shim.sock"));
        BOOST_CHECK(!fs::exists(tmp.path + "/shim.log"));
    }
}

namespace {
std::uint64_t shim_signal_set(pid_t pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1), nullptr, 16);
    BOOST_FAIL("no " + field + " in /proc/" + std::to_string(pid) + "/status");
    return 0;
}
std::uint64_t signal_bit(int sig) { return std::uint64_t{1} << (sig - 1); }
}  // namespace

// spawn_shim execs the shim with every signal blocked (no handler of its caller may run
// in the child, which shares its memory), and an ignored signal stays ignored across
// execve: the shim sets its own state first. Even when its caller blocks or ignores
// signals, only what the shim blocks for its control thread's signalfd is blocked, and
// SIGTERM is not ignored (it would never reach the signalfd).
BOOST_AUTO_TEST_CASE(the_shim_sets_its_own_signal_state, *boost::unit_test::precondition(shim_runnable)) {
    shim::set_shim_binary(runtime_binary());
    sigset_t usr1, old_mask;
    ::sigemptyset(&usr1);
    ::sigaddset(&usr1, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
    struct sigaction ignore {}, old_term {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGTERM, &ignore, &old_term);
    ScopeExit restore([&] {
        ::sigaction(SIGTERM, &old_term, nullptr);
        ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    });
    TempDir tmp;
    shim::PendingShim pending = shim::launch_shim(tmp.path, deny_everything(egress::Audit::Off), true);
    FilteredChild child;
    shim::release_shim(pending);
    const proc::Identity id = shim::finish_shim_launch(pending, child.take_listener());
    BOOST_CHECK_EQUAL(shim_signal_set(id.pid, "SigBlk"), signal_bit(SIGHUP) | signal_bit(SIGINT) | signal_bit(SIGTERM));
    BOOST_CHECK_EQUAL(shim_signal_set(id.pid, "SigIgn") & signal_bit(SIGTERM), 0u);
    BOOST_CHECK_NE(shim_signal_set(id.pid, "SigIgn") & signal_bit(SIGPIPE), 0u);
    shim::stop_shim(tmp.path, id);
    BOOST_CHECK(!proc::running(id.pid));
}

// A create that fails after launching the shim kills it through the pidfd it has held
// since the launch, and returns only once it is gone.
BOOST_AUTO_TEST_CASE(pending_shim_stopped_by_its_pidfd, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    shim::set_shim_binary(runtime_binary());
    shim::PendingShim pending = shim::launch_shim(tmp.path, deny_everything(egress::Audit::Off));
    BOOST_REQUIRE(pending.pidfd);
    const pid_t pid = pending.pid;
    BOOST_REQUIRE_EQUAL(::kill(pid, 0), 0);
    shim::stop_pending_shim(pending);
    // Gone already, not merely signalled: its pid no longer names a live process.
    BOOST_CHECK(!proc::running(pid));
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.sock"));
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.pid"));
}

// The race of issue 17: the shim ends by itself (its last listener hung up) and removes
// shim.pid while `delete` stops it. With its identity from the state record, stop_shim
// neither fails nor needs the file.
BOOST_AUTO_TEST_CASE(stop_shim_after_the_shim_ended_by_itself, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    shim::set_shim_binary(runtime_binary());
    shim::PendingShim pending = shim::launch_shim(tmp.path, deny_everything(egress::Audit::Off));
    proc::Identity shim_id;
    {
        FilteredChild child;
        shim_id = shim::finish_shim_launch(pending, child.take_listener());
        BOOST_CHECK_EQUAL(child.finish(), 0);
    }  // the only listener is gone: the shim exits by itself
    BOOST_REQUIRE(exits_within(shim_id.pid, 5000));
    for (int i = 0; i < 200 && fs::exists(tmp.path + "/shim.pid"); ++i) ::usleep(10'000);
    BOOST_CHECK_NO_THROW(shim::stop_shim(tmp.path, shim_id));
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.sock"));
}

// A recorded identity whose pid now names another process (a different start time) is
// never signalled.
BOOST_AUTO_TEST_CASE(stop_shim_spares_a_reused_pid, *boost::unit_test::precondition(is_root)) {
    TempDir tmp;
    pid_t sleeper = ::fork();
    if (sleeper == 0) {
        ::pause();
        ::_exit(0);
    }
    const auto start = proc::start_time(sleeper);
    BOOST_REQUIRE(start);
    shim::stop_shim(tmp.path, proc::Identity{sleeper, *start + 1});
    BOOST_CHECK_EQUAL(::waitpid(sleeper, nullptr, WNOHANG), 0);  // still running
    shim::stop_shim(tmp.path, proc::Identity{sleeper, *start});   // the very process: killed
    int status = 0;
    BOOST_CHECK_EQUAL(::waitpid(sleeper, &status, 0), sleeper);
    BOOST_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// If create goes away before it registered a listener, nobody will: the shim ends.
BOOST_AUTO_TEST_CASE(launched_early_and_abandoned_it_ends, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    shim::set_shim_binary(runtime_binary());
    pid_t pid = 0;
    {
        shim::PendingShim pending = shim::launch_shim(tmp.path, deny_everything(egress::Audit::Off));
            // Wait until it serves, so that the test sees it running before it is abandoned.
        for (int i = 0; i < 200 && !fs::exists(tmp.path + "/shim.pid"); ++i) ::usleep(10'000);
        BOOST_REQUIRE(fs::exists(tmp.path + "/shim.pid"));
        pid = static_cast<pid_t>(std::stol(fs::read_file(tmp.path + "/shim.pid")));
        BOOST_REQUIRE_EQUAL(::kill(pid, 0), 0);
        ::usleep(300'000);
        BOOST_CHECK_EQUAL(::kill(pid, 0), 0);  // still waiting for its listener
    }  // our end of the creator pipe closes here
    BOOST_CHECK(exits_within(pid, 2000));
}

BOOST_AUTO_TEST_CASE(killed_shim_fails_closed, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    FilteredChild child;
    const pid_t pid = start_for(tmp.path, child);
    ::kill(pid, SIGKILL);
    BOOST_REQUIRE(exits_within(pid, 2000));
    BOOST_CHECK(fs::exists(tmp.path + "/shim.sock"));  // stale: nobody listens
    UniqueFd l2 = FilteredChild().take_listener();
    BOOST_CHECK_EQUAL(register_error(tmp.path, l2.get()), kNotRunning);
    BOOST_CHECK_EQUAL(shim::shim_status(tmp.path).at("shim").at("running"), false);
    shim::stop_shim(tmp.path);
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.sock"));
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.pid"));
}

BOOST_AUTO_TEST_CASE(register_refusals, *boost::unit_test::precondition(shim_runnable)) {
    TempDir tmp;
    FilteredChild child;
    start_for(tmp.path, child);
    int p[2];
    BOOST_REQUIRE_EQUAL(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd a(p[0]), b(p[1]);
    BOOST_CHECK_EQUAL(register_error(tmp.path, a.get()),
                      "egress shim refused the listener: register: the fd is not a seccomp listener");
    BOOST_CHECK_EQUAL(register_error(tmp.path, -1),
                      "egress shim refused the listener: register: no listener fd attached");
    json r = shim::control_request(tmp.path + "/shim.sock", {{"op", "bogus"}});
    BOOST_CHECK_EQUAL(r.at("ok"), false);
    BOOST_CHECK_EQUAL(r.at("error"), "unknown op \"bogus\"");
    // Another user cannot even connect (the socket is 0600).
    pid_t kid = ::fork();
    if (kid == 0) {
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(3);
        try {
            shim::control_request(tmp.path + "/shim.sock", {{"op", "status"}});
        } catch (const Error& e) {
            ::_exit(std::string(e.what()).find("Permission denied") != std::string::npos ? 0 : 2);
        }
        ::_exit(1);
    }
    int status = 0;
    ::waitpid(kid, &status, 0);
    BOOST_CHECK(WIFEXITED(status));
    BOOST_CHECK_EQUAL(WEXITSTATUS(status), 0);
    BOOST_CHECK_EQUAL(child.finish(), 0);
}

BOOST_AUTO_TEST_CASE(stop_shim_spares_other_processes, *boost::unit_test::precondition(is_root)) {
    TempDir tmp;
    pid_t sleeper = ::fork();
    if (sleeper == 0) {
        ::pause();
        ::_exit(0);
    }
    fs::write_file_atomic(tmp.path + "/shim.pid", std::to_string(sleeper));
    shim::stop_shim(tmp.path);
    BOOST_CHECK_EQUAL(::waitpid(sleeper, nullptr, WNOHANG), 0);  // still running
    BOOST_CHECK(!fs::exists(tmp.path + "/shim.pid"));
    ::kill(sleeper, SIGKILL);
    ::waitpid(sleeper, nullptr, 0);
    BOOST_CHECK_NO_THROW(shim::stop_shim(tmp.path + "/missing"));
}

BOOST_AUTO_TEST_CASE(start_failures, *boost::unit_test::precondition(is_root)) {
    TempDir tmp;
    auto start_error = [&](const std::string& audit) {
        FilteredChild child;
        try {
            shim::start_shim(tmp.path, child.take_listener(), audit);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    BOOST_CHECK_EQUAL(start_error(""), "egress shim: " + tmp.path + "/egress.json is missing");
    shim::write_policy(tmp.path, deny_everything(egress::Audit::Off));
    BOOST_CHECK_EQUAL(start_error("loud"), "egress shim: unknown audit mode \"loud\"");
    shim::set_shim_binary("/bin/false");
    BOOST_CHECK_EQUAL(start_error(""), "egress shim: exited before serving " + tmp.path + "/shim.sock");
    shim::set_shim_binary(tmp.path + "/no-such-binary");
    BOOST_CHECK_EQUAL(start_error(""), "egress shim: exec: No such file or directory");
    shim::set_shim_binary(runtime_binary());
    if (::access(runtime_binary().c_str(), X_OK) == 0) {
        // The shim itself refuses a malformed policy, and says why.
        fs::write_file_atomic(tmp.path + "/egress.json", "{}");
        const std::string e = start_error("");
        BOOST_CHECK_MESSAGE(e.rfind("egress shim: egress policy:", 0) == 0, e);
        BOOST_CHECK(!fs::exists(tmp.path + "/shim.sock"));
        BOOST_CHECK(!fs::exists(tmp.path + "/shim.pid"));
    }
}

// delete's record of the newest policy version a live change may have registered.
BOOST_AUTO_TEST_CASE(the_recorded_kernel_version) {
    TempDir tmp;
    const auto recorded = [&] { return shim::recorded_kernel_version(tmp.path).value_or(~std::uint64_t{0}); };
    BOOST_TEST(recorded() == 0u);  // no live change
    shim::record_kernel_version(tmp.path, 7);
    BOOST_TEST(recorded() == 7u);
    shim::record_kernel_version(tmp.path, 8);
    BOOST_TEST(recorded() == 8u);
    for (const char* bad : {"", "x", "7x\n", "-1\n", "99999999999999999999999\n"}) {
        fs::write_file_atomic(shim::kernel_version_path(tmp.path), bad);
        BOOST_TEST(!shim::recorded_kernel_version(tmp.path).has_value(), "record " << bad);
    }
}

BOOST_AUTO_TEST_SUITE_END()
