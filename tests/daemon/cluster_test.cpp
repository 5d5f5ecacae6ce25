// The cluster store end to end: Debian's redis-server on a unix socket in the test's directory
// and real `rcptguard serve` nodes sharing it (README, "Several MX hosts").
//  - A flood split evenly across two nodes is warned, then deferred, by both at the cluster's
//    thresholds, where a node alone with the same share answers DUNNO.
//  - Redis killed mid-flood: both keep answering, judge on their own counts at once, say so
//    (log, metrics); Redis back (empty): both publish again and the totals converge.
//  - A node killed and restarted rejoins, its earlier counts coming back from its own database
//    (and never counted twice through the store).
//  - A node cut off from Redis while the others reach it judges alone, and when the partition
//    heals each side sees every RCPT once.
//  - A sender who wrote to the recipient through one node passes that recipient's flood on
//    another.
//  - An operator's release on one node ends the flood's episode on the others too.
// Each wait is bounded; the processes are ours, ended by PID. Skips without redis-server.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/redis_server.hpp"
#include "tests/daemon/binary_harness.hpp"
#include "tests/server/test_support.hpp"

namespace rcptguard::server_test {
namespace {

constexpr std::string_view victim = "bob@example.test";

/// GET /metrics: the samples by name (labels included).
std::map<std::string, double> scrape(std::uint16_t port) {
  std::map<std::string, double> samples;
  test_client client = test_client::tcp(port);
  client.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  const read_result r = client.read_until_closed();
  const auto body = r.bytes.find("\r\n\r\n");
  if (body == std::string::npos) return samples;
  std::istringstream lines(r.bytes.substr(body + 4));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

/// The 10-minute volume a WARN or DEFER reply names ("... 37 msgs/10m ..."), or -1.
int volume_10m(const std::string& reply) {
  const auto at = reply.find(" msgs/10m");
  if (at == std::string::npos) return -1;
  auto start = reply.rfind(' ', at - 1);
  return std::stoi(reply.substr(start + 1, at - start - 1));
}

/// The verb of a policy reply: "DUNNO", "WARN", "DEFER_IF_PERMIT".
std::string verb(const std::string& reply) {
  const std::string prefix = "action=";
  if (!reply.starts_with(prefix)) return reply;
  const auto end = reply.find_first_of(" \n", prefix.size());
  return reply.substr(prefix.size(), end - prefix.size());
}

class ClusterNodes : public RcptguardBinaryLoad {
 protected:
  struct node {
    std::string name;
    std::uint16_t port = 0;
    std::uint16_t metrics_port = 0;
    std::unique_ptr<child_process> process;

    std::string log() const { return process->err(); }
    std::map<std::string, double> metrics() const { return scrape(metrics_port); }
  };

  void SetUp() override {
    if (test_support::redis_server_binary().empty()) {
      GTEST_SKIP() << "redis-server is not installed (contrib/install-deps.sh --test)";
    }
    redis_.emplace(dir_.path().string());
    write_file(dir_.file("empty.toml"), "");
  }

  /// Starts node `name` (its own database, ports and control socket) with `extra` settings;
  /// with `cluster` false it runs alone, as a host without the cluster store would.
  node start(const std::string& name, bool cluster = true,
             const std::vector<std::string>& extra = {}) {
    node n;
    n.name = name;
    n.port = free_tcp_port();
    n.metrics_port = free_tcp_port();
    std::vector<std::string> args{
        "serve", "-c", dir_.file("empty.toml"), "-o",
        "server.listen=[\"inet:127.0.0.1:" + std::to_string(n.port) + "\"]", "-o",
        "store.path=" + dir_.file(name + ".db"), "-o", "store.flush_interval=100ms", "-o",
        "control.socket=" + dir_.file(name + ".control"), "-o",
        "metrics.listen=inet:127.0.0.1:" + std::to_string(n.metrics_port), "-o",
        "detection.mode=enforce", "-o", "log.level=info",
        // The 10-minute window judges (its count is exact at any second; the 1-minute window
        // weighs the minute before), with its default points: warn at 20, defer at 40.
        "-o", "detection.thresholds.minute_warn_floor=100000", "-o",
        "detection.thresholds.minute_defer_floor=200000"};
    if (cluster) {
      for (const std::string& o :
           {"cluster.redis=unix:" + redis_->socket(), "cluster.node=" + name,
            std::string{"cluster.interval=100ms"}, std::string{"cluster.max_age=1s"}}) {
        args.push_back("-o");
        args.push_back(o);
      }
    }
    for (const std::string& o : extra) {
      args.push_back("-o");
      args.push_back(o);
    }
    n.process =
        std::make_unique<child_process>(args, dir_.file(name + ".out"), dir_.file(name + ".log"));
    daemon_pid_ = n.process->pid();
    const bool up = eventually(
        [&] {
          return !n.process->running() ||
                 (test_client::tcp(n.port).connected() &&
                  (!cluster || n.log().find("CLUSTER CONNECTED") != std::string::npos));
        },
        20s);
    EXPECT_TRUE(up && n.process->running()) << name << " did not come up:\n" << n.log();
    return n;
  }

  /// Waits until every node has completed `rounds` more publish-and-read rounds than now: what
  /// each counted before this call has then reached the others' engines.
  static bool settle(const std::vector<const node*>& nodes, double rounds = 3) {
    std::vector<double> start;
    for (const node* n : nodes) start.push_back(n->metrics()["rcptguard_cluster_rounds_total"]);
    return eventually(
        [&] {
          for (std::size_t k = 0; k < nodes.size(); ++k) {
            if (nodes[k]->metrics()["rcptguard_cluster_rounds_total"] < start[k] + rounds) {
              return false;
            }
          }
          return true;
        },
        20s);
  }

  /// `count` messages to the victim through `n`, senders numbered from `first`; the replies.
  static std::vector<std::string> send(const node& n, int first, int count) {
    test_client client = test_client::tcp(n.port);
    return flood(client, victim, first, count);
  }
  static std::string one(const node& n, int sender) { return send(n, sender, 1).front(); }

  /// Runs redis-cli against the test's server; true when it exits 0.
  bool redis_cli(const std::string& arguments) const {
    const std::string command =
        "redis-cli -s " + redis_->socket() + " " + arguments + " >/dev/null";
    return std::system(command.c_str()) == 0;
  }

  std::optional<test_support::redis_server> redis_;
};

TEST_F(ClusterNodes, AFloodSplitAcrossTwoNodesIsJudgedOnTheClustersVolume) {
  node a = start("mx1");
  node b = start("mx2");
  node alone = start("mx3", false);
  ASSERT_TRUE(a.process && b.process && alone.process);

  // 12 each: under the 10-minute warn point (20) on either node by itself.
  EXPECT_EQ(verb(one(a, 0)), "DUNNO");
  for (int k = 1; k < 24; ++k) one(k % 2 == 0 ? a : b, k);
  ASSERT_TRUE(settle({&a, &b}));
  // The 25th RCPT of the cluster, on mx1: warned, judged on all 25.
  const std::string warned = one(a, 100);
  EXPECT_EQ(verb(warned), "WARN") << warned;
  EXPECT_EQ(volume_10m(warned), 25) << warned;
  // On mx2 too (26, or 25 if mx1's last RCPT is still on its way).
  const std::string warned_b = one(b, 101);
  EXPECT_EQ(verb(warned_b), "WARN") << warned_b;
  EXPECT_GE(volume_10m(warned_b), 25) << warned_b;
  EXPECT_LE(volume_10m(warned_b), 26) << warned_b;
  // The same share and more on a node alone: nothing.
  for (const std::string& reply : send(alone, 200, 13)) EXPECT_EQ(verb(reply), "DUNNO") << reply;

  // 7 more each (40 in all): past the defer point on both.
  for (int k = 0; k < 14; ++k) one(k % 2 == 0 ? a : b, 300 + k);
  ASSERT_TRUE(settle({&a, &b}));
  const std::string deferred = one(a, 400);
  EXPECT_EQ(verb(deferred), "DEFER_IF_PERMIT") << deferred;
  EXPECT_EQ(volume_10m(deferred), 41) << deferred;
  const std::string deferred_b = one(b, 401);
  EXPECT_EQ(verb(deferred_b), "DEFER_IF_PERMIT") << deferred_b;

  // One flood, one id: both nodes' episodes carry the id of the first to open one, and each
  // database names its node.
  const auto id_of = [&](const node& n) {
    std::string id;
    eventually(
        [&] {
          SQLite::Database db(dir_.file(n.name + ".db"), SQLite::OPEN_READONLY, 5000);
          SQLite::Statement st(db,
                               "SELECT COALESCE(cluster_id, '') FROM episode "
                               "WHERE recipient = 'bob@example.test'");
          id = st.executeStep() ? st.getColumn(0).getString() : std::string{};
          return !id.empty();
        },
        20s);
    return id;
  };
  const std::string id_a = id_of(a);
  EXPECT_TRUE(id_a.starts_with("mx1:") || id_a.starts_with("mx2:")) << id_a;
  EXPECT_EQ(id_of(b), id_a);
  {
    SQLite::Database db(dir_.file("mx2.db"), SQLite::OPEN_READONLY, 5000);
    EXPECT_EQ(db.execAndGet("SELECT value FROM store_meta WHERE key = 'node'").getString(), "mx2");
  }

  const auto m = a.metrics();
  EXPECT_EQ(m.at("rcptguard_cluster_up"), 1.0);
  EXPECT_EQ(m.at("rcptguard_cluster_faults_total"), 0.0);
  EXPECT_GE(m.at("rcptguard_cluster_recipients"), 1.0);
  EXPECT_EQ(m.at("rcptguard_cluster_dropped_total"), 0.0);
}

TEST_F(ClusterNodes, RedisDownMeansLocalCountsAtOnceBackMeansCatchingUpAndANodeRejoins) {
  node a = start("mx1");
  node b = start("mx2");
  ASSERT_TRUE(a.process && b.process);
  for (int k = 0; k < 20; ++k) one(k % 2 == 0 ? a : b, k);  // 10 each
  ASSERT_TRUE(settle({&a, &b}));
  const std::string before = one(a, 100);
  EXPECT_EQ(volume_10m(before), 21) << before;

  // Redis killed: both keep answering every request, on their own counts at once (11 and 10,
  // and these: under 20).
  redis_->stop();
  for (const node* n : {&a, &b}) {
    ASSERT_TRUE(eventually([&] { return n->metrics()["rcptguard_cluster_up"] == 0.0; }, 20s))
        << n->log();
    EXPECT_NE(n->log().find("CLUSTER LOST: Redis unix:"), std::string::npos) << n->log();
    EXPECT_EQ(n->metrics()["rcptguard_cluster_recipients"], 0.0) << "the others' counts dropped";
    EXPECT_GE(n->metrics()["rcptguard_cluster_faults_total"], 1.0);
  }
  // mx1's episode (opened at 21) holds its WARN by its cool-down rules; what it is judged on is
  // its own 12 now. mx2, with no episode, answers DUNNO on its 11.
  const std::string held = one(a, 200);
  EXPECT_EQ(volume_10m(held), 12) << held;
  EXPECT_EQ(verb(one(b, 201)), "DUNNO");

  // Redis back, empty: each node publishes all it holds again; the totals converge.
  redis_->start();
  for (const node* n : {&a, &b}) {
    ASSERT_TRUE(eventually([&] { return n->log().find("CLUSTER BACK") != std::string::npos; }, 20s))
        << n->log();
  }
  ASSERT_TRUE(settle({&a, &b}));
  const std::string after = one(a, 300);  // mx1 13, mx2 11
  EXPECT_EQ(volume_10m(after), 24) << after;
  EXPECT_EQ(verb(after), "WARN") << after;
  EXPECT_EQ(a.metrics()["rcptguard_cluster_up"], 1.0);

  // mx2 killed and started again: its 11 come back from its own database, and the store's copy
  // of them (its earlier incarnation's field) is not added on top.
  ASSERT_TRUE(eventually(
      [&] {
        return count_rows(dir_.file("mx2.db"),
                          "SELECT COALESCE(sum(attempted), 0) FROM recipient_minute "
                          "WHERE recipient = 'bob@example.test'") >= 11;
      },
      20s));
  b.process->signal(SIGKILL);
  b.process->wait_exit(10s);
  node b2 = start("mx2");
  ASSERT_TRUE(b2.process);
  ASSERT_TRUE(settle({&a, &b2}));
  // A recipient is shared once it has cluster.min_count (2) RCPTs on the node: two messages
  // after the restart, and the next is judged on the cluster's count.
  one(b2, 400);
  one(b2, 401);
  ASSERT_TRUE(settle({&a, &b2}));
  const std::string rejoined = one(b2, 402);  // its 11 restored, these 3, mx1's 13
  EXPECT_EQ(verb(rejoined), "WARN") << rejoined;
  EXPECT_EQ(volume_10m(rejoined), 27) << rejoined << b2.log();
  const std::string seen_by_a = one(a, 403);  // mx1 14, mx2's 11 (earlier field) and 2 or 3
  EXPECT_GE(volume_10m(seen_by_a), 27) << seen_by_a;
  EXPECT_LE(volume_10m(seen_by_a), 28) << seen_by_a;
}

TEST_F(ClusterNodes, ACorrespondentSeenThroughOneNodePassesTheFloodOnTheOther) {
  // Any earlier sighting counts here (the default asks for an hour before the episode).
  const std::vector<std::string> now_is_enough{"detection.correspondent_min_age=0s"};
  node a = start("mx1", true, now_is_enough);
  node b = start("mx2", true, now_is_enough);
  ASSERT_TRUE(a.process && b.process);

  // Sender 500 writes to bob through mx1 only.
  EXPECT_EQ(verb(one(a, 500)), "DUNNO");
  ASSERT_TRUE(eventually(
      [&] { return a.metrics()["rcptguard_cluster_correspondents_shared_total"] >= 1.0; }, 20s))
      << a.log();

  // A flood split across both (44, and sender 500's message): deferred on mx2.
  for (int k = 0; k < 44; ++k) one(k % 2 == 0 ? a : b, k);
  ASSERT_TRUE(settle({&a, &b}));
  const std::string deferred = one(b, 600);
  EXPECT_EQ(verb(deferred), "DEFER_IF_PERMIT") << deferred;

  // mx2 reads bob's known correspondents for its episode: sender 500 passes there too, a
  // stranger does not.
  ASSERT_TRUE(eventually(
      [&] { return b.metrics()["rcptguard_cluster_correspondents_read_total"] >= 1.0; }, 20s))
      << b.log();
  ASSERT_TRUE(settle({&b}, 1));
  const std::string known = one(b, 500);
  EXPECT_EQ(verb(known), "DUNNO") << known;
  const std::string stranger = one(b, 601);
  EXPECT_EQ(verb(stranger), "DEFER_IF_PERMIT") << stranger;
}

TEST_F(ClusterNodes, AReleaseOnOneNodeEndsTheFloodsEpisodeOnTheOthers) {
  node a = start("mx1");
  node b = start("mx2");
  ASSERT_TRUE(a.process && b.process);
  for (int k = 0; k < 44; ++k) one(k % 2 == 0 ? a : b, k);
  ASSERT_TRUE(settle({&a, &b}));
  ASSERT_EQ(verb(one(a, 100)), "DEFER_IF_PERMIT");
  ASSERT_EQ(verb(one(b, 101)), "DEFER_IF_PERMIT");

  // The operator releases bob on mx1 (user confirmed the sign-ups were his).
  const command_result released =
      run({"release", std::string{victim}, "--reason", "ticket 4711", "-c", dir_.file("empty.toml"),
           "-o", "control.socket=" + dir_.file("mx1.control")});
  ASSERT_EQ(released.exit_code, 0) << released.err;
  EXPECT_EQ(verb(one(a, 200)), "DUNNO");

  // mx2 applies it to its own episode, opened before the release: DUNNO there too, where its
  // episode and counts alone would defer.
  ASSERT_TRUE(
      eventually([&] { return b.metrics()["rcptguard_cluster_releases_taken_total"] >= 1.0; }, 20s))
      << a.log() << b.log();
  ASSERT_TRUE(settle({&a, &b}, 1));
  const std::string after = one(b, 201);
  EXPECT_EQ(verb(after), "DUNNO") << after << b.log();
  EXPECT_EQ(a.metrics()["rcptguard_cluster_releases_shared_total"], 1.0);
  EXPECT_NE(b.log().find("CONTROL root release bob@example.test"), std::string::npos) << b.log();
  // Its audit names who released it and where.
  EXPECT_TRUE(eventually(
      [&] {
        return count_rows(dir_.file("mx2.db"),
                          "SELECT count(*) FROM operator_action WHERE command = 'release' AND "
                          "result = 'ok' AND reason = 'ticket 4711' AND detail LIKE "
                          "'released on node mx1 at %'") == 1;
      },
      20s));
  EXPECT_TRUE(eventually(
      [&] {
        return count_rows(dir_.file("mx2.db"),
                          "SELECT count(*) FROM episode WHERE recipient = 'bob@example.test' AND "
                          "closed_by = 'operator'") == 1;
      },
      20s));
}

TEST_F(ClusterNodes, APartitionedNodeJudgesAloneAndHealsWithoutCountingTwice) {
  // mx1 reaches Redis as its own ACL user: turning that user off and closing its connections
  // cuts mx1 off while mx2 and Redis go on, a partition on mx1's side.
  ASSERT_TRUE(redis_cli("ACL SETUSER mx1 on '>mx1-secret' '~*' '+@all'"));
  // Every reply below names its volume: the 10-minute window warns from 5, defers from 40.
  const std::vector<std::string> low_warn{"detection.thresholds.ten_minutes_warn_floor=5"};
  std::vector<std::string> as_mx1 = low_warn;
  as_mx1.insert(as_mx1.end(), {"cluster.user=mx1", "cluster.password=mx1-secret"});
  node a = start("mx1", true, as_mx1);
  node b = start("mx2", true, low_warn);
  ASSERT_TRUE(a.process && b.process);
  for (int k = 0; k < 10; ++k) one(k % 2 == 0 ? a : b, k);  // 5 each
  ASSERT_TRUE(settle({&a, &b}));

  ASSERT_TRUE(redis_cli("ACL SETUSER mx1 off"));
  ASSERT_TRUE(redis_cli("CLIENT KILL USER mx1"));
  ASSERT_TRUE(eventually([&] { return a.metrics()["rcptguard_cluster_up"] == 0.0; }, 20s))
      << a.log();
  for (int k = 10; k < 20; ++k) one(k % 2 == 0 ? a : b, k);  // 10 each now
  ASSERT_TRUE(settle({&b}));
  EXPECT_EQ(b.metrics()["rcptguard_cluster_up"], 1.0);
  // mx1 alone: its own 10 and this one. mx2: its own 11 and mx1's 5 from before the cut.
  const std::string cut_off = one(a, 100);
  EXPECT_EQ(volume_10m(cut_off), 11) << cut_off;
  const std::string other_side = one(b, 101);
  EXPECT_EQ(volume_10m(other_side), 16) << other_side;

  // Healed: mx1 publishes its counts again as absolute values; each side sees every RCPT once.
  ASSERT_TRUE(redis_cli("ACL SETUSER mx1 on"));
  ASSERT_TRUE(eventually([&] { return a.log().find("CLUSTER BACK") != std::string::npos; }, 20s))
      << a.log();
  ASSERT_TRUE(settle({&a, &b}));
  const std::string healed_a = one(a, 200);  // mx1 12, mx2 11
  EXPECT_EQ(volume_10m(healed_a), 23) << healed_a;
  ASSERT_TRUE(settle({&a, &b}));
  const std::string healed_b = one(b, 201);  // mx2 12, mx1 12
  EXPECT_EQ(volume_10m(healed_b), 24) << healed_b;
}

}  // namespace
}  // namespace rcptguard::server_test
