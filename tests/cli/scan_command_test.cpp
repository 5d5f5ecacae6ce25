// `rcptguard scan` end to end on a temporary spool: table and JSON output, the database round
// trip (a second run reads nothing new), and the exit codes.
#include "cli/scan_command.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/common/corpus.hpp"
#include "tests/scanner/scanner_test_util.hpp"

namespace rcptguard::cli {
namespace {

using scanner::testing::corpus_dir;
using scanner::testing::temp_dir;

struct result {
  int code = 0;
  std::string out;
  std::string err;
};

std::string slurp(std::FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  std::fclose(f);
  return s;
}

result run(std::vector<std::string> args) {
  args.insert(args.begin(), "scan");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  scan_io io;
  io.out = std::tmpfile();
  io.err = std::tmpfile();
  io.now = from_unix_seconds(1795741800);  // 2026-11-27 01:10:00 UTC
  result r;
  r.code = command_scan(static_cast<int>(argv.size()), argv.data(), io);
  r.out = slurp(io.out);
  r.err = slurp(io.err);
  return r;
}

class ScanCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    RCPTGUARD_NEEDS_CORPUS();
    std::filesystem::create_directories(dir_.path() / "spool");
    std::filesystem::copy_file(corpus_dir / "postfix-3.7/mbox-sample", dir_.path() / "spool/bob");
  }
  std::string root() const { return (dir_.path() / "spool").string(); }
  temp_dir dir_;
};

TEST_F(ScanCommand, TableNamesTheRepeatedAttachment) {
  const result r = run({"--root", root(), "--domain", "example.test"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("bob@example.test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("repeated: sha256:4f722330b79ef86f stored 6x"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("photo.jpg, copy-of-photo.jpg"), std::string::npos) << r.out;
}

TEST_F(ScanCommand, JsonAndDatabaseRoundTrip) {
  const std::string db = (dir_.path() / "rg.db").string();
  result r =
      run({"--root", root(), "--map", "bob=robert@example.test", "-d", db, "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"recipients\":[\"robert@example.test\"]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"count\":6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"messages\":9"), std::string::npos) << r.out;
  r = run({"--root", root(), "--map", "bob=robert@example.test", "-d", db, "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"messages\":0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"count\":6"), std::string::npos) << r.out;  // from the stored records
}

TEST_F(ScanCommand, ExitCodes) {
  EXPECT_EQ(run({"--format", "xml", "--root", root()}).code, 2);
  EXPECT_EQ(run({"--map", "nonsense", "--root", root()}).code, 2);
  EXPECT_EQ(run({"--bogus"}).code, 2);
  EXPECT_EQ(run({"--root", root(), "-d", (dir_.path() / "missing/dir/rg.db").string()}).code, 1);
  EXPECT_EQ(run({"--help"}).code, 0);
}

// Without --root/--domain/--map the [spool] settings of -o apply, and each flag replaces its
// setting; store.path is the database when no -d is given.
TEST_F(ScanCommand, TakesTheSpoolSettingsAndFlagsReplaceThem) {
  const std::string roots = "spool.roots=" + root();
  const std::string map = "spool.map=bob=flood@example.test";
  const std::string store = "store.path=" + (dir_.path() / "rg.db").string();
  result r = run({"-o", roots, "-o", map, "-o", store, "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("recipients":["flood@example.test"])"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("count":6)"), std::string::npos) << r.out;
  // The database came from store.path: the second run reads nothing new; --map wins over
  // spool.map.
  r = run(
      {"-o", roots, "-o", map, "-o", store, "--map", "bob=other@example.test", "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("recipients":["other@example.test"])"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("messages":0)"), std::string::npos) << r.out;
  // Six copies are not a repeat when spool.min_repeats asks for seven.
  r = run({"-o", roots, "-o", map, "-o", "spool.min_repeats=7", "--format", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("repeats":[])"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace rcptguard::cli
