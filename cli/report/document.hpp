// The HTML report as one self-contained document: inline CSS, inline SVG charts, no script, no
// external resource, and a Content-Security-Policy that forbids fetching anything, so even
// markup injected through an unescaped value could load nothing. Pure: data in, string out.
#pragma once

#include <string>

#include "cli/report/model.hpp"

namespace rcptguard::report {

/// The Content-Security-Policy of every report (also asserted by the tests).
inline constexpr const char* content_security_policy =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The whole document. Every string of `data` is escaped; ids and anchors are the renderer's own.
std::string render_html(const report_data& data);

}  // namespace rcptguard::report
