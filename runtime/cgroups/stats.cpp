// `events --stats`: the cgroup counters in runc's types.Stats shape, so that
// containerd and podman decode them unchanged. Fields runc marks omitempty
// are left out when zero; controllers that are not there give empty objects.
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "runtime/cgroups/cgroupfs.hpp"
#include "runtime/cgroups/v1.hpp"
#include "runtime/cgroups/v2.hpp"

namespace sandlock::cgroups {

namespace {

using nlohmann::json;
using Dirs = std::map<std::string, std::string>;

void put_nonzero(json& j, const char* key, uint64_t v) {
    if (v != 0) j[key] = v;
}

uint64_t value_or_zero(const std::optional<uint64_t>& v) { return v.value_or(0); }

// runc's MemoryEntry: limit and failcnt always, usage and max when non-zero.
json memory_entry(uint64_t limit, uint64_t usage, uint64_t max, uint64_t failcnt) {
    json e = {{"limit", limit}, {"failcnt", failcnt}};
    put_nonzero(e, "usage", usage);
    put_nonzero(e, "max", max);
    return e;
}

std::vector<uint16_t> parse_list(const std::string& text) {
    std::vector<uint16_t> out;
    std::istringstream in(text);
    for (std::string part; std::getline(in, part, ',');) {
        if (part.empty()) continue;
        size_t dash = part.find('-');
        try {
            unsigned long lo = std::stoul(part.substr(0, dash));
            unsigned long hi = dash == std::string::npos ? lo : std::stoul(part.substr(dash + 1));
            for (unsigned long i = lo; i <= hi && i < 65536; ++i) out.push_back(static_cast<uint16_t>(i));
        } catch (const std::exception&) {
        }
    }
    return out;
}

const std::string* find_dir(const Dirs& dirs, const char* controller) {
    auto it = dirs.find(controller);
    return it == dirs.end() ? nullptr : &it->second;
}

// ---- v1

json v1_cpu(const Dirs& dirs) {
    json cpu = {{"usage", {{"kernel", 0}, {"user", 0}}}, {"throttling", json::object()}};
    if (const std::string* dir = find_dir(dirs, "cpuacct")) {
        json& usage = cpu["usage"];
        put_nonzero(usage, "total", value_or_zero(cgroupfs::read_u64(*dir, "cpuacct.usage")));
        auto percpu = cgroupfs::read_numbers(*dir, "cpuacct.usage_percpu");
        if (!percpu.empty()) usage["percpu"] = percpu;
        auto sys = cgroupfs::read_numbers(*dir, "cpuacct.usage_percpu_sys");
        if (!sys.empty()) usage["percpu_kernel"] = sys;
        auto user = cgroupfs::read_numbers(*dir, "cpuacct.usage_percpu_user");
        if (!user.empty()) usage["percpu_user"] = user;
        // cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds.
        auto stat = cgroupfs::read_keyed(*dir, "cpuacct.stat");
        uint64_t ns_per_tick = 1000000000ull / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
        usage["kernel"] = stat["system"] * ns_per_tick;
        usage["user"] = stat["user"] * ns_per_tick;
    }
    if (const std::string* dir = find_dir(dirs, "cpu")) {
        auto stat = cgroupfs::read_keyed(*dir, "cpu.stat");
        json& t = cpu["throttling"];
        put_nonzero(t, "periods", stat["nr_periods"]);
        put_nonzero(t, "throttledPeriods", stat["nr_throttled"]);
        put_nonzero(t, "throttledTime", stat["throttled_time"]);
    }
    return cpu;
}

json v1_cpuset(const Dirs& dirs) {
    json set = json::object();
    const std::string* dir = find_dir(dirs, "cpuset");
    if (!dir) return set;
    if (cgroupfs::has(*dir, "cpuset.cpus")) set["cpus"] = parse_list(cgroupfs::read(*dir, "cpuset.cpus"));
    if (cgroupfs::has(*dir, "cpuset.mems")) set["mems"] = parse_list(cgroupfs::read(*dir, "cpuset.mems"));
    for (const char* key : {"cpu_exclusive", "mem_exclusive", "mem_hardwall", "memory_migrate", "memory_pressure",
                            "memory_spread_page", "memory_spread_slab", "sched_load_balance",
                            "sched_relax_domain_level"})
        set[key] = value_or_zero(cgroupfs::read_u64(*dir, std::string("cpuset.") + key));
    return set;
}

json v1_memory_entry(const std::string& dir, const std::string& prefix) {
    auto get = [&](const char* name) { return value_or_zero(cgroupfs::read_u64(dir, prefix + name)); };
    return memory_entry(get("limit_in_bytes"), get("usage_in_bytes"), get("max_usage_in_bytes"), get("failcnt"));
}

json v1_memory(const Dirs& dirs) {
    json mem = json::object();
    const std::string* dir = find_dir(dirs, "memory");
    if (!dir) return mem;
    auto stat = cgroupfs::read_keyed(*dir, "memory.stat");
    put_nonzero(mem, "cache", stat["cache"]);
    mem["usage"] = v1_memory_entry(*dir, "memory.");
    if (cgroupfs::has(*dir, "memory.memsw.usage_in_bytes")) mem["swap"] = v1_memory_entry(*dir, "memory.memsw.");
    if (cgroupfs::has(*dir, "memory.kmem.usage_in_bytes")) mem["kernel"] = v1_memory_entry(*dir, "memory.kmem.");
    if (cgroupfs::has(*dir, "memory.kmem.tcp.usage_in_bytes"))
        mem["kernelTCP"] = v1_memory_entry(*dir, "memory.kmem.tcp.");
    // raw is memory.stat; oom_kill (from memory.oom_control) is added so an
    // OOM kill is visible without a separate events stream.
    json raw = json::object();
    for (const auto& [k, v] : stat) raw[k] = v;
    auto oom = cgroupfs::read_keyed(*dir, "memory.oom_control");
    if (oom.count("oom_kill") && !raw.contains("oom_kill")) raw["oom_kill"] = oom["oom_kill"];
    if (!raw.empty()) mem["raw"] = raw;
    return mem;
}

json pids_stats(const std::string* dir) {
    json pids = json::object();
    if (!dir) return pids;
    put_nonzero(pids, "current", value_or_zero(cgroupfs::read_u64(*dir, "pids.current")));
    put_nonzero(pids, "limit", value_or_zero(cgroupfs::read_u64(*dir, "pids.max")));  // "max" → 0, as runc
    return pids;
}

// "8:0 Read 4096" lines (the "Total" line is skipped).
json blkio_entries(const std::string& dir, const std::string& file) {
    json out = json::array();
    if (!cgroupfs::has(dir, file)) return out;
    std::istringstream in(cgroupfs::read(dir, file));
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string device, op;
        uint64_t value = 0;
        if (!(words >> device >> op >> value)) continue;
        size_t colon = device.find(':');
        if (colon == std::string::npos) continue;
        json e = json::object();
        try {
            put_nonzero(e, "major", std::stoull(device.substr(0, colon)));
            put_nonzero(e, "minor", std::stoull(device.substr(colon + 1)));
        } catch (const std::exception&) {
            continue;
        }
        e["op"] = op;
        put_nonzero(e, "value", value);
        out.push_back(e);
    }
    return out;
}

json v1_blkio(const Dirs& dirs) {
    json blkio = json::object();
    const std::string* dir = find_dir(dirs, "blkio");
    if (!dir) return blkio;
    // CFQ's files if the kernel has them, else BFQ's, else the throttle layer's (always there).
    std::string prefix = "blkio.throttle.";
    if (cgroupfs::has(*dir, "blkio.io_service_bytes_recursive")) prefix = "blkio.";
    else if (cgroupfs::has(*dir, "blkio.bfq.io_service_bytes_recursive")) prefix = "blkio.bfq.";
    auto bytes = blkio_entries(*dir, prefix + "io_service_bytes_recursive");
    auto ios = blkio_entries(*dir, prefix + "io_serviced_recursive");
    if (!bytes.empty()) blkio["ioServiceBytesRecursive"] = bytes;
    if (!ios.empty()) blkio["ioServicedRecursive"] = ios;
    return blkio;
}

// Page sizes from the hugetlb.<size>.<suffix> file names in dir.
std::vector<std::string> hugetlb_sizes(const std::string& dir, const std::string& suffix) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        std::string name = entry.path().filename().string();
        if (name.rfind("hugetlb.", 0) != 0 || name.size() <= 8 + suffix.size()) continue;
        if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
        std::string size = name.substr(8, name.size() - 8 - suffix.size());
        if (size.find('.') == std::string::npos) out.push_back(size);
    }
    return out;
}

json v1_hugetlb(const Dirs& dirs) {
    json h = json::object();
    const std::string* dir = find_dir(dirs, "hugetlb");
    if (!dir) return h;
    for (const auto& size : hugetlb_sizes(*dir, ".usage_in_bytes")) {
        std::string p = "hugetlb." + size + ".";
        json e = {{"failcnt", value_or_zero(cgroupfs::read_u64(*dir, p + "failcnt"))}};
        put_nonzero(e, "usage", value_or_zero(cgroupfs::read_u64(*dir, p + "usage_in_bytes")));
        put_nonzero(e, "max", value_or_zero(cgroupfs::read_u64(*dir, p + "max_usage_in_bytes")));
        h[size] = e;
    }
    return h;
}

json empty_stats() {
    return {{"cpu", {{"usage", {{"kernel", 0}, {"user", 0}}}, {"throttling", json::object()}}},
            {"cpuset", json::object()},
            {"memory", json::object()},
            {"pids", json::object()},
            {"blkio", json::object()},
            {"hugetlb", json::object()},
            {"intel_rdt", json::object()},
            {"network_interfaces", nullptr}};
}

// ---- v2

json v2_io(const std::string& dir) {
    json blkio = json::object();
    if (!cgroupfs::has(dir, "io.stat")) return blkio;
    json bytes = json::array(), ios = json::array();
    std::istringstream in(cgroupfs::read(dir, "io.stat"));
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string device;
        words >> device;
        size_t colon = device.find(':');
        if (colon == std::string::npos) continue;
        uint64_t major = 0, minor = 0;
        try {
            major = std::stoull(device.substr(0, colon));
            minor = std::stoull(device.substr(colon + 1));
        } catch (const std::exception&) {
            continue;
        }
        for (std::string kv; words >> kv;) {
            size_t eq = kv.find('=');
            if (eq == std::string::npos) continue;
            std::string key = kv.substr(0, eq);
            uint64_t value = 0;
            try {
                value = std::stoull(kv.substr(eq + 1));
            } catch (const std::exception&) {
                continue;
            }
            json e = json::object();
            put_nonzero(e, "major", major);
            put_nonzero(e, "minor", minor);
            put_nonzero(e, "value", value);
            if (key == "rbytes" || key == "wbytes") {
                e["op"] = key == "rbytes" ? "Read" : "Write";
                bytes.push_back(e);
            } else if (key == "rios" || key == "wios") {
                e["op"] = key == "rios" ? "Read" : "Write";
                ios.push_back(e);
            }
        }
    }
    if (!bytes.empty()) blkio["ioServiceBytesRecursive"] = bytes;
    if (!ios.empty()) blkio["ioServicedRecursive"] = ios;
    return blkio;
}

json v2_memory(const std::string& dir) {
    json mem = json::object();
    if (!cgroupfs::has(dir, "memory.current")) return mem;
    auto stat = cgroupfs::read_keyed(dir, "memory.stat");
    auto events = cgroupfs::read_keyed(dir, "memory.events");
    constexpr uint64_t kUnlimited = UINT64_MAX;  // runc's value for "max"
    uint64_t usage = value_or_zero(cgroupfs::read_u64(dir, "memory.current"));
    uint64_t limit = cgroupfs::read_u64(dir, "memory.max").value_or(kUnlimited);
    put_nonzero(mem, "cache", stat["file"]);
    mem["usage"] = memory_entry(limit, usage, value_or_zero(cgroupfs::read_u64(dir, "memory.peak")), events["max"]);
    if (cgroupfs::has(dir, "memory.swap.current")) {
        // Like runc: v1's memsw meaning, memory plus swap.
        uint64_t swap = value_or_zero(cgroupfs::read_u64(dir, "memory.swap.current"));
        auto swap_max = cgroupfs::read_u64(dir, "memory.swap.max");
        uint64_t swap_limit = swap_max && limit != kUnlimited ? *swap_max + limit : kUnlimited;
        mem["swap"] = memory_entry(swap_limit, swap + usage, 0, 0);
    }
    json raw = json::object();
    for (const auto& [k, v] : stat) raw[k] = v;
    if (events.count("oom_kill")) raw["oom_kill"] = events["oom_kill"];
    if (events.count("oom")) raw["oom"] = events["oom"];
    if (!raw.empty()) mem["raw"] = raw;
    return mem;
}

json v2_cpu(const std::string& dir) {
    json cpu = {{"usage", {{"kernel", 0}, {"user", 0}}}, {"throttling", json::object()}};
    auto stat = cgroupfs::read_keyed(dir, "cpu.stat");  // microseconds; runc reports ns
    json& usage = cpu["usage"];
    put_nonzero(usage, "total", stat["usage_usec"] * 1000);
    usage["kernel"] = stat["system_usec"] * 1000;
    usage["user"] = stat["user_usec"] * 1000;
    json& t = cpu["throttling"];
    put_nonzero(t, "periods", stat["nr_periods"]);
    put_nonzero(t, "throttledPeriods", stat["nr_throttled"]);
    put_nonzero(t, "throttledTime", stat["throttled_usec"] * 1000);
    return cpu;
}

json v2_hugetlb(const std::string& dir) {
    json h = json::object();
    for (const auto& size : hugetlb_sizes(dir, ".current")) {
        std::string p = "hugetlb." + size + ".";
        auto events = cgroupfs::read_keyed(dir, p + "events");
        json e = {{"failcnt", events["max"]}};
        put_nonzero(e, "usage", value_or_zero(cgroupfs::read_u64(dir, p + "current")));
        h[size] = e;
    }
    return h;
}

}  // namespace

nlohmann::json v1_stats(const std::map<std::string, std::string>& dirs) {
    json s = empty_stats();
    s["cpu"] = v1_cpu(dirs);
    s["cpuset"] = v1_cpuset(dirs);
    s["memory"] = v1_memory(dirs);
    s["pids"] = pids_stats(find_dir(dirs, "pids"));
    s["blkio"] = v1_blkio(dirs);
    s["hugetlb"] = v1_hugetlb(dirs);
    return s;
}

nlohmann::json v2_stats(const std::string& dir) {
    json s = empty_stats();
    s["cpu"] = v2_cpu(dir);
    if (cgroupfs::has(dir, "cpuset.cpus.effective")) {
        s["cpuset"]["cpus"] = parse_list(cgroupfs::read(dir, "cpuset.cpus.effective"));
        s["cpuset"]["mems"] = parse_list(cgroupfs::read(dir, "cpuset.mems.effective"));
    }
    s["memory"] = v2_memory(dir);
    s["pids"] = cgroupfs::has(dir, "pids.current") ? pids_stats(&dir) : json::object();
    s["blkio"] = v2_io(dir);
    s["hugetlb"] = v2_hugetlb(dir);
    return s;
}

}  // namespace sandlock::cgroups
