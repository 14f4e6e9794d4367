#include "runtime/cgroups/systemd.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>

#include "runtime/util/error.hpp"
#include "runtime/util/fd.hpp"
#include "runtime/util/log.hpp"

extern char** environ;

namespace sandlock::cgroups {

namespace {

constexpr uint64_t kInfinity = std::numeric_limits<uint64_t>::max();
// How often the first process joins the hierarchies systemd trims under it.
constexpr int kJoinAttempts = 20;
// The most of the helper's stderr an error message quotes.
constexpr size_t kMaxErrorText = 4096;

std::string default_helper() {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) return (self.parent_path() / "sandlock-systemd").string();
    return "sandlock-systemd";
}

uint64_t limit_value(int64_t v) { return v < 0 ? kInfinity : static_cast<uint64_t>(v); }

std::string property(const char* name, uint64_t value) {
    return std::string(name) + "=t:" + std::to_string(value);
}

// Runs sandlock-systemd ARGS and waits; its stderr becomes the error message.
void run_helper(const std::vector<std::string>& args) {
    const std::string& exe = systemd_helper_binary();
    std::vector<char*> argv{const_cast<char*>("sandlock-systemd")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
    pid_t pid = -1;
    int err = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) throw_errno("systemd cgroup driver: running " + exe, err);
    write_end.reset();

    std::string text;
    char buf[512];
    for (;;) {
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (text.size() < kMaxErrorText) text.append(buf, static_cast<size_t>(n));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("waitpid sandlock-systemd");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text.empty()) text = "sandlock-systemd failed (status " + std::to_string(status) + ")";
    throw Error("systemd cgroup driver: " + text);
}

class SystemdManager : public Manager {
public:
    SystemdManager(std::unique_ptr<Manager> fs, SystemdUnit unit, std::vector<std::string> properties,
                   std::vector<std::string> user_properties, bool started)
        : fs_(std::move(fs)), unit_(std::move(unit)), properties_(std::move(properties)),
          user_properties_(std::move(user_properties)), started_(started) {}

    // Nothing before the first process: systemd creates the unit's cgroup then, and
    // removes directories it finds in hierarchies it does not manage for the unit.
    void create() override {}

    // The first process starts the unit; then the cgroupfs manager makes the directories
    // systemd did not (as runc does) and joins every hierarchy.
    void add_process(pid_t pid) override {
        if (started_) return fs_->add_process(pid);
        start_unit(pid);
        join_after_start(pid);
    }

    // An empty scope is collected by systemd: the setup stays in the container's
    // cgroup under this driver (as with runc's).
    void add_process_to_own_cgroup(pid_t) override {}

    std::vector<pid_t> pids() const override { return fs_->pids(); }

    void destroy() override {
        if (started_) {
            try {
                run_helper({"stop", unit_.unit});
            } catch (const Error& e) {
                // The cgroupfs removal below still runs; the unit is systemd's to collect.
                log::warn(e.what());
            }
        }
        fs_->destroy();
    }

    bool exists() const override { return fs_->exists(); }
    std::string path() const override { return fs_->path(); }
    std::map<std::string, std::string> dirs() const override { return fs_->dirs(); }
    Kind kind() const override { return fs_->kind(); }

    nlohmann::json to_state() const override {
        nlohmann::json j = fs_->to_state();
        j["systemd"] = {{"unit", unit_.unit}, {"slice", unit_.slice}, {"started", started_}};
        return j;
    }

    // The files first, then the unit's properties, so that systemd puts the new values
    // (not the create-time ones) back when it applies the unit again (daemon-reload).
    void apply(const Resources& r) override {
        fs_->apply(r);
        if (!started_) return;
        std::vector<std::string> properties = systemd_resource_properties(r, fs_->kind() == Kind::V2);
        if (properties.empty() || properties == properties_) return;  // sent with the start
        std::vector<std::string> args{"set", unit_.unit};
        args.insert(args.end(), properties.begin(), properties.end());
        run_helper(args);
        properties_ = std::move(properties);
    }
    void freeze() override { fs_->freeze(); }
    void thaw() override { fs_->thaw(); }
    bool frozen() const override { return fs_->frozen(); }
    bool made_by_first_process() const override { return true; }
    nlohmann::json stats() const override { return fs_->stats(); }

private:
    void start_unit(pid_t pid) {
        std::vector<std::string> args{"start", unit_.unit};
        const bool scope = unit_.unit.ends_with(".scope");
        if (scope) args.push_back("PIDs=au:" + std::to_string(pid));
        args.push_back("Description=s:sandlock-runc container " + unit_.unit);
        args.push_back("Slice=s:" + unit_.slice);
        // As runc: the unit must not wait on (or pull in) anything else.
        args.push_back("DefaultDependencies=b:false");
        args.push_back("Delegate=b:true");
        args.insert(args.end(), properties_.begin(), properties_.end());
        args.insert(args.end(), user_properties_.begin(), user_properties_.end());
        run_helper(args);
        started_ = true;
        log::debug("systemd: started " + unit_.unit + " in " + unit_.slice);
    }

    // systemd realizes the unit's cgroup again after the job (v1: it removes the empty
    // directories of hierarchies it does not manage for the unit, blkio among them), so a
    // directory made here can vanish before the process is in it. Once it is, rmdir
    // fails and it stays: make and join again while a directory went missing.
    void join_after_start(pid_t pid) {
        for (int attempt = 1;; ++attempt) {
            fs_->create();
            try {
                fs_->add_process(pid);
                return;
            } catch (const Error&) {
                if (attempt >= kJoinAttempts || all_dirs_exist()) throw;
            }
        }
    }

    bool all_dirs_exist() const {
        for (const auto& [key, dir] : fs_->dirs())
            if (!std::filesystem::is_directory(dir)) return false;
        return true;
    }

    std::unique_ptr<Manager> fs_;
    SystemdUnit unit_;
    std::vector<std::string> properties_;
    // From org.systemd.property.* annotations: sent once, with the start, after ours.
    std::vector<std::string> user_properties_;
    bool started_;
};

}  // namespace

bool systemd_running() {
    struct stat st {};
    return ::lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

std::string& systemd_helper_binary() {
    static std::string path = default_helper();
    return path;
}

std::vector<std::string> systemd_resource_properties(const Resources& r, bool unified) {
    std::vector<std::string> out;
    if (r.pids_limit) out.push_back(property("TasksMax", limit_value(*r.pids_limit)));
    if (r.memory && r.memory->limit)
        out.push_back(property(unified ? "MemoryMax" : "MemoryLimit", limit_value(*r.memory->limit)));
    if (r.cpu && r.cpu->shares) {
        if (unified)
            out.push_back(property("CPUWeight", cpu_shares_to_weight(*r.cpu->shares)));
        else
            out.push_back(property("CPUShares", *r.cpu->shares));
    }
    if (r.cpu && r.cpu->quota && *r.cpu->quota > 0) {
        // CPU time per second of wall clock, which systemd keeps in steps of 10 ms (as runc).
        uint64_t period = r.cpu->period.value_or(100000);
        uint64_t per_sec = static_cast<uint64_t>(*r.cpu->quota) * 1000000 / period;
        per_sec = (per_sec + 9999) / 10000 * 10000;
        out.push_back(property("CPUQuotaPerSecUSec", per_sec));
    }
    return out;
}

namespace {

constexpr std::string_view kPropertyPrefix = "org.systemd.property.";

bool ascii_letters(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

// A GVariant number: the whole text, or nothing.
template <typename T>
std::optional<T> parse_number(std::string_view text) {
    T v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

struct Variant {
    char type;          // 'b' 's' 'i' 'u' 'x' 't' 'd'
    std::string text;   // the value in sandlock-systemd's form
    double number = 0;  // for the Sec -> USec conversion
};

template <typename T>
std::optional<Variant> typed_integer(char type, std::string_view digits) {
    auto v = parse_number<T>(digits);
    if (!v) return std::nullopt;
    return Variant{type, std::to_string(*v), static_cast<double>(*v)};
}

std::optional<Variant> parse_variant(std::string_view v) {
    if (v == "true" || v == "false") return Variant{'b', std::string(v)};
    if (v.size() >= 2 && (v.front() == '\'' || v.front() == '"') && v.back() == v.front()) {
        std::string_view inner = v.substr(1, v.size() - 2);
        if (inner.find(v.front()) != std::string_view::npos || inner.find('\\') != std::string_view::npos)
            return std::nullopt;  // escapes are not supported: refuse rather than guess
        return Variant{'s', std::string(inner)};
    }
    static const std::pair<std::string_view, char> kTyped[] = {
        {"uint64 ", 't'}, {"uint32 ", 'u'}, {"int64 ", 'x'}, {"int32 ", 'i'}};
    for (const auto& [prefix, type] : kTyped) {
        if (!v.starts_with(prefix)) continue;
        std::string_view digits = v.substr(prefix.size());
        switch (type) {
            case 't': return typed_integer<uint64_t>(type, digits);
            case 'u': return typed_integer<uint32_t>(type, digits);
            case 'x': return typed_integer<int64_t>(type, digits);
            default: return typed_integer<int32_t>(type, digits);
        }
    }
    if (auto i = typed_integer<int32_t>('i', v)) return i;
    if (v.find_first_of(".eE") != std::string_view::npos) {
        if (auto d = parse_number<double>(v)) return Variant{'d', std::string(v), *d};
    }
    return std::nullopt;
}

}  // namespace

std::vector<std::string> systemd_annotation_properties(
    const std::map<std::string, std::string>& annotations) {
    std::vector<std::string> out;
    for (const auto& [key, value] : annotations) {
        if (!key.starts_with(kPropertyPrefix)) continue;
        std::string name = key.substr(kPropertyPrefix.size());
        if (name.size() < 3) throw Error("annotation " + key + " name incorrect: too short");
        if (!ascii_letters(name))
            throw Error("annotation " + key + " name incorrect: contains non-alphabetic character");
        auto variant = parse_variant(value);
        if (!variant)
            throw Error("annotation " + key + "=" + value +
                        " value parse error: not a boolean, a quoted string or a number");
        // As runc: xxxSec in seconds becomes xxxUSec in microseconds.
        const size_t base = name.size() - 3;
        if (base > 0 && name.ends_with("Sec") && name[base - 1] >= 'a' && name[base - 1] <= 'z') {
            if (variant->type == 'b' || variant->type == 's' || variant->number < 0)
                throw Error("annotation " + key + "=" + value +
                            " value parse error: seconds must be a number >= 0");
            name = name.substr(0, base) + "USec";
            const double usec = variant->number * 1e6;
            if (usec >= 18446744073709551615.0)
                throw Error("annotation " + key + "=" + value + " value parse error: too large");
            variant = Variant{'t', std::to_string(static_cast<uint64_t>(usec + 0.5))};
        }
        if (variant->type == 'd')
            throw Error("annotation " + key + "=" + value +
                        " value parse error: a double is only accepted for a ...Sec property");
        out.push_back(name + "=" + variant->type + ":" + variant->text);
    }
    return out;
}

std::unique_ptr<Manager> make_systemd_manager(std::unique_ptr<Manager> fs, const SystemdUnit& unit,
                                              std::vector<std::string> properties,
                                              std::vector<std::string> user_properties) {
    return std::make_unique<SystemdManager>(std::move(fs), unit, std::move(properties),
                                            std::move(user_properties), false);
}

std::unique_ptr<Manager> open_systemd_manager(std::unique_ptr<Manager> fs,
                                              const nlohmann::json& state) {
    auto text = [&](const char* key) {
        if (!state.is_object() || !state.contains(key) || !state[key].is_string())
            throw Error(std::string("cgroups: invalid cgroup state: systemd \"") + key + "\" is missing");
        return state[key].get<std::string>();
    };
    SystemdUnit unit;
    unit.unit = text("unit");
    unit.slice = text("slice");
    if (unit.unit.find('/') != std::string::npos || unit.unit.empty())
        throw Error("cgroups: invalid cgroup state: systemd unit \"" + unit.unit + "\"");
    bool started = state.contains("started") && state["started"].is_boolean() && state["started"].get<bool>();
    return std::make_unique<SystemdManager>(std::move(fs), std::move(unit), std::vector<std::string>{},
                                            std::vector<std::string>{}, started);
}

}  // namespace sandlock::cgroups
