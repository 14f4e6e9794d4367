#include "runtime/util/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"

namespace sandlock::fs {

// The file's content, or the errno of the failed open/read (out is then unspecified).
static int read_into(const std::string& path, std::string& out, const char** failed_call) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    *failed_call = "open ";
    if (!fd) return errno;
    *failed_call = "read ";
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return 0;
        out.append(buf, static_cast<size_t>(n));
    }
}

std::string read_file(const std::string& path) {
    std::string out;
    const char* call = "";
    if (int err = read_into(path, out, &call)) throw_errno(call + path, err);
    return out;
}

std::optional<std::string> try_read_file(const std::string& path) {
    std::string out;
    const char* call = "";
    if (read_into(path, out, &call) != 0) return std::nullopt;
    return out;
}

static void write_all(int fd, const std::string& data, const std::string& path) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("write " + path);
        }
        off += static_cast<size_t>(n);
    }
}

void write_file(const std::string& path, const std::string& data) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC));
    if (!fd) throw_errno("open " + path);
    write_all(fd.get(), data, path);
}

void write_file_atomic(const std::string& path, const std::string& data, mode_t mode) {
    std::string tmp = path + ".tmp";
    {
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
        if (!fd) throw_errno("open " + tmp);
        write_all(fd.get(), data, tmp);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw_errno("rename " + tmp, err);
    }
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void mkdir_p(const std::string& path, mode_t mode) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) throw Error("mkdir " + path + ": " + ec.message());
    if (::chmod(path.c_str(), mode) != 0 && errno != EPERM) throw_errno("chmod " + path);
}

void remove_all(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) throw Error("remove " + path + ": " + ec.message());
}

std::string join(const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    if (b.empty()) return a;
    bool a_slash = a.back() == '/';
    bool b_slash = b.front() == '/';
    if (a_slash && b_slash) return a + b.substr(1);
    if (a_slash || b_slash) return a + b;
    return a + "/" + b;
}

std::string absolute(const std::string& path) {
    std::error_code ec;
    auto p = std::filesystem::absolute(path, ec);
    if (ec) throw Error("resolve " + path + ": " + ec.message());
    return p.lexically_normal().string();
}

}  // namespace sandlock::fs
