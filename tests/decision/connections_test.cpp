// Connections per client: counted from CONNECT requests when Postfix sends them, otherwise from
// distinct (client_address, client_port) sessions of RCPT requests; and the connection_rate
// signal for one client reconnecting for every message to one recipient.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using testing::at_minutes;
using testing::at_seconds;
using testing::driver;
using testing::eom_request;
using testing::rcpt_request;
using testing::test_settings;

constexpr std::string_view victim = "bob@example.test";

bool has_reason(const verdict& v, std::string_view name) {
  return std::any_of(v.reasons.begin(), v.reasons.end(),
                     [&](const reason& r) { return r.name == name; });
}

/// One single-recipient message on the SMTP session (client, port).
verdict session_message(driver& d, std::string_view recipient, std::string_view client,
                        std::uint16_t port, time_point now, std::string_view sender = "s@ex.org") {
  const std::string instance = d.next_instance();
  protocol::policy_request rcpt = rcpt_request(recipient, sender, client, instance);
  rcpt.client_port = port;
  const verdict v = d.eng().decide(rcpt, 1, now);
  if (v.level != verdict_level::defer) {
    protocol::policy_request eom = eom_request(instance, recipient, 1, 1000, sender, client);
    eom.client_port = port;
    d.eng().decide(eom, 1, now);
  }
  return v;
}

void connect(driver& d, std::string_view client, std::uint16_t port, time_point now) {
  protocol::policy_request r;
  r.request = "smtpd_access_policy";
  r.state = protocol::protocol_state::connect;
  r.client_address = client;
  r.client_port = port;
  d.eng().decide(r, 1, now);
}

// --- Counting ----------------------------------------------------------------------------------

TEST(Connections, SamePortTwiceIsOneConnection) {
  driver d;
  session_message(d, victim, "192.0.2.7", 40001, at_seconds(0));
  session_message(d, "alice@example.test", "192.0.2.7", 40001, at_seconds(5));
  session_message(d, victim, "192.0.2.7", 40001, at_seconds(10));
  EXPECT_EQ(d.eng().client_connections("192.0.2.7", at_seconds(10)), 1U);
  session_message(d, victim, "192.0.2.7", 40002, at_seconds(20));
  EXPECT_EQ(d.eng().client_connections("192.0.2.7", at_seconds(20)), 2U);
  EXPECT_EQ(d.eng().client_connections("192.0.2.8", at_seconds(20)), 0U);
  EXPECT_EQ(d.eng().stats().client_connections, 2U);
  EXPECT_EQ(d.eng().stats().busiest_client_connections, 2U);
  // Without a port (Postfix < 3.0) sessions cannot be told apart: nothing is counted.
  d.message(victim, "s@ex.org", "192.0.2.7", at_seconds(30));
  EXPECT_EQ(d.eng().client_connections("192.0.2.7", at_seconds(30)), 2U);
}

TEST(Connections, ALongSessionIsOneConnectionAndAnIdlePortReuseIsAnother) {
  driver d;
  // One request every 4 minutes keeps the session alive for 12 minutes ...
  for (int m = 0; m <= 8; m += 4) session_message(d, victim, "192.0.2.7", 40001, at_minutes(m));
  EXPECT_EQ(d.eng().stats().client_connections, 1U);
  // ... and the same port after 6 silent minutes is a new connection (smtpd_timeout is 300 s).
  session_message(d, victim, "192.0.2.7", 40001, at_minutes(14));
  EXPECT_EQ(d.eng().stats().client_connections, 2U);
}

TEST(Connections, ConnectRequestsAreCountedWhenPresent) {
  driver d;
  connect(d, "192.0.2.7", 40001, at_seconds(0));
  EXPECT_EQ(d.eng().client_connections("192.0.2.7", at_seconds(0)), 1U);
  // The RCPTs of that session are the same connection.
  session_message(d, victim, "192.0.2.7", 40001, at_seconds(1));
  session_message(d, victim, "192.0.2.7", 40001, at_seconds(2));
  EXPECT_EQ(d.eng().client_connections("192.0.2.7", at_seconds(2)), 1U);
  // A CONNECT is always a new connection, even on a port just used.
  connect(d, "192.0.2.7", 40001, at_seconds(3));
  connect(d, "192.0.2.7", 0, at_seconds(4));  // no port: still one connection
  EXPECT_EQ(d.eng().client_connections("192.0.2.7", at_seconds(4)), 3U);
  EXPECT_EQ(d.eng().stats().connect_requests, 3U);
  EXPECT_EQ(d.eng().stats().client_connections, 3U);
  // A CONNECT-ed session's first RCPT for a recipient is one connection to it.
  session_message(d, victim, "192.0.2.7", 40001, at_seconds(5));
  EXPECT_EQ(d.eng().stats().client_connections, 3U);
}

TEST(Connections, Ipv6ClientsAreAggregatedByPrefix) {
  driver d;
  session_message(d, victim, "2001:db8:1:2::10", 40001, at_seconds(0));
  session_message(d, victim, "2001:db8:1:2::99", 40001, at_seconds(1));
  connect(d, "2001:db8:1:2:aaaa::1", 40001, at_seconds(2));
  EXPECT_EQ(d.eng().client_connections("2001:db8:1:2::1", at_seconds(2)), 3U);
  EXPECT_EQ(d.eng().client_connections("2001:db8:1:3::1", at_seconds(2)), 0U);
}

TEST(Connections, CountsAreBoundedByTheirTables) {
  settings s = test_settings();
  s.client_session_slots = 64;
  s.client_connection_slots = 64;
  driver d(s);
  for (int i = 0; i < 2000; ++i) {
    session_message(d, "r" + std::to_string(i % 50) + "@example.test", driver::client(i),
                    static_cast<std::uint16_t>(1024 + i), at_seconds(i / 10));
  }
  const engine_stats st = d.eng().stats();
  EXPECT_EQ(st.client_connections, 2000U);
  EXPECT_GT(st.client_session_overwrites, 0U);
  EXPECT_GT(st.client_counter_overwrites, 0U);
}

// --- The connection_rate signal ----------------------------------------------------------------

TEST(ConnectionRate, OneClientReconnectingForEveryMessageIsAReason) {
  // 20 messages in 10 minutes from one client: the warn point, plus single_client (0.5).
  driver reconnecting;
  driver one_session;
  verdict a;
  verdict b;
  for (int i = 0; i < 20; ++i) {
    a = session_message(reconnecting, victim, "203.0.113.5", static_cast<std::uint16_t>(50000 + i),
                        at_seconds(i * 30));
    b = session_message(one_session, victim, "203.0.113.5", 50000, at_seconds(i * 30));
  }
  EXPECT_EQ(a.level, verdict_level::warn);
  ASSERT_TRUE(has_reason(a, "connection_rate"));
  EXPECT_TRUE(has_reason(a, "single_client"));
  const auto r = std::find_if(a.reasons.begin(), a.reasons.end(),
                              [](const reason& x) { return x.name == "connection_rate"; });
  EXPECT_DOUBLE_EQ(r->weight, 0.25);
  EXPECT_DOUBLE_EQ(r->observed, 20.0);
  EXPECT_EQ(r->detail, "20 connections/10m from one client for this recipient");
  EXPECT_NE(a.action.text.find("20 connections from one client"), std::string::npos)
      << a.action.text;
  EXPECT_FALSE(has_reason(b, "connection_rate"));

  const recipient_view view = reconnecting.eng().inspect(victim, at_seconds(570));
  EXPECT_DOUBLE_EQ(view.client_connections, 20.0);
  EXPECT_NEAR(view.score, 1.75, 1e-9);
  EXPECT_DOUBLE_EQ(one_session.eng().inspect(victim, at_seconds(570)).client_connections, 1.0);
}

TEST(ConnectionRate, WeightIsConfigurableAndCanTipToDefer) {
  settings s = test_settings();
  s.defaults.connection_rate_weight = 0.5;
  driver d(s);
  verdict v;
  for (int i = 0; i < 20; ++i) {
    v = session_message(d, victim, "203.0.113.5", static_cast<std::uint16_t>(50000 + i),
                        at_seconds(i * 30));
  }
  EXPECT_EQ(v.level, verdict_level::defer);
  EXPECT_TRUE(has_reason(v, "connection_rate"));
}

TEST(ConnectionRate, AClientSpreadingItsConnectionsIsNotASingleTargetReconnector) {
  // The same 20 connections for bob, interleaved with 20 for other recipients: half of the
  // client's connections, below connection_rate_share (0.8).
  driver d;
  verdict v;
  std::uint16_t port = 50000;
  for (int i = 0; i < 20; ++i) {
    session_message(d, "other" + std::to_string(i) + "@example.test", "203.0.113.5", port++,
                    at_seconds(i * 30));
    v = session_message(d, victim, "203.0.113.5", port++, at_seconds(i * 30 + 1));
  }
  EXPECT_EQ(v.level, verdict_level::warn);
  EXPECT_FALSE(has_reason(v, "connection_rate"));
  EXPECT_EQ(d.eng().client_connections("203.0.113.5", at_seconds(590)), 40U);
  // Counts are per 10-minute epoch.
  EXPECT_EQ(d.eng().client_connections("203.0.113.5", at_seconds(600)), 0U);
}

TEST(ConnectionRate, IsGatedByVolumeLikeTheOtherAmplifiers) {
  settings s = test_settings();
  s.defaults.connection_rate_min_connections = 5;
  driver d(s);
  // 8 connections, 8 messages: volume 8/20 = 0.4, below the gate (0.5).
  for (int i = 0; i < 8; ++i) {
    session_message(d, victim, "203.0.113.5", static_cast<std::uint16_t>(50000 + i),
                    at_seconds(i * 30));
  }
  recipient_view view = d.eng().inspect(victim, at_seconds(240));
  EXPECT_DOUBLE_EQ(view.client_connections, 8.0);
  EXPECT_NEAR(view.score, 0.4, 1e-9);
  // Two more: 0.5 reaches the gate and the signal adds its weight.
  for (int i = 8; i < 10; ++i) {
    session_message(d, victim, "203.0.113.5", static_cast<std::uint16_t>(50000 + i),
                    at_seconds(i * 30));
  }
  view = d.eng().inspect(victim, at_seconds(300));
  EXPECT_NEAR(view.score, 0.75, 1e-9);
}

TEST(ConnectionRate, CountsFromConnectRequestsToo) {
  driver d;
  verdict v;
  for (int i = 0; i < 20; ++i) {
    const auto port = static_cast<std::uint16_t>(50000 + i);
    connect(d, "203.0.113.5", port, at_seconds(i * 30));
    v = session_message(d, victim, "203.0.113.5", port, at_seconds(i * 30 + 1));
  }
  EXPECT_TRUE(has_reason(v, "connection_rate"));
  EXPECT_EQ(d.eng().stats().client_connections, 20U);
  EXPECT_EQ(d.eng().stats().connect_requests, 20U);
}

}  // namespace
}  // namespace rcptguard::decision
