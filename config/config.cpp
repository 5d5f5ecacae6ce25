// Loading: defaults, then the TOML file, then `-o` overrides, each value checked against its
// row in the settings table; every error is collected with the position it came from.
#include "config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <system_error>
#include <tuple>
#include <utility>

#include "common/text.hpp"
#include "config/address.hpp"
#include "config/duration.hpp"
#include "config/settings.hpp"

namespace rcptguard {

namespace {

using settings::setting;
using settings::value_type;

// A settings file is a few KiB; the cap turns `-c /dev/zero` into an error instead of a hang.
constexpr std::size_t max_file_size = std::size_t{1024} * 1024;
constexpr std::size_t max_shown = 200;  // of a value echoed in an error
constexpr std::size_t comment_width = 100;
// The engine keeps 256 threshold sets, one of them the defaults (decision/engine.cpp).
constexpr std::size_t max_threshold_entries = 255;

std::string in_quotes(std::string_view s) {
  return "\"" + sanitize_for_log(s, max_shown) + "\"";
}

// A check's reason may quote the value it refused ("no user named '...'"), toml++ the bytes it
// stopped at; errors reach logs and terminals.
std::string printable_reason(std::string_view why) {
  return sanitize_for_log(why, why.size());
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      break;
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "nothing";
}

std::string_view expected_type(value_type type) {
  switch (type) {
    case value_type::integer:
      return "an integer";
    case value_type::real:
      return "a number";
    case value_type::duration:
      return "a duration such as \"10s\" or an integer number of seconds";
    case value_type::text:
    case value_type::choice:
      return "a string";
    case value_type::text_list:
      return "an array of strings";
    case value_type::boolean:
      return "true or false";
    case value_type::file_mode:
      break;
  }
  return "an octal mode string such as \"0660\"";
}

std::string octal(std::int64_t mode) {
  std::string out(4, '0');
  for (auto it = out.rbegin(); it != out.rend(); ++it, mode >>= 3) {
    *it = static_cast<char>('0' + (mode & 7));
  }
  return out;
}

std::string bound_text(const setting& s, std::int64_t bound) {
  if (s.type == value_type::duration) return format_duration(std::chrono::milliseconds{bound});
  if (s.type == value_type::file_mode) return octal(bound);
  return std::to_string(bound);
}

std::string range_text(const setting& s) {
  if (s.type == value_type::real) {
    return settings::format_real(s.real_min) + ".." + settings::format_real(s.real_max);
  }
  return bound_text(s, s.min) + ".." + bound_text(s, s.max);
}

std::string join(std::span<const std::string_view> items, std::string_view separator) {
  std::string out;
  for (const std::string_view item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// `text` as the value of a one-key TOML document, or nullopt when it is not exactly one value.
std::optional<toml::table> parse_value(std::string_view text) {
  try {
    toml::table doc = toml::parse("v = " + std::string{text});
    if (doc.size() == 1 && doc.contains("v")) return doc;
  } catch (const toml::parse_error&) {  // not TOML: the caller decides what it is
  }
  return std::nullopt;
}

// What an override's text means for setting `s`, held as the "v" entry of a table. Like
// `postconf -o`, text that is not a TOML value is a plain string, so `log.level=debug` works;
// so is a number or boolean given to a text setting (`server.user=1000`), and a single string
// given to a list setting is a one-element list.
toml::table override_value(const setting& s, std::string_view raw) {
  toml::table holder = parse_value(raw).value_or(toml::table{});
  const toml::node* parsed = holder.get("v");
  const bool wants_text = s.type != value_type::integer && s.type != value_type::real &&
                          s.type != value_type::duration && s.type != value_type::boolean;
  if (parsed == nullptr || (wants_text && !parsed->is_string() && !parsed->is_array())) {
    holder.insert_or_assign("v", std::string{raw});
  }
  if (s.type == value_type::text_list) {
    if (const auto* single = holder.get_as<std::string>("v")) {
      holder.insert_or_assign("v", toml::array{single->get()});
    }
  }
  return holder;
}

class loader {
 public:
  explicit loader(std::string_view source_name) : source_(source_name) {}

  void apply_defaults() {
    stage_ = stage::defaults;
    for (const setting& s : settings::all()) {
      const std::string label = "default of " + std::string{s.key};
      const auto holder = parse_value(s.default_value);
      if (!holder) {
        add(label + ": not a TOML value");
        continue;
      }
      apply(s, *holder->get("v"), label);
    }
    origins_.clear();  // a default was set by nobody, so it is never where an error points
  }

  void apply_document(std::string_view text) {
    stage_ = stage::document;
    toml::table root;
    try {
      root = toml::parse(text, source_);
    } catch (const toml::parse_error& e) {
      add_at(e.source(), printable_reason(e.description()));  // toml++ quotes the bad bytes
      return;
    }
    for (auto&& [name, node] : root) {
      const std::string section{name.str()};
      const auto* table = node.as_table();
      if (!settings::is_section(section) || section.find('.') != std::string::npos) {
        add_at(name.source(),
               table != nullptr
                   ? "unknown section [" + sanitize_for_log(section) + "]"
                   : "unknown key '" + sanitize_for_log(section) + "' outside any [section]");
        continue;
      }
      if (table == nullptr) {
        add_at(name.source(), "'" + section + "' must be a table: [" + section + "]");
        continue;
      }
      apply_section(section, *table);
    }
    check_unique(classes_, "name");
    check_unique(overrides_, "recipient");
  }

  void apply_override(std::string_view text) {
    stage_ = stage::overrides;
    const std::string label = "-o " + sanitize_for_log(text, max_shown);
    const auto equals = text.find('=');
    if (equals == std::string_view::npos) {
      add(label + ": expected section.key=value");
      return;
    }
    const std::string_view key = trim(text.substr(0, equals));
    const setting* s = settings::find(key);
    if (s == nullptr && settings::find_array(key) != nullptr) {
      add(label + ": [[" + std::string{key} + "]] can only be written in the settings file");
      return;
    }
    if (s == nullptr) {
      add(label + ": unknown key '" + sanitize_for_log(key) + "'");
      return;
    }
    const toml::table holder = override_value(*s, trim(text.substr(equals + 1)));
    apply(*s, *holder.get("v"), label);
  }

  // Relations between settings, checked once every value is in. Classes and overrides are
  // built here, so that keys they leave out take [detection.thresholds] after the overrides.
  void check_relations() {
    stage_ = stage::relations;
    check_thresholds(
        config_.detection.defaults,
        [this](std::string_view a, std::string_view b) {
          const std::string prefix = "detection.thresholds.";
          return origin_of(prefix + std::string{a}, prefix + std::string{b});
        },
        "detection.thresholds.");
    config_.detection.classes.clear();
    for (const written_entry& e : classes_) {
      decision::recipient_class built{e.id, e.recipients, resolve(e)};
      config_.detection.classes.push_back(std::move(built));
    }
    config_.detection.overrides.clear();
    for (const written_entry& e : overrides_) {
      config_.detection.overrides.push_back({e.id, resolve(e)});
    }
    const std::size_t entries = classes_.size() + overrides_.size();
    if (entries > max_threshold_entries) {
      add(source_ + ": detection.class and detection.override: " + std::to_string(entries) +
          " entries, at most " + std::to_string(max_threshold_entries) + " together");
    }
    const store_settings& store = config_.store;
    const decision::baseline_settings& baseline = config_.detection.baseline;
    if (baseline.weeks > store.history_weeks) {
      add(origin("detection.baseline.weeks", "store.history_weeks") +
          ": detection.baseline.weeks (" + std::to_string(baseline.weeks) +
          ") must not exceed store.history_weeks (" + std::to_string(store.history_weeks) +
          "): the weeks sampled must be loaded");
    }
    if (baseline.recent_days > std::uint64_t{7} * store.history_weeks) {
      add(origin("detection.baseline.recent_days", "store.history_weeks") +
          ": detection.baseline.recent_days (" + std::to_string(baseline.recent_days) +
          ") must not exceed 7 x store.history_weeks (" +
          std::to_string(std::uint64_t{7} * store.history_weeks) +
          "): the days sampled must be loaded");
    }
    const server_settings& server = config_.server;
    if (server.listen.empty()) {
      add(origin("server.listen") + ": server.listen: must name at least one socket");
    }
    std::vector<endpoint> seen;
    const auto clash = [&seen](const endpoint& ep) {
      return std::find_if(seen.begin(), seen.end(),
                          [&](const endpoint& other) { return same_socket(ep, other); });
    };
    for (const std::string& text : server.listen) {
      std::string why;
      const auto ep = parse_endpoint(text, why);
      if (!ep) continue;  // already reported
      const auto same = clash(*ep);
      if (same != seen.end()) {
        add(origin("server.listen") + ": server.listen: " + in_quotes(text) +
            " names the same socket as " +
            in_quotes(server.listen[static_cast<std::size_t>(same - seen.begin())]));
      }
      seen.push_back(*ep);
    }
    // The other two sockets the daemon binds: one of them on a policy socket would fail at
    // start-up with "address in use", or (a unix path) replace the policy socket.
    std::string why;
    if (const auto metrics = parse_endpoint(config_.metrics.listen, why)) {
      const auto same = clash(*metrics);
      if (same != seen.end()) {
        add(origin("metrics.listen", "server.listen") + ": metrics.listen " +
            in_quotes(config_.metrics.listen) + " names the same socket as server.listen " +
            in_quotes(server.listen[static_cast<std::size_t>(same - seen.begin())]));
      }
    }
    if (!config_.control.socket.empty()) {
      endpoint control;
      control.kind = endpoint_kind::unix_socket;
      control.path = config_.control.socket;
      const auto same = clash(control);
      if (same != seen.end()) {
        add(origin("control.socket", "server.listen") + ": control.socket " +
            in_quotes(config_.control.socket) + " is the policy socket server.listen " +
            in_quotes(server.listen[static_cast<std::size_t>(same - seen.begin())]));
      }
    }
    if (config_.log.target == log_target::file && config_.log.file.empty()) {
      add(origin("log.target", "log.file") + ": log.file must be set when log.target is \"file\"");
    }
    if (config_.limits.max_line > config_.limits.max_request) {
      add(origin("limits.max_line", "limits.max_request") + ": limits.max_line (" +
          std::to_string(config_.limits.max_line) + ") must not exceed limits.max_request (" +
          std::to_string(config_.limits.max_request) + ")");
    }
    check_ingest();
    if (!config_.cluster.redis.empty() &&
        config_.detection.cluster_max_age < 2 * config_.cluster.interval) {
      add(origin("cluster.max_age", "cluster.interval") + ": cluster.max_age (" +
          format_duration(config_.detection.cluster_max_age) +
          ") must be at least twice cluster.interval (" +
          format_duration(config_.cluster.interval) +
          "): the other nodes' counts would be dropped as stale between two reads");
    }
    // The scan state keeps `retention` of records; a longer window would count nothing more.
    if (config_.spool.window > config_.spool.retention) {
      add(origin("spool.window", "spool.retention") + ": spool.window (" +
          format_duration(config_.spool.window) + ") must not exceed spool.retention (" +
          format_duration(config_.spool.retention) + ")");
    }
    // No shell and no PATH search: a relative name would run whatever the working directory
    // or PATH of the moment holds.
    const std::vector<std::string>& command = config_.alerts.command;
    if (!command.empty() && (command.front().empty() || command.front().front() != '/')) {
      add(origin("alerts.command") + ": alerts.command[0] = " + in_quotes(command.front()) +
          ": the program must be an absolute path, e.g. \"/usr/local/bin/alert-mail.sh\"; it "
          "is run without a shell or PATH search");
    }
  }

  // How the policy hook and followed logs combine (issue 6, item 3): a message is counted by
  // one of them only. The hook sees what the smtpd processes that ask it receive; the log shows
  // every message of every instance and host, so it must be narrowed to the others.
  void check_ingest() {
    const ingest_settings& ingest = config_.ingest;
    if (ingest.files.empty()) return;
    if (!config_.server.listen.empty() && ingest.instances.empty() && ingest.hosts.empty()) {
      add(origin("ingest.files", "ingest.instances") +
          ": ingest.instances must be set when ingest.files is: the daemon also answers "
          "policy requests (server.listen), and a message its policy hook counted would be "
          "counted again from the log. List the Postfix instances (syslog names such as "
          "\"postfix/submission\") or Sendmail programs whose mail the hook does not see, or "
          "set ingest.hosts to the other servers whose logs are followed");
    }
    for (auto it = ingest.files.begin(); it != ingest.files.end(); ++it) {
      if (std::find(ingest.files.begin(), it, *it) != it) {
        add(origin("ingest.files") + ": ingest.files: " + in_quotes(*it) +
            " is listed twice; its messages would be counted twice");
      }
    }
  }

  void report(std::string error) { add(std::move(error)); }

  load_result finish() && {
    load_result result;
    if (errors_.empty()) result.settings = std::move(config_);
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const pending_error& a, const pending_error& b) {
                       return std::tie(a.when, a.at) < std::tie(b.when, b.at);
                     });
    for (pending_error& e : errors_) result.errors.push_back(std::move(e.text));
    return result;
  }

 private:
  // Errors come out in the order an operator reads: stage by stage and, within the file, by
  // position (toml++ hands out a table's keys sorted by name, not in file order).
  enum class stage : std::uint8_t { defaults, document, overrides, relations };

  struct pending_error {
    stage when;
    toml::source_position at;  // {0, 0} outside the file
    std::string text;
  };

  void add(std::string text, toml::source_position at = {}) {
    errors_.push_back({stage_, at, std::move(text)});
  }

  void add_at(const toml::source_region& region, const std::string& message) {
    add(position(region) + ": " + message, region.begin);
  }

  void add_for(const toml::node& node, const std::string& label, const std::string& message) {
    if (label.empty()) {
      add_at(node.source(), message);
    } else {
      add(label + ": " + message);
    }
  }

  std::string position(const toml::source_region& region) const {
    return source_ + ":" + std::to_string(region.begin.line) + ":" +
           std::to_string(region.begin.column);
  }

  // Where the value of `key` (or failing that `other`) was last set; the source name when
  // both are defaults.
  std::string origin(std::string_view key, std::string_view other = {}) const {
    for (const std::string_view k : {key, other}) {
      const auto it = origins_.find(k);
      if (it != origins_.end()) return it->second;
    }
    return source_;
  }

  // `label` replaces node positions for values that come from no file (overrides, defaults).
  std::string where(const toml::node& node, const std::string& label) const {
    return label.empty() ? position(node.source()) : label;
  }

  void apply(const setting& s, const toml::node& node, const std::string& label) {
    auto converted = convert(s, node, label, s.key);
    if (!converted) return;
    s.field.store(config_, std::move(*converted));
    origins_.insert_or_assign(s.key, where(node, label));
  }

  // `shown_key` names the value in errors: the row's key, or e.g. "detection.class[1].x".
  std::optional<settings::value> convert(const setting& s, const toml::node& node,
                                         const std::string& label, std::string_view shown_key) {
    const std::string key{shown_key};
    const auto fail = [&](const std::string& message) {
      add_for(node, label, message);
      return std::nullopt;
    };
    const auto wrong_type = [&] {
      return fail(key + ": expected " + std::string{expected_type(s.type)} + ", got " +
                  std::string{type_name(node.type())});
    };
    const auto out_of_range = [&](const std::string& shown) {
      return fail(key + " = " + shown + ": out of range " + range_text(s));
    };
    const auto* text = node.as_string();

    switch (s.type) {
      case value_type::integer: {
        const auto* number = node.as_integer();
        if (number == nullptr) return wrong_type();
        const std::int64_t v = number->get();
        if (v < s.min || v > s.max) return out_of_range(std::to_string(v));
        return settings::value{v};
      }
      case value_type::real: {
        double v = 0;
        if (const auto* number = node.as_integer()) {
          v = static_cast<double>(number->get());
        } else if (const auto* real = node.as_floating_point()) {
          v = real->get();
        } else {
          return wrong_type();
        }
        // NaN fails both comparisons, so it is refused here too.
        if (!(v >= s.real_min && v <= s.real_max)) return out_of_range(settings::format_real(v));
        return settings::value{v};
      }
      case value_type::duration: {
        std::optional<std::chrono::milliseconds> d;
        std::string shown;
        if (const auto* seconds = node.as_integer()) {
          shown = std::to_string(seconds->get()) + " (seconds)";
          constexpr std::int64_t max_seconds = std::numeric_limits<std::int64_t>::max() / 1000;
          if (seconds->get() < 0 || seconds->get() > max_seconds) return out_of_range(shown);
          d = std::chrono::seconds{seconds->get()};
        } else if (text != nullptr) {
          shown = in_quotes(text->get());
          d = parse_duration(text->get());
          if (!d) {
            return fail(key + " = " + shown +
                        ": not a duration; write a whole number and a unit (ms, s, m, h or d), "
                        "e.g. \"10s\"");
          }
        } else {
          return wrong_type();
        }
        if (d->count() < s.min || d->count() > s.max) return out_of_range(shown);
        if (d->count() % s.field.duration_step_ms != 0) {
          return fail(key + " = " + shown + ": must be a multiple of " +
                      format_duration(std::chrono::milliseconds{s.field.duration_step_ms}));
        }
        return settings::value{*d};
      }
      case value_type::text: {
        if (text == nullptr) return wrong_type();
        if (s.check != nullptr) {
          const std::string why = s.check(text->get());
          if (!why.empty()) {
            return fail(key + " = " + in_quotes(text->get()) + ": " + printable_reason(why));
          }
        }
        return settings::value{text->get()};
      }
      case value_type::text_list: {
        const auto* array = node.as_array();
        if (array == nullptr) return wrong_type();
        std::vector<std::string> items;
        bool all_valid = true;
        for (std::size_t i = 0; i < array->size(); ++i) {
          const toml::node& item = *array->get(i);
          const std::string item_key = key + "[" + std::to_string(i) + "]";
          const auto* item_text = item.as_string();
          if (item_text == nullptr) {
            add_for(item, label,
                    item_key + ": expected a string, got " + std::string{type_name(item.type())});
            all_valid = false;
            continue;
          }
          const std::string why = s.check != nullptr ? s.check(item_text->get()) : std::string{};
          if (!why.empty()) {
            add_for(item, label,
                    item_key + " = " + in_quotes(item_text->get()) + ": " + printable_reason(why));
            all_valid = false;
            continue;
          }
          items.push_back(item_text->get());
        }
        if (!all_valid) return std::nullopt;
        return settings::value{std::move(items)};
      }
      case value_type::choice: {
        if (text == nullptr) return wrong_type();
        const auto match = std::find(s.choices.begin(), s.choices.end(), text->get());
        if (match == s.choices.end()) {
          return fail(key + " = " + in_quotes(text->get()) + ": must be one of " +
                      join(s.choices, ", "));
        }
        return settings::value{static_cast<std::int64_t>(match - s.choices.begin())};
      }
      case value_type::boolean: {
        // Only TOML's own true and false: "yes", 1 or "on" would each need a rule of their own.
        const auto* flag = node.as_boolean();
        if (flag == nullptr) return wrong_type();
        return settings::value{std::int64_t{flag->get() ? 1 : 0}};
      }
      case value_type::file_mode: {
        if (text == nullptr) return wrong_type();
        const std::string& digits = text->get();
        const bool is_octal =
            !digits.empty() && digits.size() <= 4 &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '7'; });
        if (!is_octal) {
          return fail(key + " = " + in_quotes(digits) + ": not an octal mode such as \"0660\"");
        }
        const std::int64_t mode = std::stoll(digits, nullptr, 8);
        if (mode < s.min || mode > s.max) return out_of_range(in_quotes(digits));
        return settings::value{mode};
      }
    }
    return wrong_type();
  }

  // One [[detection.class]] or [[detection.override]] element as written: its own threshold
  // keys only, so the keys it leaves out can take [detection.thresholds] once overrides are in.
  struct written_limit {
    const setting* row;
    settings::value value;
    std::string where;  // "file:line:column" of the value
  };

  struct written_entry {
    std::string label;  // "detection.class[1]"
    std::string where;  // "file:line:column" of the element
    toml::source_position at{};
    std::string id;        // a class's name, an override's recipient
    std::string id_where;  // where the id was written
    toml::source_position id_at{};
    std::vector<std::string> recipients;  // classes only
    std::vector<written_limit> limits;
  };

  void apply_section(const std::string& section, const toml::table& table) {
    for (auto&& [key, value_node] : table) {
      const std::string full = section + "." + std::string{key.str()};
      if (const setting* s = settings::find(full)) {
        apply(*s, value_node, {});
      } else if (settings::is_section(full)) {
        if (const auto* sub = value_node.as_table()) {
          apply_section(full, *sub);
        } else {
          add_at(key.source(), "'" + full + "' must be a table: [" + full + "]");
        }
      } else if (settings::find_array(full) != nullptr) {
        apply_entries(full, key.source(), value_node);
      } else {
        add_at(key.source(), "unknown key '" + sanitize_for_log(full) + "'");
      }
    }
  }

  void apply_entries(const std::string& key, const toml::source_region& key_at,
                     const toml::node& node) {
    const auto* array = node.as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      add_at(key_at, key + ": expected an array of tables, written [[" + key + "]]");
      return;
    }
    const bool is_class = key == "detection.class";
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::table& element = *array->get(i)->as_table();
      written_entry e;
      e.label = key + "[" + std::to_string(i) + "]";
      e.where = position(element.source());
      e.at = element.source().begin;
      bool has_id = false;
      bool has_recipients = false;
      for (auto&& [name_key, value_node] : element) {
        const std::string name{name_key.str()};
        const std::string item_key = e.label + "." + sanitize_for_log(name);
        if (name == (is_class ? "name" : "recipient")) {
          has_id = read_id(e, item_key, value_node, is_class);
        } else if (is_class && name == "recipients") {
          has_recipients = true;
          read_recipients(e, item_key, value_node);
        } else if (const setting* row = settings::find("detection.thresholds." + name);
                   row != nullptr && row->limits.store != nullptr) {
          if (auto converted = convert(*row, value_node, {}, item_key)) {
            e.limits.push_back({row, std::move(*converted), position(value_node.source())});
          }
        } else {
          add_at(name_key.source(), "unknown key '" + item_key + "'");
        }
      }
      if (!has_id) {
        add(e.where + ": " + e.label + ": " + (is_class ? "name" : "recipient") + " is required",
            e.at);
      }
      if (is_class && !has_recipients) {
        add(e.where + ": " + e.label + ": recipients is required", e.at);
      }
      (is_class ? classes_ : overrides_).push_back(std::move(e));
    }
  }

  // A class name (any non-empty text) or an override's recipient (an address pattern).
  bool read_id(written_entry& e, const std::string& key, const toml::node& node, bool is_class) {
    const auto* text = node.as_string();
    if (text == nullptr) {
      add_at(node.source(),
             key + ": expected a string, got " + std::string{type_name(node.type())});
      return true;  // present, if wrong
    }
    std::string why;
    if (text->get().empty()) {
      why = is_class ? "must not be empty" : "empty pattern";
    } else if (!is_class) {
      why = settings::find("detection.allow_recipients")->check(text->get());
    }
    if (!why.empty()) {
      add_at(node.source(), key + " = " + in_quotes(text->get()) + ": " + why);
      return true;
    }
    e.id = text->get();
    e.id_where = position(node.source());
    e.id_at = node.source().begin;
    return true;
  }

  void read_recipients(written_entry& e, const std::string& key, const toml::node& node) {
    // The same patterns, with the same check, as detection.allow_recipients.
    auto converted = convert(*settings::find("detection.allow_recipients"), node, {}, key);
    if (!converted) return;
    e.recipients = std::get<std::vector<std::string>>(std::move(*converted));
    if (e.recipients.empty()) add_at(node.source(), key + ": must name at least one pattern");
  }

  // Names and recipients compare as the engine matches them: case-insensitively.
  void check_unique(const std::vector<written_entry>& entries, std::string_view id_name) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (entries[i].id.empty() || ascii_lower(entries[i].id) != ascii_lower(entries[j].id)) {
          continue;
        }
        add(entries[i].id_where + ": " + entries[i].label + "." + std::string{id_name} + " = " +
                in_quotes(entries[i].id) + ": already used by " + entries[j].label,
            entries[i].id_at);
        break;
      }
    }
  }

  decision::thresholds resolve(const written_entry& e) {
    decision::thresholds limits = config_.detection.defaults;
    for (const written_limit& l : e.limits) {
      settings::value copy = l.value;
      l.row->limits.store(limits, std::move(copy));
    }
    // A pair is checked here only when the element sets one of its keys; otherwise both come
    // from [detection.thresholds], which was checked above.
    check_thresholds(
        limits,
        [&e](std::string_view a, std::string_view b) -> std::string {
          for (const std::string_view name : {a, b}) {
            for (const written_limit& l : e.limits) {
              if (l.row->name() == name) return l.where;
            }
          }
          return {};
        },
        e.label + ".");
    return limits;
  }

  static double number(const settings::value& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    return std::get<double>(v);
  }

  // warn points at or below defer points, exit scores below entry scores. `where(a, b)` names
  // the position to report, or "" to skip the pair.
  template <typename Where>
  void check_thresholds(const decision::thresholds& limits, Where where,
                        const std::string& prefix) {
    struct pair_rule {
      std::string lower;
      std::string upper;
      bool strict;
    };
    std::vector<pair_rule> rules;
    for (const std::string_view w : {"minute", "ten_minutes", "hour", "day"}) {
      const std::string window{w};
      rules.push_back({window + "_warn_floor", window + "_defer_floor", false});
      rules.push_back({window + "_warn_factor", window + "_defer_factor", false});
    }
    rules.push_back({"warn_score", "defer_score", false});
    rules.push_back({"warn_exit_score", "warn_score", true});
    rules.push_back({"defer_exit_score", "defer_score", true});
    for (const pair_rule& rule : rules) {
      const setting& lower = *settings::find("detection.thresholds." + rule.lower);
      const setting& upper = *settings::find("detection.thresholds." + rule.upper);
      const settings::value low = lower.limits.read(limits);
      const settings::value high = upper.limits.read(limits);
      const bool fine = rule.strict ? number(low) < number(high) : number(low) <= number(high);
      if (fine) continue;
      const std::string at = where(rule.lower, rule.upper);
      if (at.empty()) continue;
      add(at + ": " + prefix + rule.lower + " (" + settings::format_value(lower, low) + ") " +
          (rule.strict ? "must be below " : "must not exceed ") + prefix + rule.upper + " (" +
          settings::format_value(upper, high) + ")");
    }
  }

  std::string origin_of(const std::string& key, const std::string& other) const {
    return origin(settings::find(key)->key, settings::find(other)->key);
  }

  std::string source_;
  config config_;
  std::vector<written_entry> classes_;
  std::vector<written_entry> overrides_;
  stage stage_ = stage::defaults;
  std::vector<pending_error> errors_;
  std::map<std::string_view, std::string, std::less<>> origins_;  // key -> where it was set
};

template <typename ReadDocument>
load_result load(std::string_view source_name, const std::vector<std::string>& overrides,
                 ReadDocument read_document) {
  try {
    loader l{source_name};
    l.apply_defaults();
    read_document(l);
    for (const std::string& o : overrides) l.apply_override(o);
    l.check_relations();
    return std::move(l).finish();
  } catch (const std::exception& e) {  // bad_alloc, or a bug; callers are promised no throw
    load_result failed;
    failed.errors.push_back(std::string{source_name} + ": internal error: " + e.what());
    return failed;
  }
}

struct file_closer {
  // Opened for reading only, so a failed close loses nothing.
  void operator()(std::FILE* f) const { static_cast<void>(std::fclose(f)); }
};

// The file's bytes, or nullopt with `error` set to the reason.
std::optional<std::string> read_file(const std::filesystem::path& file, std::string& error) {
  const std::unique_ptr<std::FILE, file_closer> f{std::fopen(file.c_str(), "rb")};
  if (!f) {
    error = std::error_code{errno, std::generic_category()}.message();
    return std::nullopt;
  }
  std::string text;
  std::array<char, 8192> buffer{};
  for (;;) {
    const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), f.get());
    if (n < buffer.size() && std::ferror(f.get()) != 0) {  // before anything else touches errno
      error = std::error_code{errno, std::generic_category()}.message();
      return std::nullopt;
    }
    text.append(buffer.data(), n);
    if (text.size() > max_file_size) {
      error = "larger than " + std::to_string(max_file_size) + " bytes";
      return std::nullopt;
    }
    if (n < buffer.size()) return text;
  }
}

void append_comment(std::string& out, std::string_view text) {
  std::string line = "#";
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find(' ', pos), text.size());
    const std::string_view word = text.substr(pos, end - pos);
    if (line.size() > 1 && line.size() + 1 + word.size() > comment_width) {
      out += line + "\n";
      line = "#";
    }
    line += " ";
    line += word;
    pos = end + 1;
  }
  out += line + "\n";
}

std::string facts(const setting& s) {
  std::string out = "default " + std::string{s.default_value};
  switch (s.type) {
    case value_type::integer:
    case value_type::real:
    case value_type::duration:
    case value_type::file_mode:
      out += ", range " + range_text(s);
      break;
    case value_type::choice:
      out += ", one of " + join(s.choices, ", ");
      break;
    case value_type::text:
    case value_type::text_list:
    case value_type::boolean:
      break;
  }
  out += s.when == settings::applies::on_reload ? "; applied on reload" : "; applied on restart";
  return out;
}

constexpr std::string_view reference_header =
    R"(# rcptguard settings (TOML).
#
# Every setting is listed with its default, its bounds, and whether a running daemon applies a
# change on reload (SIGHUP) or only on restart. A setting left out keeps its default, so this
# file can be cut down to the lines you change. Unknown keys are errors, never ignored.
#
# Durations are strings with a unit: "500ms", "10s", "5m", "2h" or "60d"; a bare integer means
# seconds. Check a file with `rcptguard check-config -c FILE`; `-o section.key=value` on the
# command line overrides one setting.
)";

// Commented out, so the sample file still loads as the defaults; uncommented, each loads.
std::string array_example(std::string_view key) {
  if (key == "detection.class") {
    return R"(# [[detection.class]]
# name = "lists"
# recipients = ["*-list@example.test", "tickets@example.test"]
# baseline_ceiling_per_hour = 5000.0
# ten_minutes_warn_floor = 200
# ten_minutes_defer_floor = 500
# hour_warn_factor = 10.0
# hour_defer_factor = 20.0
)";
  }
  return R"(# [[detection.override]]
# recipient = "ceo@example.test"
# ten_minutes_warn_floor = 10
# ten_minutes_defer_floor = 20
)";
}

}  // namespace

load_result load_config(const std::filesystem::path& file,
                        const std::vector<std::string>& overrides) {
  const std::string name = file.string();
  return load(name, overrides, [&](loader& l) {
    std::string why;
    if (const auto text = read_file(file, why)) {
      l.apply_document(*text);
    } else {
      l.report(name + ": cannot read: " + why);
    }
  });
}

load_result load_config_string(std::string_view toml_text,
                               const std::vector<std::string>& overrides,
                               std::string_view source_name) {
  return load(source_name, overrides, [&](loader& l) { l.apply_document(toml_text); });
}

config default_config() {
  load_result defaults = load_config_string({}, {}, "defaults");
  if (!defaults.settings) {
    // The settings table contradicts itself; the config tests exist to make this unreachable.
    for (const std::string& e : defaults.errors) {
      static_cast<void>(std::fprintf(stderr, "%s\n", e.c_str()));
    }
    std::abort();
  }
  return std::move(*defaults.settings);
}

std::string render_reference() {
  std::string out{reference_header};
  for (const settings::section& section : settings::sections()) {
    out += "\n[" + std::string{section.name} + "]\n";
    append_comment(out, section.doc);
    for (const setting& s : settings::all()) {
      if (s.section() != section.name) continue;
      out += "\n";
      append_comment(out, s.doc);
      append_comment(out, facts(s));
      out += std::string{s.name()} + " = " + s.default_value + "\n";
    }
  }
  for (const settings::table_array& array : settings::arrays()) {
    out += "\n";
    append_comment(out, std::string{array.doc} + (array.when == settings::applies::on_reload
                                                      ? " Applied on reload. For example:"
                                                      : " Applied on restart. For example:"));
    out += "#\n";
    out += array_example(array.key);
  }
  return out;
}

std::vector<setting_change> changed_settings(const config& before, const config& after) {
  std::vector<setting_change> changes;
  for (const setting& s : settings::all()) {
    if (s.field.read(before) != s.field.read(after)) {
      changes.push_back({s.key, s.when == settings::applies::on_reload});
    }
  }
  for (const settings::table_array& array : settings::arrays()) {
    if (!array.equal(before, after)) {
      changes.push_back({array.key, array.when == settings::applies::on_reload});
    }
  }
  return changes;
}

std::vector<setting_change> apply_reloadable(config& running, const config& loaded) {
  std::vector<setting_change> changes = changed_settings(running, loaded);
  for (const setting_change& change : changes) {
    if (!change.reloadable) continue;
    if (const setting* s = settings::find(change.key)) {
      s->field.copy(running, loaded);
    } else {
      settings::find_array(change.key)->copy(running, loaded);
    }
  }
  return changes;
}

load_result load_settings(const config_source& source) {
  if (source.file.empty()) return load_config_string("", source.overrides, "defaults");
  return load_config(source.file, source.overrides);
}

std::string describe(const config_source& source) {
  return source.file.empty() ? std::string{"defaults"} : source.file.string();
}

}  // namespace rcptguard
