// Detection settings: defaults taken from decision::settings{}, classes and overrides (arrays of
// tables inheriting [detection.thresholds]), their checks with index and position, allow lists,
// defer_action, relations and reload diffs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/settings.hpp"

namespace rcptguard {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

load_result load(std::string_view text, const std::vector<std::string>& overrides = {}) {
  return load_config_string(text, overrides, "t.toml");
}

std::string only_error(const load_result& r) {
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors.size(), 1U) << ::testing::PrintToString(r.errors);
  return r.errors.empty() ? std::string{} : r.errors.front();
}

// A copy: the load_result is usually a temporary.
decision::settings detection(const load_result& r) {
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  return r.ok() ? r.settings->detection : decision::settings{};
}

TEST(DetectionDefaults, AreDecisionSettingsDefaults) {
  const decision::settings& d = default_config().detection;
  const decision::settings compiled{};
  EXPECT_EQ(d.mode, compiled.mode);
  EXPECT_EQ(d.end_of_message_hook, compiled.end_of_message_hook);
  EXPECT_EQ(d.recipient_delimiters, compiled.recipient_delimiters);
  EXPECT_EQ(d.ipv6_prefix, compiled.ipv6_prefix);
  EXPECT_EQ(d.max_tracked_recipients, compiled.max_tracked_recipients);
  EXPECT_EQ(d.transaction_timeout, compiled.transaction_timeout);
  EXPECT_EQ(d.correspondent_min_age, compiled.correspondent_min_age);
  EXPECT_EQ(d.defer_action.verb, compiled.defer_action.verb);
  EXPECT_EQ(d.defer_action.code, compiled.defer_action.code);
  EXPECT_EQ(d.defer_action.text, compiled.defer_action.text);
  EXPECT_EQ(d.episode_peak_step, compiled.episode_peak_step);
  EXPECT_EQ(d.defaults.minute.warn_floor, compiled.defaults.minute.warn_floor);
  EXPECT_EQ(d.defaults.ten_minutes.warn_factor, compiled.defaults.ten_minutes.warn_factor);
  EXPECT_EQ(d.defaults.day.defer_factor, compiled.defaults.day.defer_factor);
  EXPECT_EQ(d.defaults.cool_down, compiled.defaults.cool_down);
  EXPECT_EQ(d.defaults.single_client_share, compiled.defaults.single_client_share);
  EXPECT_EQ(d.defaults.baseline_ceiling_per_hour, compiled.defaults.baseline_ceiling_per_hour);
  EXPECT_EQ(d.baseline.max_rise_per_day, compiled.baseline.max_rise_per_day);
  EXPECT_EQ(d.baseline.prior_min_recipients, compiled.baseline.prior_min_recipients);
  EXPECT_EQ(d.allow_clients, compiled.allow_clients);
  EXPECT_TRUE(d.classes.empty());
  EXPECT_TRUE(d.overrides.empty());
}

TEST(DetectionDefaults, EveryDetectionRowReadsTheStructDefault) {
  const config loaded = default_config();
  const config compiled{};  // detection is decision::settings{}
  for (const auto& s : settings::all()) {
    if (!s.key.starts_with("detection.")) continue;
    EXPECT_TRUE(s.field.read(loaded) == s.field.read(compiled)) << s.key;
  }
}

TEST(DetectionDefaults, RowDefaultTextIsTheFieldSpelledBack) {
  const config defaults = default_config();
  for (const auto& s : settings::all()) {
    const std::string spelled = settings::format_value(s, s.field.read(defaults));
    // Hand-written defaults may spell a value differently ("600s"); generated ones cannot.
    if (s.key.starts_with("detection.")) {
      EXPECT_EQ(spelled, s.default_value) << s.key;
    }
    // Either way the spelling loads back as the same value.
    const std::string doc =
        "[" + std::string{s.section()} + "]\n" + std::string{s.name()} + " = " + spelled + "\n";
    const load_result r = load(doc);
    ASSERT_TRUE(r.ok()) << s.key << ": " << ::testing::PrintToString(r.errors);
    EXPECT_TRUE(changed_settings(defaults, *r.settings).empty()) << s.key << " = " << spelled;
  }
}

TEST(DetectionDefaults, RealsAreSpelledAsTomlFloats) {
  EXPECT_EQ(settings::format_real(8.0), "8.0");
  EXPECT_EQ(settings::format_real(0.1), "0.1");
  EXPECT_EQ(settings::format_real(1.25), "1.25");
  EXPECT_EQ(settings::format_real(1e7), "10000000.0");
  EXPECT_EQ(*settings::find("detection.thresholds.ten_minutes_warn_factor")->default_value.data(),
            '8');
}

TEST(DeferAction, IsParsedIntoAPolicyAction) {
  const auto d = detection(load("[detection]\ndefer_action = \"DEFER 4.7.1\"\n"));
  EXPECT_EQ(d.defer_action.verb, protocol::action_verb::defer);
  EXPECT_EQ(d.defer_action.text, "4.7.1");
  const auto code = detection(load("", {"detection.defer_action=450 4.2.1"}));
  EXPECT_EQ(code.defer_action.verb, protocol::action_verb::smtp_code);
  EXPECT_EQ(code.defer_action.code, "450");
  EXPECT_EQ(code.defer_action.text, "4.2.1");
}

TEST(DeferAction, ComparesByMeaningNotSpelling) {
  const load_result r = load("[detection]\ndefer_action = \"defer_if_permit 4.2.1\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(changed_settings(default_config(), *r.settings).empty());
}

TEST(Detection, ChoicesAndNumbers) {
  const auto d =
      detection(load("[detection]\nend_of_message_hook = \"absent\"\n[detection.thresholds]\n"
                     "ten_minutes_warn_factor = 9\n"));
  EXPECT_EQ(d.end_of_message_hook, decision::eom_hook::absent);
  EXPECT_DOUBLE_EQ(d.defaults.ten_minutes.warn_factor, 9.0);  // an integer is a number too
  EXPECT_THAT(only_error(load("[detection.thresholds]\nwarn_score = \"high\"\n")),
              HasSubstr("detection.thresholds.warn_score: expected a number, got a string"));
  EXPECT_THAT(only_error(load("[detection.thresholds]\nwarn_score = nan\n")),
              HasSubstr("detection.thresholds.warn_score = nan: out of range"));
}

TEST(Detection, SecondsFieldsRefuseFractions) {
  EXPECT_THAT(only_error(load("[detection.thresholds]\ncool_down = \"1500ms\"\n")),
              AllOf(StartsWith("t.toml:2:"),
                    HasSubstr(R"(detection.thresholds.cool_down = "1500ms": must be a multiple )"
                              "of 1s")));
  EXPECT_EQ(detection(load("[detection.thresholds]\ncool_down = \"90000ms\"\n")).defaults.cool_down,
            90s);
}

TEST(Detection, SubSectionMustBeATable) {
  EXPECT_THAT(only_error(load("[detection]\nthresholds = 1\n")),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("'detection.thresholds' must be a table")));
  EXPECT_EQ(only_error(load("[detection.thresholds]\nten_minute_warn_floor = 5\n")),
            "t.toml:2:1: unknown key 'detection.thresholds.ten_minute_warn_floor'");
}

TEST(Relations, WarnPointMustNotExceedDeferPoint) {
  EXPECT_EQ(only_error(load("[detection.thresholds]\nhour_warn_floor = 200\n")),
            "t.toml:2:19: detection.thresholds.hour_warn_floor (200) must not exceed "
            "detection.thresholds.hour_defer_floor (120)");
  EXPECT_THAT(only_error(load("", {"detection.thresholds.day_defer_factor=2"})),
              AllOf(StartsWith("-o detection.thresholds.day_defer_factor=2: "),
                    HasSubstr("day_warn_factor (4.0) must not exceed "
                              "detection.thresholds.day_defer_factor (2.0)")));
  EXPECT_TRUE(load("[detection.thresholds]\nhour_warn_floor = 120\n").ok());
}

TEST(Relations, ExitScoresMustBeBelowEntryScores) {
  EXPECT_THAT(only_error(load("[detection.thresholds]\nwarn_exit_score = 1.0\n")),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("warn_exit_score (1.0) must be below "
                                                       "detection.thresholds.warn_score (1.0)")));
  EXPECT_THAT(only_error(load("[detection.thresholds]\ndefer_score = 1.0\n")),
              HasSubstr("defer_exit_score (1.0) must be below "
                        "detection.thresholds.defer_score (1.0)"));
}

TEST(Relations, BaselineSamplesMustBeLoaded) {
  EXPECT_THAT(
      only_error(load("[store]\nhistory_weeks = 2\n")),
      AllOf(StartsWith("t.toml:2:"), HasSubstr("detection.baseline.weeks (4) must not exceed "
                                               "store.history_weeks (2)")));
  EXPECT_THAT(only_error(load("[detection.baseline]\nrecent_days = 60\n")),
              HasSubstr("recent_days (60) must not exceed 7 x store.history_weeks (56)"));
}

TEST(AllowLists, ClientsAreCidrs) {
  const auto d = detection(load(
      "[detection]\nallow_clients = [\"192.0.2.0/24\", \"2001:db8::/32\", \"198.51.100.7\"]\n"));
  EXPECT_EQ(d.allow_clients.size(), 3U);
  EXPECT_THAT(only_error(load("[detection]\nallow_clients = [\"192.0.2.0/24\", \"10.0.0.1/8\"]\n")),
              AllOf(StartsWith("t.toml:2:"),
                    HasSubstr(R"(detection.allow_clients[1] = "10.0.0.1/8": host bits are set)")));
}

TEST(AllowLists, AddressesArePatterns) {
  const auto d = detection(
      load("[detection]\nallow_recipients = [\"postmaster@example.test\", \"@example.org\"]\n"
           "allow_senders = [\"*@lists.example.test\", \"noreply-?@*.example.test\"]\n"));
  EXPECT_EQ(d.allow_recipients.size(), 2U);
  EXPECT_EQ(d.allow_senders.size(), 2U);
  EXPECT_THAT(only_error(load("[detection]\nallow_senders = [\"bob@x.test\", \"bob\"]\n")),
              AllOf(StartsWith("t.toml:2:"),
                    HasSubstr(R"(detection.allow_senders[1] = "bob": expected an address )")));
  EXPECT_THAT(only_error(load("[detection]\nallow_recipients = [\"\"]\n")),
              HasSubstr("detection.allow_recipients[0] = \"\": empty pattern"));
  EXPECT_THAT(only_error(load("[detection]\nallow_recipients = [\"a b@x.test\"]\n")),
              HasSubstr("spaces and control characters"));
}

TEST(Delimiters, ArePunctuation) {
  EXPECT_EQ(detection(load("[detection]\nrecipient_delimiters = \"\"\n")).recipient_delimiters, "");
  EXPECT_THAT(only_error(load("[detection]\nrecipient_delimiters = \"+@\"\n")),
              HasSubstr("delimiters are punctuation characters"));
}

constexpr std::string_view two_classes = R"([detection.thresholds]
cool_down = "20m"

[[detection.class]]
name = "lists"
recipients = ["*-list@example.test", "tickets@example.test"]
ten_minutes_warn_floor = 200
ten_minutes_defer_floor = 500
baseline_ceiling_per_hour = 5000.0

[[detection.class]]
name = "archive"
recipients = ["archive@example.test"]
cool_down = "1m"
)";

TEST(Classes, UnspecifiedKeysInheritTheThresholds) {
  const auto d = detection(load(two_classes));
  ASSERT_EQ(d.classes.size(), 2U);
  const decision::recipient_class& lists = d.classes[0];
  EXPECT_EQ(lists.name, "lists");
  EXPECT_EQ(lists.recipients,
            (std::vector<std::string>{"*-list@example.test", "tickets@example.test"}));
  EXPECT_EQ(lists.limits.ten_minutes.warn_floor, 200U);
  EXPECT_EQ(lists.limits.ten_minutes.defer_floor, 500U);
  EXPECT_DOUBLE_EQ(lists.limits.baseline_ceiling_per_hour, 5000.0);
  // Inherited: from [detection.thresholds] where the file sets it, else the default.
  EXPECT_EQ(lists.limits.cool_down, 20min);
  EXPECT_EQ(lists.limits.ten_minutes.warn_factor, d.defaults.ten_minutes.warn_factor);
  EXPECT_EQ(lists.limits.day.defer_floor, decision::settings{}.defaults.day.defer_floor);
  EXPECT_EQ(d.classes[1].name, "archive");
  EXPECT_EQ(d.classes[1].limits.cool_down, 1min);
  EXPECT_EQ(d.classes[1].limits.ten_minutes.warn_floor, d.defaults.ten_minutes.warn_floor);
}

TEST(Classes, InheritOverridesAndThresholdsWrittenAfterThem) {
  const std::string text =
      "[[detection.class]]\nname = \"lists\"\nrecipients = [\"@l.test\"]\n"
      "[detection.thresholds]\nhour_warn_floor = 70\n";
  const auto d =
      detection(load(text, {"detection.thresholds.evidence_weight=1.5", "detection.mode=enforce"}));
  ASSERT_EQ(d.classes.size(), 1U);
  EXPECT_EQ(d.classes[0].limits.hour.warn_floor, 70U);
  EXPECT_DOUBLE_EQ(d.classes[0].limits.evidence_weight, 1.5);
}

TEST(Classes, ErrorsNameTheIndexAndPosition) {
  std::string text{two_classes};
  text += "ten_minutes_warn_floor = 0\n";  // line 15, in detection.class[1]
  EXPECT_EQ(only_error(load(text)),
            "t.toml:15:26: detection.class[1].ten_minutes_warn_floor = 0: out of range "
            "1..1000000");
  std::string wrong_type{two_classes};
  wrong_type += "hour_warn_factor = \"ten\"\n";
  EXPECT_EQ(only_error(load(wrong_type)),
            "t.toml:15:20: detection.class[1].hour_warn_factor: expected a number, got a string");
  std::string unknown{two_classes};
  unknown += "colour = \"red\"\n";
  EXPECT_EQ(only_error(load(unknown)), "t.toml:15:1: unknown key 'detection.class[1].colour'");
}

TEST(Classes, RelationsAreCheckedAfterInheritance) {
  std::string text{two_classes};
  text += "hour_warn_floor = 500\n";  // above the inherited hour_defer_floor of 120
  EXPECT_EQ(only_error(load(text)),
            "t.toml:15:19: detection.class[1].hour_warn_floor (500) must not exceed "
            "detection.class[1].hour_defer_floor (120)");
  // Raising the inherited partner in [detection.thresholds] makes the class consistent.
  EXPECT_TRUE(load(text, {"detection.thresholds.hour_defer_floor=600"}).ok());
  // And lowering the inherited value below a class's explicit one breaks it.
  EXPECT_THAT(only_error(load(two_classes, {"detection.thresholds.ten_minutes_defer_factor=5"})),
              HasSubstr("detection.thresholds.ten_minutes_warn_factor (8.0) must not exceed"));
}

TEST(Classes, NamesAreRequiredNonEmptyAndUnique) {
  EXPECT_EQ(only_error(load("[[detection.class]]\nrecipients = [\"@l.test\"]\n")),
            "t.toml:1:1: detection.class[0]: name is required");
  EXPECT_EQ(only_error(load("[[detection.class]]\nname = \"\"\nrecipients = [\"@l.test\"]\n")),
            "t.toml:2:8: detection.class[0].name = \"\": must not be empty");
  const std::string twice =
      "[[detection.class]]\nname = \"lists\"\nrecipients = [\"@a.test\"]\n"
      "[[detection.class]]\nname = \"other\"\nrecipients = [\"@b.test\"]\n"
      "[[detection.class]]\nname = \"Lists\"\nrecipients = [\"@c.test\"]\n";
  EXPECT_EQ(only_error(load(twice)),
            "t.toml:8:8: detection.class[2].name = \"Lists\": already used by detection.class[0]");
}

TEST(Classes, RecipientsAreRequiredNonEmptyPatterns) {
  EXPECT_EQ(only_error(load("[[detection.class]]\nname = \"lists\"\n")),
            "t.toml:1:1: detection.class[0]: recipients is required");
  EXPECT_EQ(only_error(load("[[detection.class]]\nname = \"lists\"\nrecipients = []\n")),
            "t.toml:3:14: detection.class[0].recipients: must name at least one pattern");
  EXPECT_THAT(
      only_error(load("[[detection.class]]\nname = \"l\"\nrecipients = [\"@a.test\", \"\"]\n")),
      AllOf(StartsWith("t.toml:3:"),
            HasSubstr(R"(detection.class[0].recipients[1] = "": empty pattern)")));
  EXPECT_THAT(only_error(load("[[detection.class]]\nname = \"l\"\nrecipients = \"@a.test\"\n")),
              HasSubstr("detection.class[0].recipients: expected an array of strings"));
}

TEST(Classes, MustBeAnArrayOfTables) {
  EXPECT_THAT(only_error(load("[detection.class]\nname = \"lists\"\n")),
              AllOf(StartsWith("t.toml:1:"),
                    HasSubstr("detection.class: expected an array of tables, written "
                              "[[detection.class]]")));
  EXPECT_THAT(only_error(load("[detection]\nclass = 1\n")),
              AllOf(StartsWith("t.toml:2:1:"), HasSubstr("expected an array of tables")));
}

TEST(Classes, CannotBeGivenAsAnOverride) {
  EXPECT_EQ(only_error(load("", {"detection.class=x"})),
            "-o detection.class=x: [[detection.class]] can only be written in the settings "
            "file");
}

TEST(Overrides, InheritAndValidate) {
  const std::string text =
      "[[detection.override]]\nrecipient = \"ceo@example.test\"\nten_minutes_warn_floor = 10\n"
      "ten_minutes_defer_floor = 20\n"
      "[[detection.override]]\nrecipient = \"cfo@example.test\"\nwarn_score = 1.5\n";
  const auto d = detection(load(text));
  ASSERT_EQ(d.overrides.size(), 2U);
  EXPECT_EQ(d.overrides[0].recipient, "ceo@example.test");
  EXPECT_EQ(d.overrides[0].limits.ten_minutes.warn_floor, 10U);
  EXPECT_EQ(d.overrides[0].limits.hour.warn_floor, d.defaults.hour.warn_floor);
  EXPECT_DOUBLE_EQ(d.overrides[1].limits.warn_score, 1.5);

  EXPECT_EQ(only_error(load("[[detection.override]]\nten_minutes_warn_floor = 10\n")),
            "t.toml:1:1: detection.override[0]: recipient is required");
  EXPECT_THAT(only_error(load("[[detection.override]]\nrecipient = \"ceo\"\n")),
              AllOf(StartsWith("t.toml:2:13:"),
                    HasSubstr(R"(detection.override[0].recipient = "ceo": expected an address)")));
  EXPECT_EQ(only_error(load("[[detection.override]]\nrecipient = \"a@x.test\"\n"
                            "[[detection.override]]\nrecipient = \"A@X.test\"\n")),
            "t.toml:4:13: detection.override[1].recipient = \"A@X.test\": already used by "
            "detection.override[0]");
  EXPECT_EQ(only_error(load("[[detection.override]]\nrecipient = \"a@x.test\"\n"
                            "defer_exit_score = 3.0\n")),
            "t.toml:3:20: detection.override[0].defer_exit_score (3.0) must be below "
            "detection.override[0].defer_score (2.0)");
  EXPECT_EQ(only_error(load("[[detection.override]]\nrecipient = \"a@x.test\"\nname = \"x\"\n")),
            "t.toml:3:1: unknown key 'detection.override[0].name'");
}

TEST(Overrides, AtMost255EntriesWithTheClasses) {
  std::string text;
  for (int i = 0; i < 256; ++i) {
    text += "[[detection.override]]\nrecipient = \"r" + std::to_string(i) + "@x.test\"\n";
  }
  EXPECT_THAT(only_error(load(text)), HasSubstr("256 entries, at most 255 together"));
}

TEST(Reload, ClassesAreReportedAndCopiedWhenAnyElementDiffers) {
  const config running_before = *load(two_classes).settings;
  std::string changed{two_classes};
  changed += "day_warn_floor = 500\n";
  const config loaded = *load(changed).settings;
  EXPECT_TRUE(changed_settings(running_before, *load(two_classes).settings).empty());
  const auto changes = changed_settings(running_before, loaded);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].key, "detection.class");
  EXPECT_TRUE(changes[0].reloadable);

  config running = running_before;
  EXPECT_EQ(apply_reloadable(running, loaded).size(), 1U);
  EXPECT_EQ(running.detection.classes[1].limits.day.warn_floor, 500U);
  EXPECT_TRUE(changed_settings(running, loaded).empty());
}

TEST(Reload, AddedOrRemovedClassesAndOverridesAreChanges) {
  const config defaults = default_config();
  const config with =
      *load(std::string{two_classes} + "[[detection.override]]\nrecipient = \"a@x.test\"\n")
           .settings;
  const auto changes = changed_settings(defaults, with);
  ASSERT_EQ(changes.size(), 3U);
  EXPECT_EQ(changes[0].key, "detection.thresholds.cool_down");
  EXPECT_EQ(changes[1].key, "detection.class");
  EXPECT_EQ(changes[2].key, "detection.override");
  config running = with;
  apply_reloadable(running, defaults);
  EXPECT_TRUE(running.detection.classes.empty());
  EXPECT_TRUE(running.detection.overrides.empty());
}

TEST(Reload, AnInheritedChangeIsAClassChange) {
  const config before = *load(two_classes).settings;
  const config after = *load(two_classes, {"detection.thresholds.hour_warn_floor=70"}).settings;
  const auto changes = changed_settings(before, after);
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_EQ(changes[0].key, "detection.thresholds.hour_warn_floor");
  EXPECT_EQ(changes[1].key, "detection.class");
}

// The engine sizes its tables once; every other detection knob changes on SIGHUP.
TEST(Reload, EveryDetectionKeyButTableSizesIsReloadable) {
  const std::set<std::string_view> table_sizes{
      "detection.max_tracked_recipients",        "detection.pair_slots",
      "detection.correspondent_slots",           "detection.client_session_slots",
      "detection.client_connection_slots",       "detection.max_open_transactions",
      "detection.max_recipients_per_transaction"};
  for (const auto& s : settings::all()) {
    if (s.key.starts_with("detection.")) {
      EXPECT_EQ(s.when, table_sizes.contains(s.key) ? settings::applies::on_restart
                                                    : settings::applies::on_reload)
          << s.key;
    }
  }
  for (const auto& a : settings::arrays()) EXPECT_EQ(a.when, settings::applies::on_reload);
}

TEST(Table, ThresholdKeysAreTheOnesClassesTake) {
  std::size_t thresholds = 0;
  for (const auto& s : settings::all()) {
    const bool in_thresholds = s.section() == "detection.thresholds";
    EXPECT_EQ(s.limits.store != nullptr, in_thresholds) << s.key;
    EXPECT_EQ(s.limits.read != nullptr, in_thresholds) << s.key;
    if (in_thresholds) ++thresholds;
  }
  EXPECT_EQ(thresholds, 43U);  // 4 windows x 4, and 27 more: every field of decision::thresholds
}

}  // namespace
}  // namespace rcptguard
