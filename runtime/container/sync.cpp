#include "runtime/container/sync.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include "runtime/util/error.hpp"
#include "runtime/util/unix_socket.hpp"

namespace sandlock::container {

const char* sync_type_name(SyncType t) {
    switch (t) {
        case SyncType::UsernsReady: return "UsernsReady";
        case SyncType::UsernsMapped: return "UsernsMapped";
        case SyncType::JoinCgroup: return "JoinCgroup";
        case SyncType::CgroupJoined: return "CgroupJoined";
        case SyncType::LeaveCgroup: return "LeaveCgroup";
        case SyncType::CgroupLeft: return "CgroupLeft";
        case SyncType::EgressMode: return "EgressMode";
        case SyncType::InitPid: return "InitPid";
        case SyncType::RunHooks: return "RunHooks";
        case SyncType::HooksDone: return "HooksDone";
        case SyncType::Console: return "Console";
        case SyncType::SeccompListener: return "SeccompListener";
        case SyncType::SeccompDone: return "SeccompDone";
        case SyncType::EgressListener: return "EgressListener";
        case SyncType::EgressDone: return "EgressDone";
        case SyncType::Ready: return "Ready";
        case SyncType::Error: return "Error";
    }
    return "?";
}

std::pair<SyncSocket, SyncSocket> SyncSocket::make_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
        throw_errno("socketpair");
    return {SyncSocket(UniqueFd(fds[0])), SyncSocket(UniqueFd(fds[1]))};
}

void SyncSocket::send(SyncType type, const std::string& payload, int fd) {
    std::string packet(1, static_cast<char>(type));
    packet += payload;
    if (fd >= 0) {
        unix_socket::send_with_fd(fd_.get(), packet, fd);
        return;
    }
    // write(), not sendmsg(): once the egress filter is installed, sendmsg
    // waits for the shim, which does not exist yet while init talks to us.
    ssize_t n;
    do {
        n = ::write(fd_.get(), packet.data(), packet.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("sync write");
    if (static_cast<size_t>(n) != packet.size()) throw Error("sync write: short write");
}

std::optional<SyncMessage> SyncSocket::recv_or_eof() {
    auto r = unix_socket::recv_with_fd(fd_.get(), 65536);
    if (r.payload.empty()) return std::nullopt;
    return SyncMessage{static_cast<SyncType>(static_cast<uint8_t>(r.payload[0])),
                       r.payload.substr(1), std::move(r.fd)};
}

SyncMessage SyncSocket::recv() {
    auto m = recv_or_eof();
    if (!m) throw Error("container init exited unexpectedly");
    return std::move(*m);
}

SyncMessage SyncSocket::expect(SyncType expected) {
    SyncMessage m = recv();
    if (m.type == SyncType::Error) throw Error(m.payload);
    if (m.type != expected)
        throw Error(std::string("sync: expected ") + sync_type_name(expected) + ", got " +
                    sync_type_name(m.type));
    return m;
}

void SyncSocket::wait_for_execve() {
    auto m = recv_or_eof();
    if (!m) return;
    if (m->type == SyncType::Error) throw Error(m->payload);
    throw Error(std::string("sync: unexpected ") + sync_type_name(m->type) + " after Ready");
}

}  // namespace sandlock::container
