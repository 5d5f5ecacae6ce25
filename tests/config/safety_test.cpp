// unsafe_settings(): valid settings check-config and the daemon warn about.
#include "config/safety.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rcptguard {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr std::uint64_t ample_files = 1'000'000;

TEST(UnsafeSettings, TheDefaultsAreSafe) {
  EXPECT_THAT(unsafe_settings(default_config(), ample_files), IsEmpty());
}

TEST(UnsafeSettings, ARemoteListenerOpenToEveryAddress) {
  config c = default_config();
  c.server.listen = {"inet:0.0.0.0:10041"};
  c.server.allow_clients = {"0.0.0.0/0"};
  const auto found = unsafe_settings(c, ample_files);
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_THAT(found[0], HasSubstr("server.listen \"inet:0.0.0.0:10041\" is reachable"));
  EXPECT_THAT(found[0], HasSubstr("\"0.0.0.0/0\""));

  // Listing the MX hosts, or listening on loopback only, is safe.
  c.server.allow_clients = {"192.0.2.0/24"};
  EXPECT_THAT(unsafe_settings(c, ample_files), IsEmpty());
  c.server.allow_clients = {"::/0"};
  c.server.listen = {"inet:127.0.0.1:10041", "inet:[::1]:10041"};
  EXPECT_THAT(unsafe_settings(c, ample_files), IsEmpty());
}

TEST(UnsafeSettings, AMetricsEndpointOpenToEveryAddress) {
  config c = default_config();
  c.metrics.listen = "inet:[::]:10042";
  c.metrics.allow_clients = {"::/0", "0.0.0.0/0"};
  const auto found = unsafe_settings(c, ample_files);
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_THAT(found[0], HasSubstr("metrics.listen \"inet:[::]:10042\" is reachable from other "
                                  "hosts and metrics.allow_clients admits every address"));
  c.metrics.allow_clients = {"192.0.2.10"};  // the Prometheus server
  EXPECT_THAT(unsafe_settings(c, ample_files), IsEmpty());
  c.metrics.allow_clients = {"0.0.0.0/0"};
  c.metrics.listen = "inet:127.0.0.1:10042";
  EXPECT_THAT(unsafe_settings(c, ample_files), IsEmpty());
}

TEST(UnsafeSettings, AWorldAccessibleUnixSocket) {
  config c = default_config();
  c.server.listen = {"unix:/run/rcptguard/policy.sock"};
  c.server.unix_socket_mode = 0666;
  const auto found = unsafe_settings(c, ample_files);
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_THAT(found[0], HasSubstr("server.unix_socket_mode 0666 lets every local user connect to "
                                  "\"/run/rcptguard/policy.sock\""));
  c.server.unix_socket_mode = 0660;
  EXPECT_THAT(unsafe_settings(c, ample_files), IsEmpty());
}

TEST(UnsafeSettings, MoreConnectionsThanTheFileLimitAllows) {
  config c = default_config();
  c.server.max_connections = 1024;
  const auto found = unsafe_settings(c, 1024);
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_THAT(found[0], HasSubstr("server.max_connections 1024 needs about 1088 file descriptors "
                                  "but the limit is 1024: connections beyond about 960"));
  EXPECT_THAT(unsafe_settings(c, descriptors_needed(c)), IsEmpty());
}

}  // namespace
}  // namespace rcptguard
