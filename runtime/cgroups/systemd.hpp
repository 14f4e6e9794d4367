// The systemd cgroup driver (--systemd-cgroup on a host that runs systemd): the
// container's cgroup is a transient scope that systemd creates and owns, as with
// runc's and crun's systemd drivers, so that systemd neither fights over the cgroup
// nor loses track of the container's processes.
//
// It wraps the cgroupfs manager of the same path: StartTransientUnit (Slice,
// Delegate, the first process, the limits systemd should also know) creates the
// scope when the first process joins; then the directories systemd did not create
// (v1 hierarchies it does not manage for the unit) are made, the process joins
// every hierarchy and every limit is written through cgroupfs as without systemd. destroy() stops the unit (StopUnit), then removes what is left.
// The D-Bus calls are made by the sandlock-systemd program (runtime/systemd_main.cpp).
//
// Without a running systemd, --systemd-cgroup maps the path to cgroupfs (path.hpp)
// and this driver is not used.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cgroups/manager.hpp"

namespace sandlock::cgroups {

// Whether systemd is the init system here (sd_booted(): /run/systemd/system is a directory).
bool systemd_running();

// The unit properties for r that systemd applies itself ("TasksMax=t:100"), in the
// form sandlock-systemd takes. v2 names memory.max MemoryMax, v1 MemoryLimit.
std::vector<std::string> systemd_resource_properties(const Resources& r, bool unified);

// The unit properties that annotations "org.systemd.property.NAME" = VALUE ask for, as
// runc reads them: NAME is ASCII letters only (3 or more); VALUE is a GVariant text of one
// of: true/false, 'text' or "text", an integer (int32) or a typed one ("uint64 5",
// "uint32 5", "int64 5", "int32 5"), a decimal number (double). A NAME ending in a
// lowercase letter and "Sec" is sent as NAME-with-USec, its value (seconds) in
// microseconds. Throws sandlock::Error naming the annotation.
std::vector<std::string> systemd_annotation_properties(
    const std::map<std::string, std::string>& annotations);

// fs: the cgroupfs manager for unit.cgroup_path(). properties: extra unit properties
// (systemd_resource_properties); user_properties (systemd_annotation_properties) go
// after them in the start, so the user's value wins. Throws sandlock::Error.
std::unique_ptr<Manager> make_systemd_manager(std::unique_ptr<Manager> fs, const SystemdUnit& unit,
                                              std::vector<std::string> properties,
                                              std::vector<std::string> user_properties = {});

// For open_manager: the manager to_state() describes, state["systemd"] being the
// systemd part. Throws sandlock::Error on a malformed state.
std::unique_ptr<Manager> open_systemd_manager(std::unique_ptr<Manager> fs,
                                              const nlohmann::json& systemd_state);

// The sandlock-systemd program: next to the running binary. Tests may override it.
std::string& systemd_helper_binary();

}  // namespace sandlock::cgroups
