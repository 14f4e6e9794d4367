#include "runtime/cgroups/fs_manager.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::cgroups {

namespace {

using Clock = std::chrono::steady_clock;

// How long destroy() keeps retrying a cgroup that is still busy (its last
// processes may still be exiting).
constexpr auto kBusyTimeout = std::chrono::milliseconds(1000);

std::vector<std::string> components(const std::string& cgroup) {
    std::vector<std::string> out;
    std::istringstream in(cgroup);
    for (std::string part; std::getline(in, part, '/');)
        if (!part.empty()) out.push_back(part);
    return out;
}

// Removes dir's child cgroups (deepest first), then dir. Returns 0 or errno
// of the final rmdir. Child cgroups appear when the container nests its own.
int rmdir_tree(const std::string& dir) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        std::error_code type_ec;
        if (entry.is_directory(type_ec) && !entry.is_symlink(type_ec))
            rmdir_tree(entry.path().string());
    }
    return ::rmdir(dir.c_str()) == 0 ? 0 : errno;
}

// rmdir_tree, retried while the cgroup is busy and the deadline allows.
int remove_leaf(const std::string& dir, Clock::time_point deadline) {
    auto pause = std::chrono::milliseconds(10);
    for (;;) {
        int err = rmdir_tree(dir);
        if (err == 0 || err == ENOENT) return 0;
        if (err != EBUSY || Clock::now() >= deadline) return err;
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(100));
    }
}

// Returns 0 or the errno of the failed open/write of cgroup.procs.
int write_pid(const std::string& dir, pid_t pid) {
    std::string file = dir + "/cgroup.procs";
    std::string text = std::to_string(pid);
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return errno;
    ssize_t n;
    do {
        n = ::write(fd.get(), text.data(), text.size());
    } while (n < 0 && errno == EINTR);
    return n < 0 ? errno : 0;
}

}  // namespace

bool Target::has(const std::string& controller) const {
    return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

std::vector<pid_t> parse_pids(const std::string& text, const std::string& source) {
    std::vector<pid_t> out;
    std::istringstream in(text);
    for (std::string word; in >> word;) {
        bool digits = !word.empty() && std::all_of(word.begin(), word.end(), [](unsigned char c) {
                          return c >= '0' && c <= '9';
                      });
        if (!digits || word.size() > 9) throw Error(source + ": unexpected entry \"" + word + "\"");
        out.push_back(static_cast<pid_t>(std::stol(word)));
    }
    return out;
}

FsManager::FsManager(std::vector<Target> targets, std::vector<std::string> created)
    : targets_(std::move(targets)), created_(std::move(created)) {
    if (targets_.empty()) throw Error("cgroups: no hierarchy to place the container in");
}

void FsManager::create_target(const Target& target) {
    auto parts = components(target.cgroup);
    std::string dir = target.mount;
    for (size_t i = 0; i < parts.size(); ++i) {
        dir += "/" + parts[i];
        bool created = ::mkdir(dir.c_str(), 0755) == 0;
        if (!created) {
            if (errno != EEXIST) throw_errno("create cgroup " + dir);
            if (!fs::is_dir(dir)) throw Error("create cgroup " + dir + ": exists and is not a directory");
        } else {
            created_.push_back(dir);
        }
        prepare_dir(target, dir, created, i + 1 == parts.size());
    }
}

void FsManager::create() {
    size_t before = created_.size();
    try {
        for (const auto& target : targets_) create_target(target);
    } catch (...) {
        remove_created_since(before);
        throw;
    }
}

void FsManager::remove_created_since(size_t count) noexcept {
    while (created_.size() > count) {
        ::rmdir(created_.back().c_str());
        created_.pop_back();
    }
}

std::string FsManager::join_hint(int) const { return {}; }

void FsManager::add_process(pid_t pid) {
    for (const auto& target : targets_) {
        if (int err = write_pid(target.dir(), pid); err != 0)
            throw Error("add pid " + std::to_string(pid) + " to cgroup " + target.dir() + ": " +
                        std::strerror(err) + join_hint(err));
    }
}

std::vector<std::string> own_cgroup_dirs(const std::vector<Target>& targets, const Hierarchy& host) {
    std::vector<std::string> out;
    for (const auto& target : targets) {
        const Mount* mount = nullptr;
        if (target.unified) {
            if (host.v2 && host.v2->mount_point == target.mount) mount = &*host.v2;
        } else {
            for (const auto& m : host.v1)
                if (m.mount_point == target.mount) mount = &m;
        }
        if (!mount) throw Error("cgroups: " + target.mount + " is no longer a mounted cgroup hierarchy");
        if (mount->own_path.empty())
            throw Error("cgroups: this process's cgroup under " + target.mount + " is unknown");
        out.push_back(mount->own_path == "/" ? target.mount : target.mount + mount->own_path);
    }
    return out;
}

void FsManager::add_process_to_own_cgroup(pid_t pid) {
    std::vector<std::string> dirs = own_cgroup_dirs(targets_, probe_host());
    for (const auto& dir : dirs) {
        if (int err = write_pid(dir, pid); err != 0)
            throw Error("move pid " + std::to_string(pid) + " back to cgroup " + dir + ": " +
                        std::strerror(err) + join_hint(err));
    }
}

std::vector<pid_t> FsManager::pids() const {
    // A cgroup that is gone (systemd collects an empty scope on its own) has no processes.
    std::string file = authoritative().dir() + "/cgroup.procs";
    if (auto text = fs::try_read_file(file)) return parse_pids(*text, file);
    if (!fs::exists(authoritative().dir())) return {};
    return parse_pids(fs::read_file(file), file);  // throws, saying why it cannot be read
}

void FsManager::destroy() {
    // Frozen tasks do not act on SIGKILL (v1): thaw, so the kill the caller
    // sent takes effect and the cgroup can drain.
    try {
        if (exists() && frozen()) thaw();
    } catch (const Error&) {
    }
    auto deadline = Clock::now() + kBusyTimeout;
    std::string first_error;
    auto note = [&](const std::string& dir, int err) {
        if (first_error.empty()) first_error = "remove cgroup " + dir + ": " + std::strerror(err);
    };

    for (const auto& target : targets_) {
        int err = remove_leaf(target.dir(), deadline);
        if (err != 0) note(target.dir(), err);
    }
    // Created parents, deepest first. Busy or non-empty means someone else
    // (another container sharing the parent) still uses it: leave it.
    std::vector<std::string> parents = created_;
    std::sort(parents.begin(), parents.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& dir : parents) {
        if (::rmdir(dir.c_str()) == 0) continue;
        int err = errno;
        if (err != ENOENT && err != EBUSY && err != ENOTEMPTY) note(dir, err);
    }
    if (!first_error.empty()) throw Error(first_error);
}

bool FsManager::exists() const { return fs::is_dir(authoritative().dir()); }

std::string FsManager::path() const { return authoritative().cgroup; }

const Target& FsManager::authoritative() const { return targets_.front(); }

std::map<std::string, std::string> FsManager::dirs() const {
    std::map<std::string, std::string> out;
    for (const auto& target : targets_) {
        if (target.unified) {
            out[""] = target.dir();
            continue;
        }
        for (const auto& controller : target.controllers) out[controller] = target.dir();
    }
    return out;
}

nlohmann::json FsManager::to_state() const {
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& t : targets_)
        targets.push_back({{"mount", t.mount},
                           {"cgroup", t.cgroup},
                           {"controllers", t.controllers},
                           {"unified", t.unified}});
    return {{"kind", kind_name(kind())}, {"targets", targets}, {"created", created_}};
}

}  // namespace sandlock::cgroups
