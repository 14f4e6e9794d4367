// The cgroup programs, written instruction by instruction.
//
// The kernel calls them with struct bpf_sock_addr (every field read here is a u32 load):
//   family, type, protocol   the SOCKET's (sk_family, sk_type, sk_protocol)
//   user_port                the destination port, network byte order in the low 16 bits
//   user_ip4 / user_ip6[4]   the destination, network byte order (IPv4 hooks / IPv6 hooks)
// A u32 load of network-order bytes gives the value memcpy gives on this CPU, so every
// constant below is the memcpy "image" of its bytes (and ports are htons()), whatever the
// byte order; a CIDR test is (word & mask image) == base image, word by word.
//
// Shape (IPv6 program; the IPv4 program is the prologue's first loads, then "v4:"):
//   prologue:  r2 = family, r3 = type, r4 = protocol, r5 = user_port,
//              r6..r9 = user_ip6[0..3]                    (IPv4: r6 = user_ip4)
//              if r6 != 0 || r7 != 0 || r8 != ::ffff image  goto v6
//              r6 = r9                         (IPv4-mapped: judged as its IPv4 address)
//   v4:        classify the socket, then per protocol (TCP, UDP, ICMP) the judgement of
//              ResolvedPolicy::check() for an IPv4 destination in r6
//   v6:        the same for an IPv6 destination in r6..r9
//   allow:     r0 = 1; exit
//   deny:      r0 = 0; exit
// classify (as the shim's SocketKind::policy_protocol): SOCK_STREAM + IPPROTO_TCP is TCP,
// SOCK_DGRAM + IPPROTO_UDP is UDP, SOCK_DGRAM + IPPROTO_ICMP on AF_INET or
// IPPROTO_ICMPV6 on AF_INET6 is ICMP (the ping socket); anything else (UDP-Lite, SCTP,
// MPTCP, ...) is denied, as the shim refuses it.
// judgement, with the policy's constants (the same order as check()):
//   loopback destination (127/8, 0.0.0.0; ::1, ::): loopback=allow: allow;
//                                                   loopback=deny, not allow mode: deny
//   open mode: allow
//   allow mode: a matching rule: allow, else deny; deny mode: a matching entry: deny,
//   else allow
// where a rule matches as ProtocolRules::matches(): any IP and every port; any IP and
// one of its ports; an address (or a CIDR) of the destination's family and every port
// or one of its ports.
//
// The BPF_CGROUP_INET_EGRESS program (CGROUP_SKB; context struct __sk_buff, whose data
// starts at the network header at this hook):
//   r6 = ctx; r1 = skb->sk; NULL: allow; r0 = bpf_sk_fullsock(r1); NULL: allow
//   not SOCK_DGRAM + IPPROTO_ICMP/ICMPV6 (a ping socket): allow
//   r2 = data, r3 = data_end (direct packet access: each header is bounds-checked
//   against data_end with 64-bit compares, the form the verifier tracks); r5 = port 0
//   skb->protocol ETH_P_IPV6: 40 bytes, next header ICMPv6, r6..r9 = daddr; ::ffff:
//                             mapped: r6 = r9, judge4; else the IPv6 judgement (ICMP)
//   skb->protocol ETH_P_IP:   20 bytes, first byte 0x45 (no options), protocol ICMP,
//                             r6 = daddr; judge4: the IPv4 judgement (ICMP)
//   anything else from a ping socket: deny
// All jumps go forward; code after an unconditional jump that no
// label reaches is not emitted (the verifier rejects unreachable instructions).
#include "runtime/egress/sockaddr_bpf.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "runtime/linux/bpf_insn.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::egress {

namespace {

using namespace os::bpf;  // the instruction encoders and registers

constexpr std::uint8_t kFamily = R2, kType = R3, kProto = R4, kPort = R5, kAddr = R6, kScratch = R0;

// A program with forward jumps to labels, patched by finish(). Instructions emitted where
// nothing can reach them (after an unconditional jump, before a label some jump uses)
// are dropped, so the generator needs no bookkeeping for dead ends.
class Program {
public:
    using Label = std::size_t;

    Label label() {
        labels_.push_back(kUnbound);
        used_.push_back(false);
        return labels_.size() - 1;
    }
    void bind(Label l) {
        labels_[l] = code_.size();
        if (used_[l]) reachable_ = true;
    }
    bool reachable() const { return reachable_; }

    void emit(const bpf_insn& i) {
        if (reachable_) code_.push_back(i);
    }
    // if ((u32)reg op imm) goto l
    void jump_if(std::uint8_t op, std::uint8_t reg, std::uint32_t imm, Label l) {
        branch(insn(BPF_JMP32 | op | BPF_K, reg, 0, 0, std::bit_cast<std::int32_t>(imm)), l);
    }
    // if (reg op imm) goto l, 64-bit: the verifier learns a pointer is not NULL only from these
    void jump64_if(std::uint8_t op, std::uint8_t reg, std::int32_t imm, Label l) {
        branch(insn(BPF_JMP | op | BPF_K, reg, 0, 0, imm), l);
    }
    // if (dst op src) goto l, 64-bit: packet bounds checks (pointer against data_end)
    void jump64_if_reg(std::uint8_t op, std::uint8_t dst, std::uint8_t src, Label l) {
        branch(insn(BPF_JMP | op | BPF_X, dst, src, 0, 0), l);
    }
    void jump(Label l) {
        branch(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0), l);
        reachable_ = false;
    }
    void exit() {
        emit(exit_insn());
        reachable_ = false;
    }

    std::vector<bpf_insn> finish() {
        for (const auto& [at, l] : fixups_) {
            if (labels_[l] == kUnbound || labels_[l] <= at) throw Error("egress kernel program: bad jump (internal error)");
            const std::size_t off = labels_[l] - at - 1;
            if (off > static_cast<std::size_t>(SHRT_MAX))
                throw Error("egress kernel program: the policy is too large for one program (" +
                            std::to_string(code_.size()) + " instructions)");
            code_[at].off = static_cast<std::int16_t>(off);
        }
        return std::move(code_);
    }

private:
    static constexpr std::size_t kUnbound = static_cast<std::size_t>(-1);

    void branch(const bpf_insn& i, Label l) {
        if (!reachable_) return;
        used_[l] = true;
        fixups_.emplace_back(code_.size(), l);
        code_.push_back(i);
    }

    std::vector<bpf_insn> code_;
    std::vector<std::size_t> labels_;
    std::vector<bool> used_;
    std::vector<std::pair<std::size_t, Label>> fixups_;
    bool reachable_ = true;
};

using Label = Program::Label;

// ---- constants as the u32 loads see them

std::uint32_t image(const std::uint8_t* bytes) {
    std::uint32_t v;
    std::memcpy(&v, bytes, sizeof v);
    return v;
}
std::uint32_t image(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    const std::uint8_t bytes[4] = {a, b, c, d};
    return image(bytes);
}
// The first `bits` (1..31) bits of a word set, in network order.
std::uint32_t mask_image(unsigned bits) {
    std::uint8_t bytes[4];
    for (unsigned k = 0; k < 4; ++k) {
        const unsigned in_byte = std::min(8u, bits > 8 * k ? bits - 8 * k : 0u);
        bytes[k] = static_cast<std::uint8_t>(0xff00u >> in_byte);
    }
    return image(bytes);
}
std::uint32_t port_image(std::uint16_t port) { return htons(port); }

// ---- the judgement

class Generator {
public:
    Generator(Program& p, const ResolvedPolicy& policy) : p_(p), policy_(policy) {}

    std::vector<bpf_insn> build(bool ipv6) {
        allow_ = p_.label();
        deny_ = p_.label();
        load_context(ipv6);
        if (ipv6) {
            const Label v6 = p_.label();
            // ::ffff:a.b.c.d is judged as a.b.c.d, as check() does after normalize().
            p_.jump_if(BPF_JNE, R6, 0, v6);
            p_.jump_if(BPF_JNE, R7, 0, v6);
            p_.jump_if(BPF_JNE, R8, image(0, 0, 0xff, 0xff), v6);
            p_.emit(mov_reg(R6, R9));
            section(IpAddr::Family::V4);
            p_.bind(v6);
            section(IpAddr::Family::V6);
        } else {
            section(IpAddr::Family::V4);
        }
        finish_verdicts();
        return p_.finish();
    }

    // The BPF_CGROUP_INET_EGRESS program: every packet of the cgroup's sockets; those of
    // ping sockets are judged by their IP destination with the ICMP rules.
    std::vector<bpf_insn> build_icmp_egress() {
        allow_ = p_.label();
        deny_ = p_.label();
        const Label ping = p_.label(), v4 = p_.label(), judge4 = p_.label(), judge6 = p_.label();
        // The sending socket: skb->sk, then bpf_sk_fullsock() for its type and protocol.
        p_.emit(mov64_reg(R6, R1));  // the context survives the call in r6
        p_.emit(load_u64(R1, R6, offsetof(__sk_buff, sk)));
        p_.jump64_if(BPF_JEQ, R1, 0, allow_);
        p_.emit(call(BPF_FUNC_sk_fullsock));
        p_.jump64_if(BPF_JEQ, R0, 0, allow_);
        p_.emit(load_u32(kType, R0, offsetof(bpf_sock, type)));
        p_.emit(load_u32(kProto, R0, offsetof(bpf_sock, protocol)));
        p_.jump_if(BPF_JNE, kType, SOCK_DGRAM, allow_);
        p_.jump_if(BPF_JEQ, kProto, IPPROTO_ICMP, ping);
        p_.jump_if(BPF_JNE, kProto, IPPROTO_ICMPV6, allow_);
        p_.bind(ping);
        // A ping socket's packet, from its network header. What a ping socket never sends
        // (IPv4 options: a source route hides the destination; IPv6 extension headers;
        // another protocol; a header cut short) is dropped rather than guessed at.
        p_.emit(load_u32(R4, R6, offsetof(__sk_buff, protocol)));
        p_.emit(load_u32(kData, R6, offsetof(__sk_buff, data)));
        p_.emit(load_u32(kDataEnd, R6, offsetof(__sk_buff, data_end)));
        p_.emit(mov_imm(kPort, 0));  // check(Icmp, dst, 0)
        p_.jump_if(BPF_JEQ, R4, htons(ETH_P_IP), v4);
        p_.jump_if(BPF_JNE, R4, htons(ETH_P_IPV6), deny_);
        // IPv6: 40 bytes of fixed header, next header at 6, destination at 24..39.
        header_bounds(40);
        p_.emit(load_u8(kScratch, kData, 6));
        p_.jump_if(BPF_JNE, kScratch, IPPROTO_ICMPV6, deny_);
        for (std::uint8_t i = 0; i < 4; ++i)
            p_.emit(load_u32(static_cast<std::uint8_t>(kAddr + i), kData, 24 + 4 * i));
        // ::ffff:a.b.c.d is judged as a.b.c.d, as check() does (the kernel never sends it).
        p_.jump_if(BPF_JNE, R6, 0, judge6);
        p_.jump_if(BPF_JNE, R7, 0, judge6);
        p_.jump_if(BPF_JNE, R8, image(0, 0, 0xff, 0xff), judge6);
        p_.emit(mov_reg(R6, R9));
        p_.jump(judge4);
        p_.bind(judge6);
        judge(policy_.icmp, IpAddr::Family::V6);
        // IPv4: version 4 and a 20-byte header (no options), protocol at 9, destination at 16.
        p_.bind(v4);
        header_bounds(20);
        p_.emit(load_u8(kScratch, kData, 0));
        p_.jump_if(BPF_JNE, kScratch, 0x45, deny_);
        p_.emit(load_u8(kScratch, kData, 9));
        p_.jump_if(BPF_JNE, kScratch, IPPROTO_ICMP, deny_);
        p_.emit(load_u32(kAddr, kData, 16));
        p_.bind(judge4);
        judge(policy_.icmp, IpAddr::Family::V4);
        finish_verdicts();
        return p_.finish();
    }

private:
    static constexpr std::uint8_t kData = R2, kDataEnd = R3;

    // Jumps to deny unless the packet holds `bytes` from its start (the verifier's check).
    void header_bounds(std::int32_t bytes) {
        p_.emit(mov64_reg(kScratch, kData));
        p_.emit(add64_imm(kScratch, bytes));
        p_.jump64_if_reg(BPF_JGT, kScratch, kDataEnd, deny_);
    }

    void finish_verdicts() {
        p_.bind(allow_);
        p_.emit(mov_imm(R0, 1));
        p_.exit();
        p_.bind(deny_);
        p_.emit(mov_imm(R0, 0));
        p_.exit();
    }

    void load_context(bool ipv6) {
        p_.emit(load_u32(kFamily, R1, offsetof(bpf_sock_addr, family)));
        p_.emit(load_u32(kType, R1, offsetof(bpf_sock_addr, type)));
        p_.emit(load_u32(kProto, R1, offsetof(bpf_sock_addr, protocol)));
        p_.emit(load_u32(kPort, R1, offsetof(bpf_sock_addr, user_port)));
        if (!ipv6) {
            p_.emit(load_u32(kAddr, R1, offsetof(bpf_sock_addr, user_ip4)));
            return;
        }
        for (std::uint8_t i = 0; i < 4; ++i)
            p_.emit(load_u32(static_cast<std::uint8_t>(kAddr + i), R1, offsetof(bpf_sock_addr, user_ip6) + 4 * i));
    }

    // The socket's protocol, then the judgement for destinations of `family` in r6(..r9).
    void section(IpAddr::Family family) {
        const Label tcp = p_.label(), udp = p_.label(), icmp = p_.label();
        const Label not_stream = p_.label(), not_ping4 = p_.label();
        p_.jump_if(BPF_JNE, kType, SOCK_STREAM, not_stream);
        p_.jump_if(BPF_JNE, kProto, IPPROTO_TCP, deny_);
        p_.jump(tcp);
        p_.bind(not_stream);
        p_.jump_if(BPF_JNE, kType, SOCK_DGRAM, deny_);
        p_.jump_if(BPF_JEQ, kProto, IPPROTO_UDP, udp);
        p_.jump_if(BPF_JNE, kFamily, AF_INET, not_ping4);
        p_.jump_if(BPF_JEQ, kProto, IPPROTO_ICMP, icmp);
        p_.jump(deny_);
        p_.bind(not_ping4);
        p_.jump_if(BPF_JNE, kFamily, AF_INET6, deny_);
        p_.jump_if(BPF_JEQ, kProto, IPPROTO_ICMPV6, icmp);
        p_.jump(deny_);
        p_.bind(tcp);
        judge(policy_.tcp, family);
        p_.bind(udp);
        judge(policy_.udp, family);
        p_.bind(icmp);
        judge(policy_.icmp, family);
    }

    // ResolvedPolicy::check() with this protocol's rules; always ends in a jump.
    void judge(const ProtocolRules& rules, IpAddr::Family family) {
        if (policy_.loopback == Loopback::Allow) loopback_test(family, allow_);
        else if (policy_.mode != Mode::Allow) loopback_test(family, deny_);
        switch (policy_.mode) {
            case Mode::Open:
                p_.jump(allow_);
                return;
            case Mode::Allow:
                rules_test(rules, family, allow_);
                p_.jump(deny_);
                return;
            case Mode::Deny:
                rules_test(rules, family, deny_);
                p_.jump(allow_);
                return;
        }
        p_.jump(deny_);  // a corrupt mode fails closed, as check() does
    }

    // reaches_loopback(): 127.0.0.0/8 and 0.0.0.0; ::1 and ::.
    void loopback_test(IpAddr::Family family, Label hit) {
        if (family == IpAddr::Family::V4) {
            p_.emit(mov_reg(kScratch, R6));
            p_.emit(and_imm(kScratch, mask_image(8)));
            p_.jump_if(BPF_JEQ, kScratch, image(127, 0, 0, 0), hit);
            p_.jump_if(BPF_JEQ, R6, 0, hit);
            return;
        }
        const Label next = p_.label();
        p_.jump_if(BPF_JNE, R6, 0, next);
        p_.jump_if(BPF_JNE, R7, 0, next);
        p_.jump_if(BPF_JNE, R8, 0, next);
        p_.jump_if(BPF_JEQ, R9, 0, hit);
        p_.jump_if(BPF_JEQ, R9, image(0, 0, 0, 1), hit);
        p_.bind(next);
    }

    // ProtocolRules::matches(): jumps to hit on a match, falls through otherwise.
    void rules_test(const ProtocolRules& rules, IpAddr::Family family, Label hit) {
        ports_test(rules.any_ip_all_ports, rules.any_ip_ports, hit);
        for (const auto& e : rules.per_ip) {
            if (e.address.family != family) continue;
            entry_test(e.address, static_cast<unsigned>(e.address.bits()), e.all_ports, e.ports, hit);
        }
        for (const auto& n : rules.per_net) {
            if (n.network.base.family != family) continue;
            entry_test(n.network.base, n.network.prefix, n.all_ports, n.ports, hit);
        }
    }

    void entry_test(const IpAddr& base, unsigned prefix, bool all_ports, const std::vector<std::uint16_t>& ports,
                    Label hit) {
        const Label next = p_.label();
        address_test(base, prefix, next);
        ports_test(all_ports, ports, hit);
        p_.bind(next);
    }

    // Jumps to miss unless the destination is in base/prefix (host bits of base are clear).
    void address_test(const IpAddr& base, unsigned prefix, Label miss) {
        const unsigned words = base.is_v4() ? 1 : 4;
        for (unsigned i = 0; i < words; ++i) {
            const unsigned covered = std::min(32u, prefix > 32 * i ? prefix - 32 * i : 0u);
            if (covered == 0) break;
            const auto reg = static_cast<std::uint8_t>(kAddr + i);
            const std::uint32_t word = image(base.bytes.data() + 4 * i);
            if (covered == 32) {
                p_.jump_if(BPF_JNE, reg, word, miss);
            } else {
                p_.emit(mov_reg(kScratch, reg));
                p_.emit(and_imm(kScratch, mask_image(covered)));
                p_.jump_if(BPF_JNE, kScratch, word & mask_image(covered), miss);
            }
        }
    }

    void ports_test(bool all_ports, const std::vector<std::uint16_t>& ports, Label hit) {
        if (all_ports) {
            p_.jump(hit);
            return;
        }
        for (const auto port : ports) p_.jump_if(BPF_JEQ, kPort, port_image(port), hit);
    }

    Program& p_;
    const ResolvedPolicy& policy_;
    Label allow_ = 0, deny_ = 0;
};

// ---- bpf(2)

long bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

const char* hook_name(bpf_attach_type type) {
    switch (type) {
        case BPF_CGROUP_INET4_CONNECT: return "connect4";
        case BPF_CGROUP_INET6_CONNECT: return "connect6";
        case BPF_CGROUP_UDP4_SENDMSG: return "sendmsg4";
        case BPF_CGROUP_UDP6_SENDMSG: return "sendmsg6";
        case BPF_CGROUP_INET_SOCK_CREATE: return "sock_create";
        case BPF_CGROUP_INET_EGRESS: return "inet_egress";
        default: return "sock_addr";
    }
}

bool is_ipv6_hook(bpf_attach_type type) {
    return type == BPF_CGROUP_INET6_CONNECT || type == BPF_CGROUP_UDP6_SENDMSG;
}

// The verifier's last non-empty line: its verdict ("... invalid bpf_context access ...").
std::string last_line(const std::vector<char>& log) {
    std::string text(log.data(), ::strnlen(log.data(), log.size()));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    const auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

bpf_prog_type program_type(bpf_attach_type type) {
    switch (type) {
        case BPF_CGROUP_INET_SOCK_CREATE: return BPF_PROG_TYPE_CGROUP_SOCK;
        case BPF_CGROUP_INET_EGRESS: return BPF_PROG_TYPE_CGROUP_SKB;
        default: return BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
    }
}

long load_attempt(const std::vector<bpf_insn>& prog, bpf_attach_type type, std::vector<char>* log) {
    static const char license[] = "Apache-2.0";  // no GPL-only helpers (bpf_sk_fullsock is not)
    bpf_attr attr{};
    attr.prog_type = program_type(type);
    attr.expected_attach_type = type;
    attr.insns = reinterpret_cast<std::uint64_t>(prog.data());
    attr.insn_cnt = static_cast<std::uint32_t>(prog.size());
    attr.license = reinterpret_cast<std::uint64_t>(license);
    if (log) {
        attr.log_buf = reinterpret_cast<std::uint64_t>(log->data());
        attr.log_size = static_cast<std::uint32_t>(log->size());
        attr.log_level = 1;
    }
    return bpf(BPF_PROG_LOAD, attr);
}

UniqueFd load_program(const std::vector<bpf_insn>& prog, bpf_attach_type type) {
    UniqueFd fd(static_cast<int>(load_attempt(prog, type, nullptr)));
    if (fd) return fd;
    const int err = errno;
    const std::string what = std::string("egress: load the cgroup ") + hook_name(type) + " program (bpf BPF_PROG_LOAD)";
    if (err != EACCES && err != EINVAL) throw_errno(what, err);
    // Again with the verifier's log, for its reason (the kernel keeps the log's tail).
    std::vector<char> log(64 * 1024, '\0');
    fd.reset(static_cast<int>(load_attempt(prog, type, &log)));
    if (fd) return fd;
    const std::string reason = last_line(log);
    throw SystemError(what + (reason.empty() ? "" : " [verifier: " + reason + "]"), err);
}

UniqueFd open_cgroup(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw_errno("egress: open the cgroup " + dir);
    return fd;
}

std::vector<std::uint32_t> query(int cgroup_fd, bpf_attach_type type) {
    std::vector<std::uint32_t> ids(64);
    bpf_attr attr{};
    attr.query.target_fd = static_cast<std::uint32_t>(cgroup_fd);
    attr.query.attach_type = type;
    attr.query.prog_ids = reinterpret_cast<std::uint64_t>(ids.data());
    attr.query.prog_cnt = static_cast<std::uint32_t>(ids.size());
    if (bpf(BPF_PROG_QUERY, attr) != 0)
        throw_errno(std::string("egress: list the cgroup ") + hook_name(type) + " programs (bpf BPF_PROG_QUERY)");
    ids.resize(std::min<std::size_t>(attr.query.prog_cnt, ids.size()));
    return ids;
}

// 0, or the errno of BPF_PROG_DETACH.
int detach(int cgroup_fd, int prog_fd, bpf_attach_type type) {
    bpf_attr attr{};
    attr.target_fd = static_cast<std::uint32_t>(cgroup_fd);
    attr.attach_bpf_fd = static_cast<std::uint32_t>(prog_fd);
    attr.attach_type = type;
    return bpf(BPF_PROG_DETACH, attr) == 0 ? 0 : errno;
}

}  // namespace

std::vector<bpf_insn> build_sockaddr_program(const ResolvedPolicy& policy, bool ipv6) {
    Program p;
    return Generator(p, policy).build(ipv6);
}

std::vector<bpf_insn> build_icmp_egress_program(const ResolvedPolicy& policy) {
    Program p;
    return Generator(p, policy).build_icmp_egress();
}

std::vector<bpf_insn> build_socket_create_program() {
    Program p;
    const Label allow = p.label(), deny = p.label(), dgram = p.label(), not_ping4 = p.label();
    p.emit(load_u32(kFamily, R1, offsetof(bpf_sock, family)));
    p.emit(load_u32(kType, R1, offsetof(bpf_sock, type)));
    p.emit(load_u32(kProto, R1, offsetof(bpf_sock, protocol)));
    p.jump_if(BPF_JNE, kType, SOCK_STREAM, dgram);
    p.jump_if(BPF_JEQ, kProto, IPPROTO_TCP, allow);
    // MPTCP's subflows are TCP sockets the kernel connects through the connect hooks.
    p.jump_if(BPF_JEQ, kProto, IPPROTO_MPTCP, allow);
    p.jump(deny);
    p.bind(dgram);
    p.jump_if(BPF_JNE, kType, SOCK_DGRAM, deny);
    p.jump_if(BPF_JEQ, kProto, IPPROTO_UDP, allow);
    p.jump_if(BPF_JNE, kFamily, AF_INET, not_ping4);
    p.jump_if(BPF_JEQ, kProto, IPPROTO_ICMP, allow);
    p.jump(deny);
    p.bind(not_ping4);
    p.jump_if(BPF_JEQ, kProto, IPPROTO_ICMPV6, allow);
    p.bind(deny);
    p.emit(mov_imm(R0, 0));
    p.exit();
    p.bind(allow);
    p.emit(mov_imm(R0, 1));
    p.exit();
    return p.finish();
}

const std::vector<bpf_attach_type>& sockaddr_attach_types() {
    static const std::vector<bpf_attach_type> types = {BPF_CGROUP_INET_SOCK_CREATE, BPF_CGROUP_INET4_CONNECT,
                                                       BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
                                                       BPF_CGROUP_UDP6_SENDMSG,  BPF_CGROUP_INET_EGRESS};
    return types;
}

namespace {

std::vector<bpf_insn> program_for(bpf_attach_type type, const ResolvedPolicy& policy,
                                  const std::vector<bpf_insn> (&sockaddr)[2]) {
    switch (type) {
        case BPF_CGROUP_INET_SOCK_CREATE: return build_socket_create_program();
        case BPF_CGROUP_INET_EGRESS: return build_icmp_egress_program(policy);
        default: return sockaddr[is_ipv6_hook(type) ? 1 : 0];
    }
}

}  // namespace

void attach_sockaddr_programs(const std::string& dir, const ResolvedPolicy& policy) {
    const UniqueFd cgroup = open_cgroup(dir);
    const std::vector<bpf_insn> progs[2] = {build_sockaddr_program(policy, false),
                                            build_sockaddr_program(policy, true)};
    std::vector<std::pair<UniqueFd, bpf_attach_type>> attached;
    try {
        for (const auto type : sockaddr_attach_types()) {
            UniqueFd prog = load_program(program_for(type, policy, progs), type);
            bpf_attr attr{};
            attr.target_fd = static_cast<std::uint32_t>(cgroup.get());
            attr.attach_bpf_fd = static_cast<std::uint32_t>(prog.get());
            attr.attach_type = type;
            attr.attach_flags = 0;  // no override: nothing may be attached below
            if (bpf(BPF_PROG_ATTACH, attr) != 0)
                throw_errno(std::string("egress: attach the cgroup ") + hook_name(type) + " program to " + dir);
            attached.emplace_back(std::move(prog), type);
        }
    } catch (const Error&) {
        for (const auto& [prog, type] : attached) detach(cgroup.get(), prog.get(), type);
        throw;
    }
}

std::vector<std::uint32_t> attached_sockaddr_programs(const std::string& dir, bpf_attach_type type) {
    return query(open_cgroup(dir).get(), type);
}

void detach_sockaddr_programs(const std::string& dir) {
    const UniqueFd cgroup = open_cgroup(dir);
    for (const auto type : sockaddr_attach_types()) {
        for (const std::uint32_t id : query(cgroup.get(), type)) {
            bpf_attr get{};
            get.prog_id = id;
            UniqueFd prog(static_cast<int>(bpf(BPF_PROG_GET_FD_BY_ID, get)));
            if (!prog) {
                if (errno == ENOENT) continue;  // already gone
                throw_errno("egress: open a cgroup program (bpf BPF_PROG_GET_FD_BY_ID)");
            }
            if (const int err = detach(cgroup.get(), prog.get(), type); err != 0 && err != ENOENT)
                throw_errno(std::string("egress: detach the cgroup ") + hook_name(type) + " program from " + dir, err);
        }
    }
}

const char* to_string(Enforcement e) { return e == Enforcement::Kernel ? "kernel" : "supervisor"; }

namespace {

// Why the programs cannot be attached; empty once they are.
std::string try_attach(const std::map<std::string, std::string>& cgroup_dirs, const ResolvedPolicy& policy) {
    if (const char* v = std::getenv(kTestNoKernelLayerEnv); v && *v)
        return std::string("the kernel layer is switched off for a test (") + kTestNoKernelLayerEnv + ")";
    const auto it = cgroup_dirs.find("");
    if (it == cgroup_dirs.end() || it->second.empty())
        return "the container has no cgroup2 directory for the kernel's egress programs";
    try {
        attach_sockaddr_programs(it->second, policy);
        return "";
    } catch (const Error& e) {
        std::string why = e.what();
        if (why.starts_with("egress: ")) why.erase(0, 8);  // attach_kernel_layer adds it
        return why;
    }
}

}  // namespace

Enforcement attach_kernel_layer(const std::map<std::string, std::string>& cgroup_dirs,
                                const ResolvedPolicy& policy, bool supervisor_allowed) {
    const std::string why = try_attach(cgroup_dirs, policy);
    if (why.empty()) return Enforcement::Kernel;
    if (!supervisor_allowed)
        throw Error("egress: " + why +
                    "; refusing to run the policy without the kernel layer (to let the seccomp supervisor "
                    "enforce it alone: --supervisor-mode=allow or SANDLOCK_RUNC_SUPERVISOR_MODE=allow)");
    log::warn("egress: " + why + "; supervisor mode: the seccomp supervisor enforces the policy alone");
    return Enforcement::Supervisor;
}

}  // namespace sandlock::egress
