// Owner checks per spool layout (issue 15): in a local spool a mailbox belongs to the user it is
// named after; in a virtual root (virtual(8), Dovecot) every mailbox belongs to the virtual
// owner, so mailboxes named like system users (list, news, root) are read, and a file planted by
// anyone else is still refused. Files are real, in private temporary directories; the cases that
// give a file to another uid need root (chown) and are skipped otherwise.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "scanner/safe_open.hpp"
#include "scanner/scanner.hpp"
#include "scanner_test_util.hpp"

namespace rcptguard::scanner {
namespace {

using ::testing::HasSubstr;
using testing::mbox_message;
using testing::temp_dir;
using testing::write_file;

const time_point scan_time = from_unix_seconds(1795741800);

// Uids no Debian system user has: the virtual owner, and someone planting a file.
constexpr uid_t vmail_uid = 61000;
constexpr uid_t intruder_uid = 61001;

bool is_root() {
  return ::geteuid() == 0;
}

// The virtual owner of these tests: vmail_uid when files can be given to it, else ourselves.
uid_t virtual_uid() {
  return is_root() ? vmail_uid : ::geteuid();
}

void give(const std::filesystem::path& path, uid_t uid) {
  if (uid == ::geteuid()) return;
  ASSERT_EQ(::lchown(path.c_str(), uid, static_cast<gid_t>(-1)), 0) << path;
}

void write_mbox(const std::filesystem::path& path, const std::string& to, uid_t owner) {
  std::string box;
  for (int i = 0; i < 3; ++i) box += mbox_message(to, i, "same.bin", "virtual flood");
  write_file(path, box);
  give(path, owner);
}

void write_maildir(const std::filesystem::path& maildir, const std::string& to, uid_t owner) {
  for (const char* sub : {"new", "cur", "tmp"}) std::filesystem::create_directories(maildir / sub);
  for (int i = 0; i < 3; ++i) {
    std::string m = mbox_message(to, i, "same.bin", "virtual flood");
    const auto file = maildir / "new" / ("170000000" + std::to_string(i) + ".host");
    write_file(file, m.substr(m.find('\n') + 1));  // no From_ line in a Maildir file
    give(file, owner);
  }
}

// A user other than us that exists everywhere, to name a mailbox after.
std::string other_user() {
  return is_root() ? "nobody" : "root";
}

scan_options virtual_options(const std::filesystem::path& root) {
  scan_options options;
  options.roots = {};
  options.virtual_roots = {root};
  options.virtual_owners = {std::to_string(virtual_uid())};
  options.domains = {"example.test"};
  return options;
}

const file_report* file_named(const scan_report& report, const std::string& name) {
  for (const auto& f : report.files) {
    if (std::filesystem::path(f.path).filename() == name) return &f;
  }
  return nullptr;
}

void expect_read(const scan_report& report, const std::string& name) {
  const file_report* f = file_named(report, name);
  ASSERT_NE(f, nullptr) << name;
  EXPECT_EQ(f->refused, "") << name;
  EXPECT_EQ(f->messages, 3u) << name;
  EXPECT_EQ(f->attachments, 3u) << name;
}

void expect_refused(const scan_report& report, const std::string& name, const std::string& why) {
  const file_report* f = file_named(report, name);
  ASSERT_NE(f, nullptr) << name;
  EXPECT_THAT(f->refused, HasSubstr(why)) << name;
  EXPECT_EQ(f->messages, 0u) << name;
}

TEST(VirtualOwner, MailboxesNamedLikeSystemUsersAreRead) {
  temp_dir dir;
  // list and news are Debian system users (base-passwd); root is one everywhere.
  for (const char* name : {"list", "news", "root", "alice"}) {
    write_mbox(dir.path() / name, std::string(name) + "@example.test", virtual_uid());
  }
  write_maildir(dir.path() / "mail", "mail@example.test", virtual_uid());
  scan_state state;
  const scan_report report = scan_once(virtual_options(dir.path()), state, scan_time);
  for (const char* name : {"list", "news", "root", "alice", "mail"}) expect_read(report, name);
  ASSERT_NE(file_named(report, "list"), nullptr);
  EXPECT_EQ(file_named(report, "list")->recipients, std::vector<std::string>{"list@example.test"});
}

TEST(VirtualOwner, AFilePlantedByAnotherUidIsRefused) {
  if (!is_root()) GTEST_SKIP() << "needs root to give files to other uids (chown)";
  temp_dir dir;
  write_mbox(dir.path() / "list", "list@example.test", vmail_uid);
  write_mbox(dir.path() / "news", "news@example.test", intruder_uid);
  write_mbox(dir.path() / "alice", "alice@example.test", vmail_uid);
  // Owned by the user it is named after: right in /var/mail, wrong in a virtual root.
  write_mbox(dir.path() / "nobody", "nobody@example.test", *local_user_uid("nobody"));
  write_maildir(dir.path() / "carol", "carol@example.test", vmail_uid);
  const auto planted = dir.path() / "carol/cur/1700000009.host:2,S";
  write_file(planted, "Subject: planted\n\nhello\n");
  give(planted, intruder_uid);
  scan_state state;
  const scan_report report = scan_once(virtual_options(dir.path()), state, scan_time);
  expect_read(report, "list");
  expect_read(report, "alice");
  expect_refused(report, "news",
                 "owned by uid 61001, expected uid 61000 (a virtual mailbox owner); refused");
  expect_refused(report, "nobody", "expected uid 61000 (a virtual mailbox owner)");
  // The Maildir's own messages are read; only the planted file is refused.
  const file_report* carol = file_named(report, "carol");
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(carol->messages, 3u);
  EXPECT_THAT(carol->refused, HasSubstr("cur/1700000009.host:2,S: owned by uid 61001"));
}

TEST(VirtualOwner, SeveralOwnersAndUserNamesAreAccepted) {
  if (!is_root()) GTEST_SKIP() << "needs root to give files to other uids (chown)";
  temp_dir dir;
  write_mbox(dir.path() / "list", "list@example.test", vmail_uid);
  write_mbox(dir.path() / "news", "news@example.test", *local_user_uid("nobody"));
  write_mbox(dir.path() / "alice", "alice@example.test", intruder_uid);
  scan_options options = virtual_options(dir.path());
  options.virtual_owners = {"61000", "nobody"};
  scan_state state;
  const scan_report report = scan_once(options, state, scan_time);
  expect_read(report, "list");
  expect_read(report, "news");
  expect_refused(report, "alice",
                 "expected uid 61000 or " + std::to_string(*local_user_uid("nobody")));
}

TEST(VirtualOwner, OurOwnUserNameResolves) {
  const passwd* me = ::getpwuid(::geteuid());
  if (me == nullptr) GTEST_SKIP() << "the test's uid has no user name";
  temp_dir dir;
  write_mbox(dir.path() / other_user(), other_user() + "@example.test", ::geteuid());
  scan_options options = virtual_options(dir.path());
  options.virtual_owners = {me->pw_name};
  scan_state state;
  expect_read(scan_once(options, state, scan_time), other_user());
}

TEST(VirtualOwner, WithoutAKnownOwnerVirtualMailboxesAreRefusedNotReadUnchecked) {
  temp_dir dir;
  write_mbox(dir.path() / "list", "list@example.test", ::geteuid());
  write_maildir(dir.path() / "carol", "carol@example.test", ::geteuid());
  scan_options options = virtual_options(dir.path());
  options.virtual_owners = {};
  scan_state state;
  scan_report report = scan_once(options, state, scan_time);
  expect_refused(report, "list", "no virtual owner is configured; refused");
  expect_refused(report, "carol", "no virtual owner is configured; refused");

  options.virtual_owners = {"rcptguard-no-such-user"};
  report = scan_once(options, state, scan_time);
  expect_refused(report, "list", "its owner (rcptguard-no-such-user) is not a user; refused");
  EXPECT_THAT(report.notes, ::testing::Contains("virtual owner 'rcptguard-no-such-user' is not "
                                                "a user"));

  // check_owner off turns both rules off.
  options.check_owner = false;
  expect_read(scan_once(options, state, scan_time), "list");
}

TEST(VirtualOwner, ADirectoryInBothListsIsReadAsVirtual) {
  temp_dir dir;
  write_mbox(dir.path() / other_user(), other_user() + "@example.test", ::geteuid());
  scan_options options = virtual_options(dir.path());
  options.virtual_owners = {std::to_string(::geteuid())};
  options.roots = {dir.path()};
  scan_state state;
  const scan_report report = scan_once(options, state, scan_time);
  ASSERT_EQ(report.files.size(), 1u);
  expect_read(report, other_user());
  EXPECT_THAT(report.notes, ::testing::Contains(HasSubstr("same directory as an earlier root")));
}

TEST(VirtualOwner, AMappedPathInsideAVirtualRootFollowsTheVirtualRule) {
  // Dovecot with mail_location = mbox:/var/vmail/%d/%n: the mailbox is one level down, so the
  // root's listing does not reach it and the map names it.
  temp_dir dir;
  std::filesystem::create_directories(dir.path() / "example.test");
  const auto mailbox = dir.path() / "example.test" / other_user();
  write_mbox(mailbox, "list@example.test", ::geteuid());
  scan_options options = virtual_options(dir.path());
  options.virtual_owners = {std::to_string(::geteuid())};
  options.mapping = {*parse_mapping(mailbox.string() + "=list@example.test")};
  scan_state state;
  expect_read(scan_once(options, state, scan_time), other_user());

  // The same map entry without the virtual root: the local rule, and the named user is not us.
  options.virtual_roots = {};
  expect_refused(scan_once(options, state, scan_time), other_user(),
                 "(the local user it is named after); refused");
}

TEST(LocalSpool, MailboxesStillBelongToTheUserTheyAreNamedAfter) {
  temp_dir dir;
  const passwd* me = ::getpwuid(::geteuid());
  write_mbox(dir.path() / other_user(), "x@example.test", ::geteuid());
  write_mbox(dir.path() / "rcptguard-no-such-user", "x@example.test", ::geteuid());
  if (me != nullptr) write_mbox(dir.path() / me->pw_name, "x@example.test", ::geteuid());
  scan_options options;
  options.roots = {dir.path()};
  options.domains = {"example.test"};
  // Virtual owners configured for other roots change nothing here.
  options.virtual_owners = {std::to_string(::geteuid())};
  scan_state state;
  const scan_report report = scan_once(options, state, scan_time);
  expect_refused(report, other_user(),
                 "owned by uid " + std::to_string(::geteuid()) + ", expected uid " +
                     std::to_string(*local_user_uid(other_user())) +
                     " (the local user it is named after); refused");
  expect_read(report, "rcptguard-no-such-user");  // named after no user: any owner
  if (me != nullptr) expect_read(report, me->pw_name);
}

TEST(LocalSpool, AMailboxOwnedByItsUserIsRead) {
  if (!is_root()) GTEST_SKIP() << "needs root to give a file to its user (chown)";
  temp_dir dir;
  write_mbox(dir.path() / "nobody", "nobody@example.test", *local_user_uid("nobody"));
  write_maildir(dir.path() / "list", "list@example.test", vmail_uid);
  scan_options options;
  options.roots = {dir.path()};
  options.domains = {"example.test"};
  scan_state state;
  const scan_report report = scan_once(options, state, scan_time);
  expect_read(report, "nobody");
  if (local_user_uid("list")) expect_refused(report, "list", "expected uid");
}

TEST(OwnerUid, NumbersAreUidsAndNamesAreLookedUp) {
  EXPECT_EQ(owner_uid("5000"), uid_t{5000});
  EXPECT_EQ(owner_uid("0"), uid_t{0});
  EXPECT_EQ(owner_uid("root"), uid_t{0});
  EXPECT_FALSE(owner_uid("").has_value());
  EXPECT_FALSE(owner_uid("rcptguard-no-such-user").has_value());
  EXPECT_FALSE(owner_uid("4294967295").has_value());  // (uid_t)-1: no file has it
  EXPECT_FALSE(owner_uid("99999999999999999999").has_value());
}

TEST(OwnerSettings, AnUnknownUserIsAConfigError) {
  const load_result bad =
      load_config_string("[spool]\nvirtual_owner = [\"vmail-rcptguard-missing\"]\n", {}, "t.toml");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_THAT(bad.errors.front(), HasSubstr("no user named 'vmail-rcptguard-missing'"));
  EXPECT_THAT(load_config_string("", {R"(spool.virtual_owner=["4294967295"])"}, "o").errors,
              ::testing::ElementsAre(HasSubstr("uid out of range")));
  EXPECT_THAT(load_config_string("", {R"(spool.virtual_owner=["v mail"])"}, "o").errors,
              ::testing::ElementsAre(HasSubstr("no spaces or control characters")));

  const load_result good = load_config_string(
      "[spool]\nvirtual_roots = [\"/var/vmail/example.test\"]\nvirtual_owner = [\"root\", "
      "\"5000\"]\n",
      {}, "t.toml");
  ASSERT_TRUE(good.ok()) << ::testing::PrintToString(good.errors);
  EXPECT_EQ(good.settings->spool.virtual_roots,
            std::vector<std::string>{"/var/vmail/example.test"});
  EXPECT_EQ(good.settings->spool.virtual_owner, (std::vector<std::string>{"root", "5000"}));
  EXPECT_FALSE(load_config_string("", {R"(spool.virtual_roots=["var/vmail"])"}, "o").ok());
}

}  // namespace
}  // namespace rcptguard::scanner
