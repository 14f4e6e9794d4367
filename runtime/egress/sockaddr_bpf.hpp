// The kernel layer of egress enforcement: cgroup BPF programs on the container's cgroup2
// directory that judge every IP connect, every UDP sendmsg with an address and every
// packet of a ping socket exactly as ResolvedPolicy::check() does.
//
// Why: the shim answers a connect/sendto/sendmsg on a non-IP (AF_UNIX) socket with
// CONTINUE, and the kernel then looks the fd number up again. A second thread may have
// dup2()'d an IP socket onto that number (and rewritten the sockaddr) in between, so an
// IP connect would happen that nobody judged. These hooks run inside that very connect
// (before routing), on whatever socket it ended up on, so the swap gains nothing.
//
// The hooks judge the socket's cgroup (the cgroup of the task that created it), so the
// shim's own on-behalf calls on the container's sockets pass them too: they agree with
// check(), so what the shim allows still goes through. A denied call fails with EPERM.
//
// Hooks: BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT (TCP, UDP and ping sockets;
// TCP Fast Open goes through the connect hook too), BPF_CGROUP_UDP4_SENDMSG,
// BPF_CGROUP_UDP6_SENDMSG (UDP datagrams with an address). Each program is straight-line
// code generated from the policy (see sockaddr_bpf.cpp for its shape); no libbpf.
// Plus BPF_CGROUP_INET_SOCK_CREATE: socket() of an IP protocol the policy cannot judge
// fails with EPERM (the shim refuses their connects and sends anyway). It matters because
// the kernel runs no connect hook for some of them (UDP-Lite's connect, seen on 6.18), so
// a swapped-in UDP-Lite socket would otherwise connect unjudged. MPTCP stays allowed: its
// subflows are TCP sockets that pass the connect hooks, judged as TCP.
//
// Plus BPF_CGROUP_INET_EGRESS (BPF_PROG_TYPE_CGROUP_SKB): the kernel runs no sendmsg hook
// for ping sockets (6.18), so a ping sendto() with an address on an fd swapped in after the
// shim's CONTINUE would pass the hooks above unjudged. This program sees every packet the
// cgroup's sockets send (after routing, before the device) and judges those of ping
// sockets (SOCK_DGRAM + IPPROTO_ICMP/ICMPV6; the sending socket from skb->sk) by their
// IP destination, as check(Icmp, destination, 0). A dropped packet fails the send with
// EPERM. Other sockets' packets pass (judged above, or not egress); so do the kernel's
// echo replies and ICMP errors, which leave through its own sockets, not the cgroup's.
// A ping socket's packet that does not look as one always does (IPv4 options, which
// could carry a source route; IPv6 extension headers; a header cut short) is dropped.
// The destination on the wire is the one judged: the kernel sends a ping to 0.0.0.0 to
// 127.0.0.1 (or to the socket's bound source address), so that is what is checked.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/egress/policy.hpp"

namespace sandlock::egress {

// The program for the IPv4 hooks (connect4, sendmsg4: reads user_ip4) or the IPv6 hooks
// (connect6, sendmsg6: reads user_ip6, and judges ::ffff:a.b.c.d as a.b.c.d).
// Returns 1 (allow) or 0 (deny). Throws sandlock::Error when the policy is too large
// for one program (a jump beyond 32767 instructions).
std::vector<bpf_insn> build_sockaddr_program(const ResolvedPolicy& policy, bool ipv6);

// The BPF_CGROUP_INET_EGRESS program (BPF_PROG_TYPE_CGROUP_SKB): 0 (drop, EPERM) for a
// ping socket's packet whose destination check(Icmp, destination, 0) denies; 1 for every
// other packet. Throws sandlock::Error as build_sockaddr_program.
std::vector<bpf_insn> build_icmp_egress_program(const ResolvedPolicy& policy);

// The BPF_CGROUP_INET_SOCK_CREATE program (BPF_PROG_TYPE_CGROUP_SOCK): allows TCP and
// MPTCP stream sockets, UDP and ping datagram sockets; 0 (EPERM) for every other one.
std::vector<bpf_insn> build_socket_create_program();

// The six attach types (sock_create, connect4, connect6, sendmsg4, sendmsg6,
// inet_egress), in the order attach_sockaddr_programs attaches them.
const std::vector<bpf_attach_type>& sockaddr_attach_types();

// Loads the programs and attaches them to the cgroup2 directory dir with flags 0 (no
// program may be attached below it). All or nothing: on a failure the programs this call
// attached are detached again, and sandlock::Error is thrown, with the verifier's last
// log line when the kernel rejects a program.
void attach_sockaddr_programs(const std::string& dir, const ResolvedPolicy& policy);

// Ids of the programs attached directly to dir for one of those hooks (empty when
// none). Throws sandlock::Error.
std::vector<std::uint32_t> attached_sockaddr_programs(const std::string& dir, bpf_attach_type type);

// Detaches every program of those hooks from dir (tests; `delete` removes the cgroup,
// which drops them). Throws sandlock::Error.
void detach_sockaddr_programs(const std::string& dir);

// Which layers enforce a container's policy.
enum class Enforcement {
    Kernel,      // the cgroup programs, under the seccomp supervisor
    Supervisor,  // the seccomp supervisor alone (the kernel programs could not be attached)
};
const char* to_string(Enforcement e);  // "kernel", "supervisor"

// Set in the runtime's environment (never from a bundle), it makes create behave as if
// the kernel refused the programs: how the tests reach supervisor mode on a host where
// the programs attach.
constexpr const char* kTestNoKernelLayerEnv = "SANDLOCK_RUNC_TEST_NO_KERNEL_LAYER";

// create's call: attaches the programs to the cgroup2 directory of cgroup_dirs (key "",
// as cgroups::Manager::dirs() gives it) and returns Kernel. Without a cgroup2 directory,
// or when the kernel refuses (no BPF, rootless, a parent cgroup that forbids it): fails
// closed with one line (why, and how to allow supervisor mode) unless supervisor_allowed,
// then logs a warning and returns Supervisor.
Enforcement attach_kernel_layer(const std::map<std::string, std::string>& cgroup_dirs,
                                const ResolvedPolicy& policy, bool supervisor_allowed);

}  // namespace sandlock::egress
