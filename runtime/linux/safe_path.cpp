#include "runtime/linux/safe_path.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "runtime/util/error.hpp"

namespace sandlock::os {
namespace {

// The kernel gives up after 40 symlinks; so do we when expanding dangling ones.
constexpr int kMaxSymlinks = 40;

std::string join_in_root(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string read_link_at(int dirfd, const std::string& name, const std::string& shown) {
    std::string buf(256, '\0');
    for (;;) {
        ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
        if (n < 0) throw_errno("readlink " + shown);
        if (static_cast<size_t>(n) < buf.size()) {
            buf.resize(static_cast<size_t>(n));
            return buf;
        }
        buf.resize(buf.size() * 2);
    }
}

// Creates `name` in dirfd as a directory or an empty file; losing a race to another
// creator is fine, the caller reopens whatever is there.
void create_entry(int dirfd, const std::string& name, bool as_file, mode_t mode,
                  const std::string& shown) {
    if (as_file) {
        UniqueFd fd(::openat(dirfd, name.c_str(),
                             O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode));
        if (!fd && errno != EEXIST) throw_errno("create " + shown);
        return;
    }
    if (::mkdirat(dirfd, name.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir " + shown);
}

// Walks `path` inside the root, creating what is missing. Existing symlinks are
// followed by the kernel in-root; a dangling one is expanded here so that its target
// (inside the root) is what gets created.
UniqueFd resolve_creating(int root_fd, const std::string& path, bool last_is_file, mode_t mode) {
    std::deque<std::string> todo;
    for (auto& c : split_path(path)) todo.push_back(c);
    std::string done = "/";
    UniqueFd cur = open_in_root(root_fd, "/", O_PATH | O_DIRECTORY);
    int links = 0;
    while (!todo.empty()) {
        std::string name = todo.front();
        todo.pop_front();
        const bool last = todo.empty();
        const bool want_file = last && last_is_file;
        const std::string next = join_in_root(done, name);
        const int flags = O_PATH | (want_file ? 0 : O_DIRECTORY);

        UniqueFd fd = try_open_in_root(root_fd, next, flags);
        if (!fd && errno == ENOENT && name != "..") {
            struct stat st {};
            if (::fstatat(cur.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode)) {
                if (++links > kMaxSymlinks) throw_errno("resolve " + path, ELOOP);
                std::string target = read_link_at(cur.get(), name, next);
                auto parts = split_path(target);
                todo.insert(todo.begin(), parts.begin(), parts.end());
                if (!target.empty() && target.front() == '/') {
                    done = "/";
                    cur = open_in_root(root_fd, "/", O_PATH | O_DIRECTORY);
                }
                continue;
            }
            create_entry(cur.get(), name, want_file, mode, next);
            fd = open_in_root(root_fd, next, flags);
        } else if (!fd) {
            throw_errno("open " + next);
        }
        cur = std::move(fd);
        done = next;
    }
    return cur;
}

}  // namespace

std::vector<std::string> split_path(const std::string& path) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        std::string part = path.substr(i, j - i);
        if (!part.empty() && part != ".") parts.push_back(std::move(part));
        i = j + 1;
    }
    return parts;
}

std::string clean_path(const std::string& path) {
    std::vector<std::string> out;
    for (auto& part : split_path(path)) {
        if (part == "..") {
            if (!out.empty()) out.pop_back();
        } else {
            out.push_back(part);
        }
    }
    std::string s;
    for (auto& part : out) s += "/" + part;
    return s.empty() ? "/" : s;
}

UniqueFd try_open_in_root(int root_fd, const std::string& path, int flags) {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    // openat2 wants a relative name for "relative to root_fd"; "/" itself is ".".
    std::string rel = clean_path("/" + path) == "/" ? "." : path;
    long fd;
    // EAGAIN: a concurrent rename made the kernel unsure the walk stayed inside; retry.
    int tries = 0;
    do {
        fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 64);
    return UniqueFd(static_cast<int>(fd));
}

UniqueFd open_in_root(int root_fd, const std::string& path, int flags) {
    UniqueFd fd = try_open_in_root(root_fd, path, flags);
    if (!fd) throw_errno("open " + path);
    return fd;
}

UniqueFd mkdir_all_in_root(int root_fd, const std::string& path, mode_t mode) {
    return resolve_creating(root_fd, path, false, mode);
}

UniqueFd create_file_in_root(int root_fd, const std::string& path, mode_t mode) {
    return resolve_creating(root_fd, path, true, mode);
}

std::string proc_fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace sandlock::os
