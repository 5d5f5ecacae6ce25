// What the HTML report shows, as plain data: the command (cli/report_command.cpp) fills it from
// the database and the baseline model, the renderer (document.hpp) turns it into one HTML file.
// Every string here may come from the network (addresses, client names, file names, and the
// summaries and reasons that quote them); the renderer escapes all of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rcptguard::report {

// Times are Unix seconds (UTC).

/// One UTC day of the overview chart.
struct day_summary {
  std::int64_t day_start = 0;         ///< midnight UTC
  std::int64_t warn_episodes = 0;     ///< episodes that started that day and peaked at warn
  std::int64_t defer_episodes = 0;    ///< ... and at defer
  std::int64_t flagged_requests = 0;  ///< verdicts answered that day (all recipients)
};

/// One alert episode as stored; the renderer clips it to the period when drawing. From several
/// nodes' databases, one flood: its episodes on every node that saw it, as one.
struct episode {
  std::string recipient;
  std::vector<std::string> nodes;  ///< that had the episode, by name
  std::string flood;               ///< its id across the nodes (cluster store); empty without
  std::int64_t started = 0;
  std::int64_t ended = 0;  ///< ended_at, or the last update while the episode is open
  bool open = false;
  std::string peak_level;  ///< "warn" or "defer"
  double peak_score = 0.0;
  std::string peak_window;
  double peak_observed = 0.0;
  double peak_baseline = 0.0;
  std::string summary;
  std::int64_t verdicts = 0;  ///< flagged requests during it, on all of its nodes
};

/// A recipient of the "top deviating" table.
struct deviation {
  std::string recipient;
  std::int64_t volume = 0;     ///< in the period (per hour the larger of attempted and accepted)
  std::int64_t peak_hour = 0;  ///< the hour furthest above its baseline
  std::int64_t peak_observed = 0;
  double peak_expected = 0.0;
  std::int64_t episodes = 0;  ///< in the period
  std::string anchor;         ///< id of its section in the report, empty when it has none
};

/// One hour of a recipient's chart.
struct hour_point {
  std::int64_t hour_start = 0;
  std::int64_t observed = 0;  ///< the larger of attempted and accepted RCPTs
  std::int64_t accepted = 0;
  double expected = 0.0;  ///< the learned baseline for the hour (median plus spread)
  /// Flagged requests answered in the hour, by verdict: WARN; DEFER (in monitor mode the WARN
  /// sent instead of one); delivered with the flag header (enforce_action = "flag").
  std::int64_t warn = 0;
  std::int64_t defer = 0;
  std::int64_t flag = 0;
};

struct reason {
  std::string name;
  double weight = 0.0;
  double observed = 0.0;
  double baseline = 0.0;
  std::string detail;
};

/// A stored explanation: the story behind the verdicts from `at` on (first verdict of an
/// episode, each escalation or new peak, each change of reasons).
struct explanation {
  std::int64_t at = 0;
  std::string node;  ///< that answered, by name
  std::string level;
  bool monitor_only = false;
  double score = 0.0;
  std::string action_text;
  std::string sender;  ///< of the request that changed the story
  std::string client;
  std::vector<reason> reasons;
};

/// A sender or client with the flagged requests it sent the recipient in the period.
struct party_count {
  std::string text;
  std::int64_t requests = 0;
};

/// The same attachment stored again and again in the recipient's mailbox (spool evidence).
struct attachment {
  std::string sha256;
  std::string filenames;
  std::int64_t repeats = 0;
  std::int64_t size = 0;
  std::int64_t first_stored = 0;
  std::int64_t last_stored = 0;
  std::string mailbox;
};

/// One recipient's part of the report.
struct recipient_section {
  std::string recipient;
  std::string anchor;                     ///< "r1", "r2", ...: never derived from the address
  bool named = false;                     ///< asked for with --recipient
  std::vector<hour_point> hours;          ///< every hour of the period, ascending
  std::vector<episode> episodes;          ///< oldest first
  std::vector<explanation> explanations;  ///< oldest first
  std::int64_t explanations_total = 0;    ///< stored in the period (more than shown when capped)
  std::vector<party_count> senders;       ///< most requests first
  std::vector<party_count> clients;
  std::vector<attachment> attachments;
  std::int64_t correspondents = 0;  ///< known senders of the recipient (all time kept)
};

/// A database the report was read from.
struct source {
  std::string database;  ///< the file, as given
  std::string node;      ///< store_meta's name, else the file's name
};

struct report_data {
  std::int64_t since = 0;  ///< the period, [since, until)
  std::int64_t until = 0;
  std::int64_t generated = 0;
  /// The files it was read from, as given, with their nodes' names: one, or one per node of a
  /// cluster, whose volumes are then summed.
  std::vector<source> sources;
  std::string version;          ///< of rcptguard
  std::int64_t messages = 0;    ///< in the period, all recipients
  std::int64_t recipients = 0;  ///< with mail in the period
  std::int64_t flagged_requests = 0;
  std::vector<day_summary> days;      ///< every UTC day of the period, ascending
  std::vector<episode> episodes;      ///< every episode active in the period, oldest first
  std::vector<deviation> deviations;  ///< most deviating first
  std::vector<recipient_section> sections;
  std::int64_t sections_left_out = 0;  ///< flagged recipients beyond the section cap
};

}  // namespace rcptguard::report
