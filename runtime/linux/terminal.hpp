// Pseudo-terminals: allocate one inside the container, hand the master to the
// caller over --console-socket (runc's protocol), or proxy it ourselves.
#pragma once

#include <optional>
#include <string>

#include "runtime/util/fd.hpp"
#include "spec/config.hpp"

namespace sandlock::os {

struct Pty {
    UniqueFd master;
    UniqueFd slave;
    std::string slave_name;
};

// Opens /dev/ptmx of the current mount namespace (the container's devpts).
Pty open_pty(const std::optional<spec::ConsoleSize>& size);
// Makes slave the controlling terminal and stdio of the calling process.
void attach_to_pty(int slave);
// runc's protocol: one message, payload = pty name, master as SCM_RIGHTS.
void send_console(const std::string& socket_path, int master, const std::string& name);

// Copies stdin -> master and master -> stdout until the master reports
// EOF/EIO or stop_fd becomes readable. Puts our terminal in raw mode while
// running and forwards window-size changes when stdin is a terminal.
class PtyProxy {
public:
    explicit PtyProxy(UniqueFd master);
    ~PtyProxy();
    PtyProxy(const PtyProxy&) = delete;
    PtyProxy& operator=(const PtyProxy&) = delete;
    int master() const { return master_.get(); }
    // One poll round; returns false once the master is closed.
    bool pump(int timeout_ms);
    void drain();
    void resize_from_stdin();

private:
    UniqueFd master_;
    bool raw_ = false;
    bool stdin_open_ = true;
    std::optional<std::string> saved_termios_;
};

}  // namespace sandlock::os
