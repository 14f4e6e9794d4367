// The egress supervisor against real filters: forked children install a small notify
// filter (connect, sendto with an address, sendmsg, sendmmsg) with no_new_privs, the
// parent serves its listener with a Supervisor, and every verdict is judged at the
// RECEIVING loopback socket (loopback=deny, so 127.0.0.1 is judged by the rules).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sched.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/egress/policy.hpp"
#include "runtime/linux/seccomp.hpp"
#include "runtime/shim/as_caller.hpp"
#include "runtime/shim/on_behalf.hpp"
#include "runtime/shim/supervisor.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "tests/support.hpp"

namespace egress_supervisor {
using namespace sandlock;
using sandlock::shim::Supervisor;

using Clock = std::chrono::steady_clock;

long long micros_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
}

class NoDns final : public egress::Resolver {
public:
    std::vector<egress::IpAddr> lookup(const std::string& host) override {
        throw Error("no DNS in unit tests: " + host);
    }
};

egress::ResolvedPolicy allow_policy(const std::string& allow) {
    NoDns dns;
    egress::Policy p = egress::parse_policy(
        {{std::string(egress::kAllowKey), allow}, {std::string(egress::kLoopbackKey), "deny"}});
    return egress::resolve(p, dns);
}

sockaddr_in loopback4(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

sockaddr_in6 mapped6(uint16_t port) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
    return a;
}

const sockaddr* sa(const void* p) { return static_cast<const sockaddr*>(p); }

uint16_t port_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) throw_errno("getsockname");
    return ntohs(a.sin_port);
}

// A loopback TCP listener whose accept queue tells what reached it.
struct TcpSink {
    UniqueFd fd;
    uint16_t port = 0;
    explicit TcpSink(int backlog = 4096) {
        fd = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_in a = loopback4(0);
        if (::bind(fd.get(), sa(&a), sizeof a) != 0 || ::listen(fd.get(), backlog) != 0) throw_errno("tcp sink");
        port = port_of(fd.get());
    }
    // Accepts what is queued; returns the count (payloads appended to data).
    int drain(std::vector<std::string>* data = nullptr) {
        int n = 0;
        for (;;) {
            UniqueFd c(::accept4(fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!c) break;
            ++n;
            if (data) {
                char buf[256];
                pollfd p{c.get(), POLLIN, 0};
                ::poll(&p, 1, 200);
                ssize_t r = ::recv(c.get(), buf, sizeof buf, MSG_DONTWAIT);
                data->emplace_back(buf, r > 0 ? static_cast<size_t>(r) : 0);
            }
        }
        return n;
    }
};

// A loopback UDP socket that records the datagrams it got.
struct UdpSink {
    UniqueFd fd;
    uint16_t port = 0;
    UdpSink() {
        fd = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        int big = 4 << 20;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
        sockaddr_in a = loopback4(0);
        if (::bind(fd.get(), sa(&a), sizeof a) != 0) throw_errno("udp sink");
        port = port_of(fd.get());
    }
    std::vector<std::string> drain() {
        std::vector<std::string> out;
        char buf[2048];
        for (;;) {
            ssize_t r = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (r < 0) break;
            out.emplace_back(buf, static_cast<size_t>(r));
        }
        return out;
    }
};

// Results the child writes and the parent reads (MAP_SHARED survives the fork).
struct Shared {
    long long v[64];
};

class SharedResults {
public:
    SharedResults() {
        void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("mmap");
        s_ = static_cast<Shared*>(p);
        std::fill(std::begin(s_->v), std::end(s_->v), -12345);
    }
    ~SharedResults() { ::munmap(s_, sizeof(Shared)); }
    long long& operator[](int i) { return s_->v[i]; }

private:
    Shared* s_;
};

// The errno of a failed call, 0 for success.
long long err_of(long long rc) { return rc < 0 ? errno : 0; }

std::vector<sock_filter> test_filter() {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) throw Error("seccomp_init");
    int rc = 0;
    rc |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendto), 1, SCMP_A4(SCMP_CMP_NE, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmsg), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmmsg), 0);
    if (rc != 0) {
        seccomp_release(ctx);
        throw Error("seccomp_rule_add");
    }
    std::vector<sock_filter> prog = os::export_bpf(ctx);
    seccomp_release(ctx);
    return prog;
}

void write_all(int fd, const void* p, size_t n) {
    if (::write(fd, p, n) != static_cast<ssize_t>(n)) _exit(90);
}
void read_all(int fd, void* p, size_t n) {
    if (::read(fd, p, n) != static_cast<ssize_t>(n)) _exit(91);
}

// A child confined by the test filter. Its listener is taken with pidfd_getfd (the
// child cannot sendmsg it: sendmsg is intercepted), then the child drops its copy.
struct Sandboxed {
    pid_t pid = -1;
    UniqueFd listener;

    Sandboxed() = default;
    Sandboxed(Sandboxed&& o) noexcept : pid(std::exchange(o.pid, -1)), listener(std::move(o.listener)) {}
    Sandboxed& operator=(Sandboxed&&) = delete;

    int wait() {
        int status = 0;
        if (pid > 0 && ::waitpid(pid, &status, 0) == pid) pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    ~Sandboxed() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
};

Sandboxed start_sandboxed(const std::function<void()>& body) {
    const std::vector<sock_filter> prog = test_filter();
    unsigned flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (os::kernel_supports_filter_flag(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV))
        flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    int up[2], down[2];
    if (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(down, O_CLOEXEC) != 0) throw_errno("pipe");
    Sandboxed box;
    box.pid = ::fork();
    if (box.pid < 0) throw_errno("fork");
    if (box.pid == 0) {
        ::close(up[0]);
        ::close(down[1]);
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(92);
        int fd = -1;
        try {
            fd = os::install_bpf(prog, flags).release();
        } catch (...) {
            _exit(93);
        }
        write_all(up[1], &fd, sizeof fd);
        char ack;
        read_all(down[0], &ack, 1);
        ::close(fd);
        try {
            body();
        } catch (...) {
            _exit(94);
        }
        _exit(0);
    }
    ::close(up[1]);
    ::close(down[0]);
    UniqueFd from(up[0]), to(down[1]);
    int child_fd = -1;
    if (::read(from.get(), &child_fd, sizeof child_fd) != sizeof child_fd) throw Error("child did not install the filter");
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, box.pid, 0)));
    if (!pidfd) throw_errno("pidfd_open");
    box.listener = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), child_fd, 0)));
    if (!box.listener) throw_errno("pidfd_getfd");
    if (::write(to.get(), "k", 1) != 1) throw_errno("ack child");
    return box;
}

// Runs body confined and supervised under policy; returns the child's exit code.
struct Outcome {
    int exit_code = -1;
    shim::Counters counters;
    std::vector<shim::Decision> decisions;
};

Outcome supervise(const egress::ResolvedPolicy& policy, const std::function<void()>& body) {
    Outcome out;
    std::mutex m;
    Supervisor sup(policy, [&](const shim::Decision& d) {
        std::lock_guard lock(m);
        out.decisions.push_back(d);
    });
    Sandboxed box = start_sandboxed(body);
    sup.add_listener(std::move(box.listener));
    std::thread server([&] { sup.run(); });
    out.exit_code = box.wait();
    // The listener hangs up once the child is reaped; run() must then return by itself.
    const auto t0 = Clock::now();
    while (sup.listener_count() > 0 && Clock::now() - t0 < std::chrono::seconds(10))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    BOOST_CHECK_EQUAL(sup.listener_count(), 0u);
    sup.stop();  // only matters if the check above failed
    server.join();
    out.counters = sup.counters();
    std::lock_guard lock(m);
    return out;
}

}  // namespace egress_supervisor

BOOST_AUTO_TEST_SUITE(egress_supervisor)

// ---- the address rules, without any process ------------------------------------

BOOST_AUTO_TEST_CASE(interpret_address_follows_the_socket_family) {
    using shim::AddressUse;
    using shim::Destination;
    shim::SocketKind tcp4{AF_INET, SOCK_STREAM, IPPROTO_TCP};
    shim::SocketKind tcp6{AF_INET6, SOCK_STREAM, IPPROTO_TCP};
    shim::SocketKind udp4{AF_INET, SOCK_DGRAM, IPPROTO_UDP};
    shim::SocketKind udp6{AF_INET6, SOCK_DGRAM, IPPROTO_UDP};
    shim::SocketKind ping6{AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6};
    sockaddr_in in = loopback4(80);
    sockaddr_in6 m6 = mapped6(81);

    Destination d = shim::interpret_address(tcp4, AddressUse::Connect, &in, sizeof in);
    BOOST_CHECK(d.kind == Destination::Kind::Address);
    BOOST_CHECK_EQUAL(d.ip.to_string(), "127.0.0.1");
    BOOST_CHECK_EQUAL(d.port, 80);
    BOOST_CHECK_EQUAL(d.sockaddr_len, sizeof(sockaddr_in));

    // A mapped address is judged as IPv4 but passed as the IPv6 the socket needs.
    d = shim::interpret_address(tcp6, AddressUse::Connect, &m6, sizeof m6);
    BOOST_CHECK(d.kind == Destination::Kind::Address);
    BOOST_CHECK_EQUAL(d.ip.to_string(), "127.0.0.1");
    BOOST_CHECK_EQUAL(d.sockaddr.ss_family, AF_INET6);

    // The family field never skips the check: wrong families fail as the kernel fails.
    BOOST_CHECK_EQUAL(shim::interpret_address(tcp4, AddressUse::Connect, &m6, sizeof m6).error, EAFNOSUPPORT);
    BOOST_CHECK_EQUAL(shim::interpret_address(tcp6, AddressUse::Connect, &in, sizeof in).error, EINVAL);
    BOOST_CHECK_EQUAL(shim::interpret_address(tcp4, AddressUse::Connect, &in, 8).error, EINVAL);
    BOOST_CHECK_EQUAL(shim::interpret_address(tcp4, AddressUse::Connect, &in, 1).error, EINVAL);

    // An AF_INET6 UDP socket sends to (and connects to) an AF_INET address.
    d = shim::interpret_address(udp6, AddressUse::Send, &in, sizeof in);
    BOOST_CHECK(d.kind == Destination::Kind::Address);
    BOOST_CHECK_EQUAL(d.sockaddr.ss_family, AF_INET);
    d = shim::interpret_address(udp6, AddressUse::Connect, &in, sizeof in);
    BOOST_CHECK(d.kind == Destination::Kind::Address);

    // AF_UNSPEC: connect disconnects; IPv4 UDP reads the address anyway; IPv6 UDP drops it.
    sockaddr_in unspec = loopback4(53);
    unspec.sin_family = AF_UNSPEC;
    d = shim::interpret_address(udp4, AddressUse::Connect, &unspec, sizeof unspec);
    BOOST_CHECK(d.kind == Destination::Kind::Disconnect);
    BOOST_CHECK_EQUAL(reinterpret_cast<const sockaddr_in&>(d.sockaddr).sin_addr.s_addr, 0u);
    d = shim::interpret_address(udp4, AddressUse::Send, &unspec, sizeof unspec);
    BOOST_CHECK(d.kind == Destination::Kind::Address);
    BOOST_CHECK_EQUAL(d.port, 53);
    BOOST_CHECK_EQUAL(d.sockaddr.ss_family, AF_INET);
    BOOST_CHECK(shim::interpret_address(udp6, AddressUse::Send, &unspec, sizeof unspec).kind ==
                Destination::Kind::NoAddress);
    BOOST_CHECK_EQUAL(shim::interpret_address(tcp4, AddressUse::SendFastOpen, &unspec, sizeof unspec).error,
                      EOPNOTSUPP);

    // TCP sends ignore the name unless MSG_FASTOPEN.
    BOOST_CHECK(shim::interpret_address(tcp4, AddressUse::Send, &in, sizeof in).kind == Destination::Kind::NoAddress);
    BOOST_CHECK(shim::interpret_address(tcp4, AddressUse::SendFastOpen, &in, sizeof in).kind ==
                Destination::Kind::Address);

    // Ping sockets want a whole sockaddr_in6 when sending.
    BOOST_CHECK_EQUAL(shim::interpret_address(ping6, AddressUse::Send, &m6, 24).error, EINVAL);
    BOOST_CHECK(shim::interpret_address(ping6, AddressUse::Send, &m6, sizeof m6).kind == Destination::Kind::Address);

    // The scope id is only read from a full sockaddr_in6.
    sockaddr_in6 scoped = m6;
    scoped.sin6_scope_id = 7;
    d = shim::interpret_address(tcp6, AddressUse::Connect, &scoped, 24);
    BOOST_CHECK_EQUAL(reinterpret_cast<const sockaddr_in6&>(d.sockaddr).sin6_scope_id, 0u);
    d = shim::interpret_address(tcp6, AddressUse::Connect, &scoped, sizeof scoped);
    BOOST_CHECK_EQUAL(reinterpret_cast<const sockaddr_in6&>(d.sockaddr).sin6_scope_id, 7u);
}

// Kernel mode's CONTINUE without the socket: TCP allowed to the address the sockaddr's
// own family names, read as a TCP socket of that family reads it.
BOOST_AUTO_TEST_CASE(tcp_allowed_to_reads_the_sockaddr_by_its_own_family) {
    const egress::ResolvedPolicy policy = allow_policy("10.1.2.3:80;udp://10.1.2.4:53;icmp://10.1.2.5");
    const auto v4 = [](const char* ip, uint16_t port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        inet_pton(AF_INET, ip, &a.sin_addr);
        return a;
    };
    const auto tcp_allowed = [&](const auto& a, std::size_t len) { return shim::tcp_allowed_to(policy, &a, len); };
    sockaddr_in allowed = v4("10.1.2.3", 80);
    BOOST_CHECK(tcp_allowed(allowed, sizeof allowed));
    BOOST_CHECK(!tcp_allowed(v4("10.1.2.3", 81), sizeof(sockaddr_in)));
    BOOST_CHECK(!tcp_allowed(v4("10.9.9.9", 80), sizeof(sockaddr_in)));
    // allowed for UDP or ICMP only: the socket decides, on the full path
    BOOST_CHECK(!tcp_allowed(v4("10.1.2.4", 53), sizeof(sockaddr_in)));
    BOOST_CHECK(!tcp_allowed(v4("10.1.2.5", 0), sizeof(sockaddr_in)));
    // too short for the family, or no IP family at all
    BOOST_CHECK(!tcp_allowed(allowed, 8));
    BOOST_CHECK(!tcp_allowed(allowed, 1));
    BOOST_CHECK(!tcp_allowed(allowed, 0));
    sockaddr_in other = allowed;
    other.sin_family = AF_UNIX;
    BOOST_CHECK(!tcp_allowed(other, sizeof other));
    other.sin_family = AF_UNSPEC;
    BOOST_CHECK(!tcp_allowed(other, sizeof other));
    // IPv4-mapped IPv6 is judged as its IPv4 address; RFC 2133's 24 bytes are enough
    sockaddr_in6 m6{};
    m6.sin6_family = AF_INET6;
    m6.sin6_port = htons(80);
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &m6.sin6_addr);
    BOOST_CHECK(tcp_allowed(m6, sizeof m6));
    BOOST_CHECK(tcp_allowed(m6, 24));
    BOOST_CHECK(!tcp_allowed(m6, 23));
    inet_pton(AF_INET6, "::ffff:10.1.2.4", &m6.sin6_addr);
    BOOST_CHECK(!tcp_allowed(m6, sizeof m6));
}

BOOST_AUTO_TEST_CASE(socket_kinds_map_to_policy_protocols) {
    BOOST_CHECK(shim::SocketKind({AF_INET, SOCK_STREAM, IPPROTO_TCP}).policy_protocol() == egress::Protocol::Tcp);
    BOOST_CHECK(shim::SocketKind({AF_INET6, SOCK_DGRAM, IPPROTO_UDP}).policy_protocol() == egress::Protocol::Udp);
    BOOST_CHECK(shim::SocketKind({AF_INET, SOCK_DGRAM, IPPROTO_ICMP}).policy_protocol() == egress::Protocol::Icmp);
    BOOST_CHECK(shim::SocketKind({AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6}).policy_protocol() == egress::Protocol::Icmp);
    BOOST_CHECK(!shim::SocketKind({AF_INET, SOCK_RAW, IPPROTO_ICMP}).policy_protocol());
    BOOST_CHECK(!shim::SocketKind({AF_INET, SOCK_RAW, IPPROTO_TCP}).policy_protocol());
    BOOST_CHECK(!shim::SocketKind({AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6}).policy_protocol());
    // MPTCP is judged as TCP, as the kernel programs and the seccomp filter do (one table)
    BOOST_CHECK(shim::SocketKind({AF_INET, SOCK_STREAM, 262 /* MPTCP */}).policy_protocol() == egress::Protocol::Tcp);
    BOOST_CHECK(!shim::SocketKind({AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE}).policy_protocol());
}

BOOST_AUTO_TEST_CASE(source_routes_are_recognised) {
    const unsigned char lsrr[] = {IPOPT_NOOP, IPOPT_LSRR, 7, 4, 10, 0, 0, 1};
    const unsigned char ssrr[] = {IPOPT_SSRR, 7, 4, 10, 0, 0, 1, IPOPT_END};
    const unsigned char ts[] = {IPOPT_TS, 8, 5, 0, 0, 0, 0, 0};
    BOOST_CHECK(shim::has_source_route(lsrr, sizeof lsrr));
    BOOST_CHECK(shim::has_source_route(ssrr, sizeof ssrr));
    BOOST_CHECK(!shim::has_source_route(ts, sizeof ts));
    BOOST_CHECK(!shim::has_source_route(ts, 0));
}

// ---- real processes ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(tcp_connect_allowed_reaches_denied_refused) {
    TcpSink allowed, denied;
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:" + std::to_string(allowed.port)), [&] {
        UniqueFd a(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(allowed.port);
        r[0] = err_of(::connect(a.get(), sa(&to), sizeof to));
        UniqueFd d(::socket(AF_INET, SOCK_STREAM, 0));
        to = loopback4(denied.port);
        r[1] = err_of(::connect(d.get(), sa(&to), sizeof to));
        // The same port on another loopback address is another destination.
        UniqueFd other(::socket(AF_INET, SOCK_STREAM, 0));
        to = loopback4(allowed.port);
        to.sin_addr.s_addr = htonl(0x7f000002);
        r[2] = err_of(::connect(other.get(), sa(&to), sizeof to));
        // A NULL or unreadable address is EFAULT, never a CONTINUE.
        UniqueFd bad(::socket(AF_INET, SOCK_STREAM, 0));
        r[3] = err_of(::syscall(SYS_connect, bad.get(), nullptr, 16));
        r[4] = err_of(::connect(12345, sa(&to), sizeof to));  // not an fd: the kernel's EBADF
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 0);
    BOOST_CHECK_EQUAL(r[1], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[2], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[3], EFAULT);
    BOOST_CHECK_EQUAL(r[4], EBADF);
    BOOST_CHECK_EQUAL(allowed.drain(), 1);
    BOOST_CHECK_EQUAL(denied.drain(), 0);
    BOOST_CHECK_EQUAL(o.counters.allowed, 1u);
    BOOST_CHECK_EQUAL(o.counters.denied, 2u);
    BOOST_REQUIRE_EQUAL(o.decisions.size(), 3u);
    BOOST_CHECK_EQUAL(o.decisions[0].syscall, "connect");
    BOOST_CHECK(o.decisions[0].protocol == egress::Protocol::Tcp);
    BOOST_CHECK_EQUAL(o.decisions[0].destination, "127.0.0.1");
    BOOST_CHECK_EQUAL(o.decisions[0].port, allowed.port);
    BOOST_CHECK(o.decisions[0].allowed);
    BOOST_CHECK_EQUAL(o.decisions[1].port, denied.port);
    BOOST_CHECK(!o.decisions[1].allowed);
    BOOST_CHECK_EQUAL(o.decisions[2].destination, "127.0.0.2");
    BOOST_CHECK(o.decisions[0].pid > 0);
}

BOOST_AUTO_TEST_CASE(nonblocking_connect_returns_einprogress) {
    TcpSink allowed;
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:" + std::to_string(allowed.port)), [&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        sockaddr_in to = loopback4(allowed.port);
        r[0] = err_of(::connect(s.get(), sa(&to), sizeof to));
        pollfd p{s.get(), POLLOUT, 0};
        ::poll(&p, 1, 2000);
        int soerr = -1;
        socklen_t len = sizeof soerr;
        ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
        r[1] = soerr;
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK(r[0] == EINPROGRESS || r[0] == 0);
    BOOST_CHECK_EQUAL(r[1], 0);
    BOOST_CHECK_EQUAL(allowed.drain(), 1);
}

BOOST_AUTO_TEST_CASE(udp_sendto_sendmsg_and_connected_sends) {
    UdpSink allowed, denied;
    SharedResults r;
    Outcome o = supervise(allow_policy("udp://127.0.0.1:" + std::to_string(allowed.port)), [&] {
        UniqueFd u(::socket(AF_INET, SOCK_DGRAM, 0));
        sockaddr_in ok = loopback4(allowed.port), no = loopback4(denied.port);
        r[0] = ::sendto(u.get(), "a", 1, 0, sa(&ok), sizeof ok);
        r[1] = err_of(::sendto(u.get(), "b", 1, 0, sa(&no), sizeof no));

        char c[] = "c", d[] = "d";
        iovec iov[2] = {{c, 1}, {d, 1}};
        msghdr m{};
        m.msg_name = &ok;
        m.msg_namelen = sizeof ok;
        m.msg_iov = iov;
        m.msg_iovlen = 2;
        r[2] = ::sendmsg(u.get(), &m, 0);
        m.msg_name = &no;
        r[3] = err_of(::sendmsg(u.get(), &m, 0));

        // Connected: connect is judged; then sendmsg without a name and send() go to the peer.
        UniqueFd cu(::socket(AF_INET, SOCK_DGRAM, 0));
        r[4] = err_of(::connect(cu.get(), sa(&ok), sizeof ok));
        char e[] = "e";
        iovec ie{e, 1};
        msghdr mc{};
        mc.msg_iov = &ie;
        mc.msg_iovlen = 1;
        r[5] = ::sendmsg(cu.get(), &mc, 0);
        r[6] = ::send(cu.get(), "f", 1, 0);
        UniqueFd du(::socket(AF_INET, SOCK_DGRAM, 0));
        r[7] = err_of(::connect(du.get(), sa(&no), sizeof no));
        // Unconnected and no name: the kernel's answer.
        r[8] = err_of(::sendmsg(du.get(), &mc, 0));

        // Caps and unreadable structures.
        r[9] = err_of(::syscall(SYS_sendmsg, u.get(), nullptr, 0));
        iovec many[1100];
        for (auto& v : many) v = {c, 1};
        m.msg_name = &ok;
        m.msg_iov = many;
        m.msg_iovlen = 1100;
        r[10] = err_of(::sendmsg(u.get(), &m, 0));
        iovec unreadable{reinterpret_cast<void*>(8), 1};
        m.msg_iov = &unreadable;
        m.msg_iovlen = 1;
        r[11] = err_of(::sendmsg(u.get(), &m, 0));
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 1);
    BOOST_CHECK_EQUAL(r[1], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[2], 2);
    BOOST_CHECK_EQUAL(r[3], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[4], 0);
    BOOST_CHECK_EQUAL(r[5], 1);
    BOOST_CHECK_EQUAL(r[6], 1);
    BOOST_CHECK_EQUAL(r[7], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[8], EDESTADDRREQ);
    BOOST_CHECK_EQUAL(r[9], EFAULT);
    BOOST_CHECK_EQUAL(r[10], EMSGSIZE);
    BOOST_CHECK_EQUAL(r[11], EIO);
    const std::vector<std::string> expected = {"a", "cd", "e", "f"};
    BOOST_CHECK(allowed.drain() == expected);
    BOOST_CHECK(denied.drain().empty());
}

BOOST_AUTO_TEST_CASE(sendmmsg_stops_at_the_first_refused_entry) {
    UdpSink allowed, denied;
    SharedResults r;
    Outcome o = supervise(allow_policy("udp://127.0.0.1:" + std::to_string(allowed.port)), [&] {
        UniqueFd u(::socket(AF_INET, SOCK_DGRAM, 0));
        sockaddr_in ok = loopback4(allowed.port), no = loopback4(denied.port);
        char x[] = "x", y[] = "yy", z[] = "zzz";
        iovec iov[3] = {{x, 1}, {y, 2}, {z, 3}};
        mmsghdr v[3]{};
        sockaddr_in* to[3] = {&ok, &no, &ok};
        for (int i = 0; i < 3; ++i) {
            v[i].msg_hdr.msg_name = to[i];
            v[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
            v[i].msg_hdr.msg_iov = &iov[i];
            v[i].msg_hdr.msg_iovlen = 1;
            v[i].msg_len = 777;
        }
        r[0] = ::sendmmsg(u.get(), v, 3, 0);
        r[1] = v[0].msg_len;
        r[2] = v[1].msg_len;
        r[3] = err_of(::sendmmsg(u.get(), &v[1], 2, 0));  // the first entry refused: the errno
        v[0].msg_len = 0;
        v[2].msg_len = 0;
        mmsghdr two[2] = {v[0], v[2]};
        r[4] = ::sendmmsg(u.get(), two, 2, 0);
        r[5] = two[0].msg_len + 10 * two[1].msg_len;
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 1);
    BOOST_CHECK_EQUAL(r[1], 1);
    BOOST_CHECK_EQUAL(r[2], 777);
    BOOST_CHECK_EQUAL(r[3], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[4], 2);
    BOOST_CHECK_EQUAL(r[5], 31);
    const std::vector<std::string> expected = {"x", "x", "zzz"};
    BOOST_CHECK(allowed.drain() == expected);
    BOOST_CHECK(denied.drain().empty());
    BOOST_CHECK_EQUAL(o.counters.denied, 2u);
    BOOST_CHECK_EQUAL(o.counters.allowed, 3u);
}

BOOST_AUTO_TEST_CASE(ipv4_mapped_and_family_games_are_judged_as_ipv4) {
    TcpSink allowed, denied;
    UdpSink uok, uno;
    SharedResults r;
    const std::string rules = "127.0.0.1:" + std::to_string(allowed.port) + ";udp://127.0.0.1:" + std::to_string(uok.port);
    Outcome o = supervise(allow_policy(rules), [&] {
        UniqueFd a(::socket(AF_INET6, SOCK_STREAM, 0));
        sockaddr_in6 to = mapped6(allowed.port);
        r[0] = err_of(::connect(a.get(), sa(&to), sizeof to));
        UniqueFd d(::socket(AF_INET6, SOCK_STREAM, 0));
        to = mapped6(denied.port);
        r[1] = err_of(::connect(d.get(), sa(&to), sizeof to));
        // An AF_INET6 UDP socket with an AF_INET sockaddr.
        UniqueFd u6(::socket(AF_INET6, SOCK_DGRAM, 0));
        sockaddr_in v4ok = loopback4(uok.port), v4no = loopback4(uno.port);
        r[2] = ::sendto(u6.get(), "6", 1, 0, sa(&v4ok), sizeof v4ok);
        r[3] = err_of(::sendto(u6.get(), "!", 1, 0, sa(&v4no), sizeof v4no));
        // An AF_INET UDP socket reads AF_UNSPEC as AF_INET.
        UniqueFd u4(::socket(AF_INET, SOCK_DGRAM, 0));
        v4ok.sin_family = AF_UNSPEC;
        v4no.sin_family = AF_UNSPEC;
        r[4] = ::sendto(u4.get(), "u", 1, 0, sa(&v4ok), sizeof v4ok);
        r[5] = err_of(::sendto(u4.get(), "!", 1, 0, sa(&v4no), sizeof v4no));
        // A claimed AF_INET6 address on an AF_INET socket: the kernel's EAFNOSUPPORT.
        sockaddr_in6 six = mapped6(uno.port);
        r[6] = err_of(::sendto(u4.get(), "!", 1, 0, sa(&six), sizeof six));
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 0);
    BOOST_CHECK_EQUAL(r[1], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[2], 1);
    BOOST_CHECK_EQUAL(r[3], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[4], 1);
    BOOST_CHECK_EQUAL(r[5], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[6], EAFNOSUPPORT);
    BOOST_CHECK_EQUAL(allowed.drain(), 1);
    BOOST_CHECK_EQUAL(denied.drain(), 0);
    const std::vector<std::string> expected = {"6", "u"};
    BOOST_CHECK(uok.drain() == expected);
    BOOST_CHECK(uno.drain().empty());
}

BOOST_AUTO_TEST_CASE(tcp_fast_open_is_judged_as_a_connect) {
    TcpSink allowed, denied;
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:" + std::to_string(allowed.port)), [&] {
        UniqueFd a(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(allowed.port);
        r[0] = ::sendto(a.get(), "hello", 5, MSG_FASTOPEN, sa(&to), sizeof to);
        r[1] = r[0] < 0 ? errno : 0;
        UniqueFd d(::socket(AF_INET, SOCK_STREAM, 0));
        to = loopback4(denied.port);
        r[2] = err_of(::sendto(d.get(), "evil", 4, MSG_FASTOPEN, sa(&to), sizeof to));
        // Without MSG_FASTOPEN a TCP name is ignored: the unconnected socket's EPIPE.
        UniqueFd e(::socket(AF_INET, SOCK_STREAM, 0));
        r[3] = err_of(::sendto(e.get(), "x", 1, MSG_NOSIGNAL, sa(&to), sizeof to));
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 5);
    BOOST_CHECK_EQUAL(r[1], 0);
    BOOST_CHECK_EQUAL(r[2], ECONNREFUSED);
    BOOST_CHECK_EQUAL(r[3], EPIPE);
    std::vector<std::string> data;
    BOOST_CHECK_EQUAL(allowed.drain(&data), 1);
    BOOST_REQUIRE_EQUAL(data.size(), 1u);
    BOOST_CHECK_EQUAL(data[0], "hello");
    BOOST_CHECK_EQUAL(denied.drain(), 0);
}

BOOST_AUTO_TEST_CASE(source_routing_and_unknown_protocols_are_refused, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    TcpSink allowed;
    UdpSink uok;
    SharedResults r;
    const std::string rules = "127.0.0.1:" + std::to_string(allowed.port) + ";udp://127.0.0.1:" + std::to_string(uok.port);
    Outcome o = supervise(allow_policy(rules), [&] {
        sockaddr_in to = loopback4(allowed.port);
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        const unsigned char lsrr[] = {IPOPT_NOOP, IPOPT_LSRR, 7, 4, 127, 0, 0, 9};
        r[0] = err_of(::setsockopt(s.get(), IPPROTO_IP, IP_OPTIONS, lsrr, sizeof lsrr));
        r[1] = err_of(::connect(s.get(), sa(&to), sizeof to));
        // The same route as a control message on a datagram.
        UniqueFd u(::socket(AF_INET, SOCK_DGRAM, 0));
        sockaddr_in uto = loopback4(uok.port);
        alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof lsrr)]{};
        char x[] = "r";
        iovec iov{x, 1};
        msghdr m{};
        m.msg_name = &uto;
        m.msg_namelen = sizeof uto;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_RETOPTS;
        c->cmsg_len = CMSG_LEN(sizeof lsrr);
        std::memcpy(CMSG_DATA(c), lsrr, sizeof lsrr);
        r[2] = err_of(::sendmsg(u.get(), &m, 0));
        // UDP-Lite, where the kernel has it: not a protocol the policy judges.
        UniqueFd lite(::socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE));
        r[3] = lite ? err_of(::connect(lite.get(), sa(&uto), sizeof uto)) : -1;
        // MPTCP, where the kernel has it: judged as TCP, so the allowed address is reached.
        UniqueFd mp(::socket(AF_INET, SOCK_STREAM, 262));
        r[4] = mp ? err_of(::connect(mp.get(), sa(&to), sizeof to)) : -1;
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 0);
    BOOST_CHECK_EQUAL(r[1], EPERM);
    BOOST_CHECK_EQUAL(r[2], EPERM);
    if (r[3] != -1) BOOST_CHECK_EQUAL(r[3], ECONNREFUSED);
    if (r[4] != -1) BOOST_CHECK_EQUAL(r[4], 0);
    BOOST_CHECK_EQUAL(allowed.drain(), r[4] == 0 ? 1 : 0);
    BOOST_CHECK(uok.drain().empty());
}

// Calls on unix sockets are performed by the supervisor for the caller (never CONTINUE:
// see the fd-swap test below); the kernel's own errors come back as the caller's.
BOOST_AUTO_TEST_CASE(unix_sockets_are_performed_for_the_caller, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    const std::string path = "/tmp/sandlock-supervisor-test-" + std::to_string(::getpid()) + ".sock";
    UniqueFd srv(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strncpy(un.sun_path, path.c_str(), sizeof un.sun_path - 1);
    ::unlink(path.c_str());
    BOOST_REQUIRE_EQUAL(::bind(srv.get(), sa(&un), sizeof un), 0);
    BOOST_REQUIRE_EQUAL(::listen(srv.get(), 8), 0);
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
        UniqueFd c(::socket(AF_UNIX, SOCK_STREAM, 0));
        r[0] = err_of(::connect(c.get(), sa(&un), sizeof un));
        r[1] = ::sendto(c.get(), "u", 1, 0, sa(&un), sizeof un);  // ignored name on a stream
        // An IP address given to a unix socket: the kernel's EINVAL, from our duplicate.
        sockaddr_in in = loopback4(1);
        UniqueFd d(::socket(AF_UNIX, SOCK_DGRAM, 0));
        r[2] = err_of(::sendto(d.get(), "x", 1, 0, sa(&in), sizeof in));
    });
    ::unlink(path.c_str());
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 0);
    BOOST_CHECK(r[1] == 1 || r[1] == -1);
    BOOST_CHECK_EQUAL(r[2], EINVAL);
    UniqueFd accepted(::accept4(srv.get(), nullptr, nullptr, SOCK_NONBLOCK));
    BOOST_CHECK(accepted.valid());
    BOOST_CHECK_GE(o.counters.continued, 2u);
    BOOST_CHECK_EQUAL(o.counters.allowed + o.counters.denied, 0u);
}

// Threads flip the address between an allowed and a denied destination while other
// threads connect / sendto / sendmsg with it: the denied side must receive nothing.
BOOST_AUTO_TEST_CASE(flipping_the_address_never_reaches_the_denied_side) {
    TcpSink allowed, denied;
    UdpSink uok, uno;
    SharedResults r;
    const std::string rules = "127.0.0.1:" + std::to_string(allowed.port) + ";udp://127.0.0.1:" + std::to_string(uok.port);
    constexpr int kRounds = 2000;
    Outcome o = supervise(allow_policy(rules), [&] {
        static sockaddr_in tcp_to, udp_to;
        std::atomic<bool> done{false};
        const uint16_t tp[2] = {htons(allowed.port), htons(denied.port)};
        const uint16_t up[2] = {htons(uok.port), htons(uno.port)};
        tcp_to = loopback4(allowed.port);
        udp_to = loopback4(uok.port);
        std::thread flipper([&] {
            for (unsigned i = 0; !done.load(std::memory_order_relaxed); ++i) {
                reinterpret_cast<volatile uint16_t&>(tcp_to.sin_port) = tp[i & 1];
                reinterpret_cast<volatile uint16_t&>(udp_to.sin_port) = up[i & 1];
            }
        });
        long long ok = 0, refused = 0, other = 0;
        for (int i = 0; i < kRounds; ++i) {
            UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
            int rc = ::connect(s.get(), sa(&tcp_to), sizeof tcp_to);
            (rc == 0 ? ok : errno == ECONNREFUSED ? refused : other)++;
        }
        UniqueFd u(::socket(AF_INET, SOCK_DGRAM, 0));
        long long uok_n = 0, urefused = 0;
        char x[] = "m";
        iovec iov{x, 1};
        msghdr m{};
        m.msg_name = &udp_to;
        m.msg_namelen = sizeof udp_to;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        for (int i = 0; i < kRounds; ++i) {
            ssize_t rc = (i & 1) ? ::sendmsg(u.get(), &m, 0) : ::sendto(u.get(), "s", 1, 0, sa(&udp_to), sizeof udp_to);
            (rc == 1 ? uok_n : urefused)++;
        }
        done = true;
        flipper.join();
        r[0] = ok;
        r[1] = refused;
        r[2] = other;
        r[3] = uok_n;
        r[4] = urefused;
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_TEST_MESSAGE("flip: tcp ok " << r[0] << " refused " << r[1] << "; udp ok " << r[3] << " refused " << r[4]);
    BOOST_CHECK_EQUAL(denied.drain(), 0);
    BOOST_CHECK(uno.drain().empty());
    BOOST_CHECK_EQUAL(r[2], 0);
    BOOST_CHECK_EQUAL(r[0] + r[1], kRounds);
    BOOST_CHECK_EQUAL(allowed.drain(), r[0]);
    BOOST_CHECK_GT(r[0], 0);  // both outcomes happened: the race was really run
    BOOST_CHECK_GT(r[1], 0);
    BOOST_CHECK_EQUAL(r[3] + r[4], kRounds);
}

// One thread's connect hangs (its SYNs are dropped: the listener's accept queue is
// full) while another thread's allowed connects complete promptly.
// Fills a listener's zero backlog, so that further connects to it hang (their SYNs
// are dropped): the "dropped destination" of the head-of-line tests.
std::vector<UniqueFd> fill_backlog(const TcpSink& sink) {
    std::vector<UniqueFd> fillers;
    for (int i = 0; i < 3; ++i) {
        UniqueFd f(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_in to = loopback4(sink.port);
        ::connect(f.get(), sa(&to), sizeof to);
        fillers.push_back(std::move(f));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return fillers;
}

BOOST_AUTO_TEST_CASE(a_blocked_connect_delays_nothing_else) {
    TcpSink good;
    TcpSink blackhole(0);
    const auto fillers = fill_backlog(blackhole);
    SharedResults r;
    const std::string rules = "127.0.0.1:" + std::to_string(good.port) + "," + std::to_string(blackhole.port);
    Outcome o = supervise(allow_policy(rules), [&] {
        std::thread blocked([&] {
            UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
            timeval tv{1, 500000};
            ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            sockaddr_in to = loopback4(blackhole.port);
            const auto t0 = Clock::now();
            r[0] = err_of(::connect(s.get(), sa(&to), sizeof to));
            r[1] = micros_since(t0);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        long long worst = 0, ok = 0;
        const auto start = Clock::now();
        for (int i = 0; i < 20; ++i) {
            UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
            sockaddr_in to = loopback4(good.port);
            const auto t0 = Clock::now();
            if (::connect(s.get(), sa(&to), sizeof to) == 0) ++ok;
            worst = std::max(worst, micros_since(t0));
        }
        r[2] = worst;
        r[3] = ok;
        r[4] = micros_since(start);
        blocked.join();
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_TEST_MESSAGE("head-of-line: blocked " << r[1] << " us, worst other connect " << r[2] << " us");
    BOOST_CHECK_EQUAL(r[0], EINPROGRESS);  // SO_SNDTIMEO ran out: it really blocked
    BOOST_CHECK_GE(r[1], 1'000'000);
    BOOST_CHECK_EQUAL(r[3], 20);
    BOOST_CHECK_LT(r[2], 100'000);
    BOOST_CHECK_LT(r[4] + 100'000, r[1]);  // they finished while it was still blocked
    BOOST_CHECK_EQUAL(good.drain(), 20);
}

// Leader/follower under load: three connects hang at once (each takes the thread that
// received it out of the pool, and a watcher takes over receiving each time) while 16
// threads keep connecting; every call is answered and every allowed one arrives.
BOOST_AUTO_TEST_CASE(many_threads_and_several_blocked_calls_are_all_served) {
    TcpSink good;
    TcpSink blackhole(0);
    const auto fillers = fill_backlog(blackhole);
    constexpr int kThreads = 16, kEach = 40, kBlocked = 3;
    SharedResults r;
    const std::string rules = "127.0.0.1:" + std::to_string(good.port) + "," + std::to_string(blackhole.port);
    Outcome o = supervise(allow_policy(rules), [&] {
        std::vector<std::thread> blocked;
        for (int b = 0; b < kBlocked; ++b)
            blocked.emplace_back([&r, &blackhole, b] {
                UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
                timeval tv{1, 0};
                ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                sockaddr_in to = loopback4(blackhole.port);
                r[10 + b] = err_of(::connect(s.get(), sa(&to), sizeof to));
            });
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::atomic<int> ok{0};
        std::vector<std::thread> busy;
        for (int t = 0; t < kThreads; ++t)
            busy.emplace_back([&] {
                for (int i = 0; i < kEach; ++i) {
                    UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
                    sockaddr_in to = loopback4(good.port);
                    if (::connect(s.get(), sa(&to), sizeof to) == 0) ++ok;
                }
            });
        for (auto& t : busy) t.join();
        r[0] = ok.load();
        for (auto& t : blocked) t.join();
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], kThreads * kEach);
    for (int b = 0; b < kBlocked; ++b) BOOST_CHECK_EQUAL(r[10 + b], EINPROGRESS);  // really blocked
    BOOST_CHECK_EQUAL(good.drain(), kThreads * kEach);
    BOOST_CHECK_EQUAL(o.counters.allowed, static_cast<std::uint64_t>(kThreads * kEach + kBlocked));
    BOOST_CHECK_EQUAL(o.counters.errors, 0u);
}

// The shim is bounded whatever the container blocks on: 40 connects hang on a dropped
// destination at once, the supervisor serves at most 32 of them and answers the rest
// EAGAIN straight away, and an allowed connect made meanwhile still gets through.
BOOST_AUTO_TEST_CASE(the_in_flight_cap_answers_eagain_beyond_32_calls) {
    TcpSink good;
    TcpSink blackhole(0);
    const auto fillers = fill_backlog(blackhole);
    constexpr int kHanging = 40;
    SharedResults r;
    const std::string rules = "127.0.0.1:" + std::to_string(good.port) + "," + std::to_string(blackhole.port);
    Outcome o = supervise(allow_policy(rules), [&] {
        std::atomic<int> eagain{0}, blocked{0};
        std::vector<std::thread> hanging;
        for (int i = 0; i < kHanging; ++i)
            hanging.emplace_back([&] {
                UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
                timeval tv{1, 500000};
                ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                sockaddr_in to = loopback4(blackhole.port);
                const int e = static_cast<int>(err_of(::connect(s.get(), sa(&to), sizeof to)));
                if (e == EAGAIN) ++eagain;
                if (e == EINPROGRESS) ++blocked;  // SO_SNDTIMEO ran out: it was served, and hung
            });
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(good.port);
        r[2] = err_of(::connect(s.get(), sa(&to), sizeof to));  // the cap frees up only later
        for (auto& t : hanging) t.join();
        r[0] = eagain.load();
        r[1] = blocked.load();
        UniqueFd after(::socket(AF_INET, SOCK_STREAM, 0));
        r[3] = err_of(::connect(after.get(), sa(&to), sizeof to));
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_TEST_MESSAGE("in-flight cap: " << r[1] << " served and hung, " << r[0] << " answered EAGAIN");
    BOOST_CHECK_EQUAL(r[0] + r[1], kHanging);
    BOOST_CHECK_LE(r[1], 32);
    BOOST_CHECK_GE(r[0], kHanging - 32);
    BOOST_CHECK_EQUAL(o.counters.busy, static_cast<std::uint64_t>(r[0] + (r[2] == EAGAIN ? 1 : 0)));
    BOOST_CHECK_EQUAL(r[3], 0);  // once they are over, connects are served again
    BOOST_CHECK_EQUAL(good.drain(), r[2] == 0 ? 2 : 1);
}

// A stream send copies at most 256 KiB (a short write), whatever the caller asks; the
// receiver gets exactly what the call reported. MSG_ZEROCOPY is dropped on the way.
BOOST_AUTO_TEST_CASE(stream_sends_copy_at_most_256_kib) {
    TcpSink sink;
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:" + std::to_string(sink.port)), [&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(sink.port);
        if (::connect(s.get(), sa(&to), sizeof to) != 0) _exit(96);
        std::vector<char> big(4 << 20, 'x');
        iovec iov{big.data(), big.size()};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        r[0] = ::sendmsg(s.get(), &m, 0);
        int one = 1;
        ::setsockopt(s.get(), SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one);
        r[1] = ::sendmsg(s.get(), &m, MSG_ZEROCOPY);
        r[2] = r[1] < 0 ? errno : 0;
        // nothing should wait in the error queue: the copy was the shim's
        char ctl[128];
        msghdr e{};
        e.msg_control = ctl;
        e.msg_controllen = sizeof ctl;
        r[3] = ::recvmsg(s.get(), &e, MSG_ERRQUEUE | MSG_DONTWAIT) < 0 ? errno : 0;
        ::shutdown(s.get(), SHUT_WR);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_GT(r[0], 0);
    BOOST_CHECK_LE(r[0], 256 * 1024);
    BOOST_CHECK_GT(r[1], 0);
    BOOST_CHECK_LE(r[1], 256 * 1024);
    BOOST_CHECK_EQUAL(r[3], EAGAIN);
    UniqueFd c(::accept4(sink.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    BOOST_REQUIRE(static_cast<bool>(c));
    long long got = 0;
    char buf[65536];
    for (ssize_t n; (n = ::recv(c.get(), buf, sizeof buf, 0)) > 0;) got += n;
    BOOST_CHECK_EQUAL(got, r[0] + r[1]);
}

// A blocking send to a peer that never reads cannot hold a shim thread: the caller is
// killed while its send waits, and the supervisor lets the call go (the listener hangs
// up and run() returns) instead of blocking in send() for good.
BOOST_AUTO_TEST_CASE(a_blocked_send_is_abandoned_when_its_caller_dies) {
    TcpSink sink;  // accepts nothing: the connection's buffers fill up
    egress::ResolvedPolicy policy = allow_policy("127.0.0.1:" + std::to_string(sink.port));
    const auto open_fds = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
        return n;
    };
    Supervisor sup(policy, {});
    const std::size_t fds_before = open_fds();
    Sandboxed box = start_sandboxed([&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(sink.port);
        if (::connect(s.get(), sa(&to), sizeof to) != 0) _exit(96);
        std::vector<char> chunk(256 * 1024, 'x');
        iovec iov{chunk.data(), chunk.size()};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        for (;;) ::sendmsg(s.get(), &m, 0);  // blocks once the buffers are full
    });
    const pid_t pid = box.pid;
    sup.add_listener(std::move(box.listener));
    std::thread server([&] { sup.run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the send is stuck by now
    ::kill(pid, SIGKILL);
    box.wait();
    const auto t0 = Clock::now();
    while (sup.listener_count() > 0 && Clock::now() - t0 < std::chrono::seconds(5))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_CHECK_EQUAL(sup.listener_count(), 0u);
    // The duplicate of the caller's socket is closed: no shim thread still sends on it.
    for (int i = 0; i < 100 && open_fds() > fds_before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    BOOST_TEST_MESSAGE("abandoned after " << micros_since(t0) << " us");
    // (<=: an fd the supervisor had open at the baseline, e.g. a cached pidfd, may be gone)
    BOOST_CHECK_LE(open_fds(), fds_before);
    sup.stop();
    server.join();
}

// The same for a blocking connect to a destination that never answers (a full backlog:
// SYNs are dropped): once its caller is killed, the shim stops waiting for the handshake
// (its thread and in-flight slot are free again) instead of riding out minutes of SYN
// retries on its duplicate of the socket.
BOOST_AUTO_TEST_CASE(a_blocked_connect_is_abandoned_when_its_caller_dies) {
    TcpSink blackhole(0);
    const auto fillers = fill_backlog(blackhole);
    egress::ResolvedPolicy policy = allow_policy("127.0.0.1:" + std::to_string(blackhole.port));
    const auto open_fds = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
        return n;
    };
    Supervisor sup(policy, {});
    const std::size_t fds_before = open_fds();
    Sandboxed box = start_sandboxed([&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(blackhole.port);
        ::connect(s.get(), sa(&to), sizeof to);  // blocks: no SO_SNDTIMEO
        _exit(97);
    });
    const pid_t pid = box.pid;
    sup.add_listener(std::move(box.listener));
    std::thread server([&] { sup.run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the connect hangs by now
    BOOST_CHECK_GT(open_fds(), fds_before);                       // the shim's duplicate
    ::kill(pid, SIGKILL);
    box.wait();
    const auto t0 = Clock::now();
    for (int i = 0; i < 100 && open_fds() > fds_before; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    BOOST_TEST_MESSAGE("connect abandoned after " << micros_since(t0) << " us");
    BOOST_CHECK_LE(open_fds(), fds_before);
    sup.stop();
    server.join();
}

// With nobody holding the listener, intercepted calls fail with ENOSYS (fail closed).
BOOST_AUTO_TEST_CASE(a_dead_supervisor_fails_closed) {
    TcpSink allowed;
    UdpSink uok;
    SharedResults r;
    int go[2];
    BOOST_REQUIRE_EQUAL(::pipe2(go, O_CLOEXEC), 0);
    UniqueFd go_read(go[0]), go_write(go[1]);
    Sandboxed box = start_sandboxed([&] {
        char c;
        if (::read(go_read.get(), &c, 1) != 1) _exit(95);
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(allowed.port);
        r[0] = err_of(::connect(s.get(), sa(&to), sizeof to));
        UniqueFd u(::socket(AF_INET, SOCK_DGRAM, 0));
        sockaddr_in uto = loopback4(uok.port);
        r[1] = err_of(::sendto(u.get(), "x", 1, 0, sa(&uto), sizeof uto));
    });
    box.listener.reset();  // the supervisor is gone
    BOOST_REQUIRE_EQUAL(::write(go_write.get(), "g", 1), 1);
    BOOST_REQUIRE_EQUAL(box.wait(), 0);
    BOOST_CHECK_EQUAL(r[0], ENOSYS);
    BOOST_CHECK_EQUAL(r[1], ENOSYS);
    BOOST_CHECK_EQUAL(allowed.drain(), 0);
    BOOST_CHECK(uok.drain().empty());
}

BOOST_AUTO_TEST_CASE(listeners_added_while_running_and_stop) {
    Supervisor sup(allow_policy("127.0.0.1:1"), nullptr);
    std::thread server([&] { sup.run(); });
    TcpSink allowed;
    SharedResults r;
    Sandboxed box = start_sandboxed([&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(allowed.port);
        r[0] = err_of(::connect(s.get(), sa(&to), sizeof to));
    });
    // run() returned at once (no listener): the listener is refused, not left unserved.
    server.join();
    BOOST_CHECK_THROW(sup.add_listener(std::move(box.listener)), Error);

    Supervisor second(allow_policy("127.0.0.1:" + std::to_string(allowed.port)), nullptr);
    Sandboxed idle = start_sandboxed([] { ::pause(); });
    second.add_listener(std::move(idle.listener));
    std::thread serving([&] { second.run(); });
    Sandboxed late = start_sandboxed([&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(allowed.port);
        r[1] = err_of(::connect(s.get(), sa(&to), sizeof to));
    });
    second.add_listener(std::move(late.listener));
    BOOST_CHECK_EQUAL(late.wait(), 0);
    BOOST_CHECK_EQUAL(r[1], 0);
    second.stop();
    serving.join();
    BOOST_CHECK_EQUAL(box.wait(), 0);  // the refused listener was closed: ENOSYS
    BOOST_CHECK_EQUAL(r[0], ENOSYS);
    BOOST_CHECK_EQUAL(second.counters().allowed, 1u);
    BOOST_CHECK_EQUAL(allowed.drain(), 1);
}

// Per-connect cost, measured against plain connects in the same run.
BOOST_AUTO_TEST_CASE(connect_latency) {
    TcpSink sink;
    UdpSink usink;
    constexpr int kRounds = 1000;
    auto median = [](std::vector<long long> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::vector<long long> plain;
    for (int i = 0; i < kRounds; ++i) {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(sink.port);
        const auto t0 = Clock::now();
        BOOST_REQUIRE_EQUAL(::connect(s.get(), sa(&to), sizeof to), 0);
        plain.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
    }
    sink.drain();
    std::vector<long long> plain_udp;
    UniqueFd pu(::socket(AF_INET, SOCK_DGRAM, 0));
    for (int i = 0; i < kRounds; ++i) {
        sockaddr_in to = loopback4(usink.port);
        const auto t0 = Clock::now();
        ::sendto(pu.get(), "p", 1, 0, sa(&to), sizeof to);
        plain_udp.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
    }
    usink.drain();
    SharedResults r;
    const std::string rules = "127.0.0.1:" + std::to_string(sink.port) + ";udp://127.0.0.1:" + std::to_string(usink.port);
    Outcome o = supervise(allow_policy(rules), [&] {
        std::vector<long long> t, u;
        for (int i = 0; i < kRounds; ++i) {
            UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
            sockaddr_in to = loopback4(sink.port);
            const auto t0 = Clock::now();
            if (::connect(s.get(), sa(&to), sizeof to) != 0) _exit(96);
            t.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
        }
        UniqueFd us(::socket(AF_INET, SOCK_DGRAM, 0));
        for (int i = 0; i < kRounds; ++i) {
            sockaddr_in to = loopback4(usink.port);
            const auto t0 = Clock::now();
            if (::sendto(us.get(), "s", 1, 0, sa(&to), sizeof to) != 1) _exit(97);
            u.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
        }
        r[0] = median(t);
        r[1] = median(u);
        std::sort(t.begin(), t.end());
        r[2] = t[t.size() * 99 / 100];
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_TEST_MESSAGE("connect median: plain " << median(plain) / 1000.0 << " us, supervised " << r[0] / 1000.0
                                                << " us (p99 " << r[2] / 1000.0 << " us); udp sendto median: plain "
                                                << median(plain_udp) / 1000.0 << " us, supervised " << r[1] / 1000.0
                                                << " us");
    BOOST_CHECK_EQUAL(sink.drain(), kRounds);
    BOOST_CHECK_EQUAL(o.counters.allowed, 2u * kRounds);
    BOOST_CHECK_LT(r[0], 5'000'000);  // a sanity bound, not a benchmark
}

// ---- non-IP sockets in supervisor mode: performed by the supervisor, as the caller ----

namespace {

// A scratch directory removed with everything in it.
struct ScratchDir {
    std::filesystem::path path;
    ScratchDir() {
        char tmpl[] = "/tmp/sandlock-unix-test-XXXXXX";
        if (!::mkdtemp(tmpl)) throw_errno("mkdtemp");
        path = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

sockaddr_un unix_name(const std::string& path, socklen_t& len) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strncpy(un.sun_path, path.c_str(), sizeof un.sun_path - 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(un.sun_path) + 1);
    return un;
}

UniqueFd unix_listener(const std::string& path, int type = SOCK_STREAM, int backlog = 16) {
    socklen_t len;
    sockaddr_un un = unix_name(path, len);
    UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd || ::bind(fd.get(), sa(&un), len) != 0) throw_errno("bind " + path);
    if (type == SOCK_STREAM && ::listen(fd.get(), backlog) != 0) throw_errno("listen");
    return fd;
}

std::size_t open_fd_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

int accept_count(int fd) {
    int n = 0;
    while (UniqueFd(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)).valid()) ++n;
    return n;
}

cmsghdr* one_cmsg(msghdr& m, unsigned char* buf, std::size_t size, int type, const void* data, std::size_t len) {
    m.msg_control = buf;
    m.msg_controllen = size;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    std::memcpy(CMSG_DATA(c), data, len);
    return c;
}

}  // namespace

// The path is resolved as the caller resolves it: relative to its cwd, inside its root
// (a chroot here: "/x.sock" and "../x.sock" are the inner one, never the outer one).
BOOST_AUTO_TEST_CASE(unix_paths_resolve_from_the_callers_root_and_cwd, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    ScratchDir dir;
    std::filesystem::create_directories(dir.path / "inner" / "sub");
    UniqueFd outer = unix_listener((dir.path / "x.sock").string());
    UniqueFd inner = unix_listener((dir.path / "inner" / "x.sock").string());
    UniqueFd inner_dgram = unix_listener((dir.path / "inner" / "d.sock").string(), SOCK_DGRAM);
    UniqueFd outer_dgram = unix_listener((dir.path / "d.sock").string(), SOCK_DGRAM);
    SharedResults r;
    const std::string root = (dir.path / "inner").string();
    Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
        if (::chroot(root.c_str()) != 0 || ::chdir("/sub") != 0) _exit(97);
        socklen_t len;
        const char* names[] = {"/x.sock", "../x.sock", "../../../x.sock"};
        for (int i = 0; i < 3; ++i) {
            sockaddr_un un = unix_name(names[i], len);
            UniqueFd c(::socket(AF_UNIX, SOCK_STREAM, 0));
            r[i] = err_of(::connect(c.get(), sa(&un), len));
        }
        sockaddr_un d = unix_name("../../d.sock", len);
        UniqueFd ds(::socket(AF_UNIX, SOCK_DGRAM, 0));
        r[3] = err_of(::sendto(ds.get(), "dg", 2, 0, sa(&d), len));
        sockaddr_un missing = unix_name("/nonexistent.sock", len);
        r[4] = err_of(::sendto(ds.get(), "dg", 2, 0, sa(&missing), len));
        UniqueFd c(::socket(AF_UNIX, SOCK_STREAM, 0));
        r[5] = err_of(::connect(c.get(), sa(&missing), len));
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    for (int i = 0; i < 4; ++i) BOOST_CHECK_EQUAL(r[i], 0);
    BOOST_CHECK_EQUAL(r[4], ENOENT);
    BOOST_CHECK_EQUAL(r[5], ENOENT);
    BOOST_CHECK_EQUAL(accept_count(inner.get()), 3);
    BOOST_CHECK_EQUAL(accept_count(outer.get()), 0);
    char buf[8];
    BOOST_CHECK_EQUAL(::recv(inner_dgram.get(), buf, sizeof buf, MSG_DONTWAIT), 2);
    BOOST_CHECK_EQUAL(::recv(outer_dgram.get(), buf, sizeof buf, MSG_DONTWAIT), -1);
    BOOST_CHECK_GE(o.counters.continued, 6u);  // performed for the caller
    BOOST_CHECK_EQUAL(o.counters.errors, 0u);
}

// Permissions are the caller's: a uid without search permission on the directory gets
// EACCES (the supervisor itself is root), and the listener sees the caller's uid/gid.
BOOST_AUTO_TEST_CASE(unix_connects_have_the_callers_credentials, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    ScratchDir dir;
    std::filesystem::create_directories(dir.path / "open");
    std::filesystem::create_directories(dir.path / "closed");
    ::chmod(dir.path.c_str(), 0755);
    ::chmod((dir.path / "open").c_str(), 0777);
    ::chmod((dir.path / "closed").c_str(), 0700);
    const std::string open_path = (dir.path / "open" / "s.sock").string();
    const std::string closed_path = (dir.path / "closed" / "s.sock").string();
    UniqueFd open_l = unix_listener(open_path);
    UniqueFd closed_l = unix_listener(closed_path);
    ::chmod(open_path.c_str(), 0777);
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(4321, 4321, 4321) != 0 || ::setresuid(1234, 1234, 1234) != 0)
            _exit(97);
        socklen_t len;
        sockaddr_un a = unix_name(open_path, len);
        UniqueFd c1(::socket(AF_UNIX, SOCK_STREAM, 0));
        r[0] = err_of(::connect(c1.get(), sa(&a), len));
        sockaddr_un b = unix_name(closed_path, len);
        UniqueFd c2(::socket(AF_UNIX, SOCK_STREAM, 0));
        r[1] = err_of(::connect(c2.get(), sa(&b), len));
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 0);
    BOOST_CHECK_EQUAL(r[1], EACCES);
    UniqueFd a(::accept4(open_l.get(), nullptr, nullptr, SOCK_CLOEXEC));
    BOOST_REQUIRE(a.valid());
    ucred pc{};
    socklen_t pclen = sizeof pc;
    BOOST_REQUIRE_EQUAL(::getsockopt(a.get(), SOL_SOCKET, SO_PEERCRED, &pc, &pclen), 0);
    BOOST_CHECK_EQUAL(pc.uid, 1234u);
    BOOST_CHECK_EQUAL(pc.gid, 4321u);
    BOOST_CHECK_EQUAL(accept_count(closed_l.get()), 0);
    BOOST_CHECK_EQUAL(::geteuid(), 0u);  // (this process's other threads never changed)
}

// SCM_RIGHTS passes the caller's fds; the receiver's SCM_CREDENTIALS name the caller;
// credentials the caller may not claim are refused (EPERM), a bad fd is EBADF.
BOOST_AUTO_TEST_CASE(unix_sendmsg_passes_fds_and_the_callers_credentials, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    int sv[2];
    // SEQPACKET: one record a message (a stream merges two sends with the same credentials)
    BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd mine(sv[0]), theirs(sv[1]);
    int one = 1;
    ::setsockopt(mine.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    SharedResults r;
    std::vector<pid_t> cred_pids;
    bool wrote_through = false;
    std::thread receiver([&] {
        for (int i = 0; i < 3; ++i) {
            char data[8];
            iovec iov{data, sizeof data};
            alignas(cmsghdr) unsigned char cbuf[256];
            msghdr m{};
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            m.msg_control = cbuf;
            m.msg_controllen = sizeof cbuf;
            pollfd p{mine.get(), POLLIN, 0};
            if (::poll(&p, 1, 5000) != 1 || ::recvmsg(mine.get(), &m, MSG_CMSG_CLOEXEC) <= 0) return;
            for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
                if (c->cmsg_type == SCM_CREDENTIALS) {
                    ucred u;
                    std::memcpy(&u, CMSG_DATA(c), sizeof u);
                    cred_pids.push_back(u.pid);
                } else if (c->cmsg_type == SCM_RIGHTS) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
                    wrote_through = ::write(fd, "via", 3) == 3;
                    ::close(fd);
                }
            }
        }
    });
    Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
        int p[2];
        if (::pipe(p) != 0) _exit(97);
        char data[] = "fd";
        iovec iov{data, 2};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        alignas(cmsghdr) unsigned char cbuf[CMSG_SPACE(sizeof(int))] = {};
        one_cmsg(m, cbuf, sizeof cbuf, SCM_RIGHTS, &p[1], sizeof(int));
        r[0] = ::sendmsg(theirs.get(), &m, 0);
        ::close(p[1]);
        char got[8] = {};
        r[1] = ::read(p[0], got, sizeof got - 1);
        alignas(cmsghdr) unsigned char kbuf[CMSG_SPACE(sizeof(ucred))] = {};
        ucred fake{1, 0, 0};
        one_cmsg(m, kbuf, sizeof kbuf, SCM_CREDENTIALS, &fake, sizeof fake);
        r[2] = err_of(::sendmsg(theirs.get(), &m, 0));
        ucred own{::getpid(), ::getuid(), ::getgid()};
        one_cmsg(m, kbuf, sizeof kbuf, SCM_CREDENTIALS, &own, sizeof own);
        r[3] = ::sendmsg(theirs.get(), &m, 0);
        int bad = 999;
        one_cmsg(m, cbuf, sizeof cbuf, SCM_RIGHTS, &bad, sizeof bad);
        r[4] = err_of(::sendmsg(theirs.get(), &m, 0));
        m.msg_control = nullptr;
        m.msg_controllen = 0;
        r[5] = ::sendmsg(theirs.get(), &m, 0);  // no control: the kernel's credentials are the caller's
        r[6] = ::getpid();
    });
    receiver.join();
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], 2);
    BOOST_CHECK_EQUAL(r[1], 3);
    BOOST_CHECK(wrote_through);
    BOOST_CHECK_EQUAL(r[2], EPERM);
    BOOST_CHECK_EQUAL(r[3], 2);
    BOOST_CHECK_EQUAL(r[4], EBADF);
    BOOST_CHECK_EQUAL(r[5], 2);
    BOOST_REQUIRE_EQUAL(cred_pids.size(), 3u);
    for (pid_t p : cred_pids) BOOST_CHECK_EQUAL(p, r[6]);  // the caller, never the supervisor
}

// A blocking unix connect to a listener whose backlog is full waits (in slices, on a
// non-blocking duplicate) until there is room, and is abandoned when its caller dies.
BOOST_AUTO_TEST_CASE(blocked_unix_connects_wait_and_are_abandoned_with_their_caller, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    ScratchDir dir;
    const std::string path = (dir.path / "full.sock").string();
    UniqueFd l = unix_listener(path, SOCK_STREAM, 0);
    SharedResults r;
    {
        // waits, then gets through when the listener accepts
        std::thread acceptor([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            accept_count(l.get());
        });
        Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
            socklen_t len;
            sockaddr_un un = unix_name(path, len);
            UniqueFd c1(::socket(AF_UNIX, SOCK_STREAM, 0)), c2(::socket(AF_UNIX, SOCK_STREAM, 0));
            r[0] = err_of(::connect(c1.get(), sa(&un), len));
            const auto t0 = Clock::now();
            r[1] = err_of(::connect(c2.get(), sa(&un), len));  // the backlog (0) is full
            r[2] = micros_since(t0);
        });
        acceptor.join();
        BOOST_REQUIRE_EQUAL(o.exit_code, 0);
        BOOST_CHECK_EQUAL(r[0], 0);
        BOOST_CHECK_EQUAL(r[1], 0);
        BOOST_CHECK_GE(r[2], 150'000);
        accept_count(l.get());
    }
    // the caller dies while its connect waits: the supervisor lets it go
    Supervisor sup(allow_policy("127.0.0.1:1"), {});
    const std::size_t fds_before = open_fd_count();
    Sandboxed box = start_sandboxed([&] {
        socklen_t len;
        sockaddr_un un = unix_name(path, len);
        UniqueFd c1(::socket(AF_UNIX, SOCK_STREAM, 0)), c2(::socket(AF_UNIX, SOCK_STREAM, 0));
        ::connect(c1.get(), sa(&un), len);
        ::connect(c2.get(), sa(&un), len);  // waits for good
        _exit(0);
    });
    const pid_t pid = box.pid;
    sup.add_listener(std::move(box.listener));
    std::thread server([&] { sup.run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(pid, SIGKILL);
    box.wait();
    const auto t0 = Clock::now();
    while (sup.listener_count() > 0 && Clock::now() - t0 < std::chrono::seconds(5))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_CHECK_EQUAL(sup.listener_count(), 0u);
    for (int i = 0; i < 100 && open_fd_count() > fds_before; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    BOOST_CHECK_LE(open_fd_count(), fds_before);
    sup.stop();
    server.join();
}

// A blocking TCP connect to a destination that never answers (a listener whose accept
// queue is full drops the SYN) is abandoned when its caller dies.
BOOST_AUTO_TEST_CASE(a_blocked_tcp_connect_is_abandoned_when_its_caller_dies) {
    TcpSink sink(0);
    // fill the accept queue so that further SYNs are dropped
    std::vector<UniqueFd> fillers;
    for (int i = 0; i < 4; ++i) {
        UniqueFd f(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        sockaddr_in to = loopback4(sink.port);
        ::connect(f.get(), sa(&to), sizeof to);
        fillers.push_back(std::move(f));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Supervisor sup(allow_policy("127.0.0.1:" + std::to_string(sink.port)), {});
    const std::size_t fds_before = open_fd_count();
    SharedResults r;
    Sandboxed box = start_sandboxed([&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
        sockaddr_in to = loopback4(sink.port);
        r[0] = ::connect(s.get(), sa(&to), sizeof to);
        ::pause();
        _exit(0);
    });
    const pid_t pid = box.pid;
    sup.add_listener(std::move(box.listener));
    std::thread server([&] { sup.run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ::kill(pid, SIGKILL);
    box.wait();
    const auto t0 = Clock::now();
    while (sup.listener_count() > 0 && Clock::now() - t0 < std::chrono::seconds(5))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_CHECK_EQUAL(r[0], -12345);  // the connect was still waiting when its caller died
    BOOST_CHECK_EQUAL(sup.listener_count(), 0u);
    // the duplicate of the caller's socket is closed: no thread still waits on it
    for (int i = 0; i < 100 && open_fd_count() > fds_before; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    BOOST_TEST_MESSAGE("abandoned after " << micros_since(t0) << " us");
    BOOST_CHECK_LE(open_fd_count(), fds_before);
    sup.stop();
    server.join();
}

// The fd-swap race, in miniature: a thread dup2()s a UDP socket (and an IP address)
// onto the fd of a unix-socket sendmsg and a TCP socket onto a unix connect. The
// supervisor performs the unix calls itself, so the denied sinks receive nothing.
BOOST_AUTO_TEST_CASE(fd_swaps_onto_unix_calls_never_reach_a_denied_address) {
    UdpSink denied_udp;
    TcpSink denied_tcp;
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
        static sockaddr_storage buf;
        static sockaddr_in ip4;
        static sockaddr_un un;
        std::atomic<bool> done{false};
        constexpr int kFd = 200;
        un.sun_family = AF_UNIX;
        std::strcpy(un.sun_path, "/nonexistent-swap");
        for (int round = 0; round < 2; ++round) {
            const bool stream = round == 1;
            ip4 = loopback4(stream ? denied_tcp.port : denied_udp.port);
            UniqueFd u(::socket(AF_UNIX, stream ? SOCK_STREAM : SOCK_DGRAM, 0));
            ::dup2(u.get(), kFd);
            std::memcpy(&buf, &un, sizeof un);
            done = false;
            std::thread swapper([&] {
                UniqueFd ip(::socket(AF_INET, stream ? SOCK_STREAM : SOCK_DGRAM, 0));
                while (!done.load(std::memory_order_relaxed)) {
                    ::dup2(ip.get(), kFd);
                    std::memcpy(&buf, &ip4, sizeof ip4);
                    ::dup2(u.get(), kFd);
                    std::memcpy(&buf, &un, sizeof un);
                    sockaddr_in peer;
                    socklen_t plen = sizeof peer;
                    if (stream && ::getpeername(ip.get(), reinterpret_cast<sockaddr*>(&peer), &plen) == 0)
                        ip = UniqueFd(::socket(AF_INET, SOCK_STREAM, 0));
                }
            });
            int ok = 0;
            for (int i = 0; i < 3000; ++i) {
                char data[] = "swap";
                iovec iov{data, 4};
                msghdr m{};
                m.msg_name = &buf;
                m.msg_namelen = sizeof(sockaddr_un);
                m.msg_iov = &iov;
                m.msg_iovlen = 1;
                const long rc = stream ? ::connect(kFd, sa(&buf), sizeof(sockaddr_un)) : ::sendmsg(kFd, &m, MSG_DONTWAIT);
                if (rc >= 0) ++ok;
            }
            done = true;
            swapper.join();
            r[round] = ok;
        }
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_TEST_MESSAGE("calls that succeeded: sendmsg " << r[0] << ", connect " << r[1]);
    BOOST_CHECK(denied_udp.drain().empty());
    BOOST_CHECK_EQUAL(denied_tcp.drain(), 0);
    BOOST_CHECK_GT(o.counters.denied, 0u);     // the IP side was judged (and refused)
    BOOST_CHECK_GT(o.counters.continued, 0u);  // the unix side was performed
}

// The /proc status fields the supervisor acts on, and id maps (no process needed).
BOOST_AUTO_TEST_CASE(caller_status_and_id_maps_parse) {
    shim::ThreadCredentials c;
    const std::string status =
        "Name:\tx\nTgid:\t4242\nNgid:\t0\nPid:\t4243\nUid:\t1000\t1001\t1002\t1003\nGid:\t2000\t2001\t2002\t2003\n"
        "Groups:\t10 20 \nNStgid:\t4242\t7\nCapEff:\t00000000000000c0\n";
    BOOST_REQUIRE(shim::parse_status(status, c));
    BOOST_CHECK_EQUAL(c.ids.tgid, 4242);
    BOOST_CHECK_EQUAL(c.ns_tgid, 7);
    BOOST_CHECK_EQUAL(c.ids.ruid, 1000u);
    BOOST_CHECK_EQUAL(c.ids.fsuid, 1003u);
    BOOST_CHECK_EQUAL(c.ids.egid, 2001u);
    BOOST_CHECK_EQUAL(c.groups.size(), 2u);
    BOOST_CHECK_EQUAL(c.cap_effective, 0xc0u);  // CAP_SETGID, CAP_SETUID
    shim::ThreadCredentials bad;
    BOOST_CHECK(!shim::parse_status("Tgid:\t1\nUid:\t1 2\n", bad));  // fields missing: refused
    const std::vector<std::uint64_t> map = {0, 100000, 65536, 70000, 5, 1};
    BOOST_CHECK_EQUAL(shim::map_id(map, 0).value(), 100000u);
    BOOST_CHECK_EQUAL(shim::map_id(map, 65535).value(), 165535u);
    BOOST_CHECK_EQUAL(shim::map_id(map, 70000).value(), 5u);
    BOOST_CHECK(!shim::map_id(map, 65536).has_value());
}

// Netlink (glibc's getaddrinfo asks the kernel for the addresses this way) works when
// the supervisor performs the calls: a route dump is sent with sendto and answered.
BOOST_AUTO_TEST_CASE(netlink_calls_are_performed_as_the_caller) {
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
        UniqueFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
        if (!nl) _exit(97);
        struct {
            nlmsghdr h;
            rtgenmsg g;
        } req{};
        req.h.nlmsg_len = sizeof req;
        req.h.nlmsg_type = RTM_GETLINK;
        req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        req.h.nlmsg_seq = 1;
        req.g.rtgen_family = AF_UNSPEC;
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        r[0] = ::sendto(nl.get(), &req, sizeof req, 0, sa(&kernel), sizeof kernel);
        char buf[8192];
        pollfd p{nl.get(), POLLIN, 0};
        r[1] = ::poll(&p, 1, 5000) == 1 ? ::recv(nl.get(), buf, sizeof buf, 0) : -1;
        iovec iov{&req, sizeof req};
        msghdr m{};
        m.msg_name = &kernel;
        m.msg_namelen = sizeof kernel;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        req.h.nlmsg_seq = 2;
        r[2] = ::sendmsg(nl.get(), &m, 0);
        r[3] = static_cast<long long>(sizeof req);
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], r[3]);
    BOOST_CHECK_GT(r[1], 0);
    BOOST_CHECK_EQUAL(r[2], r[0]);
    BOOST_CHECK_EQUAL(o.counters.errors, 0u);
}

// Abstract unix names live in the socket's network namespace: in a private one (a
// container's) they are reached; in the supervisor's own (a container sharing the host's)
// they are the host's, which the caller's Landlock scope would refuse: EPERM.
BOOST_AUTO_TEST_CASE(abstract_unix_names_only_in_a_private_network_namespace, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    SharedResults r;
    Outcome o = supervise(allow_policy("127.0.0.1:1"), [&] {
        const auto abstract = [](const char* name, socklen_t& len) {
            sockaddr_un un{};
            un.sun_family = AF_UNIX;
            std::memcpy(un.sun_path + 1, name, std::strlen(name));
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + std::strlen(name));
            return un;
        };
        socklen_t len;
        sockaddr_un host = abstract("sandlock-test-host-ns", len);
        UniqueFd h(::socket(AF_UNIX, SOCK_STREAM, 0));
        r[0] = err_of(::connect(h.get(), sa(&host), len));
        if (::unshare(CLONE_NEWNET) != 0) _exit(97);
        sockaddr_un own = abstract("sandlock-test-private-ns", len);
        UniqueFd l(::socket(AF_UNIX, SOCK_STREAM, 0));
        if (::bind(l.get(), sa(&own), len) != 0 || ::listen(l.get(), 4) != 0) _exit(98);
        UniqueFd c(::socket(AF_UNIX, SOCK_STREAM, 0));
        r[1] = err_of(::connect(c.get(), sa(&own), len));
        UniqueFd d(::socket(AF_UNIX, SOCK_DGRAM, 0));
        r[2] = err_of(::sendto(d.get(), "x", 1, 0, sa(&own), len));  // a stream listener: the kernel says why not
    });
    BOOST_REQUIRE_EQUAL(o.exit_code, 0);
    BOOST_CHECK_EQUAL(r[0], EPERM);
    BOOST_CHECK_EQUAL(r[1], 0);
    BOOST_CHECK_NE(r[2], EPERM);
}

BOOST_AUTO_TEST_SUITE_END()
