// The device filter program, written instruction by instruction.
//
// The kernel calls it for every open/mknod of a device node with
//   struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// where access_type = (access << 16) | type; access is a mask of
// BPF_DEVCG_ACC_MKNOD|READ|WRITE, type is BPF_DEVCG_DEV_BLOCK or _CHAR.
// It returns 1 to allow, 0 to deny.
//
// Shape:
//   prologue:  r2 = type, r3 = access, r4 = major, r5 = minor
//   one block per rule, LAST rule first (the spec: later rules win), each
//     if r2 != rule.type               goto next   (left out for type 'a')
//     r1 = r3 & ~rule.access; if r1 != 0 goto next (left out for "rwm")
//     if r4 != rule.major              goto next   (left out for -1 = '*')
//     if r5 != rule.minor              goto next   (left out for -1 = '*')
//     r0 = rule.allow; exit
//   epilogue:  r0 = 0; exit                         (no rule matched: deny)
// A request matches when its access is a subset of the rule's, as the v1
// devices controller matches exceptions. A rule matching everything ends the
// walk, so the rules before it are never emitted.
#include "runtime/cgroups/devices_bpf.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "runtime/linux/bpf_insn.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::cgroups {

namespace {

using namespace os::bpf;  // the instruction encoders and registers


int32_t access_mask(const std::string& access) {
    int32_t mask = 0;
    for (char c : access) {
        if (c == 'm') mask |= BPF_DEVCG_ACC_MKNOD;
        if (c == 'r') mask |= BPF_DEVCG_ACC_READ;
        if (c == 'w') mask |= BPF_DEVCG_ACC_WRITE;
    }
    return mask;
}

bool matches_everything(const DeviceRule& r) {
    return r.type == 'a' && r.major < 0 && r.minor < 0 && access_mask(r.access) == 7;
}

// One rule's block; every "goto next" jumps just past the block's end.
std::vector<bpf_insn> rule_block(const DeviceRule& r) {
    std::vector<bpf_insn> block;
    if (r.type != 'a') block.push_back(jne_imm(R2, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    int32_t mask = access_mask(r.access);
    if (mask != 7) {
        block.push_back(mov_reg(R1, R3));
        block.push_back(and_imm(R1, ~mask & 7));
        block.push_back(jne_imm(R1, 0));
    }
    if (r.major >= 0) block.push_back(jne_imm(R4, static_cast<int32_t>(r.major)));
    if (r.minor >= 0) block.push_back(jne_imm(R5, static_cast<int32_t>(r.minor)));
    block.push_back(mov_imm(R0, r.allow ? 1 : 0));
    block.push_back(exit_insn());
    for (size_t i = 0; i < block.size(); ++i)
        if (BPF_CLASS(block[i].code) == BPF_JMP32) block[i].off = static_cast<int16_t>(block.size() - i - 1);
    return block;
}

long bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

UniqueFd load_program(const std::vector<bpf_insn>& prog) {
    static const char license[] = "Apache-2.0";  // no GPL-only helpers are called
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = reinterpret_cast<uint64_t>(prog.data());
    attr.insn_cnt = static_cast<uint32_t>(prog.size());
    attr.license = reinterpret_cast<uint64_t>(license);
    UniqueFd fd(static_cast<int>(bpf(BPF_PROG_LOAD, attr)));
    if (!fd) throw_errno("cgroups: load the device filter (bpf BPF_PROG_LOAD)");
    return fd;
}

// Ids of the device programs attached directly to the cgroup.
std::vector<uint32_t> attached_programs(int cgroup_fd) {
    std::vector<uint32_t> ids(64);
    bpf_attr attr{};
    attr.query.target_fd = static_cast<uint32_t>(cgroup_fd);
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    if (bpf(BPF_PROG_QUERY, attr) != 0) throw_errno("cgroups: list device filters (bpf BPF_PROG_QUERY)");
    ids.resize(attr.query.prog_cnt);
    return ids;
}

void detach_program(int cgroup_fd, uint32_t id) {
    bpf_attr get{};
    get.prog_id = id;
    UniqueFd prog(static_cast<int>(bpf(BPF_PROG_GET_FD_BY_ID, get)));
    if (!prog) {
        if (errno == ENOENT) return;  // already gone
        throw_errno("cgroups: open the old device filter (bpf BPF_PROG_GET_FD_BY_ID)");
    }
    bpf_attr detach{};
    detach.target_fd = static_cast<uint32_t>(cgroup_fd);
    detach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (bpf(BPF_PROG_DETACH, detach) != 0 && errno != ENOENT)
        throw_errno("cgroups: detach the old device filter (bpf BPF_PROG_DETACH)");
}

}  // namespace

std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule>& rules) {
    std::vector<bpf_insn> prog = {
        load_u32(R2, R1, 0), and_imm(R2, 0xffff),  // r2 = type
        load_u32(R3, R1, 0), rsh_imm(R3, 16),      // r3 = access
        load_u32(R4, R1, 4),                       // r4 = major
        load_u32(R5, R1, 8),                       // r5 = minor
    };
    bool ended = false;
    for (auto it = rules.rbegin(); it != rules.rend() && !ended; ++it) {
        auto block = rule_block(*it);
        prog.insert(prog.end(), block.begin(), block.end());
        ended = matches_everything(*it);
    }
    if (!ended) {
        prog.push_back(mov_imm(R0, 0));
        prog.push_back(exit_insn());
    }
    return prog;
}

void attach_device_filter(const std::string& dir, const std::vector<DeviceRule>& rules) {
    UniqueFd cgroup(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup) throw_errno("cgroups: open " + dir);
    auto old = attached_programs(cgroup.get());
    UniqueFd prog = load_program(build_device_program(rules));
    bpf_attr attach{};
    attach.target_fd = static_cast<uint32_t>(cgroup.get());
    attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (bpf(BPF_PROG_ATTACH, attach) != 0) throw_errno("cgroups: attach the device filter to " + dir);
    // Every attached program must allow an access: drop the old ones only
    // now, so there is no moment without a filter.
    for (uint32_t id : old) detach_program(cgroup.get(), id);
}

}  // namespace sandlock::cgroups
