#include "runtime/util/unix_socket.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/util/error.hpp"

namespace sandlock::unix_socket {

UniqueFd connect_stream(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) throw Error("socket path too long: " + path);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) throw_errno("socket");
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw_errno("connect " + path);
    return sock;
}

void send_with_fds(int sock, const std::string& payload, const std::vector<int>& fds) {
    if (fds.size() > kMaxFds) throw Error("sendmsg: too many fds");
    std::string data = payload.empty() ? std::string(1, '\0') : payload;
    iovec iov{const_cast<char*>(data.data()), data.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n;
    do {
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("sendmsg");
    if (static_cast<size_t>(n) != data.size()) throw Error("sendmsg: short write");
}

void send_with_fd(int sock, const std::string& payload, int fd) {
    send_with_fds(sock, payload, fd >= 0 ? std::vector<int>{fd} : std::vector<int>{});
}

ReceivedFds recv_with_fds(int sock, size_t max) {
    // Left uninitialised: only the bytes received are written. Zero-filling `max` bytes
    // touched 16 fresh pages per message, and a process that the parent moves into the
    // container's cgroup meanwhile (create's stage 1, around the cgroup namespace) had
    // them charged to the container.
    auto buf = std::make_unique_for_overwrite<char[]>(max);
    iovec iov{buf.get(), max};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("recvmsg");
    ReceivedFds r;
    r.payload.assign(buf.get(), static_cast<size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            r.fds.emplace_back(fd);
        }
    }
    // More than the control buffer holds: the kernel closed the rest and says so.
    if (msg.msg_flags & MSG_CTRUNC) throw Error("recvmsg: more fds than expected");
    if (msg.msg_flags & MSG_TRUNC) throw Error("recvmsg: a message longer than " + std::to_string(max) + " bytes");
    return r;
}

Received recv_with_fd(int sock, size_t max) {
    ReceivedFds all = recv_with_fds(sock, max);
    Received r;
    r.payload = std::move(all.payload);
    if (!all.fds.empty()) r.fd = std::move(all.fds.front());  // one fd per message; the rest are closed
    return r;
}

}  // namespace sandlock::unix_socket
