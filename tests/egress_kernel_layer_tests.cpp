// The kernel layer (egress/bpf/egress.bpf.c over its maps) against ResolvedPolicy::check().
//
// Differential: for each policy the programs are attached to a fresh cgroup2 directory
// (/sys/fs/cgroup/unified/sandlock-test-<pid>-<n>, removed afterwards); a child moves
// itself into it, opens its own network namespace (lo up, ping sockets for root, a TUN
// device sltun0 with 10.250.0.1 and fd00:250::1 carrying the default routes) and makes
// every probe: TCP connect, UDP connect and sendto, TCP Fast Open, ping connect and
// sendto, over IPv4, IPv6, IPv4-mapped IPv6 and sockaddr_in on an IPv6 socket. EPERM is
// the program's "deny"; any other outcome (EINPROGRESS, ECONNREFUSED, success) "allow".
// A ping sendto is judged after routing (the egress program), so every destination has
// a route: the TUN device, whose other end is the child's fd. Packets end there: none
// leaves the netns. Needs root, /dev/net/tun and a cgroup2 mount at
// /sys/fs/cgroup/unified or /sys/fs/cgroup.
#define BOOST_TEST_DYN_LINK
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <linux/magic.h>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <bpf/bpf.h>

#include "runtime/egress/bpf/egress_maps.h"
#include "runtime/egress/policy.hpp"
#include "runtime/egress/kernel_layer.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/fs.hpp"
#include "tests/support.hpp"

namespace egress_kernel_layer {
using namespace sandlock;
using namespace sandlock::egress;
using namespace sandlock::testing;

// ---- policies

class NoDns final : public Resolver {
public:
    std::vector<IpAddr> lookup(const std::string& host) override { throw Error("no DNS in this test: " + host); }
};

ResolvedPolicy policy_of(const std::map<std::string, std::string>& annotations,
                         Loopback default_loopback = Loopback::Allow) {
    NoDns dns;
    return resolve(parse_policy(annotations), dns, default_loopback);
}

ResolvedPolicy allow_policy(const std::string& rules, const char* loopback = "allow") {
    return policy_of({{std::string(kAllowKey), rules}, {std::string(kLoopbackKey), loopback}});
}

ResolvedPolicy deny_policy(const std::string& entries, const char* loopback = "allow") {
    return policy_of({{std::string(kDenyKey), entries}, {std::string(kLoopbackKey), loopback}});
}

IpAddr addr_of(const char* text) {
    const auto a = IpAddr::parse(text);
    if (!a) throw Error(std::string("bad test address ") + text);
    return *a;
}

// Loads the layer for policy and attaches it. The policy holds while the returned layer
// lives (as while the shim does); afterwards every verdict is a denial.
KernelLayer attach_layer(const std::string& cgroup, const ResolvedPolicy& policy) {
    KernelLayer layer(policy);
    layer.attach(cgroup);
    return layer;
}

// ---- the cgroup

std::string cgroup2_root() {
    for (const char* dir : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
        struct statfs st{};
        if (::statfs(dir, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return dir;
    }
    return "";
}

// A fresh cgroup2 directory, removed (with a retry while its last child exits) at scope exit.
class TestCgroup {
public:
    TestCgroup() {
        static int n = 0;
        const std::string root = cgroup2_root();
        if (root.empty()) throw Error("no cgroup2 mount");
        path = root + "/sandlock-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
        if (::mkdir(path.c_str(), 0755) != 0) throw_errno("mkdir " + path);
    }
    TestCgroup(const TestCgroup&) = delete;
    TestCgroup& operator=(const TestCgroup&) = delete;
    ~TestCgroup() {
        // A child that has exited may take a while to leave the cgroup on a loaded machine
        // (an ASan build here once needed more than 2 s): up to 20 s, then said aloud.
        for (int i = 0; i < 2000 && ::rmdir(path.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(10000);
        if (::access(path.c_str(), F_OK) == 0) std::fprintf(stderr, "test cgroup %s left behind\n", path.c_str());
    }
    std::string path;
};

// ---- probes

enum class Kind {
    Tcp4,         // AF_INET stream connect
    Tcp6,         // AF_INET6 stream connect (IPv6 or ::ffff: destination)
    Tfo4,         // sendto(MSG_FASTOPEN) on a fresh TCP socket
    Tfo6,
    UdpConnect4,
    UdpConnect6,
    UdpConnect6Sin,  // AF_INET6 UDP socket, sockaddr_in (the kernel's IPv4 path)
    UdpSendto4,
    UdpSendto6,
    UdpSendto6Sin,
    PingConnect4,
    PingConnect6,
    PingSendto4,
    PingSendto6,
    UdpLite4,  // a protocol the policy does not know: socket() refused
    Mptcp4,    // judged by its TCP subflow
};

const char* name_of(Kind k) {
    switch (k) {
        case Kind::Tcp4: return "tcp4-connect";
        case Kind::Tcp6: return "tcp6-connect";
        case Kind::Tfo4: return "tcp4-fastopen";
        case Kind::Tfo6: return "tcp6-fastopen";
        case Kind::UdpConnect4: return "udp4-connect";
        case Kind::UdpConnect6: return "udp6-connect";
        case Kind::UdpConnect6Sin: return "udp6-connect-sin";
        case Kind::UdpSendto4: return "udp4-sendto";
        case Kind::UdpSendto6: return "udp6-sendto";
        case Kind::UdpSendto6Sin: return "udp6-sendto-sin";
        case Kind::PingConnect4: return "ping4-connect";
        case Kind::PingConnect6: return "ping6-connect";
        case Kind::PingSendto4: return "ping4-sendto";
        case Kind::PingSendto6: return "ping6-sendto";
        case Kind::UdpLite4: return "udplite4-connect";
        case Kind::Mptcp4: return "mptcp4-connect";
    }
    return "?";
}

struct Probe {
    Kind kind;
    IpAddr dest;  // as written in the sockaddr (a mapped address stays IPv6)
    std::uint16_t port;
};

std::string describe(const Probe& p) {
    return std::string(name_of(p.kind)) + " " + p.dest.to_string() + " port " + std::to_string(p.port);
}

// What the shim's check() says (protocols it does not know are refused).
bool expected_allowed(const ResolvedPolicy& policy, const Probe& p) {
    switch (p.kind) {
        case Kind::Tcp4: case Kind::Tcp6: case Kind::Tfo4: case Kind::Tfo6:
            return policy.check(Protocol::Tcp, p.dest, p.port).allowed();
        case Kind::UdpConnect4: case Kind::UdpConnect6: case Kind::UdpConnect6Sin:
        case Kind::UdpSendto4: case Kind::UdpSendto6: case Kind::UdpSendto6Sin:
            return policy.check(Protocol::Udp, p.dest, p.port).allowed();
        case Kind::PingConnect4: case Kind::PingConnect6: case Kind::PingSendto4: case Kind::PingSendto6:
            return policy.check(Protocol::Icmp, p.dest, p.port).allowed();
        case Kind::Mptcp4:  // the kernel judges its TCP subflow; the shim refuses it
            return policy.check(Protocol::Tcp, p.dest, p.port).allowed();
        case Kind::UdpLite4:  // socket() is refused
            return false;
    }
    return false;
}

socklen_t make_sockaddr(const IpAddr& a, std::uint16_t port, bool as_v6, sockaddr_storage& ss) {
    std::memset(&ss, 0, sizeof ss);
    if (!as_v6) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        std::memcpy(&s->sin_addr, a.bytes.data(), 4);
        return sizeof *s;
    }
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    if (a.is_v4()) {  // ::ffff:a.b.c.d
        s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
        std::memcpy(&s->sin6_addr.s6_addr[12], a.bytes.data(), 4);
    } else {
        std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
    }
    return sizeof *s;
}

constexpr const char* kTun = "sltun0";

bool is_ping_sendto(Kind k) { return k == Kind::PingSendto4 || k == Kind::PingSendto6; }

class PendingPings;

// A ping sendto that returned success but whose packet never arrived. The egress program
// drops silently for IPv6: ping_v6_sendmsg() ignores the error of sending the packet.
constexpr int kDropped = -1;

std::string outcome_name(int result) { return result == kDropped ? "sent, never arrived" : errno_name(result); }

// A ping sendto's payload after the ICMP header: this magic, then its probe's index.
constexpr std::uint32_t kProbeMagic = 0x736c7072;

// 0 when the call succeeded, else its errno. A ping sendto that succeeded is handed to
// pending (whether its packet arrived is settled after the last probe).
int run_probe(const Probe& p, std::size_t index, PendingPings& pending);

// The probe's socket, or its errno (EPERM: the sock_create program).
int run_probe_call(const Probe& p, std::uint32_t index, UniqueFd& out) {
    int family = AF_INET, type = SOCK_STREAM, proto = 0;
    bool sockaddr_v6 = false, send = false, fastopen = false, ping = false;
    switch (p.kind) {
        case Kind::Tcp4: break;
        case Kind::Tcp6: family = AF_INET6; sockaddr_v6 = true; break;
        case Kind::Tfo4: send = fastopen = true; break;
        case Kind::Tfo6: family = AF_INET6; sockaddr_v6 = send = fastopen = true; break;
        case Kind::UdpConnect4: type = SOCK_DGRAM; break;
        case Kind::UdpConnect6: family = AF_INET6; type = SOCK_DGRAM; sockaddr_v6 = true; break;
        case Kind::UdpConnect6Sin: family = AF_INET6; type = SOCK_DGRAM; break;
        case Kind::UdpSendto4: type = SOCK_DGRAM; send = true; break;
        case Kind::UdpSendto6: family = AF_INET6; type = SOCK_DGRAM; sockaddr_v6 = send = true; break;
        case Kind::UdpSendto6Sin: family = AF_INET6; type = SOCK_DGRAM; send = true; break;
        case Kind::PingConnect4: type = SOCK_DGRAM; proto = IPPROTO_ICMP; ping = true; break;
        case Kind::PingConnect6:
            family = AF_INET6; type = SOCK_DGRAM; proto = IPPROTO_ICMPV6; sockaddr_v6 = ping = true; break;
        case Kind::PingSendto4: type = SOCK_DGRAM; proto = IPPROTO_ICMP; ping = send = true; break;
        case Kind::PingSendto6:
            family = AF_INET6; type = SOCK_DGRAM; proto = IPPROTO_ICMPV6; sockaddr_v6 = ping = send = true; break;
        case Kind::UdpLite4: type = SOCK_DGRAM; proto = IPPROTO_UDPLITE; break;
        case Kind::Mptcp4: proto = IPPROTO_MPTCP; break;
    }
    UniqueFd& fd = out;
    fd.reset(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto));
    if (!fd && errno == EPERM) return EPERM;  // the sock_create program
    if (!fd) throw SystemError(std::string("socket for ") + name_of(p.kind), errno);
    // 255.255.255.255 (the end of 0.0.0.0/0) needs it, else EACCES before any hook
    const int on = 1;
    if (ping && ::setsockopt(fd.get(), SOL_SOCKET, SO_BROADCAST, &on, sizeof on) != 0)
        throw SystemError("SO_BROADCAST", errno);
    sockaddr_storage ss;
    const socklen_t len = make_sockaddr(p.dest, p.port, sockaddr_v6, ss);
    // A ping6 sendto to a link-local address needs its interface (EINVAL before any hook).
    if (ping && send && sockaddr_v6 && p.dest.bytes[0] == 0xfe && (p.dest.bytes[1] & 0xc0) == 0x80)
        reinterpret_cast<sockaddr_in6*>(&ss)->sin6_scope_id = ::if_nametoindex(kTun);
    const auto* sa = reinterpret_cast<const sockaddr*>(&ss);
    long rc;
    if (!send) {
        rc = ::connect(fd.get(), sa, len);
    } else {
        unsigned char data[16] = {};
        if (ping) {
            data[0] = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;  // type; code 0
            std::memcpy(data + 8, &kProbeMagic, 4);
            std::memcpy(data + 12, &index, 4);
        }
        rc = ::sendto(fd.get(), data, sizeof data, fastopen ? MSG_FASTOPEN : 0, sa, len);
    }
    return rc < 0 ? errno : 0;
}

// Addresses worth asking about: fixed ones, and around every address and block of the policy.
std::vector<IpAddr> destinations(const ResolvedPolicy& policy, IpAddr::Family family) {
    std::set<IpAddr> out;
    const char* fixed4[] = {"127.0.0.1", "127.5.6.7", "0.0.0.0", "10.0.0.1", "10.1.2.3", "10.1.2.4",
                            "10.1.2.5", "192.168.1.1", "172.16.0.1", "8.8.8.8", "100.64.0.1",
                            "169.254.169.254", "128.0.0.1"};
    const char* fixed6[] = {"::1", "::", "::2", "fd00::1", "fd00::9", "fe80::1", "2001:db8::1", "fc00::5",
                            "::127.0.0.1"};
    if (family == IpAddr::Family::V4) for (const char* t : fixed4) out.insert(addr_of(t));
    else for (const char* t : fixed6) out.insert(addr_of(t));
    // a + delta, carrying across bytes (wraps at the ends of the space)
    const auto offset = [](IpAddr a, int delta) {
        for (int i = static_cast<int>(a.bits() / 8) - 1; i >= 0 && delta != 0; --i) {
            const int v = a.bytes[i] + delta;
            a.bytes[i] = static_cast<std::uint8_t>(v & 0xff);
            delta = v >> 8;  // arithmetic: -1 carries a borrow
        }
        return a;
    };
    for (const auto* rules : {&policy.tcp, &policy.udp, &policy.icmp}) {
        for (const auto& e : rules->per_ip) {
            if (e.address.family != family) continue;
            out.insert(e.address);
            out.insert(offset(e.address, 1));
        }
        for (const auto& n : rules->per_net) {
            if (n.network.base.family != family) continue;
            IpAddr last = n.network.base;
            for (unsigned bit = n.network.prefix; bit < last.bits(); ++bit)
                last.bytes[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
            for (const auto& a : {n.network.base, offset(n.network.base, 1), offset(n.network.base, -1), last,
                                  offset(last, 1)})
                out.insert(a);
        }
    }
    return {out.begin(), out.end()};
}

std::vector<std::uint16_t> ports_of(const ResolvedPolicy& policy) {
    std::set<std::uint16_t> all = {80, 443, 1, 65535};
    for (const auto* rules : {&policy.tcp, &policy.udp}) {
        all.insert(rules->any_ip_ports.begin(), rules->any_ip_ports.end());
        for (const auto& e : rules->per_ip) all.insert(e.ports.begin(), e.ports.end());
        for (const auto& n : rules->per_net) all.insert(n.ports.begin(), n.ports.end());
    }
    std::vector<std::uint16_t> v(all.begin(), all.end());
    // At most 12, evenly spread (the 100-rule policy has many), plus a neighbour of each.
    std::vector<std::uint16_t> picked;
    const std::size_t step = std::max<std::size_t>(1, v.size() / 12);
    for (std::size_t i = 0; i < v.size(); i += step) {
        picked.push_back(v[i]);
        if (v[i] < 65535) picked.push_back(static_cast<std::uint16_t>(v[i] + 1));
    }
    return picked;
}

// At most max_per_family destinations of each family, evenly spread (a large policy has
// thousands), always keeping the fixed ones at the front of the sorted set.
std::vector<IpAddr> sample(std::vector<IpAddr> all, std::size_t max_per_family) {
    if (all.size() <= max_per_family) return all;
    std::vector<IpAddr> out;
    const double step = static_cast<double>(all.size()) / static_cast<double>(max_per_family);
    for (std::size_t i = 0; i < max_per_family; ++i) out.push_back(all[static_cast<std::size_t>(i * step)]);
    return out;
}

std::vector<Probe> probes_for(const ResolvedPolicy& policy, std::size_t max_per_family = SIZE_MAX) {
    std::vector<Probe> probes;
    const auto ports = ports_of(policy);
    for (const auto& a : sample(destinations(policy, IpAddr::Family::V4), max_per_family)) {
        for (const auto port : ports)
            for (Kind k : {Kind::Tcp4, Kind::Tcp6, Kind::Tfo4, Kind::UdpConnect4, Kind::UdpConnect6,
                           Kind::UdpConnect6Sin, Kind::UdpSendto4, Kind::UdpSendto6, Kind::UdpSendto6Sin})
                probes.push_back({k, a, port});
        probes.push_back({Kind::PingConnect4, a, 0});
        probes.push_back({Kind::PingConnect4, a, 7});
        probes.push_back({Kind::UdpLite4, a, 53});
        probes.push_back({Kind::Mptcp4, a, 80});
        probes.push_back({Kind::PingSendto4, a, 0});
    }
    for (const auto& a : sample(destinations(policy, IpAddr::Family::V6), max_per_family)) {
        for (const auto port : ports)
            for (Kind k : {Kind::Tcp6, Kind::Tfo6, Kind::UdpConnect6, Kind::UdpSendto6})
                probes.push_back({k, a, port});
        probes.push_back({Kind::PingConnect6, a, 0});
        // the kernel refuses a ping6 to ::ffff:a.b.c.d itself (EINVAL, before any hook)
        if (normalize(a).is_v4()) continue;
        probes.push_back({Kind::PingSendto6, a, 0});
    }
    return probes;
}

// ---- the child

// One ping from a fresh ping socket per destination: its sendto result, whether the
// echo reply came back, and how many ICMP packets to it reached the TUN device.
struct PingResult {
    int sendto_errno, reply, on_wire;
};

// The child's way out: a TUN device (its packets are read back from the fd) with the
// default routes of both families, so every ping reaches the egress hook.
class Tun {
public:
    Tun() {
        fd_.reset(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
        require(static_cast<bool>(fd_), 94, "open /dev/net/tun");
        ifreq ifr{};
        std::strcpy(ifr.ifr_name, kTun);
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        require(::ioctl(fd_.get(), TUNSETIFF, &ifr) == 0, 94, "TUNSETIFF");
        set_up(kTun);
        UniqueFd s4(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        std::memset(&ifr, 0, sizeof ifr);
        std::strcpy(ifr.ifr_name, kTun);
        auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
        sin->sin_family = AF_INET;
        ::inet_pton(AF_INET, kAddr4, &sin->sin_addr);
        require(::ioctl(s4.get(), SIOCSIFADDR, &ifr) == 0, 94, "SIOCSIFADDR sltun0");
        rtentry rt{};
        reinterpret_cast<sockaddr_in*>(&rt.rt_dst)->sin_family = AF_INET;
        reinterpret_cast<sockaddr_in*>(&rt.rt_genmask)->sin_family = AF_INET;
        rt.rt_flags = RTF_UP;
        char dev[IFNAMSIZ];
        std::strcpy(dev, kTun);
        rt.rt_dev = dev;
        require(::ioctl(s4.get(), SIOCADDRT, &rt) == 0, 94, "SIOCADDRT default dev sltun0");
        UniqueFd s6(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        const int index = static_cast<int>(::if_nametoindex(kTun));
        struct {  // the kernel's struct in6_ifreq
            in6_addr addr;
            std::uint32_t prefixlen;
            int ifindex;
        } a6{};
        ::inet_pton(AF_INET6, kAddr6, &a6.addr);
        a6.prefixlen = 128;
        a6.ifindex = index;
        require(::ioctl(s6.get(), SIOCSIFADDR, &a6) == 0, 94, "SIOCSIFADDR sltun0 IPv6");
        in6_rtmsg rt6{};
        rt6.rtmsg_flags = RTF_UP;
        rt6.rtmsg_metric = 1;
        rt6.rtmsg_ifindex = index;
        require(::ioctl(s6.get(), SIOCADDRT, &rt6) == 0, 94, "SIOCADDRT ::/0 dev sltun0");
        wait_until_usable6();
    }

    // IPv4/IPv6 packets read from the device since the last drain() whose protocol is
    // ICMP/ICMPv6 and whose destination is dest (waits up to wait_ms for the first one).
    int icmp_packets_to(const IpAddr& dest, int wait_ms) {
        int count = 0;
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, wait_ms) <= 0) return 0;
        unsigned char pkt[2048];
        for (ssize_t n; (n = ::read(fd_.get(), pkt, sizeof pkt)) > 0;) count += is_icmp_to(pkt, n, dest);
        return count;
    }
    // Adds to counts[i] the ICMP/ICMPv6 packets to dests[i] the device holds now.
    void count_icmp_packets(const std::vector<IpAddr>& dests, std::vector<PingResult>& counts) {
        unsigned char pkt[2048];
        for (ssize_t n; (n = ::read(fd_.get(), pkt, sizeof pkt)) > 0;)
            for (std::size_t i = 0; i < dests.size(); ++i) counts[i].on_wire += is_icmp_to(pkt, n, dests[i]);
    }
    // Packets of any protocol to dest since the last drain() (waits up to wait_ms).
    int packets_to(const IpAddr& dest, int wait_ms) {
        int count = 0;
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, wait_ms) <= 0) return 0;
        unsigned char pkt[65536];
        for (ssize_t n; (n = ::read(fd_.get(), pkt, sizeof pkt)) > 0;) {
            if (dest.is_v4() && n >= 20 && pkt[0] >> 4 == 4 && std::memcmp(pkt + 16, dest.bytes.data(), 4) == 0) ++count;
            if (!dest.is_v4() && n >= 40 && pkt[0] >> 4 == 6 && std::memcmp(pkt + 24, dest.bytes.data(), 16) == 0)
                ++count;
        }
        return count;
    }
    // The probe indexes of the marked echo requests (run_probe_call's ping payload) read
    // from the device now; everything else it held is thrown away.
    std::vector<std::uint32_t> marked_echo_requests() {
        std::vector<std::uint32_t> out;
        unsigned char pkt[2048];
        for (ssize_t n; (n = ::read(fd_.get(), pkt, sizeof pkt)) > 0;) {
            std::size_t icmp = 0;  // offset of the echo request's ICMP header, 0: none
            if (n >= 20 && pkt[0] >> 4 == 4 && pkt[9] == IPPROTO_ICMP) icmp = (pkt[0] & 0xfu) * 4u;
            if (n >= 40 && pkt[0] >> 4 == 6 && pkt[6] == IPPROTO_ICMPV6) icmp = 40;
            if (icmp == 0 || static_cast<std::size_t>(n) < icmp + 16) continue;
            if (pkt[icmp] != ICMP_ECHO && pkt[icmp] != ICMP6_ECHO_REQUEST) continue;
            std::uint32_t magic, index;
            std::memcpy(&magic, pkt + icmp + 8, 4);
            std::memcpy(&index, pkt + icmp + 12, 4);
            if (magic == kProbeMagic) out.push_back(index);
        }
        return out;
    }
    // Throws away what the device holds (its queue is short).
    void drain() {
        unsigned char pkt[2048];
        while (::read(fd_.get(), pkt, sizeof pkt) > 0) {
        }
    }

    static constexpr const char* kAddr4 = "10.250.0.1";
    static constexpr const char* kAddr6 = "fd00:250::1";
    // Not local: routed out through the device, where the test reads them back.
    static constexpr const char* kRemote4 = "10.250.0.2";
    static constexpr const char* kRemote6 = "fd00:250::2";

private:
    static bool is_icmp_to(const unsigned char* pkt, ssize_t n, const IpAddr& dest) {
        if (dest.is_v4())
            return n >= 20 && pkt[0] >> 4 == 4 && pkt[9] == IPPROTO_ICMP && std::memcmp(pkt + 16, dest.bytes.data(), 4) == 0;
        return n >= 40 && pkt[0] >> 4 == 6 && pkt[6] == IPPROTO_ICMPV6 && std::memcmp(pkt + 24, dest.bytes.data(), 16) == 0;
    }
    static void set_up(const char* name) {
        UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        ifreq ifr{};
        std::strcpy(ifr.ifr_name, name);
        require(s && ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) == 0, 91, std::string("SIOCGIFFLAGS ") + name);
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
        require(::ioctl(s.get(), SIOCSIFFLAGS, &ifr) == 0, 92, std::string("SIOCSIFFLAGS up ") + name);
    }
    // The IPv6 address is tentative for a moment (no DAD on a NOARP device, but the
    // kernel finishes it asynchronously); until then it cannot be a source address.
    static void wait_until_usable6() {
        for (int i = 0; i < 200; ++i) {
            UniqueFd s(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            sockaddr_in6 sa{};
            sa.sin6_family = AF_INET6;
            ::inet_pton(AF_INET6, kAddr6, &sa.sin6_addr);
            if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return;
            ::usleep(10000);
        }
        require(false, 95, "fd00:250::1 never became usable");
    }

    UniqueFd fd_;
};

// The ping sendtos that succeeded, until their packets are seen: the echo request (its
// probe's index in the payload) on the TUN device, or (a local destination) the kernel's
// echo reply on the socket. Both come at once, so one 50 ms wait after the last probe,
// shared by all, is ample; a ping still unseen then was dropped (kDropped).
class PendingPings {
public:
    void add(std::size_t index, UniqueFd fd) { sockets_.emplace(index, std::move(fd)); }
    // Reads the device (after every probe: its queue is short).
    void note_arrivals(Tun& tun) {
        for (const auto index : tun.marked_echo_requests()) sockets_.erase(index);
    }
    void settle(Tun& tun, std::vector<int>& results) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
        for (;;) {
            note_arrivals(tun);
            std::erase_if(sockets_, [](const auto& entry) { return has_reply(entry.second.get()); });
            if (sockets_.empty() || std::chrono::steady_clock::now() >= deadline) break;
            ::usleep(1000);
        }
        for (const auto& entry : sockets_) results[entry.first] = kDropped;
        sockets_.clear();
    }

private:
    static bool has_reply(int fd) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
    }
    std::map<std::size_t, UniqueFd> sockets_;
};

int run_probe(const Probe& p, std::size_t index, PendingPings& pending) {
    UniqueFd fd;
    const int rc = run_probe_call(p, static_cast<std::uint32_t>(index), fd);
    if (rc == 0 && is_ping_sendto(p.kind)) pending.add(index, std::move(fd));
    return rc;
}

// Moves the calling child into the cgroup and a new network namespace with lo, the TUN
// device and ping sockets for root.
std::unique_ptr<Tun> set_up_child(const std::string& cgroup) {
    fs::write_file(cgroup + "/cgroup.procs", "0");
    require(::unshare(CLONE_NEWNET) == 0, 90, "unshare(CLONE_NEWNET)");
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    require(s && ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) == 0, 91, "SIOCGIFFLAGS lo");
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    require(::ioctl(s.get(), SIOCSIFFLAGS, &ifr) == 0, 92, "SIOCSIFFLAGS lo up");
    fs::write_file("/proc/sys/net/ipv4/ping_group_range", "0 0");
    return std::make_unique<Tun>();
}

// Runs body in a child inside the cgroup (set_up_child done) and returns the ints it
// produced; a body that cannot run fails the child, and the test.
std::vector<int> run_in_child(const std::string& cgroup, const std::function<std::vector<int>(Tun&)>& body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    UniqueFd rd(fds[0]), wr(fds[1]);
    Child child([&] {
        rd.reset();
        const auto tun = set_up_child(cgroup);
        const std::vector<int> results = body(*tun);
        const auto* bytes = reinterpret_cast<const char*>(results.data());
        std::size_t left = results.size() * sizeof(int);
        while (left > 0) {
            const ssize_t n = ::write(wr.get(), bytes, left);
            require(n > 0, 93, "write results");
            bytes += n;
            left -= static_cast<std::size_t>(n);
        }
    });
    wr.reset();
    std::vector<int> results;
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = ::read(rd.get(), buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    const int status = child.wait();
    BOOST_TEST_REQUIRE(status == 0, "the probing child failed with status " << status);
    BOOST_TEST_REQUIRE(got.size() % sizeof(int) == 0u);
    results.resize(got.size() / sizeof(int));
    if (!got.empty()) std::memcpy(results.data(), got.data(), got.size());  // (none: no probe)
    return results;
}

// The errno of every probe (0: success), made in a child inside the cgroup.
std::vector<int> run_in_cgroup(const std::string& cgroup, const std::vector<Probe>& probes) {
    const auto results = run_in_child(cgroup, [&](Tun& tun) {
        std::vector<int> out;
        PendingPings pending;
        for (std::size_t i = 0; i < probes.size(); ++i) {
            out.push_back(run_probe(probes[i], i, pending));
            pending.note_arrivals(tun);
        }
        pending.settle(tun, out);
        return out;
    });
    BOOST_TEST_REQUIRE(results.size() == probes.size());
    return results;
}

struct Tally {
    int allowed = 0, denied = 0;
};

// Attaches the programs for policy and compares every probe's outcome with check().
// A ping sendto must succeed or fail with EPERM: anything else failed before the
// egress hook and would prove nothing.
Tally compare_with_check(const ResolvedPolicy& policy, std::size_t max_per_family = SIZE_MAX) {
    const auto probes = probes_for(policy, max_per_family);
    TestCgroup cg;
    const KernelLayer layer = attach_layer(cg.path, policy);
    const auto results = run_in_cgroup(cg.path, probes);
    Tally tally;
    int mismatches = 0;
    for (std::size_t i = 0; i < probes.size(); ++i) {
        const bool kernel_allowed = results[i] != EPERM && results[i] != kDropped;
        const bool want = expected_allowed(policy, probes[i]);
        ++(kernel_allowed ? tally.allowed : tally.denied);
        if (kernel_allowed != want && ++mismatches <= 20)
            BOOST_ERROR(describe(probes[i]) << ": the kernel " << (kernel_allowed ? "allowed" : "denied")
                                            << " (" << outcome_name(results[i]) << "), check() "
                                            << (want ? "allows" : "denies"));
        if (is_ping_sendto(probes[i].kind) && results[i] != 0 && results[i] != EPERM && results[i] != kDropped)
            BOOST_ERROR(describe(probes[i]) << ": " << errno_name(results[i]) << " before the egress hook");
        // IPv4 reports the drop (EPERM); IPv6 does not
        if (probes[i].kind == Kind::PingSendto4 && results[i] == kDropped)
            BOOST_ERROR(describe(probes[i]) << ": dropped without EPERM");
    }
    BOOST_TEST(mismatches == 0, mismatches << " of " << probes.size() << " probes disagree");
    BOOST_TEST_MESSAGE(probes.size() << " probes: " << tally.allowed << " allowed, " << tally.denied << " denied");
    return tally;
}

// Every probe in a cgroup without programs: nothing is EPERM, so an EPERM above is the
// program's; and every ping sendto succeeds, so each one reaches the egress hook.
void require_no_eperm_without_programs(const ResolvedPolicy& policy) {
    const auto probes = probes_for(policy);
    TestCgroup cg;
    const auto results = run_in_cgroup(cg.path, probes);
    int eperm = 0, ping_failed = 0, pings = 0;
    for (std::size_t i = 0; i < probes.size(); ++i) {
        if (results[i] == EPERM && ++eperm <= 5) BOOST_ERROR(describe(probes[i]) << ": EPERM without programs");
        if (!is_ping_sendto(probes[i].kind)) continue;
        ++pings;
        if (results[i] != 0 && ++ping_failed <= 5)
            BOOST_ERROR(describe(probes[i]) << ": " << outcome_name(results[i]) << " without programs");
    }
    BOOST_TEST(eperm == 0);
    BOOST_TEST(ping_failed == 0);
    BOOST_TEST(pings > 20);
}

bool can_run() {
    return ::geteuid() == 0 && !cgroup2_root().empty();
}

UniqueFd send_ping(const IpAddr& dest, PingResult& result) {
    const bool v6 = !dest.is_v4();
    UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
    require(static_cast<bool>(fd), 96, "ping socket");
    sockaddr_storage ss;
    const socklen_t len = make_sockaddr(dest, 0, v6, ss);
    unsigned char pkt[16] = {};
    pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    std::memcpy(pkt + 8, "sandlock", 8);
    if (::sendto(fd.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0) result.sendto_errno = errno;
    return fd;
}

bool echo_reply_on(int fd, bool v6) {
    unsigned char in[64];
    const ssize_t n = ::recv(fd, in, sizeof in, MSG_DONTWAIT);
    return n >= 8 && in[0] == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY);
}

// Pings all destinations first, then waits for them together: a ping is settled by its
// echo reply or by its request on the device (nothing answers there, so no reply can
// follow); 300 ms after the sends, those still unsettled count as neither.
std::vector<PingResult> ping_each(Tun& tun, const std::vector<IpAddr>& dests) {
    tun.drain();
    std::vector<PingResult> results(dests.size(), PingResult{0, 0, 0});
    std::vector<UniqueFd> fds;
    for (std::size_t i = 0; i < dests.size(); ++i) fds.push_back(send_ping(dests[i], results[i]));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    for (;;) {
        tun.count_icmp_packets(dests, results);
        bool all_settled = true;
        for (std::size_t i = 0; i < dests.size(); ++i) {
            if (!results[i].reply) results[i].reply = echo_reply_on(fds[i].get(), !dests[i].is_v4());
            all_settled = all_settled && (results[i].reply || results[i].on_wire > 0);
        }
        if (all_settled || std::chrono::steady_clock::now() >= deadline) break;
        ::usleep(1000);
    }
    return results;
}

std::vector<int> flatten(const std::vector<PingResult>& results) {
    std::vector<int> out;
    for (const auto& r : results) out.insert(out.end(), {r.sendto_errno, r.reply, r.on_wire});
    return out;
}

}  // namespace egress_kernel_layer

BOOST_AUTO_TEST_SUITE(egress_kernel_layer)

BOOST_AUTO_TEST_CASE(rule_rows_follow_the_policy_order) {
    const ResolvedPolicy p =
        allow_policy("10.1.2.3:80,443; :8080; 10.0.0.0/8:22; udp://[fd00::1]:53; udp://*:*; icmp://10.9.9.9");
    const auto rows = rule_rows(p);
    BOOST_TEST_REQUIRE(rows.size() == 6u);
    // per protocol (TCP, UDP, ICMP): any IP with every port, any IP with ports, addresses, networks
    BOOST_TEST((rows[0].protocol == Protocol::Tcp && !rows[0].where && rows[0].ports == std::vector<std::uint16_t>{8080}));
    BOOST_TEST(rows[1].where->to_string() == "10.1.2.3");
    BOOST_TEST(rows[2].where->to_string() == "10.0.0.0/8");
    BOOST_TEST((rows[3].protocol == Protocol::Udp && !rows[3].where && rows[3].all_ports));
    BOOST_TEST((rows[4].protocol == Protocol::Udp && rows[4].where->to_string() == "fd00::1"));
    BOOST_TEST((rows[5].protocol == Protocol::Icmp && rows[5].where->to_string() == "10.9.9.9"));
}

BOOST_AUTO_TEST_CASE(too_large_a_policy_is_an_error_before_loading) {
    ResolvedPolicy p;
    p.mode = Mode::Allow;
    for (unsigned i = 0; i < 70000; ++i) p.tcp.per_ip.push_back({IpAddr::v4(10, static_cast<std::uint8_t>(i >> 16),
                                                                          static_cast<std::uint8_t>(i >> 8),
                                                                          static_cast<std::uint8_t>(i)),
                                                               true, {}});
    try {
        KernelLayer layer(p);
        BOOST_FAIL("a policy of 70000 prefixes was loaded");
    } catch (const Error& e) {
        BOOST_TEST(std::string(e.what()).find("too large for the kernel's maps") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(control_no_eperm_without_programs, *boost::unit_test::precondition([](auto) { return can_run(); })) {
    require_no_eperm_without_programs(allow_policy(
        "10.1.2.3:80,443;udp://10.1.2.4:53;icmp://10.1.2.5;[fd00::1]:80;10.20.0.0/16:5432;[fd00:1::/32]:*"));
}

BOOST_AUTO_TEST_CASE(allow_mode_exact_ports_cidr, *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const std::string rules =
        "10.1.2.3:80,443; udp://10.1.2.4:53; icmp://10.1.2.5; [fd00::1]:80; [fd00::9]:*;"
        "udp://[fd00::1]:53,5353; :8080; udp://:5000; 10.9.9.9:*; 10.20.0.0/16:5432;"
        "10.1.2.128/25:*; udp://172.16.0.0/12:*; [fd00:1::/32]:*; [fc00::/7]:22; [2001:db8::/65]:443;"
        "icmp://[fd00::9]; icmp://192.168.0.0/16; [::ffff:10.7.7.7]:80;"
        // more ports than an entry holds inline (SL_INLINE_PORTS): the ports map; and an
        // address inside a network, whose entry holds the union of both
        "10.1.2.6:21,22,23,25,80,443; 10.30.0.0/16:1,2,3,4,5; 10.30.1.1:6; udp://[fd00::6]:1,2,3,4,5,6,7";
    for (const char* lo : {"allow", "deny"}) {
        BOOST_TEST_CONTEXT("loopback " << lo) {
            const Tally t = compare_with_check(allow_policy(rules, lo));
            BOOST_TEST(t.allowed > 0);
            BOOST_TEST(t.denied > 0);
        }
    }
}

BOOST_AUTO_TEST_CASE(allow_mode_any_ip_rules, *boost::unit_test::precondition([](auto) { return can_run(); })) {
    for (const char* rules : {"*:*", "*:*; udp://*:*; icmp://*", ":443,80", "udp://:53; icmp://*", "0.0.0.0/0:22",
                              "[::/0]:*", "10.0.0.0/8:*; [::/1]:80"}) {
        BOOST_TEST_CONTEXT("allow " << rules) {
            compare_with_check(allow_policy(rules, "deny"));
            compare_with_check(allow_policy(rules, "allow"));
        }
    }
}

BOOST_AUTO_TEST_CASE(deny_mode, *boost::unit_test::precondition([](auto) { return can_run(); })) {
    for (const char* entries : {"private", "private; :25; 8.8.8.8:53", "10.1.2.3; [fd00::/8]:80; :22",
                                "0.0.0.0/0", "*:443", "[::1]; 127.0.0.1:80", "169.254.169.254; 100.64.0.0/10:80,443"}) {
        for (const char* lo : {"allow", "deny"}) {
            BOOST_TEST_CONTEXT("deny " << entries << ", loopback " << lo) {
                const Tally t = compare_with_check(deny_policy(entries, lo));
                BOOST_TEST(t.allowed > 0);
                BOOST_TEST(t.denied > 0);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(open_mode, *boost::unit_test::precondition([](auto) { return can_run(); })) {
    // Only loopback or allow_bind given: no destination list.
    const Tally lo_deny = compare_with_check(policy_of({{std::string(kLoopbackKey), "deny"}}));
    BOOST_TEST(lo_deny.denied > 0);  // loopback, and the protocols nobody knows
    const Tally lo_allow = compare_with_check(policy_of({{std::string(kAllowBindKey), "8000-8100"}}));
    BOOST_TEST(lo_allow.allowed > 0);
}

BOOST_AUTO_TEST_CASE(empty_allow_list, *boost::unit_test::precondition([](auto) { return can_run(); })) {
    for (Loopback lo : {Loopback::Allow, Loopback::Deny}) {
        ResolvedPolicy p;
        p.mode = Mode::Allow;
        p.loopback = lo;
        const Tally t = compare_with_check(p);
        BOOST_TEST(t.denied > 0);
        BOOST_TEST((t.allowed > 0) == (lo == Loopback::Allow));
    }
}

// 1000 rules of every shape: the maps, not the program, grow. The kernel's verdicts are
// compared with check() over a sample of the destinations (every rule's neighbourhood
// would be half a million probes).
BOOST_AUTO_TEST_CASE(thousand_rules, *boost::unit_test::precondition([](auto) { return can_run(); })) {
    std::ostringstream rules;
    for (int i = 0; i < 1000; ++i) {
        switch (i % 5) {
            case 0: rules << "10.50." << i / 256 << "." << i % 256 << ":" << 1000 + i % 7 << ";"; break;
            case 1: rules << "udp://10." << 60 + i / 256 << "." << i % 256 << ".0/24:" << 2000 + i % 5 << "," << 3000 + i % 3 << ";"; break;
            case 2: rules << "[fd00:50::" << std::hex << i << std::dec << "]:" << 1000 + i % 7 << ";"; break;
            case 3: rules << "icmp://10.52." << i / 256 << "." << i % 256 << ";"; break;
            case 4: rules << "10.53." << i / 256 << "." << i % 256 << ":*;"; break;
        }
    }
    rules << "10.50.0.0/16:443; [fd00:50::/64]:8443";  // networks around many of the addresses
    const ResolvedPolicy p = allow_policy(rules.str(), "deny");
    BOOST_TEST(rule_rows(p).size() == 1002u);
    const Tally t = compare_with_check(p, 120);
    BOOST_TEST(t.allowed > 0);
    BOOST_TEST(t.denied > 0);
}

// socket() in the cgroup, made by a child inside it: 0 or the errno, per case.
std::vector<int> sockets_in_cgroup(const std::string& cgroup) {
    const int cases[][3] = {{AF_INET, SOCK_STREAM, 0},          {AF_INET, SOCK_STREAM, IPPROTO_MPTCP},
                            {AF_INET6, SOCK_STREAM, IPPROTO_TCP}, {AF_INET, SOCK_DGRAM, 0},
                            {AF_INET6, SOCK_DGRAM, IPPROTO_UDP},  {AF_INET, SOCK_DGRAM, IPPROTO_ICMP},
                            {AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6}, {AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE},
                            {AF_INET6, SOCK_DGRAM, IPPROTO_UDPLITE}, {AF_INET, SOCK_RAW, IPPROTO_UDP},
                            {AF_INET6, SOCK_RAW, IPPROTO_ICMPV6},   {AF_UNIX, SOCK_STREAM, 0}};
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    UniqueFd rd(fds[0]), wr(fds[1]);
    Child child([&] {
        fs::write_file(cgroup + "/cgroup.procs", "0");
        require(::unshare(CLONE_NEWNET) == 0, 90, "unshare(CLONE_NEWNET)");
        fs::write_file("/proc/sys/net/ipv4/ping_group_range", "0 0");
        for (const auto& c : cases) {
            UniqueFd s(::socket(c[0], c[1] | SOCK_CLOEXEC, c[2]));
            const int result = s ? 0 : errno;
            require(::write(wr.get(), &result, sizeof result) == sizeof result, 93, "write result");
        }
    });
    wr.reset();
    std::vector<int> results;
    int r;
    while (::read(rd.get(), &r, sizeof r) == sizeof r) results.push_back(r);
    BOOST_TEST_REQUIRE(child.wait() == 0);
    BOOST_TEST_REQUIRE(results.size() == std::size(cases));
    return results;
}

BOOST_AUTO_TEST_CASE(socket_create_refuses_protocols_the_policy_cannot_judge,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    // Control: without programs every one of them can be made here (root, ping range set).
    TestCgroup plain;
    const std::vector<int> control = sockets_in_cgroup(plain.path);
    BOOST_TEST(control == std::vector<int>(control.size(), 0), boost::test_tools::per_element());
    TestCgroup cg;
    const KernelLayer layer = attach_layer(cg.path, allow_policy("*:*; udp://*:*; icmp://*"));
    const std::vector<int> got = sockets_in_cgroup(cg.path);
    // TCP, MPTCP, UDP, ping: made; UDP-Lite and raw: EPERM; AF_UNIX: not an IP socket.
    const std::vector<int> want = {0, 0, 0, 0, 0, 0, 0, EPERM, EPERM, EPERM, EPERM, 0};
    BOOST_TEST(got == want, boost::test_tools::per_element());
}

// 1 where the kernel let the call through, 0 where the programs refused it.
std::vector<int> verdicts_in(const std::string& cgroup, const std::vector<Probe>& probes) {
    std::vector<int> out;
    for (const int r : run_in_cgroup(cgroup, probes)) out.push_back(r != EPERM && r != kDropped ? 1 : 0);
    return out;
}

BOOST_AUTO_TEST_CASE(containers_share_the_programs_but_not_their_policies,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const std::vector<Probe> probes = {{Kind::Tcp4, addr_of("10.1.2.3"), 80}, {Kind::Tcp4, addr_of("10.1.2.4"), 80},
                                       {Kind::UdpSendto4, addr_of("10.1.2.3"), 53}, {Kind::UdpSendto4, addr_of("10.1.2.4"), 53}};
    TestCgroup a, b;
    const KernelLayer layer_a = attach_layer(a.path, allow_policy("10.1.2.3:80; udp://10.1.2.3:53", "deny"));
    const KernelLayer layer_b = attach_layer(b.path, allow_policy("10.1.2.4:80; udp://10.1.2.4:53", "deny"));
    // The same programs on both cgroups (loaded once, pinned), each finding its own maps.
    for (const auto type : kernel_layer_attach_types()) BOOST_TEST(attached_programs(a.path, type) == attached_programs(b.path, type));
    BOOST_TEST(verdicts_in(a.path, probes) == std::vector<int>({1, 0, 1, 0}), boost::test_tools::per_element());
    BOOST_TEST(verdicts_in(b.path, probes) == std::vector<int>({0, 1, 0, 1}), boost::test_tools::per_element());
}

// create registers the maps on its maps' thread once the cgroup exists, and attaches the
// programs later: registered alone, nothing is judged yet (no program); attached, the
// policy holds; a layer registered for one cgroup refuses to attach to another.
BOOST_AUTO_TEST_CASE(maps_registered_early_then_attached,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const std::vector<Probe> probes = {{Kind::Tcp4, addr_of("10.1.2.3"), 80}, {Kind::Tcp4, addr_of("10.1.2.4"), 80}};
    const auto policy = allow_policy("10.1.2.3:80", "deny");
    TestCgroup cg, other;
    KernelLayer layer(policy);
    layer.register_for(cg.path);
    BOOST_CHECK_THROW(layer.register_for(cg.path), Error);  // once
    for (const auto type : kernel_layer_attach_types()) BOOST_TEST(attached_programs(cg.path, type).empty());
    BOOST_CHECK_THROW(layer.attach(other.path), Error);
    for (const auto type : kernel_layer_attach_types()) BOOST_TEST(attached_programs(other.path, type).empty());
    layer.attach(cg.path);
    BOOST_TEST(verdicts_in(cg.path, probes) == std::vector<int>({1, 0}), boost::test_tools::per_element());
}

// create attaches the programs once the cgroup exists and registers the maps after (their
// grace periods pass while init sets the container up): in between every verdict is a
// denial, also where no match means allowed (deny mode, loopback), and the layer cannot
// be handed to the shim; a layer attached to one cgroup registers for no other.
BOOST_AUTO_TEST_CASE(attached_before_registered_denies_everything,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const std::vector<Probe> probes = {{Kind::Tcp4, addr_of("10.1.2.3"), 80},
                                       {Kind::Tcp4, addr_of("127.0.0.1"), 80},
                                       {Kind::UdpSendto4, addr_of("10.1.2.3"), 53}};
    TestCgroup cg, other;
    KernelLayer layer(deny_policy("10.9.9.9:80"));
    layer.attach_programs(cg.path);
    BOOST_CHECK_THROW(layer.attach_programs(cg.path), Error);  // once
    BOOST_CHECK_THROW(layer.register_for(other.path), Error);
    BOOST_TEST(verdicts_in(cg.path, probes) == std::vector<int>({0, 0, 0}), boost::test_tools::per_element());
    BOOST_CHECK_THROW(layer.handover(), Error);
    layer.register_for(cg.path);
    BOOST_TEST(verdicts_in(cg.path, probes) == std::vector<int>({1, 1, 1}), boost::test_tools::per_element());
    BOOST_TEST(layer.handover().id != 0u);
}

BOOST_AUTO_TEST_CASE(a_policy_without_its_owner_denies_everything,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const std::vector<Probe> probes = {{Kind::Tcp4, addr_of("10.1.2.3"), 80}, {Kind::UdpSendto4, addr_of("10.1.2.3"), 53}};
    const auto policy = allow_policy("10.1.2.3:80; udp://10.1.2.3:53", "deny");
    TestCgroup gone;
    { const KernelLayer layer = attach_layer(gone.path, policy); }  // the shim stopped: its maps left the tables
    BOOST_TEST(verdicts_in(gone.path, probes) == std::vector<int>({0, 0}), boost::test_tools::per_element());
    // Also where "no entry matches" means allowed: deny mode, and loopback allowed.
    const std::vector<Probe> open_probes = {{Kind::Tcp4, addr_of("10.1.2.3"), 80}, {Kind::Tcp4, addr_of("127.0.0.1"), 80}};
    TestCgroup deny;
    {
        const KernelLayer layer = attach_layer(deny.path, deny_policy("10.9.9.9:80"));
        BOOST_TEST(verdicts_in(deny.path, open_probes) == std::vector<int>({1, 1}), boost::test_tools::per_element());
    }
    BOOST_TEST(verdicts_in(deny.path, open_probes) == std::vector<int>({0, 0}), boost::test_tools::per_element());
}

// Without bpffs each container's programs and tables are its own (nothing pinned for
// delete to reach): they go with the cgroup, and a dead shim's policy stays as it was.
boost::test_tools::assertion_result can_reach_pinned_tables(boost::unit_test::test_unit_id) {
    boost::test_tools::assertion_result r(can_run() && !kernel_tables().empty());
    if (!r) r.message() << "needs root, cgroup2, and bpffs mounted at /sys/fs/bpf (make deps mounts it)";
    return r;
}

BOOST_AUTO_TEST_CASE(delete_forgets_the_policy_of_a_shim_that_died,
                     *boost::unit_test::precondition(can_reach_pinned_tables)) {
    const std::vector<Probe> probes = {{Kind::Tcp4, addr_of("10.1.2.3"), 80}, {Kind::UdpSendto4, addr_of("10.1.2.3"), 53}};
    TestCgroup dead;
    const KernelLayer layer = attach_layer(dead.path, allow_policy("10.1.2.3:80; udp://10.1.2.3:53", "deny"));
    BOOST_TEST(verdicts_in(dead.path, probes) == std::vector<int>({1, 1}), boost::test_tools::per_element());
    forget_kernel_policy(dead.path);  // while the layer (the shim) still holds its maps
    BOOST_TEST(verdicts_in(dead.path, probes) == std::vector<int>({0, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(attach_detach_and_refuse_a_second_attach,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    TestCgroup cg;
    const auto policy = allow_policy("10.1.2.3:80");
    const KernelLayer layer = attach_layer(cg.path, policy);
    for (const auto type : kernel_layer_attach_types())
        BOOST_TEST(attached_programs(cg.path, type).size() == 1u);
    // flags 0: a child cgroup cannot attach its own program of these types
    const std::string child = cg.path + "/child";
    BOOST_TEST_REQUIRE(::mkdir(child.c_str(), 0755) == 0);
    BOOST_CHECK_THROW(attach_layer(child, ResolvedPolicy{}), Error);
    for (const auto type : kernel_layer_attach_types()) BOOST_TEST(attached_programs(child, type).empty());
    ::rmdir(child.c_str());
    detach_kernel_layer(cg.path);
    for (const auto type : kernel_layer_attach_types()) BOOST_TEST(attached_programs(cg.path, type).empty());
}

BOOST_AUTO_TEST_CASE(pings_judged_at_the_wire_and_echo_replies_come_back,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const char* dests[] = {"10.250.0.1", "fd00:250::1", "127.0.0.1", "::1",     "10.1.2.4",
                           "10.1.2.3",   "fd00::9",     "fd00::1",   "0.0.0.0"};
    const auto ping_all = [&](Tun& tun) {
        std::vector<IpAddr> addrs;
        for (const char* d : dests) addrs.push_back(addr_of(d));
        return flatten(ping_each(tun, addrs));
    };
    // sendto errno, echo reply, packets on the wire; per destination above
    const std::vector<int> all_delivered = {0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1,
                                            0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0};
    // Control: no programs, every ping delivered (locals answer, the rest hits the wire).
    TestCgroup plain;
    BOOST_TEST(run_in_child(plain.path, ping_all) == all_delivered, boost::test_tools::per_element());
    // The local addresses, 10.1.2.4 and fd00::9 allowed; loopback denied (also 0.0.0.0,
    // which the kernel sends to 127.0.0.1). IPv4 refusals are EPERM; IPv6 ones are
    // silent, the packet dropped.
    TestCgroup cg;
    const KernelLayer layer = attach_layer(cg.path, allow_policy("icmp://10.250.0.1; icmp://[fd00:250::1]; icmp://10.1.2.4;"
                                                   "icmp://[fd00::9]; 10.1.2.3:*; [fd00::1]:*",
                                                   "deny"));
    const std::vector<int> want = {0, 1, 0, 0, 1, 0, EPERM, 0, 0, 0, 0, 0, 0, 0, 1,
                                   EPERM, 0, 0, 0, 0, 1, 0, 0, 0, EPERM, 0, 0};
    BOOST_TEST(run_in_child(cg.path, ping_all) == want, boost::test_tools::per_element());
    // Open mode, loopback allowed: everything goes.
    TestCgroup open;
    const KernelLayer open_layer = attach_layer(open.path, policy_of({{std::string(kAllowBindKey), "8000"}}));
    BOOST_TEST(run_in_child(open.path, ping_all) == all_delivered, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(icmp_errors_for_the_containers_sockets_still_arrive,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    // ICMP to 10.250.0.1 is denied, UDP to its port 9 allowed: the port-unreachable error
    // the kernel sends back to 10.250.0.1 leaves through the kernel's own socket.
    TestCgroup cg;
    const KernelLayer layer = attach_layer(cg.path, allow_policy("udp://10.250.0.1:9; udp://[fd00:250::1]:9", "deny"));
    const auto results = run_in_child(cg.path, [](Tun& tun) {
        std::vector<int> out;
        out.push_back(ping_each(tun, {addr_of(Tun::kAddr4)}).front().sendto_errno);
        for (const char* dest : {Tun::kAddr4, Tun::kAddr6}) {
            const IpAddr a = addr_of(dest);
            UniqueFd s(::socket(a.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            sockaddr_storage ss;
            const socklen_t len = make_sockaddr(a, 9, !a.is_v4(), ss);
            require(s && ::connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0, 97, "udp connect");
            require(::send(s.get(), "x", 1, 0) == 1, 97, "udp send");
            pollfd p{s.get(), POLLERR, 0};
            ::poll(&p, 1, 1000);
            char c;
            out.push_back(::recv(s.get(), &c, 1, MSG_DONTWAIT) < 0 ? errno : 0);
        }
        return out;
    });
    BOOST_TEST(results == (std::vector<int>{EPERM, ECONNREFUSED, ECONNREFUSED}), boost::test_tools::per_element());
}

// Fail closed: without a place for the programs, the policy runs with the supervisor
// alone only when that is allowed; otherwise one line says why and how to allow it.
BOOST_AUTO_TEST_CASE(kernel_layer_missing_fails_unless_supervisor_mode_is_allowed) {
    const std::map<std::string, std::string> no_cgroup2 = {{"cpu", "/sys/fs/cgroup/cpu/x"}};
    const KernelLayerTarget none = kernel_layer_target(no_cgroup2);
    BOOST_TEST(none.dir.empty());
    BOOST_TEST(none.why_not.find("no cgroup2 directory") != std::string::npos, none.why_not);
    BOOST_TEST(kernel_layer_target({{"", "/sys/fs/cgroup/unified/x"}}).dir == "/sys/fs/cgroup/unified/x");
    BOOST_TEST(to_string(choose_enforcement("", false)) == std::string("kernel"));
    BOOST_TEST(to_string(choose_enforcement(none.why_not, true)) == std::string("supervisor"));
    std::string attach_error;
    try {
        KernelLayer(ResolvedPolicy{}).attach("/nonexistent/sandlock-test");
    } catch (const Error& e) {
        attach_error = e.what();
    }
    BOOST_TEST(!attach_error.empty());
    BOOST_TEST(to_string(choose_enforcement(attach_error, true)) == std::string("supervisor"));
    for (const std::string& why : {none.why_not, attach_error}) {
        try {
            choose_enforcement(why, false);
            BOOST_FAIL("ran without the kernel layer");
        } catch (const Error& e) {
            const std::string what = e.what();
            BOOST_TEST(what.rfind("egress: ", 0) == 0u, what);
            BOOST_TEST(what.find("egress: egress:") == std::string::npos, what);
            BOOST_TEST(what.find("SANDLOCK_RUNC_SUPERVISOR_MODE=allow") != std::string::npos, what);
            BOOST_TEST(what.find('\n') == std::string::npos, what);
        }
    }
}

// ---- what only the packet program sees

// sendmsg on a fresh UDP socket with one control message (level, type, data); the errno
// (0: sent) and how many packets to dest reached the wire.
std::vector<int> send_with_control(Tun& tun, const IpAddr& dest, bool connect_first, int level, int type,
                                   const void* data, std::size_t len, const void* sockopt = nullptr,
                                   std::size_t sockopt_len = 0, int sockopt_name = 0) {
    tun.drain();
    const bool v6 = !dest.is_v4();
    UniqueFd s(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    require(static_cast<bool>(s), 97, "udp socket");
    if (sockopt && ::setsockopt(s.get(), v6 ? IPPROTO_IPV6 : IPPROTO_IP, sockopt_name, sockopt,
                                static_cast<socklen_t>(sockopt_len)) != 0)
        return {-errno, 0};  // the kernel refuses the option itself: nothing to judge
    sockaddr_storage ss;
    const socklen_t sslen = make_sockaddr(dest, 9, v6, ss);
    if (connect_first) require(::connect(s.get(), reinterpret_cast<sockaddr*>(&ss), sslen) == 0, 97, "udp connect");
    char payload[3000];
    std::memset(payload, 'x', sizeof payload);
    iovec iov{payload, sizeof payload};
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(256)] = {};
    msghdr m{};
    if (!connect_first) {
        m.msg_name = &ss;
        m.msg_namelen = sslen;
    }
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (data) {
        m.msg_control = control;
        m.msg_controllen = CMSG_SPACE(len);
        cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = level;
        c->cmsg_type = type;
        c->cmsg_len = CMSG_LEN(len);
        std::memcpy(CMSG_DATA(c), data, len);
    }
    const int err = ::sendmsg(s.get(), &m, 0) < 0 ? errno : 0;
    return {err, tun.packets_to(dest, 100)};
}

// IPv4 options (a loose source route through the allowed address, or only a harmless
// record-route) and an IPv6 routing header: packets that carry them never leave, from
// UDP sockets as from ping sockets; without the programs they do (the control).
BOOST_AUTO_TEST_CASE(packets_with_ip_options_or_a_routing_header_never_leave,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const auto probe = [](Tun& tun) {
        std::vector<int> out;
        const IpAddr dest4 = addr_of(Tun::kRemote4), dest6 = addr_of(Tun::kRemote6);
        // LSRR: type 131, length 7, pointer 4, one hop; then record route (7) alone.
        const unsigned char lsrr[8] = {131, 7, 4, 10, 250, 0, 2, 1};
        const unsigned char rr[8] = {7, 7, 4, 0, 0, 0, 0, 1};
        for (const auto* opt : {lsrr, rr}) {
            const auto r = send_with_control(tun, dest4, false, 0, 0, nullptr, 0, opt, 8, IP_OPTIONS);
            out.insert(out.end(), r.begin(), r.end());
            const auto c = send_with_control(tun, dest4, false, IPPROTO_IP, IP_RETOPTS, opt, 8);
            out.insert(out.end(), c.begin(), c.end());
        }
        // A type-2 routing header (Mobile IPv6, CONFIG_IPV6_MIP6) through the allowed address.
        unsigned char rthdr[24] = {};
        rthdr[1] = 2;  // length: 2 units of 8 bytes past the first 8
        rthdr[2] = 2;  // type 2
        rthdr[3] = 1;  // segments left
        std::memcpy(rthdr + 8, dest6.bytes.data(), 16);
        const auto r6 = send_with_control(tun, dest6, false, IPPROTO_IPV6, IPV6_RTHDR, rthdr, sizeof rthdr);
        out.insert(out.end(), r6.begin(), r6.end());
        return out;
    };
    TestCgroup plain;
    const std::vector<int> control = run_in_child(plain.path, probe);
    BOOST_TEST_REQUIRE(control.size() == 10u);
    for (std::size_t i = 0; i < 8; i += 2)
        BOOST_TEST((control[i] == 0 && control[i + 1] >= 1), "control " << i << ": " << control[i] << ", " << control[i + 1]);
    const bool mip6 = control[8] == 0;
    if (!mip6) BOOST_TEST_MESSAGE("this kernel refuses type-2 routing headers (no CONFIG_IPV6_MIP6): not probed");
    TestCgroup cg;
    const KernelLayer layer = attach_layer(cg.path, allow_policy("udp://10.250.0.2:9; udp://[fd00:250::2]:9"));
    const std::vector<int> got = run_in_child(cg.path, probe);
    BOOST_TEST_REQUIRE(got.size() == 10u);
    for (std::size_t i = 0; i < 8; i += 2) {
        BOOST_TEST(got[i] == EPERM, "probe " << i << ": " << got[i]);
        BOOST_TEST(got[i + 1] == 0, "probe " << i << " reached the wire");
    }
    if (mip6) BOOST_TEST(got[9] == 0, "the routed IPv6 datagram reached the wire");
}

// QUIC's way of sending: a connected UDP socket, UDP_SEGMENT (GSO) and IP_TOS control
// messages. The kernel runs the sendmsg hook for it with no address (0.0.0.0 port 0),
// which must not be judged as a loopback destination: connect judged the peer.
BOOST_AUTO_TEST_CASE(connected_udp_with_control_messages_is_sent_under_a_policy,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    TestCgroup cg;
    const KernelLayer layer = attach_layer(cg.path, allow_policy("udp://10.250.0.2:9; udp://[fd00:250::2]:9", "deny"));
    const auto got = run_in_child(cg.path, [](Tun& tun) {
        std::vector<int> out;
        const std::uint16_t gso = 1000;
        const int tos = 0x10;
        for (const char* d : {Tun::kRemote4, Tun::kRemote6}) {
            const IpAddr dest = addr_of(d);
            for (const auto& r : {send_with_control(tun, dest, true, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso),
                                  dest.is_v4() ? send_with_control(tun, dest, true, IPPROTO_IP, IP_TOS, &tos, sizeof tos)
                                               : send_with_control(tun, dest, true, IPPROTO_IPV6, IPV6_TCLASS, &tos,
                                                                   sizeof tos)})
                out.insert(out.end(), r.begin(), r.end());
        }
        // the same datagram to a refused port, with its address: EPERM
        const IpAddr dest = addr_of(Tun::kRemote4);
        UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_storage ss;
        const socklen_t len = make_sockaddr(dest, 10, false, ss);
        out.push_back(::sendto(s.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0 ? errno : 0);
        return out;
    });
    BOOST_TEST_REQUIRE(got.size() == 9u);
    for (std::size_t i = 0; i < 8; i += 2) {
        BOOST_TEST(got[i] == 0, "send " << i << ": " << got[i]);
        BOOST_TEST(got[i + 1] >= 1, "send " << i << " never reached the wire");
    }
    BOOST_TEST(got[8] == EPERM);
}

// The kernel counts per rule and records audited decisions in its ring buffer.
BOOST_AUTO_TEST_CASE(counters_and_events_come_from_the_kernel,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    ResolvedPolicy p = allow_policy("10.1.2.3:80; udp://10.250.0.1:9", "deny");
    p.audit = Audit::All;
    TestCgroup cg;
    KernelLayer layer(p);
    layer.attach(cg.path);
    run_in_child(cg.path, [](Tun& tun) {
        const IpAddr dest = addr_of(Tun::kAddr4);
        for (std::uint16_t port : {9, 9, 9, 10, 10}) {
            UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            sockaddr_storage ss;
            const socklen_t len = make_sockaddr(dest, port, false, ss);
            ::sendto(s.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), len);
        }
        UniqueFd t(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_storage ss;
        const socklen_t len = make_sockaddr(addr_of("10.1.2.3"), 80, false, ss);
        ::connect(t.get(), reinterpret_cast<sockaddr*>(&ss), len);
        UniqueFd lite(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDPLITE));
        tun.drain();
        return std::vector<int>{};
    });
    const KernelCounters c = layer.counters();
    BOOST_TEST_REQUIRE(c.rules.size() == 2u);
    BOOST_TEST(c.rules[0].allowed == 1u);  // tcp 10.1.2.3:80
    BOOST_TEST(c.rules[1].allowed == 3u);  // udp 10.250.0.1:9
    BOOST_TEST(c.no_rule.denied == 2u);    // udp port 10
    BOOST_TEST(c.refused_sockets == 1u);
    BOOST_TEST(c.allowed() == 4u);
    BOOST_TEST(c.denied() == 3u);
    std::vector<KernelEvent> events;
    layer.drain_events([&](const KernelEvent& e) { events.push_back(e); });
    // the allowed connect is the shim's to record; the five datagrams are the kernel's
    BOOST_TEST_REQUIRE(events.size() == 5u);
    for (std::size_t i = 0; i < events.size(); ++i) {
        BOOST_TEST((events[i].hook == KernelEvent::Hook::Sendmsg));
        BOOST_TEST(events[i].destination.to_string() == "10.250.0.1");
        BOOST_TEST(events[i].allowed == (i < 3));
        BOOST_TEST(events[i].pid > 0);
        BOOST_TEST((events[i].reason == (i < 3 ? Reason::AllowRule : Reason::NoAllowRule)));
    }
    BOOST_TEST(*events[0].rule == 1u);
    BOOST_TEST(!events[4].rule.has_value());
}

// The events ring is as large as SL_EVENTS_BYTES only where the programs write records
// (io.sandlock.audit=deny or all); without audit a page stands in, so that create does not
// zero, charge and map 256 KiB for records that never come.
BOOST_AUTO_TEST_CASE(the_events_ring_is_sized_for_the_policys_audit,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    const auto ring_bytes = [](Audit audit) {
        ResolvedPolicy p = allow_policy("10.1.2.3:80", "deny");
        p.audit = audit;
        const KernelLayer layer(p);
        bpf_map_info info{};
        std::uint32_t len = sizeof info;
        BOOST_TEST_REQUIRE(bpf_obj_get_info_by_fd(layer.events_fd(), &info, &len) == 0);
        BOOST_TEST(info.type == static_cast<std::uint32_t>(BPF_MAP_TYPE_RINGBUF));
        return info.max_entries;
    };
    BOOST_TEST(ring_bytes(Audit::Off) == static_cast<std::uint32_t>(::sysconf(_SC_PAGESIZE)));
    BOOST_TEST(ring_bytes(Audit::Deny) == static_cast<std::uint32_t>(SL_EVENTS_BYTES));
    BOOST_TEST(ring_bytes(Audit::All) == static_cast<std::uint32_t>(SL_EVENTS_BYTES));
}

// body runs in a child inside the cgroup; where it calls pause(), the child waits (its
// sockets open) while this process runs between(), then goes on.
std::vector<int> run_in_child_with_pause(const std::string& cgroup,
                                         const std::function<std::vector<int>(Tun&, const std::function<void()>&)>& body,
                                         const std::function<void()>& between) {
    int ready[2], go[2];
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) throw_errno("pipe2");
    UniqueFd ready_rd(ready[0]), ready_wr(ready[1]), go_rd(go[0]), go_wr(go[1]);
    std::vector<int> results;
    std::thread prober([&] {
        results = run_in_child(cgroup, [&](Tun& tun) {
            const auto pause = [&] {
                char c = 'r';
                require(::write(ready_wr.get(), &c, 1) == 1, 94, "write ready");
                require(::read(go_rd.get(), &c, 1) == 1, 95, "read go");
            };
            return body(tun, pause);
        });
    });
    pollfd p{ready_rd.get(), POLLIN, 0};
    const bool paused = ::poll(&p, 1, 30000) == 1;
    if (paused) between();
    char c = 'g';
    [[maybe_unused]] const ssize_t n = ::write(go_wr.get(), &c, 1);
    prober.join();
    BOOST_TEST_REQUIRE(paused, "the probing child never paused");
    return results;
}

int send_one(int fd, const char* dest, std::uint16_t port, bool as_v6) {
    sockaddr_storage ss;
    const socklen_t len = make_sockaddr(addr_of(dest), port, as_v6, ss);
    return ::sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0 ? errno : 0;
}

// A socket's last allowed destination is kept in its storage (egress.bpf.c's last_sent):
// the same socket is judged again for another port, address or protocol family, and
// after a live change, however often it was allowed before.
BOOST_AUTO_TEST_CASE(a_socket_sending_again_is_judged_again_when_anything_changes,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    TestCgroup cg;
    KernelLayer layer = attach_layer(cg.path, allow_policy("udp://10.250.0.2:9; udp://10.250.0.2:10", "deny"));
    const auto got = run_in_child_with_pause(
        cg.path,
        [](Tun& tun, const std::function<void()>& pause) {
            UniqueFd s4(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            UniqueFd s6(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
            std::vector<int> out;
            const char* a = Tun::kRemote4;
            for (int i = 0; i < 3; ++i) out.push_back(send_one(s4.get(), a, 9, false));  // 0 0 0
            out.push_back(send_one(s4.get(), a, 11, false));                            // EPERM: port
            out.push_back(send_one(s4.get(), a, 9, false));                             // 0
            out.push_back(send_one(s4.get(), "10.250.0.3", 9, false));                  // EPERM: address
            out.push_back(send_one(s4.get(), a, 10, false));                            // 0
            out.push_back(send_one(s4.get(), a, 9, false));                             // 0
            out.push_back(send_one(s6.get(), a, 9, true));                              // 0: ::ffff:a
            out.push_back(send_one(s6.get(), "10.250.0.3", 9, true));                   // EPERM
            out.push_back(send_one(s6.get(), Tun::kRemote6, 9, true));                  // EPERM: IPv6
            out.push_back(send_one(s6.get(), a, 9, true));                              // 0
            tun.drain();
            pause();  // the policy changes: port 9 is revoked
            out.push_back(send_one(s4.get(), a, 9, false));  // EPERM
            out.push_back(send_one(s6.get(), a, 9, true));   // EPERM
            out.push_back(send_one(s4.get(), a, 10, false));  // 0
            tun.drain();
            return out;
        },
        [&] { layer.replace(allow_policy("udp://10.250.0.2:10", "deny")); });
    const std::vector<int> want = {0, 0, 0, EPERM, 0, EPERM, 0, 0, 0, EPERM, EPERM, 0, EPERM, EPERM, 0};
    BOOST_TEST(got == want, boost::test_tools::per_element());
}

// Datagrams allowed from a socket's storage are counted there and reach the rule's counter
// in batches while the socket sends, in full when it is closed.
BOOST_AUTO_TEST_CASE(a_sockets_datagrams_are_all_counted_once_it_is_closed,
                     *boost::unit_test::precondition([](auto) { return can_run(); })) {
    TestCgroup cg;
    KernelLayer layer = attach_layer(cg.path, allow_policy("udp://10.250.0.2:9", "deny"));
    constexpr int kSent = 150;
    std::uint64_t while_open = 0;
    const auto got = run_in_child_with_pause(
        cg.path,
        [](Tun& tun, const std::function<void()>& pause) {
            std::vector<int> out;
            {
                UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
                int failed = 0;
                for (int i = 0; i < kSent; ++i) {
                    failed += send_one(s.get(), Tun::kRemote4, 9, false) != 0;
                    if (i % 32 == 0) tun.drain();
                }
                out.push_back(failed);
                tun.drain();
                pause();  // the counters are read with the socket open
            }
            return out;
        },
        [&] { while_open = layer.counters().rules.at(0).allowed; });
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0] == 0);
    BOOST_TEST(while_open >= static_cast<std::uint64_t>(kSent - 63));
    BOOST_TEST(while_open <= static_cast<std::uint64_t>(kSent));
    BOOST_TEST(layer.counters().rules.at(0).allowed == static_cast<std::uint64_t>(kSent));
}

BOOST_AUTO_TEST_SUITE_END()
