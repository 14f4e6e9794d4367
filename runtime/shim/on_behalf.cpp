#include "runtime/shim/on_behalf.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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

bool SocketKind::is_tcp() const { return is_ip() && type == SOCK_STREAM && protocol == IPPROTO_TCP; }
bool SocketKind::is_udp() const { return is_ip() && type == SOCK_DGRAM && protocol == IPPROTO_UDP; }
bool SocketKind::is_ping() const {
    // The unprivileged ping socket; raw ICMP (SOCK_RAW) is never judged as ICMP.
    return type == SOCK_DGRAM && ((family == AF_INET && protocol == IPPROTO_ICMP) ||
                                  (family == AF_INET6 && protocol == IPPROTO_ICMPV6));
}

std::optional<egress::Protocol> SocketKind::policy_protocol() const {
    if (is_tcp()) return egress::Protocol::Tcp;
    if (is_udp()) return egress::Protocol::Udp;
    if (is_ping()) return egress::Protocol::Icmp;
    return std::nullopt;
}

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
        fd_unchecked_ = false;
    }
    // Before acting on a taken fd (connect, send on it): the notification was still
    // pending after the fd was taken, so the thread was alive and its tid ours meanwhile.
    // One NOTIF_ID_VALID after the memory reads covers the fd too (one ioctl per call).
    void ensure_fd_was_callers() const {
        if (fd_unchecked_) ensure_valid();
    }
    // False when unreadable; throws NotificationGone when the read cannot be trusted.
    bool read(std::uint64_t addr, void* out, std::size_t len) const {
        bool ok = read_process_memory(tid(), addr, out, len);
        ensure_valid();
        return ok;
    }
    bool gather(const std::vector<iovec>& remote, void* out, std::size_t total) const {
        bool ok = read_process_gather(tid(), remote.data(), remote.size(), out, total);
        ensure_valid();
        return ok;
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
        // fd is acted on (ensure_fd_was_callers), usually by the next memory read.
        fd_unchecked_ = true;
        return dup;
    }
    void signal(int sig) {
        const int pidfd = this->pidfd();
        if (pidfd >= 0) pidfd_signal(pidfd, sig);
    }
    // A pidfd of the calling thread (readable once it exited: poll it to learn at once
    // that a call's caller is gone), or -1. It may name an earlier thread of the same tid:
    // readable then says nothing, ensure_valid() decides.
    int exit_fd() {
        try {
            return pidfd();
        } catch (const NotificationGone&) {
            return -1;
        }
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
    mutable bool fd_unchecked_ = false;
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
std::optional<Reply> take_socket(Caller& caller, Socket& s) {
    s.fd = caller.take_fd(static_cast<int>(caller.arg(0)));
    if (!s.fd) {
        const int err = errno;
        Reply r = Reply::failure(err);
        r.internal_error = err != EBADF;  // EBADF: the caller's own mistake
        return r;
    }
    if (socket_option(s.fd.get(), SOL_SOCKET, SO_DOMAIN, s.kind.family) != 0) return Reply::failure(errno);
    if (!s.kind.is_ip()) return std::nullopt;  // type and protocol are not needed
    if (socket_option(s.fd.get(), SOL_SOCKET, SO_TYPE, s.kind.type) != 0 ||
        socket_option(s.fd.get(), SOL_SOCKET, SO_PROTOCOL, s.kind.protocol) != 0) {
        Reply r = Reply::failure(errno);
        r.internal_error = true;
        return r;
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
    bool kernel_layer;  // the cgroup programs judge the kernel's copy too
    Reply tally;        // allowed/denied/internal_error accumulate here

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

// The shim's own send never blocks a thread for good: it sends with MSG_DONTWAIT and,
// while the socket is full, polls in slices, giving up as soon as the caller's
// notification is gone (it died, or a signal interrupted the call). A caller that asked
// not to wait (MSG_DONTWAIT, O_NONBLOCK) gets EAGAIN as the kernel would give it; so does
// one whose SO_SNDTIMEO passes. MSG_ZEROCOPY is dropped: the copy is ours, and its
// completion notices would go to the caller's error queue for buffers it never lent.
ssize_t send_bounded(const Caller& caller, int fd, const msghdr& m, int flags) {
    const int fl = ::fcntl(fd, F_GETFL);
    const bool caller_waits = !(flags & MSG_DONTWAIT) && fl >= 0 && !(fl & O_NONBLOCK);
    timeval timeout{};
    socklen_t tlen = sizeof timeout;
    ::getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, &tlen);
    const bool has_deadline = timeout.tv_sec != 0 || timeout.tv_usec != 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout.tv_sec) +
                          std::chrono::microseconds(timeout.tv_usec);
    // A Fast Open send is a connect first: without waiting it would return EINPROGRESS
    // with nothing sent. It blocks as a connect does (bounded by the in-flight cap).
    const int own = (flags & ~MSG_ZEROCOPY) | MSG_NOSIGNAL | ((flags & MSG_FASTOPEN) ? 0 : MSG_DONTWAIT);
    for (;;) {
        const ssize_t rc = ::sendmsg(fd, &m, own);
        if (rc >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || !caller_waits) return rc;
        if (has_deadline && std::chrono::steady_clock::now() >= deadline) {
            errno = EAGAIN;
            return -1;
        }
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 100);
        caller.ensure_valid();  // throws NotificationGone: nobody waits for this send any more
    }
}

// ---- connects that give up when their caller does ----

// The signal that interrupts the shim's own blocking connect (a no-op handler, installed
// without SA_RESTART); blocked in the thread except around that connect.
int interrupt_signal() { return SIGRTMIN + 3; }

void install_interrupt_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        ::sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: the connect returns EINTR
        ::sigaction(interrupt_signal(), &sa, nullptr);
    });
}

// A one-shot timer that sends interrupt_signal() to the calling thread; disarmed, and a
// signal it left pending discarded, when it goes.
class ThreadAlarm {
public:
    explicit ThreadAlarm(std::chrono::milliseconds after) {
        sigset_t only;
        ::sigemptyset(&only);
        ::sigaddset(&only, interrupt_signal());
        ::pthread_sigmask(SIG_BLOCK, &only, &saved_);
        sigevent ev{};
        ev.sigev_notify = SIGEV_THREAD_ID;
        ev.sigev_signo = interrupt_signal();
        ev._sigev_un._tid = static_cast<pid_t>(::gettid());
        if (::timer_create(CLOCK_MONOTONIC, &ev, &timer_) != 0) return;
        armed_ = true;
        itimerspec when{};
        when.it_value.tv_sec = after.count() / 1000;
        when.it_value.tv_nsec = (after.count() % 1000) * 1000000;
        ::timer_settime(timer_, 0, &when, nullptr);
    }
    ~ThreadAlarm() {
        if (armed_) ::timer_delete(timer_);
        sigset_t only;
        ::sigemptyset(&only);
        ::sigaddset(&only, interrupt_signal());
        const timespec zero{};
        while (::sigtimedwait(&only, nullptr, &zero) > 0) {
        }
        ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
    }
    ThreadAlarm(const ThreadAlarm&) = delete;
    ThreadAlarm& operator=(const ThreadAlarm&) = delete;

    bool armed() const { return armed_; }
    // The timer's signal may interrupt what runs inside.
    template <typename F>
    auto interruptible(F&& f) {
        sigset_t only;
        ::sigemptyset(&only);
        ::sigaddset(&only, interrupt_signal());
        ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
        auto result = f();
        const int err = errno;
        ::pthread_sigmask(SIG_BLOCK, &only, nullptr);
        errno = err;
        return result;
    }

private:
    timer_t timer_{};
    bool armed_ = false;
    sigset_t saved_{};
};

// How long a blocking connect runs before the shim stops blocking in it and watches the
// caller instead (a connect across the world takes longer: it then completes in the
// watched wait, at the cost of one signal).
constexpr auto kConnectSlice = std::chrono::milliseconds(20);

// The shim's own connect, bounded like its sends: a blocking connect that has not ended
// within kConnectSlice is interrupted (a thread-directed timer signal; the handshake
// goes on in the kernel), then waited for (poll for POLLOUT, then SO_ERROR, the kernel's
// own result) while the caller's notification is still pending: when the caller is gone
// (killed: its thread's pidfd turns readable, or the check every 100 ms finds the
// notification gone), the wait ends at once (NotificationGone) instead of holding a
// thread and an in-flight slot through minutes of SYN retries. The caller's SO_SNDTIMEO
// still applies (EINPROGRESS, as the kernel returns it); a non-blocking socket connects
// as it would. Returns 0 or an errno.
int connect_bounded(Caller& caller, int fd, const sockaddr* addr, socklen_t len) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) return ::connect(fd, addr, len) == 0 ? 0 : errno;
    timeval timeout{};
    socklen_t tlen = sizeof timeout;
    ::getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, &tlen);
    const bool has_deadline = timeout.tv_sec != 0 || timeout.tv_usec != 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout.tv_sec) +
                          std::chrono::microseconds(timeout.tv_usec);
    install_interrupt_handler();
    {
        ThreadAlarm alarm(kConnectSlice);
        const int rc = alarm.interruptible([&] { return ::connect(fd, addr, len); });
        if (rc == 0) return 0;
        if (errno != EINTR || !alarm.armed()) return errno;
    }
    pollfd p[2] = {{fd, POLLOUT, 0}, {caller.exit_fd(), POLLIN, 0}};
    for (;;) {
        caller.ensure_valid();  // throws NotificationGone: nobody waits for this connect any more
        p[0].revents = p[1].revents = 0;
        if (::poll(p, p[1].fd >= 0 ? 2 : 1, 100) > 0) {
            if (p[0].revents != 0) {
                int err = 0;
                socklen_t elen = sizeof err;
                if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return errno;
                return err;
            }
            // The pidfd is readable: the thread exited (ensure_valid above says so next), or
            // it named an earlier thread of that tid; then it is of no further use.
            if (p[1].revents != 0) {
                caller.ensure_valid();
                p[1].fd = -1;
            }
        }
        if (has_deadline && std::chrono::steady_clock::now() >= deadline) return EINPROGRESS;
    }
}

// How much of a send of len bytes is copied: a stream takes a prefix (a short write);
// nullopt when a datagram is larger than any datagram can be.
std::optional<std::size_t> copy_size(const SocketKind& kind, std::size_t len) {
    if (kind.is_tcp()) return std::min(len, kMaxStreamCopy);
    if (len > kMaxDatagramBytes) return std::nullopt;
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

// For a non-IP socket the kernel reads the address itself after CONTINUE. An IP family
// there can only fail on such a socket, so answer that ourselves: it narrows (but
// cannot close) the race of a thread swapping the fd for an IP socket meanwhile.
Reply continue_non_ip(const Caller& caller, std::uint64_t addr, std::uint64_t raw_len) {
    if (addr != 0 && static_cast<std::uint32_t>(raw_len) >= sizeof(sa_family_t)) {
        sa_family_t family = AF_UNSPEC;
        if (caller.read(addr, &family, sizeof family) && (family == AF_INET || family == AF_INET6))
            return Reply::failure(EINVAL);
    }
    return Reply::proceed();
}

Reply on_connect(Call& call) {
    Caller& caller = call.caller;
    Socket s;
    if (auto r = take_socket(caller, s)) return *r;
    if (!s.kind.is_ip()) return continue_non_ip(caller, caller.arg(1), caller.arg(2));
    CopiedName name;
    if (auto r = copy_name(caller, caller.arg(1), caller.arg(2), name)) return *r;
    const Destination d = interpret_address(s.kind, AddressUse::Connect, &name.bytes, name.len);
    if (int err = judge(call, s, d)) return call.finish(Reply::failure(err));
    if (call.kernel_layer) return call.finish(Reply::proceed());  // the connect hook judges again
    caller.ensure_fd_was_callers();
    if (const int err = connect_bounded(caller, s.fd.get(), name_of(d), name_len(d))) return call.finish(Reply::failure(err));
    return call.finish(Reply::success(0));
}

std::unique_ptr<unsigned char[]> buffer(std::size_t len) {
    return std::make_unique_for_overwrite<unsigned char[]>(std::max<std::size_t>(len, 1));
}

Reply on_sendto(Call& call) {
    Caller& caller = call.caller;
    Socket s;
    if (auto r = take_socket(caller, s)) return *r;
    const std::uint64_t addr = caller.arg(4);
    if (!s.kind.is_ip()) return continue_non_ip(caller, addr, caller.arg(5));
    const int flags = static_cast<int>(caller.arg(3));
    const std::optional<std::size_t> copied = copy_size(s.kind, caller.arg(2));
    if (!copied) return Reply::failure(EMSGSIZE);
    const std::size_t len = *copied;

    Destination d = no_address();
    if (addr != 0) {
        CopiedName name;
        if (auto r = copy_name(caller, addr, caller.arg(5), name)) return *r;
        const AddressUse use =
            (s.kind.is_tcp() && (flags & MSG_FASTOPEN)) ? AddressUse::SendFastOpen : AddressUse::Send;
        d = interpret_address(s.kind, use, &name.bytes, name.len);
    }
    if (int err = judge(call, s, d)) return call.finish(Reply::failure(err));

    auto data = buffer(len);
    if (!caller.read(caller.arg(1), data.get(), len)) return call.finish(Reply::failure(EIO));
    caller.ensure_fd_was_callers();
    iovec iov{data.get(), len};
    const ssize_t rc = send_bounded(caller, s.fd.get(), message_to(d, iov), flags);
    return call.finish(send_result(call, rc, flags));
}

// One struct msghdr at msg_addr, copied, judged and sent on s. The reply counts nothing.
Reply send_message(Call& call, const Socket& s, std::uint64_t msg_addr, int flags) {
    const Caller& caller = call.caller;
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
    if (int err = check_control(control)) {
        if (err == EPERM) ++call.tally.denied;
        return Reply::failure(err);
    }

    Destination d = no_address();
    if (name.len > 0) {
        const AddressUse use =
            (s.kind.is_tcp() && (flags & MSG_FASTOPEN)) ? AddressUse::SendFastOpen : AddressUse::Send;
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
    caller.ensure_fd_was_callers();
    const ssize_t rc = send_bounded(caller, s.fd.get(), local, flags);
    return send_result(call, rc, flags);
}

Reply on_sendmsg(Call& call) {
    Socket s;
    if (auto r = take_socket(call.caller, s)) return *r;
    if (!s.kind.is_ip()) return Reply::proceed();
    return call.finish(send_message(call, s, call.caller.arg(1), static_cast<int>(call.caller.arg(2))));
}

// Entries are sent in order; the first refused or failed one ends the call. Its error
// is the call's only when nothing was sent (the kernel's partial-success rule).
Reply on_sendmmsg(Call& call) {
    const Caller& caller = call.caller;
    Socket s;
    if (auto r = take_socket(call.caller, s)) return *r;
    if (!s.kind.is_ip()) return Reply::proceed();
    const unsigned vlen = std::min(static_cast<unsigned>(caller.arg(2)), kMaxSendmmsgEntries);
    const int flags = static_cast<int>(caller.arg(3));
    const std::uint64_t base = caller.arg(1);
    unsigned sent = 0;
    for (; sent < vlen; ++sent) {
        const std::uint64_t entry = base + std::uint64_t{sent} * sizeof(mmsghdr);
        Reply r = send_message(call, s, entry + offsetof(mmsghdr, msg_hdr), flags);
        if (r.kind != Reply::Kind::Value) {
            if (sent == 0) return call.finish(r);
            break;
        }
        const auto len = static_cast<unsigned>(r.value);
        if (!caller.write(entry + offsetof(mmsghdr, msg_len), &len, sizeof len)) {
            if (sent == 0) return call.finish(Reply::failure(EFAULT));
            break;
        }
    }
    return call.finish(Reply::success(sent));
}

}  // namespace

Reply handle_notification(int listener, const seccomp_notif& notif, const egress::ResolvedPolicy& policy,
                          const DecisionFn& decided, bool kernel_layer) {
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
        Call call{caller, policy, decided, name, kernel_layer, Reply{}};
        return handler(call);
    } catch (const NotificationGone&) {
        return Reply::gone();
    }
}

}  // namespace sandlock::shim
