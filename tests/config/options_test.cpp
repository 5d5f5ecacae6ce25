// The settings as the libraries' options (config/options.hpp): every [spool] key reaches the
// scanner, and the table's defaults agree with the libraries' own.
#include "config/options.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace rcptguard {
namespace {

using namespace std::chrono_literals;

TEST(SpoolOptions, EverySettingReachesTheScanOptions) {
  spool_settings s = default_config().spool;
  s.roots = {"/srv/mail"};
  s.domains = {"example.test"};
  s.map = {"bob=robert@example.test"};
  s.min_repeats = 7;
  s.window = 2h;
  s.retention = 48h;
  s.check_owner = false;
  s.max_message_bytes = 1U << 20U;
  s.max_header_bytes = 4096;
  s.max_mime_depth = 8;
  s.max_mime_parts = 50;
  s.max_time_per_file = 2s;
  const scanner::scan_options o = scan_options_from(s);
  EXPECT_EQ(o.roots, std::vector<std::filesystem::path>{"/srv/mail"});
  EXPECT_EQ(o.domains, s.domains);
  ASSERT_EQ(o.mapping.size(), 1U);
  EXPECT_EQ(o.mapping.front().key, "bob");
  EXPECT_EQ(o.mapping.front().address, "robert@example.test");
  EXPECT_EQ(o.evidence.min_repeats, 7U);
  EXPECT_EQ(o.evidence.window, 2h);
  EXPECT_EQ(o.retention, 48h);
  EXPECT_FALSE(o.check_owner);
  EXPECT_EQ(o.limits.max_message_bytes, 1U << 20U);
  EXPECT_EQ(o.limits.max_header_bytes, 4096U);
  EXPECT_EQ(o.limits.max_mime_depth, 8U);
  EXPECT_EQ(o.limits.max_mime_parts, 50U);
  EXPECT_EQ(o.limits.max_time_per_file, 2s);
}

TEST(SpoolOptions, DefaultsAgreeWithTheScannerLibrary) {
  const scanner::scan_options table = scan_options_from(default_config().spool);
  const scanner::scan_options compiled{};
  EXPECT_EQ(table.roots, compiled.roots);
  EXPECT_EQ(table.evidence.min_repeats, compiled.evidence.min_repeats);
  EXPECT_EQ(table.evidence.window, compiled.evidence.window);
  EXPECT_EQ(table.retention, compiled.retention);
  EXPECT_EQ(table.check_owner, compiled.check_owner);
  EXPECT_EQ(table.limits.max_message_bytes, compiled.limits.max_message_bytes);
  EXPECT_EQ(table.limits.max_header_bytes, compiled.limits.max_header_bytes);
  EXPECT_EQ(table.limits.max_mime_depth, compiled.limits.max_mime_depth);
  EXPECT_EQ(table.limits.max_mime_parts, compiled.limits.max_mime_parts);
  EXPECT_EQ(table.limits.max_time_per_file, compiled.limits.max_time_per_file);
}

}  // namespace
}  // namespace rcptguard
