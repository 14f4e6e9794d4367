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

#include <cstdint>

#include "runtime/linux/bpf_insn.hpp"
#include "runtime/linux/cgroup_bpf.hpp"
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
    namespace cb = os::cgroup_bpf;
    const UniqueFd cgroup = cb::open_dir(dir, "cgroups");
    const auto old = cb::attached(cgroup.get(), BPF_CGROUP_DEVICE, "cgroups: list device filters");
    const UniqueFd prog =
        cb::load(BPF_PROG_TYPE_CGROUP_DEVICE, build_device_program(rules), "cgroups: load the device filter");
    cb::attach(prog.get(), cgroup.get(), BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI,
               "cgroups: attach the device filter to " + dir);
    // Every attached program must allow an access: drop the old ones only
    // now, so there is no moment without a filter.
    for (std::uint32_t id : old)
        cb::detach(cgroup.get(), id, BPF_CGROUP_DEVICE, "cgroups: detach the old device filter");
}

}  // namespace sandlock::cgroups
