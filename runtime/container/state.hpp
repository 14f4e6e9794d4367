// A container's record on disk: <root>/<id>/state.json plus its config.
//
// state.json is our own superset of the OCI state (the OCI fields plus what
// later commands need: init's start time to detect pid reuse, the cgroup to
// remove, the hooks to run at delete). oci_state() renders the OCI view.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/util/process.hpp"

namespace sandlock::container {

enum class Status { Creating, Created, Running, Paused, Stopped };
const char* status_name(Status s);

std::string default_root();
// runc's id rules: letters, digits, '_', '+', '-', '.', not "." or "..".
void validate_id(const std::string& id);

struct ContainerState {
    std::string id;
    pid_t pid = 0;
    unsigned long long init_start_time = 0;  // /proc/PID/stat field 22
    std::string bundle;
    std::string rootfs;
    std::string created;  // RFC 3339
    uid_t owner = 0;
    std::map<std::string, std::string> annotations;
    nlohmann::json cgroup;  // the cgroup manager's own record
    bool shim = false;
    // The egress shim, named so that `delete` never signals a process that reused its pid.
    proc::Identity shim_process;
    nlohmann::json shim_cgroup;  // the shim's own cgroup (shim_cgroup.hpp), its manager's record
    std::string egress_enforcement;  // "kernel" or "supervisor" under a policy, else ""
    // Under a policy, the pinned tables holding the container's entries (egress::kernel_tables();
    // "" when there are none: supervisor mode, or no bpffs); nullopt without a policy and in a
    // state written by an older build.
    std::optional<std::string> kernel_tables;
};

class StateStore {
public:
    explicit StateStore(std::string root) : root_(std::move(root)) {}
    const std::string& root() const { return root_; }
    std::string dir(const std::string& id) const;
    std::string config_path(const std::string& id) const;
    std::string fifo_path(const std::string& id) const;

    bool exists(const std::string& id) const;
    // Creates <root>/<id>; throws `container with id exists: ID` if taken.
    void create_dir(const std::string& id) const;
    void remove_dir(const std::string& id) const;
    void save(const ContainerState& st) const;
    // Throws `container "ID" does not exist`.
    ContainerState load(const std::string& id) const;
    std::vector<std::string> list_ids() const;

private:
    std::string root_;
};

// True if pid is still the process recorded (same start time) and not a zombie.
bool init_alive(const ContainerState& st);
Status current_status(const StateStore& store, const ContainerState& st);

nlohmann::ordered_json oci_state(const ContainerState& st, Status status);

}  // namespace sandlock::container
