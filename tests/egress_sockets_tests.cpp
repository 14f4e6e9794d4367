// The one table of judgeable IP sockets (egress/bpf/egress_maps.h, egress/sockets.hpp)
// that the seccomp filter, the BPF programs and the shim all read: what it says.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include "runtime/egress/sockets.hpp"

namespace egress_judgeable_sockets {
using namespace sandlock;
using egress::Protocol;
}  // namespace egress_judgeable_sockets

BOOST_AUTO_TEST_SUITE(egress_judgeable_sockets)

BOOST_AUTO_TEST_CASE(streams_datagrams_and_ping_sockets_and_nothing_else) {
    for (int family : {AF_INET, AF_INET6}) {
        BOOST_TEST((egress::judgeable_protocol(family, SOCK_STREAM, 0) == Protocol::Tcp));
        BOOST_TEST((egress::judgeable_protocol(family, SOCK_STREAM, IPPROTO_TCP) == Protocol::Tcp));
        BOOST_TEST((egress::judgeable_protocol(family, SOCK_STREAM, IPPROTO_MPTCP) == Protocol::Tcp));
        BOOST_TEST((egress::judgeable_protocol(family, SOCK_DGRAM, 0) == Protocol::Udp));
        BOOST_TEST((egress::judgeable_protocol(family, SOCK_DGRAM, IPPROTO_UDP) == Protocol::Udp));
        for (int protocol : {IPPROTO_SCTP, IPPROTO_UDPLITE, IPPROTO_UDP, IPPROTO_RAW})
            BOOST_TEST(!egress::judgeable_protocol(family, SOCK_STREAM, protocol), "stream " << protocol);
        for (int protocol : {IPPROTO_TCP, IPPROTO_UDPLITE, IPPROTO_SCTP, IPPROTO_MPTCP})
            BOOST_TEST(!egress::judgeable_protocol(family, SOCK_DGRAM, protocol), "dgram " << protocol);
        for (int type : {SOCK_SEQPACKET, SOCK_RAW, SOCK_DCCP, SOCK_RDM})
            BOOST_TEST(!egress::judgeable_protocol(family, type, 0), "type " << type);
    }
    // ping sockets only in their own family; raw ICMP is never judged as ICMP
    BOOST_TEST((egress::judgeable_protocol(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) == Protocol::Icmp));
    BOOST_TEST((egress::judgeable_protocol(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6) == Protocol::Icmp));
    BOOST_TEST(!egress::judgeable_protocol(AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6));
    BOOST_TEST(!egress::judgeable_protocol(AF_INET6, SOCK_DGRAM, IPPROTO_ICMP));
    BOOST_TEST(!egress::judgeable_protocol(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    // only IP families
    BOOST_TEST(!egress::judgeable_protocol(AF_UNIX, SOCK_STREAM, 0));
    BOOST_TEST(!egress::judgeable_protocol(AF_NETLINK, SOCK_DGRAM, 0));
}

BOOST_AUTO_TEST_CASE(the_type_follows_from_a_reported_protocol) {
    BOOST_TEST(egress::judgeable_type_of(AF_INET, IPPROTO_TCP).value() == SOCK_STREAM);
    BOOST_TEST(egress::judgeable_type_of(AF_INET6, IPPROTO_MPTCP).value() == SOCK_STREAM);
    BOOST_TEST(egress::judgeable_type_of(AF_INET, IPPROTO_UDP).value() == SOCK_DGRAM);
    BOOST_TEST(egress::judgeable_type_of(AF_INET6, IPPROTO_ICMPV6).value() == SOCK_DGRAM);
    BOOST_TEST(!egress::judgeable_type_of(AF_INET, 0));  // the default of which type?
    BOOST_TEST(!egress::judgeable_type_of(AF_INET, IPPROTO_SCTP));
    BOOST_TEST(!egress::judgeable_type_of(AF_INET, IPPROTO_ICMPV6));
}

BOOST_AUTO_TEST_SUITE_END()
