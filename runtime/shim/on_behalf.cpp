#include "runtime/shim/on_behalf.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/sockios.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/capability.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <climits>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "runtime/egress/sockets.hpp"
#include "runtime/shim/as_caller.hpp"
#include "runtime/shim/notify.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::shim {

namespace {

#if defined(__x86_64__)
constexpr std::uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#else
#error "the egress supervisor reads 64-bit struct layouts: add this architecture"
#endif

constexpr socklen_t kSockaddrIn6Len = sizeof(sockaddr_in6);  // 28
constexpr std::size_t kSin6LenRfc2133 = 24;                  // sockaddr_in6 without scope id

}  // namespace

// ---- socket kinds and addresses ---------------------------------------------------

std::optional<egress::Protocol> SocketKind::policy_protocol() const {
    return egress::judgeable_protocol(family, type, protocol);
}

bool SocketKind::is_tcp() const { return policy_protocol() == egress::Protocol::Tcp; }
bool SocketKind::is_udp() const { return policy_protocol() == egress::Protocol::Udp; }
bool SocketKind::is_ping() const { return policy_protocol() == egress::Protocol::Icmp; }

namespace {

Destination invalid(int err) {
    Destination d;
    d.kind = Destination::Kind::Invalid;
    d.error = err;
    return d;
}

Destination no_address() {
    Destination d;
    d.kind = Destination::Kind::NoAddress;
    return d;
}

Destination disconnect(std::size_t len) {
    Destination d;
    d.kind = Destination::Kind::Disconnect;
    d.sockaddr.ss_family = AF_UNSPEC;  // every other byte zero: nothing else to read
    d.sockaddr_len = static_cast<socklen_t>(std::min(len, sizeof(sockaddr_storage)));
    return d;
}

Destination ipv4_destination(const unsigned char* bytes) {
    sockaddr_in in{};
    std::memcpy(&in.sin_port, bytes + offsetof(sockaddr_in, sin_port), sizeof in.sin_port);
    std::memcpy(&in.sin_addr, bytes + offsetof(sockaddr_in, sin_addr), sizeof in.sin_addr);
    in.sin_family = AF_INET;
    Destination d;
    d.kind = Destination::Kind::Address;
    d.ip = egress::IpAddr::from(in.sin_addr);
    d.port = ntohs(in.sin_port);
    std::memcpy(&d.sockaddr, &in, sizeof in);
    d.sockaddr_len = sizeof in;
    return d;
}

Destination ipv6_destination(const unsigned char* bytes, std::size_t len) {
    sockaddr_in6 in6{};
    std::memcpy(&in6.sin6_port, bytes + offsetof(sockaddr_in6, sin6_port), sizeof in6.sin6_port);
    // sin6_flowinfo stays 0: a flow label can select sticky options (a type-2 routing
    // header) that would change where the packet goes after this check.
    std::memcpy(&in6.sin6_addr, bytes + offsetof(sockaddr_in6, sin6_addr), sizeof in6.sin6_addr);
    if (len >= sizeof(sockaddr_in6))  // shorter (RFC 2133) addresses have no scope id
        std::memcpy(&in6.sin6_scope_id, bytes + offsetof(sockaddr_in6, sin6_scope_id), sizeof in6.sin6_scope_id);
    in6.sin6_family = AF_INET6;
    Destination d;
    d.kind = Destination::Kind::Address;
    d.ip = egress::normalize(egress::IpAddr::from(in6.sin6_addr));
    d.port = ntohs(in6.sin6_port);
    std::memcpy(&d.sockaddr, &in6, sizeof in6);
    d.sockaddr_len = kSockaddrIn6Len;
    return d;
}

}  // namespace

Destination interpret_address(const SocketKind& socket, AddressUse use, const void* addr, std::size_t len) {
    // TCP sends ignore the name unless MSG_FASTOPEN makes them a connect.
    if (use == AddressUse::Send && socket.is_tcp()) return no_address();
    if (len < sizeof(sa_family_t)) return invalid(EINVAL);
    const auto* bytes = static_cast<const unsigned char*>(addr);
    sa_family_t family;
    std::memcpy(&family, bytes, sizeof family);

    if (family == AF_UNSPEC) {
        if (use == AddressUse::Connect) return disconnect(len);
        if (use == AddressUse::SendFastOpen) return invalid(EOPNOTSUPP);
        if (socket.is_udp()) {
            // udp_sendmsg reads an AF_UNSPEC name as AF_INET; udpv6_sendmsg drops it.
            if (socket.family == AF_INET6) return no_address();
            family = AF_INET;
        }
    }

    if (socket.family == AF_INET) {
        if (len < sizeof(sockaddr_in)) return invalid(EINVAL);
        if (family != AF_INET) return invalid(EAFNOSUPPORT);
        return ipv4_destination(bytes);
    }

    // AF_INET6 sockets. Only UDP takes an AF_INET address (connect and send alike).
    if (socket.is_udp()) {
        if (family == AF_INET) {
            if (len < sizeof(sockaddr_in)) return invalid(EINVAL);
            return ipv4_destination(bytes);
        }
        if (use == AddressUse::Send && family != AF_INET6) return invalid(EINVAL);
    }
    const std::size_t minimum =
        (socket.is_ping() && use == AddressUse::Send) ? sizeof(sockaddr_in6) : kSin6LenRfc2133;
    if (len < minimum) return invalid(EINVAL);
    if (family != AF_INET6) return invalid(EAFNOSUPPORT);
    return ipv6_destination(bytes, len);
}

bool tcp_allowed_to(const egress::ResolvedPolicy& policy, const void* addr, std::size_t len) {
    if (len < sizeof(sa_family_t)) return false;
    sa_family_t family;
    std::memcpy(&family, addr, sizeof family);
    if (family != AF_INET && family != AF_INET6) return false;
    // Read as a TCP socket of that family reads it (an AF_INET6 one: RFC 2133's length).
    const SocketKind tcp{family, SOCK_STREAM, IPPROTO_TCP};
    const Destination d = interpret_address(tcp, AddressUse::Connect, addr, len);
    return d.kind == Destination::Kind::Address && policy.check(egress::Protocol::Tcp, d.ip, d.port).allowed();
}

bool has_source_route(const unsigned char* options, std::size_t len) {
    std::size_t i = 0;
    while (i < len) {
        const unsigned char type = options[i];
        if (type == IPOPT_END) return false;
        if (type == IPOPT_NOOP) {
            ++i;
            continue;
        }
        if (type == IPOPT_LSRR || type == IPOPT_SSRR) return true;
        if (i + 1 >= len || options[i + 1] < 2) return false;  // malformed: the kernel refused it
        i += options[i + 1];
    }
    return false;
}

// ---- replies ------------------------------------------------------------------------

Reply Reply::success(std::int64_t v) {
    Reply r;
    r.kind = Kind::Value;
    r.value = v;
    return r;
}

Reply Reply::failure(int err) {
    Reply r;
    r.kind = Kind::Error;
    r.error = err;
    return r;
}

Reply Reply::proceed() {
    Reply r;
    r.kind = Kind::Continue;
    return r;
}

Reply Reply::gone() { return Reply{}; }

Reply Reply::from_errno(int err) { return err == 0 ? success(0) : failure(err); }

seccomp_notif_resp to_response(std::uint64_t id, const Reply& reply) {
    seccomp_notif_resp resp{};
    resp.id = id;
    switch (reply.kind) {
        case Reply::Kind::Value:
            resp.val = reply.value;
            break;
        case Reply::Kind::Error:
            resp.error = -reply.error;
            break;
        case Reply::Kind::Continue:
            resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            break;
        case Reply::Kind::Gone:
            resp.error = -ENOSYS;
            break;
    }
    return resp;
}

// ---- the on-behalf calls --------------------------------------------------------------

namespace {

// Thrown when the notification stops being valid: the caller died or its syscall was
// interrupted; whatever we read may belong to someone else now.
struct NotificationGone {};

// The notifying thread: its memory and its fds, always re-validated.
class Caller {
public:
    Caller(int listener, const seccomp_notif& notif) : listener_(listener), notif_(notif) {}

    const seccomp_notif& notif() const { return notif_; }
    std::uint64_t arg(int i) const { return notif_.data.args[i]; }
    pid_t tid() const { return static_cast<pid_t>(notif_.pid); }

    void ensure_valid() const {
        if (!notif_id_valid(listener_, notif_.id)) throw NotificationGone{};
        unchecked_ = false;
    }
    // Before anything is decided or done with what was taken from the caller (its fd,
    // its memory, its ids): the notification was still pending after all of it was
    // taken, so the thread was alive and its tid ours meanwhile, and every copy is the
    // caller's. One NOTIF_ID_VALID for all the reads of a call (each one costs a syscall
    // on the data path); what is read is never re-read: it is judged and used as copied.
    void ensure_checked() const {
        if (unchecked_) ensure_valid();
    }
    // False when unreadable (the reply is then EFAULT, which a vanished caller never sees).
    bool read(std::uint64_t addr, void* out, std::size_t len) const {
        unchecked_ = true;
        return read_process_memory(tid(), addr, out, len);
    }
    bool gather(const std::vector<iovec>& remote, void* out, std::size_t total) const {
        unchecked_ = true;
        return read_process_gather(tid(), remote.data(), remote.size(), out, total);
    }
    bool write(std::uint64_t addr, const void* in, std::size_t len) const {
        ensure_valid();
        return write_process_memory(tid(), addr, in, len);
    }

    // The caller's fd, duplicated. Invalid fd with errno set when it has none.
    UniqueFd take_fd(int fd) {
        const int pidfd = this->pidfd();
        if (pidfd < 0) return {};
        UniqueFd dup = pidfd_take_fd(pidfd, fd);
        if (!dup && errno == ESRCH && borrowed_ >= 0) {
            // The cached pidfd named an earlier thread with this tid.
            borrowed_ = cached_thread_pidfd(tid(), true);
            if (borrowed_ < 0) {
                no_pidfd();
                return {};
            }
            dup = pidfd_take_fd(borrowed_, fd);
        }
        // Whether the pidfd and the fd table were the caller's is checked before the
        // fd is acted on (ensure_checked).
        unchecked_ = true;
        return dup;
    }
    // The caller's ids as the shim sees them (host pid and ids); nullopt when it is gone.
    std::optional<ThreadIds> ids() {
        const int pidfd = this->pidfd();
        unchecked_ = true;  // the caller's, not those of a reused tid: ensure_checked()
        return thread_ids(pidfd, tid());
    }
    void signal(int sig) {
        const int pidfd = this->pidfd();
        if (pidfd >= 0) pidfd_signal(pidfd, sig);
    }
private:
    // A cached pidfd where the kernel allows it (saves an open and a close per call),
    // else one of our own.
    int pidfd() {
        if (borrowed_ >= 0) return borrowed_;
        if (own_) return own_.get();
        borrowed_ = cached_thread_pidfd(tid(), false);
        if (borrowed_ >= 0) return borrowed_;
        if (errno != EOPNOTSUPP) return no_pidfd();
        own_ = pidfd_open_thread(tid());
        return own_ ? own_.get() : no_pidfd();
    }
    // No pidfd: the thread is gone (the notification with it) or the system refuses.
    int no_pidfd() const {
        if (errno == ESRCH) throw NotificationGone{};
        return -1;
    }

    int listener_;
    const seccomp_notif& notif_;
    mutable bool unchecked_ = false;
    int borrowed_ = -1;
    UniqueFd own_;
};

struct Socket {
    UniqueFd fd;
    SocketKind kind;
};

int socket_option(int fd, int level, int name, int& out) {
    socklen_t len = sizeof out;
    return ::getsockopt(fd, level, name, &out, &len);
}

// Fills s, or returns the reply for a caller fd that is not a usable socket.
// Kernel mode (the cgroup programs judge every IP call again, on the socket the fd names
// then) asks one option less of an IP socket: its type follows from its protocol there,
// since no other IP socket can be made or brought in (raw ones are refused).
std::optional<Reply> take_socket(Caller& caller, Socket& s, bool kernel_layer = false) {
    s.fd = caller.take_fd(static_cast<int>(caller.arg(0)));
    if (!s.fd) {
        const int err = errno;
        Reply r = Reply::failure(err);
        r.internal_error = err != EBADF;  // EBADF: the caller's own mistake
        return r;
    }
    if (socket_option(s.fd.get(), SOL_SOCKET, SO_DOMAIN, s.kind.family) != 0) return Reply::failure(errno);
    if (!s.kind.is_ip() || !kernel_layer) {
        if (socket_option(s.fd.get(), SOL_SOCKET, SO_TYPE, s.kind.type) != 0) return Reply::failure(errno);
        if (!s.kind.is_ip()) return std::nullopt;  // the protocol is not needed
    }
    if (socket_option(s.fd.get(), SOL_SOCKET, SO_PROTOCOL, s.kind.protocol) != 0) {
        Reply r = Reply::failure(errno);
        r.internal_error = true;
        return r;
    }
    if (kernel_layer) {  // SO_TYPE only for a socket the table does not place by protocol
        if (const auto type = egress::judgeable_type_of(s.kind.family, s.kind.protocol))
            s.kind.type = *type;
        else if (socket_option(s.fd.get(), SOL_SOCKET, SO_TYPE, s.kind.type) != 0)
            return Reply::failure(errno);
    }
    return std::nullopt;
}

// Sticky IP options with a source route, or an IPv6 routing header, would send the
// packets to another first hop than the destination we judge.
bool source_routed(int fd, int family) {
    unsigned char buf[64];
    socklen_t len = sizeof buf;
    if (::getsockopt(fd, IPPROTO_IP, IP_OPTIONS, buf, &len) == 0 && has_source_route(buf, len)) return true;
    if (family != AF_INET6) return false;
    unsigned char rthdr[256];
    len = sizeof rthdr;
    return ::getsockopt(fd, IPPROTO_IPV6, IPV6_RTHDR, rthdr, &len) == 0 && len > 0;
}

// Control messages that change where a datagram goes.
bool reroutes(const cmsghdr& h) {
    if (h.cmsg_level == IPPROTO_IP) return h.cmsg_type == IP_RETOPTS;
    if (h.cmsg_level == IPPROTO_IPV6)
        return h.cmsg_type == IPV6_RTHDR || h.cmsg_type == IPV6_2292RTHDR || h.cmsg_type == IPV6_NEXTHOP;
    return false;
}

// SOL_SOCKET control messages that need CAP_NET_ADMIN (a mark, a priority above 6): the
// caller never holds it under a policy, the shim does.
bool needs_net_admin(const cmsghdr& h, const unsigned char* data) {
    if (h.cmsg_level != SOL_SOCKET) return false;
    if (h.cmsg_type == SO_MARK) return true;
    if (h.cmsg_type != SO_PRIORITY) return false;
    std::uint32_t prio = 0;
    std::memcpy(&prio, data, std::min<std::size_t>(h.cmsg_len - CMSG_LEN(0), sizeof prio));
    return prio > 6;
}

// Walks the copied control data as the kernel does (for_each_cmsghdr + CMSG_OK).
// 0 when acceptable; EINVAL when malformed; EPERM when it would reroute.
// SCM_RIGHTS/SCM_CREDENTIALS pass unchanged: IP sockets ignore them.
int check_control(const std::vector<unsigned char>& control) {
    std::size_t off = 0;
    while (control.size() - off >= sizeof(cmsghdr)) {
        cmsghdr h;
        std::memcpy(&h, control.data() + off, sizeof h);
        if (h.cmsg_len < sizeof(cmsghdr) || h.cmsg_len > control.size() - off) return EINVAL;
        if (reroutes(h)) return EPERM;
        if (needs_net_admin(h, control.data() + off + CMSG_LEN(0))) return EPERM;
        const std::size_t step = CMSG_ALIGN(h.cmsg_len);
        if (step > control.size() - off) break;
        off += step;
    }
    return 0;
}

// The per-call context shared by the handlers.
struct Call {
    Caller& caller;
    const egress::ResolvedPolicy& policy;
    const DecisionFn& decided;
    const char* syscall;
    bool kernel_layer;     // the cgroup programs judge the kernel's copy too
    bool records_allowed;  // decided() records allowed calls too
    Reply tally;           // allowed/denied/internal_error accumulate here

    Reply finish(Reply r) const {
        r.allowed += tally.allowed;
        r.denied += tally.denied;
        r.internal_error = r.internal_error || tally.internal_error;
        return r;
    }
};

// Judges a destination for this socket. 0 when the call may proceed, else the errno.
int judge(Call& call, const Socket& s, const Destination& d) {
    if (d.kind == Destination::Kind::Invalid) return d.error;
    if (d.kind == Destination::Kind::Disconnect) return 0;
    const std::optional<egress::Protocol> protocol = s.kind.policy_protocol();
    if (!protocol) {
        ++call.tally.denied;  // a protocol the policy cannot judge
        return ECONNREFUSED;
    }
    if (!call.kernel_layer && source_routed(s.fd.get(), s.kind.family)) {
        ++call.tally.denied;
        return EPERM;
    }
    if (d.kind == Destination::Kind::NoAddress) return 0;  // the connected peer, judged at connect
    const bool allowed = call.policy.check(*protocol, d.ip, d.port).allowed();
    // The address judged is the caller's. In kernel mode an allowed call that nobody
    // records need not be sure: the kernel judges its own copy again.
    if (!call.kernel_layer || !allowed || call.decided) call.caller.ensure_checked();
    ++(allowed ? call.tally.allowed : call.tally.denied);
    if (call.decided) {
        Decision decision;
        decision.pid = call.caller.tid();
        decision.syscall = call.syscall;
        decision.protocol = *protocol;
        decision.destination = d.ip.to_string();
        decision.port = *protocol == egress::Protocol::Icmp ? 0 : d.port;
        decision.allowed = allowed;
        call.decided(decision);
    }
    return allowed ? 0 : ECONNREFUSED;
}

const sockaddr* name_of(const Destination& d) {
    return d.kind == Destination::Kind::NoAddress ? nullptr : reinterpret_cast<const sockaddr*>(&d.sockaddr);
}
socklen_t name_len(const Destination& d) { return d.kind == Destination::Kind::NoAddress ? 0 : d.sockaddr_len; }

// A message of one buffer to d (no name when d has none).
msghdr message_to(const Destination& d, iovec& data) {
    msghdr m{};
    m.msg_name = const_cast<sockaddr*>(name_of(d));
    m.msg_namelen = name_len(d);
    m.msg_iov = &data;
    m.msg_iovlen = 1;
    return m;
}

// Waits until a connect in progress on fd (ours, non-blocking) ends: its result (0 or an
// errno); EINPROGRESS when the caller's SO_SNDTIMEO passes first, as the kernel returns
// it. Polls in slices and gives up (NotificationGone) when the caller's notification
// dies, so a connect to a black hole holds a thread no longer than its caller lives.
using Clock = std::chrono::steady_clock;
struct Deadline {
    bool set = false;
    Clock::time_point at{};
    bool passed() const { return set && Clock::now() >= at; }
    int slice_ms(int slice) const {
        if (!set) return slice;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at - Clock::now()).count();
        return static_cast<int>(std::clamp<long long>(left + 1, 0, slice));
    }
};
Deadline send_timeout(int fd) {
    timeval timeout{};
    socklen_t tlen = sizeof timeout;
    ::getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, &tlen);
    Deadline d;
    d.set = timeout.tv_sec != 0 || timeout.tv_usec != 0;
    d.at = Clock::now() + std::chrono::seconds(timeout.tv_sec) + std::chrono::microseconds(timeout.tv_usec);
    return d;
}
constexpr int kPollSliceMs = 100;

int wait_connected(const Caller& caller, int fd, const Deadline& deadline) {
    for (;;) {
        pollfd p{fd, POLLOUT, 0};
        const int n = ::poll(&p, 1, deadline.slice_ms(kPollSliceMs));
        if (n > 0) {
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
            if (err != 0 || (p.revents & POLLOUT)) return err;
        }
        if (deadline.passed()) return EINPROGRESS;
        caller.ensure_valid();  // throws NotificationGone
    }
}

// connect(2) on our duplicate, bounded like the sends below: the call itself never
// blocks (O_NONBLOCK is set on the shared file for the duration of the connect syscall
// only, when the caller's file has not got it); a TCP handshake is then awaited in
// slices (wait_connected), a unix listener's full backlog is retried in slices (the
// kernel would sleep until there is room). 0 or an errno.
int connect_bounded(const Caller& caller, int fd, const sockaddr* addr, socklen_t len) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) return errno;
    const bool caller_waits = !(fl & O_NONBLOCK);
    const auto attempt = [&] {
        if (caller_waits && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return errno;
        const int err = ::connect(fd, addr, len) == 0 ? 0 : errno;
        if (caller_waits) ::fcntl(fd, F_SETFL, fl);  // the caller's flags back
        return err;
    };
    int err = attempt();
    if (!caller_waits || err == 0) return err;
    const Deadline deadline = send_timeout(fd);
    if (err == EINPROGRESS) return wait_connected(caller, fd, deadline);
    int domain = 0;
    socklen_t dlen = sizeof domain;
    if (err != EAGAIN || ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0 || domain != AF_UNIX)
        return err;
    constexpr int kRetryMs = 5;
    while (err == EAGAIN) {
        if (deadline.passed()) return EAGAIN;
        ::poll(nullptr, 0, deadline.slice_ms(kRetryMs));
        caller.ensure_valid();
        err = attempt();
    }
    return err;
}

// The shim's own send never blocks a thread for good: it sends with MSG_DONTWAIT and,
// while the socket is full, polls in slices, giving up as soon as the caller's
// notification is gone (it died, or a signal interrupted the call). A caller that asked
// not to wait (MSG_DONTWAIT, O_NONBLOCK) gets EAGAIN as the kernel would give it; so does
// one whose SO_SNDTIMEO passes. MSG_ZEROCOPY is dropped: the copy is ours, and its
// completion notices would go to the caller's error queue for buffers it never lent.
// A stream send goes on after a short write while the caller waits (the kernel's
// blocking send returns only when all is queued); `rest` is the control data for the
// pieces after the first (a unix socket's credentials, without the fds the first took).
// A TCP Fast Open send (tcp_fastopen) is a connect first: sent without waiting, it
// returns EINPROGRESS with nothing queued when the SYN cannot carry the data; then the
// handshake is awaited as a connect's and the data sent after it.
ssize_t send_bounded(const Caller& caller, int fd, const msghdr& m, int flags, bool stream, bool tcp_fastopen = false,
                     const std::vector<unsigned char>* rest = nullptr) {
    // Whether and how long the caller waits is asked only once a send would wait: the
    // data path (a send that goes at once) costs one syscall here.
    bool known = false, caller_waits = false;
    Deadline deadline;
    const auto know = [&] {
        if (known) return;
        const int fl = ::fcntl(fd, F_GETFL);
        caller_waits = !(flags & MSG_DONTWAIT) && fl >= 0 && !(fl & O_NONBLOCK);
        deadline = send_timeout(fd);
        known = true;
    };
    int own = (flags & ~MSG_ZEROCOPY) | MSG_NOSIGNAL | MSG_DONTWAIT;
    msghdr cur = m;
    iovec piece = m.msg_iovlen == 1 ? m.msg_iov[0] : iovec{};
    if (m.msg_iovlen == 1) cur.msg_iov = &piece;
    const std::size_t total = m.msg_iovlen == 1 ? piece.iov_len : 0;
    std::size_t done = 0;
    for (;;) {
        const ssize_t rc = ::sendmsg(fd, &cur, own);
        const int err = errno;
        if (rc < 0 && err == EINPROGRESS && tcp_fastopen && (own & MSG_FASTOPEN) && (know(), caller_waits)) {
            const int cerr = wait_connected(caller, fd, deadline);
            if (cerr != 0) {
                errno = cerr;
                return -1;
            }
            own &= ~MSG_FASTOPEN;
            cur.msg_name = nullptr;
            cur.msg_namelen = 0;
            continue;
        }
        if (rc >= 0) {
            done += static_cast<std::size_t>(rc);
            // Datagrams go whole; a stream may have queued a prefix.
            if (!stream || m.msg_iovlen != 1 || done >= total || (know(), !caller_waits))
                return static_cast<ssize_t>(done);
            own &= ~MSG_FASTOPEN;
            cur.msg_name = nullptr;
            cur.msg_namelen = 0;
            piece.iov_base = static_cast<unsigned char*>(m.msg_iov[0].iov_base) + done;
            piece.iov_len = total - done;
            cur.msg_control = rest && !rest->empty() ? const_cast<unsigned char*>(rest->data()) : nullptr;
            cur.msg_controllen = rest ? rest->size() : 0;
            continue;
        }
        if ((err != EAGAIN && err != EWOULDBLOCK) || (know(), !caller_waits)) {
            errno = err;
            return done > 0 ? static_cast<ssize_t>(done) : -1;
        }
        if (deadline.passed()) {
            if (done > 0) return static_cast<ssize_t>(done);
            errno = EAGAIN;
            return -1;
        }
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, deadline.slice_ms(kPollSliceMs));
        caller.ensure_valid();  // throws NotificationGone: nobody waits for this send any more
    }
}

// How much of a send of len bytes is copied: a stream takes a prefix (a short write);
// nullopt when a datagram is larger than any datagram can be.
std::optional<std::size_t> copy_size(const SocketKind& kind, std::size_t len) {
    if (kind.type == SOCK_STREAM) return std::min(len, kMaxStreamCopy);
    if (len > (kind.is_ip() ? kMaxDatagramBytes : kMaxLocalDatagramBytes)) return std::nullopt;
    return len;
}

Reply send_result(Call& call, ssize_t rc, int flags) {
    if (rc >= 0) return Reply::success(rc);
    const int err = errno;
    // We send with MSG_NOSIGNAL; the caller gets the SIGPIPE the kernel would have sent.
    if (err == EPIPE && !(flags & MSG_NOSIGNAL)) call.caller.signal(SIGPIPE);
    return Reply::failure(err);
}

// A sockaddr argument of connect/sendto, copied once. nullopt with `reply` set on failure.
struct CopiedName {
    sockaddr_storage bytes{};
    std::size_t len = 0;
};

std::optional<Reply> copy_name(const Caller& caller, std::uint64_t addr, std::uint64_t raw_len, CopiedName& out) {
    const int len = static_cast<int>(static_cast<std::uint32_t>(raw_len));
    if (len < 0 || static_cast<std::size_t>(len) > sizeof(sockaddr_storage)) return Reply::failure(EINVAL);
    out.len = static_cast<std::size_t>(len);
    if (out.len > 0 && !caller.read(addr, &out.bytes, out.len)) return Reply::failure(EFAULT);
    return std::nullopt;
}

// In kernel mode (only connect is notified) a non-IP connect is answered CONTINUE: if a
// thread swaps an IP socket onto the fd meanwhile, the kernel's connect hook judges it.
// An IP family there can only fail on such a socket, so answer that ourselves.
Reply continue_non_ip(const Caller& caller, std::uint64_t addr, std::uint64_t raw_len) {
    if (addr != 0 && static_cast<std::uint32_t>(raw_len) >= sizeof(sa_family_t)) {
        sa_family_t family = AF_UNSPEC;
        if (caller.read(addr, &family, sizeof family) && (family == AF_INET || family == AF_INET6))
            return Reply::failure(EINVAL);
    }
    return Reply::proceed();
}

// ---- sockets that are not IP sockets (supervisor mode) ------------------------------
//
// Performed on our duplicate like the IP calls, never CONTINUEd: a CONTINUE lets the
// kernel look the fd number up again, and a thread that dup2()s an IP socket onto it
// meanwhile would connect or send to an address nobody judged. What the kernel would
// take from the caller's context is taken from the caller:
//   - a unix path (connect, or a datagram's destination) is resolved from the caller's
//     root and working directory with its credentials (AsCaller: this thread chroots to
//     /proc/<tid>/root, enters /proc/<tid>/cwd, takes the caller's ids, groups and
//     capabilities). A connect runs whole that way, so the listener's SO_PEERCRED has
//     the caller's uid and gid (its pid is the shim's: the one thing not carried over).
//     A datagram's path is opened there (O_PATH) and checked for write permission, and
//     the send then names /proc/self/fd/N, the socket inode the caller's lookup found;
//   - SCM_RIGHTS: every fd is the caller's, duplicated (pidfd_getfd), EBADF as the
//     kernel when it has none;
//   - SCM_CREDENTIALS: the caller's own (its host pid, real uid and gid) are attached to
//     every message, so a receiver with SO_PASSCRED sees the caller, never the shim; ones
//     the caller passes itself are checked as the kernel checks them for the caller
//     (its own pid, one of its uids/gids unless it has CAP_SETUID/CAP_SETGID) and
//     translated to the shim's namespaces, else EPERM;
//   - netlink and other families: performed as the caller (AsCaller without the
//     file-system part): the kernel checks the capabilities of whoever sends.

struct LocalControl {
    std::vector<unsigned char> full;   // as sent with the (first piece of the) message
    std::vector<unsigned char> creds;  // the credentials alone, for a stream's later pieces
    std::vector<UniqueFd> fds;         // our duplicates of the SCM_RIGHTS fds
};

constexpr std::size_t kMaxRightsFds = 253;  // SCM_MAX_FD

void append_cmsg(std::vector<unsigned char>& out, int level, int type, const void* data, std::size_t len) {
    const std::size_t off = out.size();
    out.resize(off + CMSG_SPACE(len), 0);
    cmsghdr h{};
    h.cmsg_len = CMSG_LEN(len);
    h.cmsg_level = level;
    h.cmsg_type = type;
    std::memcpy(out.data() + off, &h, sizeof h);
    std::memcpy(out.data() + off + CMSG_LEN(0), data, len);
}

bool in_ids(std::uint32_t v, std::initializer_list<std::uint32_t> ids) {
    return std::find(ids.begin(), ids.end(), v) != ids.end();
}

// The caller's SCM_CREDENTIALS, checked as __scm_send checks them for the caller, in the
// shim's terms; 0 or the errno.
int caller_credentials(Caller& caller, const ucred& claimed, ucred& out) {
    const auto creds = thread_credentials(caller.tid());
    caller.ensure_valid();
    if (!creds) return EPERM;
    // The caller never holds CAP_SYS_ADMIN under a policy: the pid must be its own.
    if (claimed.pid != creds->ns_tgid) return EPERM;
    std::optional<std::uint32_t> uid = claimed.uid, gid = claimed.gid;
    if (!creds->same_user_ns) {
        uid = map_id(creds->uid_map, claimed.uid);
        gid = map_id(creds->gid_map, claimed.gid);
        if (!uid || !gid) return EINVAL;
    }
    const bool setuid = creds->cap_effective & (std::uint64_t{1} << CAP_SETUID);
    const bool setgid = creds->cap_effective & (std::uint64_t{1} << CAP_SETGID);
    const ThreadIds& i = creds->ids;
    if (!setuid && !in_ids(*uid, {i.ruid, i.euid, i.suid})) return EPERM;
    if (!setgid && !in_ids(*gid, {i.rgid, i.egid, i.sgid})) return EPERM;
    out.pid = creds->ids.tgid;
    out.uid = *uid;
    out.gid = *gid;
    return 0;
}

// The shim can attach credentials that are not its own (root, CAP_SYS_ADMIN).
bool can_claim_credentials() {
    static const bool ok = AsCaller::supported();
    return ok;
}

// Translates the copied control data for a non-IP socket (see above). 0 or the errno.
// attach_own: a unix socket, whose receiver may ask for the sender's credentials (on
// other families the send runs as the caller, AsCaller, and the kernel attaches the
// credentials of the sending thread: the caller's ids, the shim's pid).
int translate_control(Caller& caller, const std::vector<unsigned char>& control, LocalControl& out, bool attach_own) {
    bool have_creds = false;
    std::size_t off = 0;
    while (control.size() - off >= sizeof(cmsghdr)) {
        cmsghdr h;
        std::memcpy(&h, control.data() + off, sizeof h);
        if (h.cmsg_len < sizeof(cmsghdr) || h.cmsg_len > control.size() - off) return EINVAL;
        const unsigned char* data = control.data() + off + CMSG_LEN(0);
        const std::size_t len = h.cmsg_len - CMSG_LEN(0);
        if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS) {
            const std::size_t n = len / sizeof(int);
            if (n == 0) {
                // nothing to pass
            } else if (out.fds.size() + n > kMaxRightsFds) {
                return EINVAL;
            } else {
                std::vector<int> ours;
                for (std::size_t i = 0; i < n; ++i) {
                    int theirs;
                    std::memcpy(&theirs, data + i * sizeof(int), sizeof theirs);
                    UniqueFd dup = caller.take_fd(theirs);
                    if (!dup) return errno == ESRCH ? EBADF : errno;
                    ours.push_back(dup.get());
                    out.fds.push_back(std::move(dup));
                }
                append_cmsg(out.full, SOL_SOCKET, SCM_RIGHTS, ours.data(), ours.size() * sizeof(int));
            }
        } else if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_CREDENTIALS) {
            if (len != sizeof(ucred)) return EINVAL;
            ucred claimed, real;
            std::memcpy(&claimed, data, sizeof claimed);
            if (!can_claim_credentials() || !attach_own) return EPERM;
            if (int err = caller_credentials(caller, claimed, real)) return err;
            if (!have_creds) append_cmsg(out.creds, SOL_SOCKET, SCM_CREDENTIALS, &real, sizeof real);
            append_cmsg(out.full, SOL_SOCKET, SCM_CREDENTIALS, &real, sizeof real);
            have_creds = true;
        } else if (needs_net_admin(h, data)) {
            return EPERM;
        } else {
            out.full.insert(out.full.end(), control.begin() + static_cast<std::ptrdiff_t>(off),
                            control.begin() + static_cast<std::ptrdiff_t>(std::min(control.size(), off + CMSG_ALIGN(h.cmsg_len))));
        }
        const std::size_t step = CMSG_ALIGN(h.cmsg_len);
        if (step > control.size() - off) break;
        off += step;
    }
    out.full.resize(CMSG_ALIGN(out.full.size()), 0);
    if (!have_creds && attach_own && can_claim_credentials()) {
        // Those the kernel would attach for the caller: its pid, real uid and gid.
        const std::optional<ThreadIds> ids = caller.ids();
        if (!ids) throw NotificationGone{};
        ucred real{ids->tgid, ids->ruid, ids->rgid};
        append_cmsg(out.full, SOL_SOCKET, SCM_CREDENTIALS, &real, sizeof real);
        append_cmsg(out.creds, SOL_SOCKET, SCM_CREDENTIALS, &real, sizeof real);
    }
    return 0;
}

// A unix socket address that names a path (not abstract, not empty): the path, as the
// kernel reads it (up to the first NUL within the length given).
std::optional<std::string> unix_path(const CopiedName& name) {
    if (name.len <= offsetof(sockaddr_un, sun_path) || name.len > sizeof(sockaddr_un)) return std::nullopt;
    sockaddr_un un;
    std::memcpy(&un, &name.bytes, name.len);
    if (un.sun_family != AF_UNIX || un.sun_path[0] == '\0') return std::nullopt;
    const std::size_t max = name.len - offsetof(sockaddr_un, sun_path);
    return std::string(un.sun_path, strnlen(un.sun_path, max));
}

// An abstract unix name (a leading NUL), looked up in the socket's network namespace.
bool abstract_name(const CopiedName& name) {
    if (name.len <= offsetof(sockaddr_un, sun_path)) return false;
    sockaddr_un un;
    std::memcpy(&un, &name.bytes, std::min(name.len, sizeof un));
    return un.sun_family == AF_UNIX && un.sun_path[0] == '\0';
}

// Whether the socket lives in the shim's own network namespace (the container shares
// the host's). Abstract names there are the host's: the kernel would judge a connect or
// send to one by the caller's Landlock domain (its abstract-unix scope), which the
// shim's thread does not have, so the shim refuses those (EPERM, fail closed).
bool in_shim_netns(int sock) {
    static const ino_t own = [] {
        struct stat st{};
        return ::stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
    }();
    UniqueFd ns(::ioctl(sock, SIOCGSKNS));
    struct stat st{};
    if (!ns || ::fstat(ns.get(), &st) != 0) return true;  // unknown: as if shared
    return st.st_ino == own;
}

ThreadCredentials credentials_of(Caller& caller) {
    auto creds = thread_credentials(caller.tid());
    caller.ensure_valid();  // read from the caller, not from a thread that reused its tid
    if (!creds) throw NotificationGone{};
    return *creds;
}

// The socket inode a unix datagram's path names, looked up as the caller would look it
// up: an O_PATH fd (in `held`) and the address /proc/self/fd/N that names it for us.
// 0 or the errno of the caller's lookup (ENOENT, EACCES, ENOTDIR, ELOOP, ...).
int resolve_unix_destination(Caller& caller, const std::string& path, UniqueFd& held, CopiedName& name) {
    if (!AsCaller::supported()) return EACCES;  // cannot resolve it as the caller: fail closed
    const ThreadCredentials creds = credentials_of(caller);
    {
        AsCaller as(caller.tid(), creds, true);
        caller.ensure_valid();  // /proc/<tid>/root and cwd were the caller's
        held = UniqueFd(::open(path.c_str(), O_PATH | O_CLOEXEC));
        if (!held) return errno;
        // unix_find_bsd: write permission on the socket inode
        if (::faccessat(held.get(), "", W_OK, AT_EMPTY_PATH | AT_EACCESS) != 0) return errno;
    }
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    const int n = std::snprintf(un.sun_path, sizeof un.sun_path, "/proc/self/fd/%d", held.get());
    name.bytes = {};
    std::memcpy(&name.bytes, &un, sizeof un);
    name.len = offsetof(sockaddr_un, sun_path) + static_cast<std::size_t>(n) + 1;
    return 0;
}

Reply connect_local(Call& call, const Socket& s) {
    Caller& caller = call.caller;
    CopiedName name;
    if (auto r = copy_name(caller, caller.arg(1), caller.arg(2), name)) return *r;
    const auto* addr = reinterpret_cast<const sockaddr*>(&name.bytes);
    const auto len = static_cast<socklen_t>(name.len);
    const std::optional<std::string> path = s.kind.family == AF_UNIX ? unix_path(name) : std::nullopt;
    if (s.kind.family == AF_UNIX && abstract_name(name) && in_shim_netns(s.fd.get())) return Reply::failure(EPERM);
    if (!AsCaller::supported()) {
        // A shim that cannot act as the caller (not root: rootless, where it has no more
        // privilege than the container) performs what needs none of the caller's
        // context; a path would resolve in the shim's root instead: EACCES, fail closed.
        if (path) return Reply::failure(EACCES);
        caller.ensure_checked();
        return Reply::from_errno(connect_bounded(caller, s.fd.get(), addr, len));
    }
    const ThreadCredentials creds = credentials_of(caller);
    caller.ensure_checked();
    AsCaller as(caller.tid(), creds, path.has_value());
    if (path) caller.ensure_valid();  // /proc/<tid>/root and cwd were the caller's
    return Reply::from_errno(connect_bounded(caller, s.fd.get(), addr, len));
}

// A message for a non-IP socket, copied out of the caller: sent on s as the caller's.
struct Outgoing {
    CopiedName name;
    std::unique_ptr<unsigned char[]> data;
    std::size_t len = 0;
    std::vector<unsigned char> control;
    int msg_flags = 0;
};

Reply send_local(Call& call, const Socket& s, Outgoing& out, int flags) {
    Caller& caller = call.caller;
    LocalControl control;
    if (int err = translate_control(caller, out.control, control, s.kind.family == AF_UNIX)) return Reply::failure(err);
    UniqueFd held;
    // Only an unconnected-style unix datagram socket looks a name up: a stream refuses
    // one (EISCONN/EOPNOTSUPP) and SOCK_SEQPACKET ignores it, before any lookup.
    if (s.kind.family == AF_UNIX && s.kind.type == SOCK_DGRAM) {
        if (abstract_name(out.name) && in_shim_netns(s.fd.get())) return Reply::failure(EPERM);
        if (const auto path = unix_path(out.name)) {
            if (int err = resolve_unix_destination(caller, *path, held, out.name)) return Reply::failure(err);
        }
    }
    iovec iov{out.data.get(), out.len};
    msghdr m{};
    m.msg_name = out.name.len ? &out.name.bytes : nullptr;
    m.msg_namelen = static_cast<socklen_t>(out.name.len);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.full.empty() ? nullptr : control.full.data();
    m.msg_controllen = control.full.size();
    m.msg_flags = out.msg_flags;
    caller.ensure_checked();
    ssize_t rc;
    if (s.kind.family == AF_UNIX || !AsCaller::supported()) {
        rc = send_bounded(caller, s.fd.get(), m, flags, s.kind.type == SOCK_STREAM, false, &control.creds);
    } else {
        const ThreadCredentials creds = credentials_of(caller);
        AsCaller as(caller.tid(), creds, false);
        rc = send_bounded(caller, s.fd.get(), m, flags, s.kind.type == SOCK_STREAM);
    }
    return send_result(call, rc, flags);
}

Reply on_connect(Call& call) {
    Caller& caller = call.caller;
    // The address first: in kernel mode, when an allowed call is not recorded (no audit
    // log, or one of refusals only), a connect to where the policy allows TCP is answered
    // CONTINUE without the socket (its look-up costs four syscalls: pidfd_getfd, two
    // getsockopt, close). The connect hooks judge the kernel's copy of the address for the
    // socket's own protocol: a UDP or ping socket connecting there is refused by them
    // (EPERM), as an address changed meanwhile is.
    const bool address_first = call.kernel_layer && !(call.decided && call.records_allowed);
    CopiedName name;
    std::optional<Reply> uncopied;
    if (address_first) {
        uncopied = copy_name(caller, caller.arg(1), caller.arg(2), name);
        if (!uncopied && tcp_allowed_to(call.policy, &name.bytes, name.len)) {
            ++call.tally.allowed;
            return call.finish(Reply::proceed());
        }
    }
    Socket s;
    if (auto r = take_socket(caller, s, call.kernel_layer)) return *r;
    if (!s.kind.is_ip()) {
        if (call.kernel_layer) return continue_non_ip(caller, caller.arg(1), caller.arg(2));
        Reply r = connect_local(call, s);
        r.local = true;
        return r;
    }
    if (!address_first) uncopied = copy_name(caller, caller.arg(1), caller.arg(2), name);
    if (uncopied) return *uncopied;
    const Destination d = interpret_address(s.kind, AddressUse::Connect, &name.bytes, name.len);
    if (int err = judge(call, s, d)) return call.finish(Reply::failure(err));
    if (call.kernel_layer) return call.finish(Reply::proceed());  // the connect hook judges again
    caller.ensure_checked();
    return call.finish(Reply::from_errno(connect_bounded(caller, s.fd.get(), name_of(d), name_len(d))));
}

std::unique_ptr<unsigned char[]> buffer(std::size_t len) {
    return std::make_unique_for_overwrite<unsigned char[]>(std::max<std::size_t>(len, 1));
}

bool tcp_fastopen(const Socket& s, int flags) { return s.kind.is_tcp() && (flags & MSG_FASTOPEN); }

Reply on_sendto(Call& call) {
    Caller& caller = call.caller;
    Socket s;
    if (auto r = take_socket(caller, s)) return *r;
    const std::uint64_t addr = caller.arg(4);
    if (!s.kind.is_ip() && call.kernel_layer) return continue_non_ip(caller, addr, caller.arg(5));
    const int flags = static_cast<int>(caller.arg(3));
    const std::optional<std::size_t> copied = copy_size(s.kind, caller.arg(2));
    if (!copied) return Reply::failure(EMSGSIZE);
    const std::size_t len = *copied;

    if (!s.kind.is_ip()) {
        Outgoing out;
        if (addr != 0)
            if (auto r = copy_name(caller, addr, caller.arg(5), out.name)) return *r;
        out.data = buffer(len);
        out.len = len;
        if (!caller.read(caller.arg(1), out.data.get(), len)) return Reply::failure(EFAULT);
        Reply r = send_local(call, s, out, flags);
        r.local = true;
        return r;
    }

    Destination d = no_address();
    if (addr != 0) {
        CopiedName name;
        if (auto r = copy_name(caller, addr, caller.arg(5), name)) return *r;
        const AddressUse use = tcp_fastopen(s, flags) ? AddressUse::SendFastOpen : AddressUse::Send;
        d = interpret_address(s.kind, use, &name.bytes, name.len);
    }
    if (int err = judge(call, s, d)) return call.finish(Reply::failure(err));

    auto data = buffer(len);
    if (!caller.read(caller.arg(1), data.get(), len)) return call.finish(Reply::failure(EIO));
    caller.ensure_checked();
    iovec iov{data.get(), len};
    const ssize_t rc = send_bounded(caller, s.fd.get(), message_to(d, iov), flags, s.kind.is_tcp(), tcp_fastopen(s, flags));
    return call.finish(send_result(call, rc, flags));
}

// One struct msghdr at msg_addr, copied, judged and sent on s. The reply counts nothing.
Reply send_message(Call& call, const Socket& s, std::uint64_t msg_addr, int flags) {
    Caller& caller = call.caller;
    msghdr remote{};
    if (!caller.read(msg_addr, &remote, sizeof remote)) return Reply::failure(EFAULT);

    // The name, as copy_msghdr_from_user sees it: no pointer or no length is no name,
    // a negative length is EINVAL, a longer one is cut to sockaddr_storage.
    int namelen = remote.msg_name ? static_cast<int>(remote.msg_namelen) : 0;
    if (namelen < 0) return Reply::failure(EINVAL);
    CopiedName name;
    name.len = std::min(static_cast<std::size_t>(namelen), sizeof(sockaddr_storage));
    if (name.len > 0 && !caller.read(reinterpret_cast<std::uintptr_t>(remote.msg_name), &name.bytes, name.len))
        return Reply::failure(EFAULT);

    if (remote.msg_iovlen > kMaxIovecs) return Reply::failure(EMSGSIZE);
    std::vector<iovec> iov(remote.msg_iovlen);
    if (!iov.empty() &&
        !caller.read(reinterpret_cast<std::uintptr_t>(remote.msg_iov), iov.data(), iov.size() * sizeof(iovec)))
        return Reply::failure(EFAULT);
    std::size_t length = 0;  // the message's, saturating
    for (const iovec& v : iov) length = v.iov_len > SIZE_MAX - length ? SIZE_MAX : length + v.iov_len;
    const std::optional<std::size_t> copied = copy_size(s.kind, length);
    if (!copied) return Reply::failure(EMSGSIZE);
    // The iovecs' prefix that holds the bytes copied.
    std::size_t total = 0;
    std::vector<iovec> nonempty;
    for (const iovec& v : iov) {
        const std::size_t take = std::min(v.iov_len, *copied - total);
        if (take > 0) nonempty.push_back(iovec{v.iov_base, take});
        total += take;
        if (total == *copied) break;
    }

    if (remote.msg_controllen > kMaxControlBytes) return Reply::failure(ENOBUFS);
    std::vector<unsigned char> control(remote.msg_controllen);
    if (!control.empty() &&
        !caller.read(reinterpret_cast<std::uintptr_t>(remote.msg_control), control.data(), control.size()))
        return Reply::failure(EFAULT);

    if (!s.kind.is_ip()) {
        Outgoing out;
        out.name = name;
        out.data = buffer(total);
        out.len = total;
        if (!caller.gather(nonempty, out.data.get(), total)) return Reply::failure(EFAULT);
        out.control = std::move(control);
        out.msg_flags = remote.msg_flags;
        return send_local(call, s, out, flags);
    }

    if (int err = check_control(control)) {
        if (err == EPERM) ++call.tally.denied;
        return Reply::failure(err);
    }

    Destination d = no_address();
    if (name.len > 0) {
        const AddressUse use = tcp_fastopen(s, flags) ? AddressUse::SendFastOpen : AddressUse::Send;
        d = interpret_address(s.kind, use, &name.bytes, name.len);
    }
    if (int err = judge(call, s, d)) return Reply::failure(err);

    // The data goes out as one iovec: a message is the concatenation of its iovecs.
    auto data = buffer(total);
    if (!caller.gather(nonempty, data.get(), total)) return Reply::failure(EIO);
    iovec local_iov{data.get(), total};
    msghdr local = message_to(d, local_iov);
    local.msg_control = control.empty() ? nullptr : control.data();
    local.msg_controllen = control.size();
    local.msg_flags = remote.msg_flags;  // the kernel honours MSG_EOR from here
    caller.ensure_checked();
    const ssize_t rc = send_bounded(caller, s.fd.get(), local, flags, s.kind.is_tcp(), tcp_fastopen(s, flags));
    return send_result(call, rc, flags);
}

Reply on_sendmsg(Call& call) {
    Socket s;
    if (auto r = take_socket(call.caller, s)) return *r;
    if (!s.kind.is_ip() && call.kernel_layer) return Reply::proceed();
    Reply r = call.finish(send_message(call, s, call.caller.arg(1), static_cast<int>(call.caller.arg(2))));
    r.local = !s.kind.is_ip();
    return r;
}

// Entries are sent in order; the first refused or failed one ends the call. Its error
// is the call's only when nothing was sent (the kernel's partial-success rule).
Reply on_sendmmsg(Call& call) {
    const Caller& caller = call.caller;
    Socket s;
    if (auto r = take_socket(call.caller, s)) return *r;
    if (!s.kind.is_ip() && call.kernel_layer) return Reply::proceed();
    const unsigned vlen = std::min(static_cast<unsigned>(caller.arg(2)), kMaxSendmmsgEntries);
    const int flags = static_cast<int>(caller.arg(3));
    const std::uint64_t base = caller.arg(1);
    unsigned sent = 0;
    Reply result = Reply::success(0);
    for (; sent < vlen; ++sent) {
        const std::uint64_t entry = base + std::uint64_t{sent} * sizeof(mmsghdr);
        Reply r = send_message(call, s, entry + offsetof(mmsghdr, msg_hdr), flags);
        if (r.kind != Reply::Kind::Value) {
            if (sent == 0) result = r;
            break;
        }
        const auto len = static_cast<unsigned>(r.value);
        if (!caller.write(entry + offsetof(mmsghdr, msg_len), &len, sizeof len)) {
            if (sent == 0) result = Reply::failure(EFAULT);
            break;
        }
    }
    if (sent > 0) result = Reply::success(sent);
    result = call.finish(result);
    result.local = !s.kind.is_ip();
    return result;
}
}  // namespace

Reply handle_notification(int listener, const seccomp_notif& notif, const egress::ResolvedPolicy& policy,
                          const DecisionFn& decided, bool kernel_layer, bool records_allowed) {
    Caller caller(listener, notif);
    const char* name = nullptr;
    Reply (*handler)(Call&) = nullptr;
    if (notif.data.arch == kNativeArch) {
        switch (notif.data.nr) {
            case SYS_connect: name = "connect", handler = on_connect; break;
            case SYS_sendto: name = "sendto", handler = on_sendto; break;
            case SYS_sendmsg: name = "sendmsg", handler = on_sendmsg; break;
            case SYS_sendmmsg: name = "sendmmsg", handler = on_sendmmsg; break;
            default: break;
        }
    }
    if (!handler) {
        Reply r = Reply::failure(ENOSYS);  // not ours to judge: fail closed
        r.internal_error = true;
        return r;
    }
    try {
        Call call{caller, policy, decided, name, kernel_layer, records_allowed, Reply{}};
        return handler(call);
    } catch (const NotificationGone&) {
        return Reply::gone();
    }
}

}  // namespace sandlock::shim
