// Acting as the notifying thread for the calls the supervisor performs on sockets that
// are not IP sockets (unix, netlink): who the caller is (ids, groups, capabilities,
// namespaces), and a scope in which one shim thread resolves paths from the caller's
// root and working directory with the caller's credentials.
//
// Everything here changes the calling thread only (raw syscalls: glibc would broadcast
// setresuid/setgroups to every thread of the shim), and the scope puts it all back.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sandlock::shim {

// The ids of a thread as the shim's own namespaces see them.
struct ThreadIds {
    pid_t tgid = 0;  // in the shim's pid namespace
    uid_t ruid = 0, euid = 0, suid = 0, fsuid = 0;
    gid_t rgid = 0, egid = 0, sgid = 0, fsgid = 0;
};

// PIDFD_GET_INFO on a pidfd of the thread (Linux 6.13+), else /proc/<tid>/status.
// nullopt when the thread is gone.
std::optional<ThreadIds> thread_ids(int pidfd, pid_t tid);

// What else the calls below need of the thread, from /proc/<tid>/status and its
// namespaces: read once per call that needs it.
struct ThreadCredentials {
    ThreadIds ids;
    std::vector<gid_t> groups;
    std::uint64_t cap_effective = 0;
    pid_t ns_tgid = 0;            // the thread group id in its own pid namespace
    bool same_user_ns = true;     // its user namespace is the shim's
    // uid_map/gid_map lines (inside, outside, count) of its user namespace, as the shim sees them
    std::vector<std::uint64_t> uid_map, gid_map;
};
std::optional<ThreadCredentials> thread_credentials(pid_t tid);

// Parses a /proc status text (the fields above; tgid from Tgid:). For unit tests too.
bool parse_status(const std::string& text, ThreadCredentials& out);
// Maps an id of the thread's user namespace to the shim's through a uid_map/gid_map
// triple list; nullopt when unmapped.
std::optional<std::uint32_t> map_id(const std::vector<std::uint64_t>& map, std::uint32_t id);

// While alive, this thread has the caller's root directory and working directory
// (chroot/fchdir on a thread-private fs_struct: unshare(CLONE_FS) once per thread), and
// its real, effective and file-system user and group ids, its supplementary groups and
// its effective capabilities (limited to the shim's own; none when the caller's user
// namespace is not the shim's: its capabilities mean nothing for the shim's inodes).
// The saved set-user-ID stays the shim's, which is how the destructor gets the rest back.
// Throws sandlock::Error when the switch cannot be made (the call then fails closed);
// a failure to switch back aborts the shim: a thread left with another identity must
// not serve anything else.
class AsCaller {
public:
    // with_fs: also take the caller's root and working directory (needs /proc/<tid>/root).
    AsCaller(pid_t tid, const ThreadCredentials& creds, bool with_fs);
    ~AsCaller();
    AsCaller(const AsCaller&) = delete;
    AsCaller& operator=(const AsCaller&) = delete;

    // Whether this process can act as another thread at all (it runs as root with
    // CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT). Cached.
    static bool supported();

private:
    void restore() noexcept;
    bool fs_ = false;
    bool ids_ = false;
};

}  // namespace sandlock::shim
