#include "runtime/linux/seccomp.hpp"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <cstring>
#include <utility>

#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"
#include "runtime/util/unix_socket.hpp"

namespace sandlock::os {
namespace {

constexpr unsigned kMaxSyscallArgs = 6;
constexpr uint32_t kMaxErrnoRet = 0xffff;  // SECCOMP_RET_DATA is 16 bits
constexpr uint32_t kX32SyscallBit = 0x40000000;
const std::string kPath = ".linux.seccomp";

// ---- names ------------------------------------------------------------------

enum class Action { KillThread, KillProcess, Trap, Errno, Trace, Allow, Log, Notify };

struct ActionName {
    const char* name;
    Action action;
};
constexpr ActionName kActions[] = {
    {"SCMP_ACT_KILL", Action::KillThread},  {"SCMP_ACT_KILL_THREAD", Action::KillThread},
    {"SCMP_ACT_KILL_PROCESS", Action::KillProcess}, {"SCMP_ACT_TRAP", Action::Trap},
    {"SCMP_ACT_ERRNO", Action::Errno},      {"SCMP_ACT_TRACE", Action::Trace},
    {"SCMP_ACT_ALLOW", Action::Allow},      {"SCMP_ACT_LOG", Action::Log},
    {"SCMP_ACT_NOTIFY", Action::Notify},
};

struct OperatorName {
    const char* name;
    scmp_compare op;
};
constexpr OperatorName kOperators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE}, {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

struct ArchName {
    const char* name;
    uint32_t arch;  // 0: known name, but this libseccomp cannot filter for it
};
constexpr ArchName kArches[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
#ifdef SCMP_ARCH_LOONGARCH64
    {"SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64},
#else
    {"SCMP_ARCH_LOONGARCH64", 0},
#endif
};

struct FlagName {
    const char* name;
    unsigned flag;
};
constexpr FlagName kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

template <typename Table>
auto find_name(const Table& table, const std::string& name) -> decltype(&table[0]) {
    for (const auto& entry : table)
        if (name == entry.name) return &entry;
    return nullptr;
}

template <typename Table>
std::vector<std::string> sorted_names(const Table& table) {
    std::vector<std::string> names;
    for (const auto& entry : table) names.emplace_back(entry.name);
    std::sort(names.begin(), names.end());
    return names;
}

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

std::string index_path(const std::string& base, size_t i) {
    return base + "[" + std::to_string(i) + "]";
}

// ---- profile checks (paths in every message) ---------------------------------

Action parse_action(const std::string& name, const std::string& path) {
    if (name.empty()) throw Error(path + ": must be set");
    const ActionName* a = find_name(kActions, name);
    if (!a) throw Error(path + ": unknown action " + quoted(name));
    return a->action;
}

void check_errno_ret(const std::optional<uint32_t>& errno_ret, Action action,
                     const std::string& action_name, const std::string& path) {
    if (!errno_ret) return;
    // runtime-spec: an errno given to an action that cannot return one is an error.
    if (action != Action::Errno && action != Action::Trace)
        throw Error(path + ": only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not " +
                    action_name);
    if (*errno_ret > kMaxErrnoRet)
        throw Error(path + ": " + std::to_string(*errno_ret) + " out of range (at most " +
                    std::to_string(kMaxErrnoRet) + ")");
}

void check_args(const std::vector<spec::SeccompArg>& args, const std::string& path) {
    for (size_t k = 0; k < args.size(); ++k) {
        const std::string arg_path = index_path(path + ".args", k);
        if (!find_name(kOperators, args[k].op))
            throw Error(arg_path + ".op: unknown operator " + quoted(args[k].op));
        if (args[k].index >= kMaxSyscallArgs)
            throw Error(arg_path + ".index: " + std::to_string(args[k].index) +
                        " out of range (a syscall has 6 arguments, 0-5)");
    }
}

void check_syscall_entry(const spec::SeccompSyscall& entry, const std::string& path) {
    const Action action = parse_action(entry.action, path + ".action");
    check_errno_ret(entry.errno_ret, action, entry.action, path + ".errnoRet");
    if (entry.names.empty()) throw Error(path + ".names: must not be empty");
    for (size_t j = 0; j < entry.names.size(); ++j) {
        const std::string name_path = index_path(path + ".names", j);
        if (entry.names[j].empty()) throw Error(name_path + ": empty syscall name");
        // The init reports the listener fd with write(2) after loading (runc's rule).
        if (action == Action::Notify && entry.names[j] == "write")
            throw Error(name_path + ": SCMP_ACT_NOTIFY cannot be used for the write syscall");
    }
    check_args(entry.args, path);
}

void check_profile(const spec::Seccomp& s) {
    const Action def = parse_action(s.default_action, kPath + ".defaultAction");
    if (def == Action::Notify)
        throw Error(kPath + ".defaultAction: SCMP_ACT_NOTIFY cannot be used as default action");
    check_errno_ret(s.default_errno_ret, def, s.default_action, kPath + ".defaultErrnoRet");
    for (size_t i = 0; i < s.architectures.size(); ++i)
        if (!find_name(kArches, s.architectures[i]))
            throw Error(index_path(kPath + ".architectures", i) + ": unknown architecture " +
                        quoted(s.architectures[i]));
    for (size_t i = 0; i < s.flags.size(); ++i)
        if (!find_name(kFlags, s.flags[i]))
            throw Error(index_path(kPath + ".flags", i) + ": unknown flag " + quoted(s.flags[i]));
    for (size_t i = 0; i < s.syscalls.size(); ++i)
        check_syscall_entry(s.syscalls[i], index_path(kPath + ".syscalls", i));
    if (seccomp_uses_notify(s) && s.listener_path.empty())
        throw Error(kPath +
                    ".listenerPath: seccomp listenerPath is not set (SCMP_ACT_NOTIFY is used)");
}

// ---- libseccomp helpers ---------------------------------------------------------

uint32_t scmp_action(Action action, const std::optional<uint32_t>& errno_ret) {
    switch (action) {
    case Action::KillThread: return SCMP_ACT_KILL_THREAD;
    case Action::KillProcess: return SCMP_ACT_KILL_PROCESS;
    case Action::Trap: return SCMP_ACT_TRAP;
    case Action::Errno: return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
    case Action::Trace: return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
    case Action::Allow: return SCMP_ACT_ALLOW;
    case Action::Log: return SCMP_ACT_LOG;
    case Action::Notify: return SCMP_ACT_NOTIFY;
    }
    return SCMP_ACT_KILL_PROCESS;
}

Action action_of(const std::string& name) { return find_name(kActions, name)->action; }

void set_attr(scmp_filter_ctx ctx, scmp_filter_attr attr, uint32_t value, const std::string& what) {
    int rc = seccomp_attr_set(ctx, attr, value);
    if (rc < 0) throw SystemError(what, -rc);
}

std::string read_all(int fd) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size < 0) throw_errno("seccomp: lseek memfd");
    std::string data(static_cast<size_t>(size), '\0');
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::pread(fd, data.data() + off, data.size() - off, static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("seccomp: read memfd");
        if (n == 0) break;
        off += static_cast<size_t>(n);
    }
    data.resize(off);
    return data;
}

UniqueFd make_memfd(const char* name) {
    UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
    if (!fd) throw_errno(std::string("seccomp: memfd_create ") + name);
    return fd;
}

// Args of one entry: one rule (AND) unless two share an index, then one rule
// per arg (OR) — runc's behaviour, kept for compatibility.
void add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const std::string& name,
              const std::vector<spec::SeccompArg>& args, const std::string& path) {
    std::vector<scmp_arg_cmp> cmps;
    unsigned per_index[kMaxSyscallArgs] = {};
    bool shared_index = false;
    for (const auto& a : args) {
        cmps.push_back(scmp_arg_cmp{a.index, find_name(kOperators, a.op)->op, a.value, a.value_two});
        shared_index |= ++per_index[a.index] > 1;
    }
    auto add = [&](unsigned count, const scmp_arg_cmp* arr) {
        int rc = seccomp_rule_add_array(ctx, action, nr, count, arr);
        if (rc < 0)
            throw SystemError(path + ": cannot add rule for syscall " + quoted(name), -rc);
    };
    if (!shared_index) {
        add(static_cast<unsigned>(cmps.size()), cmps.data());
        return;
    }
    for (const auto& c : cmps) add(1, &c);
}

// ---- the ENOSYS stub ---------------------------------------------------------------

// A tiny forward-only BPF assembler with labels.
class BpfAssembler {
public:
    static constexpr int kNext = -1;  // fall through

    int label() {
        labels_.push_back(-1);
        return static_cast<int>(labels_.size()) - 1;
    }
    void bind(int l) { labels_[static_cast<size_t>(l)] = static_cast<int>(insns_.size()); }
    void load_word(uint32_t offset) { insns_.push_back({BPF_LD | BPF_W | BPF_ABS, offset, kNext, kNext, false}); }
    void jump_if(uint16_t op, uint32_t k, int jt, int jf) {
        insns_.push_back({static_cast<uint16_t>(BPF_JMP | op | BPF_K), k, jt, jf, false});
    }
    void jump(int target) { insns_.push_back({BPF_JMP | BPF_JA, 0, target, kNext, true}); }
    void ret(uint32_t k) { insns_.push_back({BPF_RET | BPF_K, k, kNext, kNext, false}); }

    std::vector<sock_filter> assemble() const {
        std::vector<sock_filter> out;
        for (size_t i = 0; i < insns_.size(); ++i) {
            const Insn& in = insns_[i];
            sock_filter f{in.code, 0, 0, in.k};
            if (in.always) {
                f.k = offset(i, in.jt);
            } else if (BPF_CLASS(in.code) == BPF_JMP) {
                f.jt = short_offset(i, in.jt);
                f.jf = short_offset(i, in.jf);
            }
            out.push_back(f);
        }
        return out;
    }

private:
    struct Insn {
        uint16_t code;
        uint32_t k;
        int jt, jf;
        bool always;  // BPF_JA: the target is in jt
    };
    uint32_t offset(size_t at, int l) const {
        if (l == kNext) return 0;
        int target = labels_[static_cast<size_t>(l)];
        if (target <= static_cast<int>(at)) throw Error("seccomp: internal error: backward BPF jump");
        return static_cast<uint32_t>(target - static_cast<int>(at) - 1);
    }
    uint8_t short_offset(size_t at, int l) const {
        uint32_t off = offset(at, l);
        if (off > 255) throw Error("seccomp: internal error: BPF jump too long");
        return static_cast<uint8_t>(off);
    }
    std::vector<Insn> insns_;
    std::vector<int> labels_;
};

// Largest syscall numbers the profile names, per kernel AUDIT_ARCH value;
// x86_64 carries two modes (x32 syscalls have bit 30 set).
struct ArchMax {
    std::optional<uint32_t> native;
    std::optional<uint32_t> x32;
};

uint32_t audit_arch_of(uint32_t scmp_arch) {
    return scmp_arch == SCMP_ARCH_X32 ? AUDIT_ARCH_X86_64 : scmp_arch;
}

std::optional<uint32_t> largest_syscall(const spec::Seccomp& s, uint32_t scmp_arch) {
    std::optional<uint32_t> largest;
    for (const auto& entry : s.syscalls)
        for (const auto& name : entry.names) {
            int nr = seccomp_syscall_resolve_name_arch(scmp_arch, name.c_str());
            if (nr < 0) continue;  // unknown here, or a pseudo number (multiplexed)
            if (!largest || static_cast<uint32_t>(nr) > *largest) largest = static_cast<uint32_t>(nr);
        }
    return largest;
}

std::map<uint32_t, ArchMax> largest_syscalls(const spec::Seccomp& s) {
    std::vector<uint32_t> arches{seccomp_arch_native()};  // runc always adds the native arch
    for (const auto& name : s.architectures) {
        uint32_t a = find_name(kArches, name)->arch;
        if (a != 0) arches.push_back(a);
    }
    std::map<uint32_t, ArchMax> result;
    for (uint32_t arch : arches) {
        std::optional<uint32_t> nr = largest_syscall(s, arch);
        if (!nr) continue;
        ArchMax& m = result[audit_arch_of(arch)];
        (arch == SCMP_ARCH_X32 ? m.x32 : m.native) = nr;
    }
    return result;
}

bool default_is_permissive(const spec::Seccomp& s) {
    Action a = action_of(s.default_action);
    // A tracer is expected to handle new syscalls itself, as runc reasons.
    if (a == Action::Allow || a == Action::Log || a == Action::Trace) return true;
    // Already ENOSYS for everything unlisted: the stub would change nothing.
    return a == Action::Errno && s.default_errno_ret.value_or(EPERM) == ENOSYS;
}

void emit_arch_section(BpfAssembler& as, uint32_t audit_arch, const ArchMax& m, int enosys,
                       int filter) {
    as.load_word(offsetof(seccomp_data, nr));
    // s390 multiplexes unknown large syscalls through number 0 (setup(2)).
    if (audit_arch == AUDIT_ARCH_S390 || audit_arch == AUDIT_ARCH_S390X)
        as.jump_if(BPF_JEQ, 0, enosys, BpfAssembler::kNext);
    if (audit_arch != AUDIT_ARCH_X86_64) {
        as.jump_if(BPF_JGT, *m.native, enosys, filter);
        return;
    }
    if (m.native && m.x32) {
        int x32 = as.label();
        as.jump_if(BPF_JSET, kX32SyscallBit, x32, BpfAssembler::kNext);
        as.jump_if(BPF_JGT, *m.native, enosys, filter);
        as.bind(x32);
        as.jump_if(BPF_JGT, *m.x32, enosys, filter);
    } else if (m.native) {
        as.jump_if(BPF_JSET, kX32SyscallBit, filter, BpfAssembler::kNext);
        as.jump_if(BPF_JGT, *m.native, enosys, filter);
    } else {
        as.jump_if(BPF_JSET, kX32SyscallBit, BpfAssembler::kNext, filter);
        as.jump_if(BPF_JGT, *m.x32, enosys, filter);
    }
}

// Prepended to libseccomp's program: per arch, a syscall number above the
// profile's largest returns ENOSYS; anything else falls into the filter.
std::vector<sock_filter> build_enosys_stub(const spec::Seccomp& s) {
    if (default_is_permissive(s)) return {};
    const std::map<uint32_t, ArchMax> arches = largest_syscalls(s);
    if (arches.empty()) return {};

    BpfAssembler as;
    const int enosys = as.label();
    const int filter = as.label();
    std::map<uint32_t, int> sections;
    as.load_word(offsetof(seccomp_data, arch));
    for (const auto& [audit_arch, m] : arches) {
        sections[audit_arch] = as.label();
        as.jump_if(BPF_JEQ, audit_arch, sections[audit_arch], BpfAssembler::kNext);
    }
    as.jump(filter);
    for (const auto& [audit_arch, m] : arches) {
        as.bind(sections[audit_arch]);
        emit_arch_section(as, audit_arch, m, enosys, filter);
    }
    as.bind(enosys);
    as.ret(SCMP_ACT_ERRNO(ENOSYS));
    as.bind(filter);
    return as.assemble();
}

using CtxPtr = std::unique_ptr<void, decltype(&seccomp_release)>;

}  // namespace

// ---- names for `features` -------------------------------------------------------

std::vector<std::string> seccomp_known_actions() { return sorted_names(kActions); }
std::vector<std::string> seccomp_known_operators() { return sorted_names(kOperators); }
std::vector<std::string> seccomp_known_architectures() { return sorted_names(kArches); }
std::vector<std::string> seccomp_known_flags() { return sorted_names(kFlags); }

std::vector<std::string> seccomp_supported_flags() {
    std::vector<std::string> out;
    for (const auto& f : kFlags)
        if (f.flag == SECCOMP_FILTER_FLAG_TSYNC || kernel_supports_filter_flag(f.flag))
            out.emplace_back(f.name);
    std::sort(out.begin(), out.end());
    return out;
}

bool seccomp_enabled(const spec::Seccomp& s) {
    return !s.default_action.empty() || !s.syscalls.empty();
}

bool seccomp_uses_notify(const spec::Seccomp& s) {
    return std::any_of(s.syscalls.begin(), s.syscalls.end(), [](const spec::SeccompSyscall& e) {
        return e.action == "SCMP_ACT_NOTIFY" && !e.names.empty();
    });
}

void validate_seccomp(const spec::Seccomp& s) {
    if (!seccomp_enabled(s)) return;
    SeccompProgram program(s);
    std::vector<sock_filter> prog = program.bpf();
    if (prog.size() > BPF_MAXINSNS)
        throw Error(kPath + ": the filter has " + std::to_string(prog.size()) +
                    " BPF instructions, the kernel allows " + std::to_string(BPF_MAXINSNS));
    for (const auto& name : program.ignored_syscalls())
        log::debug("unknown seccomp syscall " + quoted(name) + " ignored");
}

// ---- raw loader ---------------------------------------------------------------------

std::vector<sock_filter> export_bpf(scmp_filter_ctx ctx) {
    UniqueFd fd = make_memfd("seccomp-bpf");
    int rc = seccomp_export_bpf(ctx, fd.get());
    if (rc < 0) throw SystemError("seccomp: export BPF", -rc);
    std::string raw = read_all(fd.get());
    if (raw.empty() || raw.size() % sizeof(sock_filter) != 0)
        throw Error("seccomp: libseccomp exported " + std::to_string(raw.size()) +
                    " bytes, not a whole BPF program");
    std::vector<sock_filter> prog(raw.size() / sizeof(sock_filter));
    std::memcpy(prog.data(), raw.data(), raw.size());
    return prog;
}

UniqueFd install_bpf(const std::vector<sock_filter>& prog, unsigned flags) {
    if (prog.empty() || prog.size() > BPF_MAXINSNS)
        throw Error("load seccomp filter: " + std::to_string(prog.size()) +
                    " BPF instructions (1 to " + std::to_string(BPF_MAXINSNS) + " allowed)");
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), const_cast<sock_filter*>(prog.data())};
    long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    if (rc < 0) {
        if (errno == EACCES)
            throw SystemError("load seccomp filter (needs no_new_privs or CAP_SYS_ADMIN)", errno);
        throw_errno("load seccomp filter (flags " + std::to_string(flags) + ")");
    }
    if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) return UniqueFd(static_cast<int>(rc));
    return {};
}

bool kernel_supports_filter_flag(unsigned flag) {
    unsigned flags = flag;
    if (flag & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    // Known flags pass the kernel's flag check and then fail copying the NULL program.
    long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr);
    return rc < 0 && errno == EFAULT;
}

// ---- SeccompProgram -------------------------------------------------------------

SeccompProgram::SeccompProgram(const spec::Seccomp& s) {
    check_profile(s);
    const uint32_t def = scmp_action(action_of(s.default_action), s.default_errno_ret);
    CtxPtr ctx(seccomp_init(def), &seccomp_release);
    if (!ctx) throw Error(kPath + ".defaultAction: libseccomp cannot use " + s.default_action);

    // no_new_privs is the caller's business; real errno values from seccomp_load.
    set_attr(ctx.get(), SCMP_FLTATR_CTL_NNP, 0, "seccomp: clear no_new_privs attribute");
    set_attr(ctx.get(), SCMP_FLTATR_API_SYSRAWRC, 1, "seccomp: set raw return codes");

    for (size_t i = 0; i < s.architectures.size(); ++i) {
        uint32_t arch = find_name(kArches, s.architectures[i])->arch;
        if (arch == 0) {
            log::debug("seccomp: architecture " + s.architectures[i] + " not supported by libseccomp, skipped");
            continue;
        }
        int rc = seccomp_arch_add(ctx.get(), arch);
        const std::string path = index_path(kPath + ".architectures", i);
        // One BPF program cannot serve arches of both byte orders (libseccomp: EDOM).
        if (rc == -EDOM)
            throw Error(path + ": " + s.architectures[i] +
                        " cannot share a filter with the native architecture (byte order differs)");
        if (rc < 0 && rc != -EEXIST)  // EEXIST: the native arch is always there
            throw SystemError(path + ": cannot add architecture " + s.architectures[i], -rc);
    }

    for (size_t i = 0; i < s.flags.size(); ++i) {
        const std::string path = index_path(kPath + ".flags", i);
        const unsigned flag = find_name(kFlags, s.flags[i])->flag;
        if (flag == SECCOMP_FILTER_FLAG_LOG) {
            set_attr(ctx.get(), SCMP_FLTATR_CTL_LOG, 1, path + ": " + s.flags[i] + " not supported");
            log_ = true;
        } else if (flag == SECCOMP_FILTER_FLAG_SPEC_ALLOW) {
            set_attr(ctx.get(), SCMP_FLTATR_CTL_SSB, 1, path + ": " + s.flags[i] + " not supported");
            spec_allow_ = true;
        } else if (flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
            wait_killable_ = true;  // libseccomp 2.5 lacks it: applied by the raw loader
        }
        // SECCOMP_FILTER_FLAG_TSYNC: ignored, as runc does (init is single-threaded).
    }

    size_t rule_count = 0;
    for (const auto& e : s.syscalls) rule_count += e.names.size();
    // libseccomp's binary tree pays off on long profiles; <= 2.5.4 misbehaves with 0 rules.
    if (rule_count > 32) seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);

    for (size_t i = 0; i < s.syscalls.size(); ++i) {
        const spec::SeccompSyscall& entry = s.syscalls[i];
        const std::string path = index_path(kPath + ".syscalls", i);
        const uint32_t action = scmp_action(action_of(entry.action), entry.errno_ret);
        for (size_t j = 0; j < entry.names.size(); ++j) {
            const std::string& name = entry.names[j];
            int nr = seccomp_syscall_resolve_name(name.c_str());
            if (nr == __NR_SCMP_ERROR) {
                ignored_.push_back(name);
                continue;
            }
            // libseccomp refuses a rule that repeats the default action; it is a no-op.
            if (action == def) continue;
            add_rule(ctx.get(), action, nr, name, entry.args, index_path(path + ".names", j));
        }
    }

    uses_notify_ = seccomp_uses_notify(s);
    stub_ = build_enosys_stub(s);
    ctx_ = ctx.release();
}

SeccompProgram::~SeccompProgram() {
    if (ctx_) seccomp_release(ctx_);
}

SeccompProgram::SeccompProgram(SeccompProgram&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)),
      uses_notify_(other.uses_notify_),
      wait_killable_(other.wait_killable_),
      log_(other.log_),
      spec_allow_(other.spec_allow_),
      ignored_(std::move(other.ignored_)),
      stub_(std::move(other.stub_)) {}

SeccompProgram& SeccompProgram::operator=(SeccompProgram&& other) noexcept {
    if (this != &other) {
        if (ctx_) seccomp_release(ctx_);
        ctx_ = std::exchange(other.ctx_, nullptr);
        uses_notify_ = other.uses_notify_;
        wait_killable_ = other.wait_killable_;
        log_ = other.log_;
        spec_allow_ = other.spec_allow_;
        ignored_ = std::move(other.ignored_);
        stub_ = std::move(other.stub_);
    }
    return *this;
}

unsigned SeccompProgram::filter_flags() const {
    unsigned flags = 0;
    if (log_) flags |= SECCOMP_FILTER_FLAG_LOG;
    if (spec_allow_) flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    if (uses_notify_) {
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // Only meaningful with a listener; skipped on kernels older than 5.19.
        if (wait_killable_ && kernel_supports_filter_flag(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV))
            flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    return flags;
}

std::vector<sock_filter> SeccompProgram::bpf() const {
    std::vector<sock_filter> prog = stub_;
    std::vector<sock_filter> filter = export_bpf(ctx_);
    prog.insert(prog.end(), filter.begin(), filter.end());
    return prog;
}

std::string SeccompProgram::pfc() const {
    UniqueFd fd = make_memfd("seccomp-pfc");
    int rc = seccomp_export_pfc(ctx_, fd.get());
    if (rc < 0) throw SystemError("seccomp: export PFC", -rc);
    return read_all(fd.get());
}

UniqueFd SeccompProgram::load(Loader loader) const {
    if (loader == Loader::Raw) return install_bpf(bpf(), filter_flags());
    if (wait_killable_)
        throw Error("load seccomp filter: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs the raw loader");
    int rc = seccomp_load(ctx_);
    if (rc < 0) throw SystemError("load seccomp filter", -rc);
    if (!uses_notify_) return {};
    // libseccomp 2.5 keeps the listener in its global state; we take it over.
    int fd = seccomp_notify_fd(ctx_);
    return UniqueFd(fd >= 0 ? fd : -1);
}

UniqueFd install_seccomp(const spec::Seccomp& s) { return SeccompProgram(s).load(); }

// ---- listenerPath ---------------------------------------------------------------

nlohmann::json container_process_state(const nlohmann::json& state, int pid,
                                       const std::string& metadata) {
    // specs-go State: pid and annotations are omitempty.
    nlohmann::json oci_state = nlohmann::json::object();
    for (const char* key : {"ociVersion", "id", "status", "pid", "bundle", "annotations"}) {
        if (!state.is_object() || !state.contains(key)) continue;
        const nlohmann::json& v = state.at(key);
        if (std::string(key) == "pid" && v == 0) continue;
        if (std::string(key) == "annotations" && v.empty()) continue;
        oci_state[key] = v;
    }
    nlohmann::json j = nlohmann::json::object();
    j["ociVersion"] = spec::kOciVersion;
    j["fds"] = nlohmann::json::array({"seccompFd"});
    j["pid"] = pid;
    if (!metadata.empty()) j["metadata"] = metadata;
    j["state"] = std::move(oci_state);
    return j;
}

void send_listener_fd(const std::string& listener_path, const std::string& state_json_with_fds,
                      int fd) {
    UniqueFd sock;
    try {
        sock = unix_socket::connect_stream(listener_path);
    } catch (const Error& e) {
        throw Error(std::string("failed to connect with seccomp agent specified in the seccomp profile: ") +
                    e.what());
    }
    try {
        unix_socket::send_with_fd(sock.get(), state_json_with_fds, fd);
    } catch (const Error& e) {
        throw Error("cannot send seccomp fd to " + listener_path + ": " + e.what());
    }
}

}  // namespace sandlock::os
