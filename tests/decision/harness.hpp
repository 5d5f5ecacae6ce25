// Test scaffolding for the decision engine: request builders, a fixed clock origin and a
// small driver that sends whole messages (RCPT + END-OF-MESSAGE) at chosen instants.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "decision/engine.hpp"

namespace rcptguard::decision::testing {

/// A Monday 00:00 UTC (2023-11-13), so hour-of-week arithmetic in tests is easy to follow.
inline constexpr std::int64_t origin = 1699833600;

inline time_point at_seconds(std::int64_t seconds) {
  return from_unix_seconds(origin + seconds);
}
inline time_point at_minutes(double minutes) {
  return time_point{std::chrono::microseconds{(origin * 1'000'000) +
                                              static_cast<std::int64_t>(minutes * 60'000'000.0)}};
}

inline protocol::policy_request rcpt_request(std::string_view recipient, std::string_view sender,
                                             std::string_view client, std::string_view instance) {
  protocol::policy_request r;
  r.request = "smtpd_access_policy";
  r.state = protocol::protocol_state::rcpt;
  r.recipient = recipient;
  r.sender = sender;
  r.client_address = client;
  r.instance = instance;
  r.recipient_count = 0;
  return r;
}

inline protocol::policy_request eom_request(std::string_view instance, std::string_view recipient,
                                            std::uint32_t count, std::uint64_t size,
                                            std::string_view sender = "s@example.org",
                                            std::string_view client = "192.0.2.1") {
  protocol::policy_request r;
  r.request = "smtpd_access_policy";
  r.state = protocol::protocol_state::end_of_message;
  r.recipient = recipient;
  r.sender = sender;
  r.client_address = client;
  r.instance = instance;
  r.recipient_count = count;
  r.size = size;
  return r;
}

/// Small tables so tests stay light; enforce mode unless a test says otherwise.
inline settings test_settings() {
  settings s;
  s.mode = detection_mode::enforce;
  s.max_tracked_recipients = 10'000;
  s.pair_slots = 1 << 14;
  s.correspondent_slots = 1 << 12;
  return s;
}

class driver {
 public:
  explicit driver(settings s = test_settings(), std::uint64_t seed = 42)
      : engine_(std::move(s), seed) {}

  /// One single-recipient message: RCPT, then END-OF-MESSAGE unless the RCPT was deferred.
  verdict message(std::string_view recipient, std::string_view sender, std::string_view client,
                  time_point now, std::uint64_t connection = 1) {
    const std::string instance = next_instance();
    verdict v = engine_.decide(rcpt_request(recipient, sender, client, instance), connection, now);
    if (v.level != verdict_level::defer) {
      engine_.decide(eom_request(instance, recipient, 1, 1000, sender, client), connection, now);
    }
    return v;
  }

  /// `count` messages to `recipient` spaced `step_seconds` apart from `start_seconds`, rotating
  /// over `senders` senders and `clients` clients. Returns the last verdict.
  verdict flood(std::string_view recipient, int count, double start_seconds, double step_seconds,
                int senders = 5, int clients = 5, std::string_view sender_domain = "ex.org") {
    verdict last;
    for (int i = 0; i < count; ++i) {
      last = message(recipient, sender(i % senders, sender_domain), client(i % clients),
                     at_minutes((start_seconds + i * step_seconds) / 60.0));
    }
    return last;
  }

  static std::string sender(int i, std::string_view domain = "ex.org") {
    return "user" + std::to_string(i) + "@" + std::string(domain);
  }
  static std::string client(int i) {
    return "198.51." + std::to_string(100 + i / 250) + "." + std::to_string(1 + i % 250);
  }

  std::string next_instance() { return "1f2e.65a1b2c3." + std::to_string(instance_++); }

  engine& eng() { return engine_; }

 private:
  engine engine_;
  std::uint64_t instance_ = 0;
};

}  // namespace rcptguard::decision::testing
