#include "runtime/container/shim_cgroup.hpp"

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "runtime/cgroups/systemd.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::container {

namespace {

constexpr std::int64_t kMinShimMemory = std::int64_t{16} << 20;
constexpr std::int64_t kMinShimPids = 16;
constexpr const char* kShimSuffix = ":shim";

[[noreturn]] void bad_value(const char* var, std::string_view value, const std::string& why) {
    throw Error(std::string(var) + "=" + std::string(value) + ": " + why);
}

// "max" (-1), or digits with an optional K/M/G (binary) suffix when suffixes.
std::int64_t parse_limit(const char* var, const char* text, bool suffixes, std::int64_t minimum,
                         const char* unit) {
    const std::string_view value(text);
    if (value == "max") return -1;
    std::string_view digits = value;
    int shift = 0;
    if (suffixes && !digits.empty()) {
        switch (digits.back()) {
            case 'k': case 'K': shift = 10; break;
            case 'm': case 'M': shift = 20; break;
            case 'g': case 'G': shift = 30; break;
            default: break;
        }
        if (shift != 0) digits.remove_suffix(1);
    }
    if (digits.empty() || digits.size() > 15 || digits.find_first_not_of("0123456789") != std::string_view::npos)
        bad_value(var, value, suffixes ? "not a size (bytes, or with a K, M or G suffix, or \"max\")"
                                       : "not a number (or \"max\")");
    const std::int64_t n = std::strtoll(std::string(digits).c_str(), nullptr, 10);
    if (n > (std::int64_t{1} << 40) >> shift) bad_value(var, value, "too large");
    const std::int64_t v = n << shift;
    if (v < minimum)
        bad_value(var, value, "below the " + std::to_string(suffixes ? minimum >> 20 : minimum) + unit +
                                  " the egress shim needs to start");
    return v;
}

bool is_set(const char* v) { return v && *v; }

std::optional<std::string> offered_dir(const std::map<std::string, std::string>& dirs, const char* controller,
                                       const char* v1_file, const char* v2_file) {
    if (const auto it = dirs.find(controller); it != dirs.end()) {
        if (fs::exists(it->second + "/" + v1_file)) return it->second;
    } else if (const auto v2 = dirs.find(""); v2 != dirs.end()) {
        if (fs::exists(v2->second + "/" + v2_file)) return v2->second;
    }
    return std::nullopt;
}

}  // namespace

ShimLimits parse_shim_limits(const char* memory, const char* pids) {
    ShimLimits limits;
    if (is_set(memory)) limits.memory = parse_limit(kShimMemoryMaxEnv, memory, true, kMinShimMemory, " MiB");
    if (is_set(pids)) limits.pids = parse_limit(kShimPidsMaxEnv, pids, false, kMinShimPids, " tasks");
    return limits;
}

ShimLimits shim_limits_from_env() {
    return parse_shim_limits(std::getenv(kShimMemoryMaxEnv), std::getenv(kShimPidsMaxEnv));
}

std::string shim_cgroup_path(const std::string& container_path) {
    std::string path = container_path;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path + kShimSuffix;
}

cgroups::Hierarchy shim_hierarchy(const cgroups::Hierarchy& host) {
    if (host.mode == cgroups::Mode::Unified) return host;
    cgroups::Hierarchy h;
    h.mode = cgroups::Mode::Legacy;
    for (const auto& m : host.v1)
        if (m.has("memory") || m.has("pids")) h.v1.push_back(m);
    if (h.v1.empty())
        throw Error("egress shim: neither the memory nor the pids cgroup controller is mounted: "
                    "the shim could not be bounded");
    return h;
}

std::unique_ptr<cgroups::Manager> make_shim_cgroup(const cgroups::Hierarchy& host,
                                                   const std::string& container_path,
                                                   const std::optional<cgroups::SystemdUnit>& container_unit,
                                                   const ShimLimits& limits) {
    const cgroups::Hierarchy h = shim_hierarchy(host);
    if (!container_unit) return cgroups::make_manager(h, shim_cgroup_path(container_path));
    cgroups::SystemdUnit unit = *container_unit;
    std::string_view stem = unit.unit;
    for (std::string_view type : {std::string_view(".scope"), std::string_view(".slice")})
        if (stem.ends_with(type)) stem.remove_suffix(type.size());
    unit.unit = std::string(stem) + kShimSuffix + ".scope";
    auto fs = cgroups::make_manager(h, unit.cgroup_path());
    cgroups::Resources r;
    r.pids_limit = limits.pids;
    r.memory.emplace().limit = limits.memory;
    return cgroups::make_systemd_manager(std::move(fs), unit,
                                         cgroups::systemd_resource_properties(r, h.mode == cgroups::Mode::Unified));
}

void refuse_existing_shim_cgroup(const cgroups::Manager& cgroup) {
    for (const auto& [controller, dir] : cgroup.dirs())
        if (fs::exists(dir)) throw Error("egress shim: its cgroup " + dir + " exists already (another container's?)");
}

void place_shim(cgroups::Manager& cgroup, pid_t pid, const ShimLimits& limits) {
    cgroup.create();
    cgroup.add_process(pid);
    const auto dirs = cgroup.dirs();
    cgroups::Resources r;
    if (offered_dir(dirs, "memory", "memory.limit_in_bytes", "memory.max"))
        r.memory.emplace().limit = limits.memory;
    else
        log::warn("egress shim: no memory controller for its cgroup " + cgroup.path() + ": its memory is not capped");
    if (offered_dir(dirs, "pids", "pids.max", "pids.max"))
        r.pids_limit = limits.pids;
    else
        log::warn("egress shim: no pids controller for its cgroup " + cgroup.path() + ": its threads are not capped");
    cgroup.apply(r);
}

}  // namespace sandlock::container
