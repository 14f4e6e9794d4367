// The egress seccomp filter, installed in forked children that set no_new_privs
// themselves. Refusals are checked in the child (its exit status reports, stderr
// names a failed check). Notifications are received by the parent on the child's
// listener, taken with pidfd_getfd, and answered with chosen errors.
#define BOOST_TEST_DYN_LINK
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/egress/filter.hpp"
#include "runtime/linux/seccomp.hpp"
#include "runtime/util/error.hpp"
#include "tests/support.hpp"
#include "runtime/util/fd.hpp"

namespace egress_filter {
using namespace sandlock;
using namespace sandlock::testing;

// The child side of the setup every filtered child shares.
int install_filter_in_child() {
    require(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, 97, "no_new_privs");
    return egress::install_egress_filter().release();  // kept open until exit
}

// Runs body in a child under the egress filter; its exit status.
int run_filtered(const std::function<void()>& body) {
    Child child([&] {
        install_filter_in_child();
        body();
    });
    return child.wait();
}

struct Pipe {
    UniqueFd rd, wr;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
        rd.reset(fds[0]);
        wr.reset(fds[1]);
    }
};

void write_int(int fd, int v) {
    if (::write(fd, &v, sizeof(v)) != static_cast<ssize_t>(sizeof(v))) throw_errno("write pipe");
}

// Reads an int; nullopt at EOF (the writer exited).
std::optional<int> read_int(int fd) {
    int v = 0;
    ssize_t n;
    while ((n = ::read(fd, &v, sizeof(v))) < 0 && errno == EINTR) {
    }
    if (n != static_cast<ssize_t>(sizeof(v))) return std::nullopt;
    return v;
}

// A child under the egress filter whose listener the parent holds: the child
// reports the listener's fd number through a pipe and the parent duplicates it
// with pidfd_getfd. The child marks its progress with numbered steps, each of
// which waits for the parent's go-ahead, so a step report proves that no call
// before it was notified (a notified call would block the child before it).
class SupervisedChild {
public:
    // prepare runs before the filter is installed (e.g. connect a UDP socket);
    // body after, with a function reporting a step to the parent (and waiting for
    // its go-ahead).
    SupervisedChild(const std::function<void()>& prepare,
                    const std::function<void(const std::function<void(int)>&)>& body)
        : child_([&] {
              to_parent_.rd.reset();
              to_child_.wr.reset();
              prepare();
              const int listener = install_filter_in_child();
              write_int(to_parent_.wr.get(), listener);
              body([&](int step) {
                  write_int(to_parent_.wr.get(), step);
                  require(read_int(to_child_.rd.get()).has_value(), 98, "go-ahead");
              });
          }) {
        to_parent_.wr.reset();
        to_child_.rd.reset();
        std::optional<int> fd_number = read_int(to_parent_.rd.get());
        if (!fd_number) throw Error("child exited before reporting its listener");
        UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child_.pid(), 0)));
        if (!pidfd) throw_errno("pidfd_open");
        listener_.reset(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), *fd_number, 0)));
        if (!listener_) throw_errno("pidfd_getfd");
    }

    pid_t pid() const { return child_.pid(); }
    int wait() { return child_.wait(); }
    int listener() const { return listener_.get(); }

    // Waits for the child's next step report. A notification arriving instead is
    // an error: a call before the step was notified. Returns the step number.
    int next_step_without_notification(int timeout_ms = 10000) {
        pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {to_parent_.rd.get(), POLLIN, 0}};
        int n = ::poll(fds, 2, timeout_ms);
        if (n < 0) throw_errno("poll");
        if (fds[0].revents & POLLIN) throw Error("unexpected seccomp notification");
        if (n == 0) throw Error("timed out waiting for the child");
        std::optional<int> step = read_int(to_parent_.rd.get());
        if (!step) throw Error("the child exited instead of reporting a step");
        return *step;
    }
    // Lets the child go on after a step.
    void go_ahead() { write_int(to_child_.wr.get(), 1); }

    // The next notification, or nullopt after timeout_ms.
    std::optional<seccomp_notif> next_notification(int timeout_ms = 10000) {
        pollfd pfd{listener_.get(), POLLIN, 0};
        int n = ::poll(&pfd, 1, timeout_ms);
        if (n < 0) throw_errno("poll");
        if (n == 0 || !(pfd.revents & POLLIN)) return std::nullopt;
        seccomp_notif notif{};
        if (::ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_RECV, &notif) != 0)
            throw_errno("SECCOMP_IOCTL_NOTIF_RECV");
        return notif;
    }

    // Answers a notification: the call returns val, or fails with err when err != 0.
    // Returns 0 or the ioctl's errno (ENOENT: the call is no longer waiting).
    int respond(const seccomp_notif& notif, int err, long val = 0) {
        seccomp_notif_resp resp{};
        resp.id = notif.id;
        resp.error = -err;
        resp.val = err ? 0 : val;
        return ::ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0 ? 0 : errno;
    }

private:
    Pipe to_parent_;
    Pipe to_child_;
    Child child_;
    UniqueFd listener_;
};

long raw_socket(unsigned long family, unsigned long type, unsigned long protocol) {
    long fd = ::syscall(SYS_socket, family, type, protocol);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return fd;
}

long raw_socketpair(int family, int type) {
    int sv[2];
    long rc = ::socketpair(family, type, 0, sv);
    if (rc == 0) {
        ::close(sv[0]);
        ::close(sv[1]);
    }
    return rc;
}

// Runs a syscall through the i386 entry (int 0x80); returns its raw result.
long int80_getpid() {
    long ret = 20;  // i386 __NR_getpid
    asm volatile("int $0x80" : "+a"(ret) : : "memory");
    return ret;
}

// A UDP pair on loopback: tx is connected to rx.
struct UdpPair {
    UniqueFd rx, tx;
    sockaddr_in rx_addr{};
    UdpPair()
        : rx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)),
          tx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        if (!rx || !tx) throw_errno("socket");
        rx_addr = loopback4(0);
        if (::bind(rx.get(), reinterpret_cast<sockaddr*>(&rx_addr), sizeof(rx_addr)) != 0)
            throw_errno("bind");
        socklen_t len = sizeof(rx_addr);
        if (::getsockname(rx.get(), reinterpret_cast<sockaddr*>(&rx_addr), &len) != 0)
            throw_errno("getsockname");
        if (::connect(tx.get(), reinterpret_cast<sockaddr*>(&rx_addr), sizeof(rx_addr)) != 0)
            throw_errno("connect");
    }
    // Receives one datagram without blocking; its payload or "" when none.
    std::string receive() {
        char buf[64];
        ssize_t n = ::recv(rx.get(), buf, sizeof(buf), MSG_DONTWAIT);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
};

void drop_effective_sys_admin() {
    cap_t caps = cap_get_proc();
    if (!caps) throw_errno("cap_get_proc");
    cap_value_t v = CAP_SYS_ADMIN;
    int rc = cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
    if (rc == 0) rc = cap_set_proc(caps);
    cap_free(caps);
    if (rc != 0) throw_errno("cap_set_proc");
}

volatile sig_atomic_t g_usr1_seen = 0;
void on_usr1(int) { g_usr1_seen = 1; }

}  // namespace egress_filter

BOOST_AUTO_TEST_SUITE(egress_filter)

BOOST_AUTO_TEST_CASE(program_checks_the_architecture_first) {
    const std::vector<sock_filter> prog = egress::egress_filter_bpf();
    BOOST_TEST_REQUIRE(prog.size() > 2u);
    BOOST_TEST(prog.size() <= static_cast<size_t>(BPF_MAXINSNS));
    BOOST_TEST(prog[0].code == (BPF_LD | BPF_W | BPF_ABS));
    BOOST_TEST(prog[0].k == offsetof(seccomp_data, arch));
    BOOST_TEST(prog[1].k == AUDIT_ARCH_X86_64);
}

// The programs the runtime carries (generated at build time) are the ones libseccomp makes
// from the rules now, instruction for instruction: a stale generated file fails here.
BOOST_AUTO_TEST_CASE(the_prebuilt_programs_are_what_libseccomp_makes) {
    for (const bool connect_only : {true, false}) {
        const std::vector<sock_filter> carried = egress::egress_filter_bpf(connect_only);
        const std::vector<sock_filter> built = egress::build_egress_filter_bpf(connect_only);
        BOOST_TEST_REQUIRE(carried.size() == built.size(), "connect_only " << connect_only);
        for (std::size_t i = 0; i < built.size(); ++i) {
            BOOST_TEST(carried[i].code == built[i].code, "instruction " << i);
            BOOST_TEST(carried[i].jt == built[i].jt, "instruction " << i);
            BOOST_TEST(carried[i].jf == built[i].jf, "instruction " << i);
            BOOST_TEST(carried[i].k == built[i].k, "instruction " << i);
        }
    }
    // the two modes differ (sendto/sendmsg/sendmmsg are notified in supervisor mode only)
    BOOST_TEST(egress::egress_filter_bpf(true).size() < egress::egress_filter_bpf(false).size());
}

BOOST_AUTO_TEST_CASE(refuses_socket_families, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    // Control: unconfined root may open a packet socket, so the filter is what refuses.
    long control = raw_socket(AF_PACKET, SOCK_DGRAM, 0);
    BOOST_TEST_REQUIRE(control >= 0);
    const int rc = run_filtered([] {
        require_result(raw_socket(AF_PACKET, SOCK_DGRAM, 0), EAFNOSUPPORT, 1, "AF_PACKET dgram");
        require_result(raw_socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), EAFNOSUPPORT, 2,
                       "AF_PACKET raw");
        require_result(raw_socket(AF_UNSPEC, SOCK_STREAM, 0), EAFNOSUPPORT, 3, "AF_UNSPEC");
        require_result(raw_socket(AF_APPLETALK, SOCK_DGRAM, 0), EAFNOSUPPORT, 4, "AF_APPLETALK");
        require_result(raw_socket(AF_KEY, SOCK_RAW, 2), EAFNOSUPPORT, 5, "AF_KEY");
        require_result(raw_socket(AF_VSOCK, SOCK_STREAM, 0), EAFNOSUPPORT, 6, "AF_VSOCK");
        require_result(raw_socket(AF_NETLINK + 1, SOCK_DGRAM, 0), EAFNOSUPPORT, 7,
                       "AF_PACKET by number");
        // The kernel reads an int; upper bits in the register must not smuggle AF_PACKET
        // past an EQ check, nor turn AF_INET into a refusal-free value: both refused.
        require_result(raw_socket((1UL << 32) | AF_PACKET, SOCK_DGRAM, 0), EAFNOSUPPORT, 8,
                       "high bits + AF_PACKET");
        require_result(raw_socket((1UL << 32) | AF_INET, SOCK_STREAM, 0), EAFNOSUPPORT, 9,
                       "high bits + AF_INET");
        require_result(raw_socketpair(AF_PACKET, SOCK_DGRAM), EAFNOSUPPORT, 10,
                       "socketpair AF_PACKET");
        require_result(raw_socketpair(AF_TIPC, SOCK_DGRAM), EAFNOSUPPORT, 11, "socketpair AF_TIPC");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(refuses_every_family_but_four) {
    // Most families are not built into this kernel, so probe with an invalid type
    // (15: the kernel says EINVAL for every family below NPROTO before looking the
    // family up): any EAFNOSUPPORT then comes from the filter.
    constexpr int kBadType = 15;
    constexpr int kProbed = 64;  // past the kernel's NPROTO (46)
    for (int family = 0; family < 46; ++family)
        BOOST_TEST_REQUIRE(raw_socket(family, kBadType, 0) == -1L);
    const int rc = run_filtered([] {
        for (int family = 0; family < kProbed; ++family) {
            const bool allowed = family == AF_UNIX || family == AF_INET || family == AF_INET6 ||
                                 family == AF_NETLINK;
            const std::string name = "family " + std::to_string(family);
            // An IP family refuses the type itself (refuses_ip_sockets_it_cannot_judge).
            const bool ip = family == AF_INET || family == AF_INET6;
            require_result(raw_socket(family, kBadType, 0), !allowed ? EAFNOSUPPORT : ip ? EPROTONOSUPPORT : EINVAL,
                           1, "socket " + name);
            require_result(raw_socketpair(family, kBadType), allowed ? EINVAL : EAFNOSUPPORT, 2,
                           "socketpair " + name);
        }
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(refuses_raw_sockets) {
    const int rc = run_filtered([] {
        require_result(raw_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), EPERM, 1, "AF_INET raw ICMP");
        require_result(raw_socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP), EPERM, 2,
                       "raw|CLOEXEC");
        require_result(raw_socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW),
                       EPERM, 3, "raw|NONBLOCK|CLOEXEC");
        require_result(raw_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), EPERM, 4, "AF_INET6 raw");
        require_result(raw_socket(AF_UNIX, SOCK_RAW, 0), EPERM, 5, "AF_UNIX raw");
        require_result(raw_socket(AF_INET, (1UL << 32) | SOCK_RAW, IPPROTO_ICMP), EPERM, 6,
                       "raw with high bits");
        require_result(raw_socketpair(AF_UNIX, SOCK_RAW), EPERM, 7, "socketpair AF_UNIX raw");
        // Netlink's SOCK_RAW is its ordinary type (see filter.hpp): allowed.
        require_result(raw_socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 0, 8,
                       "netlink raw");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(allows_ordinary_sockets_and_ping_sockets, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    const int rc = run_filtered([] {
        require_result(raw_socket(AF_INET, SOCK_STREAM, 0), 0, 1, "AF_INET stream");
        require_result(raw_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), 0, 2, "AF_INET dgram");
        require_result(raw_socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0), 0, 3,
                       "AF_INET6 stream");
        require_result(raw_socket(AF_INET6, SOCK_DGRAM, 0), 0, 4, "AF_INET6 dgram");
        require_result(raw_socket(AF_UNIX, SOCK_SEQPACKET, 0), 0, 5, "AF_UNIX seqpacket");
        require_result(raw_socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE), 0, 6, "netlink dgram");
        require_result(raw_socketpair(AF_UNIX, SOCK_STREAM), 0, 7, "socketpair AF_UNIX");
    });
    BOOST_TEST(rc == 0);

    // Ping sockets: allowed by ping_group_range, a per-netns sysctl ("1 0", nobody,
    // on this host), so the child opens its own network namespace.
    const int ping =
        Child([] {
            require(::unshare(CLONE_NEWNET) == 0, 1, "unshare netns");
            UniqueFd f(::open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC));
            require(f && ::write(f.get(), "0 0", 3) == 3, 2, "ping_group_range");
            install_filter_in_child();
            require_result(raw_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), 0, 3, "ping socket");
            require_result(raw_socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6), 0, 4, "ping6 socket");
        }).wait();
    BOOST_TEST(ping == 0);
}

BOOST_AUTO_TEST_CASE(refuses_io_uring) {
    const int rc = run_filtered([] {
        unsigned char params[120] = {};  // struct io_uring_params
        require_result(::syscall(SYS_io_uring_setup, 4, params), EPERM, 1, "io_uring_setup");
        // Unfiltered, these fail with EBADF on fd -1.
        require_result(::syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0), EPERM, 2,
                       "io_uring_enter");
        require_result(::syscall(SYS_io_uring_register, -1, 0, nullptr, 0), EPERM, 3,
                       "io_uring_register");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(refuses_bpf) {
    // Control: unfiltered root gets EINVAL for an unknown command, so EPERM is the filter's.
    BOOST_TEST_REQUIRE(::syscall(SYS_bpf, 0xffff, nullptr, 0) == -1L);
    BOOST_TEST_REQUIRE(errno == EINVAL);
    const int rc = run_filtered([] {
        require_result(::syscall(SYS_bpf, 0xffff, nullptr, 0), EPERM, 1, "bpf unknown command");
        // BPF_PROG_DETACH (cmd 9), what would remove the cgroup programs
        require_result(::syscall(SYS_bpf, 9, nullptr, 0), EPERM, 2, "bpf BPF_PROG_DETACH");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(refuses_source_routing_options) {
    const int rc = run_filtered([] {
        int s4 = ::socket(AF_INET, SOCK_DGRAM, 0);
        int s6 = ::socket(AF_INET6, SOCK_DGRAM, 0);
        require(s4 >= 0 && s6 >= 0, 1, "udp sockets");
        // A loose source route (LSRR) option: the bytes do not matter, the filter
        // refuses by level and name before the kernel parses them.
        unsigned char lsrr[8] = {1, 131, 7, 4, 127, 0, 0, 1};
        require_result(::setsockopt(s4, SOL_IP, IP_OPTIONS, lsrr, sizeof lsrr), EPERM, 2,
                       "IP_OPTIONS");
        unsigned char rthdr[8] = {};
        require_result(::setsockopt(s6, SOL_IPV6, IPV6_RTHDR, rthdr, sizeof rthdr), EPERM, 3,
                       "IPV6_RTHDR");
        // Other options are untouched.
        int one = 1;
        require(::setsockopt(s4, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, 4,
                "SO_REUSEADDR");
        require(::setsockopt(s4, SOL_IP, IP_TOS, &one, sizeof one) == 0, 5, "IP_TOS");
    });
    BOOST_TEST(rc == 0);
}

// Every flow-label and packet-option setsockopt that can attach a routing header. The
// control (unfiltered) shows the kernel would have parsed them: anything but EPERM.
BOOST_AUTO_TEST_CASE(refuses_flow_label_and_packet_options) {
    constexpr int kIpv6PktOptions2292 = 6, kIpv6FlowLabelMgr = 32, kIpv6FlowInfoSend = 33;
    const int names[] = {kIpv6PktOptions2292, kIpv6FlowLabelMgr, kIpv6FlowInfoSend};
    {
        UniqueFd s6(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        BOOST_TEST_REQUIRE(s6.valid());
        int one = 1;
        for (int name : names) {
            const int rc = ::setsockopt(s6.get(), SOL_IPV6, name, &one, sizeof one);
            BOOST_TEST_INFO("control, option " << name);
            BOOST_TEST((rc == 0 || errno != EPERM));
        }
    }
    const int rc = run_filtered([&names] {
        int s6 = ::socket(AF_INET6, SOCK_DGRAM, 0);
        require(s6 >= 0, 1, "udp6 socket");
        int one = 1;
        int code = 2;
        for (int name : names)
            require_result(::setsockopt(s6, SOL_IPV6, name, &one, sizeof one), EPERM, code++,
                           "setsockopt SOL_IPV6 " + std::to_string(name));
    });
    BOOST_TEST(rc == 0);
}

// socket(): only the types and protocols the policy can judge. Each refused combination
// is first shown to work without the filter (or skipped, saying the kernel lacks it).
BOOST_AUTO_TEST_CASE(refuses_ip_sockets_it_cannot_judge) {
    struct Case {
        int family, type, protocol;
        const char* name;
    };
    const Case refused[] = {
        {AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, "udp-lite"},
        {AF_INET6, SOCK_DGRAM, IPPROTO_UDPLITE, "udp-lite6"},
        {AF_INET, SOCK_STREAM, IPPROTO_SCTP, "sctp stream"},
        {AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP, "sctp seqpacket"},
        {AF_INET, SOCK_SEQPACKET, 0, "seqpacket"},
        {AF_INET, SOCK_DCCP, 0, "dccp"},
        {AF_INET, SOCK_STREAM, IPPROTO_UDP, "stream/udp"},
        {AF_INET6, SOCK_DGRAM, IPPROTO_TCP, "dgram/tcp"},
        {AF_INET, SOCK_DGRAM, 0x10000 | IPPROTO_UDP, "udp with high bits"},
    };
    std::vector<Case> testable;
    for (const Case& c : refused) {
        UniqueFd fd(::socket(c.family, c.type | SOCK_CLOEXEC, c.protocol));
        if (fd.valid() || errno != EPROTONOSUPPORT)
            testable.push_back(c);
        else
            BOOST_TEST_MESSAGE(std::string(c.name) + ": this kernel refuses it already (EPROTONOSUPPORT): not told apart");
    }
    BOOST_TEST_REQUIRE(testable.size() >= 3u);  // UDP-Lite and the mismatches at least
    const bool kernel_has_mptcp = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP)).valid();
    const int rc = run_filtered([&testable, kernel_has_mptcp] {
        int code = 1;
        for (const Case& c : testable)
            require_result(::socket(c.family, c.type, c.protocol), EPROTONOSUPPORT, code++, c.name);
        // What the policy judges still works.
        const int ok[][3] = {{AF_INET, SOCK_STREAM, 0},        {AF_INET, SOCK_STREAM, IPPROTO_TCP},
                             {AF_INET, SOCK_STREAM, IPPROTO_MPTCP}, {AF_INET6, SOCK_STREAM, IPPROTO_MPTCP},
                             {AF_INET6, SOCK_STREAM, 0},       {AF_INET, SOCK_DGRAM, 0},
                             {AF_INET, SOCK_DGRAM, IPPROTO_UDP}, {AF_INET6, SOCK_DGRAM, IPPROTO_UDP},
                             {AF_INET, SOCK_DGRAM, IPPROTO_ICMP}, {AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6}};
        for (const auto& o : ok) {
            const int fd = ::socket(o[0], o[1] | SOCK_NONBLOCK, o[2]);
            // ping sockets need net.ipv4.ping_group_range (EACCES), MPTCP a kernel with it
            require(fd >= 0 || errno == EACCES || (o[2] == IPPROTO_MPTCP && !kernel_has_mptcp),
                    50 + code++, "a judgeable socket was refused");
        }
        require(::socket(AF_UNIX, SOCK_SEQPACKET, 0) >= 0, 99, "unix seqpacket");
    });
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(kills_foreign_architecture_syscalls) {
    // Control, in a child: whether this kernel runs i386 syscalls at all (IA32
    // emulation; where it is off, or a hypervisor refuses int 0x80, the caller gets SIGSEGV).
    // (SIG_DFL first: Boost's handler would catch the SIGSEGV and go on testing in the child.)
    const bool ia32 = Child([] {
                          ::signal(SIGSEGV, SIG_DFL);
                          require(int80_getpid() == ::getpid(), 1, "int 0x80 getpid");
                      }).wait() == 0;
    if (ia32) {
        const int rc = run_filtered([] {
            int80_getpid();
            require(false, 1, "an i386 syscall returned under the filter");
        });
        BOOST_TEST(rc == 128 + SIGSYS);
    } else {
        BOOST_TEST_MESSAGE("no IA32 emulation: int 0x80 part skipped");
    }
    // x32 numbers (bit 30) come in with the x86_64 arch value: killed too.
    const int rc = run_filtered([] {
        ::syscall(0x40000000L | SYS_getpid);
        require(false, 1, "an x32 syscall returned under the filter");
    });
    BOOST_TEST(rc == 128 + SIGSYS);
}

BOOST_AUTO_TEST_CASE(install_needs_no_new_privs_or_cap_sys_admin) {
    const int rc = Child([] {
                       drop_effective_sys_admin();
                       std::string message;
                       try {
                           egress::install_egress_filter();
                       } catch (const Error& e) {
                           message = e.what();
                       }
                       require(message ==
                                   "load seccomp filter (needs no_new_privs or CAP_SYS_ADMIN): "
                                   "Permission denied",
                               1, "error: " + message);
                   }).wait();
    BOOST_TEST(rc == 0);
}

BOOST_AUTO_TEST_CASE(connect_is_notified_and_answered) {
    UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = loopback4(0);
    BOOST_TEST_REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    BOOST_TEST_REQUIRE(::listen(server.get(), 4) == 0);
    socklen_t len = sizeof(addr);
    BOOST_TEST_REQUIRE(::getsockname(server.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);

    SupervisedChild child([] {},
                          [&](const std::function<void(int)>&) {
                              UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                              // The listener is real: unconfined, this connect succeeds.
                              long r = ::connect(c.get(), reinterpret_cast<sockaddr*>(&addr),
                                                 sizeof(addr));
                              require_result(r, ECONNREFUSED, 1, "connect answered by the parent");
                          });
    std::optional<seccomp_notif> n = child.next_notification();
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST(n->data.nr == SYS_connect);
    BOOST_TEST(n->data.arch == AUDIT_ARCH_X86_64);
    BOOST_TEST(static_cast<pid_t>(n->pid) == child.pid());
    BOOST_TEST(child.respond(*n, ECONNREFUSED) == 0);
    BOOST_TEST(child.wait() == 0);
}

BOOST_AUTO_TEST_CASE(send_paths_notified_only_with_a_destination) {
    std::optional<UdpPair> udp;  // filled in the child only
    SupervisedChild child(
        [&] { udp.emplace(); },  // connected before the filter: connect would be notified
        [&](const std::function<void(int)>& step) {
            UdpPair& u = *udp;
            // 1: send() on the connected socket, and sendto with a NULL address (any
            // length): the data path, never notified, delivered.
            require_result(::send(u.tx.get(), "a", 1, 0), 0, 1, "send");
            require_result(::sendto(u.tx.get(), "b", 1, 0, nullptr, 0), 0, 2, "sendto NULL");
            require_result(::sendto(u.tx.get(), "c", 1, 0, nullptr, sizeof(sockaddr_in)), 0, 3,
                           "sendto NULL with a length");
            require(u.receive() == "a" && u.receive() == "b" && u.receive() == "c", 4, "delivered");
            step(1);

            // 2: sendto with an address: notified; the parent refuses it.
            sockaddr_in to = u.rx_addr;
            long r = ::sendto(u.tx.get(), "d", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
            require_result(r, ENETUNREACH, 5, "sendto with an address");

            // 3: sendmsg with no msg_name: still notified (the filter cannot read it).
            char payload[] = "e";
            iovec iov{payload, 1};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            require_result(::sendmsg(u.tx.get(), &msg, 0), EHOSTUNREACH, 6,
                           "sendmsg without a name");
            // 4: sendmsg with a name.
            msg.msg_name = &to;
            msg.msg_namelen = sizeof(to);
            require_result(::sendmsg(u.tx.get(), &msg, 0), EACCES, 7, "sendmsg with a name");
            // 5: sendmmsg: the parent answers "1 sent" without sending anything.
            mmsghdr mm[2] = {};
            mm[0].msg_hdr = msg;
            mm[1].msg_hdr = msg;
            long sent = ::sendmmsg(u.tx.get(), mm, 2, 0);
            require(sent == 1, 8,
                    "sendmmsg returned " + std::to_string(sent) + ", the parent said 1");
            require(u.receive().empty(), 9, "nothing may have been delivered on behalf of nobody");
        });

    BOOST_TEST_REQUIRE(child.next_step_without_notification() == 1);
    child.go_ahead();

    struct Expected {
        long nr;
        int err;
        long val;
    };
    const Expected expected[] = {{SYS_sendto, ENETUNREACH, 0},
                                 {SYS_sendmsg, EHOSTUNREACH, 0},
                                 {SYS_sendmsg, EACCES, 0},
                                 {SYS_sendmmsg, 0, 1}};
    for (const Expected& e : expected) {
        std::optional<seccomp_notif> n = child.next_notification();
        BOOST_TEST_REQUIRE(n.has_value());
        BOOST_TEST(n->data.nr == e.nr);
        if (e.nr == SYS_sendto) BOOST_TEST(n->data.args[4] != 0u);
        if (e.nr == SYS_sendmsg && e.err == EHOSTUNREACH) BOOST_TEST(n->data.args[1] != 0u);
        BOOST_TEST(child.respond(*n, e.err, e.val) == 0);
    }
    BOOST_TEST(child.wait() == 0);
}

BOOST_AUTO_TEST_CASE(received_notification_is_not_interrupted_by_signals) {
    if (!os::kernel_supports_filter_flag(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)) {
        BOOST_TEST_MESSAGE("kernel without SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: skipped");
        return;
    }
    SupervisedChild child(
        [] {
            struct sigaction sa {};
            sa.sa_handler = on_usr1;  // no SA_RESTART: an interrupted connect would fail EINTR
            ::sigaction(SIGUSR1, &sa, nullptr);
        },
        [](const std::function<void(int)>&) {
            UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            sockaddr_in to = loopback4(9);
            long r = ::connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to));
            require_result(r, ECONNREFUSED, 1, "connect answered after the signal");
            require(g_usr1_seen == 1, 2, "the signal was delivered after the answer");
        });
    std::optional<seccomp_notif> n = child.next_notification();
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST_REQUIRE(::kill(child.pid(), SIGUSR1) == 0);
    ::usleep(100 * 1000);
    // Still waiting for this very answer: the signal neither interrupted nor restarted it.
    BOOST_TEST(::ioctl(child.listener(), SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id) == 0);
    BOOST_TEST(child.respond(*n, ECONNREFUSED) == 0);
    BOOST_TEST(!child.next_notification(200).has_value());
    BOOST_TEST(child.wait() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
