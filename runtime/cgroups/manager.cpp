// make_manager (which hierarchies a container's cgroup lives in, and where)
// and open_manager (the same, read back from state.json).
#include "runtime/cgroups/manager.hpp"

#include "runtime/cgroups/null_manager.hpp"
#include "runtime/cgroups/systemd.hpp"
#include "runtime/cgroups/v1.hpp"
#include "runtime/cgroups/v2.hpp"
#include "runtime/util/error.hpp"

namespace sandlock::cgroups {

namespace {

// The kinds a state record names: the null manager records nothing (to_state() is null).
constexpr Kind kRecordedKinds[] = {Kind::V1, Kind::Hybrid, Kind::V2};

std::string join_cgroup(const std::string& base, const std::string& rel) {
    if (base.empty() || base == "/") return "/" + rel;
    return base + "/" + rel;
}

std::string parent_cgroup(const std::string& cgroup) {
    size_t slash = cgroup.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : cgroup.substr(0, slash);
}

// The container's cgroup inside one hierarchy. A relative path goes below
// this process's cgroup there (or, when below_parent, below its parent).
std::string place(const Mount& mount, const std::string& path, bool below_parent) {
    if (path.front() == '/') return path;
    if (mount.own_path.empty())
        throw Error("cgroups: cannot place relative cgroupsPath \"" + path +
                    "\": this process's cgroup under " + mount.mount_point + " is unknown");
    std::string base = below_parent ? parent_cgroup(mount.own_path) : mount.own_path;
    return clean_cgroup_path(join_cgroup(base, path));
}

Target target_for(const Mount& mount, const std::string& path, bool unified, bool below_parent,
                  const std::string& root_prefix) {
    std::string cgroup = place(mount, path, below_parent);
    if (cgroup == "/") throw Error("cgroups: refusing to use the root cgroup for a container");
    std::string mount_point = mount.mount_point == "/" ? "" : mount.mount_point;
    return Target{root_prefix + mount_point, cgroup, mount.controllers, unified};
}

// --- open_manager: state.json is ours, but check it before rmdir-ing anything.

[[noreturn]] void bad_state(const std::string& why) {
    throw Error("cgroups: invalid cgroup state: " + why);
}

std::string get_string(const nlohmann::json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_string())
        bad_state(std::string("missing string \"") + key + "\"");
    return j[key].get<std::string>();
}

Target parse_target(const nlohmann::json& j) {
    Target t;
    t.mount = get_string(j, "mount");
    t.cgroup = get_string(j, "cgroup");
    if (t.mount.empty() || t.mount.front() != '/') bad_state("mount \"" + t.mount + "\" is not absolute");
    if (t.cgroup.empty() || t.cgroup.front() != '/' || clean_cgroup_path(t.cgroup) != t.cgroup ||
        t.cgroup == "/")
        bad_state("cgroup \"" + t.cgroup + "\" is not a clean absolute path");
    if (j.contains("controllers")) {
        if (!j["controllers"].is_array()) bad_state("\"controllers\" is not an array");
        for (const auto& c : j["controllers"]) {
            if (!c.is_string()) bad_state("a controller is not a string");
            t.controllers.push_back(c.get<std::string>());
        }
    }
    if (j.contains("unified")) {
        if (!j["unified"].is_boolean()) bad_state("\"unified\" is not a boolean");
        t.unified = j["unified"].get<bool>();
    }
    return t;
}

// A created directory must lie on the way from a target's mount point to
// its cgroup, so a tampered state cannot make destroy() remove anything else.
bool on_target_path(const std::string& dir, const std::vector<Target>& targets) {
    for (const auto& t : targets) {
        std::string leaf = t.dir();
        bool below_mount = dir.size() > t.mount.size() + 1 && dir.compare(0, t.mount.size(), t.mount) == 0 &&
                           dir[t.mount.size()] == '/';
        bool ancestor_of_leaf = leaf == dir || (leaf.size() > dir.size() &&
                                                leaf.compare(0, dir.size(), dir) == 0 && leaf[dir.size()] == '/');
        if (below_mount && ancestor_of_leaf && clean_cgroup_path(dir) == dir) return true;
    }
    return false;
}

Kind parse_kind(const std::string& name) {
    for (Kind kind : kRecordedKinds)
        if (name == kind_name(kind)) return kind;
    bad_state("unknown kind \"" + name + "\"");
}

}  // namespace

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::None: return "none";
        case Kind::V1: return "v1";
        case Kind::Hybrid: return "hybrid";
        case Kind::V2: return "v2";
    }
    return "unknown";
}

std::unique_ptr<Manager> make_null_manager() { return std::make_unique<NullManager>(); }

std::unique_ptr<Manager> make_manager(const Hierarchy& h, const std::string& resolved_path,
                                      const std::string& root_prefix) {
    std::string path = clean_cgroup_path(resolved_path);
    if (path.empty() || path == "." || path == "/")
        throw Error("cgroups: invalid cgroup path \"" + resolved_path + "\"");
    std::string prefix = root_prefix;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();

    if (h.mode == Mode::Unified) {
        if (!h.v2) throw Error("cgroups: no cgroup2 mount");
        // runc's v2 driver: a relative path goes below the parent of our own
        // cgroup, since our own one holds processes and cannot delegate.
        std::vector<Target> targets{target_for(*h.v2, path, true, true, prefix)};
        return std::make_unique<V2Manager>(std::move(targets), std::vector<std::string>{});
    }

    std::vector<Target> targets;
    for (const auto& mount : h.v1) targets.push_back(target_for(mount, path, false, false, prefix));
    bool hybrid = h.mode == Mode::Hybrid && h.v2.has_value();
    if (hybrid) targets.push_back(target_for(*h.v2, path, true, false, prefix));
    return std::make_unique<V1Manager>(std::move(targets), std::vector<std::string>{}, hybrid);
}

std::unique_ptr<Manager> open_manager(const nlohmann::json& state) {
    if (state.is_null()) return make_null_manager();
    const Kind kind = parse_kind(get_string(state, "kind"));
    if (!state.contains("targets") || !state["targets"].is_array() || state["targets"].empty())
        bad_state("\"targets\" is missing or empty");
    std::vector<Target> targets;
    for (const auto& t : state["targets"]) targets.push_back(parse_target(t));

    std::vector<std::string> created;
    if (state.contains("created")) {
        if (!state["created"].is_array()) bad_state("\"created\" is not an array");
        for (const auto& d : state["created"]) {
            if (!d.is_string()) bad_state("a created directory is not a string");
            std::string dir = d.get<std::string>();
            if (!on_target_path(dir, targets)) bad_state("created directory \"" + dir + "\" is outside the cgroup");
            created.push_back(dir);
        }
    }

    std::unique_ptr<Manager> fs;
    if (kind == Kind::V2)
        fs = std::make_unique<V2Manager>(std::move(targets), std::move(created));
    else
        fs = std::make_unique<V1Manager>(std::move(targets), std::move(created), kind == Kind::Hybrid);
    if (state.contains("systemd")) return open_systemd_manager(std::move(fs), state["systemd"]);
    return fs;
}

}  // namespace sandlock::cgroups
