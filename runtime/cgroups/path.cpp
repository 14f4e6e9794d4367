#include "runtime/cgroups/path.hpp"

#include <algorithm>
#include <vector>

#include "runtime/util/error.hpp"

namespace sandlock::cgroups {

namespace {

constexpr std::string_view kSliceSuffix = ".slice";

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t end = s.find(sep, start);
        out.push_back(s.substr(start, end == std::string::npos ? end : end - start));
        if (end == std::string::npos) return out;
        start = end + 1;
    }
}

[[noreturn]] void invalid(const std::string& cgroups_path, const std::string& why) {
    throw Error("invalid cgroupsPath \"" + cgroups_path + "\": " + why);
}

SystemdUnit parse_systemd_form(const std::string& cgroups_path) {
    auto parts = split(cgroups_path, ':');
    if (parts.size() != 3)
        invalid(cgroups_path, "expected \"slice:prefix:name\" for systemd cgroups");
    const std::string& slice = parts[0];
    const std::string& prefix = parts[1];
    const std::string& name = parts[2];
    if (name.empty()) invalid(cgroups_path, "the name part of \"slice:prefix:name\" is empty");
    if (name.find('/') != std::string::npos || name == "." || name == "..")
        invalid(cgroups_path, "invalid unit name \"" + name + "\"");
    if (prefix.find('/') != std::string::npos)
        invalid(cgroups_path, "invalid prefix \"" + prefix + "\"");

    SystemdUnit u;
    u.slice = slice.empty() ? "system.slice" : slice;  // runc 1.1: "" is system.slice
    try {
        u.parent_path = slice.empty() ? "/system.slice" : expand_slice(slice);
    } catch (const Error& e) {
        invalid(cgroups_path, e.what());
    }
    // runc: a name ending in .slice is the unit itself; otherwise a scope.
    u.unit = ends_with(name, kSliceSuffix) ? name : prefix + "-" + name + ".scope";
    return u;
}

}  // namespace

std::string clean_cgroup_path(const std::string& path) {
    if (path.empty()) return {};
    bool absolute = path.front() == '/';
    std::vector<std::string> parts;
    for (auto& part : split(path, '/')) {
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(part);
    }
    std::string out;
    for (auto& part : parts) out += (out.empty() && !absolute ? "" : "/") + part;
    if (out.empty()) return absolute ? "/" : ".";
    return out;
}

std::string expand_slice(const std::string& slice) {
    auto bad = [&] { return Error("invalid slice name \"" + slice + "\""); };
    if (slice == "-" || slice == "-.slice") return "/";  // the root slice
    if (slice.size() <= kSliceSuffix.size() || !ends_with(slice, kSliceSuffix) ||
        slice.find('/') != std::string::npos)
        throw bad();
    std::string base = slice.substr(0, slice.size() - kSliceSuffix.size());
    std::string path, prefix;
    for (auto& component : split(base, '-')) {
        if (component.empty()) throw bad();  // "a--b.slice", "-a.slice", "a-.slice"
        path += "/" + prefix + component + std::string(kSliceSuffix);
        prefix += component + "-";
    }
    return path;
}

bool is_systemd_form(const std::string& cgroups_path) {
    return !cgroups_path.empty() && cgroups_path.front() != '/' &&
           std::count(cgroups_path.begin(), cgroups_path.end(), ':') == 2;
}

std::string SystemdUnit::cgroup_path() const {
    return parent_path == "/" ? "/" + unit : parent_path + "/" + unit;
}

std::optional<SystemdUnit> systemd_unit(const std::string& cgroups_path,
                                        const std::string& container_id, bool systemd_flag) {
    if (!systemd_flag) return std::nullopt;
    if (cgroups_path.empty())
        return parse_systemd_form(std::string(":") + kDefaultScopePrefix + ":" + container_id);
    return parse_systemd_form(cgroups_path);
}

std::string resolve_cgroups_path(const std::string& cgroups_path, const std::string& container_id,
                                 bool systemd_flag) {
    if (auto unit = systemd_unit(cgroups_path, container_id, systemd_flag)) return unit->cgroup_path();
    if (is_systemd_form(cgroups_path)) return parse_systemd_form(cgroups_path).cgroup_path();

    // runc 1.1 fs driver: an empty path is the container id, relative to
    // the runtime's own cgroup.
    std::string cleaned = clean_cgroup_path(cgroups_path.empty() ? container_id : cgroups_path);
    if (cleaned.empty() || cleaned == ".")
        throw Error("invalid cgroupsPath \"" + cgroups_path + "\": it names no cgroup");
    if (cleaned == "/")
        throw Error("invalid cgroupsPath \"" + cgroups_path +
                    "\": refusing to use the root cgroup for a container");
    return cleaned;
}

}  // namespace sandlock::cgroups
