// linux.resources on cgroup v2. The runtime spec speaks v1; the v2 files
// take translated values (the formulas are crun's, documented in resources.hpp):
//   cpu.shares        → cpu.weight      1 + ((shares - 2) * 9999) / 262142
//   cpu.quota/period  → cpu.max         "<quota|max> <period>"
//   blkio.weight      → io.bfq.weight   unchanged (1..1000), when BFQ offers it
//                     → io.weight       1 + ((weight - 10) * 9999) / 990 otherwise
//   memory.swap       → memory.swap.max swap - limit (OCI swap counts memory too)
//   memory.reservation→ memory.low
// unified keys are written last, so an explicit v2 value wins.
#include <cerrno>
#include <cstring>
#include <sstream>

#include "runtime/cgroups/cgroupfs.hpp"
#include "runtime/cgroups/devices_bpf.hpp"
#include "runtime/cgroups/resources.hpp"
#include "runtime/cgroups/v2.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::cgroups {

namespace {

// A missing file in v2 means the controller is not enabled for this cgroup.
void write_v2(const std::string& dir, const std::string& file, const std::string& value) {
    int err = cgroupfs::try_write(dir, file, value);
    if (err == ENOENT) {
        std::string controller = file.substr(0, file.find('.'));
        throw Error("cgroups: cannot set " + file + " in " + dir + ": the \"" + controller +
                    "\" controller is not enabled (see the parent's cgroup.subtree_control)");
    }
    if (err != 0) throw Error("set " + file + " to \"" + value + "\" in " + dir + ": " + std::strerror(err));
}

[[noreturn]] void refuse_on_v2(const char* what) {
    throw Error(std::string("cgroups: cannot apply linux.resources.") + what +
                ": cgroup v2 has no equivalent (this host's cgroups are v2)");
}

// v1 settings that v2 cannot express: refused before anything is written, so a refused
// `update` changes nothing, and never dropped with a warning.
void refuse_what_v2_lacks(const Resources& r) {
    if (r.memory) {
        if (r.memory->swappiness) refuse_on_v2("memory.swappiness");
        if (r.memory->disable_oom_killer.value_or(false)) refuse_on_v2("memory.disableOOMKiller");
        if (r.memory->kernel) refuse_on_v2("memory.kernel");
        if (r.memory->kernel_tcp) refuse_on_v2("memory.kernelTCP");
    }
    if (r.block_io && r.block_io->leaf_weight) refuse_on_v2("blockIO.leafWeight");
    if (r.network && r.network->class_id) refuse_on_v2("network.classID");
    if (r.network && !r.network->priorities.empty()) refuse_on_v2("network.priorities");
}

void apply_memory(const MemoryResources& m, const std::string& dir) {
    if (m.check_before_update.value_or(false) && m.limit && *m.limit > 0) {
        auto usage = cgroupfs::read_u64(dir, "memory.current");
        if (usage && *usage > static_cast<uint64_t>(*m.limit))
            throw Error("cgroups: memory limit " + std::to_string(*m.limit) + " is below the current usage " +
                        std::to_string(*usage) + " (checkBeforeUpdate)");
    }
    if (m.swap) {
        std::string swap_max = v2_swap_max(*m.swap, m.limit);
        // Without swap accounting a zero swap allowance is already the truth.
        if (cgroupfs::has(dir, "memory.swap.max") || swap_max != "0") write_v2(dir, "memory.swap.max", swap_max);
    }
    if (m.limit) write_v2(dir, "memory.max", limit_text(*m.limit));
    if (m.reservation) write_v2(dir, "memory.low", limit_text(*m.reservation));
}

// cpu.max holds quota and period together: keep the half the config leaves out.
std::string cpu_max_value(const CpuResources& c, const std::string& dir) {
    std::optional<int64_t> quota = c.quota;
    std::optional<uint64_t> period = c.period;
    if ((!quota || !period) && cgroupfs::has(dir, "cpu.max")) {
        std::istringstream current(cgroupfs::read(dir, "cpu.max"));
        std::string q, p;
        current >> q >> p;
        if (!quota && q != "max" && !q.empty()) quota = std::stoll(q);
        if (!period && !p.empty()) period = std::stoull(p);
    }
    return v2_cpu_max(quota, period);
}

void apply_cpu(const CpuResources& c, const std::string& dir) {
    if ((c.realtime_runtime && *c.realtime_runtime != 0) || (c.realtime_period && *c.realtime_period != 0))
        throw Error("cgroups: linux.resources.cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2");
    if (c.shares) write_v2(dir, "cpu.weight", std::to_string(cpu_shares_to_weight(*c.shares)));
    if (c.quota || c.period) write_v2(dir, "cpu.max", cpu_max_value(c, dir));
    if (c.burst) write_v2(dir, "cpu.max.burst", std::to_string(*c.burst));
    if (c.idle) write_v2(dir, "cpu.idle", std::to_string(*c.idle));
    if (!c.cpus.empty()) write_v2(dir, "cpuset.cpus", c.cpus);
    if (!c.mems.empty()) write_v2(dir, "cpuset.mems", c.mems);
}

std::string dev(int64_t major, int64_t minor) { return std::to_string(major) + ":" + std::to_string(minor); }

void apply_block_io(const BlockIoResources& b, const std::string& dir) {
    bool bfq = cgroupfs::has(dir, "io.bfq.weight");
    if (b.weight) {
        if (bfq) write_v2(dir, "io.bfq.weight", std::to_string(*b.weight));
        else write_v2(dir, "io.weight", "default " + std::to_string(blkio_weight_to_io_weight(*b.weight)));
    }
    for (const auto& w : b.weight_device) {
        if (!w.weight) continue;
        if (bfq) write_v2(dir, "io.bfq.weight", dev(w.major, w.minor) + " " + std::to_string(*w.weight));
        else write_v2(dir, "io.weight", dev(w.major, w.minor) + " " + std::to_string(blkio_weight_to_io_weight(*w.weight)));
    }
    auto throttle = [&](const std::vector<BlockIoThrottle>& list, const char* key) {
        for (const auto& t : list)
            write_v2(dir, "io.max", dev(t.major, t.minor) + " " + key + "=" + std::to_string(t.rate));
    };
    throttle(b.throttle_read_bps, "rbps");
    throttle(b.throttle_write_bps, "wbps");
    throttle(b.throttle_read_iops, "riops");
    throttle(b.throttle_write_iops, "wiops");
}

void apply_unified(const std::map<std::string, std::string>& unified, const std::string& dir) {
    for (const auto& [key, value] : unified) {
        int err = cgroupfs::try_write(dir, key, value);
        if (err == ENOENT)
            throw Error("cgroups: linux.resources.unified[\"" + key + "\"]: " + dir + "/" + key +
                        " does not exist (is the controller enabled in the parent's cgroup.subtree_control?)");
        if (err != 0)
            throw Error("cgroups: linux.resources.unified[\"" + key + "\"]: set to \"" + value + "\": " +
                        std::strerror(err));
    }
}

}  // namespace

void apply_v2_resources(const Resources& r, const std::string& dir) {
    refuse_what_v2_lacks(r);
    if (r.memory) apply_memory(*r.memory, dir);
    if (r.cpu) apply_cpu(*r.cpu, dir);
    if (r.pids_limit) write_v2(dir, "pids.max", limit_text(*r.pids_limit));
    if (r.block_io) apply_block_io(*r.block_io, dir);
    for (const auto& h : r.hugepage_limits) write_v2(dir, "hugetlb." + h.page_size + ".max", std::to_string(h.limit));
    for (const auto& [device, limit] : r.rdma) write_v2(dir, "rdma.max", rdma_limit_text(device, limit));
    apply_unified(r.unified, dir);
    if (r.devices) attach_device_filter(dir, *r.devices);
}

}  // namespace sandlock::cgroups
