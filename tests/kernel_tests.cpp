// The real side of the kernel seam (runtime/linux/kernel.hpp), without root: what the
// fake kernel (tests/fake_kernel.hpp) assumes of it -- a started child is ours to wait
// for once, killing is SIGKILL, kill_and_reap returns for a process that is not our child
// once it is a zombie, a start time only while the process exists, the fifo's mode.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "runtime/linux/kernel.hpp"
#include "runtime/util/error.hpp"
#include "tests/support.hpp"

namespace real_kernel {
using namespace sandlock;

// A pipe whose read end yields the pid a child writes.
struct PidPipe {
    UniqueFd read, write;
    PidPipe() {
        int p[2];
        BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        read = UniqueFd(p[0]);
        write = UniqueFd(p[1]);
    }
    pid_t receive() const {
        pid_t pid = 0;
        BOOST_REQUIRE(::read(read.get(), &pid, sizeof pid) == static_cast<ssize_t>(sizeof pid));
        return pid;
    }
};

}  // namespace real_kernel

BOOST_AUTO_TEST_SUITE(real_kernel)

BOOST_AUTO_TEST_CASE(a_started_child_runs_its_body_and_is_waited_for_once) {
    os::Kernel& k = os::real_kernel();
    const pid_t pid = k.start_child(-1, [] { ::_exit(7); });
    const int status = k.wait_child(pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 7);
    BOOST_TEST(k.wait_child(pid) == -1);
    BOOST_TEST(!k.start_time(pid).has_value());
}

BOOST_AUTO_TEST_CASE(kill_is_sigkill_and_a_running_process_has_a_start_time) {
    os::Kernel& k = os::real_kernel();
    const pid_t pid = k.start_child(-1, [] {
        ::pause();
        ::_exit(0);
    });
    BOOST_TEST(k.start_time(pid).has_value());
    k.kill(pid);
    const int status = k.wait_child(pid);
    BOOST_TEST(WIFSIGNALED(status));
    BOOST_TEST(WTERMSIG(status) == SIGKILL);
}

// init is stage 1's child: create can only see it gone (a zombie), never reap it.
BOOST_AUTO_TEST_CASE(kill_and_reap_returns_once_a_process_not_ours_is_a_zombie) {
    os::Kernel& k = os::real_kernel();
    PidPipe pipe;
    const pid_t stage1 = k.start_child(-1, [&] {
        const pid_t init = ::fork();
        if (init == 0) {
            ::pause();
            ::_exit(0);
        }
        (void)!::write(pipe.write.get(), &init, sizeof init);
        ::pause();  // never reaps init
        ::_exit(0);
    });
    const pid_t init = pipe.receive();
    k.kill_and_reap(init);
    std::string stat = fs::read_file("/proc/" + std::to_string(init) + "/stat");
    BOOST_TEST(stat.substr(stat.rfind(')') + 2, 1) == "Z");
    k.kill(stage1);
    k.wait_child(stage1);
    k.kill_and_reap(-1);  // no init recorded: nothing to do
}

BOOST_AUTO_TEST_CASE(the_exec_fifo_is_0622_whatever_the_umask) {
    testing::TempDir tmp{"sandlock-kernel-test"};
    const std::string path = tmp.path + "/exec.fifo";
    const mode_t old = ::umask(077);
    UniqueFd fd = os::real_kernel().make_exec_fifo(path);
    ::umask(old);
    BOOST_TEST(fd.valid());
    struct stat st {};
    BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
    BOOST_TEST(S_ISFIFO(st.st_mode));
    BOOST_TEST((st.st_mode & 07777) == 0622u);
    BOOST_CHECK_THROW(os::real_kernel().make_exec_fifo(path), SystemError);
}

BOOST_AUTO_TEST_SUITE_END()
