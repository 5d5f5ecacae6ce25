// The HTML report's renderer on its own: hostile text is escaped everywhere it appears, a known
// series gives known SVG bars and points, empty periods say so, and the document can fetch
// nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <regex>
#include <string>

#include "cli/report/charts.hpp"
#include "cli/report/document.hpp"
#include "cli/report/html.hpp"
#include "cli/report/model.hpp"

namespace rcptguard::report {
namespace {

// 2026-12-01T00:00:00Z, a Tuesday.
constexpr std::int64_t day0 = 1796083200;
constexpr std::int64_t hour = 3600;

const std::string hostile = "<script>alert(1)</script>@x";
const std::string hostile_escaped = "&lt;script&gt;alert(1)&lt;/script&gt;@x";

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

/// The value of attribute `name` of the first element that has it after `from`.
std::string attribute(const std::string& markup, const std::string& name, std::size_t from = 0) {
  const std::string needle = " " + name + "=\"";
  const std::size_t at = markup.find(needle, from);
  if (at == std::string::npos) return "<missing>";
  const std::size_t begin = at + needle.size();
  return markup.substr(begin, markup.find('"', begin) - begin);
}

recipient_section four_hours() {
  recipient_section s;
  s.recipient = "bob@example.test";
  s.anchor = "r1";
  const std::int64_t observed[] = {0, 10, 5, 0};
  const double expected[] = {1, 1, 2, 2};
  for (int i = 0; i < 4; ++i) {
    hour_point h;
    h.hour_start = day0 + i * hour;
    h.observed = observed[i];
    h.accepted = observed[i];
    h.expected = expected[i];
    s.hours.push_back(h);
  }
  s.hours[1].defer = 7;
  s.hours[1].warn = 2;
  s.hours[2].warn = 1;
  return s;
}

report_data data_with(recipient_section s) {
  report_data d;
  d.since = day0;
  d.until = day0 + 4 * hour;
  d.generated = d.until;
  d.sources = {{"/var/lib/rcptguard/rcptguard.db", "mx1"}};
  d.version = "0.1.0";
  d.sections.push_back(std::move(s));
  return d;
}

TEST(ReportHtml, EscapeNeutralisesMarkupQuotesControlsAndBidi) {
  EXPECT_EQ(escape(hostile), hostile_escaped);
  EXPECT_EQ(escape("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
  EXPECT_EQ(escape("ev\x1b[31mil\n\xff"), "ev?[31mil??");
  EXPECT_EQ(escape("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 stays
  EXPECT_EQ(escape("a\xe2\x80\xae"
                   "b"),
            "a?b");                                                       // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(escape(std::string(400, 'a')).size(), limits::max_name + 3);  // cut, with an ellipsis
}

TEST(ReportHtml, NumbersAndTimes) {
  EXPECT_EQ(fixed(2.345, 1), "2.3");
  EXPECT_EQ(fixed(-0.01, 1), "0.0");
  EXPECT_EQ(short_number(3.0), "3");
  EXPECT_EQ(short_number(2.5), "2.5");
  EXPECT_EQ(short_number(1.0 / 3.0), "0.33");
  EXPECT_EQ(utc_minute(day0 + 14 * hour + 5 * 60), "2026-12-01 14:05");
  EXPECT_EQ(utc_date(day0), "2026-12-01");
  EXPECT_EQ(utc_day_label(day0), "Dec 01");
  EXPECT_EQ(span_text(7500), "2h05m");
  EXPECT_EQ(nice_ceiling(0.2), 1.0);
  EXPECT_EQ(nice_ceiling(10), 10.0);
  EXPECT_EQ(nice_ceiling(11), 20.0);
  EXPECT_EQ(nice_ceiling(412), 500.0);
}

// Four hours over the plot's 920 units: slots of 230, bars 80 % of a slot centred in it, the
// baseline's points at the slot centres, y from 214 (0) up to 24 (the scale's top, 10).
TEST(ReportCharts, KnownSeriesGivesKnownBarsAndPoints) {
  const recipient_section s = four_hours();
  const std::string svg = hourly_svg(s, day0, day0 + 4 * hour);
  EXPECT_EQ(attribute(svg, "data-chart"), "hourly");
  EXPECT_EQ(attribute(svg, "data-hours"), "4");
  EXPECT_EQ(attribute(svg, "data-bars"), "2");
  EXPECT_EQ(attribute(svg, "data-baseline-points"), "4");
  EXPECT_EQ(attribute(svg, "data-marks"), "2");
  EXPECT_EQ(attribute(svg, "data-max"), "10");
  EXPECT_EQ(attribute(svg, "points"), "175.0,195.0 405.0,195.0 635.0,176.0 865.0,176.0");

  const std::size_t first_bar = svg.find("<rect class=\"bar\"");
  ASSERT_NE(first_bar, std::string::npos);
  EXPECT_EQ(attribute(svg, "x", first_bar), "313.0");
  EXPECT_EQ(attribute(svg, "y", first_bar), "24.0");
  EXPECT_EQ(attribute(svg, "width", first_bar), "184.0");
  EXPECT_EQ(attribute(svg, "height", first_bar), "190.0");
  const std::size_t second_bar = svg.find("<rect class=\"bar\"", first_bar + 1);
  EXPECT_EQ(attribute(svg, "x", second_bar), "543.0");
  EXPECT_EQ(attribute(svg, "y", second_bar), "119.0");
  EXPECT_EQ(attribute(svg, "height", second_bar), "95.0");
  EXPECT_NE(svg.find("2026-12-01 01:00 UTC: 10 messages (accepted 10), expected 1"),
            std::string::npos);

  // The hour with DEFERs is marked as such, the one with a WARN only as a warning.
  EXPECT_EQ(count(svg, "<rect class=\"mark defer\""), 1u);
  EXPECT_EQ(count(svg, "<rect class=\"mark warn\""), 1u);
  EXPECT_NE(svg.find("2026-12-01 01:00 UTC: 7 defer, 2 warn"), std::string::npos);
}

TEST(ReportCharts, EpisodesAreShadedAndClippedToThePeriod) {
  recipient_section s = four_hours();
  episode e;
  e.recipient = s.recipient;
  e.started = day0 + hour + 30 * 60;  // 01:30, in the second slot's middle
  e.ended = day0 + 10 * hour;         // beyond the period: clipped at its end
  e.peak_level = "defer";
  e.summary = "rcptguard: " + hostile + " 240 msgs/10m";
  s.episodes.push_back(e);
  const std::string svg = hourly_svg(s, day0, day0 + 4 * hour);
  EXPECT_EQ(attribute(svg, "data-episodes"), "1");
  const std::size_t span = svg.find("<rect class=\"episode defer\"");
  ASSERT_NE(span, std::string::npos);
  EXPECT_EQ(attribute(svg, "x", span), "405.0");
  EXPECT_EQ(attribute(svg, "width", span), "575.0");
  EXPECT_EQ(svg.find(hostile), std::string::npos);
  EXPECT_NE(svg.find(hostile_escaped), std::string::npos);
}

TEST(ReportCharts, EpisodesPerDayAreStackedByPeakLevel) {
  std::vector<day_summary> days(3);
  for (int i = 0; i < 3; ++i) days[static_cast<std::size_t>(i)].day_start = day0 + i * 86400;
  days[0].defer_episodes = 2;
  days[0].warn_episodes = 1;
  days[2].warn_episodes = 1;
  days[2].flagged_requests = 412;
  const std::string svg = episodes_per_day_svg(days);
  EXPECT_EQ(attribute(svg, "data-chart"), "episodes-per-day");
  EXPECT_EQ(attribute(svg, "data-days"), "3");
  EXPECT_EQ(attribute(svg, "data-bars"), "3");
  EXPECT_EQ(attribute(svg, "data-episodes"), "4");
  EXPECT_EQ(attribute(svg, "data-max"), "5");
  // Slots of 920/3; day 0: defer 2 of 5 -> 57.6 high from the bottom (164), warn 1 on top.
  const std::size_t defer = svg.find("<rect class=\"defer\"");
  ASSERT_NE(defer, std::string::npos);
  EXPECT_EQ(attribute(svg, "y", defer), "106.4");
  EXPECT_EQ(attribute(svg, "height", defer), "57.6");
  const std::size_t warn = svg.find("<rect class=\"warn\"");
  EXPECT_EQ(attribute(svg, "y", warn), "77.6");
  EXPECT_NE(svg.find("2026-12-03: 1 episode, 412 flagged requests"), std::string::npos);
}

TEST(ReportDocument, HostileAddressIsEscapedEverywhere) {
  recipient_section s = four_hours();
  s.recipient = hostile;
  s.named = true;
  s.senders = {{"\"><img src=x onerror=alert(1)>@evil", 40}, {"", 3}};
  s.clients = {{"192.0.2.1", 43}};
  explanation x;
  x.at = day0 + hour;
  x.level = "defer";
  x.score = 2.5;
  x.action_text = "DEFER_IF_PERMIT 4.2.1 rcptguard: " + hostile;
  x.sender = hostile;
  x.client = "192.0.2.1";
  x.reasons = {{"volume_10m", 2.0, 240, 6, "240 msgs/10m <b>"}};
  s.explanations = {x};
  s.explanations_total = 1;
  s.attachments = {{"ab12", "<svg onload=alert(1)>.pdf", 6, 1000, day0, day0 + 60, "/var/mail/x"}};
  report_data d = data_with(s);
  episode e;
  e.recipient = hostile;
  e.started = day0 + hour;
  e.ended = day0 + 2 * hour;
  e.peak_level = "defer";
  e.summary = hostile;
  d.episodes = {e};
  d.deviations = {{hostile, 15, day0 + hour, 10, 1.0, 1, "r1"}};

  const std::string html = render_html(d);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<svg onload"), std::string::npos);
  EXPECT_NE(html.find("240 msgs/10m &lt;b&gt;"), std::string::npos);
  EXPECT_GE(count(html, hostile_escaped), 6u);  // heading, chart, tables, attributes
  EXPECT_NE(html.find("data-recipient=\"" + hostile_escaped + "\""), std::string::npos);
  EXPECT_NE(html.find("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@evil"), std::string::npos);
  EXPECT_NE(html.find("&lt;&gt;"), std::string::npos);  // the null sender, shown as <>
  // Anchors are ours, never the address.
  EXPECT_NE(html.find("<section class=\"recipient\" id=\"r1\""), std::string::npos);
  EXPECT_NE(html.find("href=\"#r1\""), std::string::npos);
}

TEST(ReportDocument, FetchesNothing) {
  const std::string html = render_html(data_with(four_hours()));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                      "style-src 'unsafe-inline'; img-src data:\">"),
            std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  // The only links are to the document's own sections.
  const std::regex href("href=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), href); it != std::sregex_iterator();
       ++it) {
    EXPECT_EQ((*it)[1].str().rfind('#', 0), 0u) << (*it)[1].str();
  }
}

TEST(ReportDocument, EmptyPeriodSaysSo) {
  report_data d;
  d.since = day0;
  d.until = day0 + 86400;
  d.days = {{day0, 0, 0, 0}};
  const std::string html = render_html(d);
  EXPECT_NE(
      html.find("No alert episode started between 2026-12-01 00:00 and 2026-12-02 00:00 UTC."),
      std::string::npos);
  EXPECT_NE(html.find("No alert episodes between"), std::string::npos);
  EXPECT_NE(html.find("No mail recorded between"), std::string::npos);
  EXPECT_NE(html.find("No recipient had an alert episode in the period"), std::string::npos);
  EXPECT_EQ(html.find("data-chart="), std::string::npos);  // no empty charts
}

TEST(ReportDocument, NamedRecipientWithoutMailSaysSo) {
  recipient_section s = four_hours();
  for (hour_point& h : s.hours) h = hour_point{h.hour_start, 0, 0, 0.25, 0, 0, 0};
  s.named = true;
  const std::string html = render_html(data_with(s));
  EXPECT_NE(html.find("No mail recorded for this recipient between"), std::string::npos);
  EXPECT_NE(html.find("data-bars=\"0\""), std::string::npos);
  EXPECT_NE(html.find("asked for"), std::string::npos);
  EXPECT_NE(html.find("No alert episodes in the period."), std::string::npos);
  EXPECT_NE(html.find("spool scanner found no attachment"), std::string::npos);
}

}  // namespace
}  // namespace rcptguard::report
