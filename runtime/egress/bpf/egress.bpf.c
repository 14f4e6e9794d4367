/* The kernel layer of egress enforcement: cgroup programs on the container's cgroup2
 * directory. They judge by the socket's cgroup (the cgroup of the task that created it),
 * in the caller's own thread, on the kernel's copy of the address: what the caller changes
 * in its memory after a check cannot change what these programs saw.
 *
 *   socket_create  (cgroup/sock_create)  only sockets the policy can judge (egress_maps.h): TCP and MPTCP
 *                  streams, UDP and ping datagrams; anything else fails with EPERM
 *   connect4/6     (cgroup/connect4, 6)  every IP connect, TCP Fast Open's implicit one
 *   sendmsg4/6     (cgroup/sendmsg4, 6)  every UDP datagram sent with an address; a socket's
 *                  last allowed destination is kept in its own storage (last_sent below)
 *   socket_release (cgroup/sock_release) a socket's last counts (last_sent) into the counters
 *   egress_packet  (cgroup_skb/egress)   every packet of the cgroup's sockets: IPv4 options
 *                  and IPv6 routing headers are dropped (a source route or a type-2
 *                  routing header would send the packet elsewhere than the address judged
 *                  above); a ping socket's packet is judged by its destination (the kernel
 *                  runs no sendmsg hook for ping sockets)
 *
 * Verdicts follow ResolvedPolicy::check() (egress/policy.hpp), which the unit tests compare
 * them with. 1 lets the call through, 0 fails it with EPERM (a packet: dropped, EPERM).
 * The policy lives in the maps of egress_maps.h.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "egress_maps.h"

#define IPPROTO_HOPOPTS 0
#define IPPROTO_ICMP 1
#define IPPROTO_ROUTING 43
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

#define ALLOW 1
#define DENY 0

char LICENSE[] SEC("license") = "Apache-2.0"; /* no GPL-only helper is called */

/* The programs are loaded once per machine and shared by every container (pinned under
 * /sys/fs/bpf); each container's policy is its own set of inner maps, found through the
 * container's entry in the outer maps below. Which entry: the id in policy_ref, a cgroup
 * storage of the cgroup the programs are attached to (the container's, also for sockets
 * made in a cgroup below it). The loader writes it after attaching; until then it is 0,
 * which names no entry: every verdict is a denial (fail closed). */
struct {
    __uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
    __type(key, __u64); /* the cgroup's id alone: one storage for all seven programs */
    __type(value, struct sl_policy_ref);
} policy_ref SEC(".maps");

/* A datagram socket's last allowed destination, in the socket's own storage (freed with
 * it, charged to it): a socket sending there again under the same policy version is
 * allowed without a look-up in the policy's tables (four of them a datagram otherwise).
 * Only allowed verdicts are kept, and only when allowed ones are not audited; another
 * destination, port, protocol or policy version (a live change) is judged in full. Its
 * datagrams are counted here and added to the rule's counter every SL_SENT_BATCH, when
 * the socket sends elsewhere and when it is released: the counters are exact once the
 * socket is closed, and at most SL_SENT_BATCH - 1 behind per socket while it sends. */
struct sl_last_sent {
    __u64 policy_id; /* the version that allowed it; 0: nothing kept */
    __u32 addr[4];
    __u16 port;
    __u8 family;
    __u8 protocol;
    __u32 slot;      /* the counter of the rule that allowed it */
    __u32 uncounted; /* datagrams sent there since the counter last got them */
};
#define SL_SENT_BATCH 64

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct sl_last_sent);
} last_sent SEC(".maps");

/* The inner maps' templates (sizes, not types: clang gives these types no BTF here). */
struct prefixes_map {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, SL_MAX_PREFIXES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(key_size, sizeof(struct sl_prefix_key));
    __uint(value_size, sizeof(struct sl_prefix_value));
};

struct addresses_map {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SL_MAX_PREFIXES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(key_size, sizeof(struct sl_address_key));
    __uint(value_size, sizeof(struct sl_prefix_value));
};

struct ports_map {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, SL_MAX_PORTS);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(key_size, sizeof(struct sl_port_key));
    __uint(value_size, sizeof(__u32));
};

/* A hash (an array inner map must have the template's size; a per-CPU one cannot be told
 * otherwise), preallocated with room for every slot (each fixed slot and one per rule);
 * a slot is made by its first verdict. */
struct counters_map {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, SL_SLOT_FIRST_RULE);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(struct sl_counter));
};

struct events_map {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, SL_EVENTS_BYTES);
};

#define OUTER_MAP(name, inner)                       \
    struct {                                         \
        __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);     \
        __uint(max_entries, SL_MAX_POLICIES);        \
        __uint(map_flags, BPF_F_NO_PREALLOC);        \
        __type(key, __u64);                          \
        __array(values, struct inner);               \
    } name SEC(".maps")

OUTER_MAP(policy_addresses, addresses_map);
OUTER_MAP(policy_prefixes, prefixes_map);
OUTER_MAP(policy_ports, ports_map);
OUTER_MAP(policy_counters, counters_map);
OUTER_MAP(policy_events, events_map);

/* A container's policy: its settings, its id, and its counters (the one inner map every
 * verdict uses); the other inner maps are looked up when a verdict needs them. */
struct policy {
    const struct sl_config *config;
    __u64 id;
    void *counters;
};

/* 0 when the container has no entry (not yet, or no longer): deny. Any inner map missing
 * later also denies, so a half-removed entry never allows. */
static __always_inline int find_policy(struct policy *p)
{
    struct sl_policy_ref *ref = bpf_get_local_storage(&policy_ref, 0);
    p->id = ref->id;
    p->config = &ref->config;
    p->counters = bpf_map_lookup_elem(&policy_counters, &p->id);
    return p->id != 0 && p->counters;
}

/* The destination being judged: an IPv4 address in addr[0], or an IPv6 address. */
struct destination {
    __u32 family; /* enum sl_family */
    __u32 addr[4];
    __u16 port;
};

static __always_inline void count_n(void *counters, __u32 slot, int allowed, __u64 n)
{
    struct sl_counter *c = bpf_map_lookup_elem(counters, &slot);
    if (!c) {
        const struct sl_counter zero = {};
        bpf_map_update_elem(counters, &slot, &zero, BPF_NOEXIST);
        c = bpf_map_lookup_elem(counters, &slot);
        if (!c) return;
    }
    if (allowed)
        __sync_fetch_and_add(&c->allowed, n);
    else
        __sync_fetch_and_add(&c->denied, n);
}

static __always_inline void count(const struct policy *p, __u32 slot, int allowed)
{
    count_n(p->counters, slot, allowed, 1);
}

/* A verdict reached before the policy was needed (no policy: nothing to count). */
static __always_inline void count_fixed(__u32 slot, int allowed)
{
    struct policy p;
    if (find_policy(&p)) count(&p, slot, allowed);
}

static __always_inline void record(const struct policy *p, __u8 hook, __u8 protocol,
                                   const struct destination *d, __u32 slot, int allowed)
{
    const struct sl_config *cfg = p->config;
    if (cfg->audit == SL_AUDIT_OFF || (allowed && cfg->audit != SL_AUDIT_ALL)) return;
    /* The shim records the connects it decides; one it allowed and the hook denies (its
     * address changed after the decision) or one it never saw (TCP Fast Open) is ours. */
    if (hook == SL_HOOK_CONNECT && allowed) return;
    void *events = bpf_map_lookup_elem(&policy_events, (void *)&p->id);
    if (!events) return;
    struct sl_event *e = bpf_ringbuf_reserve(events, sizeof(*e), 0);
    if (!e) {
        count(p, SL_SLOT_LOST, 0);
        return;
    }
    e->time_ns = bpf_ktime_get_boot_ns();
    e->pid = hook == SL_HOOK_PACKET ? 0 : (__u32)(bpf_get_current_pid_tgid() >> 32);
    e->slot = slot;
    e->hook = hook;
    e->protocol = protocol;
    e->family = (__u8)d->family;
    e->allowed = (__u8)allowed;
    e->port = d->port;
    e->version = (__u16)(p->id >> 40); /* kernel_layer.cpp's kVersionShift */
    e->addr[0] = d->addr[0];
    e->addr[1] = d->addr[1];
    e->addr[2] = d->addr[2];
    e->addr[3] = d->addr[3];
    bpf_ringbuf_submit(e, 0);
}

/* 127/8 and 0.0.0.0; ::1 and ::. Linux connects the unspecified address to the host. */
static __always_inline int reaches_loopback(const struct destination *d)
{
    if (d->family == SL_V4) return (bpf_ntohl(d->addr[0]) >> 24) == 127 || d->addr[0] == 0;
    if (d->addr[0] || d->addr[1] || d->addr[2]) return 0;
    return d->addr[3] == 0 || d->addr[3] == bpf_htonl(1);
}

/* ::ffff:a.b.c.d is judged as a.b.c.d, as check() does after normalize(). */
static __always_inline void unmap_ipv4(struct destination *d)
{
    if (d->family == SL_V6 && d->addr[0] == 0 && d->addr[1] == 0 && d->addr[2] == bpf_htonl(0xffff)) {
        d->family = SL_V4;
        d->addr[0] = d->addr[3];
        d->addr[1] = d->addr[2] = d->addr[3] = 0;
    }
}

/* A map of the container's that is not there: the verdict is a denial. */
#define SL_MAP_MISSING 0xfffffffeu

/* The slot of the rule of `protocol` that matches d, SL_NO_SLOT, or SL_MAP_MISSING. */
static __always_inline __u32 matching_rule(const struct policy *p, __u8 protocol, const struct destination *d)
{
    const __u32 scope = ((__u32)protocol << 8) | d->family;
    void *addresses = bpf_map_lookup_elem(&policy_addresses, (void *)&p->id);
    if (!addresses) return SL_MAP_MISSING;
    struct sl_address_key address = {.scope = scope, .addr = {d->addr[0], d->addr[1], d->addr[2], d->addr[3]}};
    struct sl_prefix_value *entry = bpf_map_lookup_elem(addresses, &address);
    if (!entry) {
        void *prefixes = bpf_map_lookup_elem(&policy_prefixes, (void *)&p->id);
        if (!prefixes) return SL_MAP_MISSING;
        struct sl_prefix_key key = {
            .prefixlen = SL_SCOPE_BITS + (d->family == SL_V4 ? 32 : 128),
            .scope = scope,
            .addr = {d->addr[0], d->addr[1], d->addr[2], d->addr[3]},
        };
        entry = bpf_map_lookup_elem(prefixes, &key);
    }
    if (!entry) return SL_NO_SLOT;
    if (entry->all_ports_slot != SL_NO_SLOT) return entry->all_ports_slot;
#pragma unroll
    for (int i = 0; i < SL_INLINE_PORTS; i++)
        if (entry->ports[i] != 0 && entry->ports[i] == d->port) return entry->port_slots[i];
    if (entry->entry == SL_NO_SLOT) return SL_NO_SLOT;
    void *ports = bpf_map_lookup_elem(&policy_ports, (void *)&p->id);
    if (!ports) return SL_MAP_MISSING;
    struct sl_port_key port = {.entry = entry->entry, .port = d->port};
    __u32 *slot = bpf_map_lookup_elem(ports, &port);
    return slot ? *slot : SL_NO_SLOT;
}

/* check(protocol, d, port) under policy p, d unmapped already: 1 allow, 0 deny; *slot
 * the counter that counted it (SL_MAP_MISSING: none). */
static __always_inline int judge_under(const struct policy *p, __u8 hook, __u8 protocol,
                                       const struct destination *d, __u32 *slot_out)
{
    const struct sl_config *cfg = p->config;
    *slot_out = SL_MAP_MISSING;

    __u32 slot;
    int allowed;
    if (reaches_loopback(d) && (cfg->loopback_allowed || cfg->mode != SL_MODE_ALLOW)) {
        /* loopback=allow bypasses the rules; loopback=deny in a default-allow mode denies */
        slot = SL_SLOT_LOOPBACK;
        allowed = cfg->loopback_allowed != 0;
    } else if (cfg->mode == SL_MODE_OPEN) {
        slot = SL_SLOT_OPEN;
        allowed = 1;
    } else {
        const __u32 rule = matching_rule(p, protocol, d);
        if (rule == SL_MAP_MISSING) return DENY;
        slot = rule == SL_NO_SLOT ? SL_SLOT_NO_RULE : rule;
        /* allow mode: a matching rule allows; deny mode: a matching entry denies */
        allowed = (rule != SL_NO_SLOT) == (cfg->mode == SL_MODE_ALLOW);
    }
    count(p, slot, allowed);
    record(p, hook, protocol, d, slot, allowed);
    *slot_out = slot;
    return allowed ? ALLOW : DENY;
}

/* The judgeable form of a destination: IPv4-mapped IPv6 as IPv4, no port for ICMP. */
static __always_inline void normalize(__u8 protocol, struct destination *d)
{
    unmap_ipv4(d);
    if (protocol == SL_ICMP) d->port = 0;
}

/* check(protocol, d, port): 1 allow, 0 deny. */
static __always_inline int judge(__u8 hook, __u8 protocol, struct destination *d)
{
    struct policy policy;
    if (!find_policy(&policy)) return DENY;
    normalize(protocol, d);
    __u32 slot;
    return judge_under(&policy, hook, protocol, d, &slot);
}

/* The policy's protocol of a socket, or -1 for one it cannot judge (egress_maps.h's
 * table, which the seccomp filter and the shim read too). */
static __always_inline int protocol_of(__u32 family, __u32 type, __u32 protocol)
{
    return sl_protocol_of((int)family, (int)type, (int)protocol);
}

/* The kernel's copy of the caller's address. */
static __always_inline void destination_of(struct bpf_sock_addr *ctx, int ipv6, struct destination *d)
{
    d->port = bpf_ntohs((__u16)ctx->user_port);
    if (ipv6) {
        d->family = SL_V6;
        d->addr[0] = ctx->user_ip6[0];
        d->addr[1] = ctx->user_ip6[1];
        d->addr[2] = ctx->user_ip6[2];
        d->addr[3] = ctx->user_ip6[3];
    } else {
        d->family = SL_V4;
        d->addr[0] = ctx->user_ip4;
    }
}

/* The socket's policy protocol; -1 (counted, to be denied) for one socket_create would
 * have refused. */
static __always_inline int judgeable_protocol(struct bpf_sock_addr *ctx)
{
    const int protocol = protocol_of(ctx->family, ctx->type, ctx->protocol);
    if (protocol < 0) count_fixed(SL_SLOT_SOCKET, 0); /* socket_create lets none through */
    return protocol;
}

static __always_inline int judge_sockaddr(struct bpf_sock_addr *ctx, __u8 hook, int ipv6)
{
    const int protocol = judgeable_protocol(ctx);
    if (protocol < 0) return DENY;
    struct destination d = {};
    destination_of(ctx, ipv6, &d);
    return judge(hook, (__u8)protocol, &d);
}

/* A UDP send without an address on a connected socket still runs the sendmsg hook when it
 * carries IP control messages (IP_TOS, IP_PKTINFO, UDP_SEGMENT's neighbours): the kernel
 * then passes the unspecified address and port 0. Port 0 is never a destination (the kernel
 * refuses it after the hook), so this is the connected peer, which connect judged. */
static __always_inline int no_address(struct bpf_sock_addr *ctx, int ipv6)
{
    if (ctx->user_port != 0) return 0;
    if (!ipv6) return ctx->user_ip4 == 0;
    return (ctx->user_ip6[0] | ctx->user_ip6[1] | ctx->user_ip6[2] | ctx->user_ip6[3]) == 0;
}

SEC("cgroup/sock_create")
int socket_create(struct bpf_sock *sk)
{
    if (protocol_of(sk->family, sk->type, sk->protocol) >= 0) return ALLOW;
    count_fixed(SL_SLOT_SOCKET, 0);
    return DENY;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
    return judge_sockaddr(ctx, SL_HOOK_CONNECT, 0);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
    return judge_sockaddr(ctx, SL_HOOK_CONNECT, 1);
}

static __always_inline int sent_there(const struct sl_last_sent *s, __u64 policy_id, __u8 protocol,
                                      const struct destination *d)
{
    return s->policy_id == policy_id && s->protocol == protocol && s->family == d->family &&
           s->port == d->port && s->addr[0] == d->addr[0] && s->addr[1] == d->addr[1] &&
           s->addr[2] == d->addr[2] && s->addr[3] == d->addr[3];
}

/* The datagrams counted in s into the counters of the policy version that allowed them
 * (none once that version is gone: a live change retires it after the next one). */
static __always_inline void count_sent(struct sl_last_sent *s)
{
    if (s->policy_id == 0 || s->uncounted == 0) return;
    void *counters = bpf_map_lookup_elem(&policy_counters, &s->policy_id);
    if (counters) count_n(counters, s->slot, 1, s->uncounted);
    s->uncounted = 0;
}

static __always_inline void keep_sent(struct sl_last_sent *s, __u64 policy_id, __u8 protocol,
                                      const struct destination *d, __u32 slot)
{
    count_sent(s);
    s->policy_id = policy_id;
    s->protocol = protocol;
    s->family = (__u8)d->family;
    s->port = d->port;
    s->addr[0] = d->addr[0];
    s->addr[1] = d->addr[1];
    s->addr[2] = d->addr[2];
    s->addr[3] = d->addr[3];
    s->slot = slot;
}

/* A UDP datagram with an address. The socket's storage is only used under lock_sock (the
 * kernel runs this hook with the socket locked) and at its release. */
static __always_inline int judge_datagram(struct bpf_sock_addr *ctx, int ipv6)
{
    if (no_address(ctx, ipv6)) {
        count_fixed(SL_SLOT_NO_ADDRESS, 1);
        return ALLOW;
    }
    const int protocol = judgeable_protocol(ctx);
    if (protocol < 0) return DENY;
    struct policy p;
    if (!find_policy(&p)) return DENY;
    struct destination d = {};
    destination_of(ctx, ipv6, &d);
    normalize((__u8)protocol, &d);
    struct sl_last_sent *last = 0;
    if (p.config->audit != SL_AUDIT_ALL) { /* else every allowed datagram is recorded */
        last = bpf_sk_storage_get(&last_sent, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
        if (last && sent_there(last, p.id, (__u8)protocol, &d)) {
            if (++last->uncounted >= SL_SENT_BATCH) count_sent(last);
            return ALLOW;
        }
    }
    __u32 slot;
    const int verdict = judge_under(&p, SL_HOOK_SENDMSG, (__u8)protocol, &d, &slot);
    if (last) {
        if (verdict == ALLOW)
            keep_sent(last, p.id, (__u8)protocol, &d, slot);
        else
            keep_sent(last, 0, 0, &d, 0); /* its counts in, nothing kept */
    }
    return verdict;
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
    return judge_datagram(ctx, 0);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
    return judge_datagram(ctx, 1);
}

SEC("cgroup/sock_release")
int socket_release(struct bpf_sock *sk)
{
    struct sl_last_sent *last = bpf_sk_storage_get(&last_sent, sk, 0, 0);
    if (last) count_sent(last);
    return ALLOW;
}

static __always_inline int is_ping_socket(struct __sk_buff *skb)
{
    struct bpf_sock *sk = skb->sk;
    if (!sk) return 0;
    sk = bpf_sk_fullsock(sk);
    if (!sk) return 0;
    return protocol_of(sk->family, sk->type, sk->protocol) == SL_ICMP;
}

static __always_inline int drop_routed(void)
{
    count_fixed(SL_SLOT_ROUTING, 0);
    return DENY;
}

/* IPv4: options (a source route among them) are dropped; a ping is judged by daddr. */
static __always_inline int ipv4_packet(struct __sk_buff *skb)
{
    __u8 header[20];
    if (bpf_skb_load_bytes(skb, 0, header, sizeof(header))) return DENY;
    if ((header[0] & 0x0f) != 5) return drop_routed();
    if (!is_ping_socket(skb)) return ALLOW;
    if (header[9] != IPPROTO_ICMP) return DENY;
    struct destination d = {.family = SL_V4};
    __builtin_memcpy(&d.addr[0], &header[16], 4);
    return judge(SL_HOOK_PACKET, SL_ICMP, &d);
}

/* IPv6: the extension-header chain is walked (at most 8 headers; a longer chain is
 * dropped) and a routing header anywhere drops the packet. A ping socket never sends
 * extension headers: its packet must carry ICMPv6 right after the fixed header. */
#define MAX_EXTENSION_HEADERS 8
static __always_inline int ipv6_packet(struct __sk_buff *skb)
{
    __u8 header[40];
    if (bpf_skb_load_bytes(skb, 0, header, sizeof(header))) return DENY;
    const __u8 first = header[6];
    __u8 next = first;
    __u32 offset = sizeof(header);
    int i;
    for (i = 0; i < MAX_EXTENSION_HEADERS; i++) {
        if (next == IPPROTO_ROUTING) return drop_routed();
        /* a routing header belongs to the unfragmentable part, before any fragment header */
        if (next != IPPROTO_HOPOPTS && next != IPPROTO_DSTOPTS) break;
        __u8 ext[2];
        if (bpf_skb_load_bytes(skb, offset, ext, sizeof(ext))) return DENY;
        next = ext[0];
        offset += ((__u32)ext[1] + 1) * 8; /* the length in 8-byte units past the first 8 */
    }
    if (i == MAX_EXTENSION_HEADERS) return drop_routed();
    if (!is_ping_socket(skb)) return ALLOW;
    if (first != IPPROTO_ICMPV6) return DENY;
    struct destination d = {.family = SL_V6};
    __builtin_memcpy(d.addr, &header[24], 16);
    return judge(SL_HOOK_PACKET, SL_ICMP, &d);
}

SEC("cgroup_skb/egress")
int egress_packet(struct __sk_buff *skb)
{
    if (skb->protocol == bpf_htons(ETH_P_IP)) return ipv4_packet(skb);
    if (skb->protocol == bpf_htons(ETH_P_IPV6)) return ipv6_packet(skb);
    return is_ping_socket(skb) ? DENY : ALLOW;
}
