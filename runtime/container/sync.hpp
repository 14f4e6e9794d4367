// The create/start handshake between `sandlock-runc create` (the parent),
// the short-lived intermediate process (stage 1) and the container's init.
//
// Channel: one SOCK_SEQPACKET socketpair, made by the parent before it forks.
// Every message is one packet: a type byte, then a text payload; a message may
// carry one fd (SCM_RIGHTS). Packets keep boundaries, so no framing is needed.
//
//   parent                         stage 1                       init (stage 2)
//   ------                         -------                       --------------
//   fork stage 1 ───────────────>  setns() into every namespace
//                                  given by path (user first)
//                                  [new user ns] unshare(USER)
//   write uid_map/gid_map  <────── UsernsReady
//   UsernsMapped ──────────────>   setresuid/gid(0)
//   [new cgroup ns, or a driver
//   whose cgroup is made with its
//   first process: systemd] add
//   stage 1 to the container
//   cgroup; apply resources <───── JoinCgroup("cgroupns" when it will make one)
//   CgroupJoined("joined" if ──>   [new cgroup ns] unshare(NEWCGROUP): its
//   it added stage 1)              root is the container's cgroup
//   [joined] move stage 1 back <── LeaveCgroup (only when joined)
//   to the runtime's own cgroup
//   (every hierarchy);
//   CgroupLeft ────────────────>   unshare(the other new namespaces; NEWPID
//                                  and NEWTIME take effect for the child),
//                                  write timens_offsets, fork ──> init
//   [egress] attach the kernel
//   layer to the cgroup (its maps
//   go to the shim with init's
//   listener); EgressMode("kernel"
//   or "supervisor") ─────────────────────────────────────────>  (read first; stage 1
//                                                                reads nothing after
//                                                                CgroupLeft)
//   record init pid        <────── InitPid(pid); stage 1 exits
//                                  (init waits on a pipe until InitPid is
//                                  sent: the parent reads InitPid first)
//                                                                setsid, prepare rootfs
//   prestart, createRuntime <───────────────────────────────────── RunHooks
//   hooks (runtime ns)
//   HooksDone ────────────────────────────────────────────────>  createContainer hooks
//                                                                pivot_root, masked and
//                                                                read-only paths, sysctl,
//                                                                hostname, rlimits, pty
//   send to --console-socket <──────────────────────────────────── Console(fd)
//   [egress policy] take the  <────────────────────────────────── EgressListener(n)
//     notify listener fd n with                                  (after Landlock and the
//     pidfd_getfd, keep it for                                   egress notify filter)
//     the shim; EgressDone ───────────────────────────────────>
//   [OCI listenerPath] take fd <──────────────────────────────────── SeccompListener(n)
//     with pidfd_getfd, send it
//   SeccompDone ──────────────────────────────────────────────>  caps/user, executable
//                                                                looked up in $PATH
//   [egress] start the shim with the listener (before Ready is acknowledged
//   by exiting, so no process of the container ever runs unsupervised)
//   add init to the container cgroup <─────────────────────────── Ready
//   write state.json, pid-file                                   open(exec.fifo, O_WRONLY)
//   exit 0                                                       blocks...
//   `start`: open(exec.fifo, O_RDONLY), read one byte ─────────> unblocked (keeps its
//            unlink exec.fifo                                    O_CLOEXEC write end):
//                                                                startContainer hooks,
//            read until EOF <──────────────────────────────────── execve(args) closes it
//            poststart hooks (after the user's process was executed, as the spec says)
//
// Cgroup: the setup (namespaces, mount tree, rootfs, hooks, filters) runs in
// the runtime's own cgroup, and init enters the container's cgroup only once
// it is parked before execve, so a tiny memory limit is spent on the workload
// alone. Memory charges never follow a moved process (cgroup v2; v1 with
// memory.move_charge_at_immigrate 0, the default, which the runtime never
// sets), so what the setup allocated stays charged to the runtime's cgroup.
// pids: a moved process is counted from then on (migration ignores pids.max,
// so init always gets in). The cgroup namespace is still rooted at the
// container's cgroup: stage 1 creates it while inside. Without a new cgroup
// namespace stage 1 never enters (each v1 migration writes every hierarchy's
// cgroup.procs under a global lock): init's join at Ready is the only one.
//
// Messages without an fd are sent with write(), never sendmsg(): after the
// egress filter is installed, init's sendmsg would wait for a shim that is
// only started once create has the listener.
//
// Either side failing: a process that fails sends Error(message) and exits 1.
// The parent treats Error, EOF or an unexpected message as failure: it kills
// init (SIGKILL), reaps stage 1, removes the cgroup and the state dir, and
// prints the message. If the parent dies, its end of the socket closes: stage
// 1 and init see EOF on their next read and exit, so nothing is left parked.
// Once Ready is sent the socket is closed; init's only link is exec.fifo,
// whose O_PATH fd the parent opened and init inherited (init cannot reach the
// state dir after pivot_root); init reopens it for writing through /proc/self/fd,
// the container's own, or, in a rootfs without /proc (no mount namespace of its
// own), through its /proc/self/fd opened before it entered the rootfs.
// `delete` of a created container kills init.
//
// `exec` uses the same channel and a shorter sequence: stage 1 joins the
// container's namespaces and forks the process (InitPid); the process sets up
// (session, rlimits, console, Landlock and filters, identity), then sends
// JoinCgroup, and the parent writes its pid into the container's cgroup and
// answers CgroupJoined; only then does the process send Ready and execve. So
// the setup of an exec is not charged to the container either, and nothing of
// the exec'd program runs outside the container's cgroup. The process keeps
// its end of the socket through execve (O_CLOEXEC closes it there): the
// parent reads on after Ready until EOF, so `exec --detach` returns, and the
// pid file is written, only once the process runs its own program; an execve
// that fails sends Error instead, and exec fails with that message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/util/fd.hpp"

namespace sandlock::container {

enum class SyncType : uint8_t {
    UsernsReady = 1,
    UsernsMapped,
    JoinCgroup,
    CgroupJoined,
    LeaveCgroup,
    CgroupLeft,
    EgressMode,
    InitPid,
    RunHooks,
    HooksDone,
    Console,
    SeccompListener,
    SeccompDone,
    EgressListener,
    EgressDone,
    Ready,
    Error,
};

const char* sync_type_name(SyncType t);

// Payloads of JoinCgroup ("stage 1 will make a cgroup namespace") and
// CgroupJoined ("stage 1 was added to the container's cgroup").
inline constexpr const char* kMakesCgroupNs = "cgroupns";
inline constexpr const char* kJoined = "joined";

struct SyncMessage {
    SyncType type;
    std::string payload;
    UniqueFd fd;
};

class SyncSocket {
public:
    SyncSocket() = default;
    explicit SyncSocket(UniqueFd fd) : fd_(std::move(fd)) {}

    static std::pair<SyncSocket, SyncSocket> make_pair();

    void send(SyncType type, const std::string& payload = "", int fd = -1);
    // Throws sandlock::Error on EOF or a socket error.
    SyncMessage recv();
    // The next message, or nullopt at EOF (the peer closed its end).
    std::optional<SyncMessage> recv_or_eof();
    // Receives one message; an Error message is rethrown with its text, and a
    // type other than `expected` is a protocol error.
    SyncMessage expect(SyncType expected);
    // After Ready from an exec'd process: returns at EOF, which its execve
    // makes (the socket is O_CLOEXEC); an Error it sent instead is rethrown.
    void wait_for_execve();

    int get() const { return fd_.get(); }
    void close() { fd_.reset(); }

private:
    UniqueFd fd_;
};

}  // namespace sandlock::container
