#include "runtime/container/state.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "runtime/cgroups/manager.hpp"
#include "runtime/linux/namespaces.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "spec/config.hpp"

namespace sandlock::container {

const char* status_name(Status s) {
    switch (s) {
        case Status::Creating: return "creating";
        case Status::Created: return "created";
        case Status::Running: return "running";
        case Status::Paused: return "paused";
        case Status::Stopped: return "stopped";
    }
    return "unknown";
}

// Not the host's root (podman rootless runs us as root of its user namespace, with no
// --root): the user's own runtime dir, as crun and runc do.
std::string default_root() {
    if (!os::rootless()) return "/run/sandlock-runc";
    const char* xdg = ::getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg) return std::string(xdg) + "/sandlock-runc";
    return "/tmp/sandlock-runc-" + std::to_string(::geteuid());
}

void validate_id(const std::string& id) {
    if (id.empty()) throw Error("container id cannot be empty");
    auto allowed = [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '+' || c == '.' || c == '-';
    };
    if (id == "." || id == ".." || !std::all_of(id.begin(), id.end(), allowed) || id.size() > 1024)
        throw Error("invalid id format: \"" + id + "\"");
}

std::string StateStore::dir(const std::string& id) const { return fs::join(root_, id); }
std::string StateStore::config_path(const std::string& id) const {
    return fs::join(dir(id), "config.json");
}
std::string StateStore::fifo_path(const std::string& id) const {
    return fs::join(dir(id), "exec.fifo");
}

bool StateStore::exists(const std::string& id) const {
    return fs::exists(fs::join(dir(id), "state.json"));
}

void StateStore::create_dir(const std::string& id) const {
    fs::mkdir_p(root_, 0700);
    if (::mkdir(dir(id).c_str(), 0711) != 0) {
        if (errno == EEXIST) throw Error("container with id exists: " + id);
        throw_errno("mkdir " + dir(id));
    }
}

void StateStore::remove_dir(const std::string& id) const { fs::remove_all(dir(id)); }

void StateStore::save(const ContainerState& st) const {
    nlohmann::json j;
    j["id"] = st.id;
    j["pid"] = st.pid;
    j["init_start_time"] = st.init_start_time;
    j["bundle"] = st.bundle;
    j["rootfs"] = st.rootfs;
    j["created"] = st.created;
    j["owner"] = st.owner;
    j["annotations"] = st.annotations;
    j["cgroup"] = st.cgroup;
    j["shim"] = st.shim;
    if (!st.shim_cgroup.is_null()) j["shim_cgroup"] = st.shim_cgroup;
    if (!st.egress_enforcement.empty()) j["egress_enforcement"] = st.egress_enforcement;
    if (st.kernel_tables) j["kernel_tables"] = *st.kernel_tables;
    if (st.shim_process.known())
        j["shim_process"] = {{"pid", st.shim_process.pid}, {"start_time", st.shim_process.start_time}};
    fs::write_file_atomic(fs::join(dir(st.id), "state.json"), j.dump(), 0600);
}

ContainerState StateStore::load(const std::string& id) const {
    validate_id(id);
    if (!exists(id)) throw Error("container \"" + id + "\" does not exist");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(fs::read_file(fs::join(dir(id), "state.json")));
        ContainerState st;
        st.id = j.at("id").get<std::string>();
        st.pid = j.at("pid").get<pid_t>();
        st.init_start_time = j.at("init_start_time").get<unsigned long long>();
        st.bundle = j.at("bundle").get<std::string>();
        st.rootfs = j.at("rootfs").get<std::string>();
        st.created = j.at("created").get<std::string>();
        st.owner = j.at("owner").get<uid_t>();
        st.annotations = j.value("annotations", std::map<std::string, std::string>{});
        st.cgroup = j.value("cgroup", nlohmann::json());
        st.shim = j.value("shim", false);
        st.shim_cgroup = j.value("shim_cgroup", nlohmann::json());
        st.egress_enforcement = j.value("egress_enforcement", "");
        if (const auto it = j.find("kernel_tables"); it != j.end()) st.kernel_tables = it->get<std::string>();
        if (const auto it = j.find("shim_process"); it != j.end()) {
            st.shim_process.pid = it->at("pid").get<pid_t>();
            st.shim_process.start_time = it->at("start_time").get<unsigned long long>();
        }
        return st;
    } catch (const nlohmann::json::exception& e) {
        throw Error("container \"" + id + "\": corrupt state.json: " + e.what());
    }
}

std::vector<std::string> StateStore::list_ids() const {
    std::vector<std::string> ids;
    DIR* d = ::opendir(root_.c_str());
    if (!d) return ids;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (exists(name)) ids.push_back(name);
    }
    ::closedir(d);
    std::sort(ids.begin(), ids.end());
    return ids;
}

bool init_alive(const ContainerState& st) {
    if (st.pid <= 0 || !proc::running(st.pid)) return false;
    const auto start = proc::start_time(st.pid);
    return start && *start == st.init_start_time;
}

static bool cgroup_frozen(const ContainerState& st) {
    return !st.cgroup.is_null() && cgroups::is_frozen(st.cgroup);
}

Status current_status(const StateStore& store, const ContainerState& st) {
    if (!init_alive(st)) return Status::Stopped;
    if (fs::exists(store.fifo_path(st.id))) return Status::Created;
    if (cgroup_frozen(st)) return Status::Paused;
    return Status::Running;
}

nlohmann::ordered_json oci_state(const ContainerState& st, Status status) {
    nlohmann::ordered_json j;
    j["ociVersion"] = spec::kOciVersion;
    j["id"] = st.id;
    j["pid"] = status == Status::Stopped ? 0 : st.pid;
    j["status"] = status_name(status);
    j["bundle"] = st.bundle;
    j["rootfs"] = st.rootfs;
    j["created"] = st.created;
    j["owner"] = st.owner == 0 ? "" : std::to_string(st.owner);
    if (!st.annotations.empty()) j["annotations"] = st.annotations;
    return j;
}

}  // namespace sandlock::container
