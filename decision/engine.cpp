// The decision engine: wires keys, transactions, windows, baselines, signals, hysteresis and
// the never-the-victim's-DoS exemptions into one verdict per request, and keeps the records.
#include "decision/engine.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "decision/keys.hpp"

namespace rcptguard::decision {

namespace {

// class_id is one byte; 0 is the defaults.
constexpr std::size_t max_threshold_sets = 256;
// Idle keys examined per tick(): bounded work on the network thread, a full sweep of a
// million keys in about 15 minutes at one tick a second.
constexpr std::uint32_t expiry_budget = 1024;
// An episode restored with no update for this long belonged to a flood that ended while we
// were down; it is closed instead of being held for another cool-down.
constexpr std::chrono::hours restored_episode_horizon{24};

// A closed burst's messages stay in the hour window for up to two hour buckets after the close
// (the previous bucket is read as spread evenly), in the 24-hour window for a day.
constexpr std::uint32_t hour_residue_minutes = 2 * 60;
constexpr std::uint32_t day_residue_minutes = 24 * 60;
// Domain separation of the session fingerprint from the other hashes of client addresses.
constexpr std::uint64_t session_domain = 0x73657373696f6e00ULL;

time_point from_minute(std::uint32_t minute) {
  return from_unix_seconds(std::int64_t{minute} * 60);
}

std::size_t index(window w) {
  return static_cast<std::size_t>(w);
}

window window_from_name(std::string_view name) {
  for (const window w : all_windows) {
    if (window_name(w) == name) return w;
  }
  return window::ten_minutes;
}

// What Postfix receives after "action=", exactly as protocol::format_reply renders it.
std::string rendered_action(const protocol::policy_action& action) {
  std::string wire;
  protocol::format_reply(action, wire);
  constexpr std::string_view prefix = "action=";
  constexpr std::string_view suffix = "\n\n";
  if (wire.size() >= prefix.size() + suffix.size()) {
    wire.erase(wire.size() - suffix.size());
    wire.erase(0, prefix.size());
  }
  return wire;
}

// Whether two configurations put every address in the same class with the same allow-list
// flag: then the class ids of tracked recipients stay valid and nothing is re-classified.
bool same_membership(const settings& a, const settings& b) {
  if (a.recipient_delimiters != b.recipient_delimiters ||
      a.allow_recipients != b.allow_recipients || a.overrides.size() != b.overrides.size() ||
      a.classes.size() != b.classes.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.overrides.size(); ++i) {
    if (a.overrides[i].recipient != b.overrides[i].recipient) return false;
  }
  for (std::size_t i = 0; i < a.classes.size(); ++i) {
    if (a.classes[i].recipients != b.classes[i].recipients) return false;
  }
  return true;
}

}  // namespace

engine::engine(settings config, std::uint64_t seed)
    : config_(std::move(config)),
      hash_(seed),
      recipients_(config_.max_tracked_recipients, mix(seed, 1)),
      transactions_(config_.max_open_transactions, config_.max_recipients_per_transaction,
                    mix(seed, 2)),
      pairs_(config_.pair_slots),
      correspondents_(config_.correspondent_slots),
      connections_(config_.client_session_slots, config_.client_connection_slots),
      cluster_(config_.max_cluster_recipients) {
  build_matchers();
}

std::size_t engine::build_matchers() {
  allow_recipients_ = address_patterns(config_.allow_recipients, config_.recipient_delimiters);
  allow_senders_ = address_patterns(config_.allow_senders, config_.recipient_delimiters);
  allow_clients_ = network_set(config_.allow_clients);
  limits_.clear();
  class_patterns_.clear();
  limits_.push_back(config_.defaults);
  std::size_t dropped = 0;
  // A per-recipient override wins over any class, so overrides are matched first.
  for (const recipient_override& one : config_.overrides) {
    if (limits_.size() >= max_threshold_sets) {
      ++dropped;
      continue;
    }
    class_patterns_.emplace_back(address_patterns({one.recipient}, config_.recipient_delimiters),
                                 static_cast<std::uint8_t>(limits_.size()));
    limits_.push_back(one.limits);
  }
  for (const recipient_class& group : config_.classes) {
    if (limits_.size() >= max_threshold_sets) {
      ++dropped;
      continue;
    }
    class_patterns_.emplace_back(address_patterns(group.recipients, config_.recipient_delimiters),
                                 static_cast<std::uint8_t>(limits_.size()));
    limits_.push_back(group.limits);
  }
  return dropped;
}

// ---------------------------------------------------------------------------------------------
// Reload

reconfigure_result engine::reconfigure(settings next, time_point /*now*/) {
  reconfigure_result result;
  // The tables are sized once, at construction (and the recipient table's pages are already
  // in use): a new size only takes effect after a restart.
  const auto keep = [&](auto member, std::string_view name) {
    if (next.*member != config_.*member) result.restart_required.push_back(name);
    next.*member = config_.*member;
  };
  keep(&settings::max_tracked_recipients, "max_tracked_recipients");
  keep(&settings::pair_slots, "pair_slots");
  keep(&settings::correspondent_slots, "correspondent_slots");
  keep(&settings::client_session_slots, "client_session_slots");
  keep(&settings::client_connection_slots, "client_connection_slots");
  keep(&settings::max_open_transactions, "max_open_transactions");
  keep(&settings::max_recipients_per_transaction, "max_recipients_per_transaction");

  result.reclassified = !same_membership(config_, next);
  config_ = std::move(next);
  result.threshold_sets_dropped = build_matchers();
  result.invalid_allow_clients = allow_clients_.invalid();
  ++stats_.reconfigurations;
  if (!result.reclassified) return result;

  // The table keeps no addresses, so most recipients can only be re-classified when a request
  // names them again; until then nothing judges them (tick() judges only open episodes, whose
  // recipients are known and re-classified here). One pass of one flag write per tracked key.
  for (std::uint32_t slot = 0; slot < recipients_.slot_limit(); ++slot) {
    recipient_state& state = recipients_.at(slot);
    if (state.serial != 0) state.set(recipient_state::reclassify, true);
  }
  for (const auto& [key_hash, episode] : episodes_) {
    const std::uint32_t slot = recipients_.find(key_hash);
    if (slot == recipient_table::npos) continue;
    classify(recipients_.at(slot), episode.recipient);
    ++result.episodes_reclassified;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Requests

verdict engine::decide(const protocol::policy_request& request, std::uint64_t connection_id,
                       time_point now) {
  ++stats_.requests;
  switch (request.state) {
    case protocol::protocol_state::rcpt:
      ++stats_.rcpt_requests;
      return on_rcpt(request, connection_id, now);
    case protocol::protocol_state::end_of_message:
      ++stats_.end_of_message_requests;
      on_end_of_message(request, now);
      return {};
    case protocol::protocol_state::connect:
      ++stats_.connect_requests;
      on_connect(request, now);
      on_other(request, connection_id, now);
      return {};
    default:
      on_other(request, connection_id, now);
      return {};
  }
}

void engine::on_other(const protocol::policy_request& request, std::uint64_t connection_id,
                      time_point now) {
  // Postfix: a different instance on the same connection means the previous transaction is over.
  if (request.instance.empty()) return;
  const std::uint32_t open = transactions_.on_connection(connection_id);
  if (open != transaction_table::npos && transactions_.at(open).instance != request.instance) {
    roll_back(open, now);
  }
}

void engine::on_connect(const protocol::policy_request& request, time_point now) {
  normalise_client(request.client_address, config_.ipv6_prefix, client_buf_);
  connections_.connect(session_key(request), client_key(hash_(client_buf_)), unix_minute(now));
}

std::uint64_t engine::session_key(const protocol::policy_request& request) const {
  // Without a port (Postfix < 3.0) sessions cannot be told apart; 0 means "unknown".
  if (request.client_port == 0 || request.client_address.empty()) return 0;
  const std::uint64_t key =
      mix(hash_(request.client_address), session_domain | request.client_port);
  return key == 0 ? 1 : key;
}

void engine::count_connection(recipient_state& state, std::uint64_t session, const keys& k,
                              std::uint32_t minute) {
  const connection_tracker::sighting seen =
      connections_.rcpt(session, client_key(k.client_hash), k.recipient_hash, minute);
  if (seen.to_recipient == 0) return;
  // "All for this recipient": a client that spreads its connections over many recipients is an
  // MTA that reconnects per message, not a bomber. A restarted client counter (to_recipient >
  // client_connections) still qualifies.
  const double share = limits_of(state).connection_rate_share;
  if (seen.to_recipient >= share * seen.client_connections) {
    state.windows.note_client_connections(seen.to_recipient);
  }
}

verdict engine::on_rcpt(const protocol::policy_request& request, std::uint64_t connection_id,
                        time_point now) {
  normalise_address(request.recipient, config_.recipient_delimiters, recipient_buf_);
  if (recipient_buf_.empty()) return {};
  normalise_address(request.sender, config_.recipient_delimiters, sender_buf_);
  normalise_client(request.client_address, config_.ipv6_prefix, client_buf_);
  const keys k{hash_(recipient_buf_), hash_(sender_buf_), hash_(client_buf_)};
  const bool authenticated = !request.sasl_username.empty();

  std::uint32_t txn = transaction_table::npos;
  bool duplicate = false;
  if (!request.instance.empty()) {
    txn = transaction_for(request.instance, connection_id, now);
    transaction& t = transactions_.at(txn);
    t.last_activity = now;
    duplicate = transactions_.has_recipient(txn, k.recipient_hash);
    if (t.recipient_count == 0) {
      t.sender = sender_buf_;
      t.client = client_buf_;
      t.sender_hash = sender_buf_.empty() ? 0 : k.sender_hash;
      t.authenticated = authenticated;
    }
  }

  const judgement j = count_and_judge(k, session_key(request), request.client_address, duplicate,
                                      now, event_source::policy);
  const bool monitor_only =
      j.level == verdict_level::defer && config_.mode == detection_mode::monitor;
  const bool enforced = j.level == verdict_level::defer && !monitor_only;
  const bool flagged = enforced && flags_instead_of_deferring(j.judged.score);
  const bool deferred = enforced && !flagged;

  if (!duplicate) {
    // Settled now: deferred or flagged by us, or counted as accepted at RCPT (no two-phase, no
    // instance, or too many recipients to remember). Otherwise END-OF-MESSAGE or a roll-back
    // settles it. A flagged message is delivered, so it counts as accepted, but it makes no
    // correspondent: the flood's senders must not become "known" for the next flood.
    bool settled = deferred || flagged || !two_phase() || txn == transaction_table::npos;
    if (txn != transaction_table::npos &&
        !transactions_.add_recipient(txn, recipient_buf_, k.recipient_hash, now, settled)) {
      ++stats_.untracked_rcpts;
      settled = true;
    }
    if (settled) {
      if (!deferred) {
        const bool correspondence = !flagged && !sender_buf_.empty();
        count_accepted(recipient_buf_, k.recipient_hash, correspondence ? k.sender_hash : 0,
                       authenticated, now);
      }
      record_delivery(recipient_buf_, k.recipient_hash, sender_buf_, client_buf_, request.size,
                      !deferred, authenticated && !flagged, now, event_source::policy, flagged);
    }
  }

  if (j.level == verdict_level::dunno) return {};
  return respond(j.level, monitor_only, j.seen, j.judged, k.recipient_hash, now,
                 event_source::policy);
}

verdict engine::observe_delivery(const observed_delivery& delivery, time_point at) {
  ++stats_.observed_deliveries;
  normalise_address(delivery.recipient, config_.recipient_delimiters, recipient_buf_);
  if (recipient_buf_.empty()) return {};
  normalise_address(delivery.sender, config_.recipient_delimiters, sender_buf_);
  normalise_client(delivery.client_address, config_.ipv6_prefix, client_buf_);
  const keys k{hash_(recipient_buf_), hash_(sender_buf_), hash_(client_buf_)};

  // A log line names no client port, so there is no session to count as a connection: the
  // same as a policy RCPT without client_port. Connections counted from CONNECT requests of
  // the same client still show.
  const judgement j = count_and_judge(k, 0, delivery.client_address, false, at, event_source::log);
  // The mail is in the mailbox already, whatever we would have answered: it counts as accepted
  // (as the policy path's RCPT + END-OF-MESSAGE) and a DEFER can only be what enforce mode
  // would have done. No transaction: there is nothing left to commit or roll back.
  count_accepted(recipient_buf_, k.recipient_hash, sender_buf_.empty() ? 0 : k.sender_hash,
                 delivery.authenticated, at);
  record_delivery(recipient_buf_, k.recipient_hash, sender_buf_, client_buf_, delivery.size, true,
                  delivery.authenticated, at, event_source::log, false);

  if (j.level == verdict_level::dunno) return {};
  return respond(j.level, j.level == verdict_level::defer, j.seen, j.judged, k.recipient_hash, at,
                 event_source::log);
}

engine::judgement engine::count_and_judge(const keys& k, std::uint64_t session,
                                          std::string_view client_address, bool repeat,
                                          time_point now, event_source source) {
  const std::uint32_t minute = unix_minute(now);
  const std::uint32_t slot = track(recipient_buf_, k.recipient_hash, now);
  recipient_state& state = recipients_.at(slot);
  state.windows.advance(minute);
  if (repeat) {
    ++stats_.duplicate_rcpts;
  } else {
    count_attempt(state, k, minute);
    count_connection(state, session, k, minute);
  }

  judgement out;
  out.seen = observe(state, k.recipient_hash, now);
  out.judged = assess(out.seen, limits_of(state));
  if (state.has(recipient_state::allowlisted)) {
    // Counted, never judged: an allow-listed recipient opens no episodes either.
    if (level_for(out.judged.score, limits_of(state)) != verdict_level::dunno) {
      ++stats_.allowlisted_passes;
    }
    return out;
  }
  out.level = judge(state, recipient_buf_, out.seen, out.judged, now, source);
  if (out.level != verdict_level::dunno && allowlisted(sender_buf_, client_address)) {
    ++stats_.allowlisted_passes;
    out.level = verdict_level::dunno;
  }
  if (out.level == verdict_level::defer) {
    const auto episode = episodes_.find(k.recipient_hash);
    const std::uint64_t sender = sender_buf_.empty() ? 0 : k.sender_hash;
    if (episode != episodes_.end() &&
        is_correspondent(k.recipient_hash, sender, episode->second.started)) {
      ++stats_.correspondent_passes;
      out.level = verdict_level::dunno;
    }
  }
  return out;
}

void engine::on_end_of_message(const protocol::policy_request& request, time_point now) {
  end_of_message_seen_ = true;
  if (request.instance.empty()) return;
  const std::uint32_t slot = transactions_.find(request.instance, hash_(request.instance));
  if (slot != transaction_table::npos) {
    commit(slot, request, now);
    return;
  }
  // Only the END-OF-MESSAGE hook is configured: single-recipient mail is all we can see.
  if (stats_.rcpt_requests != 0 || request.recipient.empty()) return;
  normalise_address(request.recipient, config_.recipient_delimiters, recipient_buf_);
  normalise_address(request.sender, config_.recipient_delimiters, sender_buf_);
  normalise_client(request.client_address, config_.ipv6_prefix, client_buf_);
  if (recipient_buf_.empty()) return;
  const keys k{hash_(recipient_buf_), hash_(sender_buf_), hash_(client_buf_)};
  const bool authenticated = !request.sasl_username.empty();
  recipient_state& state = recipients_.at(track(recipient_buf_, k.recipient_hash, now));
  state.windows.advance(unix_minute(now));
  count_attempt(state, k, unix_minute(now));
  count_connection(state, session_key(request), k, unix_minute(now));
  count_accepted(recipient_buf_, k.recipient_hash, sender_buf_.empty() ? 0 : k.sender_hash,
                 authenticated, now);
  record_delivery(recipient_buf_, k.recipient_hash, sender_buf_, client_buf_, request.size, true,
                  authenticated, now, event_source::policy, false);
}

void engine::connection_closed(std::uint64_t connection_id, time_point now) {
  transactions_.detach(connection_id, now);
}

bool engine::two_phase() const {
  switch (config_.end_of_message_hook) {
    case eom_hook::present:
      return true;
    case eom_hook::absent:
      return false;
    case eom_hook::auto_detect:
      return end_of_message_seen_;
  }
  return end_of_message_seen_;
}

// ---------------------------------------------------------------------------------------------
// Transactions

std::uint32_t engine::transaction_for(std::string_view instance, std::uint64_t connection_id,
                                      time_point now) {
  const std::uint64_t instance_hash = hash_(instance);
  const std::uint32_t slot = transactions_.find(instance, instance_hash);
  const std::uint32_t current = transactions_.on_connection(connection_id);
  if (current != transaction_table::npos && current != slot) roll_back(current, now);
  if (slot != transaction_table::npos) {
    transactions_.attach(slot, connection_id);
    return slot;
  }
  if (transactions_.full()) {
    ++stats_.transaction_evictions;
    roll_back(transactions_.oldest(), now);
  }
  return transactions_.open(instance, instance_hash, connection_id, now);
}

void engine::roll_back(std::uint32_t slot, time_point /*now*/) {
  const transaction& txn = transactions_.at(slot);
  for (std::size_t i = 0; i < txn.recipient_count; ++i) {
    const tentative& rcpt = txn.recipients[i];
    if (rcpt.settled) continue;
    // The attempt was counted at RCPT time; it stays an attempt, never an acceptance.
    record_delivery(rcpt.recipient, rcpt.recipient_hash, txn.sender, txn.client, 0, false,
                    txn.authenticated, rcpt.at, event_source::policy, false);
  }
  ++stats_.transactions_rolled_back;
  transactions_.release(slot);
}

void engine::commit(std::uint32_t slot, const protocol::policy_request& request, time_point now) {
  const transaction& txn = transactions_.at(slot);
  // Postfix names the recipient only when exactly one was accepted; then the others were not.
  normalise_address(request.recipient, config_.recipient_delimiters, recipient_buf_);
  std::size_t pending = 0;
  for (std::size_t i = 0; i < txn.recipient_count; ++i)
    pending += txn.recipients[i].settled ? 0 : 1;
  if (recipient_buf_.empty() && request.recipient_count != pending) {
    // Some RCPTs we passed were refused later (or Postfix counted ones we had settled); we
    // cannot tell which, so all pending ones count: an over- rather than an under-count.
    ++stats_.end_of_message_mismatches;
  }
  for (std::size_t i = 0; i < txn.recipient_count; ++i) {
    const tentative& rcpt = txn.recipients[i];
    if (rcpt.settled) continue;
    const bool accepted = recipient_buf_.empty() || rcpt.recipient == recipient_buf_;
    if (accepted) {
      count_accepted(rcpt.recipient, rcpt.recipient_hash, txn.sender_hash, txn.authenticated, now);
    }
    record_delivery(rcpt.recipient, rcpt.recipient_hash, txn.sender, txn.client,
                    accepted ? request.size : 0, accepted, txn.authenticated,
                    accepted ? now : rcpt.at, event_source::policy, false);
  }
  ++stats_.transactions_committed;
  transactions_.release(slot);
}

void engine::record_delivery(std::string_view recipient, std::uint64_t recipient_hash,
                             std::string_view sender, std::string_view client, std::uint64_t size,
                             bool accepted, bool authenticated, time_point at, event_source source,
                             bool header_flagged) {
  delivery_record record;
  record.header_flagged = header_flagged;
  if (const std::uint32_t slot = recipients_.find(recipient_hash); slot != recipient_table::npos) {
    const recipient_state& state = recipients_.at(slot);
    const std::uint32_t minute = unix_minute(at);
    const unsigned second = second_in_minute(at);
    record.minute_volume =
        static_cast<std::uint32_t>(state.windows.attempted(window::minute, minute, second));
    record.ten_minute_volume =
        static_cast<std::uint32_t>(state.windows.attempted(window::ten_minutes, minute, second));
    // An episode opened against the prior (the recipient's first week) is not trusted to be a
    // flood: those hours are learned, or a busy account would stay flagged for ever.
    record.in_episode = state.has(recipient_state::flagged) &&
                        state.history_hours >= config_.baseline.min_history_hours;
  }
  record.at = at;
  record.recipient.assign(recipient);
  record.sender.assign(sender);
  record.client.assign(client);
  record.size = size;
  record.accepted = accepted;
  record.authenticated = authenticated;
  record.source = source;
  outbox_.deliveries.push_back(std::move(record));
}

// ---------------------------------------------------------------------------------------------
// Counting

std::uint32_t engine::track(std::string_view recipient, std::uint64_t recipient_hash,
                            time_point now) {
  const std::uint32_t found = recipients_.find(recipient_hash);
  if (found != recipient_table::npos) {
    recipient_state& state = recipients_.at(found);
    if (state.has(recipient_state::reclassify)) classify(state, recipient);
    return found;
  }
  if (recipients_.full()) {
    forget(recipients_.pick_victim(), now);
    recipients_.count_eviction();
  }
  const std::uint32_t slot = recipients_.insert(recipient_hash);
  classify(recipients_.at(slot), recipient);
  return slot;
}

void engine::classify(recipient_state& state, std::string_view recipient) const {
  state.class_id = class_of(recipient);
  state.set(recipient_state::allowlisted,
            allow_recipients_.matches(recipient) ||
                operator_allows_.allows(recipient, allow_kind::recipient));
  state.set(recipient_state::reclassify, false);
}

void engine::forget(std::uint32_t slot, time_point now) {
  const recipient_state& state = recipients_.at(slot);
  if (state.has(recipient_state::flagged)) {
    close_episode(state.key_hash, now, close_cause::evicted);
  }
  evidence_.erase(state.key_hash);
  recipients_.erase(slot);
}

std::uint8_t engine::class_of(std::string_view recipient) const {
  for (const auto& [patterns, id] : class_patterns_) {
    if (patterns.matches(recipient)) return id;
  }
  return 0;
}

const thresholds& engine::limits_of(const recipient_state& state) const {
  return limits_[state.class_id < limits_.size() ? state.class_id : 0];
}

void engine::count_attempt(recipient_state& state, const keys& k, std::uint32_t minute) {
  state.windows.add_attempt();
  if (minute > total_head_) {
    const std::uint32_t gap = minute - total_head_;
    for (std::uint32_t i = 1; i <= std::min<std::uint32_t>(gap, 10); ++i) {
      total_minutes_[(total_head_ + i) % total_minutes_.size()] = 0;
    }
    total_head_ = minute;
  }
  std::uint32_t& total = total_minutes_[total_head_ % total_minutes_.size()];
  if (total < 0xffffffffU) ++total;

  // Fingerprints carry the recipient's serial, so a recycled slot never inherits old pairs.
  const std::uint64_t serial = std::uint64_t{state.serial} << 1;
  const pair_tracker::sighting sender = pairs_.observe(mix(k.sender_hash, serial), minute);
  state.windows.add_sender(sender.new_ten, sender.new_hour);
  const pair_tracker::sighting client = pairs_.observe(mix(k.client_hash, serial | 1), minute);
  state.windows.add_client(client.new_ten);
  state.windows.note_client_count(client.epoch_count);
}

void engine::count_accepted(std::string_view recipient, std::uint64_t recipient_hash,
                            std::uint64_t sender_hash, bool authenticated, time_point now) {
  const std::uint32_t minute = unix_minute(now);
  recipient_state& state = recipients_.at(track(recipient, recipient_hash, now));
  state.windows.advance(minute);
  state.windows.add_accepted();
  // A bounce (null sender) is not correspondence: it would make backscatter "known".
  if (sender_hash == 0) return;
  correspondents_.observe(pair_fingerprint(recipient_hash, sender_hash), minute, minute);
  if (authenticated) {
    correspondents_.observe(pair_fingerprint(sender_hash, recipient_hash), minute, minute);
  }
}

// ---------------------------------------------------------------------------------------------
// Judging

observation engine::observe(const recipient_state& state, std::uint64_t key_hash,
                            time_point now) const {
  const thresholds& limits = limits_of(state);
  const std::uint32_t minute = unix_minute(now);
  const unsigned second = second_in_minute(now);
  observation seen;
  for (const window w : all_windows) {
    seen.volume[index(w)] = state.windows.attempted(w, minute, second);
  }
  const bool learned = state.has(recipient_state::learned);
  const double hourly = learned ? double{state.baseline.hourly} : prior_.hourly;
  const double spread = learned ? double{state.baseline.spread} : prior_.spread;
  const double senders = learned ? double{state.baseline.senders_hourly} : prior_.senders_hourly;
  const double daily = learned ? double{state.baseline.daily} : prior_.daily;
  const double expected_hour = hourly + limits.baseline_spread_weight * spread;
  seen.expected[index(window::minute)] = expected_hour / 60.0;
  seen.expected[index(window::ten_minutes)] = expected_hour / 6.0;
  seen.expected[index(window::hour)] = expected_hour;
  seen.expected[index(window::day)] = std::max(daily, expected_hour);
  seen.day_judged = learned && state.history_hours >= config_.baseline.cold_start_hours;
  if (learned) {
    seen.usual_burst[index(window::minute)] = state.baseline.burst_minute;
    seen.usual_burst[index(window::ten_minutes)] = state.baseline.burst_ten_minutes;
    seen.usual_burst[index(window::hour)] = state.baseline.burst_hour;
    seen.usual_senders_burst = state.baseline.burst_senders_hour;
  }
  if (minute < state.residue_until) {
    double& day = seen.volume[index(window::day)];
    day = std::max(0.0, day - state.residue);
    if (minute + day_residue_minutes < state.residue_until + hour_residue_minutes) {
      double& hour = seen.volume[index(window::hour)];
      hour = std::max(0.0, hour - state.residue);
    }
  }

  seen.senders_ten = state.windows.distinct_senders_ten_minutes(minute);
  seen.senders_hour = state.windows.distinct_senders_hour(minute, second);
  seen.expected_senders_hour = senders;
  seen.expected_senders_ten = senders / 6.0;
  seen.clients_ten = state.windows.distinct_clients_ten_minutes(minute);
  seen.top_client_share = state.windows.top_client_share(minute, limits.single_client_min_messages,
                                                         seen.top_client_sample);
  seen.client_connections = state.windows.top_client_connections(minute);
  // After the residue: an operator's reset on this node zeroes this node's counts only.
  cluster_.add_to(key_hash, seen, now, config_.cluster_max_age);

  const std::uint32_t head = total_head_;
  for (std::uint32_t k = 0; k < total_minutes_.size(); ++k) {
    const std::uint32_t m = std::max(minute, head) - k;
    if (m <= head && head - m < total_minutes_.size()) {
      seen.total_ten += total_minutes_[m % total_minutes_.size()];
    }
  }

  if (state.has(recipient_state::evidence)) {
    const auto found = evidence_.find(key_hash);
    if (found != evidence_.end() && now - found->second.at <= limits.evidence_max_age) {
      seen.evidence_repeats = found->second.repeats;
      seen.evidence_sha256 = found->second.sha256_prefix;
    }
  }
  return seen;
}

verdict_level engine::judge(recipient_state& state, std::string_view recipient,
                            const observation& seen, const assessment& judged, time_point now,
                            event_source source) {
  const thresholds& limits = limits_of(state);
  auto found = episodes_.find(state.key_hash);
  verdict_level level = verdict_level::dunno;
  if (found == episodes_.end()) {
    level = level_for(judged.score, limits);
    if (level == verdict_level::dunno) return level;
    found = episodes_.emplace(state.key_hash, open_episode(recipient, level, now)).first;
    episode_state& opened = found->second;
    // Its later records (new peaks, the close from tick()) keep the source that opened it.
    opened.source = source;
    opened.held_by = holding_window(judged);
    opened.day_at_open = seen.volume[index(window::day)];
    opened.ten_minutes_at_open = seen.volume[index(window::ten_minutes)];
    state.set(recipient_state::flagged, true);
  } else {
    level = hold(found->second, judged, limits, now);
    if (level == verdict_level::dunno) {
      close_episode(state.key_hash, now);
      return level;
    }
  }
  episode_state& episode = found->second;
  const bool opened = episode.peak_score == 0.0;
  if (opened || level > episode.peak_level ||
      judged.score >= episode.peak_score * config_.episode_peak_step) {
    episode.updated = now;
    episode.peak_level = std::max(episode.peak_level, level);
    episode.peak_score = std::max(episode.peak_score, judged.score);
    episode.peak_window = judged.strongest;
    episode.peak_observed = seen.volume[index(judged.strongest)];
    episode.peak_baseline = seen.expected[index(judged.strongest)];
    episode.summary.clear();
    summarise(recipient, seen, judged, episode.summary);
    outbox_.episodes.push_back(to_record(episode, false));
  }
  return level;
}

void engine::close_episode(std::uint64_t key_hash, time_point now, close_cause cause) {
  const auto found = episodes_.find(key_hash);
  if (found == episodes_.end()) return;
  const episode_state& episode = found->second;
  const std::uint32_t slot = recipients_.find(key_hash);
  if (slot != recipient_table::npos) {
    recipient_state& state = recipients_.at(slot);
    state.set(recipient_state::flagged, false);
    if (episode.held_by != window::day) {
      const std::uint32_t minute = unix_minute(now);
      const double day = state.windows.attempted(window::day, minute, second_in_minute(now));
      const double added = day - episode.day_at_open + episode.ten_minutes_at_open;
      state.residue = static_cast<std::uint16_t>(std::clamp(added, 0.0, 65535.0));
      state.residue_until = minute + day_residue_minutes;
    }
  }
  found->second.updated = now;
  outbox_.episodes.push_back(to_record(found->second, true));
  outbox_.episodes.back().closed_by = cause;
  episodes_.erase(found);
}

bool engine::is_correspondent(std::uint64_t recipient_hash, std::uint64_t sender_hash,
                              time_point episode_start) const {
  if (sender_hash == 0) return false;
  const std::uint32_t first =
      correspondents_.first_seen(pair_fingerprint(recipient_hash, sender_hash));
  return first != 0 && from_minute(first) + config_.correspondent_min_age <= episode_start;
}

bool engine::allowlisted(std::string_view sender, std::string_view client_address) const {
  return (!allow_senders_.empty() && allow_senders_.matches(sender)) ||
         operator_allows_.allows(sender, allow_kind::sender) ||
         allow_clients_.contains(client_address);
}

bool engine::flags_instead_of_deferring(double score) const {
  return config_.enforce_action == flood_action::flag && score < config_.hard_defer_score;
}

protocol::policy_action engine::flag_action(std::uint64_t recipient_hash, double score) {
  const auto episode = episodes_.find(recipient_hash);
  protocol::policy_action action;
  action.verb = protocol::action_verb::prepend;
  action.text.append(config_.flag_header).append(": ").append(recipient_buf_);
  if (episode != episodes_.end()) {
    action.text.append(" episode=").append(format_utc(episode->second.started));
  }
  // Two decimals, rounded down: 2.97 must not read as a hard_defer_score of 3.
  char text[32];
  std::snprintf(text, sizeof text, " score=%.2f", std::floor(score * 100.0) / 100.0);
  action.text.append(text);
  return action;
}

verdict engine::respond(verdict_level level, bool monitor_only, const observation& seen,
                        const assessment& judged, std::uint64_t recipient_hash, time_point now,
                        event_source source) {
  text_buf_.clear();
  summarise(recipient_buf_, seen, judged, text_buf_);
  verdict answer;
  const bool enforced = level == verdict_level::defer && !monitor_only;
  if (enforced && flags_instead_of_deferring(judged.score)) {
    // Delivered, marked: the reason stays in the log and the store, the header is for Sieve.
    answer.level = verdict_level::defer;
    answer.action = flag_action(recipient_hash, judged.score);
    ++stats_.verdicts_flagged;
  } else if (enforced) {
    answer.level = verdict_level::defer;
    answer.action = config_.defer_action;
    if (!answer.action.text.empty()) answer.action.text.push_back(' ');
    answer.action.text.append(text_buf_);
    ++stats_.verdicts_defer;
  } else {
    answer.level = verdict_level::warn;
    answer.action.verb = protocol::action_verb::warn;
    answer.action.text = text_buf_;
    if (monitor_only) {
      answer.action.text.append(" (monitor: would defer)");
      ++stats_.monitor_would_defer;
    }
    ++stats_.verdicts_warn;
  }
  explain(seen, judged, answer.reasons);

  verdict_record record;
  record.at = now;
  record.recipient = recipient_buf_;
  record.sender = sender_buf_;
  record.client = client_buf_;
  record.level = level;
  record.score = judged.score;
  record.action_text = rendered_action(answer.action);
  record.reasons = answer.reasons;
  record.monitor_only = monitor_only;
  record.header_flagged = answer.action.verb == protocol::action_verb::prepend;
  record.source = source;
  outbox_.verdicts.push_back(std::move(record));
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Housekeeping, learning and restore

void engine::tick(time_point now) {
  expired_buf_.clear();
  transactions_.expired(now, config_.transaction_timeout, config_.detached_transaction_grace,
                        expired_buf_);
  for (const std::uint32_t slot : expired_buf_) {
    if (transactions_.at(slot).attached) ++stats_.transaction_timeouts;
    roll_back(slot, now);
  }

  // Episodes cool down even when no more mail arrives for their recipient.
  closing_buf_.clear();
  for (auto& [key_hash, episode] : episodes_) {
    const std::uint32_t slot = recipients_.find(key_hash);
    if (slot == recipient_table::npos) {
      closing_buf_.push_back(key_hash);
      continue;
    }
    const recipient_state& state = recipients_.at(slot);
    const assessment judged = assess(observe(state, key_hash, now), limits_of(state));
    if (hold(episode, judged, limits_of(state), now) == verdict_level::dunno) {
      closing_buf_.push_back(key_hash);
    }
  }
  for (const std::uint64_t key_hash : closing_buf_) close_episode(key_hash, now);
  expire_operator_allows(now);
  cluster_.expire(now, config_.cluster_max_age, expiry_budget);

  const std::uint32_t minute = unix_minute(now);
  const auto idle_minutes = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::minutes>(config_.idle_expiry).count());
  for (std::uint32_t n = 0; n < expiry_budget && recipients_.slot_limit() > 0; ++n) {
    if (expiry_cursor_ >= recipients_.slot_limit()) expiry_cursor_ = 0;
    const std::uint32_t slot = expiry_cursor_++;
    const recipient_state& state = recipients_.at(slot);
    if (state.serial == 0 || state.has(recipient_state::flagged) ||
        state.has(recipient_state::learned) || state.has(recipient_state::evidence)) {
      continue;
    }
    if (state.windows.newest_minute() + idle_minutes <= minute) {
      forget(slot, now);
      ++stats_.recipients_expired;
    }
  }

  for (auto it = evidence_.begin(); it != evidence_.end();) {
    const std::uint32_t slot = recipients_.find(it->first);
    const thresholds& limits =
        slot == recipient_table::npos ? limits_[0] : limits_of(recipients_.at(slot));
    if (now - it->second.at > limits.evidence_max_age) {
      if (slot != recipient_table::npos) recipients_.at(slot).set(recipient_state::evidence, false);
      it = evidence_.erase(it);
    } else {
      ++it;
    }
  }
}

void engine::update_histories(std::span<const recipient_history> histories, time_point now) {
  prior_ = compute_prior(histories, to_unix_seconds(now), config_.baseline, prior_);
  const std::int64_t now_hour = to_unix_seconds(now) / 3600;
  std::vector<hourly_count> merged;
  std::string key;
  for (const recipient_history& history : histories) {
    normalise_address(history.recipient, config_.recipient_delimiters, key);
    if (key.empty()) continue;
    recipient_state& state = recipients_.at(track(key, hash_(key), now));
    // Our own counts of the hours the store has not reported yet.
    merged.assign(history.hours.begin(), history.hours.end());
    const std::int64_t last = merged.empty() ? 0 : merged.back().hour_start;
    for (std::int64_t hour = now_hour - 23; hour < now_hour; ++hour) {
      if (hour * 3600 <= last || hour < 0) continue;
      const auto h = static_cast<std::uint32_t>(hour);
      hourly_count live;
      live.hour_start = hour * 3600;
      live.attempted = state.windows.attempted_in_hour(h);
      live.accepted = state.windows.accepted_in_hour(h);
      if (live.attempted != 0 || live.accepted != 0) merged.push_back(live);
    }
    const baseline b = compute_baseline(merged, to_unix_seconds(now), prior_, config_.baseline,
                                        limits_of(state).baseline_ceiling_per_hour);
    const auto whole = [](double messages) {
      return static_cast<std::uint16_t>(std::clamp(std::ceil(messages), 0.0, 65535.0));
    };
    state.baseline = compact_baseline{static_cast<float>(b.hourly),
                                      static_cast<float>(b.spread),
                                      static_cast<float>(b.senders_hourly),
                                      static_cast<float>(b.daily),
                                      whole(b.burst_minute),
                                      whole(b.burst_ten_minutes),
                                      whole(b.burst_hour),
                                      whole(b.burst_senders_hour)};
    state.history_hours =
        static_cast<std::uint16_t>(std::min<std::uint32_t>(b.history_hours, 0xffff));
    state.set(recipient_state::learned, true);
  }
}

void engine::restore(const restore_snapshot& snapshot, time_point now) {
  // First, so the recipients tracked below are classified with them.
  restore_operator_allows(snapshot.operator_allows, now);
  // An operator's reset or release zeroed a recipient's counters: the rows before it stay out.
  std::unordered_map<std::string_view, std::uint32_t> reset_minute;
  for (const counter_reset& reset : snapshot.counter_resets) {
    std::uint32_t& m = reset_minute[reset.recipient];
    m = std::max(m, unix_minute(reset.at));
  }
  const std::uint32_t minute = unix_minute(now);
  for (const minute_count& row : snapshot.recent_minutes) {
    const auto row_minute =
        static_cast<std::uint32_t>(std::max<std::int64_t>(0, row.minute_start) / 60);
    if (row_minute > minute || row.recipient.empty()) continue;
    if (const auto reset = reset_minute.find(row.recipient);
        reset != reset_minute.end() && row_minute <= reset->second) {
      continue;
    }
    recipient_state& state = recipients_.at(track(row.recipient, hash_(row.recipient), now));
    state.windows.advance(minute);
    state.windows.restore_minute(row_minute, row.accepted, row.attempted);
    if (minute - row_minute < total_minutes_.size()) {
      total_head_ = std::max(total_head_, minute);
      std::uint32_t& total = total_minutes_[row_minute % total_minutes_.size()];
      total = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(0xffffffffU, std::uint64_t{total} + row.attempted));
    }
  }

  update_histories(snapshot.histories, now);

  for (const correspondent_pair& pair : snapshot.correspondents) {
    if (pair.sender.empty() || pair.recipient.empty()) continue;
    const auto first = static_cast<std::uint32_t>(std::max<std::int64_t>(60, pair.first_seen) / 60);
    const auto last = static_cast<std::uint32_t>(std::max<std::int64_t>(60, pair.last_seen) / 60);
    correspondents_.observe(pair_fingerprint(hash_(pair.recipient), hash_(pair.sender)), first,
                            std::max(first, last));
  }

  for (const episode_record& record : snapshot.open_episodes) {
    if (record.ended || record.recipient.empty()) continue;
    if (now - record.updated >= restored_episode_horizon) {
      episode_record closed = record;
      closed.ended = true;
      closed.updated = now;
      closed.closed_by = close_cause::stale;
      outbox_.episodes.push_back(std::move(closed));
      continue;
    }
    const std::uint64_t key_hash = hash_(record.recipient);
    recipients_.at(track(record.recipient, key_hash, now)).set(recipient_state::flagged, true);
    episode_state episode = open_episode(record.recipient, record.peak_level, now);
    episode.started = record.started;
    episode.updated = record.updated;
    episode.peak_score = record.peak_score;
    episode.peak_window = window_from_name(record.peak_window);
    episode.peak_observed = record.peak_observed;
    episode.peak_baseline = record.peak_baseline;
    episode.summary = record.summary;
    episode.source = record.source;
    episode.cluster_id = record.cluster_id;
    episodes_.insert_or_assign(key_hash, std::move(episode));
  }
}

void engine::update_cluster_counts(std::span<const cluster_counts> counts, time_point now) {
  for (const cluster_counts& c : counts) {
    cluster_.update(hash_(c.recipient), c, now, outbox_.cluster_hours);
  }
}

void engine::cluster_episode(std::string_view recipient, time_point started, std::string_view id,
                             time_point /*now*/) {
  const auto found = episodes_.find(hash_(recipient));
  if (found == episodes_.end() || found->second.started != started ||
      found->second.cluster_id == id) {
    return;
  }
  found->second.cluster_id = id;
  outbox_.episodes.push_back(to_record(found->second, false));
}

void engine::cluster_correspondents(std::span<const known_senders> known, time_point now) {
  // Seen now through the cluster: kept like a pair last seen now, not evicted first.
  const std::uint32_t minute = unix_minute(now);
  for (const known_senders& k : known) {
    if (k.recipient.empty()) continue;
    const std::uint64_t recipient_hash = hash_(k.recipient);
    for (const known_senders::sender& s : k.senders) {
      if (s.address.empty() || s.first_minute == 0) continue;
      correspondents_.observe(pair_fingerprint(recipient_hash, hash_(s.address)), s.first_minute,
                              std::max(s.first_minute, minute));
      ++stats_.cluster_correspondents;
    }
  }
}

void engine::cluster_lost(time_point /*now*/) {
  cluster_.clear();
}

void engine::update_spool_evidence(std::string_view recipient, const spool_evidence& evidence,
                                   time_point now) {
  std::string key;
  normalise_address(recipient, config_.recipient_delimiters, key);
  if (key.empty()) return;
  const std::uint64_t key_hash = hash_(key);
  recipients_.at(track(key, key_hash, now)).set(recipient_state::evidence, true);
  evidence_.insert_or_assign(key_hash, evidence);
}

// ---------------------------------------------------------------------------------------------
// Introspection

engine_stats engine::stats() const {
  engine_stats out = stats_;
  out.cluster = cluster_.stats();
  out.tracked_recipients = recipients_.size();
  out.max_tracked_recipients = config_.max_tracked_recipients;
  out.recipient_evictions = recipients_.evictions();
  out.open_transactions = transactions_.open_count();
  out.two_phase = two_phase();
  out.open_episodes = episodes_.size();
  out.correspondents = correspondents_.size();
  out.correspondent_overwrites = correspondents_.overwrites();
  out.pair_overwrites = pairs_.overwrites();
  out.client_connections = connections_.counted();
  out.busiest_client_connections = connections_.busiest();
  out.client_session_overwrites = connections_.session_overwrites();
  out.client_counter_overwrites = connections_.counter_overwrites();
  out.prior = prior_;
  return out;
}

std::uint32_t engine::client_connections(std::string_view client, time_point now) const {
  std::string key;
  normalise_client(client, config_.ipv6_prefix, key);
  return connections_.connections(client_key(hash_(key)), unix_minute(now));
}

recipient_view engine::inspect(std::string_view recipient, time_point now) const {
  recipient_view view;
  std::string key;
  normalise_address(recipient, config_.recipient_delimiters, key);
  const std::uint64_t key_hash = hash_(key);
  const std::uint32_t slot = recipients_.find(key_hash);
  if (slot == recipient_table::npos) return view;
  // A recipient awaiting re-classification is shown as it will be judged.
  recipient_state reclassified;
  const recipient_state* tracked = &recipients_.at(slot);
  if (tracked->has(recipient_state::reclassify)) {
    reclassified = *tracked;
    classify(reclassified, key);
    tracked = &reclassified;
  }
  const recipient_state& state = *tracked;
  const std::uint32_t minute = unix_minute(now);
  const unsigned second = second_in_minute(now);
  const observation seen = observe(state, key_hash, now);
  view.tracked = true;
  for (const window w : all_windows) {
    view.attempted[index(w)] = seen.volume[index(w)];
    view.accepted[index(w)] = state.windows.accepted(w, minute, second);
    view.expected[index(w)] = seen.expected[index(w)];
  }
  view.senders_ten = seen.senders_ten;
  view.senders_hour = seen.senders_hour;
  view.clients_ten = seen.clients_ten;
  view.top_client_share = seen.top_client_share;
  view.client_connections = seen.client_connections;
  view.learned = state.has(recipient_state::learned);
  view.baseline_hourly = view.learned ? double{state.baseline.hourly} : prior_.hourly;
  view.score = assess(seen, limits_of(state)).score;
  const auto found = episodes_.find(key_hash);
  if (found != episodes_.end()) {
    view.in_episode = true;
    view.held = found->second.held;
    view.episode_started = found->second.started;
  }
  return view;
}

}  // namespace rcptguard::decision
