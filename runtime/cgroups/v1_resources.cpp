// linux.resources on cgroup v1 (and the v1 side of a hybrid host): one
// writer per controller, each writing only what the config sets.
#include <cerrno>
#include <cstring>

#include "runtime/cgroups/cgroupfs.hpp"
#include "runtime/cgroups/resources.hpp"
#include "runtime/cgroups/v1.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::cgroups {

namespace {

using Dirs = std::map<std::string, std::string>;

// The controller's directory; nullptr when the hierarchy is not mounted.
const std::string* find_dir(const Dirs& dirs, const std::string& controller) {
    auto it = dirs.find(controller);
    return it == dirs.end() ? nullptr : &it->second;
}

// A controller the config asks something of: missing is an error, never a warning
// (hugetlb, net_cls, net_prio and rdma included; runc and crun refuse them too).
const std::string& need_dir(const Dirs& dirs, const std::string& controller, const std::string& what) {
    const std::string* dir = find_dir(dirs, controller);
    if (!dir)
        throw Error("cgroups: cannot apply linux.resources." + what + ": the v1 \"" + controller +
                    "\" controller is not mounted");
    return *dir;
}

// A file some kernels no longer offer (kmem limits, CFQ's leaf weight): a config that
// asks for it is refused there rather than run without it.
void write_if_offered(const std::string& dir, const std::string& file, const std::string& value,
                      const std::string& what) {
    if (!cgroupfs::has(dir, file))
        throw Error("cgroups: cannot apply linux.resources." + what + ": this kernel offers no " + file);
    cgroupfs::write(dir, file, value);
}

// The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at
// every moment, so the order of the two writes depends on the direction:
// try memsw first (right when it grows); EINVAL means it would drop below
// the current limit, so lower the limit first.
void set_memory_and_swap(const std::string& dir, std::optional<int64_t> limit, std::optional<int64_t> swap) {
    bool memsw = cgroupfs::has(dir, "memory.memsw.limit_in_bytes");
    if (swap && !memsw) {
        if (*swap != -1)
            throw Error("cgroups: linux.resources.memory.swap is set but this kernel does not account swap "
                        "(no memory.memsw.limit_in_bytes; boot with swapaccount=1)");
        swap.reset();
    }
    if (!swap) {
        if (!limit) return;
        int err = cgroupfs::try_write(dir, "memory.limit_in_bytes", std::to_string(*limit));
        if (err == EINVAL && memsw)
            throw Error("cgroups: memory limit " + std::to_string(*limit) +
                        " exceeds the current memory+swap limit " + cgroupfs::read(dir, "memory.memsw.limit_in_bytes") +
                        "; set the swap limit too");
        if (err != 0) cgroupfs::write(dir, "memory.limit_in_bytes", std::to_string(*limit));  // throws with context
        return;
    }
    int err = cgroupfs::try_write(dir, "memory.memsw.limit_in_bytes", std::to_string(*swap));
    if (err == 0) {
        if (limit) cgroupfs::write(dir, "memory.limit_in_bytes", std::to_string(*limit));
        return;
    }
    if (err != EINVAL || !limit) cgroupfs::write(dir, "memory.memsw.limit_in_bytes", std::to_string(*swap));
    cgroupfs::write(dir, "memory.limit_in_bytes", std::to_string(*limit));
    cgroupfs::write(dir, "memory.memsw.limit_in_bytes", std::to_string(*swap));
}

void check_usage_below(const std::string& dir, const MemoryResources& m) {
    if (!m.check_before_update.value_or(false) || !m.limit || *m.limit < 0) return;
    auto usage = cgroupfs::read_u64(dir, "memory.usage_in_bytes");
    if (usage && *usage > static_cast<uint64_t>(*m.limit))
        throw Error("cgroups: memory limit " + std::to_string(*m.limit) + " is below the current usage " +
                    std::to_string(*usage) + " (checkBeforeUpdate)");
}

void apply_memory(const MemoryResources& m, const std::string& dir) {
    check_usage_below(dir, m);
    set_memory_and_swap(dir, m.limit, m.swap);
    if (m.reservation) cgroupfs::write(dir, "memory.soft_limit_in_bytes", std::to_string(*m.reservation));
    if (m.kernel) write_if_offered(dir, "memory.kmem.limit_in_bytes", std::to_string(*m.kernel), "memory.kernel");
    if (m.kernel_tcp)
        write_if_offered(dir, "memory.kmem.tcp.limit_in_bytes", std::to_string(*m.kernel_tcp), "memory.kernelTCP");
    if (m.swappiness) cgroupfs::write(dir, "memory.swappiness", std::to_string(*m.swappiness));
    if (m.disable_oom_killer.value_or(false)) cgroupfs::write(dir, "memory.oom_control", "1");
    // Kernels without the file are always hierarchical: only "false" would be dropped.
    if (m.use_hierarchy && (cgroupfs::has(dir, "memory.use_hierarchy") || !*m.use_hierarchy))
        write_if_offered(dir, "memory.use_hierarchy", *m.use_hierarchy ? "1" : "0", "memory.useHierarchy");
}

void apply_cpu(const CpuResources& c, const Dirs& dirs) {
    bool wants_cpu = c.shares || c.quota || c.period || c.burst || c.realtime_period || c.realtime_runtime || c.idle;
    if (wants_cpu) {
        const std::string& dir = need_dir(dirs, "cpu", "cpu");
        if (c.shares) cgroupfs::write(dir, "cpu.shares", std::to_string(*c.shares));
        // Period before quota: the kernel checks quota against the new period.
        if (c.period) cgroupfs::write(dir, "cpu.cfs_period_us", std::to_string(*c.period));
        if (c.quota) cgroupfs::write(dir, "cpu.cfs_quota_us", std::to_string(*c.quota));
        if (c.burst) cgroupfs::write(dir, "cpu.cfs_burst_us", std::to_string(*c.burst));
        if (c.realtime_period) cgroupfs::write(dir, "cpu.rt_period_us", std::to_string(*c.realtime_period));
        if (c.realtime_runtime) cgroupfs::write(dir, "cpu.rt_runtime_us", std::to_string(*c.realtime_runtime));
        if (c.idle) cgroupfs::write(dir, "cpu.idle", std::to_string(*c.idle));
    }
    if (!c.cpus.empty() || !c.mems.empty()) {
        const std::string& dir = need_dir(dirs, "cpuset", "cpu.cpus/mems");
        // mems before cpus is arbitrary; each is checked against the parent alone.
        if (!c.cpus.empty()) cgroupfs::write(dir, "cpuset.cpus", c.cpus);
        if (!c.mems.empty()) cgroupfs::write(dir, "cpuset.mems", c.mems);
    }
}

std::string dev(int64_t major, int64_t minor) { return std::to_string(major) + ":" + std::to_string(minor); }

// CFQ's blkio.weight is gone from current kernels; BFQ offers blkio.bfq.weight with the same range.
std::string weight_file(const std::string& dir, const std::string& stem) {
    if (cgroupfs::has(dir, "blkio." + stem)) return "blkio." + stem;
    if (cgroupfs::has(dir, "blkio.bfq." + stem)) return "blkio.bfq." + stem;
    throw Error("cgroups: cannot apply linux.resources.blockIO: neither blkio." + stem + " nor blkio.bfq." + stem +
                " exists (no CFQ or BFQ I/O scheduler)");
}

void apply_block_io(const BlockIoResources& b, const std::string& dir) {
    if (b.weight) cgroupfs::write(dir, weight_file(dir, "weight"), std::to_string(*b.weight));
    if (b.leaf_weight) write_if_offered(dir, "blkio.leaf_weight", std::to_string(*b.leaf_weight), "blockIO.leafWeight");
    for (const auto& w : b.weight_device) {
        if (w.weight) cgroupfs::write(dir, weight_file(dir, "weight_device"), dev(w.major, w.minor) + " " + std::to_string(*w.weight));
        if (w.leaf_weight && cgroupfs::has(dir, "blkio.leaf_weight_device"))
            cgroupfs::write(dir, "blkio.leaf_weight_device", dev(w.major, w.minor) + " " + std::to_string(*w.leaf_weight));
    }
    auto throttle = [&](const std::vector<BlockIoThrottle>& list, const char* file) {
        for (const auto& t : list) cgroupfs::write(dir, file, dev(t.major, t.minor) + " " + std::to_string(t.rate));
    };
    throttle(b.throttle_read_bps, "blkio.throttle.read_bps_device");
    throttle(b.throttle_write_bps, "blkio.throttle.write_bps_device");
    throttle(b.throttle_read_iops, "blkio.throttle.read_iops_device");
    throttle(b.throttle_write_iops, "blkio.throttle.write_iops_device");
}

bool wants_block_io(const BlockIoResources& b) {
    return b.weight || b.leaf_weight || !b.weight_device.empty() || !b.throttle_read_bps.empty() ||
           !b.throttle_write_bps.empty() || !b.throttle_read_iops.empty() || !b.throttle_write_iops.empty();
}

}  // namespace

std::string rdma_limit_text(const std::string& device, const RdmaLimit& l) {
    std::string text = device;
    if (l.hca_handles) text += " hca_handle=" + std::to_string(*l.hca_handles);
    if (l.hca_objects) text += " hca_object=" + std::to_string(*l.hca_objects);
    return text;
}

void apply_v1_devices(const std::vector<DeviceRule>& rules, const std::string& dir) {
    // Start from "deny everything", then replay the rules in order, as the
    // spec says (a later rule wins). A specific deny removes an allow
    // exception; under allow-all it adds a deny exception: the kernel does both.
    cgroupfs::write(dir, "devices.deny", "a");
    for (const auto& r : rules) {
        bool all = r.type == 'a' && r.major < 0 && r.minor < 0 && r.access == "rwm";
        std::string text = all ? "a" : device_rule_text(r);
        cgroupfs::write(dir, r.allow ? "devices.allow" : "devices.deny", text);
    }
}

void apply_v1_resources(const Resources& r, const std::map<std::string, std::string>& dirs) {
    if (!r.unified.empty())
        throw Error("cgroups: linux.resources.unified needs cgroup v2, but this host uses cgroup v1 controllers");
    if (r.memory) apply_memory(*r.memory, need_dir(dirs, "memory", "memory"));
    if (r.cpu) apply_cpu(*r.cpu, dirs);
    if (r.pids_limit) cgroupfs::write(need_dir(dirs, "pids", "pids"), "pids.max", limit_text(*r.pids_limit));
    if (r.block_io && wants_block_io(*r.block_io)) apply_block_io(*r.block_io, need_dir(dirs, "blkio", "blockIO"));
    if (!r.hugepage_limits.empty()) {
        const std::string& dir = need_dir(dirs, "hugetlb", "hugepageLimits");
        for (const auto& h : r.hugepage_limits)
            cgroupfs::write(dir, "hugetlb." + h.page_size + ".limit_in_bytes", std::to_string(h.limit));
    }
    if (r.network) {
        if (r.network->class_id)
            cgroupfs::write(need_dir(dirs, "net_cls", "network.classID"), "net_cls.classid",
                            std::to_string(*r.network->class_id));
        if (!r.network->priorities.empty()) {
            const std::string& dir = need_dir(dirs, "net_prio", "network.priorities");
            for (const auto& [name, prio] : r.network->priorities)
                cgroupfs::write(dir, "net_prio.ifpriomap", name + " " + std::to_string(prio));
        }
    }
    if (!r.rdma.empty()) {
        const std::string& dir = need_dir(dirs, "rdma", "rdma");
        for (const auto& [device, limit] : r.rdma) cgroupfs::write(dir, "rdma.max", rdma_limit_text(device, limit));
    }
    if (r.devices) apply_v1_devices(*r.devices, need_dir(dirs, "devices", "devices"));
}

}  // namespace sandlock::cgroups
