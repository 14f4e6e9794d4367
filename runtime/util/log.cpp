#include "runtime/util/log.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace sandlock::log {
namespace {

struct Config {
    std::string path;
    Format format = Format::Text;
    bool debug = false;
};

Config& config() {
    static Config c;
    return c;
}

std::string quote_text(const std::string& s) {
    // logrus text format quotes values with Go %q semantics; JSON escaping is close enough.
    return nlohmann::json(s).dump();
}

void append_to(int fd, const std::string& line) {
    size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(fd, line.data() + off, line.size() - off);
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

void emit(const std::string& level, const std::string& msg) {
    const Config& c = config();
    std::string line = format_line(c.format, level, msg, rfc3339_now());
    if (c.path.empty()) {
        append_to(STDERR_FILENO, line);
        return;
    }
    int fd = ::open(c.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        append_to(STDERR_FILENO, line);
        return;
    }
    append_to(fd, line);
    ::close(fd);
}

}  // namespace

void configure(const std::string& path, Format format, bool debug) {
    config() = Config{path, format, debug};
}

bool debug_enabled() { return config().debug; }

std::string rfc3339_now() {
    struct timespec ts {};
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm {};
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[96];
    std::snprintf(out, sizeof out, "%s.%09ldZ", buf, ts.tv_nsec);
    return out;
}

std::string format_line(Format format, const std::string& level, const std::string& msg,
                        const std::string& time) {
    if (format == Format::Json) {
        nlohmann::ordered_json j;
        j["level"] = level;
        j["msg"] = msg;
        j["time"] = time;
        return j.dump() + "\n";
    }
    return "time=\"" + time + "\" level=" + level + " msg=" + quote_text(msg) + "\n";
}

void debug(const std::string& msg) {
    if (config().debug) emit("debug", msg);
}
void info(const std::string& msg) { emit("info", msg); }
void warn(const std::string& msg) { emit("warning", msg); }

void fatal(const std::string& msg) {
    if (!config().path.empty()) emit("error", msg);
    append_to(STDERR_FILENO, msg + "\n");
}

}  // namespace sandlock::log
