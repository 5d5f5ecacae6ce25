// The replay runner: links with one fuzz target instead of libFuzzer and calls its
// LLVMFuzzerTestOneInput once per file, so a corpus runs under ctest with any compiler (PowerDNS's
// standalone_fuzz_target_runner). May include: the standard library only.
//
//   fuzz_replay_TARGET [--shared PATH]... PATH...
//
// Each PATH (file, or directory read recursively) must exist. A --shared PATH is part of the
// shared reference corpus beside the checkout: when it is missing the runner says so and goes
// on, unless RCPTGUARD_REQUIRE_CORPUS is set (CI), which makes it a failure
// (tests/common/corpus.hpp does the same for gtest). A failing input aborts the process, like
// libFuzzer, so ctest reports the test failed and the output names the input.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

// Regular files under `root` (or `root` itself), sorted so every run goes in the same order.
std::vector<fs::path> files_under(const fs::path& root) {
  std::vector<fs::path> found;
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    found.push_back(root);
    return found;
  }
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) found.push_back(it->path());
  }
  if (ec) std::fprintf(stderr, "fuzz_replay: %s: %s\n", root.c_str(), ec.message().c_str());
  std::sort(found.begin(), found.end());
  return found;
}

bool read_whole(const fs::path& file, std::string& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

struct totals {
  std::size_t inputs = 0;
  std::size_t bytes = 0;
  int failures = 0;
};

void run_tree(const fs::path& root, totals& sum) {
  std::string bytes;
  for (const fs::path& file : files_under(root)) {
    if (!read_whole(file, bytes)) {
      std::fprintf(stderr, "fuzz_replay: cannot read %s\n", file.c_str());
      ++sum.failures;
      continue;
    }
    // The file name first, so the input that aborts is the last one printed.
    if (std::getenv("FUZZ_REPLAY_VERBOSE") != nullptr) {
      std::fprintf(stderr, "fuzz_replay: running %s\n", file.c_str());
    }
    // A copy of exactly `size` bytes, so reading one past the end is an ASan report.
    std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(input.data(), input.size());
    ++sum.inputs;
    sum.bytes += input.size();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool require_shared = std::getenv("RCPTGUARD_REQUIRE_CORPUS") != nullptr;
  totals own;
  totals shared;
  int missing = 0;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool is_shared = arg == "--shared";
    if (is_shared && ++i == argc) {
      std::fprintf(stderr, "usage: %s [--shared PATH]... PATH...\n", argv[0]);
      return 2;
    }
    const fs::path path = argv[i];
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      if (is_shared && !require_shared) {
        std::printf("fuzz_replay: shared corpus missing: %s (skipped)\n", path.c_str());
      } else {
        std::fprintf(stderr, "fuzz_replay: missing: %s%s\n", path.c_str(),
                     is_shared ? " (RCPTGUARD_REQUIRE_CORPUS is set)" : "");
        ++missing;
      }
      continue;
    }
    run_tree(path, is_shared ? shared : own);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  std::printf("fuzz_replay: %zu inputs ran (%zu in-repo, %zu shared), %zu bytes, %lld ms\n",
              own.inputs + shared.inputs, own.inputs, shared.inputs, own.bytes + shared.bytes,
              static_cast<long long>(ms));
  if (own.inputs == 0 && shared.inputs == 0) {
    std::fprintf(stderr, "fuzz_replay: no input ran\n");
    return 1;
  }
  return missing + own.failures + shared.failures == 0 ? 0 : 1;
}
