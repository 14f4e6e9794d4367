#include <seccomp.h>
#include <sys/capability.h>

#include <algorithm>
#include <iostream>

#include "runtime/cli/cli.hpp"
#include "runtime/linux/mounts.hpp"
#include "runtime/linux/seccomp.hpp"
#include "spec/config.hpp"

namespace sandlock::cli {
namespace {

std::vector<std::string> capability_names() {
    std::vector<std::string> names;
    for (int cap = 0; cap <= static_cast<int>(CAP_LAST_CAP) || cap_valid(cap); ++cap) {
        if (!cap_valid(cap)) break;
        char* raw = cap_to_name(cap);
        std::string name = raw;
        cap_free(raw);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        if (name.rfind("CAP_", 0) == 0) names.push_back(name);
    }
    return names;
}

nlohmann::ordered_json features_json() {
    nlohmann::ordered_json j;
    j["ociVersionMin"] = spec::kOciVersionMin;
    j["ociVersionMax"] = spec::kOciVersion;
    j["hooks"] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                  "poststop"};
    j["mountOptions"] = os::known_mount_options();
    nlohmann::ordered_json linux_j;
    linux_j["namespaces"] = {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"};
    linux_j["capabilities"] = capability_names();
    linux_j["cgroup"] = {{"v1", true}, {"v2", true}, {"systemd", true}, {"systemdUser", false}};
    linux_j["seccomp"] = {{"enabled", true},
                          {"actions", os::seccomp_known_actions()},
                          {"operators", os::seccomp_known_operators()},
                          {"archs", os::seccomp_known_architectures()},
                          {"knownFlags", os::seccomp_known_flags()},
                          {"supportedFlags", os::seccomp_supported_flags()}};
    linux_j["apparmor"] = {{"enabled", false}};
    linux_j["selinux"] = {{"enabled", false}};
    linux_j["intelRdt"] = {{"enabled", false}};
    j["linux"] = linux_j;
    // The io.sandlock.* keys this build enforces (sandlock-annotations(5)).
    j["annotations"] = {
        {"org.opencontainers.runc.version", "1.1.5-compatible"},
        {"io.github.sandlock-runc.version", kVersion},
        {"io.sandlock.network.allow", "default-deny egress allowlist: [tcp|udp|icmp://]host[:ports]"},
        {"io.sandlock.network.deny", "default-allow egress denylist: IP, CIDR, :port, IP:port, private"},
        {"io.sandlock.network.allow_bind", "TCP ports or ranges the container may bind"},
        {"io.sandlock.network.loopback", "allow|deny"},
        {"io.sandlock.network.profile", "names of the operator's rule sets (sandlock-runc-config(5))"},
        {"io.sandlock.audit", "off|deny|all"}};
    return j;
}

}  // namespace

void register_features(Command& app, Context& ctx) {
    auto* sub = app.add_subcommand("features", "print the features this runtime supports (JSON)");
    ctx.handlers[sub] = [] {
        std::cout << features_json().dump(4) << "\n";
        return 0;
    };
}

}  // namespace sandlock::cli
