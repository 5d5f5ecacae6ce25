// Key normalisation, address patterns, CIDR sets and the keyed hash.
#include "decision/keys.hpp"

#include <gtest/gtest.h>

#include <string>

#include "decision/hash.hpp"
#include "decision/matchers.hpp"

namespace rcptguard::decision {
namespace {

struct address_case {
  const char* in;
  const char* delimiters;
  const char* want;
};

TEST(NormaliseAddress, Table) {
  const address_case cases[] = {
      {"Bob@Example.TEST", "+", "bob@example.test"},
      {"bob+tag@example.test", "+", "bob@example.test"},
      {"BOB+Tag+more@example.test", "+", "bob@example.test"},
      {"+tag@example.test", "+", "+tag@example.test"},  // local part would become empty
      {"bob-tag@example.test", "+", "bob-tag@example.test"},
      {"bob-tag@example.test", "+-", "bob@example.test"},
      {"bob+a-b@example.test", "-+", "bob@example.test"},  // first delimiter found wins
      {"owner-list@example.test", "-", "owner-list@example.test"},
      {"list-request@example.test", "-", "list-request@example.test"},
      {"bob+tag@example.test", "", "bob+tag@example.test"},
      {"postmaster", "+", "postmaster"},
      {"Post+x", "+", "post"},
      {"", "+", ""},
      {"<>", "+", ""},
      {"a@b@Example.test", "+", "a@b@example.test"},
  };
  std::string out;
  for (const address_case& c : cases) {
    normalise_address(c.in, c.delimiters, out);
    EXPECT_EQ(out, c.want) << "input " << c.in << " delimiters '" << c.delimiters << "'";
  }
}

struct client_case {
  const char* in;
  unsigned prefix;
  const char* want;
};

TEST(NormaliseClient, Table) {
  const client_case cases[] = {
      {"192.0.2.10", 64, "192.0.2.10"},
      {"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
      {"2001:DB8:1:2::ff", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
      {"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"},
      {"2001:db8:1:2:3:4:5:6", 200, "2001:db8:1:2:3:4:5:6"},
      {"2001:db8:1:2:3:4:5:6", 0, "::/0"},
      {"2001:db8:1:ff80::1", 57, "2001:db8:1:ff80::/57"},
      {"::ffff:192.0.2.7", 64, "192.0.2.7"},
      {"unknown", 64, "unknown"},
      {"fe80::1%eth0", 64, "fe80::1%eth0"},
      {"", 64, ""},
  };
  std::string out;
  for (const client_case& c : cases) {
    normalise_client(c.in, c.prefix, out);
    EXPECT_EQ(out, c.want) << "input " << c.in << "/" << c.prefix;
  }
}

TEST(Glob, Matches) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*c", "abbbc"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_TRUE(glob_match("noreply-*@*.example.test", "noreply-x@mail.example.test"));
  EXPECT_FALSE(glob_match("noreply-*@*.example.test", "noreply-x@example.test"));
  // Many stars on a long miss stay linear-ish (iterative matcher).
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST(AddressPatterns, ExactDomainAndGlob) {
  const address_patterns p(
      {"Bob+x@Example.test", "*@lists.example.test", "@tickets.test", "archive-*@example.test"},
      "+");
  EXPECT_TRUE(p.matches("bob@example.test"));
  EXPECT_TRUE(p.matches("anything@lists.example.test"));
  EXPECT_TRUE(p.matches("help@tickets.test"));
  EXPECT_TRUE(p.matches("archive-2024@example.test"));
  EXPECT_FALSE(p.matches("alice@example.test"));
  EXPECT_FALSE(p.matches("x@sub.lists.example.test"));
}

TEST(NetworkSet, CidrBothFamilies) {
  const network_set n({"192.0.2.0/24", "10.1.2.3", "2001:db8::/32", "bad/99", "300.1.1.1/8"});
  EXPECT_TRUE(n.contains("192.0.2.200"));
  EXPECT_FALSE(n.contains("192.0.3.1"));
  EXPECT_TRUE(n.contains("10.1.2.3"));
  EXPECT_FALSE(n.contains("10.1.2.4"));
  EXPECT_TRUE(n.contains("2001:db8:ffff::1"));
  EXPECT_FALSE(n.contains("2001:db9::1"));
  EXPECT_FALSE(n.contains("unknown"));
  EXPECT_EQ(n.invalid().size(), 2U);
}

TEST(NetworkSet, OddPrefixLengths) {
  const network_set n({"198.51.100.128/25", "2001:db8:1:ff80::/57"});
  EXPECT_TRUE(n.contains("198.51.100.129"));
  EXPECT_FALSE(n.contains("198.51.100.127"));
  EXPECT_TRUE(n.contains("2001:db8:1:ffff::1"));
  EXPECT_FALSE(n.contains("2001:db8:1:ff00::1"));
}

TEST(KeyedHash, SipHashReferenceVector) {
  // SipHash-2-4 with key 00..0f over the empty message (the paper's test vector).
  const keyed_hash h(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL);
  EXPECT_EQ(h(""), 0x726fdb47dd0e0e31ULL);
}

TEST(KeyedHash, SeedChangesEverything) {
  const keyed_hash a(1);
  const keyed_hash b(2);
  EXPECT_NE(a("bob@example.test"), b("bob@example.test"));
  EXPECT_EQ(a("bob@example.test"), a("bob@example.test"));
  EXPECT_NE(mix(a("x"), 1), mix(a("x"), 2));
  EXPECT_NE(mix(a("x"), a("y")), mix(a("y"), a("x")));
}

}  // namespace
}  // namespace rcptguard::decision
