// Small file helpers; all throw sandlock::Error on failure.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace sandlock::fs {

std::string read_file(const std::string& path);
// The content, or nullopt when the file cannot be opened or read; never throws
// (for expected failures on hot paths: a throw costs far more in a static binary).
std::optional<std::string> try_read_file(const std::string& path);
// Writes atomically (temp file + rename) so readers never see half a file.
void write_file_atomic(const std::string& path, const std::string& data, mode_t mode = 0644);
// Writes in place, for kernel files (cgroup, /proc) that cannot be renamed.
void write_file(const std::string& path, const std::string& data);
bool exists(const std::string& path);
bool is_dir(const std::string& path);
void mkdir_p(const std::string& path, mode_t mode = 0755);
// Removes a directory tree; missing paths are not an error.
void remove_all(const std::string& path);
std::string join(const std::string& a, const std::string& b);
std::string absolute(const std::string& path);

}  // namespace sandlock::fs
