#include "runtime/linux/terminal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "runtime/util/error.hpp"
#include "runtime/util/unix_socket.hpp"

namespace sandlock::os {

Pty open_pty(const std::optional<spec::ConsoleSize>& size) {
    Pty pty;
    pty.master.reset(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!pty.master) throw_errno("open /dev/ptmx");
    if (::unlockpt(pty.master.get()) != 0) throw_errno("unlockpt");
    char name[128];
    if (::ptsname_r(pty.master.get(), name, sizeof name) != 0) throw_errno("ptsname");
    pty.slave_name = name;
    pty.slave.reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!pty.slave) throw_errno("open " + pty.slave_name);
    if (size && size->height && size->width) {
        struct winsize ws {};
        ws.ws_row = static_cast<unsigned short>(size->height);
        ws.ws_col = static_cast<unsigned short>(size->width);
        ::ioctl(pty.master.get(), TIOCSWINSZ, &ws);
    }
    return pty;
}

void attach_to_pty(int slave) {
    if (::ioctl(slave, TIOCSCTTY, 0) != 0) throw_errno("ioctl TIOCSCTTY");
    for (int target = 0; target <= 2; ++target)
        if (::dup3(slave, target, 0) < 0) throw_errno("dup3 pty");
}

void send_console(const std::string& socket_path, int master, const std::string& name) {
    UniqueFd sock = unix_socket::connect_stream(socket_path);
    unix_socket::send_with_fd(sock.get(), name, master);
}

PtyProxy::PtyProxy(UniqueFd master) : master_(std::move(master)) {
    if (::isatty(STDIN_FILENO)) {
        struct termios t {};
        if (::tcgetattr(STDIN_FILENO, &t) == 0) {
            saved_termios_ = std::string(reinterpret_cast<const char*>(&t), sizeof t);
            ::cfmakeraw(&t);
            raw_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
        }
        resize_from_stdin();
    }
}

PtyProxy::~PtyProxy() {
    if (raw_ && saved_termios_) {
        struct termios t {};
        std::memcpy(&t, saved_termios_->data(), sizeof t);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &t);
    }
}

void PtyProxy::resize_from_stdin() {
    struct winsize ws {};
    if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) ::ioctl(master_.get(), TIOCSWINSZ, &ws);
}

static bool copy_once(int from, int to) {
    char buf[8192];
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) return false;
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return true;  // the reader went away; keep draining the other side
        }
        off += w;
    }
    return true;
}

bool PtyProxy::pump(int timeout_ms) {
    struct pollfd fds[2] = {{master_.get(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    nfds_t n = stdin_open_ ? 2 : 1;
    int r = ::poll(fds, n, timeout_ms);
    if (r < 0) return errno == EINTR;
    if (fds[0].revents & POLLIN) {
        if (!copy_once(master_.get(), STDOUT_FILENO)) return false;
    } else if (fds[0].revents & (POLLHUP | POLLERR)) {
        return false;
    }
    if (stdin_open_ && (fds[1].revents & (POLLIN | POLLHUP))) {
        if (!copy_once(STDIN_FILENO, master_.get())) stdin_open_ = false;
    }
    return true;
}

void PtyProxy::drain() {
    ::fcntl(master_.get(), F_SETFL, ::fcntl(master_.get(), F_GETFL) | O_NONBLOCK);
    stdin_open_ = false;
    for (int i = 0; i < 1000; ++i) {
        struct pollfd p {master_.get(), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) break;
        char buf[8192];
        ssize_t r = ::read(master_.get(), buf, sizeof buf);
        if (r <= 0) break;
        ssize_t off = 0;
        while (off < r) {
            ssize_t w = ::write(STDOUT_FILENO, buf + off, static_cast<size_t>(r - off));
            if (w <= 0) break;
            off += w;
        }
    }
}

}  // namespace sandlock::os
