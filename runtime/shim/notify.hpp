// Thin wrappers over the seccomp user-notification ioctls and the pidfd calls the
// supervisor needs to act for a notifying thread.
#pragma once

#include <linux/seccomp.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "runtime/util/fd.hpp"

namespace sandlock::shim {

// Receives one notification. False when it vanished before we got it (ENOENT: the
// thread was killed between poll and receive); throws on any other failure.
bool notif_receive(int listener, seccomp_notif& out);
// SECCOMP_IOCTL_NOTIF_ID_VALID: the thread is still blocked in this notification.
bool notif_id_valid(int listener, std::uint64_t id);
// Sends the answer. False when the notification is gone (ENOENT); throws otherwise.
bool notif_respond(int listener, const seccomp_notif_resp& resp);
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP where the kernel has it (6.6+); false otherwise.
bool notif_set_sync_wakeup(int listener);

// pidfd of one thread (PIDFD_THREAD; notif.pid is a thread id). Falls back to the
// thread group leader on kernels without PIDFD_THREAD. Invalid fd (errno set) on failure.
UniqueFd pidfd_open_thread(pid_t tid);
// A PIDFD_THREAD pidfd for tid from this thread's small cache, borrowed: valid until
// this thread's next call. refresh=true replaces a cached one (its thread has exited
// and the tid was reused). -1 with errno set on failure; EOPNOTSUPP on kernels
// without PIDFD_THREAD, where a pidfd names the thread group and must not be cached.
// Sound because a thread pidfd names one thread for good: once that thread has
// exited, pidfd_getfd through it fails (ESRCH) even if its number is in use again.
int cached_thread_pidfd(pid_t tid, bool refresh);
// pidfd_getfd(2); invalid fd (errno set) on failure.
UniqueFd pidfd_take_fd(int pidfd, int fd);
// pidfd_send_signal(2) to the thread the pidfd names.
void pidfd_signal(int pidfd, int sig);

// process_vm_readv/writev of one contiguous range: true only when every byte moved.
bool read_process_memory(pid_t tid, std::uint64_t addr, void* out, std::size_t len);
// Gathers `count` remote ranges (count <= IOV_MAX) whose lengths sum to `total` into out.
bool read_process_gather(pid_t tid, const iovec* remote, std::size_t count, void* out, std::size_t total);
bool write_process_memory(pid_t tid, std::uint64_t addr, const void* in, std::size_t len);

}  // namespace sandlock::shim
