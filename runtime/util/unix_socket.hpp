// Unix-socket helpers: connect/listen by path and file descriptors over SCM_RIGHTS.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "runtime/util/fd.hpp"

namespace sandlock::unix_socket {

UniqueFd connect_stream(const std::string& path);
// At most this many fds travel with one message.
constexpr std::size_t kMaxFds = 16;  // register: a listener, a container's 5 maps, 6 tables
// Sends payload (non-empty) with the fds attached, in one sendmsg.
void send_with_fds(int sock, const std::string& payload, const std::vector<int>& fds);
// Sends payload (non-empty) with one fd attached (none when fd < 0), in one sendmsg.
void send_with_fd(int sock, const std::string& payload, int fd);
// Receives one message of at most max bytes and the fds attached to it, in order. Throws
// when more than kMaxFds came (the kernel closed the rest).
struct ReceivedFds {
    std::string payload;
    std::vector<UniqueFd> fds;
};
ReceivedFds recv_with_fds(int sock, size_t max = 4096);
// Receives one message of at most max bytes and the fd attached to it (if any).
struct Received {
    std::string payload;
    UniqueFd fd;
};
Received recv_with_fd(int sock, size_t max = 4096);

}  // namespace sandlock::unix_socket
