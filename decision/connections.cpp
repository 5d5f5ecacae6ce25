// Connections per client (see connections.hpp). calloc'd like the pair tables: an idle table
// costs address space, not resident memory.
#include "decision/connections.hpp"

#include <algorithm>

#include "decision/hash.hpp"

namespace rcptguard::decision {

namespace {

// Domain separation of the keys sharing a table.
constexpr std::uint64_t client_counter = 0x636f6e6e2d636c69ULL;
constexpr std::uint64_t pair_counter = 0x636f6e6e2d706169ULL;

using detail::set_count;
using detail::zeroed;

std::uint32_t tag_of(std::uint64_t fingerprint) {
  return static_cast<std::uint32_t>(fingerprint >> 32) | 1U;
}

std::uint16_t epoch_of(std::uint32_t minute) {
  return static_cast<std::uint16_t>(minute / 10);
}

}  // namespace

connection_tracker::connection_tracker(std::size_t session_slots, std::size_t counter_slots)
    : sessions_(zeroed<entry>(set_count(session_slots, ways) * ways)),
      session_sets_(set_count(session_slots, ways)),
      counters_(zeroed<entry>(set_count(counter_slots, ways) * ways)),
      counter_sets_(set_count(counter_slots, ways)) {}

connection_tracker::entry& connection_tracker::slot(entry* table, std::size_t sets,
                                                    std::uint64_t fingerprint, std::uint32_t minute,
                                                    std::uint64_t& overwrites, bool& fresh) {
  const std::uint32_t tag = tag_of(fingerprint);
  entry* set = &table[(fingerprint & (sets - 1)) * ways];
  entry* victim = set;
  for (std::size_t i = 0; i < ways; ++i) {
    entry& e = set[i];
    if (e.tag == tag) {
      fresh = false;
      return e;
    }
    if (victim->tag != 0 && (e.tag == 0 || e.last < victim->last)) victim = &e;
  }
  if (victim->tag != 0) ++overwrites;
  *victim = entry{tag, minute, minute, epoch_of(minute), 0};
  fresh = true;
  return *victim;
}

const connection_tracker::entry* connection_tracker::find(const entry* table, std::size_t sets,
                                                          std::uint64_t fingerprint) const {
  const std::uint32_t tag = tag_of(fingerprint);
  const entry* set = &table[(fingerprint & (sets - 1)) * ways];
  for (std::size_t i = 0; i < ways; ++i) {
    if (set[i].tag == tag) return &set[i];
  }
  return nullptr;
}

bool connection_tracker::touch(std::uint64_t key, std::uint32_t minute, bool force_new,
                               bool may_idle, std::uint32_t& start) {
  bool fresh = false;
  entry& e = slot(sessions_.get(), session_sets_, key, minute, session_overwrites_, fresh);
  // Time going backwards (replayed logs) never makes a session look idle.
  const bool idle = may_idle && minute > e.last && minute - e.last > session_idle;
  if (!fresh && (force_new || idle)) {
    e.start = minute;
    fresh = true;
  }
  e.last = std::max(e.last, minute);
  start = e.start;
  return fresh;
}

std::uint32_t connection_tracker::bump(std::uint64_t key, std::uint32_t minute) {
  bool fresh = false;
  entry& e = slot(counters_.get(), counter_sets_, key, minute, counter_overwrites_, fresh);
  if (e.epoch != epoch_of(minute)) {
    e.epoch = epoch_of(minute);
    e.count = 0;
  }
  if (e.count < 0xffff) ++e.count;
  e.last = std::max(e.last, minute);
  return e.count;
}

std::uint32_t connection_tracker::peek(std::uint64_t key, std::uint32_t minute) const {
  const entry* e = find(counters_.get(), counter_sets_, key);
  return e == nullptr || e->epoch != epoch_of(minute) ? 0 : e->count;
}

std::uint32_t connection_tracker::count_connection(std::uint64_t client, std::uint32_t minute) {
  ++counted_;
  const std::uint32_t count = bump(mix(client, client_counter), minute);
  if (busiest_epoch_ != minute / 10) {
    busiest_epoch_ = minute / 10;
    busiest_ = 0;
  }
  busiest_ = std::max(busiest_, count);
  return count;
}

connection_tracker::sighting connection_tracker::connect(std::uint64_t session,
                                                         std::uint64_t client,
                                                         std::uint32_t minute) {
  if (session != 0) {
    std::uint32_t start = 0;
    touch(session, minute, true, true, start);
  }
  sighting seen;
  seen.new_connection = true;
  seen.client_connections = count_connection(client, minute);
  return seen;
}

connection_tracker::sighting connection_tracker::rcpt(std::uint64_t session, std::uint64_t client,
                                                      std::uint64_t recipient,
                                                      std::uint32_t minute) {
  sighting seen;
  const std::uint64_t pair = mix(mix(client, pair_counter), recipient);
  if (session == 0) {
    seen.client_connections = peek(mix(client, client_counter), minute);
    seen.to_recipient = peek(pair, minute);
    return seen;
  }
  std::uint32_t start = 0;
  seen.new_connection = touch(session, minute, false, true, start);
  seen.client_connections = seen.new_connection ? count_connection(client, minute)
                                                : peek(mix(client, client_counter), minute);
  // The same session's later RCPTs for this recipient (more messages, Postfix retries) are
  // not another connection to it, however far apart; `start` separates sessions that re-use
  // an address and port.
  std::uint32_t pair_start = 0;
  const bool first_for_recipient =
      touch(mix(mix(session, start), recipient), minute, seen.new_connection, false, pair_start);
  seen.to_recipient = first_for_recipient ? bump(pair, minute) : peek(pair, minute);
  return seen;
}

std::uint32_t connection_tracker::connections(std::uint64_t client, std::uint32_t minute) const {
  return peek(mix(client, client_counter), minute);
}

}  // namespace rcptguard::decision
