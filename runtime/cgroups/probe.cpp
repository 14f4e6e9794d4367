#include <algorithm>
#include <map>
#include <sstream>

#include "runtime/cgroups/hierarchy.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/fs.hpp"

namespace sandlock::cgroups {

std::string to_string(Mode mode) {
    switch (mode) {
        case Mode::Legacy: return "legacy";
        case Mode::Hybrid: return "hybrid";
        case Mode::Unified: return "unified";
    }
    return "unknown";
}

bool Mount::has(std::string_view controller) const {
    return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

const Mount* Hierarchy::find_v1(std::string_view controller) const {
    for (const auto& m : v1)
        if (m.has(controller)) return &m;
    return nullptr;
}

std::string unescape_mountinfo(std::string_view field) {
    auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
    std::string out;
    out.reserve(field.size());
    for (size_t i = 0; i < field.size(); ++i) {
        bool escape = field[i] == '\\' && field.size() - i > 3 && is_octal(field[i + 1]) &&
                      is_octal(field[i + 2]) && is_octal(field[i + 3]);
        if (escape) {
            out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                     (field[i + 3] - '0'));
            i += 3;
        } else {
            out += field[i];
        }
    }
    return out;
}

namespace {

std::vector<std::string> split(std::string_view text, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t end = text.find(sep, start);
        out.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return out;
}

std::vector<std::string> split_whitespace(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string word; in >> word;) out.push_back(word);
    return out;
}

// Mount flags that appear among a v1 cgroup mount's super options but are
// not controllers.
bool is_v1_flag(const std::string& opt) {
    static const char* const flags[] = {"rw",   "ro",           "noprefix",      "clone_children",
                                        "xattr", "cpuset_v2_mode", "favordynmods", "nofavordynmods",
                                        "none", "all"};
    for (const char* f : flags)
        if (opt == f) return true;
    // release_agent=..., but name=... is a named hierarchy and counts.
    return opt.find('=') != std::string::npos && opt.rfind("name=", 0) != 0;
}

std::vector<std::string> v1_controllers(const std::string& super_options) {
    std::vector<std::string> out;
    for (auto& opt : split(super_options, ','))
        if (!opt.empty() && !is_v1_flag(opt)) out.push_back(opt);
    return out;
}

struct MountinfoLine {
    std::string device;  // major:minor, one per hierarchy
    std::string root;
    std::string mount_point;
    std::string fstype;
    std::string super_options;
};

// Fields: id parent major:minor root mount_point options [optional...] - fstype source super_options
std::optional<MountinfoLine> parse_mountinfo_line(const std::string& line) {
    auto fields = split_whitespace(line);
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 6 || dash == fields.end() || dash - fields.begin() < 6 ||
        fields.end() - dash < 4)
        return std::nullopt;
    MountinfoLine m;
    m.device = fields[2];
    m.root = unescape_mountinfo(fields[3]);
    m.mount_point = unescape_mountinfo(fields[4]);
    m.fstype = *(dash + 1);
    m.super_options = *(dash + 3);
    return m;
}

// Keeps one mount per hierarchy: the first seen, unless a later one shows
// the hierarchy's root (a bind mount of a subtree is a worse choice).
void add_mount(std::vector<Mount>& mounts, std::map<std::string, size_t>& by_device,
               const MountinfoLine& line, Mount mount) {
    auto it = by_device.find(line.device);
    if (it == by_device.end()) {
        by_device[line.device] = mounts.size();
        mounts.push_back(std::move(mount));
    } else if (mounts[it->second].root != "/" && mount.root == "/") {
        mounts[it->second] = std::move(mount);
    }
}

struct ProcCgroupLine {
    std::string id;
    std::vector<std::string> controllers;
    std::string path;
};

std::vector<ProcCgroupLine> parse_proc_cgroup(const std::string& text) {
    std::vector<ProcCgroupLine> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        size_t a = line.find(':');
        size_t b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        ProcCgroupLine l;
        l.id = line.substr(0, a);
        std::string ctrls = line.substr(a + 1, b - a - 1);
        if (!ctrls.empty()) l.controllers = split(ctrls, ',');
        l.path = line.substr(b + 1);
        out.push_back(std::move(l));
    }
    return out;
}

// The process's cgroup as seen under the mount point, or "" when the mount
// shows a subtree that does not contain it.
std::string relative_to_mount_root(const std::string& cgroup, const std::string& root) {
    if (root == "/" || root.empty()) return cgroup;
    if (cgroup == root) return "/";
    if (cgroup.size() > root.size() && cgroup.compare(0, root.size(), root) == 0 &&
        cgroup[root.size()] == '/')
        return cgroup.substr(root.size());
    return {};
}

void fill_own_paths(Hierarchy& h, const std::string& self_cgroup_text) {
    for (const auto& line : parse_proc_cgroup(self_cgroup_text)) {
        if (line.id == "0" && line.controllers.empty()) {
            if (h.v2) h.v2->own_path = relative_to_mount_root(line.path, h.v2->root);
            continue;
        }
        for (auto& m : h.v1) {
            if (m.controllers.empty()) continue;
            bool match = std::find(line.controllers.begin(), line.controllers.end(),
                                   m.controllers.front()) != line.controllers.end();
            if (match) m.own_path = relative_to_mount_root(line.path, m.root);
        }
    }
}

}  // namespace

Hierarchy probe(const std::string& mountinfo_text, const std::string& self_cgroup_text,
                const std::string& v2_controllers_text) {
    Hierarchy h;
    std::vector<Mount> v2_mounts;
    std::map<std::string, size_t> v1_by_device, v2_by_device;
    std::istringstream in(mountinfo_text);
    for (std::string text; std::getline(in, text);) {
        auto line = parse_mountinfo_line(text);
        if (!line) continue;
        if (line->fstype == "cgroup") {
            Mount m{line->mount_point, line->root, v1_controllers(line->super_options), {}};
            if (!m.controllers.empty()) add_mount(h.v1, v1_by_device, *line, std::move(m));
        } else if (line->fstype == "cgroup2") {
            add_mount(v2_mounts, v2_by_device, *line, Mount{line->mount_point, line->root, {}, {}});
        }
    }
    if (!v2_mounts.empty()) {
        h.v2 = v2_mounts.front();
        h.v2->controllers = split_whitespace(v2_controllers_text);
    }
    if (h.v1.empty() && !h.v2) throw Error("cgroups: no cgroup filesystem is mounted");
    h.mode = h.v1.empty() ? Mode::Unified : (h.v2 ? Mode::Hybrid : Mode::Legacy);
    fill_own_paths(h, self_cgroup_text);
    return h;
}

Hierarchy probe_host() {
    std::string mountinfo = fs::read_file("/proc/self/mountinfo");
    std::string self_cgroup = fs::read_file("/proc/self/cgroup");
    Hierarchy h = probe(mountinfo, self_cgroup);
    if (h.v2) {
        try {
            h.v2->controllers = split_whitespace(fs::read_file(h.v2->mount_point + "/cgroup.controllers"));
        } catch (const Error&) {
            // An unreadable controller list only means no controller gets enabled.
        }
    }
    return h;
}

}  // namespace sandlock::cgroups
