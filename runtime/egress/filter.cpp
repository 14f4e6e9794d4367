#include "runtime/egress/filter.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/egress/sockets.hpp"
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

void notify_destination_calls(scmp_filter_ctx ctx, bool connect_only) {
    add_rule(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), "notify connect");
    if (connect_only) return;
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

// The IP sockets whose destinations the policy can judge, by type, in one family: the
// table the shim and the kernel programs classify sockets with (egress/sockets.hpp).
// socket(2) refuses every other type and protocol of AF_INET/AF_INET6 with
// EPROTONOSUPPORT, as a kernel without them would. SOCK_RAW has its own refusal (EPERM)
// above.
struct JudgeableType {
    int type;
    std::vector<uint32_t> protocols;  // sorted; 0 is the type's default protocol
};
std::vector<JudgeableType> judgeable_ip_sockets(int family) {
    std::map<int, std::vector<uint32_t>> by_type;
    for (const auto& j : egress::judgeable_sockets())
        if (j.family == 0 || j.family == family) by_type[j.type].push_back(static_cast<uint32_t>(j.protocol));
    std::vector<JudgeableType> out;
    for (auto& [type, protocols] : by_type) {
        std::sort(protocols.begin(), protocols.end());
        out.push_back({type, std::move(protocols)});
    }
    return out;
}

// [lo, hi] as aligned power-of-two blocks, each one (value, mask) for MASKED_EQ: the one
// comparison per argument libseccomp allows can still refuse a whole range.
std::vector<std::pair<uint32_t, uint32_t>> aligned_blocks(uint64_t lo, uint64_t hi) {
    std::vector<std::pair<uint32_t, uint32_t>> blocks;
    while (lo <= hi) {
        uint64_t size = 1;
        while ((lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi && size < (1ULL << 31)) size *= 2;
        blocks.emplace_back(static_cast<uint32_t>(lo), static_cast<uint32_t>(~(size - 1)));
        lo += size;
    }
    return blocks;
}

void refuse_unjudgeable_ip_sockets(scmp_filter_ctx ctx) {
    const uint32_t refuse = SCMP_ACT_ERRNO(EPROTONOSUPPORT);
    for (int family : {AF_INET, AF_INET6}) {
        const auto in_family = SCMP_A0_64(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family));
        const std::vector<JudgeableType> judgeable = judgeable_ip_sockets(family);
        // Types: every value of the low four bits but the judgeable ones and SOCK_RAW.
        for (scmp_datum_t type = 0; type <= kSockTypeMask; ++type) {
            bool kept = type == SOCK_RAW;
            for (const auto& j : judgeable) kept = kept || type == static_cast<scmp_datum_t>(j.type);
            if (kept) continue;
            add_rule(ctx, refuse, SCMP_SYS(socket), "refuse socket type " + std::to_string(type),
                     {in_family, SCMP_A1_64(SCMP_CMP_MASKED_EQ, kSockTypeMask, type)});
        }
        // Protocols of a judgeable type: the gaps between the allowed ones, and above them
        // (32-bit: the kernel reads an int).
        for (const auto& j : judgeable) {
            const std::vector<uint32_t>& allowed = j.protocols;
            const auto of_type = SCMP_A1_64(SCMP_CMP_MASKED_EQ, kSockTypeMask, static_cast<scmp_datum_t>(j.type));
            uint64_t next = 0;
            for (uint32_t p : allowed) {
                if (p > next)
                    for (const auto& [value, mask] : aligned_blocks(next, p - 1))
                        add_rule(ctx, refuse, SCMP_SYS(socket), "refuse socket protocol " + std::to_string(value),
                                 {in_family, of_type, SCMP_A2_32(SCMP_CMP_MASKED_EQ, mask, value)});
                next = static_cast<uint64_t>(p) + 1;
            }
            add_rule(ctx, refuse, SCMP_SYS(socket), "refuse socket protocols above " + std::to_string(next - 1),
                     {in_family, of_type, SCMP_A2_32(SCMP_CMP_GT, static_cast<uint32_t>(next - 1))});
        }
    }
}

// Source routing: a sticky IP_OPTIONS (LSRR/SSRR) or IPv6 routing header on a
// connected socket sends every later send() -- never notified -- first to a
// hop no rule checked. Refused where it is set. IPV6_2292PKTOPTIONS carries the same
// headers as a sticky option block; the flow label manager and IPV6_FLOWINFO_SEND let
// a socket attach flow-label options (a type-2 routing header on kernels with
// CONFIG_IPV6_MIP6) that fl6_update_dst() makes the real destination after every hook
// judged the address.
void refuse_source_routing(scmp_filter_ctx ctx) {
    constexpr int kSolIp = 0, kIpOptions = 4;
    constexpr int kSolIpv6 = 41, kIpv6Rthdr = 57, kIpv6Rthdr2292 = 5, kIpv6PktOptions2292 = 6,
                  kIpv6FlowLabelMgr = 32, kIpv6FlowInfoSend = 33;
    const std::pair<int, int> options[] = {
        {kSolIp, kIpOptions},           {kSolIpv6, kIpv6Rthdr},        {kSolIpv6, kIpv6Rthdr2292},
        {kSolIpv6, kIpv6PktOptions2292}, {kSolIpv6, kIpv6FlowLabelMgr}, {kSolIpv6, kIpv6FlowInfoSend}};
    for (const auto& [level, name] : options)
        add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt),
                 "refuse setsockopt " + std::to_string(level) + "/" + std::to_string(name),
                 {SCMP_A1_32(SCMP_CMP_EQ, static_cast<uint32_t>(level)),
                  SCMP_A2_32(SCMP_CMP_EQ, static_cast<uint32_t>(name))});
}

// bpf(2): a privileged container could otherwise detach or replace the cgroup programs
// that check its connects in the kernel (kernel_layer.hpp).
void refuse_bpf(scmp_filter_ctx ctx) {
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(bpf), "refuse bpf");
}

void refuse_io_uring(scmp_filter_ctx ctx) {
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), "refuse io_uring_setup");
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_enter), "refuse io_uring_enter");
    add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_register), "refuse io_uring_register");
}

Ctx build_ctx(bool connect_only) {
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

    notify_destination_calls(ctx.get(), connect_only);
    refuse_socket_families(ctx.get(), SCMP_SYS(socket), "socket");
    refuse_socket_families(ctx.get(), SCMP_SYS(socketpair), "socketpair");
    refuse_raw_sockets(ctx.get(), SCMP_SYS(socket), "socket");
    refuse_raw_sockets(ctx.get(), SCMP_SYS(socketpair), "socketpair");
    refuse_unjudgeable_ip_sockets(ctx.get());
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

std::vector<sock_filter> build_egress_filter_bpf(bool connect_only) {
    Ctx ctx = build_ctx(connect_only);
    return os::export_bpf(ctx.get());
}

UniqueFd install_egress_filter(const std::vector<sock_filter>& program) {
    return os::install_bpf(program, listener_flags());
}

}  // namespace sandlock::egress
