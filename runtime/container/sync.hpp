// The create/start handshake between `sandlock-runc create` (the parent),
// the short-lived intermediate process (stage 1) and the container's init.
//
// Channel: one SOCK_SEQPACKET socketpair, made by the parent before it forks.
// Every message is a type of its own (msg:: below) with typed fields; sync.cpp
// alone turns it into one packet: a type byte, then its field as text (a number
// in decimal, a flag as its word or nothing, the hooks' state as JSON), and the
// pty of Console as its one fd (SCM_RIGHTS). Packets keep boundaries, so no
// framing is needed. A packet that does not decode is an error, as Error is.
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
//   [egress] once the cgroup step
//   is over (CgroupLeft, or
//   CgroupJoined when not joined),
//   attach the kernel layer to the
//   cgroup (its maps go to the
//   shim with init's listener);
//   EgressMode("kernel" or
//   "supervisor": which of the two
//   prebuilt notify filters init
//   installs) ────────────────────────────────────────────────>  (read after RunHooks
//                                                                is sent: its mount
//                                                                work overlaps the
//                                                                attach; stage 1 reads
//                                                                nothing after its
//                                                                cgroup step)
//   record init pid        <────── InitPid(pid); stage 1 exits
//                                  (init waits on a pipe until InitPid is
//                                  sent: the parent reads InitPid first)
//                                                                setsid, prepare rootfs
//   prestart, createRuntime <───────────────────────────────────── RunHooks
//   hooks (runtime ns)                                           [egress] EgressMode
//   HooksDone ────────────────────────────────────────────────>  createContainer hooks
//   [egress] the shim into its
//   own cgroup (init goes on)
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
// The parent serves both conversations with one loop (sync_parent.hpp), given
// the order of the protocol's messages (each at most once, Ready last) and the
// steps only one protocol takes; Console, the listeners, Ready and Error are
// handled there alike for create and exec.
//
// Either side failing: a process that fails sends Error(message) and exits 1.
// The parent treats Error, EOF, a malformed packet or an unexpected message as
// failure: it kills init (SIGKILL), reaps stage 1, removes the cgroup and the
// state dir, and prints the message (and, once init was recorded, runs the
// poststop hooks). If the parent dies, its end of the socket closes: stage 1
// and init see EOF on their next read and exit, so nothing is left parked.
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

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/util/fd.hpp"

namespace sandlock::egress {
enum class Enforcement;  // runtime/egress/kernel_layer.hpp
}

namespace sandlock::container {

// The type byte of each packet.
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

// The messages of the drawing, one type each, with their payloads typed. Only
// sync.cpp turns them into packets and back (encode/decode below).
namespace msg {
struct UsernsReady { static constexpr SyncType type = SyncType::UsernsReady; };
struct UsernsMapped { static constexpr SyncType type = SyncType::UsernsMapped; };
struct JoinCgroup {
    static constexpr SyncType type = SyncType::JoinCgroup;
    bool makes_cgroup_ns = false;  // stage 1 will make a cgroup namespace there
};
struct CgroupJoined {
    static constexpr SyncType type = SyncType::CgroupJoined;
    bool joined = false;  // stage 1 was added to the container's cgroup
};
struct LeaveCgroup { static constexpr SyncType type = SyncType::LeaveCgroup; };
struct CgroupLeft { static constexpr SyncType type = SyncType::CgroupLeft; };
struct EgressMode {
    static constexpr SyncType type = SyncType::EgressMode;
    egress::Enforcement mode;  // payload: the mode's name
};
struct InitPid {
    static constexpr SyncType type = SyncType::InitPid;
    pid_t pid = 0;
};
struct RunHooks { static constexpr SyncType type = SyncType::RunHooks; };
struct HooksDone {
    static constexpr SyncType type = SyncType::HooksDone;
    // The OCI state (a JSON object) for init's createContainer and startContainer hooks;
    // empty when it has none.
    std::string state_json;
};
struct Console {
    static constexpr SyncType type = SyncType::Console;
    std::string slave_name;
    UniqueFd master;  // travels as SCM_RIGHTS
};
// The listeners' fds are named by their number in the sender, which the
// parent takes with pidfd_getfd (SCM_RIGHTS would need sendmsg; see below).
struct SeccompListener {
    static constexpr SyncType type = SyncType::SeccompListener;
    int fd = -1;
};
struct SeccompDone { static constexpr SyncType type = SyncType::SeccompDone; };
struct EgressListener {
    static constexpr SyncType type = SyncType::EgressListener;
    int fd = -1;
};
struct EgressDone { static constexpr SyncType type = SyncType::EgressDone; };
struct Ready { static constexpr SyncType type = SyncType::Ready; };
struct Error {
    static constexpr SyncType type = SyncType::Error;
    std::string message;
};
}  // namespace msg

using SyncMessage =
    std::variant<msg::UsernsReady, msg::UsernsMapped, msg::JoinCgroup, msg::CgroupJoined,
                 msg::LeaveCgroup, msg::CgroupLeft, msg::EgressMode, msg::InitPid, msg::RunHooks,
                 msg::HooksDone, msg::Console, msg::SeccompListener, msg::SeccompDone,
                 msg::EgressListener, msg::EgressDone, msg::Ready, msg::Error>;

SyncType type_of(const SyncMessage& m);

// One packet: the type byte and payload, and the fd to attach (-1: none; owned by the message).
struct Packet {
    std::string bytes;
    int fd = -1;
};
Packet encode(const SyncMessage& m);
// Throws sandlock::Error, naming the message, for an unknown type, a payload that is
// not what the type carries, or an fd missing or not expected.
SyncMessage decode(std::string_view bytes, UniqueFd fd);

// Throws sandlock::Error: the text of an Error message, else "expected X, got Y".
[[noreturn]] void throw_unexpected(const SyncMessage& got, SyncType expected);

class SyncSocket {
public:
    SyncSocket() = default;
    explicit SyncSocket(UniqueFd fd) : fd_(std::move(fd)) {}

    static std::pair<SyncSocket, SyncSocket> make_pair();

    void send(const SyncMessage& m);
    // Throws sandlock::Error on EOF, a socket error or a malformed packet.
    SyncMessage recv();
    // The next message, or nullopt at EOF (the peer closed its end).
    std::optional<SyncMessage> recv_or_eof();
    // Receives one message; an Error message is rethrown with its text, and a
    // type other than M is a protocol error.
    template <class M>
    M expect() {
        SyncMessage m = recv();
        if (auto* wanted = std::get_if<M>(&m)) return std::move(*wanted);
        throw_unexpected(m, M::type);
    }
    // After Ready from an exec'd process: returns at EOF, which its execve
    // makes (the socket is O_CLOEXEC); an Error it sent instead is rethrown.
    void wait_for_execve();

    int get() const { return fd_.get(); }
    void close() { fd_.reset(); }

private:
    UniqueFd fd_;
};

}  // namespace sandlock::container
