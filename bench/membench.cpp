// rcptguard-membench: resident memory per tracked recipient key, and whether memory stays flat
// once max_tracked_recipients is reached. Drives decision::engine directly (default settings but
// the cap) with N distinct recipients, one RCPT + END-OF-MESSAGE each, and prints VmRSS at
// checkpoints. Per-key figures are VmRSS deltas divided by the keys tracked:
//   "marginal" = growth since the engine was constructed (the keys, plus the fixed tables as
//                their pages are first touched),
//   "total"    = growth since before construction (the fixed tables shared out over the keys),
//   "slope"    = growth per key added since the previous checkpoint (the fixed tables are
//                paged in as they are first touched, so the first checkpoints include them).
// Target (issue 4): marginal <= 256 bytes/key below the cap; flat (evictions, no growth) above.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/workload.hpp"
#include "decision/engine.hpp"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: rcptguard-membench [--recipients N] [--cap N] [--checkpoints K]\n"
               "  drives the engine with N distinct recipients (default 2000000) against a key\n"
               "  cap (default 1000000, the shipped default) and prints VmRSS at K checkpoints\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rcptguard;
  long total = 2'000'000;
  long cap = 1'000'000;
  int checkpoints = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--recipients")
      total = std::atol(argv[++i]);
    else if (a == "--cap")
      cap = std::atol(argv[++i]);
    else if (a == "--checkpoints")
      checkpoints = std::atoi(argv[++i]);
    else
      usage();
  }
  if (total < 1 || cap < 1000 || checkpoints < 1) usage();

  const long rss_before = bench::status_kb("VmRSS");
  decision::settings config;
  config.max_tracked_recipients = static_cast<std::size_t>(cap);
  auto engine = std::make_unique<decision::engine>(config, 0x5eedULL);
  const long rss_built = bench::status_kb("VmRSS");
  std::printf(
      "membench: cap=%ld recipients=%ld rss_before=%ld kB rss_after_construct=%ld kB "
      "(fixed tables %.1f MB resident)\n",
      cap, total, rss_before, rss_built, (rss_built - rss_before) / 1024.0);
  std::printf("%12s %12s %12s %12s %14s %12s %12s\n", "fed", "tracked", "evictions", "VmRSS_MB",
              "marginal_B/key", "total_B/key", "slope_B/key");

  protocol::policy_request rcpt;
  protocol::policy_request eom;
  time_point now = from_unix_seconds(1'700'000'000);
  const long step = std::max<long>(1, total / checkpoints);
  long at_cap_rss = -1;
  long last_rss = rss_built;
  std::size_t last_tracked = 0;
  for (long n = 0; n < total; ++n) {
    // 200 clients, 64 connections; one message per distinct recipient, 10 ms apart (so no key
    // ages out: 2M messages are 5.5 simulated hours, idle_expiry is 25 h).
    bench::fill_message(rcpt, eom, static_cast<std::uint64_t>(n), static_cast<int>(n),
                        static_cast<int>(n % 200), static_cast<int>(n % 64));
    engine->decide(rcpt, static_cast<std::uint64_t>(n % 64), now);
    engine->decide(eom, static_cast<std::uint64_t>(n % 64), now);
    now += std::chrono::milliseconds{10};
    if ((n & 1023) == 1023) engine->pending().clear();
    if (n % 100 == 99) engine->tick(now);
    const long fed = n + 1;
    if (fed % step == 0 || fed == total || fed == cap) {
      const auto s = engine->stats();
      const long rss = bench::status_kb("VmRSS");
      const double keys = static_cast<double>(s.tracked_recipients);
      const double new_keys = static_cast<double>(s.tracked_recipients - last_tracked);
      // slope: growth per key added since the previous checkpoint, "-" once the cap holds
      char slope[32] = "-";
      if (new_keys > 0)
        std::snprintf(slope, sizeof slope, "%.1f", (rss - last_rss) * 1024.0 / new_keys);
      std::printf("%12ld %12zu %12llu %12.1f %14.1f %12.1f %12s\n", fed, s.tracked_recipients,
                  static_cast<unsigned long long>(s.recipient_evictions), rss / 1024.0,
                  keys > 0 ? (rss - rss_built) * 1024.0 / keys : 0.0,
                  keys > 0 ? (rss - rss_before) * 1024.0 / keys : 0.0, slope);
      std::fflush(stdout);
      last_rss = rss;
      last_tracked = s.tracked_recipients;
      if (fed == cap) at_cap_rss = rss;
    }
  }
  const auto s = engine->stats();
  std::printf(
      "membench: at_cap_rss=%.1f MB final_rss=%.1f MB growth_past_cap=%.1f MB "
      "evictions=%llu tracked=%zu\n",
      at_cap_rss / 1024.0, last_rss / 1024.0,
      at_cap_rss > 0 ? (last_rss - at_cap_rss) / 1024.0 : 0.0,
      static_cast<unsigned long long>(s.recipient_evictions), s.tracked_recipients);
  return 0;
}
