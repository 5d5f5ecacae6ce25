// Aggregation equals the sum of the events: random event streams, aggregated in deltas that are
// cut and merged at random points, leave exactly the tables that one flush per event leaves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/delta.hpp"
#include "store/store.hpp"
#include "store_test_util.hpp"

namespace rcptguard::store {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test helpers

/// One request as the engine reports it: its delivery record and, when it was flagged, its
/// verdict and the episode record that came with it (an open, a new peak or a close).
using event = decision::outbox;

const std::vector<std::string> recipients = {"bob@example.test", "carol@example.test",
                                             "ann@example.test", "zed@example.test"};
const std::vector<std::string> clients = {"192.0.2.1", "198.51.100.7", "203.0.113.0/24"};

struct stream {
  std::vector<event> events;
  std::uint64_t deliveries = 0;
  std::uint64_t accepted = 0;
  std::uint64_t bytes = 0;
  std::uint64_t verdicts = 0;
  std::uint64_t episode_records = 0;
};

/// A random stream over a few recipients and a few hours. Every event has its own second, but
/// a flagged request may repeat identically in the next events of the same second (several
/// identical requests, counted in one flagged row). An episode record shares its second with
/// the verdict that caused it and with nothing else of that recipient: the store matches a new
/// peak to its verdict by recipient and second.
/// A recipient whose episode closed is not flagged again: within one outbox a delta handles
/// the verdicts before the episode records, so a close followed by a re-open in the same
/// outbox is judged differently from one flush per event (see
/// Delta.ACloseAndReopenInOneOutboxKeepTheNewStory in delta_test.cpp).
stream random_stream(std::uint32_t seed) {
  std::mt19937 rng(seed);
  const auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  const auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };

  std::vector<std::string> senders;
  for (int i = 0; i < 25; ++i) senders.push_back("s" + std::to_string(i) + "@x.test");
  senders.emplace_back("");                                      // the null sender
  for (const std::string& r : recipients) senders.push_back(r);  // our users write too

  struct episode_state {
    bool open = false;
    bool retired = false;
    std::int64_t started = 0;
    double peak = 0;
    // The recipient's story: what its verdicts say until it changes.
    bool defer = false;
    bool monitor_only = false;
    bool log = false;
    int reasons = 0;
  };
  std::map<std::string, episode_state> episodes;
  const std::vector<std::vector<decision::reason>> reason_sets = {
      {{"volume_10m", 2.0, 240, 6, "240 msgs/10m, baseline 6"}},
      {{"volume_10m", 2.0, 240, 6, "240 msgs/10m, baseline 6"},
       {"sender_diversity", 1.5, 180, 3, "180 senders"}},
      {{"new_senders", 1.0, 50, 2, "50 new senders"}},
  };

  stream out;
  const int n = 150 + pick(250);
  std::int64_t now = t0 - 1800 + pick(600);
  for (int i = 0; i < n; ++i) {
    now += 1 + pick(45);
    event e;
    decision::delivery_record d;
    d.at = at(chance(0.15) ? now - pick(300) : now);  // log lines come out of order too
    d.recipient = recipients[static_cast<std::size_t>(chance(0.5) ? 0 : pick(4))];
    d.sender = senders[static_cast<std::size_t>(pick(static_cast<int>(senders.size())))];
    d.client = clients[static_cast<std::size_t>(pick(3))];
    d.accepted = chance(0.7);
    d.size = static_cast<std::uint64_t>(pick(100'000));
    d.authenticated = chance(0.15);
    d.source = chance(0.2) ? decision::event_source::log : decision::event_source::policy;
    e.deliveries.push_back(d);

    episode_state& ep = episodes[d.recipient];
    if (!ep.retired && chance(0.35)) {
      decision::verdict_record v;
      v.at = at(now);
      v.recipient = d.recipient;
      v.sender = d.sender;
      v.client = d.client;
      if (chance(0.25)) ep.defer = !ep.defer;  // an escalation (or a step back)
      if (chance(0.1)) ep.monitor_only = !ep.monitor_only;
      if (chance(0.25)) ep.reasons = pick(3);
      v.level = ep.defer ? decision::verdict_level::defer : decision::verdict_level::warn;
      v.monitor_only = ep.monitor_only;
      if (chance(0.1)) ep.log = !ep.log;  // a change of source is a new story too
      v.source = ep.log ? decision::event_source::log : decision::event_source::policy;
      v.score = 1.0 + pick(400) / 100.0;
      v.reasons = reason_sets[static_cast<std::size_t>(ep.reasons)];
      for (decision::reason& r : v.reasons) r.observed += pick(50);  // numbers change always
      v.action_text = (v.level == decision::verdict_level::defer ? "DEFER_IF_PERMIT " : "WARN ") +
                      std::to_string(v.score);
      e.verdicts.push_back(v);
      const bool opens = !ep.open;
      const bool peaks = ep.open && v.score > ep.peak && chance(0.3);
      if (opens || peaks) {
        if (opens) {
          ep.open = true;
          ep.started = now;
          ep.peak = 0;
        }
        ep.peak = std::max(ep.peak, v.score);
        decision::episode_record r = episode(d.recipient, ep.started, now, false, ep.peak);
        r.peak_level = v.level;
        r.source = v.source;
        e.episodes.push_back(r);
      } else if (chance(0.3)) {
        // The same request again within its second, as separate events.
        const int repeats = 1 + pick(3);
        for (int k = 0; k < repeats; ++k) {
          out.events.push_back(e);
          ++out.deliveries;
          ++out.verdicts;
          if (d.accepted) {
            ++out.accepted;
            out.bytes += d.size;
          }
        }
      }
    } else if (ep.open && chance(0.05)) {
      decision::episode_record r = episode(d.recipient, ep.started, now, true, ep.peak);
      e.episodes.push_back(r);
      ep.open = false;
      ep.retired = true;
    }
    ++out.deliveries;
    out.verdicts += e.verdicts.size();
    out.episode_records += e.episodes.size();
    if (d.accepted) {
      ++out.accepted;
      out.bytes += d.size;
    }
    out.events.push_back(std::move(e));
  }
  return out;
}

void append(decision::outbox& to, const decision::outbox& from) {
  to.deliveries.insert(to.deliveries.end(), from.deliveries.begin(), from.deliveries.end());
  to.verdicts.insert(to.verdicts.end(), from.verdicts.begin(), from.verdicts.end());
  to.episodes.insert(to.episodes.end(), from.episodes.begin(), from.episodes.end());
}

/// The events cut into outboxes at random points, each aggregated into a delta, and runs of
/// deltas merged before they are applied: what the writer does when it is slow.
void apply_randomly(const stream& s, std::uint32_t seed, store& db, std::size_t key_limit,
                    std::uint64_t& folded) {
  std::mt19937 rng(seed ^ 0x5eedU);
  const auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  explanation_filter filter;
  delta pending(key_limit);
  decision::outbox batch;
  const auto cut = [&] {
    delta d(key_limit);
    d.add(batch, filter);
    batch.clear();
    pending.merge(std::move(d));
    if (chance(0.5)) {
      folded += pending.folded();
      db.apply(pending);
      pending.clear();
    }
  };
  for (const event& e : s.events) {
    append(batch, e);
    if (chance(0.3)) cut();
  }
  cut();
  folded += pending.folded();
  db.apply(pending);
}

std::string rows(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement st(db, sql);
  std::string out;
  while (st.executeStep()) {
    for (int c = 0; c < st.getColumnCount(); ++c) {
      out += st.getColumn(c).isNull() ? "NULL" : st.getColumn(c).getString();
      out += '|';
    }
    out += '\n';
  }
  return out + "--\n";
}

/// Every table the aggregation writes, as text, names resolved (ids depend on insert order).
std::string dump(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return rows(db,
              "SELECT recipient, hour_start, accepted, attempted, distinct_senders, bytes "
              "FROM recipient_hourly ORDER BY 1, 2") +
         rows(db,
              "SELECT recipient, minute_start, accepted, attempted FROM recipient_minute "
              "ORDER BY 1, 2") +
         rows(db,
              "SELECT recipient, sender, first_seen, last_seen, messages FROM correspondent "
              "ORDER BY 1, 2") +
         rows(db,
              "SELECT recipient, hour_start, sender FROM recipient_hour_sender ORDER BY 1, 2, 3") +
         rows(db,
              "SELECT r.text, f.at, s.text, c.text, f.code, f.requests FROM flagged f "
              "JOIN name r ON r.id = f.recipient JOIN party s ON s.id = f.sender "
              "JOIN party c ON c.id = f.client ORDER BY 1, 2, 3, 4, 5") +
         rows(db,
              "SELECT n.text, f.first_at FROM flagged_span f JOIN name n ON n.id = f.recipient "
              "ORDER BY 1") +
         // The explanation in force for every flagged request.
         rows(db,
              "SELECT at, recipient, sender, client, level, monitor_only, source, requests, score, "
              "action_text, reasons FROM v_verdicts ORDER BY 1, 2, 3, 4, 5, 6, 7") +
         rows(db, "SELECT count(*) FROM explanation") +
         rows(db,
              "SELECT at, recipient, sender, client, level, monitor_only, score, action_text, "
              "reasons, source FROM v_explanations ORDER BY at, id") +
         rows(db,
              "SELECT recipient, started, updated, ended, ended_at, peak_level, peak_score, "
              "peak_window, peak_observed, peak_baseline, summary, source FROM episode "
              "ORDER BY 1, 2");
}

/// Only what key folding must never change: the counts.
std::string counts(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return rows(db,
              "SELECT recipient, hour_start, accepted, attempted, bytes FROM recipient_hourly "
              "ORDER BY 1, 2") +
         rows(db,
              "SELECT recipient, minute_start, accepted, attempted FROM recipient_minute "
              "ORDER BY 1, 2") +
         rows(db,
              "SELECT r.text, f.at, f.code, sum(f.requests) FROM flagged f "
              "JOIN name r ON r.id = f.recipient GROUP BY 1, 2, 3 ORDER BY 1, 2, 3") +
         rows(db,
              "SELECT at, recipient, level, monitor_only, score, action_text, reasons, source "
              "FROM v_explanations ORDER BY at, id") +
         rows(db,
              "SELECT recipient, started, updated, ended, peak_score FROM episode ORDER BY 1, 2");
}

constexpr std::uint32_t seeds[] = {1,   2,   3,   5,   8,   13,   21,   34,   55,   89,
                                   144, 233, 377, 610, 987, 1597, 2584, 4181, 6765, 10946};

TEST(Aggregation, RandomFlushesAndMergesGiveTheTablesOfOneFlushPerEvent) {
  std::uint64_t explanations_seen = 0;
  std::uint64_t verdicts_seen = 0;
  std::uint64_t repeated_rows = 0;
  for (const std::uint32_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const stream s = random_stream(seed);
    temp_dir dir;
    const std::string per_event = dir.file("per_event.db");
    const std::string random = dir.file("random.db");
    {
      store_options o = options_for(per_event);
      o.sender_key_cache = 0;  // every distinct-sender key checked in SQLite
      store db(o);
      for (const event& e : s.events) db.apply(e);
    }
    {
      store db(options_for(random));
      std::uint64_t folded = 0;
      apply_randomly(s, seed, db, 0, folded);
      EXPECT_EQ(folded, 0u);
    }
    const std::string expected = dump(per_event);
    ASSERT_EQ(dump(random), expected);

    // The reference itself is the sum of the events.
    EXPECT_EQ(query_int(per_event, "SELECT sum(attempted) FROM recipient_hourly"),
              static_cast<std::int64_t>(s.deliveries));
    EXPECT_EQ(query_int(per_event, "SELECT sum(attempted) FROM recipient_minute"),
              static_cast<std::int64_t>(s.deliveries));
    EXPECT_EQ(query_int(per_event, "SELECT sum(accepted) FROM recipient_hourly"),
              static_cast<std::int64_t>(s.accepted));
    EXPECT_EQ(query_int(per_event, "SELECT sum(bytes) FROM recipient_hourly"),
              static_cast<std::int64_t>(s.bytes));
    EXPECT_EQ(query_int(per_event, "SELECT coalesce(sum(requests), 0) FROM flagged"),
              static_cast<std::int64_t>(s.verdicts));
    const std::int64_t explanations = query_int(per_event, "SELECT count(*) FROM explanation");
    EXPECT_GT(explanations, 0);
    EXPECT_LE(explanations, static_cast<std::int64_t>(s.verdicts));
    explanations_seen += static_cast<std::uint64_t>(explanations);
    verdicts_seen += s.verdicts;
    repeated_rows += static_cast<std::uint64_t>(
        query_int(per_event, "SELECT count(*) FROM flagged WHERE requests > 1"));
    EXPECT_GT(query_int(per_event, "SELECT count(*) FROM episode"), 0);
  }
  // Some verdicts told a new story and were stored, most did not.
  EXPECT_GT(explanations_seen, 0u);
  EXPECT_LT(explanations_seen * 2, verdicts_seen);
  EXPECT_GT(repeated_rows, 0u);  // the streams do exercise identical requests
}

// A delta at its key bound folds the identity of distinct-sender keys, pairs and flagged
// requests, but every count still adds up to the events.
TEST(Aggregation, KeyLimitFoldsIdentitiesButNeverCounts) {
  std::uint64_t folded_total = 0;
  for (const std::uint32_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const stream s = random_stream(seed);
    temp_dir dir;
    const std::string per_event = dir.file("per_event.db");
    const std::string limited = dir.file("limited.db");
    {
      store db(options_for(per_event));
      for (const event& e : s.events) db.apply(e);
    }
    std::uint64_t folded = 0;
    {
      store db(options_for(limited));
      apply_randomly(s, seed, db, 60, folded);
    }
    folded_total += folded;
    EXPECT_EQ(counts(limited), counts(per_event));
    EXPECT_LE(query_int(limited, "SELECT count(*) FROM correspondent"),
              query_int(per_event, "SELECT count(*) FROM correspondent"));
    EXPECT_LE(query_int(limited, "SELECT sum(distinct_senders) FROM recipient_hourly"),
              query_int(per_event, "SELECT sum(distinct_senders) FROM recipient_hourly"));
  }
  EXPECT_GT(folded_total, 0u);
}

}  // namespace
}  // namespace rcptguard::store
