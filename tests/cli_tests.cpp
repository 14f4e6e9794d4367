#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <CLI/CLI.hpp>
#include <csignal>

#include "runtime/cli/cli.hpp"
#include "runtime/cli/table.hpp"
#include "runtime/container/container.hpp"
#include "runtime/container/state.hpp"
#include "runtime/util/error.hpp"
#include "runtime/util/log.hpp"

namespace command_line {
using namespace sandlock;
}  // namespace command_line

BOOST_AUTO_TEST_SUITE(command_line)

static void add_exec_like_flags(CLI::App& sub) {
    static std::string cwd, user;
    static bool tty = false, detach = false;
    static std::vector<std::string> env;
    static std::string id;
    sub.add_option("--cwd", cwd);
    sub.add_option("-u,--user", user);
    sub.add_option("-e,--env", env);
    sub.add_flag("-t,--tty", tty);
    sub.add_flag("-d,--detach", detach);
    sub.add_option("id", id);
}

BOOST_AUTO_TEST_CASE(split_stops_at_the_command_after_the_id) {
    CLI::App sub{"exec"};
    add_exec_like_flags(sub);
    std::vector<std::string> args = {"--cwd", "/x", "-t", "-e", "A=1", "myid", "sh", "-c", "echo hi", "--tty"};
    auto cmd = sandlock::cli::split_off_command(sub, args, 1);
    BOOST_TEST(args == (std::vector<std::string>{"--cwd", "/x", "-t", "-e", "A=1", "myid"}),
               boost::test_tools::per_element());
    BOOST_TEST(cmd == (std::vector<std::string>{"sh", "-c", "echo hi", "--tty"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(split_handles_equals_form_and_double_dash) {
    CLI::App sub{"exec"};
    add_exec_like_flags(sub);
    std::vector<std::string> args = {"--user=1000:1000", "myid", "--", "ls", "-l"};
    auto cmd = sandlock::cli::split_off_command(sub, args, 1);
    BOOST_TEST(args.size() == 2u);
    BOOST_TEST(args.back() == "myid");
    BOOST_TEST(cmd == (std::vector<std::string>{"ls", "-l"}), boost::test_tools::per_element());

    std::vector<std::string> args2 = {"-d", "--", "myid", "ls"};
    auto cmd2 = sandlock::cli::split_off_command(sub, args2, 1);
    BOOST_TEST(args2 == (std::vector<std::string>{"-d"}), boost::test_tools::per_element());
    BOOST_TEST(cmd2 == (std::vector<std::string>{"myid", "ls"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(parse_signal_accepts_runc_forms) {
    BOOST_TEST(container::parse_signal("9") == SIGKILL);
    BOOST_TEST(container::parse_signal("KILL") == SIGKILL);
    BOOST_TEST(container::parse_signal("SIGKILL") == SIGKILL);
    BOOST_TEST(container::parse_signal("sigterm") == SIGTERM);
    BOOST_TEST(container::parse_signal("15") == SIGTERM);
    BOOST_TEST(container::parse_signal("USR1") == SIGUSR1);
    BOOST_TEST(container::parse_signal("RTMIN+1") == SIGRTMIN + 1);
}

BOOST_AUTO_TEST_CASE(parse_signal_rejects_unknown) {
    // numbers that overflow, RTMIN+ without a number or beyond SIGRTMAX: one error, never an
    // exception from the standard library
    for (const char* bad : {"FOO", "0", "65", "", "SIG", "99999999999", "-9", "RTMIN+x", "RTMIN+", "RTMIN+99", "RTMAX-99"}) {
        try {
            container::parse_signal(bad);
            BOOST_FAIL("accepted " << bad);
        } catch (const Error& e) {
            BOOST_TEST(std::string(e.what()) == "unknown signal \"" + std::string(bad) + "\"");
        }
    }
}

BOOST_AUTO_TEST_CASE(container_ids_follow_runc_rules) {
    for (const char* ok : {"a", "abc-1_2.3+x", "A"}) BOOST_CHECK_NO_THROW(container::validate_id(ok));
    BOOST_CHECK_EXCEPTION(container::validate_id(""), Error, [](const Error& e) {
        return std::string(e.what()) == "container id cannot be empty";
    });
    for (const char* bad : {"../x", "a/b", ".", "..", "a b", "x\n"}) {
        BOOST_CHECK_EXCEPTION(container::validate_id(bad), Error, [&](const Error& e) {
            return std::string(e.what()) == "invalid id format: \"" + std::string(bad) + "\"";
        });
    }
}

BOOST_AUTO_TEST_CASE(log_lines_are_logrus_shaped) {
    std::string json = log::format_line(log::Format::Json, "error", "boom \"x\"", "T");
    BOOST_TEST(json == "{\"level\":\"error\",\"msg\":\"boom \\\"x\\\"\",\"time\":\"T\"}\n");
    std::string text = log::format_line(log::Format::Text, "warning", "a b", "T");
    BOOST_TEST(text == "time=\"T\" level=warning msg=\"a b\"\n");
    std::string now = log::rfc3339_now();
    BOOST_TEST(now.size() == 30u);
    BOOST_TEST(now.back() == 'Z');
}

BOOST_AUTO_TEST_CASE(oci_state_has_runc_fields_in_order) {
    container::ContainerState st;
    st.id = "c1";
    st.pid = 42;
    st.bundle = "/b";
    st.rootfs = "/b/rootfs";
    st.created = "2026-01-01T00:00:00.000000000Z";
    auto running = container::oci_state(st, container::Status::Running);
    BOOST_TEST(running.dump() ==
               "{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"pid\":42,\"status\":\"running\","
               "\"bundle\":\"/b\",\"rootfs\":\"/b/rootfs\",\"created\":"
               "\"2026-01-01T00:00:00.000000000Z\",\"owner\":\"\"}");
    st.annotations["k"] = "v";
    auto stopped = container::oci_state(st, container::Status::Stopped);
    BOOST_TEST(stopped["pid"].get<int>() == 0);
    BOOST_TEST(stopped["status"].get<std::string>() == "stopped");
    BOOST_TEST(stopped["annotations"]["k"].get<std::string>() == "v");
}

BOOST_AUTO_TEST_CASE(table_pads_like_tabwriter) {
    sandlock::cli::Table t({"ID", "PID"});
    t.add({"a-very-long-container-id", "1"});
    std::string out = t.render();
    BOOST_TEST(out == "ID                         PID\na-very-long-container-id   1\n");
}

BOOST_AUTO_TEST_SUITE_END()
