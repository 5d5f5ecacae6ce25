// The one place a verdict becomes bytes on the wire: "action=<verb>[ <text>]\n\n".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rcptguard::protocol {

/// What we ever tell Postfix. Allowing is DUNNO (never OK: OK would skip later restrictions).
enum class action_verb : std::uint8_t {
  dunno,
  warn,             ///< logged by Postfix, mail accepted
  defer_if_permit,  ///< 450 unless a later restriction rejects
  defer,            ///< unconditional 450
  smtp_code,        ///< an explicit 4NN reply code, e.g. "450 4.2.1 ..."
  prepend,          ///< accepted, with the text added as a header line ("Name: value")
};

struct policy_action {
  action_verb verb = action_verb::dunno;
  /// For smtp_code: three digits starting with 4 (a flood is temporary; we never bounce).
  std::string code;
  /// Free text; for defer verbs it may start with an RFC 3463 enhanced status code (4.2.1).
  std::string text;

  static policy_action dunno() { return {}; }
};

/// What a server does when it fails itself on a well-formed request: answer DUNNO (Postfix
/// carries on as if the policy check were not there) or disconnect without a reply (Postfix
/// retries, then applies its default_action).
enum class internal_error_policy : std::uint8_t { fail_open, disconnect };

enum class action_error : std::uint8_t { none, bad_code };

/// Validates an action parsed from configuration ("DEFER_IF_PERMIT 4.2.1", "450 4.2.1",
/// "DEFER"); fills verb, code and text prefix. Returns bad_code for anything else.
action_error parse_configured_action(std::string_view configured, policy_action& out);

/// Appends exactly one reply to `out`. Text is sanitised (valid UTF-8, no control bytes) and
/// capped at max_reply_text, so an echoed recipient address can never split or inject a line;
/// verbs that need text (defer, smtp_code) get a fixed text when none is given.
void format_reply(const policy_action& action, std::string& out);

}  // namespace rcptguard::protocol
