#include "runtime/container/sync.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstring>

#include <nlohmann/json.hpp>

#include "runtime/egress/kernel_layer.hpp"
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

SyncType type_of(const SyncMessage& m) {
    return std::visit([](const auto& typed) { return typed.type; }, m);
}

namespace {

// The flag payloads of JoinCgroup and CgroupJoined: present or empty.
constexpr std::string_view kMakesCgroupNs = "cgroupns";
constexpr std::string_view kJoined = "joined";

std::string flag_payload(bool set, std::string_view word) { return set ? std::string(word) : ""; }

// The payload of each message, as text.
struct PayloadOf {
    std::string operator()(const msg::JoinCgroup& m) const { return flag_payload(m.makes_cgroup_ns, kMakesCgroupNs); }
    std::string operator()(const msg::CgroupJoined& m) const { return flag_payload(m.joined, kJoined); }
    std::string operator()(const msg::EgressMode& m) const { return egress::to_string(m.mode); }
    std::string operator()(const msg::InitPid& m) const { return std::to_string(m.pid); }
    std::string operator()(const msg::HooksDone& m) const { return m.state_json; }
    std::string operator()(const msg::Console& m) const { return m.slave_name; }
    std::string operator()(const msg::SeccompListener& m) const { return std::to_string(m.fd); }
    std::string operator()(const msg::EgressListener& m) const { return std::to_string(m.fd); }
    std::string operator()(const msg::Error& m) const { return m.message; }
    template <class Bare>
    std::string operator()(const Bare&) const { return ""; }
};

// Decodes one packet's payload (and fd) into the typed message it names.
class Decoder {
public:
    Decoder(SyncType type, std::string_view payload, UniqueFd fd)
        : type_(type), payload_(payload), fd_(std::move(fd)) {}

    template <class M>
    SyncMessage decode() {
        if constexpr (std::is_same_v<M, msg::Console>) {
            return decode_console();
        } else {
            if (fd_) fail("an fd it does not carry");
            return parse<M>();
        }
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error(std::string("sync: malformed ") + sync_type_name(type_) + " message: " + what);
    }

    template <class M>
    M parse() const {
        if constexpr (std::is_same_v<M, msg::JoinCgroup>) return {.makes_cgroup_ns = flag(kMakesCgroupNs)};
        else if constexpr (std::is_same_v<M, msg::CgroupJoined>) return {.joined = flag(kJoined)};
        else if constexpr (std::is_same_v<M, msg::EgressMode>) return egress_mode();
        else if constexpr (std::is_same_v<M, msg::InitPid>) return {.pid = number(1, INT_MAX)};
        else if constexpr (std::is_same_v<M, msg::HooksDone>)
            return {.state_json = payload_.empty() ? std::string() : json_object()};
        else if constexpr (std::is_same_v<M, msg::SeccompListener> || std::is_same_v<M, msg::EgressListener>)
            return {.fd = number(0, INT_MAX)};
        else if constexpr (std::is_same_v<M, msg::Error>) return {.message = std::string(payload_)};
        else {
            if (!payload_.empty()) fail("a payload it does not carry");
            return {};
        }
    }

    SyncMessage decode_console() {
        if (!fd_) fail("no pty attached");
        if (payload_.empty()) fail("no pty name");
        return msg::Console{std::string(payload_), std::move(fd_)};
    }

    bool flag(std::string_view word) const {
        if (payload_.empty()) return false;
        if (payload_ == word) return true;
        fail("\"" + std::string(payload_) + "\" is neither empty nor \"" + std::string(word) + "\"");
    }

    int number(int min, int max) const {
        int value = 0;
        const char* end = payload_.data() + payload_.size();
        auto [stop, ec] = std::from_chars(payload_.data(), end, value);
        if (payload_.empty() || ec != std::errc() || stop != end || value < min || value > max)
            fail("\"" + std::string(payload_) + "\" is not a number from " + std::to_string(min) +
                 " to " + std::to_string(max));
        return value;
    }

    msg::EgressMode egress_mode() const {
        const auto mode = egress::enforcement_from_string(std::string(payload_));
        if (!mode) fail("unknown mode \"" + std::string(payload_) + "\"");
        return msg::EgressMode{*mode};
    }

    // Checked, not built: a DOM of a state whose annotations hold a thousand rules cost
    // init ~40 page faults.
    std::string json_object() const {
        const auto first = payload_.find_first_not_of(" \t\r\n");
        if (first == std::string_view::npos || payload_[first] != '{' || !nlohmann::json::accept(payload_))
            fail("the state is not a JSON object");
        return std::string(payload_);
    }

    SyncType type_;
    std::string_view payload_;
    UniqueFd fd_;
};

// The variant's alternative for a type byte: they are declared in SyncType's order.
template <size_t I = 0>
SyncMessage decode_as(uint8_t tag, Decoder& decoder) {
    if constexpr (I < std::variant_size_v<SyncMessage>) {
        using M = std::variant_alternative_t<I, SyncMessage>;
        static_assert(static_cast<size_t>(M::type) == I + 1, "SyncMessage follows SyncType's order");
        if (tag == I + 1) return decoder.decode<M>();
        return decode_as<I + 1>(tag, decoder);
    } else {
        throw Error("sync: unknown message type " + std::to_string(tag));
    }
}

}  // namespace

Packet encode(const SyncMessage& m) {
    Packet p{std::string(1, static_cast<char>(type_of(m))) + std::visit(PayloadOf{}, m)};
    if (const auto* console = std::get_if<msg::Console>(&m)) p.fd = console->master.get();
    return p;
}

SyncMessage decode(std::string_view bytes, UniqueFd fd) {
    if (bytes.empty()) throw Error("sync: empty packet");
    const auto tag = static_cast<uint8_t>(bytes[0]);
    const auto type = static_cast<SyncType>(tag);
    Decoder decoder(type, bytes.substr(1), std::move(fd));
    return decode_as(tag, decoder);
}

void throw_unexpected(const SyncMessage& got, SyncType expected) {
    if (const auto* error = std::get_if<msg::Error>(&got)) throw Error(error->message);
    throw Error(std::string("sync: expected ") + sync_type_name(expected) + ", got " +
                sync_type_name(type_of(got)));
}

std::pair<SyncSocket, SyncSocket> SyncSocket::make_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
        throw_errno("socketpair");
    return {SyncSocket(UniqueFd(fds[0])), SyncSocket(UniqueFd(fds[1]))};
}

void SyncSocket::send(const SyncMessage& m) {
    const Packet packet = encode(m);
    if (packet.fd >= 0) {
        unix_socket::send_with_fd(fd_.get(), packet.bytes, packet.fd);
        return;
    }
    // write(), not sendmsg(): once the egress filter is installed, sendmsg
    // waits for the shim, which does not exist yet while init talks to us.
    ssize_t n;
    do {
        n = ::write(fd_.get(), packet.bytes.data(), packet.bytes.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("sync write");
    if (static_cast<size_t>(n) != packet.bytes.size()) throw Error("sync write: short write");
}

std::optional<SyncMessage> SyncSocket::recv_or_eof() {
    auto r = unix_socket::recv_with_fd(fd_.get(), 65536);
    if (r.payload.empty()) return std::nullopt;
    return decode(r.payload, std::move(r.fd));
}

SyncMessage SyncSocket::recv() {
    auto m = recv_or_eof();
    if (!m) throw Error("container init exited unexpectedly");
    return std::move(*m);
}

void SyncSocket::wait_for_execve() {
    auto m = recv_or_eof();
    if (!m) return;
    if (const auto* error = std::get_if<msg::Error>(&*m)) throw Error(error->message);
    throw Error(std::string("sync: unexpected ") + sync_type_name(type_of(*m)) + " after Ready");
}

}  // namespace sandlock::container
