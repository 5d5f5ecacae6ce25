// cluster/redis_client.hpp against Debian's redis-server: one node's counts reach the others,
// publishing again never adds twice, a restarted node's earlier counts stay with it, the
// sketches count distinct senders across nodes, a stopped server throws and a restarted one
// (empty script cache) serves again, shared correspondents keep their earliest sighting up to
// a cap, and a password is required when the server asks for one.
#include "cluster/redis_client.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "tests/common/redis_server.hpp"
#include "tests/common/temp_dir.hpp"

namespace rcptguard::cluster {
namespace {

constexpr std::uint32_t minute = 29'000'025;

class RedisClient : public ::testing::Test {
 protected:
  void SetUp() override {
    // A write to a server that died raises SIGPIPE; the daemon's cluster thread blocks it,
    // as redis_client.hpp asks of its caller.
    ::signal(SIGPIPE, SIG_IGN);
    if (test_support::redis_server_binary().empty()) {
      GTEST_SKIP() << "redis-server is not installed (contrib/install-deps.sh --test)";
    }
    server_.emplace(dir_.path().string());
  }

  redis_client client(std::string password = {}) const {
    redis_options o;
    o.unix_path = server_->socket();
    o.password = std::move(password);
    o.timeout = std::chrono::milliseconds(500);
    return redis_client(o);
  }

  static publish_batch rcpts(std::string_view recipient, std::uint32_t at, int count,
                             std::string_view sender_prefix) {
    node_counts counts(1000);
    for (int i = 0; i < count; ++i) {
      counts.add({std::string{recipient}, at, std::string{sender_prefix} + std::to_string(i),
                  "192.0.2." + std::to_string(i)});
    }
    return counts.take_changes();
  }

  test_support::temp_dir dir_;
  std::optional<test_support::redis_server> server_;
};

TEST_F(RedisClient, OneNodesCountsReachTheOthersOnceHoweverOftenPublished) {
  redis_client a = client();
  redis_client b = client();
  a.connect();
  b.connect();
  const publish_batch batch = rcpts("bob@x.test", minute, 5, "s");
  a.publish(batch, "mx1/aaaa");
  a.publish(batch, "mx1/aaaa");  // a retry after a lost reply: the same values
  const auto seen = b.pull({"bob@x.test", "nobody@x.test"}, "mx2/", minute);
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0].recipient, "bob@x.test");
  EXPECT_EQ(seen[0].minutes[9], 5U);
  EXPECT_EQ(seen[0].minutes[8], 0U);
  EXPECT_EQ(seen[0].hours[23], 5U);
  EXPECT_EQ(seen[0].senders_ten, 5U);
  EXPECT_EQ(seen[0].senders_hour, 5U);
  EXPECT_EQ(seen[0].clients_ten, 5U);
  EXPECT_EQ(seen[1].minutes[9], 0U);

  // Node 1 itself sees none of its own, from any incarnation.
  EXPECT_EQ(a.pull({"bob@x.test"}, "mx1/", minute)[0].minutes[9], 0U);
  // Node 1 restarted: its new incarnation counts beside the old, for the others.
  a.publish(rcpts("bob@x.test", minute, 3, "s"), "mx1/bbbb");
  const auto after = b.pull({"bob@x.test"}, "mx2/", minute);
  EXPECT_EQ(after[0].minutes[9], 8U);
  EXPECT_EQ(after[0].senders_ten, 5U);  // s0..s2 again: a union, not a sum
  // Node 2's own counts are its own; a minute later the old minute is the one before.
  b.publish(rcpts("bob@x.test", minute + 1, 4, "t"), "mx2/cccc");
  const auto next = a.pull({"bob@x.test"}, "mx1/", minute + 1);
  EXPECT_EQ(next[0].minutes[9], 4U);
  EXPECT_EQ(next[0].minutes[8], 0U);  // mx1's own minute is not its "others"
  const auto from_b = b.pull({"bob@x.test"}, "mx2/", minute + 1);
  EXPECT_EQ(from_b[0].minutes[8], 8U);
  EXPECT_EQ(from_b[0].senders_ten, 9U);  // s0..s4 and t0..t3
}

TEST_F(RedisClient, AStoppedServerThrowsAndARestartedOneServesAgain) {
  redis_client a = client();
  a.connect();
  a.publish(rcpts("bob@x.test", minute, 1, "s"), "mx1/aaaa");
  server_->stop();
  EXPECT_THROW(a.publish(rcpts("bob@x.test", minute, 1, "s"), "mx1/aaaa"), redis_error);
  EXPECT_FALSE(a.connected());
  EXPECT_THROW(a.connect(), redis_error);
  server_->start();  // empty: no data, no scripts
  a.connect();
  EXPECT_TRUE(a.connected());
  EXPECT_EQ(a.pull({"bob@x.test"}, "mx2/", minute)[0].minutes[9], 0U);

  // The script cache emptied under a connected client (SCRIPT FLUSH, or a failover to a
  // replica without it): the pull loads the script again and answers.
  redis_client other = client();
  other.connect();
  other.publish(rcpts("bob@x.test", minute, 2, "s"), "mx1/aaaa");
  const std::string flush = "redis-cli -s " + server_->socket() + " SCRIPT FLUSH >/dev/null";
  ASSERT_EQ(std::system(flush.c_str()), 0) << flush;
  EXPECT_EQ(a.pull({"bob@x.test"}, "mx2/", minute)[0].minutes[9], 2U);
}

TEST_F(RedisClient, TheFirstNodeToOpenAnEpisodeNamesTheFlood) {
  redis_client a = client();
  redis_client b = client();
  a.connect();
  b.connect();
  EXPECT_EQ(a.claim_episodes({{"bob@x.test", "mx1:1700000000"}}, {}, std::chrono::seconds(60)),
            (std::vector<std::string>{"mx1:1700000000"}));
  // mx2 opened its own a moment later: the flood keeps mx1's id; carol's is mx2's own.
  EXPECT_EQ(b.claim_episodes({{"bob@x.test", "mx2:1700000003"}, {"carol@x.test", "mx2:1700000004"}},
                             {}, std::chrono::seconds(60)),
            (std::vector<std::string>{"mx1:1700000000", "mx2:1700000004"}));
  // Open episodes keep their id alive; a missing one is no error.
  EXPECT_TRUE(
      a.claim_episodes({}, {"bob@x.test", "nobody@x.test"}, std::chrono::seconds(60)).empty());
  const std::string ttl = "redis-cli -s " + server_->socket() + " TTL rcptguard:x:bob@x.test";
  ASSERT_EQ(std::system((ttl + " | grep -qE '^(59|60)$'").c_str()), 0) << ttl;
}

TEST_F(RedisClient, CorrespondentsKeepTheirEarliestSightingUpToTheCap) {
  redis_client a = client();
  redis_client b = client();
  a.connect();
  b.connect();
  const std::chrono::seconds ttl{3600};
  // alice wrote to bob through mx1 at minute 100, and through mx2 at 90 (published later).
  auto shared = a.share_correspondents(
      {{"bob@x.test", "alice@y.test", 100}, {"bob@x.test", "carol@y.test", 120}}, 3, ttl);
  EXPECT_EQ(shared.added, 2U);
  shared = b.share_correspondents({{"bob@x.test", "alice@y.test", 90},
                                   {"bob@x.test", "carol@y.test", 130},
                                   {"bob@x.test", "dave@y.test", 140},
                                   {"bob@x.test", "eve@y.test", 150}},
                                  3, ttl);
  EXPECT_EQ(shared.added, 1U);         // dave
  EXPECT_EQ(shared.refused_full, 1U);  // eve: bob holds 3, the cap

  const std::vector<decision::known_senders> known =
      a.read_correspondents({"bob@x.test", "nobody@x.test"}, 3);
  ASSERT_EQ(known.size(), 2U);
  EXPECT_EQ(known[0].recipient, "bob@x.test");
  std::map<std::string, std::uint32_t> senders;
  for (const auto& s : known[0].senders) senders[s.address] = s.first_minute;
  EXPECT_EQ(senders, (std::map<std::string, std::uint32_t>{
                         {"alice@y.test", 90}, {"carol@y.test", 120}, {"dave@y.test", 140}}));
  EXPECT_TRUE(known[1].senders.empty());
  // Read no more than asked for, whatever the store holds.
  EXPECT_EQ(a.read_correspondents({"bob@x.test"}, 2)[0].senders.size(), 2U);
  const std::string key_ttl = "redis-cli -s " + server_->socket() + " TTL rcptguard:k:bob@x.test";
  ASSERT_EQ(std::system((key_ttl + " | grep -qE '^(3599|3600)$'").c_str()), 0) << key_ttl;

  // Both scripts come back after the cache is emptied.
  const std::string flush = "redis-cli -s " + server_->socket() + " SCRIPT FLUSH >/dev/null";
  ASSERT_EQ(std::system(flush.c_str()), 0) << flush;
  EXPECT_EQ(a.share_correspondents({{"carol@x.test", "bob@x.test", 10}}, 3, ttl).added, 1U);
  EXPECT_EQ(a.pull({"bob@x.test"}, "mx2/", minute).size(), 1U);
}

TEST_F(RedisClient, AReleaseIsReadByTheOtherNodesAndGarbageIsNoRelease) {
  redis_client a = client();
  redis_client b = client();
  a.connect();
  b.connect();
  const release_note note{"bob@x.test", 1'790'000'000, "mx1", "alice", "user confirmed"};
  a.publish_releases({note}, std::chrono::seconds(3600));
  const std::string other =
      "redis-cli -s " + server_->socket() + " SET rcptguard:o:carol@x.test 'not json' >/dev/null";
  ASSERT_EQ(std::system(other.c_str()), 0) << other;
  const auto read = b.read_releases({"bob@x.test", "carol@x.test", "dave@x.test"});
  ASSERT_EQ(read.size(), 3U);
  ASSERT_TRUE(read[0].has_value());
  EXPECT_EQ(*read[0], note);
  EXPECT_FALSE(read[1].has_value());
  EXPECT_FALSE(read[2].has_value());
  // What comes back is bounded like a control request.
  release_note wordy = note;
  wordy.recipient = "erin@x.test";
  wordy.reason = std::string(5000, 'r');
  wordy.user = std::string(5000, 'u');
  a.publish_releases({wordy}, std::chrono::seconds(3600));
  const auto bounded = b.read_releases({"erin@x.test"})[0];
  ASSERT_TRUE(bounded.has_value());
  EXPECT_EQ(bounded->reason.size(), max_release_reason);
  EXPECT_EQ(bounded->user.size(), max_release_user);
  // The latest release wins.
  release_note later = note;
  later.at += 60;
  later.node = "mx2";
  b.publish_releases({later}, std::chrono::seconds(3600));
  EXPECT_EQ(*a.read_releases({"bob@x.test"})[0], later);
}

TEST(RedisClientAuth, APasswordIsSentAndRequired) {
  if (test_support::redis_server_binary().empty()) {
    GTEST_SKIP() << "redis-server is not installed (contrib/install-deps.sh --test)";
  }
  test_support::temp_dir dir;
  test_support::redis_server server(dir.path().string(), "s3cret");
  redis_options o;
  o.unix_path = server.socket();
  redis_client without(o);
  try {
    without.connect();
    FAIL() << "connected without the password";
  } catch (const redis_error& e) {
    EXPECT_NE(std::string(e.what()).find("NOAUTH"), std::string::npos) << e.what();
  }
  o.password = "s3cret";
  redis_client with(o);
  with.connect();
  EXPECT_TRUE(with.connected());
}

TEST(RedisClientConnect, NobodyListeningFailsWithinTheTimeOut) {
  redis_options o;
  o.host = "127.0.0.1";
  o.port = 1;  // nothing listens on port 1
  o.timeout = std::chrono::milliseconds(200);
  redis_client c(o);
  EXPECT_THROW(c.connect(), redis_error);
  EXPECT_EQ(c.describe(), "127.0.0.1:1");
}

}  // namespace
}  // namespace rcptguard::cluster
