// linux.resources as typed, validated values. spec::Config keeps the JSON
// raw; parse_resources() turns it into this struct once, so the v1 and v2
// writers never see a value the runtime spec (or the kernel) would refuse.
// Errors name the JSON path: `.linux.resources.memory.limit: must be -1 or positive`.
//
// Absent fields stay unset (std::nullopt / empty) and are never written.
// Like runc, a zero memory limit, cpu shares, cpu period or pids limit means
// "not set" (Go's zero value); -1 means "unlimited" where the spec allows it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sandlock::spec {
struct Device;
}

namespace sandlock::cgroups {

struct MemoryResources {
    std::optional<int64_t> limit;        // bytes, -1 = unlimited
    std::optional<int64_t> reservation;  // soft limit (v2: memory.low)
    std::optional<int64_t> swap;         // memory+swap (the v1 meaning), -1 = unlimited
    std::optional<int64_t> kernel;       // deprecated: written on v1 only if the file exists
    std::optional<int64_t> kernel_tcp;
    std::optional<uint64_t> swappiness;  // 0..100
    std::optional<bool> disable_oom_killer;
    std::optional<bool> use_hierarchy;
    // Refuse a new limit below the current usage (checked when applied).
    std::optional<bool> check_before_update;
};

struct CpuResources {
    std::optional<uint64_t> shares;  // 2..262144
    std::optional<int64_t> quota;    // microseconds, -1 = unlimited
    std::optional<uint64_t> burst;   // microseconds
    std::optional<uint64_t> period;  // microseconds, 1000..1000000
    std::optional<int64_t> realtime_runtime;
    std::optional<uint64_t> realtime_period;
    std::string cpus;  // "0-3,5", empty = unset
    std::string mems;
    std::optional<int64_t> idle;  // 0 or 1
};

struct BlockIoDeviceWeight {
    int64_t major = 0, minor = 0;
    std::optional<uint16_t> weight, leaf_weight;
};

struct BlockIoThrottle {
    int64_t major = 0, minor = 0;
    uint64_t rate = 0;
};

struct BlockIoResources {
    std::optional<uint16_t> weight;       // 10..1000
    std::optional<uint16_t> leaf_weight;  // 10..1000 (v1 CFQ only; ignored where absent)
    std::vector<BlockIoDeviceWeight> weight_device;
    std::vector<BlockIoThrottle> throttle_read_bps, throttle_write_bps, throttle_read_iops,
        throttle_write_iops;
};

struct HugepageLimit {
    std::string page_size;  // "2MB", "1GB", "64KB"
    uint64_t limit = 0;
};

struct NetworkResources {
    std::optional<uint32_t> class_id;
    std::vector<std::pair<std::string, uint32_t>> priorities;  // interface, priority
};

struct RdmaLimit {
    std::optional<uint32_t> hca_handles, hca_objects;
};

// One device cgroup rule. -1 in major/minor is the wildcard '*'.
struct DeviceRule {
    bool allow = false;
    char type = 'a';  // 'a' (all), 'c', 'b'
    int64_t major = -1, minor = -1;
    std::string access = "rwm";  // non-empty subset of "rwm"

    bool operator==(const DeviceRule&) const = default;
};

struct Resources {
    std::optional<MemoryResources> memory;
    std::optional<CpuResources> cpu;
    std::optional<int64_t> pids_limit;  // -1 = unlimited
    std::optional<BlockIoResources> block_io;
    std::vector<HugepageLimit> hugepage_limits;
    std::optional<NetworkResources> network;
    std::map<std::string, RdmaLimit> rdma;
    std::map<std::string, std::string> unified;  // validated v2 "controller.file" keys
    // Present only when linux.resources.devices is: then the device cgroup
    // is reset to exactly these rules (plus what add_default_devices adds).
    std::optional<std::vector<DeviceRule>> devices;
};

// Parses linux.resources (an object; null or {} give an empty Resources).
// path is the JSON path used in messages. Throws sandlock::Error.
Resources parse_resources(const nlohmann::json& j, const std::string& path = ".linux.resources");

// The devices every container gets, as runc allows them (null, zero, full,
// random, urandom, tty, console, ptmx, pts/*, mknod of anything), followed by
// rwm for each node in linux.devices. Only when r.devices is set: a config
// without linux.resources.devices leaves the device cgroup alone.
void add_default_devices(Resources& r, const std::vector<spec::Device>& config_devices);

// "c 1:3 rwm", "a *:* rwm": the v1 devices.allow/deny syntax.
std::string device_rule_text(const DeviceRule& rule);

// Known cgroup2 interface files a unified key may name ("memory.high",
// "hugetlb.2MB.max", ...). Exposed for tests.
bool is_known_unified_key(const std::string& key);

// ---- v1 → v2 translations (the formulas crun documents and uses) ----------

// cpu.shares [2, 262144] → cpu.weight [1, 10000]:
//   weight = 1 + ((shares - 2) * 9999) / 262142
uint64_t cpu_shares_to_weight(uint64_t shares);
// blkio.weight [10, 1000] → io.weight [1, 10000]:
//   io_weight = 1 + ((weight - 10) * 9999) / 990
// (io.bfq.weight takes the v1 value unchanged, 1..1000.)
uint64_t blkio_weight_to_io_weight(uint64_t weight);
// memory.swap.max: OCI swap is memory+swap, v2 limits swap alone:
//   swap.max = swap - limit ("max" when swap is -1). Throws when swap < limit,
//   or when swap is set but limit is unlimited (swap alone cannot be derived).
std::string v2_swap_max(int64_t swap, std::optional<int64_t> limit);
// cpu.max "quota period": "max" for quota -1 or unset; period defaults to 100000.
std::string v2_cpu_max(std::optional<int64_t> quota, std::optional<uint64_t> period);

// ---- update ---------------------------------------------------------------

// The saved config after `update` (runc keeps the new values in its state):
// delta merged into saved (linux.resources: an object, or null for none),
// objects member by member, every other value replaced. Null members of delta
// change nothing, and "devices" is never changed by update (as runc).
void merge_resources_update(nlohmann::json& saved, const nlohmann::json& delta);
// memory.swap.max is derived from swap and limit together on cgroup v2: an
// update that sets one of them takes the other from current (the merged
// config), so the derived value follows. (v1 keeps memsw on its own.)
void complete_v2_memory_update(Resources& update, const Resources& current);

// "mlx5_0 hca_handle=2 hca_object=2000": rdma.max syntax (v1 and v2).
std::string rdma_limit_text(const std::string& device, const RdmaLimit& limit);

// "max" for -1, the number otherwise.
std::string limit_text(int64_t value);

// runc's --memory syntax: a number with an optional k/m/g/t (or kb, mb, kib...)
// suffix, powers of 1024; "-1" stays -1. Throws on anything else.
int64_t parse_memory_size(const std::string& text);

}  // namespace sandlock::cgroups
