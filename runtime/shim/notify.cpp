#include "runtime/shim/notify.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>

#include "runtime/util/error.hpp"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

namespace sandlock::shim {

bool notif_receive(int listener, seccomp_notif& out) {
    for (;;) {
        out = {};  // the kernel refuses a non-zeroed buffer
        if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &out) == 0) return true;
        if (errno == EINTR) continue;
        if (errno == ENOENT) return false;
        throw_errno("receive seccomp notification");
    }
}

bool notif_id_valid(int listener, std::uint64_t id) {
    return ::ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

bool notif_respond(int listener, const seccomp_notif_resp& resp) {
    seccomp_notif_resp copy = resp;
    for (;;) {
        if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &copy) == 0) return true;
        if (errno == EINTR) continue;
        if (errno == ENOENT) return false;
        throw_errno("answer seccomp notification");
    }
}

bool notif_set_sync_wakeup(int listener) {
    std::uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
    return ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) == 0;
}

namespace {

pid_t thread_group_of(pid_t tid) {
    std::ifstream status("/proc/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Tgid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
    return -1;
}

}  // namespace

UniqueFd pidfd_open_thread(pid_t tid) {
    static std::atomic<bool> thread_pidfds{true};  // false once on kernels < 6.9
    if (thread_pidfds.load(std::memory_order_relaxed)) {
        long fd = ::syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
        if (fd >= 0 || errno != EINVAL) return UniqueFd(static_cast<int>(fd));
        thread_pidfds.store(false, std::memory_order_relaxed);
    }
    // Without PIDFD_THREAD: the leader's pidfd reaches the same fd table and memory.
    // The caller's NOTIF_ID_VALID check afterwards proves the tid was not reused.
    pid_t tgid = thread_group_of(tid);
    if (tgid <= 0) {
        errno = ESRCH;
        return {};
    }
    return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, tgid, 0)));
}

int cached_thread_pidfd(pid_t tid, bool refresh) {
    struct Entry {
        pid_t tid = 0;
        UniqueFd pidfd;
    };
    constexpr std::size_t kEntries = 16;
    thread_local std::array<Entry, kEntries> cache;
    thread_local std::size_t next_victim = 0;
    static std::atomic<bool> supported{true};

    if (!supported.load(std::memory_order_relaxed)) {
        errno = EOPNOTSUPP;
        return -1;
    }
    Entry* slot = nullptr;
    for (auto& e : cache)
        if (e.tid == tid && e.pidfd) slot = &e;
    if (slot && !refresh) return slot->pidfd.get();
    if (!slot) {
        slot = &cache[next_victim];
        next_victim = (next_victim + 1) % kEntries;
    }
    slot->tid = 0;
    slot->pidfd.reset();
    const long fd = ::syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
    if (fd < 0) {
        if (errno == EINVAL) {
            supported.store(false, std::memory_order_relaxed);
            errno = EOPNOTSUPP;
        }
        return -1;
    }
    slot->tid = tid;
    slot->pidfd = UniqueFd(static_cast<int>(fd));
    return slot->pidfd.get();
}

UniqueFd pidfd_take_fd(int pidfd, int fd) {
    return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0)));
}

void pidfd_signal(int pidfd, int sig) {
    ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

bool read_process_memory(pid_t tid, std::uint64_t addr, void* out, std::size_t len) {
    if (len == 0) return true;
    iovec local{out, len};
    iovec remote{reinterpret_cast<void*>(static_cast<std::uintptr_t>(addr)), len};
    ssize_t n = ::process_vm_readv(tid, &local, 1, &remote, 1, 0);
    return n >= 0 && static_cast<std::size_t>(n) == len;
}

bool read_process_gather(pid_t tid, const iovec* remote, std::size_t count, void* out, std::size_t total) {
    if (total == 0) return true;
    iovec local{out, total};
    ssize_t n = ::process_vm_readv(tid, &local, 1, remote, count, 0);
    return n >= 0 && static_cast<std::size_t>(n) == total;
}

bool write_process_memory(pid_t tid, std::uint64_t addr, const void* in, std::size_t len) {
    if (len == 0) return true;
    iovec local{const_cast<void*>(in), len};
    iovec remote{reinterpret_cast<void*>(static_cast<std::uintptr_t>(addr)), len};
    ssize_t n = ::process_vm_writev(tid, &local, 1, &remote, 1, 0);
    return n >= 0 && static_cast<std::size_t>(n) == len;
}

}  // namespace sandlock::shim
