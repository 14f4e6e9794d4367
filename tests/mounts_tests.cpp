// Mount option parsing, in-root path resolution, and a real rootfs built in a child
// process with its own mount namespace.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/linux/devices.hpp"
#include "runtime/linux/mounts.hpp"
#include "runtime/linux/rootfs.hpp"
#include "runtime/linux/safe_path.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/fs.hpp"
#include "tests/support.hpp"

namespace mounts_tests {
using sandlock::testing::message_of;
using sandlock::testing::TempDir;
using namespace sandlock;
using namespace sandlock::os;

// A temporary directory removed at scope exit.

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    if (!out) throw Error("write " + path);
}

spec::Mount make_mount(const std::string& dest, const std::string& type, const std::string& source,
                       std::vector<std::string> options) {
    spec::Mount m;
    m.destination = dest;
    m.type = type;
    m.source = source;
    m.options = std::move(options);
    return m;
}

struct stat stat_fd(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno("fstat");
    return st;
}

bool same_inode(int fd, const std::string& path) {
    struct stat a = stat_fd(fd), b {};
    return ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace mounts_tests

BOOST_AUTO_TEST_SUITE(mount_options)
using namespace mounts_tests;

BOOST_AUTO_TEST_CASE(flags_set_and_clear) {
    auto o = parse_mount_options({"nosuid", "noexec", "nodev", "ro", "strictatime"});
    BOOST_TEST(o.flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY | MS_STRICTATIME));
    BOOST_TEST(o.data.empty());
    BOOST_TEST(!o.is_bind());

    auto rw = parse_mount_options({"ro", "suid", "rw", "exec", "nosymfollow"});
    BOOST_TEST(rw.flags == MS_NOSYMFOLLOW);
    BOOST_TEST((rw.cleared & MS_RDONLY) != 0);
    BOOST_TEST((rw.cleared & MS_NOEXEC) != 0);

    auto misc = parse_mount_options({"sync", "dirsync", "mand", "iversion", "lazytime", "silent",
                                     "noatime", "nodiratime", "relatime", "remount", "defaults"});
    BOOST_TEST(misc.flags == (MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK | MS_I_VERSION |
                              MS_LAZYTIME | MS_SILENT | MS_NOATIME | MS_NODIRATIME | MS_RELATIME |
                              MS_REMOUNT));
    auto undone = parse_mount_options({"sync", "async", "mand", "nomand", "iversion", "noiversion",
                                       "lazytime", "nolazytime", "silent", "loud", "noatime",
                                       "atime", "nodiratime", "diratime", "relatime", "norelatime",
                                       "strictatime", "nostrictatime", "nosymfollow", "symfollow"});
    BOOST_TEST(undone.flags == 0UL);
}

BOOST_AUTO_TEST_CASE(bind_and_propagation) {
    auto o = parse_mount_options({"rbind", "ro", "rprivate", "slave"});
    BOOST_TEST(o.is_bind());
    BOOST_TEST(o.flags == (MS_BIND | MS_REC | MS_RDONLY));
    BOOST_REQUIRE(o.propagation.size() == 2U);
    BOOST_TEST(o.propagation[0] == (MS_PRIVATE | MS_REC));
    BOOST_TEST(o.propagation[1] == MS_SLAVE);

    auto b = parse_mount_options({"bind"});
    BOOST_TEST(b.flags == MS_BIND);
    BOOST_TEST(b.propagation.empty());

    for (auto [name, flag] : std::vector<std::pair<std::string, unsigned long>>{
             {"private", MS_PRIVATE}, {"rshared", MS_SHARED | MS_REC},
             {"runbindable", MS_UNBINDABLE | MS_REC}, {"rslave", MS_SLAVE | MS_REC}}) {
        BOOST_TEST(parse_propagation(name) == flag);
        BOOST_TEST(is_propagation_name(name));
    }
    BOOST_TEST(parse_propagation("") == 0UL);
    BOOST_TEST(message_of([] { parse_propagation("sideways"); }) == "unknown propagation \"sideways\"");
}

BOOST_AUTO_TEST_CASE(unknown_options_become_data) {
    auto o = parse_mount_options(
        {"nosuid", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", "noexec"});
    BOOST_TEST(o.flags == (MS_NOSUID | MS_NOEXEC));
    BOOST_TEST(o.data == "newinstance,ptmxmode=0666,mode=0620,gid=5");

    auto t = parse_mount_options({"tmpcopyup", "size=1m"});
    BOOST_TEST(t.tmpcopyup);
    BOOST_TEST(t.data == "size=1m");
}

BOOST_AUTO_TEST_CASE(recursive_attributes_and_idmap) {
    auto o = parse_mount_options({"rro", "rnosuid", "rnoatime"});
    BOOST_TEST(o.attr_set == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME));
    BOOST_TEST(o.attr_clr == static_cast<unsigned long long>(MOUNT_ATTR__ATIME));
    BOOST_TEST(o.flags == 0UL);
    auto back = parse_mount_options({"rro", "rrw"});
    BOOST_TEST(back.attr_set == 0ULL);
    BOOST_TEST(back.attr_clr == static_cast<unsigned long long>(MOUNT_ATTR_RDONLY));

    BOOST_TEST(message_of([] { parse_mount_options({"bind", "idmap"}); })
                   .find("idmapped mounts are not supported") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(remount_flags_keep_per_mount_bits_only) {
    BOOST_TEST(remount_flags(MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID | MS_SYNCHRONOUS) ==
               (MS_RDONLY | MS_NOSUID));
    BOOST_TEST(remount_flags(MS_BIND | MS_REC) == 0UL);
}

BOOST_AUTO_TEST_CASE(validate_names_the_json_path) {
    spec::Config cfg;
    cfg.mounts.push_back(make_mount("/proc", "proc", "proc", {}));
    cfg.mounts.push_back(make_mount("data", "tmpfs", "tmpfs", {}));
    BOOST_TEST(message_of([&] { validate_mounts(cfg); }) ==
               ".mounts[1].destination: mount destination \"data\" is not absolute");

    cfg.mounts[1] = make_mount("/x", "bind", "/srv", {"rbind", "idmap"});
    BOOST_TEST(message_of([&] { validate_mounts(cfg); }) ==
               ".mounts[1].options[1]: idmapped mounts are not supported");

    cfg.mounts[1] = make_mount("/x", "bind", "/srv", {"rbind", "tmpcopyup"});
    BOOST_TEST(message_of([&] { validate_mounts(cfg); }) ==
               ".mounts[1].options[1]: tmpcopyup needs a tmpfs mount");

    cfg.mounts[1] = make_mount("/x", "tmpfs", "tmpfs", {"tmpcopyup"});
    BOOST_TEST(message_of([&] { validate_mounts(cfg); }).empty());

    cfg.linux.rootfs_propagation = "rsideways";
    BOOST_TEST(message_of([&] { validate_mounts(cfg); }) ==
               ".linux.rootfsPropagation: unknown propagation \"rsideways\"");
    cfg.linux.rootfs_propagation = "rshared";
    cfg.linux.masked_paths = {"/proc/kcore", "proc/keys"};
    BOOST_TEST(message_of([&] { validate_mounts(cfg); }) ==
               ".linux.maskedPaths[1]: must be an absolute path");
}

BOOST_AUTO_TEST_CASE(dev_setup_skipped_for_bound_dev) {
    spec::Config cfg;
    cfg.mounts.push_back(make_mount("/dev", "tmpfs", "tmpfs", {"nosuid"}));
    BOOST_TEST(needs_dev_setup(cfg));
    cfg.mounts.push_back(make_mount("/dev/", "none", "/dev", {"rbind"}));
    BOOST_TEST(!needs_dev_setup(cfg));
    BOOST_TEST(default_devices().size() == 6U);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(safe_path)
using namespace mounts_tests;

BOOST_AUTO_TEST_CASE(clean_and_split) {
    BOOST_TEST(clean_path("a/../b//c/") == "/b/c");
    BOOST_TEST(clean_path("/../../etc/./x") == "/etc/x");
    BOOST_TEST(clean_path("") == "/");
    auto parts = split_path("//a/./b/../c/");
    BOOST_TEST(parts == (std::vector<std::string>{"a", "b", "..", "c"}));
}

BOOST_AUTO_TEST_CASE(symlinks_never_leave_the_root, *boost::unit_test::precondition(sandlock::testing::needs_root)) {
    TempDir tmp;
    const std::string root = tmp.path + "/root";
    const std::string outside = tmp.path + "/outside";
    fs::mkdir_p(root + "/etc");
    fs::mkdir_p(outside);
    // Relative and absolute links aiming out of the root, and a dangling one.
    BOOST_REQUIRE(::symlink("../../outside", (root + "/etc/rel").c_str()) == 0);
    BOOST_REQUIRE(::symlink("/etc/../../../outside", (root + "/abs").c_str()) == 0);
    BOOST_REQUIRE(::symlink((outside).c_str(), (root + "/hostpath").c_str()) == 0);
    BOOST_REQUIRE(::symlink("../run/resolv.conf", (root + "/etc/resolv.conf").c_str()) == 0);
    BOOST_REQUIRE(::symlink("/nowhere/../../../outside/escaped", (root + "/dangle").c_str()) == 0);
    BOOST_REQUIRE(::symlink("loop2", (root + "/loop1").c_str()) == 0);
    BOOST_REQUIRE(::symlink("loop1", (root + "/loop2").c_str()) == 0);

    UniqueFd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    BOOST_REQUIRE(rootfd.valid());

    UniqueFd a = mkdir_all_in_root(rootfd.get(), "/etc/rel/sub");
    BOOST_TEST(same_inode(a.get(), root + "/outside/sub"));
    UniqueFd b = mkdir_all_in_root(rootfd.get(), "/abs/deeper/x");
    BOOST_TEST(same_inode(b.get(), root + "/outside/deeper/x"));
    UniqueFd c = create_file_in_root(rootfd.get(), "/hostpath/file");
    BOOST_TEST(same_inode(c.get(), root + outside + "/file"));
    BOOST_TEST(S_ISREG(stat_fd(c.get()).st_mode));
    // The dangling link's target is created, inside the root.
    UniqueFd d = create_file_in_root(rootfd.get(), "/etc/resolv.conf");
    BOOST_TEST(same_inode(d.get(), root + "/run/resolv.conf"));
    UniqueFd e = create_file_in_root(rootfd.get(), "/dangle");
    BOOST_TEST(same_inode(e.get(), root + "/outside/escaped"));
    // Nothing appeared in the real outside directory.
    BOOST_TEST(!fs::exists(outside + "/sub"));
    BOOST_TEST(!fs::exists(outside + "/deeper"));
    BOOST_TEST(!fs::exists(outside + "/file"));
    BOOST_TEST(!fs::exists(outside + "/escaped"));

    // ".." cannot climb out either: the host's /etc/passwd is not found in the root.
    BOOST_TEST(!try_open_in_root(rootfd.get(), "../../../../etc/passwd", O_PATH).valid());
    BOOST_TEST(errno == ENOENT);
    BOOST_TEST(message_of([&] { mkdir_all_in_root(rootfd.get(), "/loop1/x"); })
                   .find("Too many levels of symbolic links") != std::string::npos);
    // An existing file where a directory is needed is an error, not a silent success.
    BOOST_TEST(!message_of([&] { mkdir_all_in_root(rootfd.get(), "/hostpath/file/x"); }).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- a real rootfs ---------------------------------------------------------------------

namespace mounts_tests {

// Checks run inside the container; the first failure is reported to the parent.
void expect(bool ok, const std::string& what) {
    if (!ok) throw Error("check failed: " + what);
}

// The mount point column of mountinfo, one per line.
std::string mount_points(const std::string& mountinfo) {
    std::istringstream in(mountinfo);
    std::string line, out;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string id, parent, dev, root, mp;
        f >> id >> parent >> dev >> root >> mp;
        out += mp + "\n";
    }
    return out;
}

bool is_mount_point(const std::string& mountinfo, const std::string& target) {
    return ("\n" + mount_points(mountinfo)).find("\n" + target + "\n") != std::string::npos;
}

int errno_of_write_open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    return fd ? 0 : errno;
}

int run_busybox(const std::vector<std::string>& args) {
    pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>("busybox"));
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv("/bin/busybox", argv.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void check_inside(const std::string& tmp, bool cgroup_v1) {
    std::string mi = fs::read_file("/proc/self/mountinfo");
    expect(mount_points(mi).find(tmp) == std::string::npos, "no host mount point left:\n" + mi);
    for (auto mp : {"/", "/proc", "/dev", "/dev/pts", "/mnt/ro", "/data", "/hostside",
                    "/etc/hostname", "/sys", "/proc/keys", "/proc/acpi", "/proc/sys", "/data/sub"})
        expect(is_mount_point(mi, mp), std::string(mp) + " is a mount point:\n" + mi);
    expect(!is_mount_point(mi, "/evil"), "/evil (a symlink) was resolved, not mounted on");

    // Read-only bind (and the locked nosuid), a read-only root, a writable tmpfs.
    expect(fs::read_file("/mnt/ro/hello") == "hi", "bind mount content");
    expect(errno_of_write_open("/mnt/ro/new") == EROFS, "ro bind refuses writes");
    struct statfs sf {};
    expect(::statfs("/mnt/ro", &sf) == 0 && (sf.f_flags & ST_NOSUID), "bind keeps nosuid");
    expect(errno_of_write_open("/newfile") == EROFS, "root is read-only");
    expect(errno_of_write_open("/etc/hostname") == EROFS, "ro file bind");
    expect(fs::read_file("/etc/hostname") == "box\n", "file bind content");
    expect(errno_of_write_open("/data/written") == 0, "tmpfs stays writable");

    // tmpcopyup: the image's content is in the tmpfs, with its mode and symlinks.
    expect(fs::read_file("/data/seed") == "seed", "tmpcopyup copied a file");
    expect(fs::read_file("/data/link") == "seed", "tmpcopyup copied a symlink");
    struct stat st {};
    expect(::stat("/data", &st) == 0 && (st.st_mode & 07777) == 0755, "tmpfs root mode copied");
    expect(::stat("/data/private", &st) == 0 && (st.st_mode & 07777) == 0600, "tmpcopyup mode");
    expect(::statfs("/data", &sf) == 0 && sf.f_type == TMPFS_MAGIC, "/data is a tmpfs");

    // The symlinked destination landed inside the rootfs.
    expect(::statfs("/hostside", &sf) == 0 && sf.f_type == TMPFS_MAGIC, "/hostside is a tmpfs");

    // Masked and read-only paths.
    expect(::stat("/proc/keys", &st) == 0 && S_ISCHR(st.st_mode) &&
               st.st_rdev == makedev(1, 3), "/proc/keys masked by /dev/null");
    expect(fs::read_file("/proc/keys").empty(), "/proc/keys reads empty");
    expect(errno_of_write_open("/proc/acpi/x") == EROFS, "/proc/acpi masked read-only");
    expect(errno_of_write_open("/data/sub/x") == EROFS, "masked directory is read-only");
    expect(::stat("/data/sub/inner", &st) != 0, "masked directory is empty");
    {
        UniqueFd fd(::open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC));
        expect(!fd && errno == EROFS, "/proc/sys is read-only");
    }

    // /dev: nodes, symlinks, ptmx from the container's devpts.
    expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) &&
               (st.st_mode & 0777) == 0666, "/dev/null");
    expect(::stat("/dev/tty", &st) == 0 && st.st_rdev == makedev(5, 0), "/dev/tty");
    expect(::lstat("/dev/mydev", &st) == 0 && S_ISCHR(st.st_mode) && (st.st_mode & 0777) == 0640 &&
               st.st_uid == 1000 && st.st_gid == 1001 && st.st_rdev == makedev(1, 5),
           "linux.devices entry");
    char link[64] = {};
    expect(::readlink("/dev/ptmx", link, sizeof link - 1) > 0 && std::string(link) == "pts/ptmx",
           "/dev/ptmx -> pts/ptmx");
    expect(::readlink("/dev/fd", link, sizeof link - 1) > 0, "/dev/fd symlink");
    {
        UniqueFd ptmx(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
        expect(ptmx.valid(), "open /dev/ptmx");
        char name[64] = {};
        expect(::ptsname_r(ptmx.get(), name, sizeof name) == 0 &&
                   std::string(name).rfind("/dev/pts/", 0) == 0, "pty from the new devpts");
    }
    expect(::stat("/work/dir", &st) == 0 && S_ISDIR(st.st_mode), "process.cwd created");

    if (cgroup_v1) {
        expect(::stat("/sys/fs/cgroup/pids/cgroup.procs", &st) == 0, "cgroup v1 bind");
        UniqueFd fd(::open("/sys/fs/cgroup/pids/cgroup.procs", O_WRONLY | O_CLOEXEC));
        expect(!fd && errno == EROFS, "cgroup bind is read-only");
    }

    expect(run_busybox({"true"}) == 0, "busybox runs inside the rootfs");
    expect(run_busybox({"test", "-c", "/dev/zero"}) == 0, "busybox sees /dev/zero");
    expect(run_busybox({"sh", "-c", "exec 2>/dev/null; echo x > /mnt/ro/y"}) != 0, "shell write to ro bind fails");
}

void build_image(const std::string& tmp) {
    const std::string rootfs = tmp + "/rootfs";
    fs::mkdir_p(rootfs + "/bin");
    fs::mkdir_p(rootfs + "/etc");
    fs::mkdir_p(rootfs + "/data/sub");
    std::string busybox = fs::read_file("/bin/busybox");
    {
        std::ofstream out(rootfs + "/bin/busybox", std::ios::binary);
        out << busybox;
    }
    BOOST_REQUIRE(::chmod((rootfs + "/bin/busybox").c_str(), 0755) == 0);
    write_text(rootfs + "/etc/hostname", "image\n");
    write_text(rootfs + "/data/seed", "seed");
    write_text(rootfs + "/data/private", "p");
    BOOST_REQUIRE(::chmod((rootfs + "/data/private").c_str(), 0600) == 0);
    write_text(rootfs + "/data/sub/inner", "i");
    BOOST_REQUIRE(::symlink("seed", (rootfs + "/data/link").c_str()) == 0);
    // Points "out" of the rootfs; must resolve to <rootfs>/hostside.
    BOOST_REQUIRE(::symlink("/etc/../../hostside", (rootfs + "/evil").c_str()) == 0);

    fs::mkdir_p(tmp + "/src");
    write_text(tmp + "/src/hello", "hi");
    write_text(tmp + "/hostname", "box\n");
}

spec::Config make_config(const std::string& tmp) {
    spec::Config cfg;
    cfg.root.path = tmp + "/rootfs";
    cfg.root.readonly = true;
    cfg.mounts = {
        make_mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
        make_mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
        make_mount("/dev/pts", "devpts", "devpts",
                   {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
        make_mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
        make_mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "ro"}),
        make_mount("/mnt/ro", "bind", tmp + "/src", {"rbind", "ro", "nosuid", "rprivate"}),
        make_mount("/etc/hostname", "none", tmp + "/hostname", {"bind", "ro"}),
        make_mount("/data", "tmpfs", "tmpfs", {"tmpcopyup", "nodev"}),
        make_mount("/evil", "tmpfs", "tmpfs", {"size=1m"}),
    };
    spec::Device dev;
    dev.type = "c";
    dev.path = "/dev/mydev";
    dev.major = 1;
    dev.minor = 5;
    dev.file_mode = 0640;
    dev.uid = 1000;
    dev.gid = 1001;
    cfg.linux.devices.push_back(dev);
    cfg.linux.masked_paths = {"/proc/kcore", "/proc/keys", "/proc/acpi", "/data/sub",
                              "/does/not/exist"};
    cfg.linux.readonly_paths = {"/proc/sys", "/also/missing"};
    spec::Process proc;
    proc.cwd = "/work/dir";
    cfg.process = proc;
    return cfg;
}

// Runs body in a child with its own mount namespace; returns "" or the failure.
std::string in_mount_namespace(const std::function<void()>& body) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    pid_t pid = ::fork();
    if (pid == 0) {
        rd.reset();
        std::string err;
        try {
            if (::unshare(CLONE_NEWNS) != 0) throw_errno("unshare");
            if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
                throw_errno("make / rprivate");
            body();
        } catch (const std::exception& e) {
            err = e.what();
        }
        if (!err.empty()) (void)!::write(wr.get(), err.data(), err.size());
        ::_exit(err.empty() ? 0 : 1);
    }
    wr.reset();
    std::string msg;
    char buf[4096];
    for (ssize_t n; (n = ::read(rd.get(), buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return msg.empty() ? "child failed, status " + std::to_string(status) : msg;
    return "";
}

std::string host_mount_targets() {
    std::string out;
    FILE* p = ::popen("findmnt -rn -o TARGET", "r");
    if (!p) return fs::read_file("/proc/self/mountinfo");
    char buf[4096];
    size_t n;
    while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
}

}  // namespace mounts_tests

BOOST_AUTO_TEST_SUITE(rootfs)
using namespace mounts_tests;

BOOST_AUTO_TEST_CASE(full_rootfs_in_a_mount_namespace) {
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: needs root");
        return;
    }
    TempDir tmp;
    build_image(tmp.path);
    spec::Config cfg = make_config(tmp.path);
    const bool v2_only = [] {
        struct statfs sf {};
        return ::statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
    }();
    RootfsOptions opt;
    if (!v2_only) opt.cgroup_binds.push_back({"/sys/fs/cgroup/pids", "pids"});
    BOOST_REQUIRE_NO_THROW(validate_mounts(cfg));

    std::string err = in_mount_namespace([&] {
        prepare_rootfs(cfg, cfg.root.path, opt);
        enter_rootfs(cfg.root.path, false);
        finish_rootfs(cfg);
        check_inside(tmp.path, !v2_only);
    });
    BOOST_TEST(err.empty(), err);

    // Nothing leaked into our mount table, and the symlinked destination did not
    // create anything outside the rootfs.
    std::string host = host_mount_targets();
    BOOST_TEST(host.find(tmp.path) == std::string::npos, host);
    BOOST_TEST(fs::is_dir(tmp.path + "/rootfs/hostside"));
    BOOST_TEST(!fs::exists(tmp.path + "/hostside"));
}

BOOST_AUTO_TEST_CASE(no_pivot_moves_the_root) {
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: needs root");
        return;
    }
    TempDir tmp;
    build_image(tmp.path);
    spec::Config cfg;
    cfg.mounts = {make_mount("/proc", "proc", "proc", {}),
                  make_mount("/dev", "tmpfs", "tmpfs", {"mode=755"}),
                  make_mount("/rro", "bind", tmp.path + "/src", {"rbind", "rro", "rnoexec"})};
    cfg.linux.rootfs_propagation = "rprivate";
    std::string err = in_mount_namespace([&] {
        prepare_rootfs(cfg, tmp.path + "/rootfs", RootfsOptions{});
        enter_rootfs(tmp.path + "/rootfs", true);
        finish_rootfs(cfg);
        expect(fs::read_file("/etc/hostname") == "image\n", "root is the rootfs");
        expect(run_busybox({"test", "-c", "/dev/null"}) == 0, "busybox and /dev/null");
        expect(errno_of_write_open("/written") == 0, "root stays writable");
        expect(errno_of_write_open("/rro/x") == EROFS, "rro applied with mount_setattr");
        struct statfs sf {};
        expect(::statfs("/rro", &sf) == 0 && (sf.f_flags & ST_NOEXEC), "rnoexec applied");
    });
    BOOST_TEST(err.empty(), err);
    BOOST_TEST(host_mount_targets().find(tmp.path) == std::string::npos);
}

// In a user namespace: nodes are bound from the host, and a bind of a mount whose
// nosuid/nodev/noexec are locked still gets its "ro" remount.
BOOST_AUTO_TEST_CASE(user_namespace_binds_devices_and_keeps_locked_flags) {
    if (::geteuid() != 0) return;
    TempDir tmp;
    build_image(tmp.path);
    fs::mkdir_p(tmp.path + "/locked");
    spec::Config cfg;
    cfg.root.readonly = true;
    cfg.mounts = {make_mount("/dev", "tmpfs", "tmpfs", {"nosuid", "mode=755"}),
                  make_mount("/locked", "bind", tmp.path + "/locked", {"rbind", "ro"})};
    cfg.linux.masked_paths = {"/etc/hostname"};
    RootfsOptions opt;
    opt.user_ns = true;
    std::string err = in_mount_namespace([&] {
        const std::string locked = tmp.path + "/locked";
        if (::mount("tmpfs", locked.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
            throw_errno("mount locked tmpfs");
        write_text(locked + "/f", "locked");
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) throw_errno("unshare user");
        fs::write_file("/proc/self/setgroups", "deny");
        fs::write_file("/proc/self/uid_map", "0 0 1");
        fs::write_file("/proc/self/gid_map", "0 0 1");
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            throw_errno("make / rprivate");
        prepare_rootfs(cfg, tmp.path + "/rootfs", opt);
        enter_rootfs(tmp.path + "/rootfs", false);
        finish_rootfs(cfg);
        struct stat st {};
        expect(::stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
               "/dev/null bound from the host");
        expect(errno_of_write_open("/dev/null") == 0, "/dev/null writable");
        expect(fs::read_file("/locked/f") == "locked", "locked bind content");
        expect(errno_of_write_open("/locked/g") == EROFS, "locked bind is read-only");
        struct statfs sf {};
        expect(::statfs("/locked", &sf) == 0 && (sf.f_flags & ST_NOSUID) && (sf.f_flags & ST_NODEV) &&
                   (sf.f_flags & ST_NOEXEC), "locked flags kept");
        expect(fs::read_file("/etc/hostname").empty(), "masked without /proc (path fallback)");
        expect(errno_of_write_open("/x") == EROFS, "root read-only in a user namespace");
    });
    BOOST_TEST(err.empty(), err);
    BOOST_TEST(host_mount_targets().find(tmp.path) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(mount_errors_are_clear) {
    if (::geteuid() != 0) return;
    TempDir tmp;
    build_image(tmp.path);
    spec::Config cfg;
    cfg.mounts = {make_mount("/proc/self/fd", "bind", tmp.path + "/src", {"rbind"})};
    std::string err = in_mount_namespace(
        [&] { prepare_rootfs(cfg, tmp.path + "/rootfs", RootfsOptions{}); });
    BOOST_TEST(err == "\"/proc/self/fd\" cannot be mounted because it is inside /proc");
    cfg.mounts = {make_mount("/x", "bind", tmp.path + "/missing", {"bind"})};
    err = in_mount_namespace([&] { prepare_rootfs(cfg, tmp.path + "/rootfs", RootfsOptions{}); });
    BOOST_TEST(err == "mount " + tmp.path + "/missing on /x: No such file or directory");
}

BOOST_AUTO_TEST_SUITE_END()
