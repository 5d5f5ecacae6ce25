// Open mail transactions for two-phase counting: which recipients each `instance` has tried so
// far, on which policy connection. Keyed by instance, not by connection, because Postfix re-sends
// a failed request on a new connection and may use a second connection for END-OF-MESSAGE.
// Slots are pooled, so steady-state traffic reuses their strings and vectors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.hpp"
#include "decision/flat_index.hpp"
#include "decision/hash.hpp"

namespace rcptguard::decision {

/// One recipient of an open transaction.
struct tentative {
  std::string recipient;  ///< normalised key
  std::uint64_t recipient_hash = 0;
  time_point at;
  /// Already recorded (counted as accepted at RCPT, or deferred by us): END-OF-MESSAGE and
  /// roll-back leave it alone.
  bool settled = false;
};

struct transaction {
  std::string instance;
  std::uint64_t instance_hash = 0;
  std::uint64_t connection = 0;
  bool attached = false;  ///< false once its connection closed; waits for a retry
  time_point last_activity;
  std::string sender;  ///< normalised, from the first RCPT
  std::string client;  ///< aggregated client network
  std::uint64_t sender_hash = 0;
  bool authenticated = false;         ///< SASL login: the sender is one of ours
  std::vector<tentative> recipients;  ///< [0, recipient_count) are live; the rest is spare capacity
  std::size_t recipient_count = 0;
  bool in_use = false;
};

class transaction_table {
 public:
  static constexpr std::uint32_t npos = flat_index::npos;

  transaction_table(std::size_t max_open, std::size_t max_recipients, std::uint64_t seed);

  std::uint32_t find(std::string_view instance, std::uint64_t instance_hash) const;
  /// The transaction currently attached to `connection`, or npos.
  std::uint32_t on_connection(std::uint64_t connection) const;
  /// Opens a transaction; the caller made room (see full() / oldest()) and knows it is absent.
  std::uint32_t open(std::string_view instance, std::uint64_t instance_hash,
                     std::uint64_t connection, time_point now);
  /// Moves a transaction to `connection` (a retry or a second policy connection).
  void attach(std::uint32_t slot, std::uint64_t connection);
  /// The connection closed: its transaction waits, detached, for a retry on another one.
  void detach(std::uint64_t connection, time_point now);

  bool has_recipient(std::uint32_t slot, std::uint64_t recipient_hash) const;
  /// Adds a recipient; false (nothing added) when the transaction is at max_recipients.
  bool add_recipient(std::uint32_t slot, std::string_view recipient, std::uint64_t recipient_hash,
                     time_point at, bool settled);

  /// Frees the slot; its tentatives must have been settled or rolled back by the caller.
  void release(std::uint32_t slot);

  bool full() const { return open_count_ >= max_open_; }
  /// The least recently active open transaction (the one to evict when full).
  std::uint32_t oldest() const;
  /// Appends the slots that timed out (attached, idle >= timeout) or whose retry never came
  /// (detached, idle >= grace).
  void expired(time_point now, std::chrono::seconds timeout, std::chrono::seconds grace,
               std::vector<std::uint32_t>& out) const;

  transaction& at(std::uint32_t slot) { return slots_[slot]; }
  const transaction& at(std::uint32_t slot) const { return slots_[slot]; }
  std::size_t open_count() const { return open_count_; }

 private:
  std::uint64_t connection_hash(std::uint64_t connection) const;

  std::size_t max_open_;
  std::size_t max_recipients_;
  std::uint64_t connection_key_;
  std::vector<transaction> slots_;
  std::vector<std::uint32_t> free_;
  flat_index by_instance_;
  flat_index by_connection_;
  std::size_t open_count_ = 0;
};

}  // namespace rcptguard::decision
