// The decision engine: a parsed request (or a delivery seen in the mail log) and its time in, a
// verdict out, records to the outbox.
// Pure: no clock, no I/O, no threads, no locks, no exceptions on bad input; one owner thread.
// Persistence happens elsewhere from the records in pending(); learned state comes back in
// through restore() and update_histories().
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/time.hpp"
#include "decision/baseline.hpp"
#include "decision/cluster.hpp"
#include "decision/connections.hpp"
#include "decision/episodes.hpp"
#include "decision/events.hpp"
#include "decision/hash.hpp"
#include "decision/matchers.hpp"
#include "decision/operator_allowlist.hpp"
#include "decision/pairs.hpp"
#include "decision/recipients.hpp"
#include "decision/settings.hpp"
#include "decision/signals.hpp"
#include "decision/transactions.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"

namespace rcptguard::decision {

struct verdict {
  verdict_level level = verdict_level::dunno;  ///< what was answered (WARN in monitor mode)
  protocol::policy_action action;
  std::vector<reason> reasons;
};

/// Attachment duplication found in a recipient's mailbox by the spool scanner.
struct spool_evidence {
  std::uint32_t repeats = 0;       ///< copies of the same attachment
  std::string sha256_prefix;       ///< of that attachment, for the reason text
  std::chrono::seconds window{0};  ///< over which the copies arrived
  time_point at;                   ///< when the scanner found them
};

/// One recipient of one message that a mail log showed delivered (not a policy request).
///
/// Double counting: the engine counts whatever it is given. Which deliveries to pass - only
/// those of hosts and Postfix instances the policy hook does not cover - is the caller's
/// choice, because only the log tells where a message came in.
struct observed_delivery {
  std::string_view recipient;
  std::string_view sender;  ///< empty for the null sender
  std::string_view client_address;
  std::uint64_t size = 0;
  bool authenticated = false;  ///< the client logged in (SASL): it is one of our users
};

/// What reconfigure() did not, or not yet, apply; the daemon logs it.
struct reconfigure_result {
  /// Table sizes whose new value differs from the running one; they keep the running value
  /// until a restart. Field names of `settings`, e.g. "max_tracked_recipients".
  std::vector<std::string_view> restart_required;
  /// allow_clients entries that are neither an address nor a CIDR; they never match.
  std::vector<std::string> invalid_allow_clients;
  /// Overrides and classes beyond the 255 threshold sets an engine holds; they are ignored.
  std::size_t threshold_sets_dropped = 0;
  /// Class membership changed (classes, overrides, allow_recipients or delimiters): tracked
  /// recipients are re-classified, at once those with an open episode, the rest when next seen.
  bool reclassified = false;
  std::size_t episodes_reclassified = 0;
};

struct engine_stats {
  std::uint64_t requests = 0;
  std::uint64_t rcpt_requests = 0;
  std::uint64_t end_of_message_requests = 0;
  std::uint64_t observed_deliveries = 0;  ///< observe_delivery() calls; not requests
  std::uint64_t duplicate_rcpts = 0;      ///< same instance + recipient again (Postfix retry)
  std::uint64_t untracked_rcpts = 0;      ///< beyond max_recipients_per_transaction
  std::size_t tracked_recipients = 0;
  std::size_t max_tracked_recipients = 0;
  std::uint64_t recipient_evictions = 0;  ///< at the key cap
  std::uint64_t recipients_expired = 0;   ///< idle past idle_expiry
  std::size_t open_transactions = 0;
  std::uint64_t transactions_committed = 0;
  std::uint64_t transactions_rolled_back = 0;  ///< all causes, including the two below
  std::uint64_t transaction_timeouts = 0;
  std::uint64_t transaction_evictions = 0;      ///< at max_open_transactions
  std::uint64_t end_of_message_mismatches = 0;  ///< recipient_count != our pending recipients
  bool two_phase = false;  ///< RCPTs wait for END-OF-MESSAGE (hook configured or seen)
  std::uint64_t verdicts_warn = 0;
  std::uint64_t verdicts_defer = 0;
  std::uint64_t verdicts_flagged = 0;      ///< enforce_action = flag: delivered with the header
  std::uint64_t monitor_would_defer = 0;   ///< WARNs that enforce mode would have deferred
  std::uint64_t correspondent_passes = 0;  ///< DUNNO for a known correspondent under DEFER
  std::uint64_t allowlisted_passes = 0;    ///< DUNNO for an allow-listed recipient/sender/client
  std::size_t open_episodes = 0;
  std::size_t correspondents = 0;
  std::uint64_t correspondent_overwrites = 0;
  std::uint64_t cluster_correspondents = 0;  ///< pairs taken from the cluster store
  std::uint64_t pair_overwrites = 0;
  std::uint64_t connect_requests = 0;    ///< CONNECT-state requests (smtpd_delay_reject=no)
  std::uint64_t client_connections = 0;  ///< SMTP connections counted (CONNECT or new session)
  std::uint32_t busiest_client_connections = 0;  ///< most by one client, latest 10-min epoch
  std::uint64_t client_session_overwrites = 0;   ///< sessions forgotten early (may recount)
  std::uint64_t client_counter_overwrites = 0;   ///< connection counters restarted early
  std::uint64_t reconfigurations = 0;
  baseline_prior prior;
  cluster_stats cluster;
};

/// What the engine knows about one recipient now (for tests and an operator's "explain").
struct recipient_view {
  bool tracked = false;
  std::array<double, 4> attempted{};  ///< all_windows order
  std::array<double, 4> accepted{};
  std::array<double, 4> expected{};
  double senders_ten = 0.0;
  double senders_hour = 0.0;
  double clients_ten = 0.0;
  double top_client_share = 0.0;
  /// Most connections one client opened for this recipient in the current or previous
  /// 10-minute epoch while they were at least connection_rate_share of all its connections.
  double client_connections = 0.0;
  bool learned = false;  ///< baseline from own history (else the server-wide prior)
  double baseline_hourly = 0.0;
  double score = 0.0;
  bool in_episode = false;
  verdict_level held = verdict_level::dunno;
  time_point episode_started;
};

/// What an operator command did (see engine::operator_allow and the others).
struct operator_result {
  bool ok = false;      ///< false: nothing changed (no such entry, no open episode, list full)
  std::string key;      ///< the normalised address acted on
  std::string message;  ///< one sentence for the operator: what changed, or why nothing did
};

/// One open episode as an operator's status shows it.
struct episode_view {
  std::string recipient;
  verdict_level level = verdict_level::warn;  ///< held now
  time_point started;
  double score = 0.0;  ///< now
  double peak_score = 0.0;
};

class engine {
 public:
  /// `seed` keys every hash of attacker-chosen data; pass a random value per process.
  engine(settings config, std::uint64_t seed);
  /// Defaults with a fixed seed, for the DUNNO-era daemon wiring until it passes both.
  engine() : engine(settings{}, 0x72637074677561ULL) {}

  /// Judges one request. `connection_id` identifies the policy connection it came on, so a
  /// transaction abandoned on that connection can be rolled back.
  verdict decide(const protocol::policy_request& request, std::uint64_t connection_id,
                 time_point now);

  /// Counts a delivery the mail log showed at `at`, with the same counting, windows,
  /// baselines, episodes and verdict logic as a policy RCPT accepted and committed at
  /// END-OF-MESSAGE; returns the verdict the policy path would have answered. The mail was
  /// already delivered, so it always counts as accepted and a DEFER level is recorded as
  /// "would defer" (monitor_only) whatever the mode. Records are marked event_source::log.
  /// Opens no transaction and does not touch END-OF-MESSAGE auto-detection.
  ///
  /// So the returned verdict is never an enforced DEFER: a would-defer comes back as
  /// verdict_level::warn (as in monitor mode), and its verdict_record in pending() has
  /// level defer and monitor_only set. Housekeeping stays the caller's: tick() on log time
  /// for a replay, on the daemon's clock when following.
  verdict observe_delivery(const observed_delivery& delivery, time_point at);

  /// The policy connection closed: its open transaction is rolled back unless Postfix retries
  /// it on another connection within detached_transaction_grace (see tick()).
  void connection_closed(std::uint64_t connection_id, time_point now);

  /// Housekeeping, about once a second: transaction time-outs, episode cool-down and close,
  /// idle-key expiry (bounded work per call), stale spool evidence.
  void tick(time_point now);

  /// Loads what the store kept, once, before serving: windows, baselines, correspondents and
  /// open episodes, so a restart does not reset detection.
  void restore(const restore_snapshot& snapshot, time_point now);

  /// New hourly histories (the store's, merged with our own live hours): recomputes those
  /// recipients' baselines and, from all of them, the cold-start prior. Call hourly.
  void update_histories(std::span<const recipient_history> histories, time_point now);

  /// The other nodes' counts for recipients active here, read from the cluster store at `now`
  /// (see cluster.hpp): judgements add them while they are fresh (settings.cluster_max_age).
  void update_cluster_counts(std::span<const cluster_counts> counts, time_point now);

  /// The id the cluster's nodes agreed on for the flood behind `recipient`'s open episode (the
  /// episode `started` at this node): kept in the episode, and its record sent again with it.
  /// Ignored when that episode has ended meanwhile.
  void cluster_episode(std::string_view recipient, time_point started, std::string_view id,
                       time_point now);

  /// Senders that corresponded with recipients through any node of the cluster (read for
  /// recipients with an episode open here): learned like this node's own correspondents, with
  /// the first sighting the cluster reported, so correspondent_min_age judges them the same.
  void cluster_correspondents(std::span<const known_senders> known, time_point now);

  /// The cluster store became unreachable: judgements rest on this node's counts alone from now
  /// on, until update_cluster_counts() brings the others' again.
  void cluster_lost(time_point now);

  /// Spool-scanner evidence for a recipient (any spelling; it is normalised).
  void update_spool_evidence(std::string_view recipient, const spool_evidence& evidence,
                             time_point now);

  /// SIGHUP: applies `next` at once except the table sizes (max_tracked_recipients,
  /// pair_slots, correspondent_slots, client_session_slots, client_connection_slots,
  /// max_open_transactions, max_recipients_per_transaction), which keep their running values
  /// and are named in the result. Counts, baselines, transactions and open episodes are kept
  /// (an episode keeps its held level and releases by the new thresholds' cool-down). Tracked
  /// recipients are re-classified against the new classes, overrides and allow_recipients. A
  /// new recipient_delimiters or ipv6_prefix applies to keys counted from now on; keys counted
  /// under the old ones age out. Cost: O(classes + patterns) to build the matchers, and when
  /// membership changed one pass over the recipient table setting a flag (one cache-line write
  /// per tracked key: tens of milliseconds at a million keys, on the calling thread) plus one
  /// pattern match per open episode; each other recipient pays its pattern match when next seen.
  reconfigure_result reconfigure(settings next, time_point now);

  /// Connections `client` (any address; IPv6 aggregated) opened in the current 10-minute epoch.
  std::uint32_t client_connections(std::string_view client, time_point now) const;

  /// Records produced since the caller last cleared it.
  outbox& pending() { return outbox_; }

  // Operator controls (the daemon's control socket). Each acts the moment it is called, so the
  // request after it sees the change; the caller records who asked, and persists allow entries.

  /// Allows `entry.address` (any spelling; normalised like a request's) as a recipient (counted,
  /// never judged, as detection.allow_recipients) or a sender (never warned or deferred, as
  /// allow_senders), until `entry.until` (dropped by the first tick() at or after it) or for
  /// good. Replaces an entry of the same address and kind; refused beyond
  /// operator_allowlist::max_entries, or when `until` is not after `now`.
  operator_result operator_allow(operator_allow_entry entry, time_point now);
  /// Removes an operator allow entry; configured allow-lists are untouched.
  operator_result operator_unallow(std::string_view address, allow_kind kind, time_point now);
  /// Zeroes the recipient's live counters (every window, distinct senders and clients, the
  /// residue of an earlier burst, spool evidence); an open episode then cools down by its rules.
  operator_result operator_reset(std::string_view recipient, time_point now);
  /// Ends the recipient's open episode now (recorded as close_cause::released) and zeroes its
  /// counters as operator_reset() does, so the same counts do not reopen it: DUNNO from the
  /// next request until a new flood opens a new episode. Refused when no episode is open.
  operator_result operator_release(std::string_view recipient, time_point now);
  /// The operator allow entries in force.
  std::vector<operator_allow_entry> operator_allows() const { return operator_allows_.entries(); }
  /// Every open episode, oldest first, with its score now.
  std::vector<episode_view> open_episodes(time_point now) const;

  engine_stats stats() const;
  recipient_view inspect(std::string_view recipient, time_point now) const;
  const settings& config() const { return config_; }

 private:
  struct keys {
    std::uint64_t recipient_hash = 0;
    std::uint64_t sender_hash = 0;
    std::uint64_t client_hash = 0;
  };

  /// The level one RCPT or logged delivery earns, with what it was judged on.
  struct judgement {
    verdict_level level = verdict_level::dunno;
    observation seen;
    assessment judged;
  };

  verdict on_rcpt(const protocol::policy_request& request, std::uint64_t connection_id,
                  time_point now);
  /// The part of an RCPT that a logged delivery shares: counts the attempt of the message in
  /// recipient_buf_/sender_buf_/client_buf_ (unless `repeat`: Postfix re-sent an RCPT already
  /// counted) and judges its recipient, allow-lists and correspondent pass included.
  /// `session` is session_key() or 0 when unknown; `client_address` is as Postfix wrote it.
  judgement count_and_judge(const keys& k, std::uint64_t session, std::string_view client_address,
                            bool repeat, time_point now, event_source source);
  void on_end_of_message(const protocol::policy_request& request, time_point now);
  void on_other(const protocol::policy_request& request, std::uint64_t connection_id,
                time_point now);

  void on_connect(const protocol::policy_request& request, time_point now);
  /// The connection_rate bookkeeping of one RCPT: counts its session and notes the recipient.
  void count_connection(recipient_state& state, std::uint64_t session, const keys& k,
                        std::uint32_t minute);
  std::uint64_t session_key(const protocol::policy_request& request) const;
  std::uint64_t client_key(std::uint64_t client_hash) const { return mix(client_hash, 3); }

  /// limits_, class_patterns_ and the allow-lists from config_; returns the sets dropped.
  std::size_t build_matchers();
  /// Re-evaluates class and recipient allow-listing of a tracked recipient.
  void classify(recipient_state& state, std::string_view recipient) const;

  bool two_phase() const;
  std::uint32_t track(std::string_view recipient, std::uint64_t recipient_hash, time_point now);
  void forget(std::uint32_t slot, time_point now);
  std::uint8_t class_of(std::string_view recipient) const;
  const thresholds& limits_of(const recipient_state& state) const;

  std::uint32_t transaction_for(std::string_view instance, std::uint64_t connection_id,
                                time_point now);
  void roll_back(std::uint32_t slot, time_point now);
  void commit(std::uint32_t slot, const protocol::policy_request& request, time_point now);
  /// Queues the store's record of one recipient of one message, with the recipient's current
  /// window volumes and episode state (what the hour's burst and exclusion are learned from).
  void record_delivery(std::string_view recipient, std::uint64_t recipient_hash,
                       std::string_view sender, std::string_view client, std::uint64_t size,
                       bool accepted, bool authenticated, time_point at, event_source source,
                       bool header_flagged);
  void count_accepted(std::string_view recipient, std::uint64_t recipient_hash,
                      std::uint64_t sender_hash, bool authenticated, time_point now);

  void count_attempt(recipient_state& state, const keys& k, std::uint32_t minute);
  observation observe(const recipient_state& state, std::uint64_t key_hash, time_point now) const;
  verdict_level judge(recipient_state& state, std::string_view recipient, const observation& seen,
                      const assessment& judged, time_point now, event_source source);
  void close_episode(std::uint64_t key_hash, time_point now,
                     close_cause cause = close_cause::cool_down);
  /// operator_reset()'s work on a tracked recipient.
  void reset_counters(std::uint32_t slot, time_point now);
  /// tick(): drops expired operator allow entries and re-classifies their recipients.
  void expire_operator_allows(time_point now);
  /// restore(): the operator allow entries kept by the store.
  void restore_operator_allows(const std::vector<operator_allow_entry>& entries, time_point now);
  bool is_correspondent(std::uint64_t recipient_hash, std::uint64_t sender_hash,
                        time_point episode_start) const;
  /// The sender (a normalised key) or the client is allow-listed (the recipient is a flag on
  /// its state). The client is taken as Postfix wrote it, not aggregated: allow_clients may
  /// name networks narrower than ipv6_prefix.
  bool allowlisted(std::string_view sender, std::string_view client_address) const;
  verdict respond(verdict_level level, bool monitor_only, const observation& seen,
                  const assessment& judged, std::uint64_t recipient_hash, time_point now,
                  event_source source);
  /// enforce_action = flag and `score` below hard_defer_score: the defer level is answered
  /// with the flag header instead of defer_action.
  bool flags_instead_of_deferring(double score) const;
  /// enforce_action = flag: the header line for a recipient at the defer level.
  protocol::policy_action flag_action(std::uint64_t recipient_hash, double score);

  std::uint64_t pair_fingerprint(std::uint64_t a, std::uint64_t b) const { return mix(a, b); }

  settings config_;
  keyed_hash hash_;
  std::vector<thresholds> limits_;  ///< 0 = defaults, then overrides, then classes
  std::vector<std::pair<address_patterns, std::uint8_t>> class_patterns_;
  address_patterns allow_recipients_;
  address_patterns allow_senders_;
  network_set allow_clients_;
  operator_allowlist operator_allows_;

  recipient_table recipients_;
  transaction_table transactions_;
  pair_tracker pairs_;
  correspondent_set correspondents_;
  connection_tracker connections_;
  std::unordered_map<std::uint64_t, episode_state> episodes_;  ///< by recipient key hash
  std::unordered_map<std::uint64_t, spool_evidence> evidence_;
  baseline_prior prior_;
  cluster_totals cluster_;
  bool end_of_message_seen_ = false;

  /// All inbound RCPTs of the server per minute, for the concentration signal.
  std::array<std::uint32_t, 10> total_minutes_{};
  std::uint32_t total_head_ = 0;

  outbox outbox_;
  engine_stats stats_;
  std::uint32_t expiry_cursor_ = 0;

  // Reused per request so the steady state does not allocate.
  std::string recipient_buf_;
  std::string sender_buf_;
  std::string client_buf_;
  std::string text_buf_;
  std::vector<std::uint32_t> expired_buf_;
  std::vector<std::uint64_t> closing_buf_;
};

}  // namespace rcptguard::decision
