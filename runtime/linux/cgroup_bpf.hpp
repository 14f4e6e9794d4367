// Programs on a cgroup2 directory, through libbpf's wrappers of bpf(2): the one place that
// attaches, lists and detaches them, and makes the maps they read, for the device filter
// (cgroups/devices_bpf.cpp) and the egress layer (egress/kernel_layer.cpp). Errors throw
// sandlock::SystemError whose message starts with `what`.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/util/fd.hpp"

namespace sandlock::os::cgroup_bpf {

// The directory, opened for bpf(2) (O_RDONLY | O_DIRECTORY).
UniqueFd open_dir(const std::string& dir, const std::string& what);

// Loads a program given as instructions (no BTF, no maps), with the kernel's verdict in
// the error when the verifier refuses it. Through bpf(2) directly, as create_map.
UniqueFd load(bpf_prog_type type, const std::vector<bpf_insn>& insns, const std::string& what);

// A map (BPF_MAP_CREATE) named `name`. Not libbpf's bpf_map_create: before its first map or
// program in a process, libbpf loads and JIT-compiles two probe programs (is memory charged
// to the cgroup rather than RLIMIT_MEMLOCK? are names supported?), about a millisecond of
// CPU on every create, for answers that do not change what the runtime does (it runs as
// root, whose limit libbpf would raise anyway, and names only help bpftool's listing).
UniqueFd create_map(bpf_map_type type, const char* name, std::uint32_t key_size, std::uint32_t value_size,
                    std::uint32_t max_entries, std::uint32_t flags, const std::string& what);

// flags: 0 (nothing may be attached below), BPF_F_ALLOW_OVERRIDE or BPF_F_ALLOW_MULTI.
void attach(int prog_fd, int cgroup_fd, bpf_attach_type type, std::uint32_t flags, const std::string& what);

// Ids of the programs attached directly to the cgroup for that hook.
std::vector<std::uint32_t> attached(int cgroup_fd, bpf_attach_type type, const std::string& what);

// Detaches the program with that id; a program already gone is not an error.
void detach(int cgroup_fd, std::uint32_t id, bpf_attach_type type, const std::string& what);
// Detaches by fd; returns 0 or the errno (for undoing a partial attach, which must not throw).
int detach_fd(int prog_fd, int cgroup_fd, bpf_attach_type type) noexcept;

}  // namespace sandlock::os::cgroup_bpf
