// Encoders for eBPF instructions (the kernel's struct bpf_insn, filled by hand) for the
// cgroup v2 device filter (cgroups/devices_bpf.cpp), a short program generated from the
// config's device rules at create. (The egress programs are C: egress/bpf/egress.bpf.c.)
#pragma once

#include <linux/bpf.h>

#include <bit>
#include <cstddef>
#include <cstdint>

namespace sandlock::os::bpf {

constexpr std::uint8_t R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9;

inline bpf_insn insn(std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off, std::int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

// dst = *(u8 / u32 / u64 *)(src + off)
inline bpf_insn load_u8(std::uint8_t dst, std::uint8_t src, std::size_t off) {
    return insn(BPF_LDX | BPF_MEM | BPF_B, dst, src, static_cast<std::int16_t>(off), 0);
}
inline bpf_insn load_u32(std::uint8_t dst, std::uint8_t src, std::size_t off) {
    return insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, static_cast<std::int16_t>(off), 0);
}
inline bpf_insn load_u64(std::uint8_t dst, std::uint8_t src, std::size_t off) {
    return insn(BPF_LDX | BPF_MEM | BPF_DW, dst, src, static_cast<std::int16_t>(off), 0);
}

// 32-bit ALU: the upper half of dst is zeroed.
inline bpf_insn mov_imm(std::uint8_t dst, std::int32_t imm) { return insn(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm); }
inline bpf_insn mov_reg(std::uint8_t dst, std::uint8_t src) { return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
inline bpf_insn and_imm(std::uint8_t dst, std::uint32_t imm) {
    return insn(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, std::bit_cast<std::int32_t>(imm));
}
inline bpf_insn rsh_imm(std::uint8_t dst, std::int32_t imm) { return insn(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm); }

// 64-bit: pointers (context, packet) keep their type only through 64-bit moves and adds.
inline bpf_insn mov64_reg(std::uint8_t dst, std::uint8_t src) {
    return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
inline bpf_insn add64_imm(std::uint8_t dst, std::int32_t imm) {
    return insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm);
}

// if (dst != imm) pc += off   (32-bit compare; off is patched by the caller)
inline bpf_insn jne_imm(std::uint8_t dst, std::int32_t imm) { return insn(BPF_JMP32 | BPF_JNE | BPF_K, dst, 0, 0, imm); }
inline bpf_insn call(std::int32_t helper) { return insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
inline bpf_insn exit_insn() { return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

}  // namespace sandlock::os::bpf
