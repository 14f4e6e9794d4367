#include "runtime/container/process.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "runtime/util/error.hpp"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace sandlock::container {

static bool is_executable_file(const std::string& path, int* err) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        *err = errno;
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        *err = EISDIR;
        return false;
    }
    if ((st.st_mode & 0111) == 0) {
        *err = EACCES;
        return false;
    }
    return true;
}

static std::string env_value(const std::vector<std::string>& env, const std::string& key) {
    std::string value;
    for (const auto& e : env)
        if (e.compare(0, key.size() + 1, key + "=") == 0) value = e.substr(key.size() + 1);
    return value;
}

static std::string lower_strerror(int err) {
    std::string s = std::strerror(err);
    if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    return s;
}

std::string lookup_executable(const std::string& arg0, const std::vector<std::string>& env) {
    const std::string prefix = "exec: \"" + arg0 + "\": ";
    if (arg0.empty()) throw Error("exec: \"\": executable file not found in $PATH");
    int err = 0;
    if (arg0.find('/') != std::string::npos) {
        if (is_executable_file(arg0, &err)) return arg0;
        throw Error(prefix + "stat " + arg0 + ": " + lower_strerror(err));
    }
    std::string path = env_value(env, "PATH");
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find(':', start);
        if (end == std::string::npos) end = path.size();
        std::string dir = path.substr(start, end - start);
        if (dir.empty()) dir = ".";
        std::string candidate = dir + "/" + arg0;
        if (is_executable_file(candidate, &err)) return candidate;
        start = end + 1;
    }
    throw Error(prefix + "executable file not found in $PATH");
}

// systemd socket activation: the fds are ours only if LISTEN_PID names us.
static int listen_fds_from_env() {
    const char* pid = ::getenv("LISTEN_PID");
    if (!pid || std::atoi(pid) != ::getpid()) return 0;
    const char* v = ::getenv("LISTEN_FDS");
    if (!v || !*v) return 0;
    int n = std::atoi(v);
    return n > 0 ? n : 0;
}

int passed_fd_count(int preserve_fds) { return listen_fds_from_env() + preserve_fds; }

void add_listen_env(std::vector<std::string>& env) {
    int n = listen_fds_from_env();
    if (n == 0) return;
    env.push_back("LISTEN_FDS=" + std::to_string(n));
    env.push_back("LISTEN_PID=1");
}

void prepare_inherited_fds(int count) {
    unsigned first_closed = 3u + static_cast<unsigned>(count);
    if (::syscall(SYS_close_range, first_closed, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        throw_errno("close_range");
    for (int fd = 3; fd < 3 + count; ++fd) {
        int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
}

UniqueFd take_fd_from(pid_t pid, int target_fd) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) throw_errno("pidfd_open");
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), target_fd, 0)));
    if (!fd) throw_errno("pidfd_getfd");
    return fd;
}

void exec_process(const std::string& path, const spec::Process& process) {
    std::vector<char*> argv;
    for (const auto& a : process.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : process.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    ::execve(path.c_str(), argv.data(), envp.data());
    throw_errno("exec " + path);
}

int exit_code_from_wait_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

}  // namespace sandlock::container
