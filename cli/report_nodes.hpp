// The report's queries (store/report_queries.hpp) over every node's database of a cluster at
// once, merged into the cluster's view. Each node's recipient_hourly holds only the RCPTs that
// node answered, so counts are summed across nodes; lists (explanations, evidence) are merged in
// their order and cut as one; one flood's episodes, which carry the same episode.cluster_id on
// every node, become one. With one database each function gives that database's rows as they
// are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cli/node_databases.hpp"
#include "cli/report/model.hpp"
#include "decision/events.hpp"
#include "store/report_queries.hpp"

namespace rcptguard::cli {

// Times are Unix seconds (UTC); periods are [from, until) as in report_queries.hpp.

/// Episodes active in the period, oldest start first, each with the node that stored it. From
/// several databases, one row per flood: the episodes of one recipient with one cluster_id are
/// joined (the earliest start, the latest end, open while any is, the peak of the node that saw
/// the highest score, the verdicts of all) and name every node that had one.
std::vector<report::episode> cluster_episodes(std::span<node_database> dbs, std::int64_t from,
                                              std::int64_t until);

/// Flagged requests (all recipients) per UTC day, summed over the nodes.
std::map<std::int64_t, std::int64_t> cluster_flagged_per_day(std::span<node_database> dbs,
                                                             std::int64_t from, std::int64_t until);

/// Messages in the period, summed over the nodes.
std::int64_t cluster_messages(std::span<node_database> dbs, std::int64_t from, std::int64_t until);

/// Recipients with mail in the period on any node, each counted once.
std::int64_t cluster_recipients(std::span<node_database> dbs, std::int64_t from,
                                std::int64_t until);

/// Every node's busiest recipients (report_busiest), up to `limit` each: candidates, which the
/// report then measures on the summed hours.
std::vector<std::string> cluster_busiest(std::span<node_database> dbs, std::int64_t from,
                                         std::int64_t until, bool by_peak_hour, std::size_t limit);

/// A recipient's hours, ascending, each the sum of its nodes' RCPTs (accepted, attempted). The
/// per-node peaks and distinct senders are the largest node's: without the minutes and the
/// senders themselves no sum can be exact, and the report charts only the volume.
std::vector<decision::hourly_count> cluster_history(std::span<node_database> dbs,
                                                    const std::string& recipient, std::int64_t from,
                                                    std::int64_t until);

/// A recipient's flagged requests per hour, summed over the nodes.
std::vector<store::report_flagged_hour> cluster_flagged_hours(std::span<node_database> dbs,
                                                              const std::string& recipient,
                                                              std::int64_t from,
                                                              std::int64_t until);

/// A recipient's explanations, oldest first, each with the node that answered, at most `limit`.
std::vector<report::explanation> cluster_explanations(std::span<node_database> dbs,
                                                      const std::string& recipient,
                                                      std::int64_t from, std::int64_t until,
                                                      std::size_t limit);

/// How many explanations the recipient has in the period on all nodes.
std::int64_t cluster_explanation_count(std::span<node_database> dbs, const std::string& recipient,
                                       std::int64_t from, std::int64_t until);

/// Senders (`clients` false) or clients (true) of the recipient's flagged requests, their
/// requests summed over the nodes, most first, at most `limit`.
std::vector<report::party_count> cluster_top_parties(std::span<node_database> dbs,
                                                     const std::string& recipient,
                                                     std::int64_t from, std::int64_t until,
                                                     bool clients, std::size_t limit);

/// Repeated-attachment evidence for the recipient from every node, most copies first, at most
/// `limit`.
std::vector<report::attachment> cluster_evidence(std::span<node_database> dbs,
                                                 const std::string& recipient, std::int64_t from,
                                                 std::int64_t until, std::size_t limit);

/// Known correspondents of the recipient: the most any node knows. Each node learns them from
/// the mail it answered, so the nodes' lists overlap; the largest is the count without the lists.
std::int64_t cluster_correspondents(std::span<node_database> dbs, const std::string& recipient);

}  // namespace rcptguard::cli
