// Google Benchmark micro-benchmarks of the per-request hot paths: parsing a request, the decision
// engine per message, formatting the reply, and the store's batch write. Instruction counts of
// these are what the callgrind notes in docs/BENCHMARKS.md refer to.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/workload.hpp"
#include "decision/engine.hpp"
#include "protocol/parser.hpp"
#include "protocol/reply.hpp"
#include "store/store.hpp"

namespace {

using namespace rcptguard;

// --- protocol -------------------------------------------------------------------------------

void BM_parse_corpus_request(benchmark::State& state) {
  const std::string_view bytes = bench::corpus_rcpt_request;
  protocol::request_parser parser;
  protocol::policy_request request;
  for (auto _ : state) {
    request.clear();
    const auto result = parser.feed(bytes, request);
    if (result.status != protocol::parse_status::complete) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(request);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_parse_corpus_request);

// The same request arriving in two reads cut mid-line (a partial line is carried over).
void BM_parse_corpus_request_split(benchmark::State& state) {
  const std::string_view bytes = bench::corpus_rcpt_request;
  const std::size_t cut = bytes.size() / 2;
  protocol::request_parser parser;
  protocol::policy_request request;
  for (auto _ : state) {
    request.clear();
    parser.feed(bytes.substr(0, cut), request);
    const auto result = parser.feed(bytes.substr(cut), request);
    if (result.status != protocol::parse_status::complete) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(request);
  }
}
BENCHMARK(BM_parse_corpus_request_split);

void BM_format_reply_dunno(benchmark::State& state) {
  const protocol::policy_action action = protocol::policy_action::dunno();
  std::string out;
  for (auto _ : state) {
    out.clear();
    protocol::format_reply(action, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_format_reply_dunno);

void BM_format_reply_defer(benchmark::State& state) {
  protocol::policy_action action;
  protocol::parse_configured_action("DEFER_IF_PERMIT 4.2.1", action);
  action.text =
      "4.2.1 Mailbox receiving mail at an unusual rate (score 2.4: 57 msgs/10m, "
      "baseline 0.6); try again later";
  std::string out;
  for (auto _ : state) {
    out.clear();
    protocol::format_reply(action, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_format_reply_defer);

// --- decision engine ------------------------------------------------------------------------

// One RCPT + END-OF-MESSAGE pair per iteration, default settings (monitor mode, 1M-key cap),
// 100k recipients zipf(1.0), 200 clients, 64 policy connections, 10k messages per simulated
// second (so the hottest recipients are floods and the engine builds verdicts and episodes),
// tick() once per simulated second, the outbox drained every 1000 messages as the server does.
void BM_engine_rcpt_eom(benchmark::State& state) {
  const int recipients = static_cast<int>(state.range(0));
  const bool enforce = state.range(1) != 0;
  decision::settings config;
  if (enforce) config.mode = decision::detection_mode::enforce;
  decision::engine engine(config, 0x5eedULL);
  bench::zipf_picker pick(recipients);
  std::mt19937_64 rng(42);

  constexpr std::size_t ring = 1 << 15;
  std::vector<protocol::policy_request> rcpts(ring);
  std::vector<protocol::policy_request> eoms(ring);
  std::uint64_t message = 0;
  auto refill = [&] {
    for (std::size_t i = 0; i < ring; ++i, ++message) {
      const int client = static_cast<int>(rng() % 200);
      bench::fill_message(rcpts[i], eoms[i], message, pick(rng), client,
                          static_cast<int>(message % 64));
    }
  };
  time_point now = from_unix_seconds(1'700'000'000);
  const auto step = std::chrono::microseconds{100};
  std::size_t events_since_tick = 0;
  std::size_t i = 0;
  auto one_message = [&] {
    const std::uint64_t conn = i % 64;
    benchmark::DoNotOptimize(engine.decide(rcpts[i], conn, now));
    benchmark::DoNotOptimize(engine.decide(eoms[i], conn, now));
    now += step;
    if (++events_since_tick == 10'000) {
      engine.tick(now);
      events_since_tick = 0;
    }
    if ((i & 1023) == 1023) engine.pending().clear();
    if (++i == ring) i = 0;
  };
  // Warm-up outside the timed loop: 200k messages, so the table holds the zipf population.
  refill();
  for (int w = 0; w < 200'000; ++w) one_message();
  for (auto _ : state) one_message();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  const auto s = engine.stats();
  state.counters["tracked"] = static_cast<double>(s.tracked_recipients);
  state.counters["warn"] = static_cast<double>(s.verdicts_warn);
  state.counters["defer"] = static_cast<double>(s.verdicts_defer);
}
BENCHMARK(BM_engine_rcpt_eom)
    ->ArgNames({"recipients", "enforce"})
    ->Args({100'000, 0})
    ->Args({100'000, 1})
    ->Unit(benchmark::kNanosecond);

// --- store ----------------------------------------------------------------------------------

std::string temp_db_path() {
  const auto dir = std::filesystem::temp_directory_path();
  return (dir / ("rcptguard-microbench-" + std::to_string(::getpid()) + ".db")).string();
}

void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(path + suffix, ec);
  }
}

// store::store::apply of one 1000-record outbox: kind 0 = 1000 accepted deliveries (the steady
// state), kind 1 = 1000 monitor-mode verdicts with two reasons each (a flood being recorded).
// Each batch is a fresh minute, so rows are inserted, as in production, not only updated.
void BM_store_apply_1000(benchmark::State& state) {
  const bool verdicts = state.range(0) != 0;
  const std::string path = temp_db_path();
  remove_db(path);
  {
    store::store_options options;
    options.database.path = path;
    store::store db(options);
    bench::zipf_picker pick(100'000);
    std::mt19937_64 rng(7);
    decision::outbox batch;
    std::int64_t t = 1'700'000'000;
    for (auto _ : state) {
      state.PauseTiming();
      batch.clear();
      t += 60;
      for (int k = 0; k < 1000; ++k) {
        const int r = pick(rng);
        const int c = static_cast<int>(rng() % 200);
        const time_point at = from_unix_seconds(t) + std::chrono::milliseconds{k * 50};
        if (!verdicts) {
          decision::delivery_record d;
          d.at = at;
          d.recipient = "user" + std::to_string(r) + "@example.test";
          d.sender = "sender" + std::to_string(c) + "@remote" + std::to_string(c) + ".example";
          d.client = "10.0." + std::to_string(c / 256) + "." + std::to_string(c % 256);
          d.size = 2345;
          d.accepted = true;
          batch.deliveries.push_back(std::move(d));
        } else {
          decision::verdict_record v;
          v.at = at;
          v.recipient = "user0@example.test";
          v.sender = "sender" + std::to_string(c) + "@remote" + std::to_string(c) + ".example";
          v.client = "10.0." + std::to_string(c / 256) + "." + std::to_string(c % 256);
          v.level = decision::verdict_level::defer;
          v.score = 2.4;
          v.action_text = "WARN rcptguard: would defer, score 2.4 (57 msgs/10m, baseline 0.6)";
          v.monitor_only = true;
          v.reasons.push_back({"volume_10m", 2.0, 57, 0.6, "57 msgs/10m, baseline 0.6"});
          v.reasons.push_back({"sender_diversity", 0.5, 41, 1.0, "41 senders/10m"});
          batch.verdicts.push_back(std::move(v));
        }
      }
      state.ResumeTiming();
      db.apply(batch);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1000);
  }
  remove_db(path);
}
BENCHMARK(BM_store_apply_1000)
    ->ArgName("verdicts")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
