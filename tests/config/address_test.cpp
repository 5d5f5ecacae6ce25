// Listen endpoints and client CIDRs: accepted spellings, every refusal, and prefix edges.
#include "config/address.hpp"

#include <gtest/gtest.h>

#include <array>

namespace rcptguard {
namespace {

endpoint parse_ok(std::string_view text) {
  std::string why;
  const auto ep = parse_endpoint(text, why);
  EXPECT_TRUE(ep) << text << ": " << why;
  return ep.value_or(endpoint{});
}

std::string endpoint_error(std::string_view text) {
  std::string why;
  EXPECT_FALSE(parse_endpoint(text, why)) << text;
  return why;
}

cidr net(std::string_view text) {
  std::string why;
  const auto parsed = parse_cidr(text, why);
  EXPECT_TRUE(parsed) << text << ": " << why;
  return parsed.value_or(cidr{});
}

std::string cidr_error(std::string_view text) {
  std::string why;
  EXPECT_FALSE(parse_cidr(text, why)) << text;
  return why;
}

TEST(ParseEndpoint, Inet4) {
  const endpoint ep = parse_ok("inet:127.0.0.1:10041");
  EXPECT_EQ(ep.kind, endpoint_kind::inet);
  EXPECT_EQ(ep.host, "127.0.0.1");
  EXPECT_EQ(ep.port, 10041);
}

TEST(ParseEndpoint, HostNameIsLowerCased) {
  const endpoint ep = parse_ok("inet:LocalHost:25");
  EXPECT_EQ(ep.host, "localhost");
}

TEST(ParseEndpoint, Inet6InBracketsIsCanonical) {
  const endpoint ep = parse_ok("inet:[0:0::1]:10041");
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.port, 10041);
  EXPECT_EQ(parse_ok("inet:[::]:1").host, "::");
}

TEST(ParseEndpoint, PortBounds) {
  EXPECT_EQ(parse_ok("inet:127.0.0.1:0").port, 0);
  EXPECT_EQ(parse_ok("inet:127.0.0.1:65535").port, 65535);
  EXPECT_NE(endpoint_error("inet:127.0.0.1:65536").find("not a port"), std::string::npos);
}

TEST(ParseEndpoint, Unix) {
  const endpoint ep = parse_ok("unix:/run/rcptguard/policy.sock");
  EXPECT_EQ(ep.kind, endpoint_kind::unix_socket);
  EXPECT_EQ(ep.path, "/run/rcptguard/policy.sock");
}

TEST(ParseEndpoint, UnixPathMustFitSockaddr) {
  const std::string fits = "/" + std::string(106, 'a');
  parse_ok("unix:" + fits);
  EXPECT_NE(endpoint_error("unix:" + fits + "a").find("at most 107 bytes"), std::string::npos);
}

TEST(ParseEndpoint, Refusals) {
  struct refusal {
    const char* text;
    const char* reason;
  };
  for (const auto& [text, reason] : std::array<refusal, 14>{{
           {"127.0.0.1:10041", "expected inet:HOST:PORT"},
           {"tcp:127.0.0.1:10041", "expected inet:HOST:PORT"},
           {"inet:127.0.0.1", "expected inet:HOST:PORT"},
           {"inet:127.0.0.1:", "not a port"},
           {"inet:127.0.0.1:+1", "not a port"},
           {"inet:127.0.0.1:x", "not a port"},
           {"inet:10041", "expected inet:HOST:PORT"},
           {"inet::10041", "missing host"},
           {"inet:::1:10041", "needs brackets"},
           {"inet:300.1.1.1:25", "not an IPv4 address"},
           {"inet:bad_host:25", "not a host name"},
           {"inet:[::1]10041", "expected ':PORT'"},
           {"inet:[::1:10041", "missing ']'"},
           {"unix:relative.sock", "must be absolute"},
       }}) {
    EXPECT_NE(endpoint_error(text).find(reason), std::string::npos) << text;
  }
}

TEST(ParseCidr, BareAddressIsOneHost) {
  EXPECT_EQ(net("192.0.2.7").prefix, 32);
  EXPECT_EQ(net("2001:db8::1").prefix, 128);
}

TEST(ParseCidr, HostBitsSetSuggestsTheNetwork) {
  EXPECT_NE(cidr_error("10.0.0.1/8").find("did you mean 10.0.0.0/8?"), std::string::npos);
  EXPECT_NE(cidr_error("2001:db8::1/32").find("did you mean 2001:db8::/32?"), std::string::npos);
}

TEST(ParseCidr, Refusals) {
  for (const char* bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/0008", "10.0.0.0/8/8", "10.0.0/8", "host/8", "10.0.0.0 /8"}) {
    EXPECT_FALSE(cidr_error(bad).empty()) << bad;
  }
}

TEST(CidrContains, Ipv4PrefixEdges) {
  const cidr eight = net("10.0.0.0/8");
  EXPECT_TRUE(eight.contains("10.0.0.0"));
  EXPECT_TRUE(eight.contains("10.255.255.255"));
  EXPECT_FALSE(eight.contains("9.255.255.255"));
  EXPECT_FALSE(eight.contains("11.0.0.0"));

  const cidr seven = net("10.0.0.0/7");  // not byte-aligned
  EXPECT_TRUE(seven.contains("11.255.255.255"));
  EXPECT_FALSE(seven.contains("12.0.0.0"));

  const cidr host = net("192.0.2.7/32");
  EXPECT_TRUE(host.contains("192.0.2.7"));
  EXPECT_FALSE(host.contains("192.0.2.6"));
  EXPECT_FALSE(host.contains("192.0.2.8"));

  const cidr all = net("0.0.0.0/0");
  EXPECT_TRUE(all.contains("0.0.0.0"));
  EXPECT_TRUE(all.contains("255.255.255.255"));
  EXPECT_FALSE(all.contains("::1"));
}

TEST(CidrContains, Ipv6PrefixEdges) {
  const cidr sixty_four = net("2001:db8:0:1::/64");
  EXPECT_TRUE(sixty_four.contains("2001:db8:0:1::"));
  EXPECT_TRUE(sixty_four.contains("2001:db8:0:1:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(sixty_four.contains("2001:db8:0:0:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(sixty_four.contains("2001:db8:0:2::"));

  const cidr odd = net("2001:db8::/127");
  EXPECT_TRUE(odd.contains("2001:db8::1"));
  EXPECT_FALSE(odd.contains("2001:db8::2"));

  const cidr loopback = net("::1/128");
  EXPECT_TRUE(loopback.contains("::1"));
  EXPECT_FALSE(loopback.contains("::2"));
  EXPECT_FALSE(loopback.contains("127.0.0.1"));

  const cidr all = net("::/0");
  EXPECT_TRUE(all.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(all.contains("127.0.0.1"));
}

TEST(CidrContains, MappedIpv4MatchesIpv4Networks) {
  const cidr loopback = net("127.0.0.0/8");
  EXPECT_TRUE(loopback.contains("::ffff:127.0.0.1"));
  EXPECT_FALSE(loopback.contains("::ffff:128.0.0.1"));
  EXPECT_FALSE(loopback.contains("::127.0.0.1"));  // IPv4-compatible, not mapped
}

TEST(CidrContains, ByteForm) {
  const cidr loopback = net("127.0.0.0/8");
  const std::array<std::uint8_t, 4> v4{127, 1, 2, 3};
  EXPECT_TRUE(loopback.contains(std::span<const std::uint8_t>{v4}));
  std::array<std::uint8_t, 16> v6{};
  v6[15] = 1;
  EXPECT_FALSE(loopback.contains(std::span<const std::uint8_t>{v6}));
  EXPECT_TRUE(net("::1/128").contains(std::span<const std::uint8_t>{v6}));
  const std::array<std::uint8_t, 5> odd_size{127, 0, 0, 1, 0};
  EXPECT_FALSE(loopback.contains(std::span<const std::uint8_t>{odd_size}));
}

TEST(CidrContains, GarbageIsContainedNowhere) {
  EXPECT_FALSE(net("0.0.0.0/0").contains("not an address"));
  EXPECT_FALSE(net("::/0").contains(""));
}

}  // namespace
}  // namespace rcptguard
