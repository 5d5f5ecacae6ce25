// Two-phase counting: tentative at RCPT, committed at END-OF-MESSAGE, rolled back otherwise;
// retries de-duplicated by instance; counting without the END-OF-MESSAGE hook.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace rcptguard::decision {
namespace {

using testing::at_seconds;
using testing::eom_request;
using testing::rcpt_request;
using testing::test_settings;

constexpr std::size_t ten = 1;  // index of the 10-minute window in all_windows order

settings two_phase() {
  settings s = test_settings();
  s.end_of_message_hook = eom_hook::present;
  return s;
}

struct counts {
  double attempted;
  double accepted;
};

counts of(const engine& e, std::string_view recipient, time_point now) {
  const recipient_view v = e.inspect(recipient, now);
  return {v.attempted[ten], v.accepted[ten]};
}

TEST(TwoPhase, EndOfMessageCommitsWithSize) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 1, at_seconds(0));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(0)).accepted, 0.0);
  EXPECT_EQ(e.stats().open_transactions, 1U);
  e.decide(eom_request("I1", "bob@example.test", 1, 4242), 1, at_seconds(1));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(1)).accepted, 1.0);
  EXPECT_EQ(e.stats().open_transactions, 0U);
  ASSERT_EQ(e.pending().deliveries.size(), 1U);
  EXPECT_TRUE(e.pending().deliveries[0].accepted);
  EXPECT_EQ(e.pending().deliveries[0].size, 4242U);
}

TEST(TwoPhase, MultiRecipientEndOfMessageCommitsAll) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 1, at_seconds(0));
  e.decide(rcpt_request("carol@example.test", "a@ex.org", "192.0.2.1", "I1"), 1, at_seconds(0));
  e.decide(eom_request("I1", "", 2, 100), 1, at_seconds(1));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(1)).accepted, 1.0);
  EXPECT_EQ(of(e, "carol@example.test", at_seconds(1)).accepted, 1.0);
}

TEST(TwoPhase, SingleNamedRecipientAtEndOfMessageRollsBackTheOthers) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 1, at_seconds(0));
  e.decide(rcpt_request("nosuchuser@example.test", "a@ex.org", "192.0.2.1", "I1"), 1,
           at_seconds(0));
  // Postfix rejected nosuchuser itself: END-OF-MESSAGE names the only accepted recipient.
  e.decide(eom_request("I1", "Bob@example.test", 1, 100), 1, at_seconds(1));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(1)).accepted, 1.0);
  const counts other = of(e, "nosuchuser@example.test", at_seconds(1));
  EXPECT_EQ(other.attempted, 1.0);
  EXPECT_EQ(other.accepted, 0.0);
}

TEST(TwoPhase, NewInstanceOnTheConnectionRollsBack) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 7, at_seconds(0));
  e.decide(rcpt_request("carol@example.test", "a@ex.org", "192.0.2.1", "I2"), 7, at_seconds(5));
  const counts bob = of(e, "bob@example.test", at_seconds(5));
  EXPECT_EQ(bob.attempted, 1.0);
  EXPECT_EQ(bob.accepted, 0.0);
  EXPECT_EQ(e.stats().transactions_rolled_back, 1U);
  ASSERT_EQ(e.pending().deliveries.size(), 1U);
  EXPECT_EQ(e.pending().deliveries[0].recipient, "bob@example.test");
  EXPECT_FALSE(e.pending().deliveries[0].accepted);
  EXPECT_EQ(e.pending().deliveries[0].at, at_seconds(0));
}

TEST(TwoPhase, NewInstanceInAnotherStateAlsoRollsBack) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 7, at_seconds(0));
  protocol::policy_request mail = rcpt_request("", "b@ex.org", "192.0.2.1", "I2");
  mail.state = protocol::protocol_state::mail;
  e.decide(mail, 7, at_seconds(3));
  EXPECT_EQ(e.stats().open_transactions, 0U);
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(3)).accepted, 0.0);
}

TEST(TwoPhase, ConnectionClosedRollsBackAfterTheRetryGrace) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 7, at_seconds(0));
  e.connection_closed(7, at_seconds(1));
  e.tick(at_seconds(5));  // within detached_transaction_grace (10 s): still waiting for a retry
  EXPECT_EQ(e.stats().open_transactions, 1U);
  e.tick(at_seconds(12));
  EXPECT_EQ(e.stats().open_transactions, 0U);
  EXPECT_EQ(e.stats().transactions_rolled_back, 1U);
  const counts bob = of(e, "bob@example.test", at_seconds(12));
  EXPECT_EQ(bob.attempted, 1.0);
  EXPECT_EQ(bob.accepted, 0.0);
  ASSERT_EQ(e.pending().deliveries.size(), 1U);
  EXPECT_FALSE(e.pending().deliveries[0].accepted);
}

TEST(TwoPhase, TimeoutRollsBack) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 7, at_seconds(0));
  e.tick(at_seconds(29 * 60));
  EXPECT_EQ(e.stats().open_transactions, 1U);
  e.tick(at_seconds(30 * 60));
  EXPECT_EQ(e.stats().open_transactions, 0U);
  EXPECT_EQ(e.stats().transaction_timeouts, 1U);
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(30 * 60)).accepted, 0.0);
}

TEST(TwoPhase, DuplicateRcptIsNotCountedTwiceEvenOnASecondConnection) {
  engine e(two_phase(), 1);
  const auto bob = rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1");
  e.decide(bob, 1, at_seconds(0));
  e.decide(bob, 1, at_seconds(0));
  // Postfix's retry after a failed exchange: the same request on a new connection.
  e.connection_closed(1, at_seconds(1));
  e.decide(bob, 2, at_seconds(2));
  // An extension spelling of the same mailbox is the same recipient too.
  e.decide(rcpt_request("bob+x@example.test", "a@ex.org", "192.0.2.1", "I1"), 2, at_seconds(2));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(2)).attempted, 1.0);
  EXPECT_EQ(e.stats().duplicate_rcpts, 3U);
  e.decide(eom_request("I1", "bob@example.test", 1, 10), 2, at_seconds(3));
  const counts after = of(e, "bob@example.test", at_seconds(3));
  EXPECT_EQ(after.attempted, 1.0);
  EXPECT_EQ(after.accepted, 1.0);
  EXPECT_EQ(e.pending().deliveries.size(), 1U);
}

TEST(TwoPhase, EndOfMessageOnASecondPolicyConnection) {
  engine e(two_phase(), 1);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 1, at_seconds(0));
  e.decide(eom_request("I1", "bob@example.test", 1, 10), 2, at_seconds(1));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(1)).accepted, 1.0);
}

TEST(TwoPhase, OpenTransactionsAreCapped) {
  settings s = two_phase();
  s.max_open_transactions = 3;
  engine e(s, 1);
  for (int i = 0; i < 5; ++i) {
    e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I" + std::to_string(i)),
             static_cast<std::uint64_t>(i), at_seconds(i));
  }
  EXPECT_EQ(e.stats().open_transactions, 3U);
  EXPECT_EQ(e.stats().transaction_evictions, 2U);
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(5)).attempted, 5.0);
}

TEST(NoHook, RcptCountsAsAcceptedUntilEndOfMessageIsSeen) {
  engine e(test_settings(), 1);  // auto-detect
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I1"), 1, at_seconds(0));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(0)).accepted, 1.0);
  EXPECT_FALSE(e.stats().two_phase);
  // The first END-OF-MESSAGE proves the hook exists; I1 was settled already, so no double count.
  e.decide(eom_request("I1", "bob@example.test", 1, 10), 1, at_seconds(1));
  EXPECT_TRUE(e.stats().two_phase);
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(1)).accepted, 1.0);
  e.decide(rcpt_request("bob@example.test", "a@ex.org", "192.0.2.1", "I2"), 1, at_seconds(2));
  EXPECT_EQ(of(e, "bob@example.test", at_seconds(2)).accepted, 1.0);  // now tentative
}

TEST(NoHook, AbsentHookStillDrivesDetection) {
  settings s = test_settings();
  s.end_of_message_hook = eom_hook::absent;
  engine e(s, 1);
  verdict last;
  for (int i = 0; i < 40; ++i) {
    last = e.decide(rcpt_request("bob@example.test", "u" + std::to_string(i % 5) + "@ex.org",
                                 "192.0.2." + std::to_string(i % 5), "I" + std::to_string(i)),
                    1, at_seconds(i * 15));
  }
  EXPECT_EQ(last.level, verdict_level::defer);
  const counts c = of(e, "bob@example.test", at_seconds(585));
  EXPECT_EQ(c.attempted, 40.0);
  EXPECT_EQ(c.accepted, 39.0);  // the deferred 40th was not accepted
}

TEST(Robustness, EmptyAndOddRequestsAreDunno) {
  engine e(test_settings(), 1);
  protocol::policy_request empty;
  EXPECT_EQ(e.decide(empty, 1, at_seconds(0)).level, verdict_level::dunno);
  EXPECT_EQ(e.decide(rcpt_request("", "", "", ""), 1, at_seconds(0)).level, verdict_level::dunno);
  EXPECT_EQ(
      e.decide(rcpt_request("x", std::string(5000, 'a'), "not an ip", ""), 1, at_seconds(0)).level,
      verdict_level::dunno);
  EXPECT_EQ(e.decide(eom_request("", "", 0, 0), 1, at_seconds(0)).level, verdict_level::dunno);
  e.connection_closed(12345, at_seconds(0));
  e.tick(at_seconds(0));
}

}  // namespace
}  // namespace rcptguard::decision
