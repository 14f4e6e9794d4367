// Landlock network rules, applied in forked children (Landlock cannot be undone):
// each child reports through its exit status and names a failed check on stderr.
#define BOOST_TEST_DYN_LINK
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "runtime/linux/landlock.hpp"
#include "runtime/util/error.hpp"
#include "tests/support.hpp"
#include "runtime/util/fd.hpp"

namespace landlock {
using namespace sandlock;
using namespace sandlock::testing;
using sandlock::os::LandlockNetRules;

UniqueFd make_socket(int family, int type) {
    UniqueFd fd(::socket(family, type | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno("socket");
    return fd;
}

sockaddr_in6 loopback6(uint16_t port) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_loopback;
    return a;
}

uint16_t local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) throw_errno("getsockname");
    return ntohs(a.sin_port);
}

// A loopback socket on a port the kernel picked; listening when `listening`, else
// just holding the port (connects to it are refused: ECONNREFUSED).
struct LoopbackPort {
    UniqueFd fd;
    uint16_t port;
    explicit LoopbackPort(bool listening) : fd(make_socket(AF_INET, SOCK_STREAM)) {
        sockaddr_in a = loopback4(0);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) throw_errno("bind");
        if (listening && ::listen(fd.get(), 16) != 0) throw_errno("listen");
        port = local_port(fd.get());
    }
};

// 0 or the errno of a TCP connect to loopback:port.
int tcp_connect_errno(uint16_t port, int family = AF_INET) {
    UniqueFd fd = make_socket(family, SOCK_STREAM);
    int rc;
    if (family == AF_INET) {
        sockaddr_in a = loopback4(port);
        rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    } else {
        sockaddr_in6 a = loopback6(port);
        rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
    return rc == 0 ? 0 : errno;
}

// 0 or the errno of binding a fresh socket of `type` to 127.0.0.1:port.
int bind_errno(uint16_t port, int type = SOCK_STREAM) {
    UniqueFd fd = make_socket(AF_INET, type);
    sockaddr_in a = loopback4(port);
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 ? 0 : errno;
}

// A port nobody is bound to right now.
uint16_t free_port() {
    UniqueFd fd = make_socket(AF_INET, SOCK_STREAM);
    sockaddr_in a = loopback4(0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) throw_errno("bind");
    return local_port(fd.get());
}

bool net_supported() { return os::landlock_abi() >= 4; }
bool scope_supported() { return os::landlock_abi() >= 6; }

void require_applied(const LandlockNetRules& rules) {
    require(os::apply_landlock(rules), 90, "apply_landlock returned false");
}

// Runs argv (exec, in a grandchild) and returns its stdout+stderr.
std::string run_capture(const std::vector<std::string>& argv, int* status_out) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd rd(fds[0]), wr(fds[1]);
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::dup2(wr.get(), 1);
        ::dup2(wr.get(), 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    wr.reset();
    std::string out;
    char buf[512];
    ssize_t n;
    while ((n = ::read(rd.get(), buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) out.append(buf, static_cast<size_t>(n));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    *status_out = status;
    return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// An abstract (or, with a path, pathname) unix stream listener.
struct UnixListener {
    UniqueFd fd;
    sockaddr_un addr{};
    socklen_t len = 0;
    UnixListener(const std::string& name, bool abstract) : fd(make_socket(AF_UNIX, SOCK_STREAM)) {
        addr.sun_family = AF_UNIX;
        size_t offset = abstract ? 1 : 0;  // abstract: sun_path[0] == '\0'
        std::memcpy(addr.sun_path + offset, name.data(), name.size());
        len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + offset + name.size() +
                                     (abstract ? 0 : 1));
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
            throw_errno("bind unix");
        if (::listen(fd.get(), 4) != 0) throw_errno("listen unix");
    }
    int connect_errno() const {
        UniqueFd c = make_socket(AF_UNIX, SOCK_STREAM);
        return ::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0 ? 0 : errno;
    }
};

// Drops CAP_SYS_ADMIN from the effective set of the calling (child) process.
void drop_effective_sys_admin() {
    cap_t caps = cap_get_proc();
    if (!caps) throw_errno("cap_get_proc");
    cap_value_t v = CAP_SYS_ADMIN;
    int rc = cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
    if (rc == 0) rc = cap_set_proc(caps);
    cap_free(caps);
    if (rc != 0) throw_errno("cap_set_proc");
}

}  // namespace landlock

BOOST_AUTO_TEST_SUITE(landlock)

BOOST_AUTO_TEST_CASE(abi_is_detected) {
    const int abi = os::landlock_abi();
    BOOST_TEST(abi >= 0);
    BOOST_TEST_MESSAGE("Landlock ABI " << abi);
    // Cross-check with Landlock itself: a live Landlock refuses a ruleset handling
    // nothing with ENOMSG; without it the syscall is missing or disabled.
    uint64_t empty_attr[3] = {0, 0, 0};
    long rc = ::syscall(SYS_landlock_create_ruleset, empty_attr, sizeof(empty_attr), 0);
    BOOST_TEST(rc == -1);
    BOOST_TEST((errno == ENOMSG) == (abi > 0));
}

BOOST_AUTO_TEST_CASE(nothing_asked_is_a_noop) {
    LoopbackPort closed(false);
    const int rc = run_child([&] {
        require(os::apply_landlock(LandlockNetRules{}), 1, "apply returned false");
        require_errno(tcp_connect_errno(closed.port), ECONNREFUSED, 2, "connect");
        require_errno(bind_errno(0), 0, 3, "bind port 0");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(connect_limited_to_listed_ports, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    LoopbackPort p1(true), p2(true), closed(false);
    const std::string file = "/tmp/sandlock-landlock-" + std::to_string(::getpid());
    int rc = run_child([&] {
        LandlockNetRules rules;
        rules.connect_tcp_ports = std::vector<uint16_t>{p1.port, closed.port, p1.port};
        if (!net_supported()) {
            require(!os::apply_landlock(rules), 1, "apply must return false below ABI 4");
            return;
        }
        require_applied(rules);
        require_errno(tcp_connect_errno(p1.port), 0, 2, "connect to the allowed port");
        require_errno(tcp_connect_errno(closed.port), ECONNREFUSED, 3,
                      "connect to the allowed closed port");
        require_errno(tcp_connect_errno(p2.port), EACCES, 4, "connect to another port");
        // Port rules cover IPv6 too (nothing listens on [::1]:p2: ECONNREFUSED unconfined).
        require_errno(tcp_connect_errno(p2.port, AF_INET6), EACCES, 5,
                      "IPv6 connect to another port");
        // Bind is not handled, so it stays free; files are not handled either.
        require_errno(bind_errno(0), 0, 6, "bind port 0");
        UniqueFd f(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        require(f.valid(), 7, "create a file");
        require(::write(f.get(), "x", 1) == 1, 8, "write a file");
    });
    ::unlink(file.c_str());
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(bind_limited_to_listed_ports, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    LoopbackPort p1(true);
    const uint16_t p3 = free_port();
    const uint16_t other = free_port();
    const int rc = run_child([&] {
        LandlockNetRules rules;
        rules.bind_tcp_ports = std::vector<uint16_t>{p3};
        if (!net_supported()) {
            require(!os::apply_landlock(rules), 1, "apply must return false below ABI 4");
            return;
        }
        require_applied(rules);
        require_errno(bind_errno(p3), 0, 2, "bind the allowed port");
        // Landlock checks before the port is looked up: EACCES even for a free port.
        require_errno(bind_errno(other == p3 ? p3 + 1 : other), EACCES, 3, "bind another port");
        require_errno(bind_errno(0), EACCES, 4, "bind port 0 (not listed)");
        require_errno(bind_errno(other, SOCK_DGRAM), 0, 5, "UDP bind");
        // Connect is not handled; its implicit autobind is not a bind.
        require_errno(tcp_connect_errno(p1.port), 0, 6, "connect");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(rules_survive_fork_and_execve, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    if (!net_supported()) return;  // covered by connect_limited_to_listed_ports
    LoopbackPort p1(true), p2(true), closed(false);
    const int rc = run_child([&] {
        LandlockNetRules rules;
        rules.connect_tcp_ports = std::vector<uint16_t>{p1.port, closed.port};
        require_applied(rules);

        // A forked grandchild inherits the domain.
        const int forked = run_child([&] {
            require_errno(tcp_connect_errno(p1.port), 0, 1, "forked: allowed port");
            require_errno(tcp_connect_errno(p2.port), EACCES, 2, "forked: other port");
        });
        require(forked == 0, 10 + forked, "forked grandchild");

        // So does an exec'd program: busybox nc names the errno it got.
        int status = 0;
        std::string out =
            run_capture({"/bin/busybox", "nc", "127.0.0.1", std::to_string(p2.port)}, &status);
        require(contains(out, "Permission denied"), 3, "exec'd nc to another port: " + out);
        out =
            run_capture({"/bin/busybox", "nc", "127.0.0.1", std::to_string(closed.port)}, &status);
        require(contains(out, "Connection refused"), 4,
                "exec'd nc to the allowed closed port: " + out);
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(empty_connect_list_blocks_tcp_not_udp, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    if (!net_supported()) return;
    LoopbackPort p1(true);
    const int rc = run_child([&] {
        LandlockNetRules rules;
        rules.connect_tcp_ports = std::vector<uint16_t>{};
        require_applied(rules);
        require_errno(tcp_connect_errno(p1.port), EACCES, 1, "TCP connect");
        require_errno(tcp_connect_errno(p1.port, AF_INET6), EACCES, 2, "TCP6 connect");

        // UDP: bind, connect, send and sendto all work and deliver.
        UniqueFd rx = make_socket(AF_INET, SOCK_DGRAM);
        sockaddr_in a = loopback4(0);
        require(::bind(rx.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, 3, "UDP bind");
        a = loopback4(local_port(rx.get()));
        UniqueFd tx = make_socket(AF_INET, SOCK_DGRAM);
        require(::sendto(tx.get(), "a", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 1, 4,
                "UDP sendto");
        require(::connect(tx.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, 5,
                "UDP connect");
        require(::send(tx.get(), "b", 1, 0) == 1, 6, "UDP send");
        char buf[2] = {};
        require(::recv(rx.get(), buf, 1, 0) == 1 && buf[0] == 'a', 7, "UDP receive 1");
        require(::recv(rx.get(), buf + 1, 1, 0) == 1 && buf[1] == 'b', 8, "UDP receive 2");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(scope_abstract_unix, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    const std::string name = "sandlock-landlock-test-" + std::to_string(::getpid());
    char tmpl[] = "/tmp/sandlock-landlock-XXXXXX";
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl;
    const std::string path = dir + "/sock";
    int unscoped, scoped;
    {
        UnixListener abstract_sock(name, true);
        UnixListener path_sock(path, false);
        LoopbackPort closed(false);

        unscoped = run_child(
            [&] { require_errno(abstract_sock.connect_errno(), 0, 1, "abstract, unscoped"); });
        scoped = run_child([&] {
            LandlockNetRules rules;
            rules.scope_abstract_unix = true;
            if (!scope_supported()) {
                require(!os::apply_landlock(rules), 1, "apply must return false below ABI 6");
                return;
            }
            require_applied(rules);
            require_errno(abstract_sock.connect_errno(), EPERM, 2, "abstract socket of the parent");
            require_errno(path_sock.connect_errno(), 0, 3, "pathname socket");
            // Only the scope was asked: TCP stays free.
            require_errno(tcp_connect_errno(closed.port), ECONNREFUSED, 4, "TCP connect");
            // A socket created inside the domain is reachable.
            UnixListener own(name + "-own", true);
            require_errno(own.connect_errno(), 0, 5, "abstract socket of the same domain");
        });
    }
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
    BOOST_TEST(unscoped == 0);
    BOOST_TEST(scoped == 0);
}

BOOST_AUTO_TEST_CASE(needs_no_new_privs_or_cap_sys_admin) {
    if (!net_supported()) return;
    LoopbackPort p1(true), p2(true);
    const int rc = run_child([&] {
        drop_effective_sys_admin();
        LandlockNetRules rules;
        rules.connect_tcp_ports = std::vector<uint16_t>{p1.port};
        std::string message;
        try {
            os::apply_landlock(rules);
        } catch (const Error& e) {
            message = e.what();
        }
        require(message ==
                    "landlock: restrict self (needs no_new_privs or CAP_SYS_ADMIN): "
                    "Operation not permitted",
                1, "error message: " + message);
        require_errno(tcp_connect_errno(p2.port), 0, 2, "nothing applied after the failure");

        // no_new_privs (set by the caller, here the test) is enough without the cap.
        require(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, 3, "no_new_privs");
        require_applied(rules);
        require_errno(tcp_connect_errno(p2.port), EACCES, 4, "other port after no_new_privs");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_SUITE_END()
