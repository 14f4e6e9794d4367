// The egress seccomp filter: the calls whose destination the shim must judge go
// to its listener; what can be decided from registers alone is decided here.
//
// Notified (SECCOMP_RET_USER_NOTIF, answered by the shim):
//   - connect (every family: in kernel mode the shim continues non-IP sockets, in
//     supervisor mode it performs their calls itself, shim/client.hpp);
//   and only in supervisor mode (the kernel layer could not be attached):
//   - sendto with a non-NULL destination pointer (arg 4 != 0);
//   - sendmsg and sendmmsg (the destination is in process memory, which a filter
//     cannot read; a NULL msg_name is notified too).
// In kernel mode (connect_only) the cgroup programs judge every send with an address in
// the caller's own thread (egress/kernel_layer.hpp): waking the shim would only cost
// latency, and a send it never sees cannot race with its decision.
// Not notified, by design: sendto with a NULL destination. That is send() on a
// connected socket (x86_64 has no send syscall; libc's send() is sendto(..., NULL, 0)),
// and write()/writev() likewise: the data path. The kernel uses no address when
// the pointer is NULL (whatever addrlen says), and the pointer is a register the
// process cannot change after the check, so the destination is the one the notified
// connect already judged. Waking the shim for every packet would only cost latency.
//
// Refused in the filter:
//   - socket()/socketpair() with a family other than AF_UNIX, AF_INET, AF_INET6,
//     AF_NETLINK: EAFNOSUPPORT (AF_PACKET and friends reach the wire with no
//     connect or sendto destination to judge);
//   - socket()/socketpair() with type & 0xf == SOCK_RAW on AF_UNIX, AF_INET and
//     AF_INET6: EPERM (raw IP lets the process write its own headers, so the
//     destination the shim checks would not be the one on the wire). AF_NETLINK
//     SOCK_RAW stays allowed: it is netlink's ordinary type (glibc's getaddrinfo
//     and getifaddrs, iproute2), equivalent to its SOCK_DGRAM, never leaves the host.
//   - socket() on AF_INET/AF_INET6 of a type or protocol the policy cannot judge:
//     EPROTONOSUPPORT. Judgeable (egress/sockets.hpp, the table the kernel programs and
//     the shim read too): SOCK_STREAM with protocol 0, IPPROTO_TCP or IPPROTO_MPTCP,
//     SOCK_DGRAM with 0, IPPROTO_UDP, or the family's ping protocol (SCTP, UDP-Lite,
//     SOCK_SEQPACKET, SOCK_DCCP ... are refused here, not only by the kernel program).
//   - io_uring_setup/io_uring_enter/io_uring_register: EPERM (io_uring's connect
//     and send ops never pass through seccomp).
//   - bpf: EPERM (a privileged container could detach the cgroup programs that
//     check its IP calls in the kernel, egress/kernel_layer.hpp).
//   - setsockopt IP_OPTIONS (SOL_IP) and IPV6_RTHDR, IPV6_2292RTHDR,
//     IPV6_2292PKTOPTIONS, IPV6_FLOWLABEL_MGR, IPV6_FLOWINFO_SEND (SOL_IPV6): EPERM
//     (sticky source routes, or a type-2 routing header attached through a flow label,
//     would send un-notified send()s via another hop).
// Everything else is allowed. Syscalls of another architecture (i386 int 0x80,
// x32) kill the thread: i386 socketcall() would reach connect/sendto with other
// numbers and bypass every rule above.
//
// Install it before the OCI filter: the kernel allows one listener per filter chain
// (a second NEW_LISTENER fails EBUSY). Once every copy of the listener is closed,
// notified calls fail ENOSYS: fail closed.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "runtime/util/fd.hpp"

namespace sandlock::egress {

// The filter's BPF program (native architecture only). It does not depend on the policy:
// libseccomp generates both at build time (build_egress_filter_bpf, run by the build's
// generator, runtime/egress/filter_gen_main.cpp), and the runtime carries them as data
// (runtime/egress/filter_program.cpp), so that no create or exec pays libseccomp's work
// (1 ms and 44 page faults in a fresh process here). A unit test checks they are what
// build_egress_filter_bpf makes.
std::vector<sock_filter> egress_filter_bpf(bool connect_only = false);
// The program as libseccomp generates it now. Throws sandlock::Error.
std::vector<sock_filter> build_egress_filter_bpf(bool connect_only);

// Installs the filter on the calling thread with SECCOMP_FILTER_FLAG_NEW_LISTENER
// (+ WAIT_KILLABLE_RECV when the kernel has it: once the shim has received a
// notification, only a fatal signal interrupts the call, so a signal cannot make
// the process restart a connect/send the shim is performing on its behalf). Needs no_new_privs or
// CAP_SYS_ADMIN. Returns the listener fd.
UniqueFd install_egress_filter(bool connect_only = false);
// The same with another program (tests).
UniqueFd install_egress_filter(const std::vector<sock_filter>& program);

}  // namespace sandlock::egress
