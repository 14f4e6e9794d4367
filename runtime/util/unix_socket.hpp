// Unix-socket helpers: connect/listen by path and file descriptors over SCM_RIGHTS.
#pragma once

#include <string>

#include "runtime/util/fd.hpp"

namespace sandlock::unix_socket {

UniqueFd connect_stream(const std::string& path);
// Sends payload (non-empty) with one fd attached, in one sendmsg.
void send_with_fd(int sock, const std::string& payload, int fd);
// Receives one message of at most max bytes and the fd attached to it (if any).
struct Received {
    std::string payload;
    UniqueFd fd;
};
Received recv_with_fd(int sock, size_t max = 4096);

}  // namespace sandlock::unix_socket
