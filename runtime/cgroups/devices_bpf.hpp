// cgroup v2 has no devices.allow/deny: device access is decided by an eBPF
// program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. We
// write that small program by hand (no libbpf, no compiler): see
// devices_bpf.cpp for its shape.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "runtime/cgroups/resources.hpp"

namespace sandlock::cgroups {

// The program for rules (OCI order: a later rule wins; no match denies).
std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule>& rules);

// Loads the program for rules and attaches it to the cgroup2 directory dir
// (BPF_F_ALLOW_MULTI), then detaches the device programs that were attached
// there before, so an update replaces the rules instead of stacking them.
void attach_device_filter(const std::string& dir, const std::vector<DeviceRule>& rules);

}  // namespace sandlock::cgroups
