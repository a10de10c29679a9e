// pop3d/mailbox_test.cpp: the Maildir scan, sizes, unique ids and the session lock on real directories.
#include "pop3d/mailbox.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

std::string make_maildir(const TempDir& dir) {
  for (const char* sub : {"tmp", "new", "cur"}) std::filesystem::create_directories(dir.path() / "Maildir" / sub);
  return (dir.path() / "Maildir").string();
}

std::vector<std::string> names(const std::vector<MailboxMessage>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.name);
  return out;
}

}  // namespace

TEST_CASE("mailbox: new/ moves to cur/ with the info :2, and dot files stay") {
  TempDir dir;
  std::string md = make_maildir(dir);
  dir.write("Maildir/new/1700000001.M1P1Q1.mx", "a\n");
  dir.write("Maildir/new/1700000002.M1P1Q2.mx:2,S", "b\n");
  dir.write("Maildir/new/.hidden", "x");
  auto scanned = scan_mailbox(md);
  REQUIRE(scanned);
  CHECK(names(*scanned) == std::vector<std::string>{"1700000001.M1P1Q1.mx:2,", "1700000002.M1P1Q2.mx:2,S"});
  CHECK(std::filesystem::exists(dir.path() / "Maildir/cur/1700000001.M1P1Q1.mx:2,"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "Maildir/new/1700000001.M1P1Q1.mx"));
  CHECK(std::filesystem::exists(dir.path() / "Maildir/new/.hidden"));
}

TEST_CASE("mailbox: messages come in delivery order, by the seconds as a number, then the name") {
  TempDir dir;
  std::string md = make_maildir(dir);
  for (const char* name : {"1700000010.M1P1Q1.mx:2,", "1700000002.M9P1Q1.mx:2,", "1700000002.M1P1Q1.mx:2,",
                           "999999999.M1P1Q1.mx:2,"})
    dir.write(std::string("Maildir/cur/") + name, "x\n");
  auto scanned = scan_mailbox(md);
  REQUIRE(scanned);
  CHECK(names(*scanned) == std::vector<std::string>{"999999999.M1P1Q1.mx:2,", "1700000002.M1P1Q1.mx:2,",
                                                    "1700000002.M9P1Q1.mx:2,", "1700000010.M1P1Q1.mx:2,"});
}

TEST_CASE("mailbox: only regular files of cur/ are messages") {
  TempDir dir;
  std::string md = make_maildir(dir);
  dir.write("Maildir/cur/1.a:2,", "x\n");
  dir.write("Maildir/cur/.tmpfile", "x\n");
  std::filesystem::create_directories(dir.path() / "Maildir/cur/2.dir:2,");
  std::filesystem::create_symlink(dir.path() / "Maildir/cur/1.a:2,", dir.path() / "Maildir/cur/3.link:2,");
  auto scanned = scan_mailbox(md);
  REQUIRE(scanned);
  CHECK(names(*scanned) == std::vector<std::string>{"1.a:2,"});
}

TEST_CASE("mailbox: sizes are the CRLF form, from W= when the name has it, else counted") {
  TempDir dir;
  std::string md = make_maildir(dir);
  dir.write("Maildir/cur/1.counted:2,", "Subject: x\n\nbody\r\nend");  // 2 bare LFs, no final LF
  dir.write("Maildir/cur/2.named,S=2,W=3:2,", "ab");      // the name is trusted: no read (4 if counted)
  dir.write("Maildir/cur/3.stale,S=5,W=99:2,", "a\n");    // S= is not the file's size: counted
  dir.write("Maildir/cur/4.onlyw,W=7:2,", "a\n");         // W= without S=: counted
  dir.write("Maildir/cur/5.empty:2,", "");
  dir.write("Maildir/cur/6.toobig,S=2,W=99:2,", "a\n");   // no CRLF form of 2 bytes is 99: counted
  dir.write("Maildir/cur/7.toosmall,S=2,W=1:2,", "a\n");  // nor is 1: counted
  auto scanned = scan_mailbox(md);
  REQUIRE(scanned);
  REQUIRE(scanned->size() == 7);
  CHECK((*scanned)[0].octets == 21 + 2 + 2);
  CHECK((*scanned)[1].octets == 3);
  CHECK((*scanned)[2].octets == 3);
  CHECK((*scanned)[3].octets == 3);
  CHECK((*scanned)[4].octets == 0);
  CHECK((*scanned)[5].octets == 3);
  CHECK((*scanned)[6].octets == 3);
}

TEST_CASE("mailbox: a UIDL is the name before the info, or a digest when it cannot be one") {
  CHECK(message_uid("1700000001.M1P1Q1.mx,S=2,W=3:2,S") == "1700000001.M1P1Q1.mx,S=2,W=3");
  CHECK(message_uid("1700000001.M1P1Q1.mx") == "1700000001.M1P1Q1.mx");
  std::string long_name(71, 'a');
  std::string uid = message_uid(long_name + ":2,");
  CHECK(uid.size() == 32);
  CHECK(uid.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(uid == message_uid(long_name));  // stable: the info does not take part
  CHECK(uid != message_uid(std::string(71, 'b')));
  CHECK(message_uid(std::string(70, 'a')) == std::string(70, 'a'));
  CHECK(message_uid("1.a b.host:2,").size() == 32);    // a space is outside 0x21-0x7E
  CHECK(message_uid("1.\xe9t\xe9.host:2,").size() == 32);
}

TEST_CASE("mailbox: UIDLs stay the same across scans and new deliveries") {
  TempDir dir;
  std::string md = make_maildir(dir);
  dir.write("Maildir/new/1700000001.M1P1Q1.mx,S=2,W=3", "a\n");
  auto first = scan_mailbox(md);
  REQUIRE(first);
  dir.write("Maildir/new/1700000000.M1P1Q2.mx,S=2,W=3", "b\n");  // an older stamp arriving later
  auto second = scan_mailbox(md);
  REQUIRE(second);
  REQUIRE(first->size() == 1);
  REQUIRE(second->size() == 2);
  CHECK((*first)[0].uid == "1700000001.M1P1Q1.mx,S=2,W=3");
  CHECK((*second)[1].uid == (*first)[0].uid);
}

TEST_CASE("mailbox: one lock per mailbox; it is free again once its holder closes it") {
  TempDir dir;
  std::string md = make_maildir(dir);
  auto first = lock_mailbox(md);
  REQUIRE(first);
  auto second = lock_mailbox(md);
  REQUIRE_FALSE(second);
  CHECK(second.error().errno_value() == EWOULDBLOCK);
  REQUIRE(first->close());
  CHECK(lock_mailbox(md));
  CHECK((std::filesystem::status(dir.path() / "Maildir/.tikimail-pop3.lock").permissions() &
         std::filesystem::perms::all) == (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
}

TEST_CASE("mailbox: a missing Maildir is trouble, not an empty mailbox") {
  TempDir dir;
  CHECK_FALSE(scan_mailbox((dir.path() / "nothing").string()));
  CHECK_FALSE(maildir_bytes((dir.path() / "nothing").string()));
}

TEST_CASE("mailbox: the stored bytes of new/ and cur/ are summed without reading") {
  TempDir dir;
  std::string md = make_maildir(dir);
  dir.write("Maildir/new/1.a", "12345");
  dir.write("Maildir/cur/2.b:2,", "123");
  dir.write("Maildir/tmp/3.c", "1234567");  // not delivered yet: not counted
  auto bytes = maildir_bytes(md);
  REQUIRE(bytes);
  CHECK(*bytes == 8);
}

TEST_CASE("mailbox: UPDATE removes the named files; one already gone counts as removed") {
  TempDir dir;
  std::string md = make_maildir(dir);
  dir.write("Maildir/cur/1.a:2,", "x");
  dir.write("Maildir/cur/2.b:2,", "y");
  CHECK(remove_messages(md, {"1.a:2,", "9.gone:2,"}) == 0);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "Maildir/cur/1.a:2,"));
  CHECK(std::filesystem::exists(dir.path() / "Maildir/cur/2.b:2,"));
}
