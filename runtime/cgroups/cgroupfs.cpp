#include "runtime/cgroups/cgroupfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::cgroups::cgroupfs {

namespace {

std::optional<uint64_t> to_u64(const std::string& word) {
    if (word.empty() || word.find_first_not_of("0123456789") != std::string::npos || word.size() > 20)
        return std::nullopt;
    try {
        return std::stoull(word);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

int try_write(const std::string& dir, const std::string& file, const std::string& value) {
    std::string path = dir + "/" + file;
    // No O_CREAT: a missing interface file means the kernel lacks the feature.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC));
    if (!fd) return errno;
    ssize_t n;
    do {
        n = ::write(fd.get(), value.data(), value.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    return static_cast<size_t>(n) == value.size() ? 0 : EIO;
}

void write(const std::string& dir, const std::string& file, const std::string& value) {
    if (int err = try_write(dir, file, value); err != 0)
        throw Error("set " + file + " to \"" + value + "\" in " + dir + ": " + std::strerror(err));
}

bool has(const std::string& dir, const std::string& file) { return fs::exists(dir + "/" + file); }

std::string read(const std::string& dir, const std::string& file) {
    std::string text = fs::read_file(dir + "/" + file);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

std::optional<uint64_t> read_u64(const std::string& dir, const std::string& file) {
    if (!has(dir, file)) return std::nullopt;
    return to_u64(read(dir, file));
}

std::map<std::string, uint64_t> read_keyed(const std::string& dir, const std::string& file) {
    std::map<std::string, uint64_t> out;
    if (!has(dir, file)) return out;
    std::istringstream in(read(dir, file));
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string key, value;
        if (!(words >> key >> value)) continue;
        if (auto v = to_u64(value)) out[key] = *v;
    }
    return out;
}

std::vector<uint64_t> read_numbers(const std::string& dir, const std::string& file) {
    std::vector<uint64_t> out;
    if (!has(dir, file)) return out;
    std::istringstream in(read(dir, file));
    for (std::string word; in >> word;)
        if (auto v = to_u64(word)) out.push_back(*v);
    return out;
}

}  // namespace sandlock::cgroups::cgroupfs
