// runtime/util/unix_socket: packets with descriptors, as the sync and control channels
// use them (SOCK_SEQPACKET pairs; no root needed).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/unix_socket.hpp"

namespace unix_socket_packets {
using namespace sandlock;

struct SeqpacketPair {
    UniqueFd a, b;
    SeqpacketPair() {
        int fds[2];
        BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
    }
};

ino_t inode_of(int fd) {
    struct stat st {};
    BOOST_REQUIRE_EQUAL(::fstat(fd, &st), 0);
    return st.st_ino;
}

}  // namespace unix_socket_packets

BOOST_AUTO_TEST_SUITE(unix_socket_packets)

BOOST_AUTO_TEST_CASE(a_packet_and_its_descriptors_arrive_whole) {
    SeqpacketPair pair;
    UniqueFd first(::open("/dev/null", O_RDONLY | O_CLOEXEC)), second(::open("/", O_RDONLY | O_CLOEXEC));
    unix_socket::send_with_fds(pair.a.get(), "hello", {first.get(), second.get()});
    auto got = unix_socket::recv_with_fds(pair.b.get(), 64);
    BOOST_TEST(got.payload == "hello");
    BOOST_REQUIRE_EQUAL(got.fds.size(), 2u);
    BOOST_TEST(inode_of(got.fds[0].get()) == inode_of(first.get()));
    BOOST_TEST(inode_of(got.fds[1].get()) == inode_of(second.get()));
}

// A packet longer than the receiver allows is an error, never a silently cut message,
// and the descriptors it carried are closed rather than leaked.
BOOST_AUTO_TEST_CASE(a_packet_longer_than_the_limit_is_refused_and_its_descriptor_closed) {
    SeqpacketPair pair;
    UniqueFd file(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    unix_socket::send_with_fd(pair.a.get(), std::string(100, 'x'), file.get());
    file.reset();
    // The only other reference to /dev/null's open file is the one in flight: after the
    // failed receive, the next descriptor number handed out is the lowest free one.
    const int next_before = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    ::close(next_before);
    BOOST_CHECK_THROW(unix_socket::recv_with_fds(pair.b.get(), 64), Error);
    const int next_after = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    ::close(next_after);
    BOOST_TEST(next_after == next_before);
}

BOOST_AUTO_TEST_SUITE_END()
