#include "runtime/cgroups/v2.hpp"

#include <cerrno>
#include <sstream>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::cgroups {

std::vector<std::string> controllers_to_enable(const std::string& available) {
    static const char* const wanted[] = {"cpu", "cpuset", "io", "memory", "pids"};
    std::vector<std::string> offered, out;
    std::istringstream in(available);
    for (std::string word; in >> word;) offered.push_back(word);
    for (const char* w : wanted)
        for (const auto& o : offered)
            if (o == w) out.push_back(o);
    return out;
}

V2Manager::V2Manager(std::vector<Target> targets, std::vector<std::string> created)
    : FsManager(std::move(targets), std::move(created)) {
    if (this->targets().size() != 1 || !this->targets().front().unified)
        throw Error("cgroups: a v2 manager needs exactly one cgroup2 directory");
}

void V2Manager::prepare_dir(const Target&, const std::string& dir, bool created, bool leaf) {
    // Only parents we created: an existing parent may hold processes (then
    // the write fails anyway) or belong to someone else's policy.
    if (!created || leaf) return;
    std::string available;
    try {
        available = fs::read_file(dir + "/cgroup.controllers");
    } catch (const Error&) {
        return;
    }
    // One at a time, so one refused controller does not block the others;
    // a controller we cannot enable is reported later by whoever needs it.
    for (const auto& controller : controllers_to_enable(available)) {
        try {
            fs::write_file(dir + "/cgroup.subtree_control", "+" + controller);
        } catch (const Error&) {
        }
    }
}

void V2Manager::apply(const Resources& r) { apply_v2_resources(r, targets().front().dir()); }

void V2Manager::freeze() { v2_set_frozen(targets().front().dir(), true); }

void V2Manager::thaw() { v2_set_frozen(targets().front().dir(), false); }

bool V2Manager::frozen() const { return v2_is_frozen(targets().front().dir()); }

nlohmann::json V2Manager::stats() const { return v2_stats(targets().front().dir()); }

std::string V2Manager::join_hint(int err) const {
    if (err == EBUSY || err == EOPNOTSUPP)
        return " (cgroup v2 allows processes only in leaf cgroups: is cgroup.subtree_control "
               "of this cgroup non-empty?)";
    return {};
}

}  // namespace sandlock::cgroups
