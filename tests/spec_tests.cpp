// Unit tests for spec/config: parsing, validation messages, default_spec, loading files.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "spec/config.hpp"
#include "tests/support.hpp"

namespace spec_config {
using sandlock::testing::TempDir;
using nlohmann::json;
using namespace sandlock;
using namespace sandlock::spec;

// The message of the sandlock::Error that f throws, or "<no error>".
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "<no error>";
}

std::string config_error(const json& j) {
    return error_of([&] { parse_config(j); });
}

json minimal_config() {
    return json::parse(R"({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"]},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
    })");
}

// minimal_config() with one value replaced (or removed, when value is "<erase>").
json with(const std::string& pointer, const json& value) {
    json j = minimal_config();
    json::json_pointer p(pointer);
    if (value == "<erase>")
        j[p.parent_pointer()].erase(p.back());
    else
        j[p] = value;
    return j;
}

// A temporary directory, removed with everything in it at the end of the test.

// What podman 4 writes for `podman run --rm -it --cap-add NET_ADMIN --ulimit nofile=4096:8192
// -v /srv/data:/data:ro,Z alpine sh`, trimmed, plus hooks and a few fields from newer specs.
const char* kPodmanConfig = R"({
  "ociVersion": "1.1.0+dev",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 40, "width": 120},
    "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [10, 1000], "username": "app"},
    "args": ["sh", "-c", "echo hi"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
            "container=podman", "HOSTNAME=a1b2c3"],
    "cwd": "/work",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                   "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
                   "CAP_SETUID", "CAP_SYS_CHROOT", "CAP_NET_ADMIN"],
      "effective": ["CAP_CHOWN", "CAP_NET_ADMIN"],
      "inheritable": [],
      "permitted": ["CAP_CHOWN", "CAP_NET_ADMIN"],
      "ambient": ["CAP_NET_ADMIN"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 8192, "soft": 4096},
      {"type": "RLIMIT_NPROC", "hard": 4194304, "soft": 4194304},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "apparmorProfile": "containers-default-0.50.1",
    "oomScoreAdj": 100,
    "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
    "scheduler": {"policy": "SCHED_OTHER"}
  },
  "root": {"path": "/var/lib/containers/storage/overlay/abc/merged", "readonly": false},
  "hostname": "a1b2c3",
  "domainname": "example.org",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/etc/resolv.conf", "type": "bind", "source": "/run/containers/storage/overlay-containers/abc/userdata/resolv.conf", "options": ["bind", "rprivate"]},
    {"destination": "/etc/hosts", "type": "bind", "source": "/run/containers/storage/overlay-containers/abc/userdata/hosts", "options": ["bind", "rprivate"]},
    {"destination": "/dev/shm", "type": "bind", "source": "/var/lib/containers/storage/overlay-containers/abc/userdata/shm", "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"]},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["ro", "rbind", "rprivate"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/libexec/oci/hooks.d/net", "args": ["net", "setup"], "env": ["A=1"], "timeout": 10}],
    "createRuntime": [{"path": "/usr/bin/nvidia-ctk", "args": ["nvidia-ctk", "hook"]}],
    "createContainer": [{"path": "/bin/true"}],
    "startContainer": [{"path": "/bin/true"}],
    "poststart": [{"path": "/bin/true"}, {"path": "/bin/echo", "args": ["echo", "started"]}],
    "poststop": [{"path": "/usr/libexec/podman/conmon", "timeout": 5}]
  },
  "annotations": {"io.container.manager": "libpod", "io.sandlock.egress": "example.com:443"},
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "sysctl": {"net.ipv4.ping_group_range": "0 0"},
    "resources": {"pids": {"limit": 2048}, "memory": {"limit": 536870912}, "devices": [{"allow": false, "access": "rwm"}]},
    "cgroupsPath": "machine.slice:libpod:abc",
    "namespaces": [
      {"type": "pid"}, {"type": "network", "path": "/run/netns/netns-1234"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time"}
    ],
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
      {"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0},
      {"path": "/dev/myfifo", "type": "p"}
    ],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 38,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      "listenerPath": "/run/seccomp.sock",
      "listenerMetadata": "meta",
      "syscalls": [
        {"names": ["read", "write", "openat"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 8, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/acpi", "/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2",
    "personality": {"domain": "LINUX32", "flags": []},
    "timeOffsets": {"monotonic": {"secs": -3600, "nanosecs": 500}, "boottime": {"secs": 86400}},
    "intelRdt": {"closID": "guaranteed_group"}
  }
})";

}  // namespace spec_config

BOOST_AUTO_TEST_SUITE(spec_config)

BOOST_AUTO_TEST_CASE(full_podman_like_config) {
    Config c = parse_config(json::parse(kPodmanConfig));
    BOOST_TEST(c.oci_version == "1.1.0+dev");
    BOOST_TEST(c.root.path == "/var/lib/containers/storage/overlay/abc/merged");
    BOOST_TEST(!c.root.readonly);
    BOOST_TEST(c.hostname == "a1b2c3");
    BOOST_TEST(c.domainname == "example.org");

    BOOST_REQUIRE(c.process);
    const Process& p = *c.process;
    BOOST_TEST(p.terminal);
    BOOST_REQUIRE(p.console_size);
    BOOST_TEST(p.console_size->height == 40u);
    BOOST_TEST(p.console_size->width == 120u);
    BOOST_TEST(p.user.uid == 1000u);
    BOOST_TEST(p.user.gid == 1000u);
    BOOST_TEST(p.user.umask.value_or(0) == 18u);
    BOOST_TEST(p.user.additional_gids == (std::vector<uint32_t>{10, 1000}), boost::test_tools::per_element());
    BOOST_TEST(p.user.username == "app");
    BOOST_TEST(p.args == (std::vector<std::string>{"sh", "-c", "echo hi"}), boost::test_tools::per_element());
    BOOST_TEST(p.env.size() == 4u);
    BOOST_TEST(p.env[2] == "container=podman");
    BOOST_TEST(p.cwd == "/work");
    BOOST_REQUIRE(p.capabilities);
    BOOST_TEST(p.capabilities->bounding.size() == 12u);
    BOOST_TEST(p.capabilities->bounding.back() == "CAP_NET_ADMIN");
    BOOST_TEST(p.capabilities->effective == (std::vector<std::string>{"CAP_CHOWN", "CAP_NET_ADMIN"}), boost::test_tools::per_element());
    BOOST_TEST(p.capabilities->inheritable.empty());
    BOOST_TEST(p.capabilities->permitted.size() == 2u);
    BOOST_TEST(p.capabilities->ambient == (std::vector<std::string>{"CAP_NET_ADMIN"}), boost::test_tools::per_element());
    BOOST_REQUIRE(p.rlimits.size() == 3u);
    BOOST_TEST(p.rlimits[0].type == "RLIMIT_NOFILE");
    BOOST_TEST(p.rlimits[0].hard == 8192u);
    BOOST_TEST(p.rlimits[0].soft == 4096u);
    BOOST_TEST(p.rlimits[2].hard == UINT64_MAX);
    BOOST_TEST(p.no_new_privileges);
    BOOST_TEST(p.apparmor_profile == "containers-default-0.50.1");
    BOOST_TEST(p.oom_score_adj.value_or(0) == 100);
    BOOST_TEST(p.selinux_label == "system_u:system_r:container_t:s0:c1,c2");

    BOOST_REQUIRE(c.mounts.size() == 10u);
    BOOST_TEST(c.mounts[0].destination == "/proc");
    BOOST_TEST(c.mounts[0].type == "proc");
    BOOST_TEST(c.mounts[5].source == "/run/containers/storage/overlay-containers/abc/userdata/resolv.conf");
    BOOST_TEST(c.mounts[5].options == (std::vector<std::string>{"bind", "rprivate"}), boost::test_tools::per_element());
    BOOST_REQUIRE(c.mounts[8].uid_mappings.size() == 1u);
    BOOST_TEST(c.mounts[8].uid_mappings[0].host_id == 100000u);
    BOOST_TEST(c.mounts[8].gid_mappings[0].size == 65536u);
    BOOST_TEST(c.mounts[9].destination == "/sys/fs/cgroup");

    BOOST_REQUIRE(c.hooks.prestart.size() == 1u);
    BOOST_TEST(c.hooks.prestart[0].path == "/usr/libexec/oci/hooks.d/net");
    BOOST_TEST(c.hooks.prestart[0].args == (std::vector<std::string>{"net", "setup"}), boost::test_tools::per_element());
    BOOST_TEST(c.hooks.prestart[0].env == (std::vector<std::string>{"A=1"}), boost::test_tools::per_element());
    BOOST_TEST(c.hooks.prestart[0].timeout.value_or(0) == 10);
    BOOST_TEST(c.hooks.create_runtime.size() == 1u);
    BOOST_TEST(!c.hooks.create_runtime[0].timeout);
    BOOST_TEST(c.hooks.create_container.size() == 1u);
    BOOST_TEST(c.hooks.start_container.size() == 1u);
    BOOST_TEST(c.hooks.poststart.size() == 2u);
    BOOST_TEST(c.hooks.poststart[1].args[1] == "started");
    BOOST_TEST(c.hooks.poststop[0].timeout.value_or(0) == 5);

    BOOST_TEST(c.annotations.size() == 2u);
    BOOST_TEST(c.annotations.at("io.sandlock.egress") == "example.com:443");

    const Linux& l = c.linux;
    BOOST_TEST(l.uid_mappings.size() == 1u);
    BOOST_TEST(l.uid_mappings[0].container_id == 0u);
    BOOST_TEST(l.uid_mappings[0].host_id == 100000u);
    BOOST_TEST(l.gid_mappings[0].size == 65536u);
    BOOST_TEST(l.sysctl.at("net.ipv4.ping_group_range") == "0 0");
    BOOST_TEST(l.resources["pids"]["limit"] == 2048);
    BOOST_TEST(l.resources["memory"]["limit"] == 536870912);
    BOOST_TEST(l.cgroups_path == "machine.slice:libpod:abc");
    BOOST_REQUIRE(l.namespaces.size() == 8u);
    BOOST_TEST((l.namespaces[1].type == NamespaceType::Network));
    BOOST_TEST(l.namespaces[1].path == "/run/netns/netns-1234");
    BOOST_TEST(l.namespaces[0].path.empty());
    BOOST_TEST(l.has_namespace(NamespaceType::Time));
    BOOST_REQUIRE(l.find_namespace(NamespaceType::Network));
    BOOST_TEST(l.find_namespace(NamespaceType::Network)->path == "/run/netns/netns-1234");
    BOOST_REQUIRE(l.devices.size() == 3u);
    BOOST_TEST(l.devices[0].path == "/dev/fuse");
    BOOST_TEST(l.devices[0].type == "c");
    BOOST_TEST(l.devices[0].major == 10);
    BOOST_TEST(l.devices[0].minor == 229);
    BOOST_TEST(l.devices[0].file_mode.value_or(0) == 0666u);
    BOOST_TEST(l.devices[0].uid.value_or(1) == 0u);
    BOOST_TEST(!l.devices[1].file_mode);
    BOOST_TEST(l.devices[2].type == "p");

    BOOST_REQUIRE(l.seccomp);
    const Seccomp& s = *l.seccomp;
    BOOST_TEST(s.default_action == "SCMP_ACT_ERRNO");
    BOOST_TEST(s.default_errno_ret.value_or(0) == 38u);
    BOOST_TEST(s.architectures.size() == 3u);
    BOOST_TEST(s.flags == (std::vector<std::string>{"SECCOMP_FILTER_FLAG_SPEC_ALLOW"}), boost::test_tools::per_element());
    BOOST_TEST(s.listener_path == "/run/seccomp.sock");
    BOOST_TEST(s.listener_metadata == "meta");
    BOOST_REQUIRE(s.syscalls.size() == 3u);
    BOOST_TEST(s.syscalls[0].names.size() == 3u);
    BOOST_TEST(s.syscalls[0].action == "SCMP_ACT_ALLOW");
    BOOST_TEST(!s.syscalls[0].errno_ret);
    BOOST_REQUIRE(s.syscalls[1].args.size() == 2u);
    BOOST_TEST(s.syscalls[1].args[0].value == 4294967295u);
    BOOST_TEST(s.syscalls[1].args[1].index == 1u);
    BOOST_TEST(s.syscalls[1].args[1].value_two == 8u);
    BOOST_TEST(s.syscalls[1].args[1].op == "SCMP_CMP_MASKED_EQ");
    BOOST_TEST(s.syscalls[2].errno_ret.value_or(0) == 1u);

    BOOST_TEST(l.rootfs_propagation == "rslave");
    BOOST_TEST(l.masked_paths.size() == 3u);
    BOOST_TEST(l.readonly_paths == (std::vector<std::string>{"/proc/bus", "/proc/sys"}), boost::test_tools::per_element());
    BOOST_TEST(l.mount_label == "system_u:object_r:container_file_t:s0:c1,c2");
    BOOST_REQUIRE(l.personality);
    BOOST_TEST(l.personality->domain == "LINUX32");
    BOOST_TEST(l.time_offsets.at("monotonic").secs == -3600);
    BOOST_TEST(l.time_offsets.at("monotonic").nanosecs == 500u);
    BOOST_TEST(l.time_offsets.at("boottime").secs == 86400);
}

BOOST_AUTO_TEST_CASE(minimal_config_defaults) {
    Config c = parse_config(minimal_config());
    BOOST_REQUIRE(c.process);
    BOOST_TEST(!c.process->terminal);
    BOOST_TEST(c.process->cwd == "/");
    BOOST_TEST(c.process->user.uid == 0u);
    BOOST_TEST(!c.process->capabilities);
    BOOST_TEST(!c.process->oom_score_adj);
    BOOST_TEST(c.mounts.empty());
    BOOST_TEST(c.hooks.prestart.empty());
    BOOST_TEST(!c.linux.seccomp);
    // Always an object, so the cgroup code can use contains()/value() on it.
    BOOST_TEST(c.linux.resources.is_object());
    BOOST_TEST(c.linux.resources.empty());
    BOOST_TEST(!c.linux.has_namespace(NamespaceType::Network));
    BOOST_TEST(c.linux.find_namespace(NamespaceType::User) == nullptr);
}

BOOST_AUTO_TEST_CASE(unknown_fields_and_nulls_are_ignored) {
    json j = minimal_config();
    j["somethingNew"] = {{"x", 1}};
    j["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_RT"}};
    j["process"]["user"] = {{"uid", 5}, {"futureField", "x"}};
    j["linux"]["memoryPolicy"] = {{"mode", "MPOL_BIND"}};
    j["linux"]["namespaces"][0]["extra"] = true;
    j["vm"] = json::array();
    // Go's decoder, which runc uses, treats null like a missing field.
    j["hostname"] = nullptr;
    j["mounts"] = nullptr;
    j["process"]["terminal"] = nullptr;
    Config c = parse_config(j);
    BOOST_TEST(c.process->user.uid == 5u);
    BOOST_TEST(c.hostname.empty());
    BOOST_TEST(!c.process->terminal);
    BOOST_TEST(c.linux.namespaces.size() == 2u);
    // Parsing still succeeds (a saved config must load); create refuses what is listed.
    using Entry = std::pair<std::string, std::string>;
    BOOST_TEST(c.unsupported.size() == 2u);
    BOOST_TEST((c.unsupported.at(0) == Entry{".process.ioPriority", "not supported by sandlock-runc"}));
    BOOST_TEST((c.unsupported.at(1) == Entry{".linux.memoryPolicy", "not supported by sandlock-runc"}));
}

BOOST_AUTO_TEST_CASE(unsupported_fields_are_listed_empty_ones_are_not_requests) {
    BOOST_TEST(parse_config(minimal_config()).unsupported.empty());
    json j = minimal_config();
    j["linux"]["intelRdt"] = {{"closID", "x"}};
    j["linux"]["personality"] = {{"domain", "LINUX"}, {"flags", {"SHORT_INODE"}}};
    j["linux"]["netDevices"] = {{"eth1", json::object()}};
    j["process"]["scheduler"] = {{"policy", "SCHED_IDLE"}};
    j["process"]["execCPUAffinity"] = {{"initial", "0"}};
    Config c = parse_config(j);
    std::vector<std::string> paths;
    for (const auto& [path, why] : c.unsupported) paths.push_back(path);
    const std::vector<std::string> want{".process.scheduler", ".process.execCPUAffinity", ".linux.intelRdt",
                                        ".linux.netDevices", ".linux.personality.flags"};
    BOOST_TEST(paths == want, boost::test_tools::per_element());
    // "" / [] / {} / null: not requested.
    j = minimal_config();
    j["linux"]["intelRdt"] = nullptr;
    j["linux"]["netDevices"] = json::object();
    j["linux"]["personality"] = {{"domain", "LINUX"}, {"flags", json::array()}};
    j["process"]["scheduler"] = json::object();
    j["process"]["apparmorProfile"] = "";
    BOOST_TEST(parse_config(j).unsupported.empty());
}

BOOST_AUTO_TEST_CASE(type_errors_name_the_path) {
    BOOST_TEST(config_error(with("/process/terminal", "yes")) ==
               ".process.terminal: expected boolean, got string");
    BOOST_TEST(config_error(with("/process/args", "sh")) == ".process.args: expected array, got string");
    BOOST_TEST(config_error(with("/process/args", {"sh", 1})) ==
               ".process.args[1]: expected string, got number");
    BOOST_TEST(config_error(with("/process/user/uid", -1)) ==
               ".process.user.uid: -1 out of range (0 to 4294967295)");
    BOOST_TEST(config_error(with("/process/user/uid", 4294967296)) ==
               ".process.user.uid: 4294967296 out of range (0 to 4294967295)");
    BOOST_TEST(config_error(with("/process/user/gid", 1.5)) ==
               ".process.user.gid: expected integer, got number");
    BOOST_TEST(config_error(with("/process/user", json::array())) ==
               ".process.user: expected object, got array");
    BOOST_TEST(config_error(with("/root", "rootfs")) == ".root: expected object, got string");
    BOOST_TEST(config_error(with("/annotations", {{"a", "b"}, {"n", 1}})) ==
               ".annotations[\"n\"]: expected string, got number");
    BOOST_TEST(config_error(with("/linux/sysctl", {{"net.ipv4.ip_forward", 1}})) ==
               ".linux.sysctl[\"net.ipv4.ip_forward\"]: expected string, got number");
    BOOST_TEST(config_error(with("/linux/resources", json::array())) ==
               ".linux.resources: expected object, got array");
    BOOST_TEST(config_error(with("/mounts", {{{"destination", "/x"}, {"options", "ro"}}})) ==
               ".mounts[0].options: expected array, got string");
    BOOST_TEST(config_error(json::array()) == ".: expected object, got array");
}

BOOST_AUTO_TEST_CASE(validation_errors) {
    // Root and process.
    BOOST_TEST(config_error(with("/root", "<erase>")) == ".root: missing");
    BOOST_TEST(config_error(with("/root/path", "<erase>")) == ".root.path: missing");
    BOOST_TEST(config_error(with("/root/path", "")) == ".root.path: must not be empty");
    BOOST_TEST(config_error(with("/process/args", json::array())) == ".process.args: must not be empty");
    BOOST_TEST(config_error(with("/process/args", "<erase>")) == ".process.args: must not be empty");
    BOOST_TEST(config_error(with("/process/cwd", "work")) ==
               ".process.cwd: must be an absolute path, got \"work\"");
    BOOST_TEST(config_error(with("/process/oomScoreAdj", 1001)) ==
               ".process.oomScoreAdj: 1001 out of range (-1000 to 1000)");

    // Capabilities and rlimits.
    BOOST_TEST(config_error(with("/process/capabilities",
                                 {{"bounding", {"CAP_CHOWN", "CAP_KILL", "CAP_FOO"}}})) ==
               ".process.capabilities.bounding[2]: unknown capability \"CAP_FOO\"");
    BOOST_TEST(config_error(with("/process/capabilities", {{"ambient", json::array({"chown"})}})) ==
               ".process.capabilities.ambient[0]: unknown capability \"chown\"");
    BOOST_TEST(config_error(with("/process/rlimits", {{{"type", "RLIMIT_FOO"}, {"hard", 1}, {"soft", 1}}})) ==
               ".process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
    BOOST_TEST(config_error(with("/process/rlimits", {{{"hard", 1}, {"soft", 1}}})) ==
               ".process.rlimits[0].type: missing");
    BOOST_TEST(config_error(with("/process/rlimits",
                                 {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 2048}}})) ==
               ".process.rlimits[0]: soft limit 2048 is greater than hard limit 1024");

    // Namespaces and id mappings.
    BOOST_TEST(config_error(with("/linux/namespaces", {{{"type", "pid"}, }, {{"type", "mount"}}, {{"type", "foo"}}})) ==
               ".linux.namespaces[2].type: unknown namespace \"foo\"");
    BOOST_TEST(config_error(with("/linux/namespaces",
                                 {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "ipc"}}, {{"type", "pid"}}})) ==
               ".linux.namespaces[3]: duplicate namespace \"pid\"");
    BOOST_TEST(config_error(with("/linux/namespaces", {{{"type", "network"}, {"path", "run/netns/x"}}})) ==
               ".linux.namespaces[0].path: must be an absolute path, got \"run/netns/x\"");
    BOOST_TEST(config_error(with("/linux/namespaces", {{{"path", "/proc/1/ns/pid"}}})) ==
               ".linux.namespaces[0].type: missing");
    BOOST_TEST(config_error(with("/linux/uidMappings", {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}})) ==
               ".linux.uidMappings: requires a user namespace");
    json userns = with("/linux/namespaces", {{{"type", "user"}}});
    BOOST_TEST(config_error(userns) == ".linux.uidMappings: required when creating a user namespace");
    userns["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}};
    BOOST_TEST(config_error(userns) == ".linux.gidMappings: required when creating a user namespace");
    userns["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 1000}, {"size", 0}}};
    BOOST_TEST(config_error(userns) == ".linux.gidMappings[0].size: must be greater than 0, got 0");
    userns["linux"]["gidMappings"][0]["size"] = 1;
    BOOST_TEST(config_error(userns) == "<no error>");
    // Joining an existing user namespace needs no mappings.
    BOOST_TEST(config_error(with("/linux/namespaces", {{{"type", "user"}, {"path", "/proc/1/ns/user"}}})) ==
               "<no error>");

    // Mounts, hooks, devices.
    BOOST_TEST(config_error(with("/mounts", {{{"destination", "/ok"}}, {{"destination", "tmp"}, {"type", "tmpfs"}}})) ==
               ".mounts[1].destination: must be an absolute path, got \"tmp\"");
    BOOST_TEST(config_error(with("/mounts", {{{"type", "tmpfs"}}})) == ".mounts[0].destination: missing");
    BOOST_TEST(config_error(with("/hooks", {{"prestart", {{{"path", "hook.sh"}}}}})) ==
               ".hooks.prestart[0].path: must be an absolute path, got \"hook.sh\"");
    BOOST_TEST(config_error(with("/hooks", {{"poststop", {{{"path", "/bin/true"}, {"timeout", 0}}}}})) ==
               ".hooks.poststop[0].timeout: must be greater than 0, got 0");
    BOOST_TEST(config_error(with("/hooks", {{"createRuntime", {{{"path", "/bin/true"}, {"timeout", -5}}}}})) ==
               ".hooks.createRuntime[0].timeout: must be greater than 0, got -5");
    BOOST_TEST(config_error(with("/linux/devices", {{{"type", "x"}, {"path", "/dev/x"}}})) ==
               ".linux.devices[0].type: unknown device type \"x\" (expected c, b, u or p)");
    BOOST_TEST(config_error(with("/linux/devices", {{{"type", "c"}, {"path", "dev/null"}, {"major", 1}, {"minor", 3}}})) ==
               ".linux.devices[0].path: must be an absolute path, got \"dev/null\"");

    // Seccomp, personality, propagation, time offsets, hostname.
    BOOST_TEST(config_error(with("/linux/seccomp", {{"architectures", {"SCMP_ARCH_X86_64"}}})) ==
               ".linux.seccomp.defaultAction: missing");
    BOOST_TEST(config_error(with("/linux/seccomp", {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", {{{"names", {"read"}}}}}})) ==
               ".linux.seccomp.syscalls[0].action: missing");
    // Action names are left to the seccomp code.
    BOOST_TEST(config_error(with("/linux/seccomp", {{"defaultAction", "SCMP_ACT_WHATEVER"}})) == "<no error>");
    BOOST_TEST(config_error(with("/linux/personality", {{"domain", "BSD"}})) ==
               ".linux.personality.domain: unknown domain \"BSD\" (expected LINUX or LINUX32)");
    BOOST_TEST(config_error(with("/linux/rootfsPropagation", "sideways")) ==
               ".linux.rootfsPropagation: unknown propagation \"sideways\"");
    BOOST_TEST(config_error(with("/linux/timeOffsets", {{"monotonic", {{"secs", 1}}}})) ==
               ".linux.timeOffsets: requires a time namespace");
    json timens = with("/linux/namespaces", {{{"type", "time"}}});
    timens["linux"]["timeOffsets"] = {{"realtime", {{"secs", 1}}}};
    BOOST_TEST(config_error(timens) ==
               ".linux.timeOffsets[\"realtime\"]: unknown clock \"realtime\" (expected monotonic or boottime)");
    timens["linux"]["timeOffsets"] = {{"boottime", {{"secs", 1}, {"nanosecs", 1000000000}}}};
    BOOST_TEST(config_error(timens) ==
               ".linux.timeOffsets[\"boottime\"].nanosecs: 1000000000 out of range (0 to 999999999)");
    timens["linux"]["timeOffsets"] = {{"boottime", {{"secs", 1}}}};
    timens["linux"]["namespaces"][0]["path"] = "/proc/1/ns/time";
    BOOST_TEST(config_error(timens) == ".linux.timeOffsets: not allowed when joining a time namespace");
    json no_mntns = with("/linux/namespaces", {{{"type", "pid"}}});
    no_mntns["linux"]["maskedPaths"] = {"/proc/kcore"};
    BOOST_TEST(config_error(no_mntns) == ".linux.maskedPaths: requires a mount namespace");
    no_mntns["linux"]["maskedPaths"] = json::array();
    no_mntns["linux"]["readonlyPaths"] = {"/proc/sys"};
    BOOST_TEST(config_error(no_mntns) == ".linux.readonlyPaths: requires a mount namespace");
    BOOST_TEST(config_error(with("/hostname", "box")) == ".hostname: requires a uts namespace");
    BOOST_TEST(config_error(with("/domainname", "example.org")) == ".domainname: requires a uts namespace");
}

BOOST_AUTO_TEST_CASE(oci_versions) {
    for (const char* ok : {"1.0.0", "1.0.1", "1.0.2-dev", "1.1.0", "1.1.0-rc.1", "1.2.0", "1.2.1",
                           "1.2.99+dev", "1.0.0-rc5"})
        BOOST_TEST(config_error(with("/ociVersion", ok)) == "<no error>", ok);
    for (const char* bad : {"2.0.0", "1.3.0", "0.9.0", "1.2", "1", "", "v1.0.0", "1.0.0dev", "1.x.0"})
        BOOST_TEST(config_error(with("/ociVersion", bad)) ==
                       std::string(".ociVersion: unsupported version \"") + bad +
                           "\" (supported 1.0.0 to 1.2.x)",
                   bad);
    BOOST_TEST(config_error(with("/ociVersion", "<erase>")) == ".ociVersion: missing");
    BOOST_TEST(config_error(with("/ociVersion", 1)) == ".ociVersion: expected string, got number");
}

BOOST_AUTO_TEST_CASE(process_json) {
    json j = json::parse(R"({
        "terminal": false,
        "user": {"uid": 33, "gid": 33, "additionalGids": [4]},
        "args": ["/bin/ls", "-l"],
        "env": ["PATH=/bin"],
        "cwd": "/tmp",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
        "noNewPrivileges": true,
        "unknown": [1, 2, 3]
    })");
    Process p = parse_process(j, "");
    BOOST_TEST(p.user.uid == 33u);
    BOOST_TEST(p.user.additional_gids.size() == 1u);
    BOOST_TEST(p.args[0] == "/bin/ls");
    BOOST_TEST(p.cwd == "/tmp");
    BOOST_TEST(p.capabilities->effective[0] == "CAP_KILL");
    BOOST_TEST(p.rlimits[0].type == "RLIMIT_CORE");
    BOOST_TEST(p.no_new_privileges);

    // A process.json has its fields at the top level, so paths start there.
    j["args"] = json::array();
    BOOST_TEST(error_of([&] { parse_process(j, ""); }) == ".args: must not be empty");
    BOOST_TEST(error_of([&] { parse_process(j); }) == ".process.args: must not be empty");
    BOOST_TEST(error_of([&] { parse_process("x", ""); }) == ".: expected object, got string");
}

BOOST_AUTO_TEST_CASE(parse_hook_alone) {
    Hook h = parse_hook(json::parse(R"({"path": "/bin/hook", "timeout": 3})"), ".hooks.prestart[0]");
    BOOST_TEST(h.path == "/bin/hook");
    BOOST_TEST(h.timeout.value_or(0) == 3);
    BOOST_TEST(error_of([] { parse_hook(json::object(), ".hooks.poststop[1]"); }) ==
               ".hooks.poststop[1].path: missing");
}

BOOST_AUTO_TEST_CASE(require_process_needs_a_process) {
    Config c = parse_config(with("/process", "<erase>"));
    BOOST_TEST(!c.process);
    BOOST_TEST(error_of([&] { require_process(c); }) == ".process: missing");
    BOOST_TEST(error_of([] { require_process(parse_config(minimal_config())); }) == "<no error>");
}

BOOST_AUTO_TEST_CASE(namespace_names) {
    const std::pair<NamespaceType, std::pair<const char*, const char*>> all[] = {
        {NamespaceType::Pid, {"pid", "pid"}},       {NamespaceType::Network, {"network", "net"}},
        {NamespaceType::Mount, {"mount", "mnt"}},   {NamespaceType::Ipc, {"ipc", "ipc"}},
        {NamespaceType::Uts, {"uts", "uts"}},       {NamespaceType::User, {"user", "user"}},
        {NamespaceType::Cgroup, {"cgroup", "cgroup"}}, {NamespaceType::Time, {"time", "time"}},
    };
    for (const auto& [type, names] : all) {
        BOOST_TEST(namespace_type_name(type) == std::string(names.first));
        BOOST_TEST(namespace_proc_name(type) == std::string(names.second));
        BOOST_TEST((namespace_type_from_name(names.first) == type));
    }
    BOOST_TEST(!namespace_type_from_name("net"));
    BOOST_TEST(!namespace_type_from_name("mnt"));
    BOOST_TEST(!namespace_type_from_name(""));
}

BOOST_AUTO_TEST_CASE(default_spec_round_trips) {
    json j = default_spec(false);
    BOOST_TEST(j["ociVersion"] == kOciVersion);
    BOOST_TEST(!j.contains("annotations"));
    Config c = parse_config(j);
    BOOST_TEST(c.hostname == "sandlock");
    BOOST_TEST(c.root.path == "rootfs");
    BOOST_TEST(c.root.readonly);
    BOOST_REQUIRE(c.process);
    BOOST_TEST(c.process->terminal);
    BOOST_TEST(c.process->args == (std::vector<std::string>{"sh"}), boost::test_tools::per_element());
    BOOST_TEST(c.process->env.size() == 2u);
    BOOST_TEST(c.process->no_new_privileges);
    const std::vector<std::string> caps{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
    BOOST_TEST(c.process->capabilities->bounding == caps, boost::test_tools::per_element());
    BOOST_TEST(c.process->capabilities->effective == caps, boost::test_tools::per_element());
    BOOST_TEST(c.process->capabilities->permitted == caps, boost::test_tools::per_element());
    BOOST_TEST(c.process->rlimits.size() == 1u);
    BOOST_TEST(c.process->rlimits[0].type == "RLIMIT_NOFILE");
    BOOST_TEST(c.process->rlimits[0].soft == 1024u);
    std::vector<std::string> dests;
    for (const auto& m : c.mounts) dests.push_back(m.destination);
    BOOST_TEST(dests == (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                                  "/sys", "/sys/fs/cgroup"}),
               boost::test_tools::per_element());
    BOOST_TEST(c.mounts[2].options.back() == "gid=5");
    BOOST_TEST(c.mounts[5].type == "sysfs");
    for (auto t : {NamespaceType::Pid, NamespaceType::Network, NamespaceType::Ipc, NamespaceType::Uts,
                   NamespaceType::Mount})
        BOOST_TEST(c.linux.has_namespace(t), namespace_type_name(t));
    BOOST_TEST(!c.linux.has_namespace(NamespaceType::User));
    BOOST_TEST(c.linux.masked_paths.size() == 10u);
    BOOST_TEST(c.linux.readonly_paths.size() == 5u);
    BOOST_TEST(c.linux.resources["devices"][0]["access"] == "rwm");
    BOOST_TEST(c.linux.resources["devices"][0]["allow"] == false);
}

BOOST_AUTO_TEST_CASE(default_spec_rootless_round_trips) {
    json j = default_spec(true);
    BOOST_TEST(j["ociVersion"] == kOciVersion);
    Config c = parse_config(j);
    BOOST_TEST(c.linux.has_namespace(NamespaceType::User));
    BOOST_TEST(!c.linux.has_namespace(NamespaceType::Network));
    BOOST_TEST(c.linux.has_namespace(NamespaceType::Mount));
    BOOST_TEST((c.linux.namespaces.back().type == NamespaceType::User));
    BOOST_REQUIRE(c.linux.uid_mappings.size() == 1u);
    BOOST_TEST(c.linux.uid_mappings[0].container_id == 0u);
    BOOST_TEST(c.linux.uid_mappings[0].host_id == ::geteuid());
    BOOST_TEST(c.linux.uid_mappings[0].size == 1u);
    BOOST_REQUIRE(c.linux.gid_mappings.size() == 1u);
    BOOST_TEST(c.linux.gid_mappings[0].host_id == ::getegid());
    BOOST_TEST(c.linux.resources.empty());
    BOOST_REQUIRE(c.mounts.size() == 7u);
    BOOST_TEST(c.mounts[5].destination == "/sys");
    BOOST_TEST(c.mounts[5].type == "none");
    BOOST_TEST(c.mounts[5].source == "/sys");
    BOOST_TEST(c.mounts[5].options ==
                   (std::vector<std::string>{"rbind", "nosuid", "noexec", "nodev", "ro"}),
               boost::test_tools::per_element());
    // No uid=/gid= options: those ids are not mapped.
    BOOST_TEST(c.mounts[2].options ==
                   (std::vector<std::string>{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}),
               boost::test_tools::per_element());
    BOOST_TEST(c.hostname == "sandlock");
}

BOOST_AUTO_TEST_CASE(load_config_and_process_files) {
    TempDir dir;
    BOOST_TEST(error_of([&] { load_config(dir.path); }) ==
               "open " + dir.path + "/config.json: No such file or directory");

    fs::write_file_atomic(dir.path + "/config.json", "{\"ociVersion\": \"1.0.2\",\n  \"root\": }");
    std::string err = error_of([&] { load_config(dir.path); });
    BOOST_TEST(err.rfind("parse " + dir.path + "/config.json: parse error at line 2, column 11:", 0) == 0, err);
    BOOST_TEST(err.find('\n') == std::string::npos);
    BOOST_TEST(err.find("[json.exception") == std::string::npos);

    fs::write_file_atomic(dir.path + "/config.json", default_spec(false).dump(4));
    BOOST_TEST(load_config(dir.path + "/").hostname == "sandlock");

    BOOST_TEST(error_of([&] { load_process(dir.path + "/process.json"); }) ==
               "open " + dir.path + "/process.json: No such file or directory");
    fs::write_file_atomic(dir.path + "/process.json", R"({"args": ["true"], "cwd": "/"})");
    BOOST_TEST(load_process(dir.path + "/process.json").args[0] == "true");
    fs::write_file_atomic(dir.path + "/process.json", R"({"args": ["true"], "cwd": "rel"})");
    BOOST_TEST(error_of([&] { load_process(dir.path + "/process.json"); }) ==
               ".cwd: must be an absolute path, got \"rel\"");
}

BOOST_AUTO_TEST_CASE(typed_readers) {
    json o = json::parse(R"({"s": "x", "b": true, "n": null, "i": -7, "u": 7, "big": 18446744073709551615,
                             "a": [1, 2], "m": {"k": "v"}})");
    BOOST_TEST(get_string(o, ".o", "s").value() == "x");
    BOOST_TEST(!get_string(o, ".o", "n"));
    BOOST_TEST(!get_string(o, ".o", "absent"));
    BOOST_TEST(get_bool(o, ".o", "b").value());
    BOOST_TEST(get_int(o, ".o", "i").value() == -7);
    BOOST_TEST(get_i64(o, ".o", "i").value() == -7);
    BOOST_TEST(get_u32(o, ".o", "u").value() == 7u);
    BOOST_TEST(get_u64(o, ".o", "big").value() == UINT64_MAX);
    BOOST_TEST(error_of([&] { get_int(o, ".o", "big"); }) ==
               ".o.big: 18446744073709551615 out of range (-2147483648 to 2147483647)");
    BOOST_TEST(error_of([&] { get_i64(o, ".o", "big"); }) ==
               ".o.big: 18446744073709551615 out of range (-9223372036854775808 to 9223372036854775807)");
    BOOST_TEST(error_of([&] { get_u64(o, ".o", "i"); }) ==
               ".o.i: -7 out of range (0 to 18446744073709551615)");
    BOOST_TEST(get_u32_array(o, ".o", "a") == (std::vector<uint32_t>{1, 2}), boost::test_tools::per_element());
    BOOST_TEST(error_of([&] { get_string_array(o, ".o", "a"); }) == ".o.a[0]: expected string, got number");
    BOOST_TEST(get_string_map(o, ".o", "m").at("k") == "v");
    BOOST_TEST(get_object(o, ".o", "n") == nullptr);
    BOOST_TEST(error_of([&] { get_array(o, ".o", "m"); }) == ".o.m: expected array, got object");
    BOOST_TEST(error_of([&] { require_string(o, ".o", "n"); }) == ".o.n: missing");
    BOOST_TEST(error_of([&] { require_object(o, "", "z"); }) == ".z: missing");
    BOOST_TEST(json_quote("a\"b") == "\"a\\\"b\"");
    BOOST_TEST(entry_path(".x", "k.y") == ".x[\"k.y\"]");
    BOOST_TEST(element_path(".x", 3) == ".x[3]");
    BOOST_TEST(error_of([] { throw_at("", "bad"); }) == ".: bad");
}

BOOST_AUTO_TEST_SUITE_END()
