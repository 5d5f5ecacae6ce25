// Shared by rcptguard-microbench and rcptguard-membench: a synthetic inbound workload shaped like
// rcptguard-load's (zipf(1.0) recipients over a fixed population, 200 clients, one sender per
// client, RCPT then END-OF-MESSAGE per message), built as parsed requests so the engine is
// measured without the wire format, and the process's resident memory from /proc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "protocol/request.hpp"

namespace rcptguard::bench {

/// Draws recipient indices 0..n-1 with P(i) proportional to 1/(i+1), as rcptguard-load --zipf.
class zipf_picker {
 public:
  explicit zipf_picker(int n) {
    double sum = 0;
    for (int i = 1; i <= n; ++i) sum += 1.0 / i;
    double acc = 0;
    cdf_.reserve(static_cast<std::size_t>(n));
    for (int i = 1; i <= n; ++i) {
      acc += 1.0 / i / sum;
      cdf_.push_back(acc);
    }
  }
  template <class Rng>
  int operator()(Rng& rng) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<int>(
        std::min<std::ptrdiff_t>(it - cdf_.begin(), static_cast<std::ptrdiff_t>(cdf_.size()) - 1));
  }

 private:
  std::vector<double> cdf_;
};

/// Fills `rcpt` and `eom` with one message's two requests, as smtpd 3.7 would send them (the
/// attributes the engine reads; the parser's cost is measured separately).
inline void fill_message(protocol::policy_request& rcpt, protocol::policy_request& eom,
                         std::uint64_t message, int recipient, int client, int connection) {
  char buf[96];
  rcpt.clear();
  rcpt.request = "smtpd_access_policy";
  rcpt.state = protocol::protocol_state::rcpt;
  rcpt.protocol_name = "ESMTP";
  std::snprintf(buf, sizeof buf, "10.%d.%d.%d", (client >> 16) & 255, (client >> 8) & 255,
                client & 255);
  rcpt.client_address = buf;
  std::snprintf(buf, sizeof buf, "mx%d.remote.example", client);
  rcpt.client_name = buf;
  rcpt.reverse_client_name = buf;
  rcpt.helo_name = buf;
  rcpt.client_port = static_cast<std::uint16_t>(40000 + connection);
  rcpt.server_address = "127.0.0.1";
  rcpt.server_port = 25;
  std::snprintf(buf, sizeof buf, "sender%d@remote%d.example", client, client);
  rcpt.sender = buf;
  std::snprintf(buf, sizeof buf, "user%d@example.test", recipient);
  rcpt.recipient = buf;
  std::snprintf(buf, sizeof buf, "%x.%llx.0", connection, static_cast<unsigned long long>(message));
  rcpt.instance = buf;
  eom = rcpt;
  eom.state = protocol::protocol_state::end_of_message;
  eom.recipient_count = 1;
  eom.queue_id = "4F2A1B3C9D";
  eom.size = 2345;
}

/// The first RCPT request of the Postfix 3.7 capture (shared/corpus/postfix-3.7/requests.txt),
/// byte for byte: what smtpd sends from smtpd_recipient_restrictions.
inline constexpr const char corpus_rcpt_request[] =
    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
    "client_address=127.0.0.1\nclient_name=localhost\nclient_port=58280\n"
    "reverse_client_name=localhost\nserver_address=127.0.0.1\nserver_port=2525\n"
    "helo_name=client.example.test\nsender=sender@remote.example\nrecipient=alice@example.test\n"
    "recipient_count=0\nqueue_id=\ninstance=2f5f.6b08d7af.aa4ee.0\nsize=0\netrn_domain=\n"
    "stress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\n"
    "ccert_fingerprint=\nccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\n"
    "encryption_keysize=0\npolicy_context=\n\n";

/// A line of /proc/self/status in kB ("VmRSS", "VmHWM"), or -1.
inline long status_kb(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long value = -1;
  const std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      value = std::strtol(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return value;
}

}  // namespace rcptguard::bench
