// Cgroup layout probing, cgroupsPath resolution, and the managers: on a fake
// tree in a temp dir, and (as root) on this host's real cgroup hierarchies.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "runtime/cgroups/fs_manager.hpp"
#include "runtime/cgroups/hierarchy.hpp"
#include "runtime/cgroups/manager.hpp"
#include "runtime/cgroups/path.hpp"
#include "runtime/cgroups/resources.hpp"
#include "runtime/cgroups/systemd.hpp"
#include "runtime/cgroups/v1.hpp"
#include "runtime/cgroups/v2.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"
#include "runtime/util/scope.hpp"
#include "tests/support.hpp"

namespace cgroup_managers {
using sandlock::testing::TempDir;
using namespace sandlock;
using namespace sandlock::cgroups;

// ---- RAII guards: every test cleans up even when an assertion fails.

struct DestroyGuard {
    Manager* manager;
    ~DestroyGuard() {
        try {
            if (manager) manager->destroy();
        } catch (...) {
        }
    }
};

// A forked child that sleeps until killed; killed and reaped on scope exit.
struct SleepingChild {
    pid_t pid = -1;
    SleepingChild() {
        pid = ::fork();
        if (pid == 0) {
            for (;;) ::pause();
        }
        BOOST_REQUIRE(pid > 0);
    }
    void kill_and_reap() {
        if (pid <= 0) return;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    ~SleepingChild() { kill_and_reap(); }
};

void write(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    BOOST_REQUIRE(out.good());
}

std::string read(const std::string& path) { return fs::read_file(path); }

bool throws_with(const std::function<void()>& f, const std::string& needle) {
    try {
        f();
    } catch (const Error& e) {
        if (std::string(e.what()).find(needle) != std::string::npos) return true;
        BOOST_TEST_MESSAGE("unexpected message: " << e.what());
        return false;
    }
    return false;
}

// ---- fake /proc texts

const std::string kHybridMountinfo =
    "24 1 259:1 / / rw,relatime - ext4 /dev/root rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
    "rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    // A bind mount of a memory subtree: same hierarchy, must not be listed twice.
    "50 24 0:32 /docker /mnt/mem rw,relatime - cgroup cgroup rw,memory\n";

const std::string kHybridSelfCgroup =
    "9:name=systemd:/user.slice/session-1.scope\n"
    "5:devices:/user.slice\n"
    "4:memory:/process_api/abc\n"
    "3:cpuset:/\n"
    "1:cpu,cpuacct:/user.slice\n"
    "0::/user.slice/session-1.scope\n";

const std::string kUnifiedMountinfo =
    "24 1 259:1 / / rw,relatime - ext4 /dev/root rw\n"
    "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

const std::string kLegacyMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct\n"
    "33 31 0:30 / /sys/fs/cgroup/pids rw,relatime shared:11 - cgroup cgroup rw,pids\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/my\\040stuff rw,relatime - cgroup cgroup rw,name=mine\n";

std::vector<std::string> names(const std::vector<Mount>& mounts) {
    std::vector<std::string> out;
    for (const auto& m : mounts) out.push_back(m.mount_point);
    return out;
}

// Creates the mount point directories of h under root.
void make_fake_mounts(const Hierarchy& h, const std::string& root) {
    for (const auto& m : h.v1) fs::mkdir_p(root + m.mount_point);
    if (h.v2) fs::mkdir_p(root + h.v2->mount_point);
}

}  // namespace cgroup_managers

BOOST_AUTO_TEST_SUITE(cgroup_managers)

// ---------------------------------------------------------------- probe

BOOST_AUTO_TEST_CASE(probe_hybrid_finds_v1_hierarchies_and_unified_mount) {
    Hierarchy h = probe(kHybridMountinfo, kHybridSelfCgroup, "");
    BOOST_TEST(to_string(h.mode) == to_string(Mode::Hybrid));
    std::vector<std::string> expected{"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuset",
                                      "/sys/fs/cgroup/memory", "/sys/fs/cgroup/devices",
                                      "/sys/fs/cgroup/systemd"};
    BOOST_TEST(names(h.v1) == expected, boost::test_tools::per_element());
    BOOST_REQUIRE(h.v2.has_value());
    BOOST_TEST(h.v2->mount_point == "/sys/fs/cgroup/unified");
    BOOST_TEST(h.v2->controllers.empty());

    const Mount* cpu = h.find_v1("cpuacct");
    BOOST_REQUIRE(cpu);
    BOOST_TEST((cpu->controllers == std::vector<std::string>{"cpu", "cpuacct"}));
    BOOST_TEST(h.find_v1("cpuset")->controllers == std::vector<std::string>{"cpuset"});
    const Mount* sd = h.find_v1("name=systemd");
    BOOST_REQUIRE(sd);
    BOOST_TEST(sd->controllers == std::vector<std::string>{"name=systemd"});
    BOOST_TEST(h.find_v1("pids") == nullptr);

    BOOST_TEST(h.find_v1("memory")->own_path == "/process_api/abc");
    BOOST_TEST(sd->own_path == "/user.slice/session-1.scope");
    BOOST_TEST(cpu->own_path == "/user.slice");
    BOOST_TEST(h.v2->own_path == "/user.slice/session-1.scope");
}

BOOST_AUTO_TEST_CASE(probe_unified_reads_controllers) {
    Hierarchy h = probe(kUnifiedMountinfo, "0::/system.slice/x.service\n", "cpuset cpu io memory pids\n");
    BOOST_TEST(to_string(h.mode) == to_string(Mode::Unified));
    BOOST_TEST(h.v1.empty());
    BOOST_REQUIRE(h.v2.has_value());
    BOOST_TEST(h.v2->mount_point == "/sys/fs/cgroup");
    BOOST_TEST((h.v2->controllers == std::vector<std::string>{"cpuset", "cpu", "io", "memory", "pids"}));
    BOOST_TEST(h.v2->own_path == "/system.slice/x.service");
}

BOOST_AUTO_TEST_CASE(probe_legacy_unescapes_and_keeps_named_hierarchies) {
    Hierarchy h = probe(kLegacyMountinfo);
    BOOST_TEST(to_string(h.mode) == to_string(Mode::Legacy));
    BOOST_TEST(!h.v2.has_value());
    BOOST_REQUIRE_EQUAL(h.v1.size(), 4u);
    BOOST_TEST(h.v1[3].mount_point == "/sys/fs/cgroup/my stuff");
    BOOST_TEST(h.v1[3].controllers == std::vector<std::string>{"name=mine"});
    BOOST_TEST(h.v1[0].own_path == "");  // no /proc/self/cgroup given
}

BOOST_AUTO_TEST_CASE(probe_own_path_is_relative_to_the_mount_root) {
    std::string mi = "40 1 0:40 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                     "41 1 0:41 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
    Hierarchy h = probe(mi, "4:memory:/docker/abc/sub\n3:pids:/elsewhere\n");
    BOOST_TEST(h.find_v1("memory")->own_path == "/sub");
    BOOST_TEST(h.find_v1("pids")->own_path == "");  // outside the mounted subtree
    BOOST_TEST(h.find_v1("memory")->root == "/docker/abc");
}

BOOST_AUTO_TEST_CASE(probe_without_cgroups_throws) {
    BOOST_TEST(throws_with([] { probe("24 1 259:1 / / rw - ext4 /dev/root rw\n"); },
                           "no cgroup filesystem"));
}

BOOST_AUTO_TEST_CASE(unescape_mountinfo_octal) {
    BOOST_TEST(unescape_mountinfo("a\\040b\\011c\\134d") == "a b\tc\\d");
    BOOST_TEST(unescape_mountinfo("trailing\\04") == "trailing\\04");
}

// ---------------------------------------------------------------- paths

BOOST_AUTO_TEST_CASE(resolve_cgroups_path_table) {
    struct Row {
        std::string in;
        bool systemd;
        std::string out;
    };
    const Row rows[] = {
        {"/a/b", false, "/a/b"},
        {"/a/../b/./c/", false, "/b/c"},
        {"/../../x", false, "/x"},
        {"a/b", false, "a/b"},
        {"../../x", false, "x"},
        {"", false, "cid"},  // runc fs driver: the id, relative to our own cgroup
        {"x:y", false, "x:y"},  // not the systemd form: a plain relative name, as in runc
        {"a:b:c:d", false, "a:b:c:d"},
        {"", true, "/system.slice/runc-cid.scope"},
        {"system.slice:docker:abc", false, "/system.slice/docker-abc.scope"},
        {"system.slice:docker:abc", true, "/system.slice/docker-abc.scope"},
        {":docker:abc", true, "/system.slice/docker-abc.scope"},
        {"a-b.slice:p:n", false, "/a.slice/a-b.slice/p-n.scope"},
        {"kubepods-besteffort-pod1.slice:cri-containerd:abc", true,
         "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/"
         "cri-containerd-abc.scope"},
        {"machine.slice:libpod:inner.slice", true, "/machine.slice/inner.slice"},
        {"-.slice:p:n", true, "/p-n.scope"},
        {"user.slice::n", true, "/user.slice/-n.scope"},  // runc keeps the dash
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT("cgroupsPath \"" << r.in << "\" systemd=" << r.systemd) {
            BOOST_TEST(resolve_cgroups_path(r.in, "cid", r.systemd) == r.out);
        }
    }
}

BOOST_AUTO_TEST_CASE(resolve_cgroups_path_errors) {
    auto fails = [](const std::string& in, bool systemd, const std::string& needle) {
        return throws_with([&] { resolve_cgroups_path(in, "cid", systemd); }, needle);
    };
    BOOST_TEST(fails("x:y", true, "invalid cgroupsPath \"x:y\": expected \"slice:prefix:name\""));
    BOOST_TEST(fails("/kubepods/pod1/abc", true, "expected \"slice:prefix:name\""));
    BOOST_TEST(fails("a:b:c:d", true, "expected \"slice:prefix:name\""));
    BOOST_TEST(fails("a--b.slice:p:n", false, "invalid slice name \"a--b.slice\""));
    BOOST_TEST(fails("system:p:n", false, "invalid slice name \"system\""));
    BOOST_TEST(fails("system.slice:p:", false, "name part"));
    BOOST_TEST(fails("system.slice:p:..", false, "invalid unit name"));
    BOOST_TEST(fails("system.slice:p:a/b", false, "invalid unit name"));
    BOOST_TEST(fails("system.slice:a/b:n", false, "invalid prefix"));
    BOOST_TEST(fails("/", false, "root cgroup"));
    BOOST_TEST(fails("/a/..", false, "root cgroup"));
    BOOST_TEST(fails("..", false, "names no cgroup"));
}

BOOST_AUTO_TEST_CASE(expand_slice_rules) {
    BOOST_TEST(expand_slice("test-a-b.slice") == "/test.slice/test-a.slice/test-a-b.slice");
    BOOST_TEST(expand_slice("system.slice") == "/system.slice");
    BOOST_TEST(expand_slice("-.slice") == "/");
    for (const char* bad : {".slice", "a-.slice", "-a.slice", "a--b.slice", "a/b.slice", "foo", ""})
        BOOST_TEST_CONTEXT(bad) { BOOST_CHECK_THROW(expand_slice(bad), Error); }
}

BOOST_AUTO_TEST_CASE(clean_cgroup_path_rules) {
    BOOST_TEST(clean_cgroup_path("") == "");
    BOOST_TEST(clean_cgroup_path("//a//b/") == "/a/b");
    BOOST_TEST(clean_cgroup_path("a/./b/../c") == "a/c");
    BOOST_TEST(clean_cgroup_path("../..") == ".");
    BOOST_TEST(clean_cgroup_path("/..") == "/");
}

BOOST_AUTO_TEST_CASE(v2_controllers_to_enable) {
    auto got = controllers_to_enable("cpuset cpu io memory hugetlb pids rdma misc\n");
    BOOST_TEST((got == std::vector<std::string>{"cpu", "cpuset", "io", "memory", "pids"}));
    BOOST_TEST(controllers_to_enable("").empty());
    BOOST_TEST(controllers_to_enable("memory").size() == 1u);
}

// ---------------------------------------------------------------- fake tree

BOOST_AUTO_TEST_CASE(fake_hybrid_create_join_destroy) {
    TempDir tmp;
    Hierarchy h = probe(kHybridMountinfo, kHybridSelfCgroup);
    make_fake_mounts(h, tmp.path);
    // A parent that exists already (like a pod cgroup) must survive destroy.
    for (const auto& m : h.v1) fs::mkdir_p(tmp.path + m.mount_point + "/existing");
    fs::mkdir_p(tmp.path + h.v2->mount_point + "/existing");

    auto m = make_manager(h, "/existing/new/leaf", tmp.path);
    DestroyGuard guard{m.get()};
    BOOST_TEST((m->kind() == Kind::Hybrid));
    BOOST_TEST(m->path() == "/existing/new/leaf");
    BOOST_TEST(!m->exists());
    m->create();
    BOOST_TEST(m->exists());

    auto dirs = m->dirs();
    std::string root = tmp.path + "/sys/fs/cgroup";
    BOOST_TEST(dirs["cpu"] == root + "/cpu,cpuacct/existing/new/leaf");
    BOOST_TEST(dirs["cpuacct"] == dirs["cpu"]);
    BOOST_TEST(dirs["name=systemd"] == root + "/systemd/existing/new/leaf");
    BOOST_TEST(dirs[""] == root + "/unified/existing/new/leaf");
    BOOST_TEST(dirs.size() == 7u);  // cpu cpuacct cpuset memory devices name=systemd ""
    for (const auto& [key, dir] : dirs) BOOST_TEST(fs::is_dir(dir), key);

    auto* fsm = dynamic_cast<FsManager*>(m.get());
    BOOST_REQUIRE(fsm);
    BOOST_TEST(fsm->created().size() == 12u);  // new + leaf in 6 hierarchies
    for (const auto& d : fsm->created()) BOOST_TEST(d.find("/existing/new") != std::string::npos);

    // Fake cgroup.procs files (the kernel would provide them).
    std::vector<std::string> procs;
    for (const auto& t : fsm->targets()) procs.push_back(t.dir() + "/cgroup.procs");
    std::sort(procs.begin(), procs.end());
    procs.erase(std::unique(procs.begin(), procs.end()), procs.end());
    for (const auto& p : procs) write(p, "");
    m->add_process(4242);
    for (const auto& p : procs) BOOST_TEST(read(p) == "4242", p);
    write(dirs["devices"] + "/cgroup.procs", "1\n2\n");
    BOOST_TEST((m->pids() == std::vector<pid_t>{1, 2}));

    // Reopen from the serialized state, as `delete` does in another process.
    nlohmann::json state = nlohmann::json::parse(m->to_state().dump());
    auto reopened = open_manager(state);
    BOOST_TEST((reopened->kind() == Kind::Hybrid));
    BOOST_TEST(reopened->path() == m->path());
    BOOST_TEST((reopened->dirs() == dirs));
    BOOST_TEST((reopened->pids() == std::vector<pid_t>{1, 2}));

    for (const auto& p : procs) ::unlink(p.c_str());  // cgroupfs has no real files
    reopened->destroy();
    for (const auto& [key, dir] : dirs) {
        BOOST_TEST(!fs::exists(dir), dir);
        std::string parent = dir.substr(0, dir.rfind('/'));
        BOOST_TEST(!fs::exists(parent), parent);  // created: removed
        BOOST_TEST(fs::is_dir(parent.substr(0, parent.rfind('/'))));  // pre-existing: kept
    }
    BOOST_TEST(!m->exists());
    BOOST_CHECK_NO_THROW(reopened->destroy());  // twice is fine
}

// The cpuset hierarchy keeps an empty cgroup of ours from the first create on, so that the
// container's cpuset cgroup coming and going does not switch the kernel's cpuset code on
// and off; destroy leaves it, and only the cpuset hierarchy gets one.
BOOST_AUTO_TEST_CASE(fake_v1_create_keeps_a_warm_cpuset_cgroup) {
    TempDir tmp;
    Hierarchy h = probe(kHybridMountinfo, kHybridSelfCgroup);
    make_fake_mounts(h, tmp.path);
    const std::string root = tmp.path + "/sys/fs/cgroup";
    const std::string warm = root + "/cpuset/" + kWarmCpusetCgroup;
    auto m = make_manager(h, "/ctr", tmp.path);
    DestroyGuard guard{m.get()};
    BOOST_TEST(!fs::exists(warm));
    m->create();
    BOOST_TEST(fs::is_dir(warm));
    for (const char* other : {"cpu,cpuacct", "memory", "devices", "systemd", "unified"})
        BOOST_TEST(!fs::exists(root + "/" + other + "/" + kWarmCpusetCgroup), other);
    m->destroy();
    BOOST_TEST(!fs::exists(root + "/cpuset/ctr"));
    BOOST_TEST(fs::is_dir(warm));
    // It being there already is no error, and it is not the container's.
    auto again = make_manager(h, "/ctr", tmp.path);
    DestroyGuard guard2{again.get()};
    again->create();
    for (const auto& d : dynamic_cast<FsManager&>(*again).created()) BOOST_TEST(d.find(kWarmCpusetCgroup) == std::string::npos);
    again->destroy();
    BOOST_TEST(fs::is_dir(warm));
    ::rmdir(warm.c_str());
}

BOOST_AUTO_TEST_CASE(fake_relative_paths_follow_runc) {
    TempDir tmp;
    Hierarchy hybrid = probe(kHybridMountinfo, kHybridSelfCgroup);
    auto m = make_manager(hybrid, "ctr", tmp.path);
    auto dirs = m->dirs();
    std::string root = tmp.path + "/sys/fs/cgroup";
    // v1 and hybrid: below our own cgroup in each hierarchy.
    BOOST_TEST(dirs["memory"] == root + "/memory/process_api/abc/ctr");
    BOOST_TEST(dirs["cpuset"] == root + "/cpuset/ctr");
    BOOST_TEST(dirs[""] == root + "/unified/user.slice/session-1.scope/ctr");
    BOOST_TEST(m->path() == "/user.slice/ctr");  // devices

    // Pure v2: below the parent of our own cgroup.
    Hierarchy unified = probe(kUnifiedMountinfo, "0::/system.slice/x.service\n", "memory pids");
    auto v2 = make_manager(unified, "a/b", tmp.path);
    BOOST_TEST((v2->kind() == Kind::V2));
    BOOST_TEST(v2->path() == "/system.slice/a/b");
    BOOST_TEST(v2->dirs().at("") == root + "/system.slice/a/b");

    // Relative needs our own cgroup.
    Hierarchy legacy = probe(kLegacyMountinfo);
    BOOST_TEST(throws_with([&] { make_manager(legacy, "ctr", tmp.path); }, "cannot place relative"));
    BOOST_TEST(throws_with([&] { make_manager(legacy, "/", tmp.path); }, "invalid cgroup path"));
}

BOOST_AUTO_TEST_CASE(fake_v2_create_and_destroy) {
    TempDir tmp;
    Hierarchy h = probe(kUnifiedMountinfo, "0::/init.scope\n", "cpu memory pids");
    make_fake_mounts(h, tmp.path);
    auto m = make_manager(h, "/machine.slice/ctr.scope", tmp.path);
    DestroyGuard guard{m.get()};
    m->create();
    std::string dir = tmp.path + "/sys/fs/cgroup/machine.slice/ctr.scope";
    BOOST_TEST(fs::is_dir(dir));
    write(dir + "/cgroup.procs", "");
    m->add_process(77);
    BOOST_TEST(read(dir + "/cgroup.procs") == "77");
    BOOST_TEST((m->pids() == std::vector<pid_t>{77}));
    auto state = m->to_state();
    BOOST_TEST(state["kind"] == "v2");
    BOOST_TEST(state["created"].size() == 2u);
    ::unlink((dir + "/cgroup.procs").c_str());
    open_manager(state)->destroy();
    BOOST_TEST(!fs::exists(tmp.path + "/sys/fs/cgroup/machine.slice"));
    BOOST_TEST(fs::is_dir(tmp.path + "/sys/fs/cgroup"));
}

BOOST_AUTO_TEST_CASE(fake_shared_parent_is_left_to_its_other_user) {
    TempDir tmp;
    Hierarchy h = probe(kLegacyMountinfo);
    make_fake_mounts(h, tmp.path);
    auto a = make_manager(h, "/pod/a", tmp.path);
    DestroyGuard ga{a.get()};
    auto b = make_manager(h, "/pod/b", tmp.path);
    DestroyGuard gb{b.get()};
    a->create();  // creates /pod
    b->create();  // finds /pod
    BOOST_TEST(dynamic_cast<FsManager&>(*b).created().size() == 4u);  // only the leaves
    a->destroy();
    std::string pod = tmp.path + "/sys/fs/cgroup/pids/pod";
    BOOST_TEST(fs::is_dir(pod));  // b still lives there
    BOOST_TEST(!fs::exists(pod + "/a"));
    b->destroy();
    BOOST_TEST(!fs::exists(pod + "/b"));
    BOOST_TEST(fs::is_dir(pod));  // b did not create it, so b does not remove it
}

BOOST_AUTO_TEST_CASE(fake_create_failure_rolls_back) {
    TempDir tmp;
    Hierarchy h = probe(kLegacyMountinfo);
    make_fake_mounts(h, tmp.path);
    fs::remove_all(tmp.path + "/sys/fs/cgroup/devices");  // third hierarchy is missing
    auto m = make_manager(h, "/x/y", tmp.path);
    BOOST_TEST(throws_with([&] { m->create(); }, "create cgroup " + tmp.path + "/sys/fs/cgroup/devices/x"));
    BOOST_TEST(!fs::exists(tmp.path + "/sys/fs/cgroup/cpu,cpuacct/x"));
    BOOST_TEST(!fs::exists(tmp.path + "/sys/fs/cgroup/pids/x"));
    BOOST_TEST(dynamic_cast<FsManager&>(*m).created().empty());
}

BOOST_AUTO_TEST_CASE(fake_destroy_reports_a_cgroup_it_cannot_remove) {
    TempDir tmp;
    Hierarchy h = probe(kLegacyMountinfo);
    make_fake_mounts(h, tmp.path);
    auto m = make_manager(h, "/busy", tmp.path);
    m->create();
    write(tmp.path + "/sys/fs/cgroup/pids/busy/cgroup.procs", "");  // rmdir: ENOTEMPTY
    BOOST_TEST(throws_with([&] { m->destroy(); }, "remove cgroup " + tmp.path + "/sys/fs/cgroup/pids/busy"));
    BOOST_TEST(!fs::exists(tmp.path + "/sys/fs/cgroup/devices/busy"));  // the others went anyway
}

BOOST_AUTO_TEST_CASE(own_cgroup_dirs_follow_proc_self_cgroup) {
    // The hybrid texts: memory at /process_api/abc, devices at /user.slice,
    // cpuset at the root, cgroup2 at /user.slice/session-1.scope.
    Hierarchy h = probe(kHybridMountinfo, kHybridSelfCgroup);
    auto m = make_manager(h, "/c1");
    const auto& targets = dynamic_cast<FsManager&>(*m).targets();
    std::map<std::string, std::string> own;
    auto dirs = own_cgroup_dirs(targets, h);
    BOOST_REQUIRE(dirs.size() == targets.size());
    for (size_t i = 0; i < targets.size(); ++i) own[targets[i].mount] = dirs[i];
    BOOST_TEST(own["/sys/fs/cgroup/memory"] == "/sys/fs/cgroup/memory/process_api/abc");
    BOOST_TEST(own["/sys/fs/cgroup/devices"] == "/sys/fs/cgroup/devices/user.slice");
    BOOST_TEST(own["/sys/fs/cgroup/cpuset"] == "/sys/fs/cgroup/cpuset");
    BOOST_TEST(own["/sys/fs/cgroup/cpu,cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/user.slice");
    BOOST_TEST(own["/sys/fs/cgroup/unified"] == "/sys/fs/cgroup/unified/user.slice/session-1.scope");

    // A hierarchy that went away, or a place that is unknown: refused, never guessed.
    Hierarchy gone = h;
    gone.v1.pop_back();
    BOOST_TEST(throws_with([&] { own_cgroup_dirs(targets, gone); }, "no longer a mounted cgroup hierarchy"));
    Hierarchy unknown = h;
    unknown.v2->own_path.clear();
    BOOST_TEST(throws_with([&] { own_cgroup_dirs(targets, unknown); }, "this process's cgroup under /sys/fs/cgroup/unified"));

    Hierarchy v2 = probe(kUnifiedMountinfo, "0::/system.slice/runtime.service\n");
    auto m2 = make_manager(v2, "/c2");
    BOOST_TEST(own_cgroup_dirs(dynamic_cast<FsManager&>(*m2).targets(), v2) ==
               std::vector<std::string>{"/sys/fs/cgroup/system.slice/runtime.service"});
}

BOOST_AUTO_TEST_CASE(open_manager_rejects_bad_state) {
    nlohmann::json good = {
        {"kind", "v1"},
        {"targets", {{{"mount", "/sys/fs/cgroup/pids"}, {"cgroup", "/a/b"}, {"controllers", {"pids"}}}}},
        {"created", {"/sys/fs/cgroup/pids/a", "/sys/fs/cgroup/pids/a/b"}}};
    BOOST_CHECK_NO_THROW(open_manager(good));
    auto with = [&](const char* key, nlohmann::json value) {
        nlohmann::json j = good;
        j[key] = std::move(value);
        return j;
    };
    BOOST_TEST(throws_with([&] { open_manager(with("kind", "v3")); }, "unknown kind"));
    // The null manager records nothing: a record naming it was not written by us.
    BOOST_TEST(throws_with([&] { open_manager(with("kind", "none")); }, "unknown kind \"none\""));
    BOOST_TEST(throws_with([&] { open_manager(with("created", {"/etc"})); }, "outside the cgroup"));
    BOOST_TEST(throws_with([&] { open_manager(with("created", {"/sys/fs/cgroup/pids"})); }, "outside"));
    BOOST_TEST(throws_with([&] { open_manager(with("created", {"/sys/fs/cgroup/pids/a/../x"})); }, "outside"));
    BOOST_TEST(throws_with(
        [&] { open_manager(with("targets", {{{"mount", "/sys/fs/cgroup/pids"}, {"cgroup", "/a/../.."}}})); },
        "not a clean absolute path"));
    BOOST_TEST(throws_with([&] { open_manager(nlohmann::json::object()); }, "invalid cgroup state"));
}

// ---------------------------------------------------------------- this host

namespace {

boost::test_tools::assertion_result real_cgroups_writable(boost::unit_test::test_unit_id) {
    if (::geteuid() != 0) return boost::test_tools::assertion_result(false);
    try {
        probe_host();
    } catch (const Error&) {
        return boost::test_tools::assertion_result(false);
    }
    return boost::test_tools::assertion_result(true);
}

struct ProcCgroupLine {
    std::string controllers, path;
};

std::vector<ProcCgroupLine> proc_cgroup(pid_t pid) {
    std::vector<ProcCgroupLine> out;
    std::istringstream in(fs::read_file("/proc/" + std::to_string(pid) + "/cgroup"));
    for (std::string line; std::getline(in, line);) {
        size_t a = line.find(':'), b = line.find(':', a + 1);
        out.push_back({line.substr(a + 1, b - a - 1), line.substr(b + 1)});
    }
    return out;
}

// The hierarchy mount a /proc/<pid>/cgroup line belongs to.
const Mount* mount_of(const Hierarchy& h, const std::string& controllers) {
    if (controllers.empty()) return h.v2 ? &*h.v2 : nullptr;
    return h.find_v1(controllers.substr(0, controllers.find(',')));
}

// Moves a sleeping child into m and checks /proc/<child>/cgroup shows, for
// every hierarchy, `expected(mount)`; then kills it and destroys m.
void join_and_check(Manager& m, const Hierarchy& h,
                    const std::function<std::string(const Mount&)>& expected, size_t hierarchies) {
    SleepingChild child;
    m.add_process(child.pid);
    size_t checked = 0;
    for (const auto& line : proc_cgroup(child.pid)) {
        const Mount* mount = mount_of(h, line.controllers);
        if (!mount) continue;
        BOOST_TEST(line.path == expected(*mount), "hierarchy \"" << line.controllers << "\"");
        ++checked;
    }
    BOOST_TEST(checked == hierarchies);
    BOOST_TEST((m.pids() == std::vector<pid_t>{child.pid}));
    child.kill_and_reap();
    BOOST_TEST(m.pids().empty());
}

std::string with_root(const Mount& mount, const std::string& cgroup) {
    return mount.root == "/" ? cgroup : mount.root + cgroup;
}

}  // namespace

BOOST_AUTO_TEST_CASE(real_host_absolute_path, *boost::unit_test::precondition(real_cgroups_writable)) {
    Hierarchy h = probe_host();
    std::string path = "/sandlock-test-" + std::to_string(::getpid());
    auto m = make_manager(h, path);
    DestroyGuard guard{m.get()};
    m->create();
    auto dirs = m->dirs();
    for (const auto& [key, dir] : dirs) BOOST_TEST(fs::is_dir(dir), key);
    // v1 cpuset: a new cgroup must get cpus/mems, or no task could join it.
    if (dirs.count("cpuset") && fs::exists(dirs["cpuset"] + "/cpuset.cpus")) {
        BOOST_TEST(fs::read_file(dirs["cpuset"] + "/cpuset.cpus") != "\n");
        BOOST_TEST(fs::read_file(dirs["cpuset"] + "/cpuset.mems") != "\n");
    }
    size_t hierarchies = h.v1.size() + (h.v2 ? 1 : 0);
    join_and_check(*m, h, [&](const Mount& mnt) { return with_root(mnt, path); }, hierarchies);

    auto reopened = open_manager(m->to_state());
    reopened->destroy();
    for (const auto& [key, dir] : dirs) BOOST_TEST(!fs::exists(dir), dir);
    BOOST_TEST(!m->exists());
}

BOOST_AUTO_TEST_CASE(real_host_add_process_to_own_cgroup, *boost::unit_test::precondition(real_cgroups_writable)) {
    Hierarchy h = probe_host();
    std::string path = "/sandlock-test-own-" + std::to_string(::getpid());
    auto m = make_manager(h, path);
    DestroyGuard guard{m.get()};
    m->create();
    SleepingChild child;
    m->add_process(child.pid);
    BOOST_TEST((m->pids() == std::vector<pid_t>{child.pid}));
    m->add_process_to_own_cgroup(child.pid);
    BOOST_TEST(m->pids().empty());
    // every hierarchy: the child is where we are
    auto ours = proc_cgroup(::getpid());
    auto its = proc_cgroup(child.pid);
    BOOST_REQUIRE(ours.size() == its.size());
    for (size_t i = 0; i < ours.size(); ++i)
        BOOST_TEST(its[i].path == ours[i].path, "hierarchy \"" << ours[i].controllers << "\"");
    child.kill_and_reap();
    m->destroy();
    BOOST_TEST(!m->exists());
}

BOOST_AUTO_TEST_CASE(real_host_relative_nested_path, *boost::unit_test::precondition(real_cgroups_writable)) {
    Hierarchy h = probe_host();
    std::string rel = "sandlock-test-" + std::to_string(::getpid()) + "-rel/leaf";
    auto m = make_manager(h, rel);
    DestroyGuard guard{m.get()};
    m->create();
    bool pure_v2 = h.mode == Mode::Unified;
    auto expected = [&](const Mount& mnt) {
        std::string base = mnt.own_path;
        if (pure_v2) base = base.substr(0, base.rfind('/'));
        return with_root(mnt, clean_cgroup_path(base + "/" + rel));
    };
    join_and_check(*m, h, expected, h.v1.size() + (h.v2 ? 1 : 0));
    auto dirs = m->dirs();
    m->destroy();
    for (const auto& [key, dir] : dirs) {
        BOOST_TEST(!fs::exists(dir), dir);
        std::string parent = dir.substr(0, dir.rfind('/'));
        BOOST_TEST(!fs::exists(parent), parent);  // the "-rel" parent was ours
        BOOST_TEST(fs::is_dir(parent.substr(0, parent.rfind('/'))));
    }
}

BOOST_AUTO_TEST_CASE(real_host_v2_manager_on_cgroup2_mount,
                     *boost::unit_test::precondition(real_cgroups_writable)) {
    Hierarchy host = probe_host();
    if (!host.v2) return;  // legacy host: nothing to test
    Hierarchy h;
    h.mode = Mode::Unified;
    h.v2 = host.v2;
    std::string path = "/sandlock-test-" + std::to_string(::getpid()) + "-v2/leaf";
    auto m = make_manager(h, path);
    DestroyGuard guard{m.get()};
    BOOST_TEST((m->kind() == Kind::V2));
    m->create();
    join_and_check(*m, h, [&](const Mount& mnt) { return with_root(mnt, path); }, 1);
    std::string parent = host.v2->mount_point + "/sandlock-test-" + std::to_string(::getpid()) + "-v2";
    BOOST_TEST(fs::is_dir(parent));
    m->destroy();
    BOOST_TEST(!fs::exists(parent));
}

// ---------------------------------------------------------------- systemd driver

BOOST_AUTO_TEST_CASE(systemd_unit_from_cgroups_path) {
    BOOST_TEST(!systemd_unit("system.slice:p:n", "cid", false).has_value());
    auto u = systemd_unit("", "cid", true);
    BOOST_REQUIRE(u.has_value());
    BOOST_TEST(u->slice == "system.slice");
    BOOST_TEST(u->unit == "runc-cid.scope");
    BOOST_TEST(u->cgroup_path() == "/system.slice/runc-cid.scope");
    u = systemd_unit("a-b.slice:pfx:name", "cid", true);
    BOOST_TEST(u->slice == "a-b.slice");
    BOOST_TEST(u->unit == "pfx-name.scope");
    BOOST_TEST(u->cgroup_path() == "/a.slice/a-b.slice/pfx-name.scope");
    u = systemd_unit("-.slice:p:leaf.slice", "cid", true);
    BOOST_TEST(u->unit == "leaf.slice");
    BOOST_TEST(u->cgroup_path() == "/leaf.slice");
    BOOST_TEST(throws_with([] { systemd_unit("/abs/path", "cid", true); }, "slice:prefix:name"));
    BOOST_TEST(throws_with([] { systemd_unit("bad/x.slice:p:n", "cid", true); }, "invalid slice name"));
}

BOOST_AUTO_TEST_CASE(systemd_properties_for_resources) {
    Resources r;
    BOOST_TEST(systemd_resource_properties(r, false).empty());
    r.pids_limit = -1;
    r.memory = MemoryResources{};
    r.memory->limit = 64 << 20;
    r.cpu = CpuResources{};
    r.cpu->shares = 512;
    r.cpu->quota = 12345;
    r.cpu->period = 100000;
    std::vector<std::string> v1{"TasksMax=t:18446744073709551615", "MemoryLimit=t:67108864",
                                "CPUShares=t:512", "CPUQuotaPerSecUSec=t:130000"};
    BOOST_TEST(systemd_resource_properties(r, false) == v1, boost::test_tools::per_element());
    r.pids_limit = 10;
    r.cpu->quota = 50000;
    r.cpu->period = 200000;
    std::vector<std::string> v2{"TasksMax=t:10", "MemoryMax=t:67108864",
                                "CPUWeight=t:" + std::to_string(cpu_shares_to_weight(512)),
                                "CPUQuotaPerSecUSec=t:250000"};
    BOOST_TEST(systemd_resource_properties(r, true) == v2, boost::test_tools::per_element());
    r.cpu->quota = -1;  // unlimited: no property
    BOOST_TEST(systemd_resource_properties(r, true).size() == 3u);
}

BOOST_AUTO_TEST_CASE(systemd_properties_from_annotations_as_runc_reads_them) {
    const std::string p = "org.systemd.property.";
    std::map<std::string, std::string> a{
        {"io.other", "ignored"},
        {p + "CollectMode", "'inactive-or-failed'"},
        {p + "Description", "\"with spaces\""},
        {p + "SendSIGHUP", "true"},
        {p + "TasksAccounting", "false"},
        {p + "TimeoutStopUSec", "uint64 123456789"},
        {p + "CPUWeight", "uint64 50"},
        {p + "LimitNOFILE", "uint64 4096"},
        {p + "Nice", "int32 -5"},
        {p + "ManagedOOMMemoryPressureLimit", "uint32 7"},
        {p + "CPUQuotaPeriodUSec", "int64 10000"},
        {p + "OOMScoreAdjust", "-100"},          // plain integer: int32, as GVariant
        {p + "RuntimeMaxSec", "1.5"},            // xxxSec: seconds -> xxxUSec, microseconds
        {p + "TimeoutSec", "uint64 7"},
    };
    std::vector<std::string> want{
        "CPUQuotaPeriodUSec=x:10000",    "CPUWeight=t:50",
        "CollectMode=s:inactive-or-failed", "Description=s:with spaces",
        "LimitNOFILE=t:4096",            "ManagedOOMMemoryPressureLimit=u:7",
        "Nice=i:-5",                     "OOMScoreAdjust=i:-100",
        "RuntimeMaxUSec=t:1500000",      "SendSIGHUP=b:true",
        "TasksAccounting=b:false",       "TimeoutUSec=t:7000000",
        "TimeoutStopUSec=t:123456789"};  // (in annotation key order: TimeoutSec < TimeoutStopUSec)
    BOOST_TEST(systemd_annotation_properties(a) == want, boost::test_tools::per_element());
    BOOST_TEST(systemd_annotation_properties({{"io.sandlock.audit", "all"}}).empty());
    // "Sec" alone has no lowercase letter before the suffix: a plain name
    BOOST_TEST(systemd_annotation_properties({{p + "Sec", "true"}}) ==
               std::vector<std::string>{"Sec=b:true"});

    auto fails = [&](const std::string& name, const std::string& value, const std::string& needle) {
        return throws_with([&] { systemd_annotation_properties({{p + name, value}}); },
                           "annotation " + p + name) &&
               throws_with([&] { systemd_annotation_properties({{p + name, value}}); }, needle);
    };
    BOOST_TEST(fails("Ab", "true", "name incorrect: too short"));
    BOOST_TEST(fails("Cpu-Weight", "true", "non-alphabetic"));
    BOOST_TEST(fails("CPU1", "true", "non-alphabetic"));
    BOOST_TEST(fails("CPUWeight", "50x", "value parse error"));
    BOOST_TEST(fails("CPUWeight", "uint64 -1", "value parse error"));
    BOOST_TEST(fails("CPUWeight", "uint32 4294967296", "value parse error"));
    BOOST_TEST(fails("CPUWeight", "int32 2147483648", "value parse error"));
    BOOST_TEST(fails("CPUWeight", "['a']", "value parse error"));
    BOOST_TEST(fails("Description", "'it\\'s'", "value parse error"));
    BOOST_TEST(fails("Description", "'unterminated", "value parse error"));
    BOOST_TEST(fails("CPUWeight", "0.5", "only accepted for a ...Sec property"));
    BOOST_TEST(fails("RuntimeMaxSec", "'10'", "seconds must be a number"));
    BOOST_TEST(fails("RuntimeMaxSec", "-1", "seconds must be a number"));
    BOOST_TEST(fails("RuntimeMaxSec", "1e30", "too large"));
}

// The driver's side of the D-Bus client, with a stand-in sandlock-systemd that logs its
// arguments (the real one runs against systemd in integration/systemd.bats).
BOOST_AUTO_TEST_CASE(systemd_manager_starts_the_unit_once_and_stops_it_on_destroy, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    TempDir tmp;
    Hierarchy h = probe(kHybridMountinfo, kHybridSelfCgroup);
    make_fake_mounts(h, tmp.path);
    const std::string log = tmp.path + "/helper.log", helper = tmp.path + "/fake-systemd";
    write(helper, "#!/bin/sh\necho \"$@\" >>" + log + "\n[ \"$2\" != fail.scope ] || { echo 'Unit fail.scope already exists.' >&2; exit 1; }\n");
    ::chmod(helper.c_str(), 0755);
    const std::string saved = systemd_helper_binary();
    systemd_helper_binary() = helper;
    ScopeExit restore([&] { systemd_helper_binary() = saved; });

    auto unit = *systemd_unit("system.slice:sandlock:x", "x", true);
    auto m = make_systemd_manager(make_manager(h, unit.cgroup_path(), tmp.path), unit, {"CPUShares=t:512"});
    DestroyGuard guard{m.get()};
    m->create();
    BOOST_TEST(!fs::exists(log));  // nothing to start before the first process
    BOOST_TEST(!m->exists());      // nor any directory: systemd makes the unit's first
    // The fake helper cannot make directories: the fake cgroup.procs files need them.
    for (const auto& [key, dir] : m->dirs()) {
        fs::mkdir_p(dir);
        write(dir + "/cgroup.procs", "");
        write(dir + "/cpu.shares", "");
    }
    m->add_process(4242);
    m->add_process(4243);
    BOOST_TEST(read(log) ==
               "start sandlock-x.scope PIDs=au:4242 Description=s:sandlock-runc container "
               "sandlock-x.scope Slice=s:system.slice DefaultDependencies=b:false Delegate=b:true "
               "CPUShares=t:512\n");
    BOOST_TEST(read(m->dirs()["memory"] + "/cgroup.procs") == "4243");  // cgroupfs joins too
    m->add_process_to_own_cgroup(4242);  // an empty scope would be collected: stays
    BOOST_TEST(read(m->dirs()["memory"] + "/cgroup.procs") == "4243");

    // update: the files, then the unit's properties; not again what the start sent
    Resources r;
    r.cpu = CpuResources{};
    r.cpu->shares = 512;
    m->apply(r);
    BOOST_TEST(read(m->dirs()["cpu"] + "/cpu.shares") == "512");
    BOOST_TEST(read(log).find("set ") == std::string::npos);
    r.cpu->shares = 1024;
    m->apply(r);
    BOOST_TEST(read(m->dirs()["cpu"] + "/cpu.shares") == "1024");
    BOOST_TEST(read(log).ends_with("set sandlock-x.scope CPUShares=t:1024\n"));

    nlohmann::json state = nlohmann::json::parse(m->to_state().dump());
    BOOST_TEST(state["systemd"]["unit"] == "sandlock-x.scope");
    BOOST_TEST(state["systemd"]["started"] == true);
    for (const auto& [key, dir] : m->dirs())
        for (const char* f : {"/cgroup.procs", "/cpu.shares"}) ::unlink((dir + f).c_str());
    auto reopened = open_manager(state);
    BOOST_TEST(reopened->path() == "/system.slice/sandlock-x.scope");
    reopened->destroy();
    BOOST_TEST(read(log).ends_with("stop sandlock-x.scope\n"));
    BOOST_TEST(!reopened->exists());

    // systemd's refusal is the error, one line.
    auto bad = *systemd_unit("system.slice:fail:x", "x", true);
    bad.unit = "fail.scope";
    auto m2 = make_systemd_manager(make_manager(h, bad.cgroup_path(), tmp.path), bad, {});
    DestroyGuard guard2{m2.get()};
    m2->create();
    BOOST_TEST(throws_with([&] { m2->add_process(1); },
                           "systemd cgroup driver: Unit fail.scope already exists."));
    BOOST_TEST(m2->to_state()["systemd"]["started"] == false);
    const size_t before = read(log).size();
    m2->destroy();  // never started: no StopUnit (it could be another container's unit)
    BOOST_TEST(read(log).size() == before);

    BOOST_TEST(throws_with([&] { open_manager(nlohmann::json::parse(R"({"kind":"v1","targets":[{"mount":"/sys/fs/cgroup/pids","cgroup":"/a"}],"systemd":{"unit":"../x"}})")); },
                           "invalid cgroup state"));
}

// A container without a cgroup: bookkeeping is a no-op, what needs a cgroup says so.
BOOST_AUTO_TEST_CASE(null_manager) {
    auto m = make_null_manager();
    BOOST_TEST((m->kind() == Kind::None));
    BOOST_TEST(std::string(kind_name(m->kind())) == "none");
    BOOST_CHECK_NO_THROW(m->create());
    BOOST_CHECK_NO_THROW(m->add_process(1));
    BOOST_CHECK_NO_THROW(m->add_process_to_own_cgroup(1));
    BOOST_TEST(m->pids().empty());
    BOOST_TEST(!m->exists());
    BOOST_TEST(m->path().empty());
    BOOST_TEST(m->dirs().empty());
    BOOST_TEST(!m->frozen());
    BOOST_CHECK_NO_THROW(m->thaw());
    BOOST_CHECK_NO_THROW(m->apply(Resources{}));
    // device rules alone (runc's and podman's default deny-all) need no cgroup rootless
    BOOST_CHECK_NO_THROW(m->apply(parse_resources(
        nlohmann::json{{"devices", nlohmann::json::array({{{"allow", false}, {"access", "rwm"}}})}})));
    BOOST_TEST(throws_with([&] { m->apply(parse_resources(nlohmann::json{{"pids", {{"limit", 10}}}})); },
                           "cgroups: no cgroup to apply resource limits to"));
    BOOST_TEST(throws_with([&] { m->freeze(); }, "cgroups: no cgroup to freeze"));
    BOOST_TEST(throws_with([&] { m->stats(); }, "cgroups: no cgroup to read stats from"));
    BOOST_CHECK_NO_THROW(m->destroy());
    BOOST_CHECK_NO_THROW(m->destroy());

    // state.json's null "cgroup" and the null manager's record are the same thing.
    BOOST_TEST(m->to_state().is_null());
    BOOST_TEST((open_manager(m->to_state())->kind() == Kind::None));
    BOOST_TEST(!is_frozen(nullptr));
}

BOOST_AUTO_TEST_CASE(kind_names_round_trip_through_state) {
    for (Kind kind : {Kind::V1, Kind::Hybrid, Kind::V2}) {
        nlohmann::json state = {
            {"kind", kind_name(kind)},
            {"targets", {{{"mount", "/sys/fs/cgroup/unified"}, {"cgroup", "/a"}, {"unified", true}}}}};
        BOOST_TEST((open_manager(state)->kind() == kind), kind_name(kind));
    }
}

BOOST_AUTO_TEST_SUITE_END()
