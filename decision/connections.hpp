// SMTP connections per client, for the connection_rate signal: how many connections a client
// opened in the current 10-minute epoch, and how many of them carried mail for one recipient.
//
// A connection is seen either as a CONNECT-state request (Postfix queries the policy from
// smtpd_client_restrictions with smtpd_delay_reject=no: one request per session, counted every
// time) or, without those, as the first request of a (client_address, client_port) session
// (Postfix 3.0+ sends client_port). Both are de-duplicated through one session table, so a
// CONNECT followed by RCPTs of the same session is one connection. A session stays "the same"
// while it sends a request at least every `session_idle` minutes (smtpd_timeout is 300 s), so
// a long session is not recounted, and a port the client re-uses after that is a new session.
// Requests without a port (Postfix < 3.0, or "unknown") are never counted from RCPT.
//
// Memory is fixed at construction: two 4-way set-associative tables of 16-byte entries that
// overwrite their least recently used entry when a set is full (pairs.hpp's idea, but LRU by
// last use, since a counter of an active client must outlive fresh one-off sessions): one of
// sessions and (session, recipient) pairs, one of counters keyed by client and by (client,
// recipient). Error: an overwritten session is counted again (too many connections); an
// overwritten counter restarts (too few). The keys are keyed hashes, so neither can be steered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "decision/pairs.hpp"

namespace rcptguard::decision {

class connection_tracker {
 public:
  /// Minutes without a request after which an (address, port) is a new session.
  static constexpr std::uint32_t session_idle = 5;

  connection_tracker(std::size_t session_slots, std::size_t counter_slots);

  /// What one request of a session tells about its client.
  struct sighting {
    bool new_connection = false;           ///< this request opened a connection we had not counted
    std::uint32_t client_connections = 0;  ///< of the client in the current 10-minute epoch
    std::uint32_t to_recipient = 0;        ///< of those, connections with an RCPT for the recipient
  };

  /// A CONNECT-state request: always a new connection. `session` is 0 when the port is unknown.
  sighting connect(std::uint64_t session, std::uint64_t client, std::uint32_t minute);

  /// An RCPT of `session` (0: port unknown, nothing is counted) for `recipient`: counts the
  /// session as a connection of `client` unless already counted, and as a connection to the
  /// recipient once per session.
  sighting rcpt(std::uint64_t session, std::uint64_t client, std::uint64_t recipient,
                std::uint32_t minute);

  /// Connections of `client` in the 10-minute epoch of `minute`, without counting anything.
  std::uint32_t connections(std::uint64_t client, std::uint32_t minute) const;

  std::uint64_t counted() const { return counted_; }
  /// The most connections one client opened in the latest 10-minute epoch with connections.
  std::uint32_t busiest() const { return busiest_; }
  std::uint64_t session_overwrites() const { return session_overwrites_; }
  std::uint64_t counter_overwrites() const { return counter_overwrites_; }
  std::size_t bytes() const { return (session_sets_ + counter_sets_) * ways * sizeof(entry); }

 private:
  static constexpr std::size_t ways = 4;
  struct entry {
    std::uint32_t tag;    ///< 0 = empty
    std::uint32_t last;   ///< minute of its latest use (the LRU order)
    std::uint32_t start;  ///< sessions: minute counted, keys its (session, recipient) pairs
    std::uint16_t epoch;  ///< counters: low bits of the 10-minute epoch of `count`
    std::uint16_t count;
  };

  /// The entry for `fingerprint`, or a fresh (zero-count) one replacing the set's stalest.
  entry& slot(entry* table, std::size_t sets, std::uint64_t fingerprint, std::uint32_t minute,
              std::uint64_t& overwrites, bool& fresh);
  const entry* find(const entry* table, std::size_t sets, std::uint64_t fingerprint) const;
  /// Starts or continues a session (or a session/recipient pair); true when it is new.
  /// `may_idle`: a gap longer than session_idle starts it anew (sessions, not pairs).
  bool touch(std::uint64_t key, std::uint32_t minute, bool force_new, bool may_idle,
             std::uint32_t& start);
  /// Adds one to the counter's current epoch and returns it.
  std::uint32_t bump(std::uint64_t key, std::uint32_t minute);
  std::uint32_t peek(std::uint64_t key, std::uint32_t minute) const;
  /// One more connection of `client`; returns its count in the epoch.
  std::uint32_t count_connection(std::uint64_t client, std::uint32_t minute);

  std::unique_ptr<entry[], detail::free_deleter> sessions_;
  std::size_t session_sets_ = 0;
  std::unique_ptr<entry[], detail::free_deleter> counters_;
  std::size_t counter_sets_ = 0;
  std::uint64_t counted_ = 0;
  std::uint64_t session_overwrites_ = 0;
  std::uint64_t counter_overwrites_ = 0;
  std::uint32_t busiest_ = 0;
  std::uint32_t busiest_epoch_ = 0;
};

}  // namespace rcptguard::decision
