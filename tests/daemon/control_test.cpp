// The operator controls end to end: the real daemon (enforce mode, so a flood is deferred) and
// the real commands on its control socket. A release and an allow act from the very next policy
// request; an allow survives a restart; status lists the open episodes; every command leaves an
// audit row with the caller's user name; a caller who is not root, the daemon's user or in
// control.group is refused, by the socket's mode and by the daemon's peer check.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "tests/daemon/binary_harness.hpp"
#include "tests/server/test_support.hpp"

namespace rcptguard::server_test {
namespace {

constexpr const char* enforce = "detection.mode=enforce";

bool deferred(const std::string& reply) {
  return reply.rfind("action=DEFER_IF_PERMIT ", 0) == 0;
}

std::string current_user() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw == nullptr ? "" : pw->pw_name;
}

class ControlTest : public RcptguardBinary {
 protected:
  /// The daemon with `overrides`, its control socket bound (before the policy sockets the
  /// harness waits for).
  std::unique_ptr<child_process> start_controlled_daemon(
      const std::vector<std::string>& overrides) {
    auto daemon = start_daemon_with_overrides(overrides);
    if (daemon && !daemon->wait_for_err("CONTROL LISTEN")) {
      ADD_FAILURE() << "no control socket; the daemon's log:\n" << daemon->err();
      return nullptr;
    }
    return daemon;
  }

  /// A control command with the daemon's settings (-c/-o as the daemon got them).
  command_result control(std::vector<std::string> args) {
    args.insert(args.end(),
                {"-c", dir_.file("empty.toml"), "-o", "control.socket=" + control_path()});
    return run(args);
  }

  /// The same, as `user` (from root): fork, drop to its uid and gid, exec the binary.
  command_result control_as(const passwd& user, std::vector<std::string> args) {
    args.insert(args.end(),
                {"-c", dir_.file("empty.toml"), "-o", "control.socket=" + control_path()});
    std::vector<std::string> argv_text{binary};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string n = std::to_string(++commands_);
    const std::string out = dir_.file("as" + n + ".out");
    const std::string err = dir_.file("as" + n + ".err");
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls until exec.
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0 || ::setgroups(0, nullptr) != 0 ||
          ::setgid(user.pw_gid) != 0 || ::setuid(user.pw_uid) != 0) {
        ::_exit(126);
      }
      ::execv(binary, argv.data());
      ::_exit(127);
    }
    command_result result;
    int status = 0;
    const bool done = eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 10s);
    if (!done) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    } else if (WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    result.out = read_file(out);
    result.err = read_file(err);
    return result;
  }

  std::size_t audit_rows(const std::string& where) {
    return count_rows(dir_.file("db"), "SELECT count(*) FROM operator_action WHERE " + where);
  }
};

TEST_F(ControlTest, ReleaseAndAllowActFromTheNextRequestAndAllowSurvivesARestart) {
  auto daemon = start_controlled_daemon({enforce});
  ASSERT_TRUE(daemon);
  EXPECT_TRUE(daemon->wait_for_err("CONTROL LISTEN unix:" + control_path())) << daemon->err();
  test_client client = test_client::tcp(port_);

  // bob: flooded until deferred, then released: the next request is answered DUNNO.
  auto replies = flood(client, "bob@example.test", 0, 35);
  ASSERT_TRUE(deferred(replies.back())) << replies.back();
  const command_result released =
      control({"release", "Bob@Example.test", "--reason", "user confirmed: newsletter signup"});
  EXPECT_EQ(released.exit_code, 0) << released.err;
  EXPECT_NE(released.out.find("released"), std::string::npos) << released.out;
  EXPECT_EQ(flood(client, "bob@example.test", 35, 1).front(), dunno_reply);

  // carol: flooded until deferred, then allowed: DUNNO from the next request, and still counted.
  replies = flood(client, "carol@example.test", 100, 35);
  ASSERT_TRUE(deferred(replies.back())) << replies.back();
  const command_result allowed =
      control({"allow", "carol@example.test", "--until", "7d", "--reason", "ticket 4711"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_NE(allowed.out.find("allowed recipient carol@example.test until "), std::string::npos)
      << allowed.out;
  EXPECT_EQ(flood(client, "carol@example.test", 135, 1).front(), dunno_reply);

  // status: carol's episode is still open (an allow answers DUNNO, the flood goes on), bob's
  // is not; carol's entry is listed.
  const command_result status = control({"status", "--format", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const json s = json::parse(status.out, nullptr, false);
  ASSERT_TRUE(s.is_object()) << status.out;
  ASSERT_EQ(s["open_episodes"].size(), 1U) << status.out;
  EXPECT_EQ(s["open_episodes"][0]["recipient"], "carol@example.test");
  EXPECT_EQ(s["open_episodes"][0]["level"], "defer");
  EXPECT_EQ(s["operator_allows"][0]["address"], "carol@example.test");
  EXPECT_EQ(s["operator_allows"][0]["reason"], "ticket 4711");
  EXPECT_GE(s["requests"].get<int>(), 140);
  EXPECT_GE(s["verdicts"]["defer"].get<int>(), 2);
  const command_result text = control({"status"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("carol@example.test"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("open episodes: 1"), std::string::npos) << text.out;

  // Every command left an audit row with the caller's name; bob's episode says who ended it.
  const std::string me = current_user();
  EXPECT_TRUE(eventually([&] {
    return audit_rows("user = '" + me +
                      "' AND result = 'ok' AND command IN ('release', 'allow', "
                      "'status')") == 4;
  })) << daemon->err();
  EXPECT_EQ(audit_rows("command = 'release' AND address = 'bob@example.test' AND reason = 'user "
                       "confirmed: newsletter signup'"),
            1U);
  EXPECT_TRUE(eventually([&] {
    return count_rows(dir_.file("db"),
                      "SELECT count(*) FROM v_alerts WHERE recipient = 'bob@example.test' AND "
                      "closed_by = 'operator'") == 1;
  }));
  EXPECT_NE(daemon->err().find("CONTROL " + me), std::string::npos) << daemon->err();

  // A restart: carol's entry comes back from the database, and bob's counters stay reset (his
  // minute rows up to the release are not restored, or his 36 messages would defer him again).
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  daemon = start_controlled_daemon({enforce});
  ASSERT_TRUE(daemon);
  EXPECT_TRUE(daemon->wait_for_err("1 operator allow entries")) << daemon->err();
  test_client again = test_client::tcp(port_);
  EXPECT_EQ(flood(again, "carol@example.test", 136, 1).front(), dunno_reply);
  EXPECT_EQ(flood(again, "bob@example.test", 36, 1).front(), dunno_reply);

  // unallow: judged again at once (the flood is still in carol's windows).
  const command_result removed =
      control({"unallow", "carol@example.test", "--reason", "ticket closed"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_TRUE(deferred(flood(again, "carol@example.test", 137, 1).front()));
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  EXPECT_EQ(count_rows(dir_.file("db"), "SELECT count(*) FROM operator_allow"), 0U);
}

TEST_F(ControlTest, ResetZeroesTheCountsAndFailuresExitOne) {
  auto daemon = start_controlled_daemon({enforce});
  ASSERT_TRUE(daemon);
  test_client client = test_client::tcp(port_);
  flood(client, "dave@example.test", 0, 20);
  const command_result reset = control({"reset", "dave@example.test", "--reason", "test"});
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_NE(reset.out.find("zeroed"), std::string::npos) << reset.out;
  // Without the reset the 26th message of the minute is deferred (volume and 26 senders); after
  // it, 20 more stay below that.
  for (const std::string& reply : flood(client, "dave@example.test", 20, 20)) {
    EXPECT_FALSE(deferred(reply)) << reply;
  }
  // Nothing to release: exit 1, the reason on stderr, and an audit row saying it failed.
  const command_result nothing = control({"release", "erin@example.test", "--reason", "test"});
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_NE(nothing.err.find("no open episode for erin@example.test"), std::string::npos)
      << nothing.err;
  EXPECT_TRUE(
      eventually([&] { return audit_rows("command = 'release' AND result = 'failed'") == 1; }));
}

TEST_F(ControlTest, UsageErrorsExitTwoAndNoDaemonExitsOne) {
  write_file(dir_.file("empty.toml"), "");
  EXPECT_EQ(control({"allow", "bob@example.test"}).exit_code, 2);  // no --reason
  EXPECT_EQ(control({"allow", "--reason", "x"}).exit_code, 2);     // no address
  EXPECT_EQ(control({"allow", "bob", "--reason", "x"}).exit_code, 2);
  const command_result until =
      control({"allow", "bob@example.test", "--until", "next week", "--reason", "x"});
  EXPECT_EQ(until.exit_code, 2);
  EXPECT_NE(until.err.find("--until"), std::string::npos) << until.err;
  EXPECT_EQ(control({"allow", "bob@example.test", "--until", "2001-01-01T00:00Z", "--reason", "x"})
                .exit_code,
            2);
  EXPECT_EQ(control({"status", "--format", "xml"}).exit_code, 2);
  EXPECT_EQ(control({"reset", "bob@example.test", "--sender", "--reason", "x"}).exit_code, 2);

  const command_result none = control({"status"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no daemon listening on " + control_path() +
                          " (is rcptguard serve running? control.socket)"),
            std::string::npos)
      << none.err;
  const command_result off =
      run({"status", "-c", dir_.file("empty.toml"), "-o", "control.socket="});
  EXPECT_EQ(off.exit_code, 1);
  EXPECT_NE(off.err.find("control.socket is empty"), std::string::npos) << off.err;
}

TEST_F(ControlTest, CheckConfigAcceptsTheControlKeys) {
  write_file(dir_.file("empty.toml"), "");
  const command_result ok = run({"check-config", "-c", dir_.file("empty.toml"), "-o",
                                 "control.socket=/run/rcptguard/control.sock", "-o",
                                 "control.socket_mode=0600", "-o", "control.group=root"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const command_result bad = run({"check-config", "-c", dir_.file("empty.toml"), "-o",
                                  "control.group=no-such-group-rcptguard"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("control.group"), std::string::npos) << bad.err;
}

TEST_F(ControlTest, ACallerWhoIsNotAllowedIsRefused) {
  const passwd* found = ::getpwnam("nobody");
  if (::geteuid() != 0 || found == nullptr) {
    GTEST_SKIP() << "needs root (to run the command as another user) and a 'nobody' account";
  }
  const passwd nobody = *found;
  // nobody must reach the socket and read the settings file: the directory is traversable.
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  auto daemon = start_controlled_daemon({enforce});
  ASSERT_TRUE(daemon);
  const std::string group = ::getgrgid(::getegid())->gr_name;

  // The socket's mode (0660, the daemon's group) keeps nobody out before the daemon sees it.
  const command_result by_mode = control_as(nobody, {"status"});
  EXPECT_EQ(by_mode.exit_code, 1);
  EXPECT_NE(by_mode.err.find("permission denied on control socket " + control_path() +
                             ": run as root or as a member of group " + group),
            std::string::npos)
      << by_mode.err;

  // With the socket opened to everyone, the daemon's peer check refuses, names the rule, and
  // keeps an audit row of the attempt.
  ASSERT_EQ(::chmod(control_path().c_str(), 0666), 0) << std::strerror(errno);
  const command_result by_peer =
      control_as(nobody, {"allow", "mallory@example.test", "--reason", "let me in"});
  EXPECT_EQ(by_peer.exit_code, 1);
  EXPECT_NE(by_peer.err.find("permission denied on control socket"), std::string::npos)
      << by_peer.err;
  EXPECT_NE(by_peer.err.find("nobody (uid " + std::to_string(nobody.pw_uid) +
                             ") is not root, the daemon's user"),
            std::string::npos)
      << by_peer.err;
  EXPECT_TRUE(daemon->wait_for_err("CONTROL REFUSED nobody")) << daemon->err();
  EXPECT_TRUE(
      eventually([&] { return audit_rows("user = 'nobody' AND result = 'refused'") == 1; }));
  // Nothing was allowed.
  const command_result status = control({"status", "--format", "json"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("\"operator_allows\":[]"), std::string::npos) << status.out;
}

TEST_F(ControlTest, AMemberOfControlGroupMayUseIt) {
  const passwd* found = ::getpwnam("nobody");
  if (::geteuid() != 0 || found == nullptr || ::getgrgid(found->pw_gid) == nullptr) {
    GTEST_SKIP() << "needs root (to run the command as another user) and a 'nobody' account";
  }
  const passwd nobody = *found;
  const std::string group = ::getgrgid(nobody.pw_gid)->gr_name;
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  auto daemon = start_controlled_daemon({"control.group=" + group});
  ASSERT_TRUE(daemon);
  struct stat st {};
  ASSERT_EQ(::stat(control_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, nobody.pw_gid);
  EXPECT_EQ(st.st_mode & 0777, 0660U);
  const command_result status = control_as(nobody, {"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(eventually([&] { return audit_rows("user = 'nobody' AND result = 'ok'") == 1; }));
}

}  // namespace
}  // namespace rcptguard::server_test
