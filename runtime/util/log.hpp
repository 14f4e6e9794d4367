// The runtime's log: where warnings, debug lines and the one failure line go.
// Callers (conmon, containerd) read `--log` as logrus lines; with
// `--log-format json` each line is {"level","msg","time"}.
#pragma once

#include <string>

namespace sandlock::log {

enum class Format { Text, Json };

void configure(const std::string& path, Format format, bool debug);
bool debug_enabled();

void debug(const std::string& msg);
void info(const std::string& msg);
void warn(const std::string& msg);
// The failure line: once to --log (if set) and the bare message to stderr.
void fatal(const std::string& msg);

// One formatted line, exposed for tests.
std::string format_line(Format format, const std::string& level, const std::string& msg,
                        const std::string& time);
// RFC 3339 with nanoseconds in UTC, as Go's time.RFC3339Nano prints.
std::string rfc3339_now();

}  // namespace sandlock::log
