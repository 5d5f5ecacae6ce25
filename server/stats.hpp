// Counters for the periodic summary line and for tests. Owned by the network thread; the store
// writer keeps its own atomics.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "protocol/parser.hpp"

namespace rcptguard::server {

/// Why a connection ended without a reply, each with its own counter (greppable in logs).
enum class drop_reason : std::uint8_t {
  parse_error,
  request_timeout,
  reply_timeout,
  internal_error,
  connection_limit,         ///< at max_connections with every session busy
  client_connection_limit,  ///< at max_connections_per_client with all of that client's busy
  fd_limit,                 ///< accepted and closed at once: out of file descriptors
  client_not_allowed,
};
inline constexpr std::size_t drop_reason_count = 8;

std::string_view to_string(drop_reason reason);

/// Durations in fixed buckets, for a Prometheus histogram: per-bucket counts (made cumulative
/// when formatted), their sum and count. Fixed bounds keep observe() a few compares, no
/// allocation, on the network thread.
struct duration_histogram {
  /// Upper bounds in microseconds, ascending; the last bucket (+Inf) is implicit.
  static constexpr std::array<std::uint64_t, 14> bounds_us{
      25,    50,     100,    250,    500,     1'000,   2'500,
      5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};
  std::array<std::uint64_t, bounds_us.size() + 1> buckets{};
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;

  void observe(std::chrono::nanoseconds d) {
    const auto ns = static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count());
    std::size_t i = 0;
    while (i < bounds_us.size() && ns > bounds_us.at(i) * 1000) ++i;
    ++buckets.at(i);
    ++count;
    sum_ns += ns;
  }
};

struct server_stats {
  std::uint64_t requests = 0;
  std::uint64_t dunno = 0;
  std::uint64_t warn = 0;
  std::uint64_t defer = 0;
  std::uint64_t flag = 0;  ///< delivered with the flag header (enforce_action = flag)
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t peak_connections = 0;
  std::uint64_t idle_timeouts = 0;
  std::uint64_t connections_evicted = 0;       ///< idle sessions closed to make room at a cap
  std::uint64_t internal_errors_answered = 0;  ///< faults answered DUNNO under fail-open
  std::array<std::uint64_t, drop_reason_count> drops{};
  std::array<std::uint64_t, 16> parse_errors{};  ///< indexed by protocol::parse_error
  /// From a request's last byte parsed to its whole reply written to the socket (the write's
  /// completion): the handler's time plus the wait for the network thread, not the client's.
  duration_histogram reply_latency;

  void count_drop(drop_reason reason, std::uint64_t n = 1) {
    drops.at(static_cast<std::size_t>(reason)) += n;
  }
  void count_parse_error(protocol::parse_error error) {
    ++parse_errors.at(static_cast<std::size_t>(error));
  }
};

}  // namespace rcptguard::server
