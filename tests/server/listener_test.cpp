// listener_set over real sockets: the connection caps and eviction, the TCP client allowlist, how a
// unix socket path is claimed (mode, group, stale and foreign files), and shutdown, which must
// close idle sessions at once yet let a request in flight get its reply.
#include <grp.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/address.hpp"
#include "tests/server/server_harness.hpp"

namespace rcptguard::server_test {
namespace {

using server::drop_reason;

std::uint64_t drops(const server::server_stats& stats, drop_reason reason) {
  return stats.drops.at(static_cast<std::size_t>(reason));
}

// A listener_set that is never run: enough to test what binding does to the file system.
struct bare_listener {
  boost::asio::io_context io;
  scripted_handler handler;
  server::server_stats stats;
  server::session_context context{
      {},
      &handler,
      &stats,
      std::make_shared<spdlog::logger>("bare", std::make_shared<spdlog::sinks::null_sink_mt>())};
  server::listener_set listeners{io, context, [](const boost::asio::ip::address&) { return true; }};
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<no exception>";
}

// Leaves a socket file nobody listens on, as a crashed daemon would.
void make_stale_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0)
      << std::strerror(errno);
  ASSERT_EQ(::listen(fd, 1), 0);
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---- connection cap and allowlist ---------------------------------------------------------

// A request cut before its closing empty line: the session is mid-request, so not idle.
constexpr std::string_view unfinished_request =
    "request=smtpd_access_policy\nprotocol_state=RCPT\n";

bool closed_without_reply(test_client& client) {
  const read_result result = client.read_until_closed();
  return result.status == read_status::closed && result.bytes.empty();
}

TEST(ConnectionCap, EvictsTheLongestIdleSessionToAdmitANewOne) {
  harness_options options;
  options.limits.max_connections = 2;
  server_harness server(options);
  // The cap counts sessions over all listeners, TCP and unix together.
  test_client first = server.connect_tcp();
  test_client second = server.connect_unix();
  ASSERT_EQ(first.ask(rcpt_request()), dunno_reply);
  ASSERT_EQ(second.ask(rcpt_request()), dunno_reply);
  ASSERT_EQ(second.ask(rcpt_request()), dunno_reply);  // second is now the more recently active

  test_client third = server.connect_tcp();
  EXPECT_EQ(third.ask(rcpt_request()), dunno_reply) << "a new connection gets in at the cap";
  EXPECT_TRUE(closed_without_reply(first)) << "the longest-idle session made room";
  EXPECT_EQ(second.ask(rcpt_request()), dunno_reply) << "the other session is untouched";
  const auto stats = server.stats();
  EXPECT_EQ(stats.connections_evicted, 1U);
  EXPECT_EQ(drops(stats, drop_reason::connection_limit), 0U);
  EXPECT_EQ(stats.peak_connections, 2U);
  EXPECT_TRUE(server.logged(
      "CONNECTION LIMIT open=2 max_connections=2: evicted 1 idle connection(s), refused 0"));
}

TEST(ConnectionCap, RefusesOnlyWhenEverySessionIsInTheMiddleOfARequest) {
  harness_options options;
  options.limits.max_connections = 2;
  server_harness server(options);
  test_client first = server.connect_tcp();
  test_client second = server.connect_unix();
  ASSERT_TRUE(first.send(unfinished_request));
  ASSERT_TRUE(second.send(unfinished_request));
  ASSERT_TRUE(
      eventually([&] { return server.open_sessions() == 2 && server.idle_sessions() == 0; }));

  test_client third = server.connect_tcp();
  ASSERT_TRUE(third.connected());  // the kernel accepts; the server closes it at once
  EXPECT_TRUE(closed_without_reply(third));
  auto stats = server.stats();
  EXPECT_EQ(drops(stats, drop_reason::connection_limit), 1U);
  EXPECT_EQ(stats.connections_evicted, 0U);
  EXPECT_EQ(stats.connections_accepted, 2U);
  EXPECT_TRUE(server.logged("refused 1 (every one busy)"));
  EXPECT_EQ(server.handler().closed_calls(), 0U) << "a refused connection never was a session";

  // Both requests in progress still complete.
  ASSERT_TRUE(first.send("\n"));
  EXPECT_EQ(first.read_reply().bytes, dunno_reply);
  ASSERT_TRUE(second.send("\n"));
  EXPECT_EQ(second.read_reply().bytes, dunno_reply);
  // Now idle, the first gives way to the next connection.
  test_client fourth = server.connect_unix();
  EXPECT_EQ(fourth.ask(rcpt_request()), dunno_reply);
  stats = server.stats();
  EXPECT_EQ(stats.connections_accepted, 3U);
  EXPECT_EQ(stats.connections_evicted, 1U);
}

TEST(ConnectionCap, AClientAtItsCapDisplacesOnlyItsOwnSessions) {
  harness_options options;
  options.limits.max_connections = 10;
  options.limits.max_per_client = 2;
  server_harness server(options);
  test_client other = test_client::tcp_from("127.0.0.2", server.tcp_port());
  ASSERT_EQ(other.ask(rcpt_request()), dunno_reply);  // the longest idle of all, from 127.0.0.2
  test_client a1 = test_client::tcp_from("127.0.0.3", server.tcp_port());
  test_client a2 = test_client::tcp_from("127.0.0.3", server.tcp_port());
  ASSERT_EQ(a1.ask(rcpt_request()), dunno_reply);
  ASSERT_EQ(a2.ask(rcpt_request()), dunno_reply);

  test_client a3 = test_client::tcp_from("127.0.0.3", server.tcp_port());
  EXPECT_EQ(a3.ask(rcpt_request()), dunno_reply);
  EXPECT_TRUE(closed_without_reply(a1)) << "127.0.0.3's own longest-idle session gave way";
  EXPECT_EQ(other.ask(rcpt_request()), dunno_reply) << "another client's session is untouched";
  EXPECT_EQ(a2.ask(rcpt_request()), dunno_reply);
  EXPECT_TRUE(
      server.logged("CLIENT CONNECTION LIMIT client=127.0.0.3 max_connections_per_client=2: "
                    "evicted 1 of its idle connection(s), refused 0"));

  // With both of its sessions mid-request, the client's next connection is refused.
  ASSERT_TRUE(a2.send(unfinished_request));
  ASSERT_TRUE(a3.send(unfinished_request));
  ASSERT_TRUE(eventually([&] { return server.idle_sessions() == 1; }));  // only `other`
  test_client a4 = test_client::tcp_from("127.0.0.3", server.tcp_port());
  EXPECT_TRUE(closed_without_reply(a4));
  const auto stats = server.stats();
  EXPECT_EQ(drops(stats, drop_reason::client_connection_limit), 1U);
  EXPECT_EQ(stats.connections_evicted, 1U);
  // Unix clients are not one address: the per-client cap leaves them alone.
  test_client u1 = server.connect_unix();
  test_client u2 = server.connect_unix();
  test_client u3 = server.connect_unix();
  EXPECT_EQ(u1.ask(rcpt_request()), dunno_reply);
  EXPECT_EQ(u2.ask(rcpt_request()), dunno_reply);
  EXPECT_EQ(u3.ask(rcpt_request()), dunno_reply);
}

// What a local user could do before the caps evicted: hold every slot with idle connections.
TEST(ConnectionCap, ThousandsOfIdleConnectionsFromOneAddressDoNotLockOutOthers) {
  constexpr int flood = 1500;
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  // Client and server ends both live in this process.
  const rlim_t wanted = 2 * flood + 200;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted) {
    GTEST_SKIP() << "needs " << wanted << " file descriptors; the hard limit is " << limit.rlim_max;
  }
  const rlimit saved = limit;
  limit.rlim_cur = std::max(limit.rlim_cur, wanted);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);

  harness_options options;
  options.limits.max_connections = 1024;
  options.limits.max_per_client = 512;
  {
    server_harness server(options);
    std::vector<test_client> idle;
    idle.reserve(flood);
    for (int i = 0; i < flood; ++i) {
      idle.push_back(test_client::tcp_from("127.0.0.9", server.tcp_port()));
    }
    ASSERT_TRUE(eventually([&] { return server.stats().connections_accepted == flood; }));
    EXPECT_EQ(server.open_sessions(), 512U) << "one address holds at most its cap";

    test_client postfix = test_client::tcp_from("127.0.0.1", server.tcp_port());
    EXPECT_EQ(postfix.ask(rcpt_request()), dunno_reply);
    test_client local = server.connect_unix();
    EXPECT_EQ(local.ask(rcpt_request()), dunno_reply);
    const auto stats = server.stats();
    EXPECT_EQ(stats.connections_evicted, static_cast<std::uint64_t>(flood - 512));
    EXPECT_EQ(drops(stats, drop_reason::client_connection_limit), 0U);
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
}

TEST(ConnectionCap, WithoutAPerClientCapTheGlobalCapStillLetsANewClientIn) {
  harness_options options;
  options.limits.max_connections = 64;
  options.limits.max_per_client = 0;
  server_harness server(options);
  std::vector<test_client> idle;
  for (int i = 0; i < 200; ++i)
    idle.push_back(test_client::tcp_from("127.0.0.9", server.tcp_port()));
  ASSERT_TRUE(eventually([&] { return server.stats().connections_accepted == 200; }));
  EXPECT_EQ(server.open_sessions(), 64U);
  test_client postfix = test_client::tcp_from("127.0.0.1", server.tcp_port());
  EXPECT_EQ(postfix.ask(rcpt_request()), dunno_reply);
  EXPECT_EQ(server.stats().connections_evicted, 200U - 64U + 1U);
}

TEST(ClientAllowlist, ClosesTcpClientsOutsideItButNotUnixClients) {
  harness_options options;
  std::string error;
  const auto allowed = parse_cidr("10.0.0.0/8", error);
  ASSERT_TRUE(allowed) << error;
  options.allow_client = [net = *allowed](const boost::asio::ip::address& address) {
    return net.contains(address.to_string());
  };
  server_harness server(options);
  test_client outsider = server.connect_tcp();
  ASSERT_TRUE(outsider.connected());
  outsider.send(rcpt_request());
  const read_result result = outsider.read_until_closed();
  EXPECT_EQ(result.status, read_status::closed) << describe(result);
  EXPECT_EQ(result.bytes, "");
  EXPECT_EQ(drops(server.stats(), drop_reason::client_not_allowed), 1U);
  EXPECT_TRUE(server.logged("CLIENT NOT ALLOWED peer=127.0.0.1:"));
  EXPECT_EQ(server.handler().handled(), 0U);

  // Unix sockets are guarded by their mode and group, not by client addresses.
  test_client local = server.connect_unix();
  EXPECT_EQ(local.ask(rcpt_request()), dunno_reply);
}

TEST(ClientAllowlist, ServesTcpClientsInsideIt) {
  harness_options options;
  std::string error;
  const auto allowed = parse_cidr("127.0.0.0/8", error);
  ASSERT_TRUE(allowed) << error;
  options.allow_client = [net = *allowed](const boost::asio::ip::address& address) {
    return net.contains(address.to_string());
  };
  server_harness server(options);
  test_client client = server.connect_tcp();
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply);
}

// ---- binding -------------------------------------------------------------------------------

TEST(BindTcp, RefusesAPortInUseNamingTheEndpoint) {
  server_harness server;
  bare_listener other;
  const std::string port = std::to_string(server.tcp_port());
  EXPECT_NE(error_of([&] {
              other.listeners.bind_tcp("127.0.0.1", server.tcp_port());
            }).find("127.0.0.1:" + port),
            std::string::npos);
}

TEST(BindTcp, RefusesAHostName) {
  bare_listener bare;
  EXPECT_THROW(bare.listeners.bind_tcp("localhost", 0), std::runtime_error);
}

TEST(BindUnix, SetsTheConfiguredModeWhateverTheUmask) {
  for (const unsigned mode : {0600U, 0660U, 0666U}) {
    SCOPED_TRACE(mode);
    temp_dir dir;
    const std::string path = dir.file("policy.sock");
    // The mode is access control; it must not depend on the umask the daemon started with.
    const mode_t saved = ::umask(077);
    bare_listener bare;
    bare.listeners.bind_unix(path, {mode, ""});
    ::umask(saved);
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, mode);
  }
}

TEST(BindUnix, SetsTheConfiguredGroup) {
  // Root may pick any group; anyone else only one of their own.
  const group* gr = ::geteuid() == 0 ? ::getgrnam("nogroup") : nullptr;
  if (gr == nullptr) gr = ::getgrgid(::getegid());
  if (gr == nullptr) GTEST_SKIP() << "no group name for gid " << ::getegid();
  const std::string name = gr->gr_name;
  const gid_t gid = gr->gr_gid;
  temp_dir dir;
  const std::string path = dir.file("policy.sock");
  bare_listener bare;
  bare.listeners.bind_unix(path, {0660, name});
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, gid) << name;
}

TEST(BindUnix, RefusesAnUnknownGroup) {
  temp_dir dir;
  bare_listener bare;
  EXPECT_NE(error_of([&] {
              bare.listeners.bind_unix(dir.file("policy.sock"), {0660, "rcptguard-no-such-group"});
            }).find("rcptguard-no-such-group"),
            std::string::npos);
}

TEST(BindUnix, ReplacesAStaleSocketFile) {
  temp_dir dir;
  const std::string path = dir.file("policy.sock");
  make_stale_socket(path);
  ASSERT_FALSE(test_client::unix_socket(path).connected()) << "the socket should be stale";
  harness_options options;
  options.unix_path = path;
  server_harness server(options);
  test_client client = server.connect_unix();
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply);
}

TEST(BindUnix, RefusesToReplaceAnythingButASocket) {
  temp_dir dir;
  const std::string file = dir.file("regular");
  std::ofstream(file) << "precious";
  const std::string directory = dir.file("directory");
  std::filesystem::create_directory(directory);
  // Even a symlink to a stale socket: following it would unlink a file somewhere else.
  const std::string stale = dir.file("stale.sock");
  make_stale_socket(stale);
  const std::string link = dir.file("link.sock");
  std::filesystem::create_symlink(stale, link);

  for (const std::string& path : {file, directory, link}) {
    SCOPED_TRACE(path);
    bare_listener bare;
    EXPECT_NE(error_of([&] { bare.listeners.bind_unix(path, {}); }).find("not a socket"),
              std::string::npos);
  }
  EXPECT_EQ(read_file(file), "precious");
  EXPECT_TRUE(std::filesystem::is_directory(directory));
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_TRUE(std::filesystem::is_socket(stale));
}

TEST(BindUnix, RefusesASocketAnotherListenerServes) {
  server_harness server;
  {
    bare_listener second;
    EXPECT_NE(error_of([&] {
                second.listeners.bind_unix(server.unix_path(), {});
              }).find("another process is listening"),
              std::string::npos);
  }
  test_client client = server.connect_unix();
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply) << "the first listener keeps its socket";
}

TEST(BindUnix, RefusesAPathTooLongForSockaddrUn) {
  temp_dir dir;
  bare_listener bare;
  EXPECT_THROW(bare.listeners.bind_unix(dir.file(std::string(120, 's')), {}), std::runtime_error);
}

TEST(BindUnix, RemovesItsSocketOnDestructionButNotAReplacement) {
  temp_dir dir;
  const std::string path = dir.file("policy.sock");
  {
    bare_listener bare;
    bare.listeners.bind_unix(path, {});
    EXPECT_TRUE(std::filesystem::is_socket(path));
  }
  EXPECT_FALSE(std::filesystem::exists(path));

  {
    bare_listener bare;
    bare.listeners.bind_unix(path, {});
    std::filesystem::remove(path);
    std::ofstream(path) << "someone else's";
  }
  EXPECT_EQ(read_file(path), "someone else's");
}

// ---- shutdown ------------------------------------------------------------------------------

TEST(Shutdown, ClosesIdleSessionsStopsAcceptingAndDrains) {
  server_harness server;
  test_client used = server.connect_tcp();
  ASSERT_EQ(used.ask(rcpt_request()), dunno_reply);
  test_client fresh = server.connect_unix();
  ASSERT_TRUE(eventually([&] { return server.open_sessions() == 2; }));

  server.shutdown();
  for (test_client* client : {&used, &fresh}) {
    const read_result result = client->read_until_closed();
    EXPECT_EQ(result.status, read_status::closed) << describe(result);
    EXPECT_EQ(result.bytes, "");
  }
  EXPECT_FALSE(server.connect_tcp().connected());
  EXPECT_FALSE(server.connect_unix().connected());
  EXPECT_TRUE(server.wait_until_drained(2s)) << "io_context::run() should run out of work";
  EXPECT_EQ(server.handler().closed_calls(), 2U);
}

TEST(Shutdown, AnswersTheRequestInFlightThenCloses) {
  server_harness server;
  test_client client = server.connect_tcp();
  ASSERT_EQ(client.ask(rcpt_request()), dunno_reply);
  const std::string request = rcpt_request();
  const std::string first_half = request.substr(0, request.size() / 2);
  ASSERT_TRUE(client.send(first_half));
  // Nothing shows that the server has read the half; on loopback it does so within microseconds.
  std::this_thread::sleep_for(50ms);

  server.shutdown();
  EXPECT_FALSE(client.readable_within(100ms)) << "closed although a request was in flight";
  ASSERT_TRUE(client.send(request.substr(first_half.size())));
  EXPECT_EQ(describe(client.read_reply()), dunno_reply);
  const read_result after = client.read_until_closed();
  EXPECT_EQ(after.status, read_status::closed) << describe(after);
  EXPECT_EQ(after.bytes, "");
  EXPECT_TRUE(server.wait_until_drained(2s));
  EXPECT_EQ(server.handler().handled(), 2U);
}

TEST(Shutdown, ARequestNeverFinishedIsBoundedByItsDeadline) {
  harness_options options;
  options.settings.request_timeout = 300ms;
  server_harness server(options);
  test_client client = server.connect_unix();
  ASSERT_TRUE(client.send("request=smtpd_access_policy\nprotocol_state=RCPT\n"));
  std::this_thread::sleep_for(50ms);  // as above: let the server read the partial request
  const auto start = steady::now();
  server.shutdown();
  const read_result result = client.read_until_closed(3s);
  EXPECT_EQ(result.status, read_status::closed) << describe(result);
  EXPECT_EQ(result.bytes, "");
  EXPECT_LT(steady::now() - start, 1500ms);
  EXPECT_TRUE(server.wait_until_drained(2s));
}

TEST(Shutdown, DrainsEvenWhenAClientStopsReadingItsReplies) {
  // SIGTERM waits for replies in flight; one that can never be written must not make it wait
  // forever.
  harness_options options;
  options.settings.request_timeout = 300ms;
  server_harness server(options);
  // A reply larger than any unix socket buffer: its write cannot complete while we do not read.
  server.handler().reply_padding = 16U << 20;
  test_client client = server.connect_unix();
  ASSERT_TRUE(client.send(rcpt_request()));
  // handle() and the start of the write happen in one handler: once the request is handled the
  // session is busy writing, and shutdown() finds it so.
  ASSERT_TRUE(eventually([&] { return server.handler().handled() == 1; }));
  server.shutdown();
  EXPECT_TRUE(server.wait_until_drained(3s))
      << "shutdown still waiting after 3 s for a reply the client will never read";
}

}  // namespace
}  // namespace rcptguard::server_test
