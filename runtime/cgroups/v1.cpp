#include "runtime/cgroups/v1.hpp"

#include <sys/stat.h>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::cgroups {

namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\n");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

std::string parent_dir(const std::string& dir) { return dir.substr(0, dir.rfind('/')); }

// A new v1 cpuset cgroup starts with empty cpus and mems, and the kernel
// refuses to add a task to it (ENOSPC): copy the parent's values down.
void inherit_cpuset(const std::string& dir) {
    for (const char* key : {"cpus", "mems"}) {
        std::string name = std::string("cpuset.") + key;
        if (!fs::exists(dir + "/" + name)) name = key;  // mounted with noprefix
        std::string file = dir + "/" + name;
        if (!fs::exists(file) || !trim(fs::read_file(file)).empty()) continue;
        std::string parent_value = trim(fs::read_file(parent_dir(dir) + "/" + name));
        if (!parent_value.empty()) fs::write_file(file, parent_value);
    }
}

}  // namespace

V1Manager::V1Manager(std::vector<Target> targets, std::vector<std::string> created, bool hybrid)
    : FsManager(std::move(targets), std::move(created)), hybrid_(hybrid) {}

void V1Manager::create() {
    for (const auto& t : targets())
        if (!t.unified && t.has("cpuset")) ::mkdir((t.mount + "/" + kWarmCpusetCgroup).c_str(), 0755);
    FsManager::create();
}

void V1Manager::prepare_dir(const Target& target, const std::string& dir, bool, bool) {
    if (!target.unified && target.has("cpuset")) inherit_cpuset(dir);
}

void V1Manager::apply(const Resources& r) { apply_v1_resources(r, dirs()); }

namespace {

std::string freezer_dir(const std::map<std::string, std::string>& dirs) {
    auto it = dirs.find("freezer");
    if (it == dirs.end()) throw Error("cgroups: the v1 freezer controller is not mounted: cannot pause");
    return it->second;
}

}  // namespace

void V1Manager::freeze() { v1_set_frozen(freezer_dir(dirs()), true); }

void V1Manager::thaw() { v1_set_frozen(freezer_dir(dirs()), false); }

bool V1Manager::frozen() const {
    auto d = dirs();
    return d.count("freezer") && v1_is_frozen(d["freezer"]);
}

nlohmann::json V1Manager::stats() const { return v1_stats(dirs()); }

const Target& V1Manager::authoritative() const {
    for (const auto& t : targets())
        if (!t.unified && t.has("devices")) return t;
    for (const auto& t : targets())
        if (t.unified) return t;
    return targets().front();
}

}  // namespace sandlock::cgroups
