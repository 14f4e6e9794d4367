/* The layout of the egress programs' maps, shared by the programs (egress.bpf.c, compiled
 * with clang -target bpf) and the loader that fills them (egress/kernel_layer.cpp).
 *
 * The policy is data, the programs are fixed code: a program's size and load time do not
 * depend on the number of rules, and a policy change is a map update. The programs and the
 * outer maps are loaded once per machine and shared; a container has
 *
 *   policy_ref  CGROUP_STORAGE  (of the cgroup the programs are attached to) the id of
 *                               the container's entry in the outer maps, and its config:
 *                               mode, loopback, audit
 * and, under that id in the outer maps policy_prefixes, policy_ports, policy_counters and
 * policy_events (HASH_OF_MAPS), its own inner maps:
 *   addresses HASH           (protocol, family, address) -> the policy entry of a single
 *                            address, looked up first
 *   prefixes  LPM_TRIE       (protocol, family, address prefix) -> the most specific
 *                            policy entry covering a destination
 *   ports     HASH           (entry, port) -> the rule that allows (denies) that port, for
 *                            entries with more than SL_INLINE_PORTS ports
 *   counters  PERCPU_HASH    one slot per rule plus the fixed slots below: how often each
 *                            verdict was reached (a slot is made by its first verdict)
 *   events    RINGBUF        one sl_event per audited decision, drained by the shim
 *
 * How a destination matches (what ProtocolRules::matches() says, in two lookups): every
 * rule is an address prefix (a single address, a CIDR, or "any IP": the empty prefix) with
 * a port set (or every port). The loader inserts one LPM entry per distinct prefix and gives
 * it the union of the port sets of every rule whose prefix contains it. Prefixes nest or
 * are disjoint, so the longest prefix that holds the destination also holds every rule
 * that could match it: one LPM lookup, then one hash lookup for the port.
 */
#ifndef SANDLOCK_EGRESS_MAPS_H
#define SANDLOCK_EGRESS_MAPS_H

#include <linux/types.h>

/* ResolvedPolicy's protocols and families, as the maps encode them. */
enum sl_protocol { SL_TCP = 0, SL_UDP = 1, SL_ICMP = 2 };
enum sl_family { SL_V4 = 4, SL_V6 = 6 };
enum sl_mode { SL_MODE_OPEN = 0, SL_MODE_ALLOW = 1, SL_MODE_DENY = 2 };
enum sl_audit { SL_AUDIT_OFF = 0, SL_AUDIT_DENY = 1, SL_AUDIT_ALL = 2 };

/* The one table of IP sockets whose destinations a policy can judge. The seccomp filter
 * (socket(2) of any other IP type or protocol: EPROTONOSUPPORT), the sock_create program
 * (EPERM), the other programs and the shim all classify sockets with it, so that none of
 * them can judge a socket another would have refused. Protocol 0 is socket(2)'s "the
 * type's default" (what the seccomp filter sees); a socket reports the real one. family 0:
 * either; ping sockets only in their own family (the kernel refuses the others). The
 * values are the kernel ABI's (SOCK_*, IPPROTO_*, AF_*): this header is included by
 * restricted C without libc headers as well as by C++. */
struct sl_judgeable_socket {
    int family;       /* 2 AF_INET, 10 AF_INET6, 0 either */
    int type;         /* 1 SOCK_STREAM, 2 SOCK_DGRAM */
    int protocol;     /* 0 default, 6 TCP, 262 MPTCP, 17 UDP, 1 ICMP, 58 ICMPV6 */
    int sl_protocol;  /* enum sl_protocol */
};
#define SL_JUDGEABLE_SOCKETS_COUNT 7
static const struct sl_judgeable_socket sl_judgeable_sockets[SL_JUDGEABLE_SOCKETS_COUNT] = {
    {0, 1, 0, SL_TCP},    {0, 1, 6, SL_TCP},  {0, 1, 262, SL_TCP}, /* TCP, MPTCP (judged as TCP) */
    {0, 2, 0, SL_UDP},    {0, 2, 17, SL_UDP},                      /* UDP */
    {2, 2, 1, SL_ICMP},   {10, 2, 58, SL_ICMP},                    /* ping sockets */
};

/* The policy's protocol (enum sl_protocol) of a socket, or -1 when it cannot be judged. */
static inline __attribute__((always_inline)) int sl_protocol_of(int family, int type, int protocol)
{
    if (family != 2 && family != 10) return -1;
#ifdef __clang__
#pragma unroll
#endif
    for (int i = 0; i < SL_JUDGEABLE_SOCKETS_COUNT; i++) {
        const struct sl_judgeable_socket *j = &sl_judgeable_sockets[i];
        if (j->type == type && j->protocol == protocol && (j->family == 0 || j->family == family))
            return j->sl_protocol;
    }
    return -1;
}

struct sl_config {
    __u32 mode;             /* enum sl_mode */
    __u32 loopback_allowed; /* 1: loopback destinations bypass the rules */
    __u32 audit;            /* enum sl_audit: which decisions become events */
    __u32 pad;
};

/* policy_ref's value. id: the container cgroup's id (unique until reboot), the key of the
 * container's inner maps; 0 until the loader has written it (names nothing: deny). */
struct sl_policy_ref {
    __u64 id;
    struct sl_config config;
};

/* An LPM key: prefixlen counts bits from `scope` on. The scope word (protocol and family)
 * is always matched whole, so prefixlen = 32 + the address prefix; an IPv4 address uses
 * addr[0] (network order), the other words stay zero. */
#define SL_SCOPE_BITS 32
struct sl_prefix_key {
    __u32 prefixlen;
    __u32 scope; /* (protocol << 8) | family */
    __u32 addr[4];
};

#define SL_NO_SLOT 0xffffffffu
/* A port set this small is held in the entry itself: the common rule (an address and a
 * port or two) needs no ports-map entry, and a policy of a thousand of them fills one map
 * in one batch. */
#define SL_INLINE_PORTS 4
struct sl_prefix_value {
    __u32 entry;          /* the ports map's key for a larger port set, or SL_NO_SLOT */
    __u32 all_ports_slot; /* the rule giving this prefix every port, or SL_NO_SLOT */
    __u16 ports[SL_INLINE_PORTS];      /* host order; 0: unused (0 is never a destination port) */
    __u32 port_slots[SL_INLINE_PORTS]; /* the rule that holds ports[i] */
};

/* The addresses map's key: a single address (a /32 or /128 prefix), the most specific a
 * destination can match, found with one hash lookup (filled in one batch, unlike the
 * trie). Its value is the same as the trie's. */
struct sl_address_key {
    __u32 scope;
    __u32 addr[4];
};

struct sl_port_key {
    __u32 entry;
    __u32 port; /* host order */
};
/* ports' value: __u32, the counter slot of the rule that holds the port */

/* Counter slots. Rules follow, in the order `sandlock-runc egress ID` lists them. */
enum sl_slot {
    SL_SLOT_NO_RULE = 0,  /* no rule matched: allow mode's deny, deny mode's allow */
    SL_SLOT_LOOPBACK = 1, /* a loopback destination (bypass, or loopback=deny) */
    SL_SLOT_OPEN = 2,     /* open mode: nothing to check */
    SL_SLOT_SOCKET = 3,   /* socket() of a protocol the policy cannot judge */
    SL_SLOT_ROUTING = 4,  /* a packet with IPv4 options or an IPv6 routing header */
    SL_SLOT_NO_ADDRESS = 5, /* a datagram without an address: the connected peer, judged at connect */
    SL_SLOT_LOST = 6,     /* events the ring buffer had no room for (denied = lost) */
    SL_SLOT_FIRST_RULE = 8,
};

struct sl_counter {
    __u64 allowed;
    __u64 denied;
};

enum sl_hook { SL_HOOK_CONNECT = 0, SL_HOOK_SENDMSG = 1, SL_HOOK_PACKET = 2 };

struct sl_event {
    __u64 time_ns; /* CLOCK_BOOTTIME */
    __u32 pid;     /* thread group of the caller; 0 for packets */
    __u32 slot;    /* the counter slot that decided */
    __u8 hook;     /* enum sl_hook */
    __u8 protocol; /* enum sl_protocol */
    __u8 family;   /* enum sl_family */
    __u8 allowed;
    __u16 port;    /* host order */
    __u16 version; /* low bits of the policy version that decided (live changes) */
    __u32 addr[4];
};

#define SL_MAX_PREFIXES 65536
#define SL_MAX_PORTS 262144
#define SL_EVENTS_BYTES (256 * 1024)
#define SL_MAX_POLICIES 65536 /* containers with a kernel layer on one machine */

#endif
