// Turns a policy_action into the one reply Postfix reads, and validates the defer actions an
// operator may configure. Everything here errs towards a reply Postfix accepts as temporary.
#include "protocol/reply.hpp"

#include <utility>

#include "common/text.hpp"
#include "protocol/limits.hpp"

namespace rcptguard::protocol {

namespace {

// Postfix parses a bare "450" or "DEFER_IF_PERMIT" with nothing after it oddly (a code alone
// is taken as a restriction name: 451 4.3.5 plus a postmaster notice), so defers always carry
// text.
constexpr std::string_view default_defer_text = "rcptguard: try again later";
constexpr std::string_view default_warn_text = "rcptguard";
// PREPEND without a header would make Postfix log a warning and ignore it; ours always has one.
constexpr std::string_view default_prepend_text = "X-Rcptguard: flagged";
// Replaces a malformed smtp_code so a caller's bug can neither bounce mail nor inject bytes.
constexpr std::string_view fallback_code = "450";

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// 421 is excluded: Postfix would also hang up on the SMTP client, refusing every other
// recipient of the session, while a flood verdict concerns one recipient.
bool is_temporary_code(std::string_view code) {
  return code.size() == 3 && code[0] == '4' && is_digit(code[1]) && is_digit(code[2]) &&
         code != "421";
}

// Consumes 1 to 3 digits from the front of `text`; false when there are none.
bool take_digits(std::string_view& text) {
  std::size_t count = 0;
  while (count < text.size() && count < 3 && is_digit(text[count])) ++count;
  text.remove_prefix(count);
  return count > 0;
}

// RFC 3463 "4.X.Y" with 1-3 digit X and Y, and nothing after it.
bool is_temporary_enhanced_code(std::string_view text) {
  if (text.size() < 2 || text[0] != '4' || text[1] != '.') return false;
  text.remove_prefix(2);
  if (!take_digits(text) || text.empty() || text[0] != '.') return false;
  text.remove_prefix(1);
  return take_digits(text) && text.empty();
}

// Postfix splits verb and text on whitespace, so spaces around the text carry nothing and
// text made only of spaces counts as no text.
std::string_view trim_spaces(std::string_view text) {
  const std::size_t first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

struct verb_spelling {
  std::string_view verb;
  std::string_view default_text;  ///< empty for a verb that never carries text (DUNNO)
};

verb_spelling spell(const policy_action& action) {
  switch (action.verb) {
    case action_verb::dunno:
      return {"DUNNO", {}};
    case action_verb::warn:
      return {"WARN", default_warn_text};
    case action_verb::defer_if_permit:
      return {"DEFER_IF_PERMIT", default_defer_text};
    case action_verb::defer:
      return {"DEFER", default_defer_text};
    case action_verb::smtp_code:
      return {is_temporary_code(action.code) ? std::string_view(action.code) : fallback_code,
              default_defer_text};
    case action_verb::prepend:
      return {"PREPEND", default_prepend_text};
  }
  // An out-of-range enum value: allowing is the answer that cannot hurt delivery.
  return {"DUNNO", {}};
}

}  // namespace

action_error parse_configured_action(std::string_view configured, policy_action& out) {
  const std::size_t space = configured.find(' ');
  const std::string_view verb = configured.substr(0, space);
  const std::string_view enhanced =
      space == std::string_view::npos ? std::string_view{} : configured.substr(space + 1);
  if (space != std::string_view::npos && !is_temporary_enhanced_code(enhanced)) {
    return action_error::bad_code;
  }

  policy_action parsed;
  const std::string folded = ascii_lower(verb);
  if (folded == "defer_if_permit") {
    parsed.verb = action_verb::defer_if_permit;
  } else if (folded == "defer") {
    parsed.verb = action_verb::defer;
  } else if (is_temporary_code(verb)) {
    parsed.verb = action_verb::smtp_code;
    parsed.code = verb;
  } else {
    return action_error::bad_code;
  }
  parsed.text = enhanced;
  out = std::move(parsed);
  return action_error::none;
}

void format_reply(const policy_action& action, std::string& out) {
  const verb_spelling spelling = spell(action);
  out.append("action=").append(spelling.verb);
  if (!spelling.default_text.empty()) {
    const std::string sanitized = sanitize_for_reply(action.text, max_reply_text);
    std::string_view text = trim_spaces(sanitized);
    // A configured "DEFER 4.2.1" with no message: Postfix takes the code and would show the
    // client an empty reason, so the default text follows the code.
    if (is_temporary_enhanced_code(text)) {
      out.append(" ").append(text);
      text = {};
    }
    if (text.empty()) text = spelling.default_text;
    out.append(" ").append(text);
  }
  out.append("\n\n");
}

}  // namespace rcptguard::protocol
