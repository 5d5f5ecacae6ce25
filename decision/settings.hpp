// Every knob of the decision engine, with its default and the reason for it. The config
// loader fills these plain structs; the engine only reads them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/reply.hpp"

namespace rcptguard::decision {

/// Whether rcptguard may ever answer DEFER.
enum class detection_mode : std::uint8_t {
  monitor,  ///< WARN instead of DEFER; the verdict record still says it would have deferred
  enforce,
};

/// What enforce mode answers a recipient at the defer level.
enum class flood_action : std::uint8_t {
  defer,  ///< defer_action: the sender retries later, the flood queues up elsewhere
  /// Deliver with flag_header prepended, so the delivery agent files the flood into Junk;
  /// hard_defer_score and above still get defer_action.
  flag,
};

/// Whether Postfix also queries us from smtpd_end_of_data_restrictions.
enum class eom_hook : std::uint8_t {
  /// RCPTs count as accepted until the first END-OF-MESSAGE request arrives, then two-phase.
  auto_detect,
  present,  ///< two-phase from the start: RCPT is tentative until END-OF-MESSAGE
  absent,   ///< every RCPT that we do not defer counts as accepted at once
};

/// When a window's message count becomes a warning and a deferral. A point is
/// max(floor, factor x expected), so a quiet mailbox needs the floor and a busy one the factor.
struct window_thresholds {
  std::uint32_t warn_floor = 0;
  double warn_factor = 0.0;
  std::uint32_t defer_floor = 0;
  double defer_factor = 0.0;
};

/// Everything a recipient class (or one recipient) may override.
struct thresholds {
  /// 1 minute: only bursts far above any normal delivery pattern; lists deliver in bursts.
  window_thresholds minute{12, 30.0, 30, 60.0};
  /// 10 minutes: the main flood detector. 20 mails in 10 minutes is a flood for a mailbox that
  /// normally gets a few an hour; 8x / 15x of the learned rate leaves room for busy days.
  window_thresholds ten_minutes{20, 8.0, 40, 15.0};
  /// 1 hour: catches floods paced to stay under the 10-minute floor (one a minute all hour).
  window_thresholds hour{60, 5.0, 120, 10.0};
  /// 24 hours: slow floods; a day's volume is steadier than an hour's, so smaller factors.
  window_thresholds day{400, 4.0, 1000, 8.0};

  /// Score scale: a window at its warn point scores 1.0, at its defer point 2.0.
  double warn_score = 1.0;
  double defer_score = 2.0;
  /// Hysteresis: a flagged recipient keeps its level until the score stays below these for
  /// cool_down. Half a level below the entry point, so one quiet minute does not release a flood.
  double warn_exit_score = 0.5;
  double defer_exit_score = 1.0;
  /// Long enough to outlast the gaps of a bursty flood, short enough to release within the hour.
  std::chrono::seconds cool_down{std::chrono::minutes{15}};

  /// The other signals only add weight when volume is already half-way to a warning: three
  /// mails from three senders are not a subscription bomb.
  double amplifier_gate = 0.5;
  /// Distinct senders in 10 minutes (or in the hour) beyond max(floor, factor x expected):
  /// subscription bombs are many distinct, individually legitimate senders.
  std::uint32_t sender_diversity_floor = 30;
  double sender_diversity_factor = 4.0;
  double sender_diversity_weight = 0.5;
  /// Distinct clients in 10 minutes: botnets and list servers spread over many addresses.
  std::uint32_t client_diversity_floor = 20;
  double client_diversity_weight = 0.25;
  /// One client sending most of a recipient's mail in a 10-minute epoch: single-source hammering.
  double single_client_share = 0.8;
  std::uint32_t single_client_min_messages = 20;  ///< the share means nothing on few messages
  double single_client_weight = 0.5;
  /// This recipient's share of all inbound RCPTs in 10 minutes, once the server-wide total is
  /// large enough for a share to mean something.
  double concentration_share = 0.25;
  std::uint32_t concentration_min_total = 200;
  double concentration_weight = 0.5;
  /// One client opening many SMTP connections in 10 minutes that nearly all carry mail for this
  /// recipient: bombers reconnect for every message (dodging per-connection limits), while a
  /// real MTA reuses connections or spreads them over many recipients. Fires when that client's
  /// connections to the recipient in a 10-minute epoch reach the minimum and are at least
  /// `connection_rate_share` of all its connections. A weak, corroborating signal (big senders
  /// also use one connection per message), hence the low weight: with single_client it lifts a
  /// one-source flood at the warn point to 1.75, still a WARN.
  std::uint32_t connection_rate_min_connections = 10;
  double connection_rate_share = 0.8;
  double connection_rate_weight = 0.25;
  /// Repeated identical attachments found in the mailbox by the spool scanner.
  std::uint32_t evidence_min_repeats = 5;
  std::chrono::seconds evidence_max_age{std::chrono::hours{24}};
  /// Enough to lift a volume between the warn and defer points to DEFER.
  double evidence_weight = 0.75;

  /// Learned hourly baselines never exceed this (messages per hour): an attacker cannot teach
  /// more, and accounts that really are busier belong in a class with a higher ceiling. The
  /// learned usual burst of every window stops at the same number.
  double baseline_ceiling_per_hour = 250.0;
  /// A window warns no earlier than burst_warn_factor x the recipient's usual burst in it (the
  /// largest it had in an hour outside any trusted episode, last `baseline.weeks` weeks): ticket
  /// storms and the archive copy of a newsletter are normal, a flood three times the usual storm
  /// is not, and five times reaches the defer point. Three, not two: a repeat of the usual
  /// storm then stays below amplifier_gate, so a busy account's normal sender diversity does
  /// not tip its usual storm into a warning.
  double burst_warn_factor = 3.0;
  double burst_defer_factor = 5.0;
  /// Expected = median + weight x MAD, so mailboxes with a noisy normal get more room.
  double baseline_spread_weight = 1.0;
};

/// Recipients that are busy by design (mailing lists, ticket queues, archive copies).
struct recipient_class {
  std::string name;                     ///< "lists", "tickets", "archive", ...
  std::vector<std::string> recipients;  ///< exact, "*@domain", "@domain" or '*'/'?' wildcards
  thresholds limits;
};

/// One recipient with its own thresholds; checked before the classes.
struct recipient_override {
  std::string recipient;
  thresholds limits;
};

/// How the hourly history becomes an expectation (see baseline.hpp).
struct baseline_settings {
  /// A week of history covers every hour of the week once: before that, episodes are not
  /// trusted to be floods (their hours are learned from), the rise cap does not apply yet, and
  /// the recipient does not count towards the server-wide prior.
  std::uint32_t min_history_hours = 168;
  /// Own history before the baseline is the recipient's own; until then it is blended linearly
  /// with the server-wide prior. One day: a busy account is judged by its own volume from its
  /// second day, while a median over a day is not moved by an hour-long flood.
  std::uint32_t cold_start_hours = 24;
  /// Past weeks sampled for the same hour of the week; four weeks make a median that one
  /// flooded week cannot move.
  std::uint32_t weeks = 4;
  /// Past days sampled for the same hour of the day.
  std::uint32_t recent_days = 7;
  /// A learned baseline rises at most this much per day, so a slow ramp stays visible. Hours
  /// inside a trusted episode are never learned from, so a flood cannot teach itself; the cap
  /// only has to slow a ramp kept below the alarm, and 25 % a day learns a doubled volume (a
  /// new list, a new ticket queue) in three days.
  double max_rise_per_day = 0.25;
  /// Expectation = the largest of the next few hours, so a late history update errs towards
  /// fewer alerts rather than more.
  std::uint32_t lookahead_hours = 2;
  /// The cold-start prior is this quantile of all recipients' mean hourly volume.
  double prior_quantile = 0.5;
  /// Floor of the prior and of the rise cap's base, so a silent mailbox can still learn.
  double prior_floor_hourly = 0.25;
  /// Fewer learned recipients than this leave the prior at its previous value.
  std::size_t prior_min_recipients = 20;
};

struct settings {
  /// Observe first: a fresh install must not defer anybody's mail before it is tuned.
  detection_mode mode = detection_mode::monitor;
  /// Detect rather than require: a missing hook must not blind detection.
  eom_hook end_of_message_hook = eom_hook::auto_detect;

  /// Postfix's recipient_delimiter default on most systems; bob+tag@x is bob@x's mailbox.
  std::string recipient_delimiters = "+";
  /// A /64 is one IPv6 subnet, usually one host or customer: per-address keys are free to rotate.
  unsigned ipv6_prefix = 64;

  /// About 250 MB at the cap (recipients.hpp: ~240 bytes a key); the coldest key goes first.
  std::size_t max_tracked_recipients = 1'000'000;
  /// Sender/client pairs remembered for distinct counting (16 bytes each, 32 MB).
  std::size_t pair_slots = std::size_t{1} << 21;
  /// Correspondent pairs kept in memory (16 bytes each, 16 MB); the store keeps the rest.
  std::size_t correspondent_slots = std::size_t{1} << 20;
  /// SMTP sessions (client address and port, and session/recipient pairs) remembered so each
  /// connection is counted once (16 bytes each, 4 MB): room for about 100k connections of a
  /// few recipients each within 10 minutes before the stalest are forgotten (and recounted).
  std::size_t client_session_slots = std::size_t{1} << 18;
  /// Per-client and per-client/recipient connection counters for the connection_rate signal
  /// (16 bytes each, 4 MB); clients are keyed like everywhere else (IPv6 by ipv6_prefix).
  std::size_t client_connection_slots = std::size_t{1} << 18;

  /// smtpd has one open transaction per process; thousands of processes is already huge.
  std::size_t max_open_transactions = 16384;
  /// Postfix's smtpd_recipient_limit default: RCPTs beyond it are counted but not de-duplicated.
  std::size_t max_recipients_per_transaction = 1000;
  /// A DATA phase of a large message over a slow link can take many minutes.
  std::chrono::seconds transaction_timeout{std::chrono::minutes{30}};
  /// Postfix retries a failed policy request once after 1 s on a new connection; a closed
  /// connection's transaction waits this long for that retry before it is rolled back.
  std::chrono::seconds detached_transaction_grace{std::chrono::seconds{10}};

  /// A correspondent counts only if first seen this long before the episode started, so the
  /// first minutes of a flood cannot make its senders "known".
  std::chrono::seconds correspondent_min_age{std::chrono::hours{1}};

  /// What a DEFER verdict sends; the explanation is appended to the text. 4.2.1 is "mailbox
  /// busy", the code Gmail and WildDuck use for a recipient receiving mail too fast.
  protocol::policy_action defer_action{protocol::action_verb::defer_if_permit, {}, "4.2.1"};
  /// Defer by default, as before; "flag" is the Junk-folder answer of the big mail services: a
  /// bomb usually hides one real message (a password reset, a payment notice) that the
  /// victim must still receive, and deferring the flood also defers that message.
  flood_action enforce_action = flood_action::defer;
  /// The header a flagged message gets: "<flag_header>: <recipient> episode=<start> score=<s>".
  std::string flag_header = "X-Rcptguard-Flood";
  /// Under flood_action::flag, a score this high is deferred all the same: at 3 the volume
  /// is far past the defer point or corroborated by several other signals.
  double hard_defer_score = 3.0;

  /// An episode record is re-sent only when the score grew by this factor (or the level rose),
  /// so a growing flood does not write one record per message.
  double episode_peak_step = 1.25;
  /// Idle keys without a learned baseline are forgotten after the 24-hour window emptied.
  std::chrono::seconds idle_expiry{std::chrono::hours{25}};

  /// Cluster (several nodes sharing counts, see cluster.hpp): the other nodes' counts are added
  /// to a judgement while no older than this; past it (the pull stopped) this node judges on its
  /// own counts. A few pull intervals.
  std::chrono::milliseconds cluster_max_age{2000};
  /// Recipients whose other nodes' counts are held (about 250 bytes each).
  std::size_t max_cluster_recipients = 100'000;

  thresholds defaults;
  std::vector<recipient_class> classes;
  std::vector<recipient_override> overrides;

  /// Always DUNNO (still counted). Recipient and sender patterns as in recipient_class.
  std::vector<std::string> allow_recipients;
  std::vector<std::string> allow_senders;
  /// CIDR ("192.0.2.0/24", "2001:db8::/32") or single addresses.
  std::vector<std::string> allow_clients;

  baseline_settings baseline;
};

}  // namespace rcptguard::decision
