#include "runtime/cgroups/resources.hpp"

#include <algorithm>
#include <cctype>
#include <climits>

#include "runtime/util/error.hpp"
#include "spec/config.hpp"

namespace sandlock::cgroups {

namespace {

using spec::member_path;
using spec::throw_at;

// ---- small validators

bool is_cpu_list(const std::string& s) {
    // "0-3,5,7-8": digits, ',' and '-' in a sane order; the kernel checks the numbers.
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front())) ||
        !std::isdigit(static_cast<unsigned char>(s.back())))
        return false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (std::isdigit(static_cast<unsigned char>(c))) continue;
        if ((c != ',' && c != '-') || !std::isdigit(static_cast<unsigned char>(s[i - 1]))) return false;
    }
    return true;
}

std::optional<int64_t> limit_or_unlimited(const nlohmann::json& obj, const std::string& parent,
                                          const char* key, bool zero_is_unset) {
    auto v = spec::get_i64(obj, parent, key);
    if (!v) return v;
    if (*v == 0 && zero_is_unset) return std::nullopt;
    if (*v < -1 || *v == 0) throw_at(member_path(parent, key), "must be -1 or positive");
    return v;
}

template <typename T>
void check_range(const std::optional<T>& v, const std::string& path, T lo, T hi) {
    if (v && (*v < lo || *v > hi))
        throw_at(path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                           ", got " + std::to_string(*v));
}

// ---- one parser per section

MemoryResources parse_memory(const nlohmann::json& j, const std::string& path) {
    MemoryResources m;
    m.limit = limit_or_unlimited(j, path, "limit", true);
    m.reservation = limit_or_unlimited(j, path, "reservation", true);
    m.swap = limit_or_unlimited(j, path, "swap", true);
    m.kernel = limit_or_unlimited(j, path, "kernel", true);
    m.kernel_tcp = limit_or_unlimited(j, path, "kernelTCP", true);
    m.swappiness = spec::get_u64(j, path, "swappiness");
    check_range<uint64_t>(m.swappiness, member_path(path, "swappiness"), 0, 100);
    m.disable_oom_killer = spec::get_bool(j, path, "disableOOMKiller");
    m.use_hierarchy = spec::get_bool(j, path, "useHierarchy");
    m.check_before_update = spec::get_bool(j, path, "checkBeforeUpdate");
    if (m.limit && m.swap && *m.limit > 0 && *m.swap > 0 && *m.swap < *m.limit)
        throw_at(member_path(path, "swap"), "memory+swap limit " + std::to_string(*m.swap) +
                                                " must not be smaller than the memory limit " +
                                                std::to_string(*m.limit));
    return m;
}

CpuResources parse_cpu(const nlohmann::json& j, const std::string& path) {
    CpuResources c;
    c.shares = spec::get_u64(j, path, "shares");
    if (c.shares == 0u) c.shares.reset();
    check_range<uint64_t>(c.shares, member_path(path, "shares"), 2, 262144);
    c.quota = limit_or_unlimited(j, path, "quota", true);
    if (c.quota && *c.quota > 0 && *c.quota < 1000)
        throw_at(member_path(path, "quota"), "must be -1 or at least 1000 (microseconds)");
    c.burst = spec::get_u64(j, path, "burst");
    c.period = spec::get_u64(j, path, "period");
    if (c.period == 0u) c.period.reset();
    check_range<uint64_t>(c.period, member_path(path, "period"), 1000, 1000000);
    c.realtime_runtime = spec::get_i64(j, path, "realtimeRuntime");
    if (c.realtime_runtime && *c.realtime_runtime < -1)
        throw_at(member_path(path, "realtimeRuntime"), "must be -1 or non-negative");
    c.realtime_period = spec::get_u64(j, path, "realtimePeriod");
    c.cpus = spec::get_string(j, path, "cpus").value_or("");
    c.mems = spec::get_string(j, path, "mems").value_or("");
    if (!c.cpus.empty() && !is_cpu_list(c.cpus))
        throw_at(member_path(path, "cpus"), "invalid cpu list " + spec::json_quote(c.cpus));
    if (!c.mems.empty() && !is_cpu_list(c.mems))
        throw_at(member_path(path, "mems"), "invalid memory node list " + spec::json_quote(c.mems));
    c.idle = spec::get_i64(j, path, "idle");
    check_range<int64_t>(c.idle, member_path(path, "idle"), 0, 1);
    if (c.burst && c.quota && *c.quota > 0 && *c.burst > static_cast<uint64_t>(*c.quota))
        throw_at(member_path(path, "burst"), "must not exceed the quota");
    return c;
}

std::optional<uint16_t> get_weight(const nlohmann::json& j, const std::string& path, const char* key) {
    auto v = spec::get_u64(j, path, key);
    if (!v || *v == 0) return std::nullopt;  // 0: unset, as in runc
    check_range<uint64_t>(v, member_path(path, key), 10, 1000);
    return static_cast<uint16_t>(*v);
}

void parse_major_minor(const nlohmann::json& e, const std::string& path, int64_t& major, int64_t& minor) {
    auto ma = spec::get_i64(e, path, "major");
    auto mi = spec::get_i64(e, path, "minor");
    if (!ma) throw_at(member_path(path, "major"), "missing");
    if (!mi) throw_at(member_path(path, "minor"), "missing");
    if (*ma < 0) throw_at(member_path(path, "major"), "must not be negative");
    if (*mi < 0) throw_at(member_path(path, "minor"), "must not be negative");
    major = *ma;
    minor = *mi;
}

std::vector<BlockIoThrottle> parse_throttles(const nlohmann::json& j, const std::string& path,
                                             const char* key) {
    std::vector<BlockIoThrottle> out;
    const nlohmann::json* arr = spec::get_array(j, path, key);
    if (!arr) return out;
    std::string list_path = member_path(path, key);
    for (size_t i = 0; i < arr->size(); ++i) {
        std::string p = spec::element_path(list_path, i);
        const auto& e = spec::as_object((*arr)[i], p);
        BlockIoThrottle t;
        parse_major_minor(e, p, t.major, t.minor);
        auto rate = spec::get_u64(e, p, "rate");
        if (!rate) throw_at(member_path(p, "rate"), "missing");
        t.rate = *rate;
        out.push_back(t);
    }
    return out;
}

BlockIoResources parse_block_io(const nlohmann::json& j, const std::string& path) {
    BlockIoResources b;
    b.weight = get_weight(j, path, "weight");
    b.leaf_weight = get_weight(j, path, "leafWeight");
    if (const nlohmann::json* arr = spec::get_array(j, path, "weightDevice")) {
        std::string list_path = member_path(path, "weightDevice");
        for (size_t i = 0; i < arr->size(); ++i) {
            std::string p = spec::element_path(list_path, i);
            const auto& e = spec::as_object((*arr)[i], p);
            BlockIoDeviceWeight w;
            parse_major_minor(e, p, w.major, w.minor);
            w.weight = get_weight(e, p, "weight");
            w.leaf_weight = get_weight(e, p, "leafWeight");
            b.weight_device.push_back(w);
        }
    }
    b.throttle_read_bps = parse_throttles(j, path, "throttleReadBpsDevice");
    b.throttle_write_bps = parse_throttles(j, path, "throttleWriteBpsDevice");
    b.throttle_read_iops = parse_throttles(j, path, "throttleReadIOPSDevice");
    b.throttle_write_iops = parse_throttles(j, path, "throttleWriteIOPSDevice");
    return b;
}

// "2MB", "1GB", "64KB": a power of two with a KB/MB/GB suffix, as the
// hugetlb.<size>.* file names spell it.
bool is_page_size(const std::string& s) {
    if (s.size() < 3) return false;
    std::string unit = s.substr(s.size() - 2);
    std::string num = s.substr(0, s.size() - 2);
    if (unit != "KB" && unit != "MB" && unit != "GB") return false;
    if (num.empty() || num.size() > 6 || !std::all_of(num.begin(), num.end(), ::isdigit)) return false;
    unsigned long n = std::stoul(num);
    return n > 0 && (n & (n - 1)) == 0;
}

std::vector<HugepageLimit> parse_hugepages(const nlohmann::json& arr, const std::string& path) {
    std::vector<HugepageLimit> out;
    for (size_t i = 0; i < arr.size(); ++i) {
        std::string p = spec::element_path(path, i);
        const auto& e = spec::as_object(arr[i], p);
        HugepageLimit h;
        h.page_size = spec::require_string(e, p, "pageSize");
        if (!is_page_size(h.page_size))
            throw_at(member_path(p, "pageSize"), "invalid page size " + spec::json_quote(h.page_size) +
                                                     " (expected e.g. \"2MB\" or \"1GB\")");
        auto limit = spec::get_u64(e, p, "limit");
        if (!limit) throw_at(member_path(p, "limit"), "missing");
        h.limit = *limit;
        out.push_back(h);
    }
    return out;
}

bool is_interface_name(const std::string& s) {
    return !s.empty() && s.size() <= 15 && s.find_first_of("/ \t\n") == std::string::npos;
}

NetworkResources parse_network(const nlohmann::json& j, const std::string& path) {
    NetworkResources n;
    n.class_id = spec::get_u32(j, path, "classID");
    if (const nlohmann::json* arr = spec::get_array(j, path, "priorities")) {
        std::string list_path = member_path(path, "priorities");
        for (size_t i = 0; i < arr->size(); ++i) {
            std::string p = spec::element_path(list_path, i);
            const auto& e = spec::as_object((*arr)[i], p);
            std::string name = spec::require_string(e, p, "name");
            if (!is_interface_name(name))
                throw_at(member_path(p, "name"), "invalid interface name " + spec::json_quote(name));
            auto prio = spec::get_u32(e, p, "priority");
            if (!prio) throw_at(member_path(p, "priority"), "missing");
            n.priorities.emplace_back(name, *prio);
        }
    }
    return n;
}

std::map<std::string, RdmaLimit> parse_rdma(const nlohmann::json& obj, const std::string& path) {
    std::map<std::string, RdmaLimit> out;
    for (const auto& [name, value] : obj.items()) {
        std::string p = spec::entry_path(path, name);
        if (name.empty() || name.find_first_of(" \t\n/=") != std::string::npos)
            throw_at(p, "invalid RDMA device name");
        const auto& e = spec::as_object(value, p);
        RdmaLimit l;
        l.hca_handles = spec::get_u32(e, p, "hcaHandles");
        l.hca_objects = spec::get_u32(e, p, "hcaObjects");
        out[name] = l;
    }
    return out;
}

std::map<std::string, std::string> parse_unified(const nlohmann::json& obj, const std::string& path) {
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : obj.items()) {
        std::string p = spec::entry_path(path, key);
        std::string v = spec::as_string(value, p);
        if (!is_known_unified_key(key)) throw_at(p, "unknown cgroup v2 resource");
        if (v.find('\n') != std::string::npos && v.find('\n') != v.size() - 1)
            throw_at(p, "value must be a single line");
        out[key] = v;
    }
    return out;
}

DeviceRule parse_device_rule(const nlohmann::json& e, const std::string& p) {
    DeviceRule r;
    auto allow = spec::get_bool(e, p, "allow");
    if (!allow) throw_at(member_path(p, "allow"), "missing");
    r.allow = *allow;
    std::string type = spec::get_string(e, p, "type").value_or("a");
    if (type != "a" && type != "b" && type != "c")
        throw_at(member_path(p, "type"), "must be \"a\", \"b\" or \"c\", got " + spec::json_quote(type));
    r.type = type[0];
    auto number = [&](const char* key) {
        auto v = spec::get_i64(e, p, key);
        if (v && *v < -1) throw_at(member_path(p, key), "must be -1 (any) or non-negative");
        return v.value_or(-1);  // absent: any
    };
    r.major = number("major");
    r.minor = number("minor");
    std::string access = spec::get_string(e, p, "access").value_or("");
    if (access.empty()) access = "rwm";  // runc: no access means all three
    for (char c : access)
        if (c != 'r' && c != 'w' && c != 'm')
            throw_at(member_path(p, "access"), "must be letters of \"rwm\", got " + spec::json_quote(access));
    r.access.clear();
    for (char c : std::string("rwm"))
        if (access.find(c) != std::string::npos) r.access += c;
    return r;
}

}  // namespace

Resources parse_resources(const nlohmann::json& j, const std::string& path) {
    Resources r;
    if (j.is_null()) return r;
    spec::as_object(j, path);
    // Unknown members are ignored, as Go's decoder (runc) does.
    if (const auto* m = spec::get_object(j, path, "memory")) r.memory = parse_memory(*m, member_path(path, "memory"));
    if (const auto* c = spec::get_object(j, path, "cpu")) r.cpu = parse_cpu(*c, member_path(path, "cpu"));
    if (const auto* p = spec::get_object(j, path, "pids")) {
        std::string pp = member_path(path, "pids");
        auto limit = spec::get_i64(*p, pp, "limit");
        // runc: 0 is unset; the runtime spec: -1 (or any negative, runc says) is unlimited.
        if (limit && *limit < -1) throw_at(member_path(pp, "limit"), "must be -1 or positive");
        if (limit && *limit != 0) r.pids_limit = limit;
    }
    if (const auto* b = spec::get_object(j, path, "blockIO"))
        r.block_io = parse_block_io(*b, member_path(path, "blockIO"));
    if (const auto* h = spec::get_array(j, path, "hugepageLimits"))
        r.hugepage_limits = parse_hugepages(*h, member_path(path, "hugepageLimits"));
    if (const auto* n = spec::get_object(j, path, "network"))
        r.network = parse_network(*n, member_path(path, "network"));
    if (const auto* rd = spec::get_object(j, path, "rdma")) r.rdma = parse_rdma(*rd, member_path(path, "rdma"));
    if (const auto* u = spec::get_object(j, path, "unified")) r.unified = parse_unified(*u, member_path(path, "unified"));
    if (const auto* d = spec::get_array(j, path, "devices")) {
        std::string dp = member_path(path, "devices");
        r.devices.emplace();
        for (size_t i = 0; i < d->size(); ++i) {
            std::string p = spec::element_path(dp, i);
            r.devices->push_back(parse_device_rule(spec::as_object((*d)[i], p), p));
        }
    }
    return r;
}

void add_default_devices(Resources& r, const std::vector<spec::Device>& config_devices) {
    if (!r.devices) return;
    auto allow = [&](char type, int64_t major, int64_t minor, const char* access) {
        r.devices->push_back(DeviceRule{true, type, major, minor, access});
    };
    allow('c', -1, -1, "m");  // mknod of any device; opening still needs a rule
    allow('b', -1, -1, "m");
    allow('c', 1, 3, "rwm");    // /dev/null
    allow('c', 1, 5, "rwm");    // /dev/zero
    allow('c', 1, 7, "rwm");    // /dev/full
    allow('c', 1, 8, "rwm");    // /dev/random
    allow('c', 1, 9, "rwm");    // /dev/urandom
    allow('c', 5, 0, "rwm");    // /dev/tty
    allow('c', 5, 1, "rwm");    // /dev/console
    allow('c', 5, 2, "rwm");    // /dev/ptmx
    allow('c', 136, -1, "rwm"); // /dev/pts/*
    for (const auto& d : config_devices) {
        if (d.type != "c" && d.type != "b" && d.type != "u") continue;  // fifos need no rule
        allow(d.type == "b" ? 'b' : 'c', d.major, d.minor, "rwm");
    }
}

std::string device_rule_text(const DeviceRule& rule) {
    auto num = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
    return std::string(1, rule.type) + " " + num(rule.major) + ":" + num(rule.minor) + " " + rule.access;
}

bool is_known_unified_key(const std::string& key) {
    static const char* const files[] = {
        "cpu.weight", "cpu.weight.nice", "cpu.max", "cpu.max.burst", "cpu.idle", "cpu.uclamp.min",
        "cpu.uclamp.max", "cpuset.cpus", "cpuset.mems", "cpuset.cpus.partition",
        "cpuset.cpus.exclusive", "io.weight", "io.bfq.weight", "io.max", "io.latency", "io.prio.class",
        "memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.high", "memory.swap.max",
        "memory.zswap.max", "memory.zswap.writeback", "memory.oom.group", "memory.swap.peak",
        "pids.max", "rdma.max", "misc.max"};
    for (const char* f : files)
        if (key == f) return true;
    // hugetlb.<size>.max and hugetlb.<size>.rsvd.max
    const std::string prefix = "hugetlb.";
    if (key.rfind(prefix, 0) != 0) return false;
    std::string rest = key.substr(prefix.size());
    for (const std::string suffix : {".rsvd.max", ".max"}) {
        if (rest.size() > suffix.size() && rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) == 0)
            return is_page_size(rest.substr(0, rest.size() - suffix.size()));
    }
    return false;
}

uint64_t cpu_shares_to_weight(uint64_t shares) {
    if (shares < 2) shares = 2;
    if (shares > 262144) shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
    if (weight < 10) weight = 10;
    if (weight > 1000) weight = 1000;
    return 1 + ((weight - 10) * 9999) / 990;
}

namespace {

void merge_object(nlohmann::json& into, const nlohmann::json& delta) {
    for (const auto& [key, value] : delta.items()) {
        if (value.is_null()) continue;
        if (value.is_object() && into.contains(key) && into[key].is_object())
            merge_object(into[key], value);
        else
            into[key] = value;
    }
}

}  // namespace

void merge_resources_update(nlohmann::json& saved, const nlohmann::json& delta) {
    if (!delta.is_object()) throw Error("update: the resources must be a JSON object");
    if (saved.is_null()) saved = nlohmann::json::object();
    if (!saved.is_object()) throw Error("update: the saved linux.resources is not a JSON object");
    nlohmann::json changes = delta;
    changes.erase("devices");
    merge_object(saved, changes);
}

void complete_v2_memory_update(Resources& update, const Resources& current) {
    if (!update.memory || !current.memory) return;
    MemoryResources& m = *update.memory;
    if (!m.limit && !m.swap) return;
    if (!m.limit) m.limit = current.memory->limit;
    if (!m.swap) m.swap = current.memory->swap;
}

std::string limit_text(int64_t value) { return value < 0 ? "max" : std::to_string(value); }

std::string v2_swap_max(int64_t swap, std::optional<int64_t> limit) {
    if (swap < 0) return "max";
    if (!limit || *limit < 0)
        throw Error("memory.swap: a memory+swap limit needs a memory limit on cgroup v2 "
                    "(memory.swap.max = swap - limit)");
    if (swap < *limit)
        throw Error("memory.swap: memory+swap limit " + std::to_string(swap) +
                    " is smaller than the memory limit " + std::to_string(*limit));
    return std::to_string(swap - *limit);
}

std::string v2_cpu_max(std::optional<int64_t> quota, std::optional<uint64_t> period) {
    std::string q = quota && *quota > 0 ? std::to_string(*quota) : "max";
    return q + " " + std::to_string(period.value_or(100000));
}

int64_t parse_memory_size(const std::string& text) {
    auto bad = [&]() -> Error { return Error("invalid value for memory: " + spec::json_quote(text)); };
    if (text == "-1") return -1;
    size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == 0 || i > 18) throw bad();
    int64_t n = std::stoll(text.substr(0, i));
    std::string unit;
    for (char c : text.substr(i)) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // "k", "kb", "kib", "k b"... runc (go-units RAMInBytes) accepts k/m/g/t/p with optional b/ib.
    if (!unit.empty() && unit.back() == 'b') unit.pop_back();
    if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
    int shift = 0;
    if (unit.empty()) shift = 0;
    else if (unit == "k") shift = 10;
    else if (unit == "m") shift = 20;
    else if (unit == "g") shift = 30;
    else if (unit == "t") shift = 40;
    else if (unit == "p") shift = 50;
    else throw bad();
    if (shift && n > (INT64_MAX >> shift)) throw bad();
    return n << shift;
}

}  // namespace sandlock::cgroups
