#include "runtime/egress/filter.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <string>

#include "runtime/linux/seccomp.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::egress {
namespace {

struct CtxRelease {
    void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxRelease>;

// Families socket() may create; every other value (also one with garbage in the
// register's upper half) is refused.
constexpr int kAllowedFamilies[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
// Of those, the ones where SOCK_RAW is refused (see filter.hpp for netlink).
constexpr int kRawRefusedFamilies[] = {AF_UNIX, AF_INET, AF_INET6};
// socket(2)'s type argument carries SOCK_NONBLOCK/SOCK_CLOEXEC above this mask.
constexpr scmp_datum_t kSockTypeMask = 0xf;

bool allowed_family(int family) {
    for (int f : kAllowedFamilies)
        if (f == family) return true;
    return false;
}

int highest_allowed_family() {
    int highest = 0;
    for (int f : kAllowedFamilies) highest = f > highest ? f : highest;
    return highest;
}

void check(int rc, const std::string& what) {
    if (rc < 0) throw SystemError("egress seccomp filter: " + what, -rc);
}

void add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const std::string& what,
              std::initializer_list<scmp_arg_cmp> args = {}) {
    // _exact: fail rather than let libseccomp rewrite a rule it cannot express.
    check(seccomp_rule_add_exact_array(ctx, action, nr, static_cast<unsigned>(args.size()),
                                       args.size() ? args.begin() : nullptr),
          what);
}

void notify_destination_calls(scmp_filter_ctx ctx) {
    add_rule(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), "notify connect");
    // sendto's destination pointer is arg 4; NULL means "the connected peer".
    add_rule(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendto), "notify sendto",
             {SCMP_A4_64(SCMP_CMP_NE, 0)});
    add_rule(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmsg), "notify sendmsg");
    add_rule(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(sendmmsg), "notify sendmmsg");
}

// The families form disjoint rules (one EQ rule per refused value below the highest
// allowed one, one GE rule above it), so each socket() call matches at most one.
void refuse_socket_families(scmp_filter_ctx ctx, int nr, const std::string& name) {
    const uint32_t refuse = SCMP_ACT_ERRNO(EAFNOSUPPORT);
    const int highest = highest_allowed_family();
    for (int family = 0; family < highest; ++family) {
        if (allowed_family(family)) continue;
        add_rule(ctx, refuse, nr, "refuse " + name + " family " + std::to_string(family),
                 {SCMP_A0_64(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))});
    }
    // 64-bit compare: a value with any upper bit set is also refused here.
    add_rule(ctx, refuse, nr, "refuse " + name + " families above " + std::to_string(highest),
             {SCMP_A0_64(SCMP_CMP_GT, static_cast<scmp_datum_t>(highest))});
}

void refuse_raw_sockets(scmp_filter_ctx ctx, int nr, const std::string& name) {
    for (int family : kRawRefusedFamilies)
        add_rule(ctx, SCMP_ACT_ERRNO(EPERM), nr, "refuse " + name + " SOCK_RAW",
                 {SCMP_A0_64(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)),
                  // The mask ignores the register's upper half, as the kernel's int does.
                  SCMP_A1_64(SCMP_CMP_MASKED_EQ, kSockTypeMask, SOCK_RAW)});
}

// Source routing: a sticky IP_OPTIONS (LSRR/SSRR) or IPv6 routing header on a
// connected socket sends every later send() -- never notified -- first to a
// hop no rule checked. Refused where it is set.
void refuse_source_routing(scmp_filter_ctx ctx) {
    constexpr int kSolIp = 0, kIpOptions = 4;
    constexpr int kSolIpv6 = 41, kIpv6Rthdr = 57, kIpv6Rthdr2292 = 5;
    const std::pair<int, int> options[] = {
        {kSolIp, kIpOptions}, {kSolIpv6, kIpv6Rthdr}, {kSolIpv6, kIpv6Rthdr2292}};
    for (const auto& [level, name] : options)
        add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt),
                 "refuse setsockopt " + std::to_string(level) + "/" + std::to_string(name),
                 {SCMP_A1_32(SCMP_CMP_EQ, static_cast<uint32_t>(level)),
                  SCMP_A2_32(SCMP_CMP_EQ, static_cast<uint32_t>(name))});
}

// bpf(2): a privileged container could otherwise detach or replace the cgroup programs
// that check its connects in the kernel (sockaddr_bpf.hpp).
void refuse_bpf(scmp_filter_ctx ctx) {
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(bpf), "refuse bpf");
}

void refuse_io_uring(scmp_filter_ctx ctx) {
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), "refuse io_uring_setup");
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_enter), "refuse io_uring_enter");
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_register), "refuse io_uring_register");
}

Ctx build_ctx() {
    Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
    if (!ctx) throw Error("egress seccomp filter: libseccomp cannot create a filter");
    // no_new_privs is the caller's business (the export ignores it anyway).
    check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0), "clear no_new_privs attribute");
    // Only the native architecture is in the filter, and a syscall of any other
    // one (i386 int 0x80, x32) hits the bad-arch action. Kill, libseccomp's
    // default, set explicitly: allowing them would let i386 socketcall() reach
    // connect/sendto under other numbers and bypass every rule.
    check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_THREAD),
          "set the bad-architecture action");

    notify_destination_calls(ctx.get());
    refuse_socket_families(ctx.get(), SCMP_SYS(socket), "socket");
    refuse_socket_families(ctx.get(), SCMP_SYS(socketpair), "socketpair");
    refuse_raw_sockets(ctx.get(), SCMP_SYS(socket), "socket");
    refuse_raw_sockets(ctx.get(), SCMP_SYS(socketpair), "socketpair");
    refuse_io_uring(ctx.get());
    refuse_bpf(ctx.get());
    refuse_source_routing(ctx.get());
    return ctx;
}

unsigned listener_flags() {
    unsigned flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (os::kernel_supports_filter_flag(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV))
        flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    return flags;
}

}  // namespace

std::vector<sock_filter> egress_filter_bpf() {
    Ctx ctx = build_ctx();
    return os::export_bpf(ctx.get());
}

UniqueFd install_egress_filter() {
    return os::install_bpf(egress_filter_bpf(), listener_flags());
}

}  // namespace sandlock::egress
