// etc/rcptguard.toml against the settings table: same text, same keys, same defaults, loads.
#include <gmock/gmock.h>
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

// Every value in `table` (a section, or a sub-section such as [detection.thresholds]) is a row.
std::size_t count_keys(const toml::table& table, const std::string& section) {
  std::size_t keys = 0;
  for (auto&& [name, node] : table) {
    const std::string key = section + "." + std::string{name.str()};
    if (settings::is_section(key)) {
      EXPECT_TRUE(node.is_table()) << key;
      if (node.is_table()) keys += count_keys(*node.as_table(), key);
      continue;
    }
    EXPECT_NE(settings::find(key), nullptr) << key;
    ++keys;
  }
  return keys;
}

TEST(Sample, HasNoKeyOutsideTheTable) {
  const toml::table sample = toml::parse(read_sample(), sample_path);
  std::size_t keys = 0;
  for (auto&& [section, node] : sample) {
    ASSERT_TRUE(node.is_table()) << section;
    keys += count_keys(*node.as_table(), std::string{section.str()});
  }
  EXPECT_EQ(keys, settings::all().size());
}

TEST(Sample, LoadsAsTheDefaults) {
  const load_result r = load_config(sample_path, {});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_TRUE(changed_settings(default_config(), *r.settings).empty());
}

TEST(Sample, LoadsAsDecisionSettingsDefaults) {
  const load_result r = load_config(sample_path, {});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  const decision::settings& d = r.settings->detection;
  const decision::settings compiled{};
  EXPECT_EQ(d.mode, compiled.mode);
  EXPECT_EQ(d.defaults.day.defer_floor, compiled.defaults.day.defer_floor);
  EXPECT_EQ(d.defaults.evidence_max_age, compiled.defaults.evidence_max_age);
  EXPECT_EQ(d.baseline.prior_quantile, compiled.baseline.prior_quantile);
  EXPECT_TRUE(d.classes.empty());
  EXPECT_TRUE(d.overrides.empty());
}

// The commented-out [[detection.class]] and [[detection.override]] examples, uncommented.
std::string uncommented_examples(const std::string& reference) {
  std::istringstream lines{reference};
  std::string out;
  bool in_examples = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# [[")) in_examples = true;
    if (!in_examples || !line.starts_with("# ")) continue;
    const std::string body = line.substr(2);
    if (body.starts_with("[[") || body.find(" = ") != std::string::npos) out += body + "\n";
  }
  return out;
}

TEST(Sample, ExamplesLoadOnceUncommented) {
  const std::string examples = uncommented_examples(read_sample());
  ASSERT_THAT(examples, ::testing::HasSubstr("[[detection.class]]"));
  ASSERT_THAT(examples, ::testing::HasSubstr("[[detection.override]]"));
  const load_result r = load_config_string(examples, {}, "examples");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors) << "\n" << examples;
  const decision::settings& d = r.settings->detection;
  ASSERT_EQ(d.classes.size(), 1U);
  EXPECT_EQ(d.classes[0].name, "lists");
  EXPECT_EQ(d.classes[0].recipients.size(), 2U);
  EXPECT_GT(d.classes[0].limits.baseline_ceiling_per_hour, d.defaults.baseline_ceiling_per_hour);
  ASSERT_EQ(d.overrides.size(), 1U);
  EXPECT_EQ(d.overrides[0].recipient, "ceo@example.test");
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
