// linux.resources: parsing and validation, the v1→v2 formulas, the v1 and
// v2 writers on fake cgroupfs trees, stats, and (as root, on this host) the
// real v1 controllers, the v2 freezer and the eBPF device filter on the
// cgroup2 mount.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "runtime/cgroups/cgroupfs.hpp"
#include "runtime/cgroups/devices_bpf.hpp"
#include "runtime/cgroups/manager.hpp"
#include "runtime/cgroups/resources.hpp"
#include "runtime/cgroups/v1.hpp"
#include "runtime/cgroups/v2.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "spec/config.hpp"
#include "tests/support.hpp"

namespace cgroups_resources {
using sandlock::testing::TempDir;
using namespace sandlock;
using namespace sandlock::cgroups;
using nlohmann::json;

// A fake cgroup directory: the interface files exist (empty), as the kernel would offer them.
void touch_all(const std::string& dir, const std::vector<std::string>& files) {
    fs::mkdir_p(dir);
    for (const auto& f : files) std::ofstream(dir + "/" + f) << "";
}

void put(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read(const std::string& path) {
    std::string s = fs::read_file(path);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

Resources parse(const std::string& text) { return parse_resources(json::parse(text)); }

bool is_root() { return ::geteuid() == 0; }

// A forked child running body(), killed and reaped on scope exit.
struct Child {
    pid_t pid = -1;
    explicit Child(const std::function<void()>& body) {
        pid = ::fork();
        if (pid == 0) {
            body();
            ::_exit(0);
        }
        BOOST_REQUIRE(pid > 0);
    }
    int wait_status() {
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
        return status;
    }
    ~Child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
};

// A cgroup directory made by the test itself (removed, with retries, at the end).
struct OwnCgroup {
    std::string dir;
    explicit OwnCgroup(std::string d) : dir(std::move(d)) { BOOST_REQUIRE(::mkdir(dir.c_str(), 0755) == 0); }
    ~OwnCgroup() {
        for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
};

[[noreturn]] void spin_forever() {
    volatile unsigned long counter = 0;  // volatile: the loop must not be optimized away
    for (;;) counter = counter + 1;
}

unsigned long long cpu_ticks(pid_t pid) {
    std::string stat = fs::read_file("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; in >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) {
            stime = std::stoull(field);
            break;
        }
    }
    return utime + stime;
}

}  // namespace cgroups_resources

BOOST_AUTO_TEST_SUITE(cgroups_resources)

// ---------------------------------------------------------------- parsing

BOOST_AUTO_TEST_CASE(parse_full_resources) {
    Resources r = parse(R"({
      "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10,
                 "disableOOMKiller": true, "useHierarchy": true, "checkBeforeUpdate": true},
      "cpu": {"shares": 512, "quota": 50000, "burst": 1000, "period": 100000, "realtimeRuntime": 0,
              "realtimePeriod": 0, "cpus": "0-1", "mems": "0", "idle": 0},
      "pids": {"limit": 100},
      "blockIO": {"weight": 500, "leafWeight": 300,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 600}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
      "unified": {"memory.high": "50000000", "hugetlb.1GB.max": "0"},
      "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
    })");
    BOOST_REQUIRE(r.memory);
    BOOST_TEST(*r.memory->limit == 67108864);
    BOOST_TEST(*r.memory->swap == 134217728);
    BOOST_TEST(*r.memory->swappiness == 10u);
    BOOST_TEST(*r.memory->disable_oom_killer);
    BOOST_TEST(*r.cpu->shares == 512u);
    BOOST_TEST(*r.cpu->quota == 50000);
    BOOST_TEST(r.cpu->cpus == "0-1");
    BOOST_TEST(*r.pids_limit == 100);
    BOOST_TEST(*r.block_io->weight == 500);
    BOOST_TEST(r.block_io->weight_device.size() == 1u);
    BOOST_TEST(r.block_io->throttle_read_bps[0].rate == 1048576u);
    BOOST_TEST(r.hugepage_limits[0].page_size == "2MB");
    BOOST_TEST(*r.network->class_id == 1048577u);
    BOOST_TEST(r.network->priorities[0].first == "eth0");
    BOOST_TEST(*r.rdma["mlx5_1"].hca_handles == 3u);
    BOOST_TEST(r.unified.at("memory.high") == "50000000");
    BOOST_REQUIRE(r.devices);
    BOOST_TEST(r.devices->size() == 2u);
    BOOST_TEST(((*r.devices)[0] == DeviceRule{false, 'a', -1, -1, "rwm"}));
    BOOST_TEST(((*r.devices)[1] == DeviceRule{true, 'c', 10, 229, "rw"}));
}

BOOST_AUTO_TEST_CASE(parse_empty_and_zero_values_are_unset) {
    Resources r = parse(R"({"memory": {"limit": 0}, "cpu": {"shares": 0, "period": 0}, "pids": {"limit": 0}})");
    BOOST_TEST(!r.memory->limit);
    BOOST_TEST(!r.cpu->shares);
    BOOST_TEST(!r.cpu->period);
    BOOST_TEST(!r.pids_limit);
    BOOST_TEST(!r.devices);  // absent devices: the device cgroup is left alone
    BOOST_TEST(!parse_resources(json()).memory);
    BOOST_TEST(*parse(R"({"pids": {"limit": -1}})").pids_limit == -1);
}

BOOST_AUTO_TEST_CASE(parse_errors_name_the_json_path) {
    auto err = [](const std::string& text) { return error_of([&] { parse(text); }); };
    BOOST_TEST(err(R"({"memory": {"limit": -5}})") == ".linux.resources.memory.limit: must be -1 or positive");
    BOOST_TEST(err(R"({"memory": {"limit": 1000, "swap": 500}})").find(".linux.resources.memory.swap:") == 0u);
    BOOST_TEST(err(R"({"memory": {"swappiness": 101}})") ==
               ".linux.resources.memory.swappiness: must be between 0 and 100, got 101");
    BOOST_TEST(err(R"({"memory": {"limit": "1g"}})").find(".linux.resources.memory.limit: expected") == 0u);
    BOOST_TEST(err(R"({"cpu": {"shares": 1}})") ==
               ".linux.resources.cpu.shares: must be between 2 and 262144, got 1");
    BOOST_TEST(err(R"({"cpu": {"period": 10}})").find(".linux.resources.cpu.period:") == 0u);
    BOOST_TEST(err(R"({"cpu": {"quota": 5}})").find(".linux.resources.cpu.quota:") == 0u);
    BOOST_TEST(err(R"({"cpu": {"cpus": "0-"}})") == ".linux.resources.cpu.cpus: invalid cpu list \"0-\"");
    BOOST_TEST(err(R"({"pids": {"limit": -2}})") == ".linux.resources.pids.limit: must be -1 or positive");
    BOOST_TEST(err(R"({"blockIO": {"weight": 5}})") ==
               ".linux.resources.blockIO.weight: must be between 10 and 1000, got 5");
    BOOST_TEST(err(R"({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}})") ==
               ".linux.resources.blockIO.throttleReadBpsDevice[0].minor: missing");
    BOOST_TEST(err(R"({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})").find(
                   ".linux.resources.hugepageLimits[0].pageSize: invalid page size") == 0u);
    BOOST_TEST(err(R"({"unified": {"memory.bogus": "1"}})") ==
               ".linux.resources.unified[\"memory.bogus\"]: unknown cgroup v2 resource");
    BOOST_TEST(err(R"({"unified": {"../../etc/passwd": "1"}})").find("unknown cgroup v2 resource") !=
               std::string::npos);
    BOOST_TEST(err(R"({"devices": [{"allow": true, "type": "x"}]})") ==
               ".linux.resources.devices[0].type: must be \"a\", \"b\" or \"c\", got \"x\"");
    BOOST_TEST(err(R"({"devices": [{"allow": true, "access": "rwx"}]})").find(".linux.resources.devices[0].access:") ==
               0u);
    BOOST_TEST(err(R"({"devices": [{"type": "c"}]})") == ".linux.resources.devices[0].allow: missing");
}

BOOST_AUTO_TEST_CASE(unified_keys) {
    for (const char* ok : {"memory.high", "cpu.weight", "io.max", "pids.max", "hugetlb.2MB.max",
                           "hugetlb.1GB.rsvd.max", "cpuset.cpus.partition"})
        BOOST_TEST(is_known_unified_key(ok), ok);
    for (const char* bad : {"memory", "memory.stat", "cgroup.procs", "cgroup.subtree_control", "hugetlb.3MB.max",
                            "memory.high/x", "", "cpu.weight "})
        BOOST_TEST(!is_known_unified_key(bad), bad);
}

BOOST_AUTO_TEST_CASE(v1_to_v2_formulas) {
    BOOST_TEST(cpu_shares_to_weight(2) == 1u);
    BOOST_TEST(cpu_shares_to_weight(1024) == 39u);  // 1 + 1022*9999/262142
    BOOST_TEST(cpu_shares_to_weight(262144) == 10000u);
    BOOST_TEST(blkio_weight_to_io_weight(10) == 1u);
    BOOST_TEST(blkio_weight_to_io_weight(500) == 4950u);
    BOOST_TEST(blkio_weight_to_io_weight(1000) == 10000u);
    BOOST_TEST(v2_swap_max(-1, 100) == "max");
    BOOST_TEST(v2_swap_max(512, 256) == "256");
    BOOST_TEST(v2_swap_max(256, 256) == "0");
    BOOST_TEST(error_of([] { v2_swap_max(100, 200); }).find("smaller than the memory limit") != std::string::npos);
    BOOST_TEST(error_of([] { v2_swap_max(100, std::nullopt); }).find("needs a memory limit") != std::string::npos);
    BOOST_TEST(v2_cpu_max(50000, 100000) == "50000 100000");
    BOOST_TEST(v2_cpu_max(-1, std::nullopt) == "max 100000");
    BOOST_TEST(limit_text(-1) == "max");
}

BOOST_AUTO_TEST_CASE(memory_sizes_like_runc) {
    BOOST_TEST(parse_memory_size("64m") == 64 * 1024 * 1024);
    BOOST_TEST(parse_memory_size("64M") == 64 * 1024 * 1024);
    BOOST_TEST(parse_memory_size("1g") == 1024LL * 1024 * 1024);
    BOOST_TEST(parse_memory_size("10kb") == 10240);
    BOOST_TEST(parse_memory_size("4096") == 4096);
    BOOST_TEST(parse_memory_size("-1") == -1);
    BOOST_TEST(error_of([] { parse_memory_size("12x"); }) == "invalid value for memory: \"12x\"");
    BOOST_TEST(error_of([] { parse_memory_size("m"); }) != "(no error)");
    BOOST_TEST(error_of([] { parse_memory_size("-5"); }) != "(no error)");
}

BOOST_AUTO_TEST_CASE(default_devices_follow_the_rules) {
    Resources none;
    add_default_devices(none, {});
    BOOST_TEST(!none.devices);
    Resources r = parse(R"({"devices": [{"allow": false, "access": "rwm"}]})");
    spec::Device fuse;
    fuse.type = "c";
    fuse.major = 10;
    fuse.minor = 229;
    add_default_devices(r, {fuse});
    BOOST_TEST(r.devices->front().allow == false);
    BOOST_TEST((r.devices->back() == DeviceRule{true, 'c', 10, 229, "rwm"}));
    bool has_null = false;
    for (const auto& d : *r.devices) has_null |= d == DeviceRule{true, 'c', 1, 3, "rwm"};
    BOOST_TEST(has_null);
    BOOST_TEST(device_rule_text(DeviceRule{true, 'c', 136, -1, "rwm"}) == "c 136:* rwm");
}

// ---------------------------------------------------------------- fake trees

BOOST_AUTO_TEST_CASE(fake_v1_apply_writes_each_controller) {
    TempDir tmp;
    std::map<std::string, std::string> dirs;
    for (const char* c : {"memory", "cpu", "cpuset", "pids", "blkio", "devices"}) dirs[c] = tmp.path + "/" + c;
    touch_all(dirs["memory"], {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
                               "memory.swappiness", "memory.oom_control", "memory.usage_in_bytes"});
    touch_all(dirs["cpu"], {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"});
    touch_all(dirs["cpuset"], {"cpuset.cpus", "cpuset.mems"});
    touch_all(dirs["pids"], {"pids.max"});
    touch_all(dirs["blkio"], {"blkio.bfq.weight", "blkio.throttle.read_bps_device"});
    touch_all(dirs["devices"], {"devices.allow", "devices.deny"});
    Resources r = parse(R"({"memory": {"limit": 16777216, "swap": 33554432, "reservation": 8388608,
                                        "swappiness": 0, "disableOOMKiller": true},
                            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
                            "pids": {"limit": -1},
                            "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
                            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]})");
    apply_v1_resources(r, dirs);
    BOOST_TEST(read(dirs["memory"] + "/memory.limit_in_bytes") == "16777216");
    BOOST_TEST(read(dirs["memory"] + "/memory.memsw.limit_in_bytes") == "33554432");
    BOOST_TEST(read(dirs["memory"] + "/memory.soft_limit_in_bytes") == "8388608");
    BOOST_TEST(read(dirs["memory"] + "/memory.swappiness") == "0");
    BOOST_TEST(read(dirs["memory"] + "/memory.oom_control") == "1");
    BOOST_TEST(read(dirs["cpu"] + "/cpu.shares") == "512");
    BOOST_TEST(read(dirs["cpu"] + "/cpu.cfs_quota_us") == "20000");
    BOOST_TEST(read(dirs["cpu"] + "/cpu.cfs_period_us") == "100000");
    BOOST_TEST(read(dirs["cpuset"] + "/cpuset.cpus") == "0");
    BOOST_TEST(read(dirs["pids"] + "/pids.max") == "max");
    BOOST_TEST(read(dirs["blkio"] + "/blkio.bfq.weight") == "300");  // no CFQ file: BFQ's
    BOOST_TEST(read(dirs["blkio"] + "/blkio.throttle.read_bps_device") == "8:0 1000");
    BOOST_TEST(read(dirs["devices"] + "/devices.allow") == "c 1:3 rw");  // the last write
    BOOST_TEST(read(dirs["devices"] + "/devices.deny") == "a");

    // unified on v1, a missing controller, swap without accounting: clear errors.
    BOOST_TEST(error_of([&] { apply_v1_resources(parse(R"({"unified": {"memory.high": "1"}})"), dirs); })
                   .find("needs cgroup v2") != std::string::npos);
    auto no_pids = dirs;
    no_pids.erase("pids");
    BOOST_TEST(error_of([&] { apply_v1_resources(parse(R"({"pids": {"limit": 5}})"), no_pids); })
                   .find("\"pids\" controller is not mounted") != std::string::npos);
    ::unlink((dirs["memory"] + "/memory.memsw.limit_in_bytes").c_str());
    BOOST_TEST(error_of([&] { apply_v1_resources(parse(R"({"memory": {"limit": 100000, "swap": 200000}})"), dirs); })
                   .find("does not account swap") != std::string::npos);
    // checkBeforeUpdate refuses a limit below the usage.
    put(dirs["memory"] + "/memory.usage_in_bytes", "5000000\n");
    BOOST_TEST(error_of([&] {
                   apply_v1_resources(parse(R"({"memory": {"limit": 4194304, "checkBeforeUpdate": true}})"), dirs);
               }).find("below the current usage 5000000") != std::string::npos);
}

// What a host cannot honour is refused, never dropped with a warning (issue 16).
BOOST_AUTO_TEST_CASE(fake_v1_refuses_what_the_host_lacks) {
    TempDir tmp;
    std::map<std::string, std::string> dirs{{"memory", tmp.path + "/memory"}, {"blkio", tmp.path + "/blkio"}};
    touch_all(dirs["memory"], {"memory.limit_in_bytes"});
    touch_all(dirs["blkio"], {"blkio.weight"});
    BOOST_TEST(error_of([&] { apply_v1_resources(parse(R"({"network": {"classID": 1048577}})"), dirs); }) ==
               "cgroups: cannot apply linux.resources.network.classID: the v1 \"net_cls\" controller is not mounted");
    BOOST_TEST(error_of([&] {
                   apply_v1_resources(parse(R"({"network": {"priorities": [{"name": "lo", "priority": 1}]}})"), dirs);
               }) == "cgroups: cannot apply linux.resources.network.priorities: the v1 \"net_prio\" controller is not mounted");
    BOOST_TEST(error_of([&] {
                   apply_v1_resources(parse(R"({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})"), dirs);
               }).find("\"hugetlb\" controller is not mounted") != std::string::npos);
    BOOST_TEST(error_of([&] { apply_v1_resources(parse(R"({"memory": {"kernel": 1048576}})"), dirs); }) ==
               "cgroups: cannot apply linux.resources.memory.kernel: this kernel offers no memory.kmem.limit_in_bytes");
    BOOST_TEST(error_of([&] { apply_v1_resources(parse(R"({"blockIO": {"leafWeight": 100}})"), dirs); })
                   .find("blockIO.leafWeight: this kernel offers no blkio.leaf_weight") != std::string::npos);
    // With the files there, they are written.
    touch_all(dirs["memory"], {"memory.kmem.limit_in_bytes"});
    apply_v1_resources(parse(R"({"memory": {"kernel": 1048576}})"), dirs);
    BOOST_TEST(read(dirs["memory"] + "/memory.kmem.limit_in_bytes") == "1048576");
}

BOOST_AUTO_TEST_CASE(fake_v2_refuses_v1_only_settings_before_writing) {
    TempDir tmp;
    std::string dir = tmp.path + "/ctr";
    touch_all(dir, {"memory.max", "io.weight"});
    for (const char* text : {R"({"memory": {"limit": 1048576, "swappiness": 10}})",
                             R"({"memory": {"limit": 1048576, "disableOOMKiller": true}})",
                             R"({"memory": {"limit": 1048576, "kernel": 1}})",
                             R"({"memory": {"limit": 1048576, "kernelTCP": 1}})",
                             R"({"memory": {"limit": 1048576}, "blockIO": {"leafWeight": 10}})",
                             R"({"memory": {"limit": 1048576}, "network": {"classID": 1}})",
                             R"({"memory": {"limit": 1048576}, "network": {"priorities": [{"name": "lo", "priority": 1}]}})"}) {
        std::string err = error_of([&] { apply_v2_resources(parse(text), dir); });
        BOOST_TEST(err.find("cgroups: cannot apply linux.resources.") == 0u, text << ": " << err);
        BOOST_TEST(err.find("cgroup v2 has no equivalent") != std::string::npos, err);
        BOOST_TEST(read(dir + "/memory.max").empty(), "nothing written before the refusal");
    }
    // Not requested: disableOOMKiller false.
    apply_v2_resources(parse(R"({"memory": {"limit": 1048576, "disableOOMKiller": false}})"), dir);
    BOOST_TEST(read(dir + "/memory.max") == "1048576");
}

BOOST_AUTO_TEST_CASE(fake_v2_apply_translates) {
    TempDir tmp;
    std::string dir = tmp.path + "/ctr";
    touch_all(dir, {"cpu.weight", "cpu.max", "cpu.max.burst", "cpuset.cpus", "memory.max", "memory.swap.max",
                    "memory.low", "memory.high", "pids.max", "io.weight", "io.max", "hugetlb.2MB.max"});
    put(dir + "/cpu.max", "max 100000\n");
    Resources r = parse(R"({"memory": {"limit": 268435456, "swap": 536870912, "reservation": 1048576},
                            "cpu": {"shares": 1024, "quota": 50000, "cpus": "0"},
                            "pids": {"limit": 64},
                            "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
                            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                            "unified": {"memory.high": "200000000", "pids.max": "32"}})");
    apply_v2_resources(r, dir);
    BOOST_TEST(read(dir + "/memory.max") == "268435456");
    BOOST_TEST(read(dir + "/memory.swap.max") == "268435456");  // swap - limit
    BOOST_TEST(read(dir + "/memory.low") == "1048576");
    BOOST_TEST(read(dir + "/cpu.weight") == "39");
    BOOST_TEST(read(dir + "/cpu.max") == "50000 100000");
    BOOST_TEST(read(dir + "/cpuset.cpus") == "0");
    BOOST_TEST(read(dir + "/io.weight") == "default 4950");
    BOOST_TEST(read(dir + "/io.max") == "8:16 wiops=300");
    BOOST_TEST(read(dir + "/hugetlb.2MB.max") == "4194304");
    BOOST_TEST(read(dir + "/memory.high") == "200000000");
    BOOST_TEST(read(dir + "/pids.max") == "32");  // unified wins over pids.limit

    // An update of the period alone keeps the quota already set.
    apply_v2_resources(parse(R"({"cpu": {"period": 200000}})"), dir);
    BOOST_TEST(read(dir + "/cpu.max") == "50000 200000");
    // -1: "max"
    apply_v2_resources(parse(R"({"memory": {"limit": -1}, "pids": {"limit": -1}})"), dir);
    BOOST_TEST(read(dir + "/memory.max") == "max");
    BOOST_TEST(read(dir + "/pids.max") == "max");
    // BFQ present: the v1 weight goes there unchanged.
    touch_all(dir, {"io.bfq.weight"});
    apply_v2_resources(parse(R"({"blockIO": {"weight": 500}})"), dir);
    BOOST_TEST(read(dir + "/io.bfq.weight") == "500");
    // A controller that is not enabled: its files are missing.
    BOOST_TEST(error_of([&] { apply_v2_resources(parse(R"({"unified": {"memory.min": "1"}})"), dir); })
                   .find("does not exist") != std::string::npos);
    BOOST_TEST(error_of([&] { apply_v2_resources(parse(R"({"cpu": {"idle": 1}})"), dir); })
                   .find("\"cpu\" controller is not enabled") != std::string::npos);
    BOOST_TEST(error_of([&] { apply_v2_resources(parse(R"({"cpu": {"realtimeRuntime": 950000}})"), dir); })
                   .find("not supported on cgroup v2") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(fake_v1_stats_shape) {
    TempDir tmp;
    std::map<std::string, std::string> dirs;
    for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"}) dirs[c] = tmp.path + "/" + c;
    touch_all(dirs["cpu"], {});
    put(dirs["cpu"] + "/cpu.stat", "nr_periods 10\nnr_throttled 3\nthrottled_time 5000\n");
    touch_all(dirs["cpuacct"], {});
    put(dirs["cpuacct"] + "/cpuacct.usage", "123456\n");
    put(dirs["cpuacct"] + "/cpuacct.usage_percpu", "100000 23456 \n");
    put(dirs["cpuacct"] + "/cpuacct.stat", "user 2\nsystem 1\n");
    touch_all(dirs["memory"], {});
    put(dirs["memory"] + "/memory.usage_in_bytes", "4096\n");
    put(dirs["memory"] + "/memory.limit_in_bytes", "16777216\n");
    put(dirs["memory"] + "/memory.max_usage_in_bytes", "16777216\n");
    put(dirs["memory"] + "/memory.failcnt", "42\n");
    put(dirs["memory"] + "/memory.stat", "cache 8192\nrss 4096\n");
    put(dirs["memory"] + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    touch_all(dirs["pids"], {});
    put(dirs["pids"] + "/pids.current", "3\n");
    put(dirs["pids"] + "/pids.max", "max\n");
    touch_all(dirs["blkio"], {});
    put(dirs["blkio"] + "/blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
    json s = v1_stats(dirs);
    long ticks = ::sysconf(_SC_CLK_TCK);
    BOOST_TEST(s["cpu"]["usage"]["total"] == 123456u);
    BOOST_TEST(s["cpu"]["usage"]["percpu"] == json({100000, 23456}));
    BOOST_TEST(s["cpu"]["usage"]["user"] == 2u * (1000000000u / ticks));
    BOOST_TEST(s["cpu"]["throttling"]["throttledPeriods"] == 3u);
    BOOST_TEST(s["memory"]["usage"]["usage"] == 4096u);
    BOOST_TEST(s["memory"]["usage"]["failcnt"] == 42u);
    BOOST_TEST(s["memory"]["usage"]["limit"] == 16777216u);
    BOOST_TEST(s["memory"]["cache"] == 8192u);
    BOOST_TEST(s["memory"]["raw"]["oom_kill"] == 1u);
    BOOST_TEST(s["pids"]["current"] == 3u);
    BOOST_TEST(!s["pids"].contains("limit"));  // "max", omitted as runc does
    BOOST_TEST(s["blkio"]["ioServiceBytesRecursive"].size() == 2u);
    BOOST_TEST(s["blkio"]["ioServiceBytesRecursive"][0]["op"] == "Read");
    BOOST_TEST(s["blkio"]["ioServiceBytesRecursive"][0]["value"] == 4096u);
    BOOST_TEST(s.contains("hugetlb"));
    BOOST_TEST(s["network_interfaces"].is_null());
}

BOOST_AUTO_TEST_CASE(fake_v2_stats_and_freeze) {
    TempDir tmp;
    std::string dir = tmp.path + "/ctr";
    touch_all(dir, {"cgroup.freeze"});
    put(dir + "/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 7\n");
    put(dir + "/memory.current", "8192\n");
    put(dir + "/memory.max", "max\n");
    put(dir + "/memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n");
    put(dir + "/memory.stat", "anon 4096\nfile 4096\n");
    put(dir + "/pids.current", "2\n");
    put(dir + "/pids.max", "10\n");
    put(dir + "/io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
    json s = v2_stats(dir);
    BOOST_TEST(s["cpu"]["usage"]["total"] == 1500000u);
    BOOST_TEST(s["cpu"]["usage"]["kernel"] == 500000u);
    BOOST_TEST(s["cpu"]["throttling"]["throttledTime"] == 7000u);
    BOOST_TEST(s["memory"]["usage"]["limit"] == UINT64_MAX);
    BOOST_TEST(s["memory"]["usage"]["failcnt"] == 5u);
    BOOST_TEST(s["memory"]["cache"] == 4096u);
    BOOST_TEST(s["memory"]["raw"]["oom_kill"] == 1u);
    BOOST_TEST(s["pids"]["limit"] == 10u);
    BOOST_TEST(s["blkio"]["ioServiceBytesRecursive"][1]["value"] == 200u);
    // No cgroup.events (fake): freeze trusts the write.
    v2_set_frozen(dir, true);
    BOOST_TEST(read(dir + "/cgroup.freeze") == "1");
    BOOST_TEST(v2_is_frozen(dir));
    v2_set_frozen(dir, false);
    BOOST_TEST(!v2_is_frozen(dir));
}

BOOST_AUTO_TEST_CASE(manager_methods_on_fake_v2_tree) {
    TempDir tmp;
    Hierarchy h = probe("30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/init.scope\n", "pids");
    fs::mkdir_p(tmp.path + "/sys/fs/cgroup");
    auto m = make_manager(h, "/ctr", tmp.path);
    m->create();
    std::string dir = tmp.path + "/sys/fs/cgroup/ctr";
    touch_all(dir, {"pids.max", "cgroup.freeze"});
    m->apply(parse(R"({"pids": {"limit": 7}})"));
    BOOST_TEST(read(dir + "/pids.max") == "7");
    BOOST_TEST(!is_frozen(m->to_state()));
    m->freeze();
    BOOST_TEST(is_frozen(m->to_state()));
    m->thaw();
    BOOST_TEST(!is_frozen(json()));
    BOOST_TEST(!is_frozen(json{{"kind", "bogus"}}));
}

BOOST_AUTO_TEST_CASE(device_program_shape) {
    // Deny all, then allow c 1:3 rw: one block for the allow (type, access, major, minor, r0, exit),
    // the deny-all block (r0, exit) ends the walk; no epilogue.
    auto prog = build_device_program({DeviceRule{false, 'a', -1, -1, "rwm"}, DeviceRule{true, 'c', 1, 3, "rw"}});
    BOOST_TEST(prog.size() == 6u + 8u + 2u);
    BOOST_TEST(prog[6].code == (BPF_JMP32 | BPF_JNE | BPF_K));
    BOOST_TEST(prog[6].imm == BPF_DEVCG_DEV_CHAR);
    BOOST_TEST(prog[6].off == 7);  // to the deny-all block
    BOOST_TEST(prog[8].imm == BPF_DEVCG_ACC_MKNOD);  // bits the rule does not grant
    BOOST_TEST(prog[12].imm == 1);  // allow
    BOOST_TEST(prog.back().code == (BPF_JMP | BPF_EXIT));
    // No rules: prologue plus "deny".
    BOOST_TEST(build_device_program({}).size() == 8u);
    // Rules before a match-all rule are dropped.
    auto short_prog = build_device_program({DeviceRule{true, 'c', 1, 3, "rwm"}, DeviceRule{true, 'a', -1, -1, "rwm"}});
    BOOST_TEST(short_prog.size() == 8u);
}

// ---------------------------------------------------------------- real host (root)

namespace {

std::optional<std::string> cgroup2_mount() {
    if (!is_root()) return std::nullopt;
    Hierarchy h = probe_host();
    if (!h.v2) return std::nullopt;
    return h.v2->mount_point;
}

bool real_v2(boost::unit_test::test_unit_id) { return cgroup2_mount().has_value(); }
bool real_v1(boost::unit_test::test_unit_id) { return is_root() && probe_host().mode != Mode::Unified; }

// In a forked child: move into dir or exit 90.
void join_or_exit(const std::string& dir) {
    if (cgroupfs::try_write(dir, "cgroup.procs", std::to_string(::getpid())) != 0) ::_exit(90);
}

int open_errno(const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ::close(fd);
        return 0;
    }
    return errno;
}

struct ManagerGuard {
    Manager* m;
    ~ManagerGuard() {
        try {
            m->destroy();
        } catch (...) {
        }
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(real_v2_device_filter_denies_and_is_replaced, *boost::unit_test::precondition(real_v2)) {
    OwnCgroup cg(*cgroup2_mount() + "/sandlock-res-test-" + std::to_string(::getpid()));
    // Later rules win: everything allowed, then /dev/null denied.
    attach_device_filter(cg.dir, {DeviceRule{true, 'a', -1, -1, "rwm"}, DeviceRule{false, 'c', 1, 3, "rwm"}});
    Child denied([&] {
        join_or_exit(cg.dir);
        ::_exit(open_errno("/dev/null") == EPERM && open_errno("/dev/zero") == 0 ? 0 : 1);
    });
    int status = denied.wait_status();
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "status " << status);
    // A new rule set replaces the old program (else both would have to allow).
    attach_device_filter(cg.dir, {DeviceRule{true, 'c', 1, 3, "r"}});
    Child replaced([&] {
        join_or_exit(cg.dir);
        bool ok = open_errno("/dev/null") == 0 && open_errno("/dev/zero") == EPERM &&
                  ::open("/dev/null", O_WRONLY | O_CLOEXEC) < 0 && errno == EPERM;
        ::_exit(ok ? 0 : 1);
    });
    status = replaced.wait_status();
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "status " << status);
}

BOOST_AUTO_TEST_CASE(real_v2_freeze_stops_a_busy_process, *boost::unit_test::precondition(real_v2)) {
    OwnCgroup cg(*cgroup2_mount() + "/sandlock-res-freeze-" + std::to_string(::getpid()));
    Child busy([&] {
        join_or_exit(cg.dir);
        spin_forever();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    v2_set_frozen(cg.dir, true);
    BOOST_TEST(v2_is_frozen(cg.dir));
    BOOST_TEST(cgroupfs::read_keyed(cg.dir, "cgroup.events")["frozen"] == 1u);
    auto before = cpu_ticks(busy.pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    BOOST_TEST(cpu_ticks(busy.pid) - before <= 1u);
    v2_set_frozen(cg.dir, false);
    BOOST_TEST(!v2_is_frozen(cg.dir));
    before = cpu_ticks(busy.pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    BOOST_TEST(cpu_ticks(busy.pid) - before >= 5u);
}

BOOST_AUTO_TEST_CASE(real_v1_apply_stats_freeze, *boost::unit_test::precondition(real_v1)) {
    auto m = make_manager(probe_host(), "/sandlock-res-test-" + std::to_string(::getpid()));
    m->create();
    ManagerGuard guard{m.get()};
    auto dirs = m->dirs();
    m->apply(parse(R"({"memory": {"limit": 33554432, "swap": 67108864},
                       "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                       "pids": {"limit": 10}})"));
    BOOST_TEST(read(dirs["memory"] + "/memory.limit_in_bytes") == "33554432");
    if (fs::exists(dirs["memory"] + "/memory.memsw.limit_in_bytes"))
        BOOST_TEST(read(dirs["memory"] + "/memory.memsw.limit_in_bytes") == "67108864");
    BOOST_TEST(read(dirs["cpu"] + "/cpu.shares") == "512");
    BOOST_TEST(read(dirs["cpu"] + "/cpu.cfs_quota_us") == "50000");
    BOOST_TEST(read(dirs["pids"] + "/pids.max") == "10");
    // Update both ways: the memsw/limit write order must adapt.
    m->apply(parse(R"({"memory": {"limit": 134217728, "swap": 268435456}})"));
    BOOST_TEST(read(dirs["memory"] + "/memory.limit_in_bytes") == "134217728");
    m->apply(parse(R"({"memory": {"limit": 16777216, "swap": 16777216}})"));
    BOOST_TEST(read(dirs["memory"] + "/memory.limit_in_bytes") == "16777216");
    m->apply(parse(R"({"pids": {"limit": -1}})"));
    BOOST_TEST(read(dirs["pids"] + "/pids.max") == "max");
    BOOST_TEST(error_of([&] { m->apply(parse(R"({"cpu": {"cpus": "999"}})")); }).find("cpuset.cpus") !=
               std::string::npos);

    Child busy([&] {
        spin_forever();
    });
    m->add_process(busy.pid);
    json stats = m->stats();
    BOOST_TEST(stats["pids"]["current"] == 1u);
    BOOST_TEST(stats["memory"]["usage"]["limit"] == 16777216u);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    m->freeze();
    BOOST_TEST(m->frozen());
    BOOST_TEST(is_frozen(m->to_state()));
    auto before = cpu_ticks(busy.pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    BOOST_TEST(cpu_ticks(busy.pid) - before <= 1u);
    m->thaw();
    BOOST_TEST(!m->frozen());
    before = cpu_ticks(busy.pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    BOOST_TEST(cpu_ticks(busy.pid) - before >= 5u);
    BOOST_TEST(m->stats()["cpu"]["usage"]["total"].get<uint64_t>() > 0u);
}

BOOST_AUTO_TEST_CASE(update_merges_into_the_saved_resources) {
    json saved = json::parse(R"({"memory": {"limit": 67108864, "swap": 134217728},
                                  "cpu": {"shares": 512, "quota": 50000},
                                  "devices": [{"allow": false, "access": "rwm"}],
                                  "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}})");
    json delta = json::parse(R"({"memory": {"limit": 33554432}, "cpu": {"period": 200000},
                                  "pids": {"limit": 30}, "devices": [], "unified": null,
                                  "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 16, "rate": 2}]}})");
    merge_resources_update(saved, delta);
    BOOST_TEST(saved["memory"]["limit"] == 33554432);
    BOOST_TEST(saved["memory"]["swap"] == 134217728);  // kept
    BOOST_TEST(saved["cpu"]["shares"] == 512);
    BOOST_TEST(saved["cpu"]["quota"] == 50000);
    BOOST_TEST(saved["cpu"]["period"] == 200000);
    BOOST_TEST(saved["pids"]["limit"] == 30);
    BOOST_TEST(saved["devices"].size() == 1u);  // update never changes devices
    BOOST_TEST(!saved.contains("unified"));
    BOOST_TEST(saved["blockIO"]["throttleReadBpsDevice"].size() == 1u);  // lists are replaced
    BOOST_TEST(saved["blockIO"]["throttleReadBpsDevice"][0]["minor"] == 16);

    json none;  // a config without linux.resources
    merge_resources_update(none, json::parse(R"({"pids": {"limit": 5}})"));
    BOOST_TEST(none == json::parse(R"({"pids": {"limit": 5}})"));
    json bad = json::array();
    BOOST_TEST(error_of([&] { merge_resources_update(bad, json::object()); }).find("not a JSON object") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(v2_update_of_the_limit_alone_rederives_swap_max) {
    TempDir tmp;
    std::string dir = tmp.path + "/c";
    touch_all(dir, {"memory.max", "memory.swap.max", "memory.low"});
    Resources current = parse_resources(json::parse(R"({"memory": {"limit": 33554432, "swap": 134217728}})"));
    Resources update = parse_resources(json::parse(R"({"memory": {"limit": 33554432}})"), "resources");
    complete_v2_memory_update(update, current);
    apply_v2_resources(update, dir);
    BOOST_TEST(read(dir + "/memory.max") == "33554432");
    BOOST_TEST(read(dir + "/memory.swap.max") == std::to_string(134217728 - 33554432));

    // swap alone takes the limit; an update without memory is left alone
    current = parse_resources(json::parse(R"({"memory": {"limit": 33554432, "swap": 67108864}})"));
    update = parse_resources(json::parse(R"({"memory": {"swap": 67108864}})"), "resources");
    complete_v2_memory_update(update, current);
    BOOST_REQUIRE(update.memory->limit.has_value());
    BOOST_TEST(*update.memory->limit == 33554432);
    apply_v2_resources(update, dir);
    BOOST_TEST(read(dir + "/memory.swap.max") == "33554432");
    Resources pids_only = parse_resources(json::parse(R"({"pids": {"limit": 3}})"), "resources");
    complete_v2_memory_update(pids_only, current);
    BOOST_TEST(!pids_only.memory.has_value());
}

BOOST_AUTO_TEST_SUITE_END()
