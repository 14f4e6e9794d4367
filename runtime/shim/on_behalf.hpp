// One seccomp notification for connect/sendto/sendmsg/sendmmsg, answered the only safe
// way: the socket is duplicated from the caller (pidfd_getfd) and its own domain decides.
// For IP sockets the address (and data) are copied out once, the destination is derived
// from the copy as the kernel would read it for that socket, the policy is consulted, and
// the call is performed on the duplicate with a sockaddr we built ourselves, or refused
// with ECONNREFUSED. Calls on other sockets (unix, netlink) are performed on the duplicate
// too, as the caller (see on_behalf.cpp and client.hpp): never CONTINUE in supervisor mode,
// so the kernel never re-reads the caller's memory or fd table after the check. In kernel
// mode (only connect is notified) a non-IP connect is CONTINUEd: the kernel's connect hook
// judges whatever the fd names by then; so is, without looking at the socket at all, a
// connect to where the policy allows TCP (tcp_allowed_to) when allowed calls are not
// audited.
#pragma once

#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "runtime/egress/policy.hpp"

namespace sandlock::shim {

// One egress decision, for the audit log.
struct Decision {
    pid_t pid = 0;            // the calling thread, in the supervisor's pid namespace
    std::string syscall;      // "connect", "sendto", "sendmsg", "sendmmsg"
    egress::Protocol protocol = egress::Protocol::Tcp;
    std::string destination;  // the IP, IPv4-mapped IPv6 shown as IPv4
    std::uint16_t port = 0;
    bool allowed = false;
    bool kernel = false;      // recorded by the kernel's programs (their ring buffer)
};
using DecisionFn = std::function<void(const Decision&)>;

// Caps on what is copied out of the caller. A stream send copies at most kMaxStreamCopy
// (a short write, which a blocking socket may return too); a datagram larger than the
// biggest UDP datagram fails EMSGSIZE before anything is copied, as the kernel would fail it.
inline constexpr std::size_t kMaxStreamCopy = std::size_t{256} << 10;
inline constexpr std::size_t kMaxDatagramBytes = 65535;
// A unix (or netlink) datagram, performed by the shim in supervisor mode: EMSGSIZE beyond
// (the kernel's own limit is the send buffer, 208 KiB unless wmem_max was raised).
inline constexpr std::size_t kMaxLocalDatagramBytes = std::size_t{256} << 10;
inline constexpr std::size_t kMaxIovecs = 1024;                      // EMSGSIZE (UIO_MAXIOV)
inline constexpr std::size_t kMaxControlBytes = 4096;                // ENOBUFS
inline constexpr unsigned kMaxSendmmsgEntries = 256;                 // larger vlen is cut

// A socket as its duplicate describes it (SO_DOMAIN, SO_TYPE, SO_PROTOCOL).
struct SocketKind {
    int family = 0;
    int type = 0;
    int protocol = 0;

    bool is_ip() const { return family == AF_INET || family == AF_INET6; }
    bool is_tcp() const;
    bool is_udp() const;
    bool is_ping() const;
    // The policy that judges it; nullopt (refused) for raw, SCTP, MPTCP, UDP-Lite, ...
    std::optional<egress::Protocol> policy_protocol() const;
};

// How an address argument is used by the call.
enum class AddressUse {
    Connect,       // connect(2)
    Send,          // sendto/sendmsg name (TCP ignores it)
    SendFastOpen,  // TCP with MSG_FASTOPEN: the name is a connect
};

// Where the kernel would send, for this socket, given our copy of the address.
struct Destination {
    enum class Kind {
        Address,     // judge ip/port, then pass `sockaddr`
        NoAddress,   // the kernel ignores the name (or it is absent): pass none
        Disconnect,  // connect(AF_UNSPEC): pass `sockaddr` (zeroed AF_UNSPEC)
        Invalid,     // the kernel would fail with `error` before using any address
    };
    Kind kind = Kind::Invalid;
    int error = 0;
    egress::IpAddr ip;  // normalized
    std::uint16_t port = 0;
    sockaddr_storage sockaddr{};
    socklen_t sockaddr_len = 0;
};

// The kernel's rules (6.x) for the socket's own family and protocol, never the family
// field alone: e.g. an AF_INET6 UDP socket sends to an AF_INET sockaddr's IPv4
// address, and an AF_INET UDP socket reads an AF_UNSPEC sockaddr as AF_INET.
Destination interpret_address(const SocketKind& socket, AddressUse use, const void* addr, std::size_t len);

// Kernel mode's connect without the socket: whether the policy allows TCP to the address
// that the sockaddr's own family names (AF_INET, or AF_INET6 of at least RFC 2133's
// length). The cgroup connect hooks judge it again for the socket's real protocol (a UDP
// or ping socket connecting there is refused by them), and a socket of another family
// fails in the kernel.
bool tcp_allowed_to(const egress::ResolvedPolicy& policy, const void* addr, std::size_t len);

// Whether IP options (IP_OPTIONS) carry a source route (LSRR/SSRR), which would send
// packets to the first hop instead of the checked destination.
bool has_source_route(const unsigned char* options, std::size_t len);

// The answer to one notification.
struct Reply {
    enum class Kind { Value, Error, Continue, Gone };
    Kind kind = Kind::Gone;
    std::int64_t value = 0;  // Value
    int error = 0;           // Error: a positive errno
    // What happened, for the counters.
    unsigned allowed = 0;
    unsigned denied = 0;
    bool internal_error = false;  // the supervisor could not act (dup or read failed, ...)
    bool local = false;           // a call on a non-IP socket, performed for the caller

    static Reply success(std::int64_t v);
    static Reply failure(int err);
    static Reply proceed();  // SECCOMP_USER_NOTIF_FLAG_CONTINUE
    static Reply gone();     // the notification vanished: send nothing
    static Reply from_errno(int err);  // 0: success(0), else failure(err)
};

seccomp_notif_resp to_response(std::uint64_t id, const Reply& reply);

// Handles one notification; blocks as long as the call does (a connect may take
// minutes, but no longer than its caller waits for it), so run it where nothing waits
// behind it. decided() is called once per
// destination judged (a sendmmsg may judge several), from this thread.
// kernel_layer: the cgroup programs (egress/kernel_layer.hpp) are attached to the
// container's cgroup. An allowed IP connect is then answered CONTINUE: the kernel does it
// in the caller's thread and its connect hook judges the kernel's own copy of the address,
// on whatever socket the fd names by then, so neither a rewritten sockaddr nor a swapped
// fd gains anything. (Sticky source routes are left to the packet program, which drops
// packets that carry one.) Without it, every allowed call is performed on our duplicate.
// records_allowed: decided() records allowed calls too (audit=all, learning mode); when
// false, kernel mode answers a connect to where TCP is allowed without the socket.
Reply handle_notification(int listener, const seccomp_notif& notif, const egress::ResolvedPolicy& policy,
                          const DecisionFn& decided, bool kernel_layer = false, bool records_allowed = true);

}  // namespace sandlock::shim
