// A policy session over real sockets, TCP and unix alike: one exact reply per request on a
// long-lived connection, each input limit at its edge, the request deadline and idle timeout,
// clients that misbehave, and faults inside the handler. Postfix's side of each case is in
// ../shared/reference/postfix-policy-protocol.md (1.1, B 4-5).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "protocol/parser.hpp"
#include "tests/server/server_harness.hpp"

namespace rcptguard::server_test {
namespace {

using protocol::parse_error;
using server::drop_reason;

enum class transport { tcp, unix_socket };

std::string transport_name(const ::testing::TestParamInfo<transport>& info) {
  return info.param == transport::tcp ? "Tcp" : "Unix";
}

// So a failure names the transport instead of printing its bytes.
void PrintTo(transport t, std::ostream* out) {
  *out << (t == transport::tcp ? "TCP" : "unix");
}

std::uint64_t drops(const server::server_stats& stats, drop_reason reason) {
  return stats.drops.at(static_cast<std::size_t>(reason));
}

std::uint64_t parse_errors(const server::server_stats& stats, parse_error error) {
  return stats.parse_errors.at(static_cast<std::size_t>(error));
}

// `count` attribute lines of `total` bytes together (LFs included), none longer than needed.
std::string filler_lines(std::size_t total, std::size_t count) {
  std::string lines;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t size = (total - lines.size()) / (count - i);
    std::string line = "x-fill" + std::to_string(i) + "=";
    line.append(size - line.size() - 1, 'a');
    lines.append(line).append("\n");
  }
  return lines;
}

std::string numbered_attributes(std::size_t count) {
  std::string lines;
  for (std::size_t i = 0; i < count; ++i) lines += "x-attr" + std::to_string(i) + "=v\n";
  return lines;
}

class SessionTest : public ::testing::TestWithParam<transport> {
 protected:
  test_client connect(const server_harness& server) const {
    test_client client =
        GetParam() == transport::tcp ? server.connect_tcp() : server.connect_unix();
    EXPECT_TRUE(client.connected()) << "connect: " << std::strerror(client.connect_error());
    return client;
  }
};

INSTANTIATE_TEST_SUITE_P(Transports, SessionTest,
                         ::testing::Values(transport::tcp, transport::unix_socket), transport_name);

TEST_P(SessionTest, AnswersManySequentialRequestsOnOneConnection) {
  server_harness server;
  test_client client = connect(server);
  constexpr int requests = 500;
  for (int i = 0; i < requests; ++i) {
    ASSERT_EQ(client.ask(rcpt_request()), dunno_reply) << "request " << i;
  }
  EXPECT_FALSE(client.readable_within(20ms)) << "nothing may follow the last reply";
  const auto stats = server.stats();
  EXPECT_EQ(stats.requests, static_cast<std::uint64_t>(requests));
  EXPECT_EQ(stats.connections_accepted, 1U);
  EXPECT_EQ(server.handler().handled(), static_cast<std::uint64_t>(requests));
}

TEST_P(SessionTest, NeverSpeaksFirst) {
  // Postfix takes a readable socket before its request as a dead server (attr_clnt.c) and pays
  // a retry delay; a banner would cost every connection that.
  server_harness server;
  test_client client = connect(server);
  EXPECT_FALSE(client.readable_within(100ms));
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply);
}

TEST_P(SessionTest, ServesManyConnectionsAtOnce) {
  server_harness server;
  server.handler().answer = scripted_handler::behaviour::echo_recipient;
  constexpr int connections = 50;
  constexpr int requests_each = 10;
  // All connected before any request, so the server really holds 50 sessions at once.
  std::vector<test_client> clients;
  for (int c = 0; c < connections; ++c) clients.push_back(connect(server));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      for (int r = 0; r < requests_each; ++r) {
        const std::string recipient =
            "c" + std::to_string(c) + "-r" + std::to_string(r) + "@example.test";
        if (clients[static_cast<std::size_t>(c)].ask(rcpt_request(recipient)) !=
            "action=WARN " + recipient + "\n\n") {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0) << "replies missing or matched to the wrong request";
  const auto stats = server.stats();
  EXPECT_EQ(stats.requests, static_cast<std::uint64_t>(connections * requests_each));
  EXPECT_EQ(stats.peak_connections, static_cast<std::uint64_t>(connections));
  EXPECT_EQ(stats.connections_open, static_cast<std::uint64_t>(connections));
}

TEST_P(SessionTest, ReassemblesARequestWrittenOneByteAtATime) {
  server_harness server;
  test_client client = connect(server);
  const std::string request = rcpt_request();
  for (std::size_t i = 0; i < request.size(); ++i) {
    ASSERT_TRUE(client.send(request.substr(i, 1)));
    // A pause now and then so the server sees many separate reads, not one coalesced buffer.
    if (i % 16 == 0) std::this_thread::sleep_for(200us);
  }
  const read_result reply = client.read_reply();
  EXPECT_EQ(describe(reply), dunno_reply);
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply) << "the connection stays usable";
}

TEST_P(SessionTest, AnswersARequestFollowedByHalfClose) {
  // What an operator's `printf 'request=...\n\n' | nc` does: the reply must still come.
  server_harness server;
  test_client client = connect(server);
  ASSERT_TRUE(client.send(rcpt_request()));
  client.shutdown_write();
  EXPECT_EQ(describe(client.read_reply()), dunno_reply);
  const read_result after = client.read_until_closed();
  EXPECT_EQ(after.status, read_status::closed) << describe(after);
  EXPECT_EQ(after.bytes, "");
}

TEST_P(SessionTest, AnswersPipelinedRequestsInOrder) {
  // Postfix never pipelines; a client that does still gets one reply per request, in order.
  server_harness server;
  server.handler().answer = scripted_handler::behaviour::echo_recipient;
  test_client client = connect(server);
  ASSERT_TRUE(client.send(rcpt_request("one@example.test") + rcpt_request("two@example.test") +
                          rcpt_request("three@example.test")));
  EXPECT_EQ(describe(client.read_reply()), "action=WARN one@example.test\n\n");
  EXPECT_EQ(describe(client.read_reply()), "action=WARN two@example.test\n\n");
  EXPECT_EQ(describe(client.read_reply()), "action=WARN three@example.test\n\n");
}

TEST_P(SessionTest, DropsAClientThatDripsBytesPastTheRequestDeadline) {
  harness_options options;
  options.settings.request_timeout = 300ms;
  options.settings.idle_timeout = 10s;
  server_harness server(options);
  test_client client = connect(server);
  // Each byte comes well within any per-read timeout; only a deadline on the whole request,
  // counted from its first byte, stops this client.
  const std::string request = rcpt_request();
  const auto start = steady::now();
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (!client.send(request.substr(sent, 1))) break;
    ++sent;
    if (client.readable_within(50ms)) break;
  }
  const read_result result = client.read_until_closed(2s);
  const auto elapsed = steady::now() - start;
  EXPECT_EQ(result.status, read_status::closed) << describe(result);
  EXPECT_EQ(result.bytes, "") << "a timed-out request gets no reply";
  EXPECT_LT(sent, request.size());
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 1500ms);
  ASSERT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }));
  const auto stats = server.stats();
  EXPECT_EQ(drops(stats, drop_reason::request_timeout), 1U);
  EXPECT_EQ(stats.requests, 0U);
  EXPECT_EQ(server.handler().handled(), 0U);
  EXPECT_TRUE(server.logged("REQUEST TIMEOUT"));
}

struct limit_case {
  const char* name;
  std::string request;
  parse_error error;  ///< none: the request is at the limit and must be answered
};

std::vector<limit_case> limit_cases() {
  const protocol::limits defaults;
  const std::string name = "x-long=";
  return {
      {"line at max_line",
       minimal_request(name + std::string(defaults.max_line - name.size(), 'a') + "\n"),
       parse_error::none},
      {"line at max_line + 1",
       minimal_request(name + std::string(defaults.max_line + 1 - name.size(), 'a') + "\n"),
       parse_error::line_too_long},
      {"max_attributes attributes",
       minimal_request(numbered_attributes(defaults.max_attributes - 1)), parse_error::none},
      {"max_attributes + 1 attributes",
       minimal_request(numbered_attributes(defaults.max_attributes)),
       parse_error::too_many_attributes},
      // minimal_request adds "request=smtpd_access_policy\n" (28 bytes) and the empty line.
      {"request of max_request bytes", minimal_request(filler_lines(defaults.max_request - 29, 10)),
       parse_error::none},
      {"request of max_request + 1 bytes",
       minimal_request(filler_lines(defaults.max_request + 1 - 29, 10)),
       parse_error::request_too_large},
  };
}

TEST_P(SessionTest, AnswersAtEachLimitAndClosesWithoutReplyAtLimitPlusOne) {
  for (const limit_case& c : limit_cases()) {
    SCOPED_TRACE(c.name);
    server_harness server;
    test_client client = connect(server);
    if (c.error == parse_error::none) {
      EXPECT_EQ(client.ask(c.request), dunno_reply);
      EXPECT_EQ(client.ask(rcpt_request()), dunno_reply);
      continue;
    }
    client.send(c.request);  // may fail part-way: the server stops reading at the bad byte
    const read_result result = client.read_until_closed();
    EXPECT_EQ(result.status, read_status::closed) << describe(result);
    EXPECT_EQ(result.bytes, "") << "malformed input gets no reply";
    ASSERT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }));
    const auto stats = server.stats();
    EXPECT_EQ(parse_errors(stats, c.error), 1U);
    EXPECT_EQ(drops(stats, drop_reason::parse_error), 1U);
    EXPECT_EQ(server.handler().handled(), 0U);
    EXPECT_TRUE(server.logged(std::string("reason=") + std::string(protocol::to_string(c.error))));
  }
}

struct garbage_case {
  const char* name;
  std::string bytes;
  parse_error error;
};

TEST_P(SessionTest, ClosesWithoutReplyOnGarbage) {
  using namespace std::string_literals;
  const std::vector<garbage_case> cases = {
      {"a line without '='", "hello world\n\n", parse_error::missing_equals},
      {"an HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", parse_error::missing_equals},
      {"a line starting with '='", minimal_request("=value\n"), parse_error::empty_name},
      {"a NUL in a value", minimal_request("sender=a\0b\n"s), parse_error::nul_byte},
      {"a TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, parse_error::nul_byte},
      {"an empty request", "\n", parse_error::wrong_request_type},
      {"another request type", "request=junk\n\n", parse_error::wrong_request_type},
  };
  for (const garbage_case& c : cases) {
    SCOPED_TRACE(c.name);
    server_harness server;
    test_client client = connect(server);
    client.send(c.bytes);
    const read_result result = client.read_until_closed();
    EXPECT_EQ(result.status, read_status::closed) << describe(result);
    EXPECT_EQ(result.bytes, "");
    ASSERT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }));
    const auto stats = server.stats();
    EXPECT_EQ(parse_errors(stats, c.error), 1U);
    EXPECT_EQ(drops(stats, drop_reason::parse_error), 1U);
    EXPECT_TRUE(server.logged("REQUEST REJECTED"));
    // The peer's bytes reach the log only sanitized: no raw control byte in any line.
    for (const auto& line : server.log_lines()) {
      for (const char ch : line) EXPECT_FALSE(ch >= 0 && ch < 0x20) << line;
    }
  }
}

// Values Postfix really sends when it does not know a number (behind postscreen or XCLIENT) or
// passes one through unchecked: answered like any request, on a connection that stays open,
// because refusing them makes Postfix retry and then apply its default_action to real mail.
TEST_P(SessionTest, AnswersRequestsWhoseNumbersPostfixDoesNotKnow) {
  server_harness server;
  server.handler().answer = scripted_handler::behaviour::echo_recipient;
  test_client client = connect(server);
  const std::vector<std::pair<std::string, std::string>> unknown_values{
      {"client_port=58280", "client_port=unknown"},
      {"server_port=25", "server_port=unknown"},
      {"size=0", "size=unknown"},
      {"encryption_keysize=0", "encryption_keysize="},
      {"recipient_count=0", "recipient_count="},
      {"client_port=58280", "client_port=99999"},
      {"size=0", "size=-1"},
  };
  int n = 0;
  for (const auto& [postfix_value, replacement] : unknown_values) {
    SCOPED_TRACE(replacement);
    const std::string recipient = "r" + std::to_string(n++) + "@example.test";
    std::string request = rcpt_request(recipient);
    request.replace(request.find(postfix_value), postfix_value.size(), replacement);
    EXPECT_EQ(client.ask(request), "action=WARN " + recipient + "\n\n");
  }
  EXPECT_EQ(client.ask(rcpt_request("last@example.test")), "action=WARN last@example.test\n\n")
      << "the connection stays open";
  EXPECT_FALSE(client.readable_within(20ms));
  const auto stats = server.stats();
  EXPECT_EQ(stats.requests, unknown_values.size() + 1);
  EXPECT_EQ(drops(stats, drop_reason::parse_error), 0U);
  EXPECT_EQ(stats.connections_accepted, 1U);
  EXPECT_EQ(server.handler().closed_calls(), 0U);
  EXPECT_FALSE(server.logged("REQUEST REJECTED"));
}

TEST_P(SessionTest, SurvivesAClientThatClosesMidRequest) {
  for (const bool reset : {false, true}) {
    SCOPED_TRACE(reset ? "RST" : "FIN");
    server_harness server;
    test_client client = connect(server);
    ASSERT_EQ(client.ask(rcpt_request()), dunno_reply);
    const std::string request = rcpt_request();
    ASSERT_TRUE(client.send(request.substr(0, request.size() / 2)));
    if (reset) {
      // A reset may discard bytes the server has not read yet; give it a moment to read the
      // half, so the reset really lands mid-request. (A FIN is ordered after the data anyway.)
      std::this_thread::sleep_for(20ms);
      client.abort();
    } else {
      client.close();
    }
    ASSERT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }));
    EXPECT_TRUE(eventually([&] { return server.open_sessions() == 0; }));
    EXPECT_EQ(server.handler().handled(), 1U);
    if (!reset) {
      EXPECT_TRUE(server.logged("REQUEST INCOMPLETE"));
    }
    test_client next = connect(server);
    EXPECT_EQ(next.ask(rcpt_request()), dunno_reply) << "the server keeps serving";
  }
}

TEST_P(SessionTest, SurvivesAClientThatClosesBeforeReadingItsReply) {
  server_harness server;
  for (int i = 0; i < 20; ++i) {
    test_client client = connect(server);
    ASSERT_TRUE(client.send(rcpt_request()));
    if (i % 2 == 0) {
      client.abort();
    } else {
      client.close();
    }
  }
  // Connections are accepted in order, so once this one is served the 20 are accepted too.
  test_client next = connect(server);
  EXPECT_EQ(next.ask(rcpt_request()), dunno_reply);
  EXPECT_TRUE(eventually([&] { return server.open_sessions() == 1; }));
  // A connection reset while still in the accept queue never becomes a session, so count
  // sessions rather than assume 20.
  const auto stats = server.stats();
  EXPECT_EQ(server.handler().closed_calls() + 1, stats.connections_accepted);
  EXPECT_EQ(server.handler().handled(), stats.requests);
}

TEST_P(SessionTest, IdleTimeoutClosesAnIdleConnection) {
  harness_options options;
  options.settings.idle_timeout = 300ms;
  server_harness server(options);
  test_client client = connect(server);
  ASSERT_EQ(client.ask(rcpt_request()), dunno_reply);
  const auto replied = steady::now();
  const read_result result = client.read_until_closed(3s);
  const auto idle = steady::now() - replied;
  EXPECT_EQ(result.status, read_status::closed) << describe(result);
  EXPECT_EQ(result.bytes, "");
  EXPECT_GE(idle, 280ms) << "closed before the idle timeout";
  EXPECT_LT(idle, 1500ms);
  ASSERT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }));
  const auto stats = server.stats();
  EXPECT_EQ(stats.idle_timeouts, 1U);
  EXPECT_EQ(drops(stats, drop_reason::request_timeout), 0U);
}

TEST_P(SessionTest, KeepsAConnectionThatKeepsSendingRequests) {
  harness_options options;
  options.settings.idle_timeout = 400ms;
  server_harness server(options);
  test_client client = connect(server);
  // Ten requests 100 ms apart span more than two idle timeouts; each resets the clock.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(client.ask(rcpt_request()), dunno_reply) << "request " << i;
    EXPECT_FALSE(client.readable_within(100ms)) << "closed while in use, after request " << i;
  }
  EXPECT_EQ(server.stats().idle_timeouts, 0U);
  EXPECT_EQ(server.handler().closed_calls(), 0U);
}

TEST_P(SessionTest, InternalErrorFailsOpenAndKeepsTheConnection) {
  server_harness server;  // on_internal_error defaults to fail_open
  server.handler().answer = scripted_handler::behaviour::echo_recipient;
  server.handler().faults_to_inject = 1;
  test_client client = connect(server);
  EXPECT_EQ(client.ask(rcpt_request("first@example.test")), dunno_reply)
      << "a fault is answered DUNNO, with nothing the handler had appended";
  EXPECT_EQ(client.ask(rcpt_request("second@example.test")), "action=WARN second@example.test\n\n");
  const auto stats = server.stats();
  EXPECT_EQ(stats.internal_errors_answered, 1U);
  EXPECT_EQ(drops(stats, drop_reason::internal_error), 0U);
  EXPECT_EQ(server.handler().closed_calls(), 0U);
  EXPECT_TRUE(server.logged("INTERNAL ERROR"));
}

TEST_P(SessionTest, InternalErrorWithDisconnectPolicyClosesWithoutReply) {
  harness_options options;
  options.settings.on_internal_error = protocol::internal_error_policy::disconnect;
  server_harness server(options);
  server.handler().faults_to_inject = 1;
  test_client client = connect(server);
  ASSERT_TRUE(client.send(rcpt_request()));
  const read_result result = client.read_until_closed();
  EXPECT_EQ(result.status, read_status::closed) << describe(result);
  EXPECT_EQ(result.bytes, "") << "not even the part the handler appended before throwing";
  ASSERT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }));
  const auto stats = server.stats();
  EXPECT_EQ(drops(stats, drop_reason::internal_error), 1U);
  EXPECT_EQ(stats.internal_errors_answered, 0U);
  test_client next = connect(server);
  EXPECT_EQ(next.ask(rcpt_request()), dunno_reply);
}

TEST_P(SessionTest, ReloadedLimitsReachLiveConnections) {
  // limits.* are reloadable and session_settings promises a reload reaches live connections;
  // Postfix keeps a connection for up to max_ttl (1000 s), so a lowered limit must not wait
  // for reconnects.
  server_harness server;
  test_client live = connect(server);
  ASSERT_EQ(live.ask(rcpt_request()), dunno_reply);
  server::session_settings lowered;
  lowered.limits.max_line = 256;
  server.update_settings(lowered);
  const std::string long_line = minimal_request("x-long=" + std::string(300, 'a') + "\n");

  test_client fresh = connect(server);
  fresh.send(long_line);
  EXPECT_EQ(describe(fresh.read_until_closed(2s)), describe({read_status::closed, ""}))
      << "a new connection gets the new limit";

  live.send(long_line);
  EXPECT_EQ(describe(live.read_until_closed(2s)), describe({read_status::closed, ""}))
      << "a connection opened before the reload still accepts lines the new limit refuses";
}

TEST_P(SessionTest, AFaultInConnectionClosedStaysInsideTheSession) {
  // connection_closed is the handler's other entry point; a fault there must not escape to
  // io_context::run(), which would end the daemon and drop every other connection.
  server_harness server;
  server.handler().close_faults_to_inject = 1;
  test_client other = connect(server);
  ASSERT_EQ(other.ask(rcpt_request()), dunno_reply);
  {
    test_client closing = connect(server);
    ASSERT_EQ(closing.ask(rcpt_request()), dunno_reply);
  }
  ASSERT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }));
  EXPECT_EQ(other.ask(rcpt_request()), dunno_reply);
  EXPECT_EQ(server.escaped_exceptions(), 0);
  EXPECT_TRUE(eventually([&] { return server.open_sessions() == 1; }, 2s))
      << "the faulted session is still counted as open";
}

TEST_P(SessionTest, ClosesAClientThatStopsReadingItsReplies) {
  // A client that sends requests and never reads the replies fills the socket buffers; the
  // server's write then never completes. Time per request must stay bounded anyway, or one such
  // client holds a connection slot forever and keeps SIGTERM from finishing.
  harness_options options;
  options.settings.request_timeout = 300ms;
  options.settings.idle_timeout = 10s;
  server_harness server(options);
  // One reply far larger than the socket buffers between us stands for the many small ones such
  // a client would leave unread.
  server.handler().reply_padding = 16U << 20;
  test_client client = GetParam() == transport::tcp
                           ? test_client::tcp(server.tcp_port(), "127.0.0.1", 64 << 10)
                           : connect(server);
  ASSERT_TRUE(client.send(rcpt_request()));
  const auto start = steady::now();
  // Judged on the server's side: over TCP its FIN queues behind the unread reply, so the client
  // would not see the close.
  EXPECT_TRUE(eventually([&] { return server.handler().closed_calls() == 1; }, 3s))
      << "the connection is still open with a reply unwritten for 3 s";
  EXPECT_LT(steady::now() - start, 1500ms);
  EXPECT_EQ(drops(server.stats(), drop_reason::reply_timeout), 1U);
  EXPECT_TRUE(server.logged("REPLY TIMEOUT"));
}

}  // namespace
}  // namespace rcptguard::server_test
