// Learning over weeks of driven time: usual bursts, poisoning resistance by exclusion, episodes
// that end with the flood, the cold start. A small in-test "store" folds the engine's delivery
// records into hourly rows exactly as store/ does (counts, peaks, in_episode) and hands them back
// through update_histories() every hour, as the daemon does.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "decision/engine.hpp"
#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): the test harness

constexpr std::int64_t minute = 60;
constexpr std::int64_t hour = 3600;
constexpr std::int64_t day = 24 * hour;
constexpr std::int64_t week = 7 * day;

struct mail {
  std::int64_t at = 0;  ///< seconds after the harness origin (a Monday 00:00 UTC)
  std::string recipient;
  std::string sender;
  std::string client;
};

struct episode_span {
  std::string recipient;
  std::int64_t started = 0;  ///< seconds after origin
  std::optional<std::int64_t> ended;
};

/// Replays `mails` (any order) through observe_delivery(), ticking every minute and refreshing
/// the baselines every hour from the hourly rows built so far.
class learner {
 public:
  explicit learner(settings s = test_settings()) : engine_(std::move(s), 7) {}

  void run(std::vector<mail> mails, std::int64_t until) {
    std::stable_sort(mails.begin(), mails.end(),
                     [](const mail& a, const mail& b) { return a.at < b.at; });
    std::size_t next = 0;
    for (std::int64_t t = now_; t < until; t += minute) {
      for (; next < mails.size() && mails[next].at < t + minute; ++next) {
        const mail& m = mails[next];
        observed_delivery d;
        d.recipient = m.recipient;
        d.sender = m.sender;
        d.client_address = m.client;
        d.size = 1000;
        const verdict v = engine_.observe_delivery(d, at_seconds(m.at));
        if (v.level != verdict_level::dunno) flagged_.push_back(m);
      }
      engine_.tick(at_seconds(t + minute - 1));
      drain();
      if ((t + minute) % hour == 0) refresh(t + minute);
    }
    now_ = until;
  }

  /// Episodes of `recipient` that started in [from, to).
  std::vector<episode_span> episodes(const std::string& recipient, std::int64_t from,
                                     std::int64_t to) const {
    std::vector<episode_span> out;
    for (const episode_span& e : episodes_) {
      if (e.recipient == recipient && e.started >= from && e.started < to) out.push_back(e);
    }
    return out;
  }

  /// The first flagged (non-DUNNO) message to `recipient` at or after `from`.
  std::optional<std::int64_t> first_flagged(const std::string& recipient, std::int64_t from) const {
    for (const mail& m : flagged_) {
      if (m.recipient == recipient && m.at >= from) return m.at;
    }
    return std::nullopt;
  }

  engine& eng() { return engine_; }

 private:
  void drain() {
    outbox& out = engine_.pending();
    for (const delivery_record& d : out.deliveries) {
      const std::int64_t h = to_unix_seconds(d.at) / hour * hour;
      hourly_count& row = rows_[d.recipient][h];
      row.hour_start = h;
      ++row.attempted;
      if (d.accepted) ++row.accepted;
      row.peak_minute = std::max(row.peak_minute, d.minute_volume);
      row.peak_ten_minutes = std::max(row.peak_ten_minutes, d.ten_minute_volume);
      row.in_episode = row.in_episode || d.in_episode;
      if (senders_[{d.recipient, h}].insert(d.sender).second) ++row.distinct_senders;
    }
    for (const episode_record& e : out.episodes) {
      const std::int64_t started = to_unix_seconds(e.started) - origin;
      auto open = std::find_if(episodes_.begin(), episodes_.end(), [&](const episode_span& s) {
        return s.recipient == e.recipient && s.started == started;
      });
      if (open == episodes_.end()) {
        episodes_.push_back({e.recipient, started, std::nullopt});
        open = episodes_.end() - 1;
      }
      if (e.ended) open->ended = to_unix_seconds(e.updated) - origin;
    }
    out.clear();
  }

  void refresh(std::int64_t t) {
    std::vector<recipient_history> histories;
    for (const auto& [recipient, hours] : rows_) {
      recipient_history h{recipient, {}};
      for (const auto& [start, row] : hours) h.hours.push_back(row);
      histories.push_back(std::move(h));
    }
    engine_.update_histories(histories, at_seconds(t));
  }

  engine engine_;
  std::int64_t now_ = 0;
  std::map<std::string, std::map<std::int64_t, hourly_count>> rows_;
  std::map<std::pair<std::string, std::int64_t>, std::set<std::string>> senders_;
  std::vector<episode_span> episodes_;
  std::vector<mail> flagged_;
};

std::string sender_name(std::uint32_t n) {
  return "s" + std::to_string(n) + "@senders" + std::to_string(n % 97) + ".example";
}
std::string client_name(std::uint32_t n) {
  return "203.0." + std::to_string(n % 200) + "." + std::to_string(1 + n % 250);
}

/// Office-hour mail (Monday to Friday, 08:00-18:00) to `recipient`, `per_hour` an hour, from a
/// pool of regular senders, over [from, to).
void office_hours(std::vector<mail>& out, const std::string& recipient, int per_hour,
                  std::int64_t from, std::int64_t to, std::mt19937& rng) {
  for (std::int64_t d = from / day; d * day < to; ++d) {
    if (d % 7 >= 5) continue;  // the origin is a Monday
    for (std::int64_t h = 8; h < 18; ++h) {
      for (int i = 0; i < per_hour; ++i) {
        const std::int64_t at = d * day + h * hour + static_cast<std::int64_t>(rng() % hour);
        if (at >= from && at < to) {
          out.push_back({at, recipient, sender_name(rng() % 40), client_name(rng() % 20)});
        }
      }
    }
  }
}

/// `count` messages to `recipient` evenly over `span` seconds from `start`, each from a new
/// sender and client (a flood, a storm, a newsletter's copies).
void burst(std::vector<mail>& out, const std::string& recipient, std::int64_t start, int count,
           std::int64_t span, std::uint32_t first_sender) {
  for (int i = 0; i < count; ++i) {
    const std::uint32_t n = first_sender + static_cast<std::uint32_t>(i);
    out.push_back({start + span * i / count, recipient, sender_name(n), client_name(n)});
  }
}

/// Twenty quiet mailboxes, so the server-wide prior is learned as on a real server.
void background(std::vector<mail>& out, std::int64_t to, std::mt19937& rng) {
  for (int u = 0; u < 20; ++u) {
    office_hours(out, "user" + std::to_string(u) + "@example.test", 1, 0, to, rng);
  }
}

// An archive address with a newsletter's copies every Monday at 09:00 (150 in five minutes),
// learned over three weeks, stays silent on the fourth Monday; a flood five times that burst
// is flagged within two minutes.
TEST(Learning, WeeklyBurstAtTheSameHourIsLearnedAndAFiveTimesFloodIsNot) {
  std::mt19937 rng(1);
  const std::string archive = "archive@example.test";
  std::vector<mail> mails;
  const std::int64_t end = 3 * week + 2 * day;
  background(mails, end, rng);
  office_hours(mails, archive, 20, 0, end, rng);
  for (int w = 0; w < 4; ++w)
    burst(mails, archive, w * week + 9 * hour, 150, 5 * minute, 10'000 * (w + 1));
  const std::int64_t flood = 3 * week + day + 11 * hour;  // the fourth Tuesday, 11:00
  burst(mails, archive, flood, 750, 5 * minute, 900'000);

  learner l;
  l.run(mails, end);
  EXPECT_TRUE(l.episodes(archive, week, 3 * week + day).empty())
      << "newsletter Mondays after the first week";
  const auto flagged = l.first_flagged(archive, flood);
  ASSERT_TRUE(flagged.has_value());
  EXPECT_LE(*flagged - flood, 2 * minute);
}

// A ticket inbox with storms of 60-90 tickets in 20 minutes once or twice a week at random
// hours: after three weeks its next storm is silent; a flood five times a storm is flagged
// within two minutes.
TEST(Learning, StormsAtRandomHoursAreLearnedAndAFiveTimesFloodIsNot) {
  std::mt19937 rng(2);
  const std::string tickets = "tickets@example.test";
  std::vector<mail> mails;
  const std::int64_t end = 4 * week;
  background(mails, end, rng);
  office_hours(mails, tickets, 3, 0, end, rng);
  std::vector<std::int64_t> storms;
  for (int w = 0; w < 4; ++w) {
    const int in_week = 1 + static_cast<int>(rng() % 2);
    for (int k = 0; k < in_week; ++k) {
      storms.push_back(w * week + static_cast<std::int64_t>(rng() % (6 * day)));
    }
  }
  std::sort(storms.begin(), storms.end());
  std::uint32_t next_sender = 100'000;
  for (const std::int64_t s : storms) {
    const int count = 60 + static_cast<int>(rng() % 31);
    burst(mails, tickets, s, count, 20 * minute, next_sender);
    next_sender += 1000;
  }
  const std::int64_t flood = 4 * week - day + 3 * hour;  // a Sunday night
  burst(mails, tickets, flood, 5 * 90, 20 * minute, 900'000);

  learner l;
  l.run(mails, end);
  for (const episode_span& e : l.episodes(tickets, week, flood)) {
    ADD_FAILURE() << "episode after the first week at " << e.started / 3600.0 << " h";
  }
  const auto flagged = l.first_flagged(tickets, flood);
  ASSERT_TRUE(flagged.has_value());
  EXPECT_LE(*flagged - flood, 2 * minute);
}

// Hours inside a trusted episode are not learned from: a mailbox bombed every Monday for four
// weeks is still flagged on the fifth, and every one of those episodes closes within
// cool_down + 1 h of the bomb's last message.
TEST(Learning, ABombEveryMondayIsNeverLearnedAndEachEpisodeEndsWithIt) {
  std::mt19937 rng(3);
  const std::string victim = "victim@example.test";
  std::vector<mail> mails;
  const std::int64_t end = 6 * week;
  background(mails, end, rng);
  office_hours(mails, victim, 1, 0, end, rng);
  std::vector<std::int64_t> bombs;
  for (int w = 1; w <= 5; ++w) {
    bombs.push_back(w * week + 10 * hour);  // after a first, trusted week of history
    burst(mails, victim, bombs.back(), 200, 10 * minute, 100'000 * w);
  }

  learner l;
  l.run(mails, end);
  const std::int64_t allowed = 15 * minute + hour;  // cool_down + 1 h
  for (const std::int64_t bomb : bombs) {
    const auto flagged = l.first_flagged(victim, bomb);
    ASSERT_TRUE(flagged.has_value());
    EXPECT_LE(*flagged - bomb, 2 * minute) << "bomb at " << bomb;
    const auto spans = l.episodes(victim, bomb, bomb + day);
    ASSERT_EQ(spans.size(), 1U) << "bomb at " << bomb;
    ASSERT_TRUE(spans[0].ended.has_value());
    EXPECT_LE(*spans[0].ended - (bomb + 10 * minute), allowed);
  }
  // The day after a bomb, ordinary mail is ordinary again.
  EXPECT_TRUE(l.episodes(victim, bombs[0] + hour, bombs[1]).empty());
}

// A flood paced to stay under the 10-minute floor (one a minute for three hours) is caught by
// the hour window, and its episode too closes within cool_down + 1 h of the last message.
TEST(Learning, ASlowFloodEndsWithinAnHourOfItsLastMessage) {
  std::mt19937 rng(4);
  const std::string victim = "slow@example.test";
  std::vector<mail> mails;
  const std::int64_t end = 2 * week + 2 * day;
  background(mails, end, rng);
  office_hours(mails, victim, 1, 0, end, rng);
  const std::int64_t flood = 2 * week + 9 * hour;
  burst(mails, victim, flood, 180, 3 * hour, 500'000);

  learner l;
  l.run(mails, end);
  const auto spans = l.episodes(victim, flood, end);
  ASSERT_EQ(spans.size(), 1U);
  ASSERT_TRUE(spans[0].ended.has_value());
  EXPECT_LE(*spans[0].ended - (flood + 3 * hour), 15 * minute + hour);
}

// A daemon that starts with an empty database next to a busy account (150 an hour all day):
// the account may warn on its first day, but no episode stays open for more than three hours,
// and from the second day it is quiet.
TEST(Learning, ColdStartWithABusyAccountHoldsNoEpisodeForHours) {
  std::mt19937 rng(5);
  const std::string busy = "journal@example.test";
  std::vector<mail> mails;
  const std::int64_t end = 3 * day;
  background(mails, end, rng);
  for (std::int64_t t = 0; t < end; t += 24) {  // 150 an hour, day and night
    mails.push_back({t, busy, sender_name(static_cast<std::uint32_t>(t / 24) % 500),
                     client_name(static_cast<std::uint32_t>(t) % 30)});
  }
  learner l;
  l.run(mails, end);
  for (const episode_span& e : l.episodes(busy, 0, end)) {
    ASSERT_TRUE(e.ended.has_value());
    EXPECT_LE(*e.ended - e.started, 3 * hour) << "episode from " << e.started;
  }
  EXPECT_TRUE(l.episodes(busy, day, end).empty());
}

}  // namespace
}  // namespace rcptguard::decision
