// etc/rcptguard.toml against the settings table: same text, same keys, same defaults, loads.
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "config/config.hpp"
#include "config/settings.hpp"

namespace rcptguard {
namespace {

const std::string sample_path = std::string{RCPTGUARD_SOURCE_DIR} + "/etc/rcptguard.toml";

std::string read_sample() {
  std::ifstream in{sample_path, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(Sample, IsTheRenderedReference) {
  EXPECT_EQ(read_sample(), render_reference())
      << sample_path
      << " is out of date; regenerate it with: ninja -C <build> update_sample_config";
}

TEST(Sample, ListsEveryKeyWithExactlyItsDefault) {
  const toml::table sample = toml::parse(read_sample(), sample_path);
  for (const auto& s : settings::all()) {
    const toml::table default_doc = toml::parse("v = " + std::string{s.default_value});
    const toml::node_view<const toml::node> shown = sample.at_path(s.key);
    ASSERT_TRUE(shown) << s.key << " is missing";
    EXPECT_TRUE(shown == default_doc["v"]) << s.key << " is not " << s.default_value;
  }
}

TEST(Sample, HasNoKeyOutsideTheTable) {
  const toml::table sample = toml::parse(read_sample(), sample_path);
  std::size_t keys = 0;
  for (auto&& [section, node] : sample) {
    ASSERT_TRUE(node.is_table()) << section;
    for (auto&& [name, value] : *node.as_table()) {
      const std::string key = std::string{section.str()} + "." + std::string{name.str()};
      EXPECT_NE(settings::find(key), nullptr) << key;
      ++keys;
    }
  }
  EXPECT_EQ(keys, settings::all().size());
}

TEST(Sample, LoadsAsTheDefaults) {
  const load_result r = load_config(sample_path, {});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_TRUE(changed_settings(default_config(), *r.settings).empty());
}

TEST(Reference, EveryCommentLineFitsOneHundredColumns) {
  std::istringstream lines{render_reference()};
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("#")) {
      EXPECT_LE(line.size(), 100U) << line;
    }
  }
}

}  // namespace
}  // namespace rcptguard
