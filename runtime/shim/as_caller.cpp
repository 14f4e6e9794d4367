#include "runtime/shim/as_caller.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/log.hpp"

namespace sandlock::shim {

namespace {

// PIDFD_GET_INFO (include/uapi/linux/pidfd.h, 6.13): the first version of the struct.
struct PidfdInfo {
    std::uint64_t mask;
    std::uint64_t cgroupid;
    std::uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    std::uint32_t spare0;
};
static_assert(sizeof(PidfdInfo) == 64);
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
constexpr std::uint64_t kPidfdInfoCreds = 1u << 1;

std::string read_small_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

std::vector<std::uint64_t> numbers(const std::string& s, int base = 10) {
    std::vector<std::uint64_t> out;
    const char* p = s.c_str();
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n') ++p;
        if (!*p) break;
        char* end = nullptr;
        errno = 0;
        const unsigned long long v = std::strtoull(p, &end, base);
        if (end == p || errno) break;
        out.push_back(v);
        p = end;
    }
    return out;
}

ino_t user_ns_inode(const std::string& proc_dir) {
    struct stat st{};
    if (::stat((proc_dir + "/ns/user").c_str(), &st) != 0) return 0;
    return st.st_ino;
}

// Raw, per-thread credential calls (see the header).
long sys_setresuid(uid_t r, uid_t e, uid_t s) { return ::syscall(SYS_setresuid, r, e, s); }
long sys_setresgid(gid_t r, gid_t e, gid_t s) { return ::syscall(SYS_setresgid, r, e, s); }
long sys_setgroups(const std::vector<gid_t>& g) { return ::syscall(SYS_setgroups, g.size(), g.data()); }

struct Caps {
    __user_cap_data_struct data[2]{};
};
bool get_caps(Caps& c) {
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capget, &h, c.data) == 0;
}
bool set_caps(const Caps& c) {
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capset, &h, c.data) == 0;
}

// What a thread that acted as a caller must get back, saved by the first scope.
struct Home {
    bool saved = false;
    bool fs_private = false;  // unshare(CLONE_FS) done
    UniqueFd root, cwd;
    uid_t ruid = 0, euid = 0, suid = 0;
    gid_t rgid = 0, egid = 0, sgid = 0;
    std::vector<gid_t> groups;
    Caps caps;
};
thread_local Home home;

[[noreturn]] void cannot_switch_back(const char* what) {
    log::warn(std::string("egress supervisor: cannot restore its own identity (") + what + "): " +
               std::strerror(errno) + "; exiting");
    std::abort();
}

}  // namespace

bool parse_status(const std::string& text, ThreadCredentials& out) {
    std::istringstream in(text);
    std::string line;
    int seen = 0;
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string key = line.substr(0, colon), value = line.substr(colon + 1);
        if (key == "Tgid") {
            auto v = numbers(value);
            if (v.size() != 1) return false;
            out.ids.tgid = static_cast<pid_t>(v[0]);
            seen |= 1;
        } else if (key == "Uid" || key == "Gid") {
            auto v = numbers(value);
            if (v.size() != 4) return false;
            if (key == "Uid") {
                out.ids.ruid = static_cast<uid_t>(v[0]), out.ids.euid = static_cast<uid_t>(v[1]);
                out.ids.suid = static_cast<uid_t>(v[2]), out.ids.fsuid = static_cast<uid_t>(v[3]);
                seen |= 2;
            } else {
                out.ids.rgid = static_cast<gid_t>(v[0]), out.ids.egid = static_cast<gid_t>(v[1]);
                out.ids.sgid = static_cast<gid_t>(v[2]), out.ids.fsgid = static_cast<gid_t>(v[3]);
                seen |= 4;
            }
        } else if (key == "Groups") {
            out.groups.clear();
            for (auto g : numbers(value)) out.groups.push_back(static_cast<gid_t>(g));
        } else if (key == "NStgid") {
            auto v = numbers(value);
            if (v.empty()) return false;
            out.ns_tgid = static_cast<pid_t>(v.back());
            seen |= 8;
        } else if (key == "CapEff") {
            auto v = numbers(value, 16);
            if (v.size() != 1) return false;
            out.cap_effective = v[0];
            seen |= 16;
        }
    }
    return seen == 31;
}

std::optional<std::uint32_t> map_id(const std::vector<std::uint64_t>& map, std::uint32_t id) {
    for (std::size_t i = 0; i + 2 < map.size(); i += 3) {
        const std::uint64_t inside = map[i], outside = map[i + 1], count = map[i + 2];
        if (id >= inside && id - inside < count) return static_cast<std::uint32_t>(outside + (id - inside));
    }
    return std::nullopt;
}

std::optional<ThreadIds> thread_ids(int pidfd, pid_t tid) {
    static bool have_info = true;  // false once the kernel says it has no PIDFD_GET_INFO
    if (pidfd >= 0 && have_info) {
        PidfdInfo info{};
        info.mask = kPidfdInfoCreds;
        if (::ioctl(pidfd, kPidfdGetInfo, &info) == 0) {
            ThreadIds ids;
            ids.tgid = static_cast<pid_t>(info.tgid);
            ids.ruid = info.ruid, ids.euid = info.euid, ids.suid = info.suid, ids.fsuid = info.fsuid;
            ids.rgid = info.rgid, ids.egid = info.egid, ids.sgid = info.sgid, ids.fsgid = info.fsgid;
            return ids;
        }
        if (errno == ESRCH) return std::nullopt;
        if (errno == ENOTTY || errno == EINVAL) have_info = false;
    }
    auto creds = thread_credentials(tid);
    if (!creds) return std::nullopt;
    return creds->ids;
}

std::optional<ThreadCredentials> thread_credentials(pid_t tid) {
    const std::string dir = "/proc/" + std::to_string(tid);
    ThreadCredentials c;
    if (!parse_status(read_small_file(dir + "/status"), c)) return std::nullopt;
    const ino_t theirs = user_ns_inode(dir), ours = user_ns_inode("/proc/thread-self");
    c.same_user_ns = theirs != 0 && theirs == ours;
    if (!c.same_user_ns) {
        c.uid_map = numbers(read_small_file(dir + "/uid_map"));
        c.gid_map = numbers(read_small_file(dir + "/gid_map"));
    }
    return c;
}

bool AsCaller::supported() {
    static const bool ok = [] {
        Caps c;
        if (::geteuid() != 0 || !get_caps(c)) return false;
        for (int cap : {CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT})
            if (!(c.data[CAP_TO_INDEX(cap)].permitted & CAP_TO_MASK(cap))) return false;
        return true;
    }();
    return ok;
}

AsCaller::AsCaller(pid_t tid, const ThreadCredentials& creds, bool with_fs) {
    if (!supported()) throw Error("egress supervisor: cannot act as the caller (the shim is not root)");
    if (!home.saved) {
        if (::syscall(SYS_getresuid, &home.ruid, &home.euid, &home.suid) != 0 ||
            ::syscall(SYS_getresgid, &home.rgid, &home.egid, &home.sgid) != 0 || !get_caps(home.caps))
            throw_errno("egress supervisor: save the thread's identity");
        const long n = ::syscall(SYS_getgroups, 0, nullptr);
        home.groups.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        if (n > 0 && ::syscall(SYS_getgroups, n, home.groups.data()) != n)
            throw_errno("egress supervisor: save the thread's groups");
        home.saved = true;
    }
    if (home.suid != 0) throw Error("egress supervisor: cannot act as the caller (saved uid not 0)");

    if (with_fs) {
        if (!home.fs_private) {
            if (::unshare(CLONE_FS) != 0) throw_errno("egress supervisor: unshare(CLONE_FS)");
            home.root = UniqueFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
            home.cwd = UniqueFd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!home.root || !home.cwd) throw_errno("egress supervisor: open the shim's root");
            home.fs_private = true;
        }
        const std::string dir = "/proc/" + std::to_string(tid);
        UniqueFd root(::open((dir + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        UniqueFd cwd(::open((dir + "/cwd").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root || !cwd) throw_errno("egress supervisor: the caller's root and cwd");
        fs_ = true;  // from here on the destructor restores the shim's
        if (::fchdir(root.get()) != 0 || ::chroot(".") != 0 || ::fchdir(cwd.get()) != 0) {
            const int err = errno;
            restore();
            throw_errno("egress supervisor: enter the caller's root", err);
        }
    }

    Caps want = home.caps;
    for (int i = 0; i < 2; ++i) {
        const std::uint32_t caller =
            creds.same_user_ns ? static_cast<std::uint32_t>(creds.cap_effective >> (32 * i)) : 0;
        want.data[i].effective = home.caps.data[i].permitted & caller;
    }
    ids_ = true;
    const ThreadIds& id = creds.ids;
    // (setresuid resets the fsuid to the euid and, for a non-zero euid, clears the
    // effective capabilities: they are raised again, within the permitted set, for the
    // rare caller whose fsuid differs, then lowered to the caller's.)
    const bool ok = sys_setgroups(creds.groups) == 0 && sys_setresgid(id.rgid, id.egid, home.sgid) == 0 &&
                    (::setfsgid(id.fsgid), static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1))) == id.fsgid) &&
                    sys_setresuid(id.ruid, id.euid, home.suid) == 0 &&
                    (id.fsuid == id.euid ||
                     (set_caps(home.caps) && (::setfsuid(id.fsuid), true) &&
                      static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))) == id.fsuid)) &&
                    set_caps(want);
    if (!ok) {
        const int err = errno;
        restore();
        throw_errno("egress supervisor: take the caller's credentials", err);
    }
}

AsCaller::~AsCaller() { restore(); }

void AsCaller::restore() noexcept {
    if (ids_) {
        // Capabilities first (within the permitted set, always allowed), then the ids.
        if (!set_caps(home.caps)) cannot_switch_back("capabilities");
        if (sys_setresuid(home.ruid, home.euid, home.suid) != 0) cannot_switch_back("uids");
        if (sys_setresgid(home.rgid, home.egid, home.sgid) != 0) cannot_switch_back("gids");
        ::setfsuid(home.euid);
        ::setfsgid(home.egid);
        if (sys_setgroups(home.groups) != 0) cannot_switch_back("groups");
        if (!set_caps(home.caps)) cannot_switch_back("capabilities");
        ids_ = false;
    }
    if (fs_) {
        if (::fchdir(home.root.get()) != 0 || ::chroot(".") != 0 || ::fchdir(home.cwd.get()) != 0)
            cannot_switch_back("root directory");
        fs_ = false;
    }
}

}  // namespace sandlock::shim
