// Internal: reading and writing cgroup interface files. Every write names the
// file and the value in its error, since "Invalid argument" alone says nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sandlock::cgroups::cgroupfs {

// Writes value to dir/file; throws `set <file> to "<value>" in <dir>: <strerror>`.
void write(const std::string& dir, const std::string& file, const std::string& value);
// The same, returning 0 or errno instead of throwing (for callers that retry).
int try_write(const std::string& dir, const std::string& file, const std::string& value);
bool has(const std::string& dir, const std::string& file);

// The file's text with the trailing newline removed; throws when unreadable.
std::string read(const std::string& dir, const std::string& file);
// A single number ("max" reads as nullopt); nullopt too when the file is missing.
std::optional<uint64_t> read_u64(const std::string& dir, const std::string& file);
// "key value" lines (memory.stat, cpu.stat, cgroup.events); missing file → empty.
std::map<std::string, uint64_t> read_keyed(const std::string& dir, const std::string& file);
// Whitespace-separated numbers (cpuacct.usage_percpu); missing file → empty.
std::vector<uint64_t> read_numbers(const std::string& dir, const std::string& file);

}  // namespace sandlock::cgroups::cgroupfs
