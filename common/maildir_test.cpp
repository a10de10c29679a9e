// common/maildir_test.cpp: the Maildir writer against real directories.
#include "common/maildir.h"

#include <fcntl.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/fd.h"
#include "common/test_util.h"

using namespace tikimail;
using namespace std::string_literals;
using tikimail::testing::TempDir;

namespace {

std::vector<std::string> names_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename());
  return names;
}

void make_maildir(const TempDir& dir, const std::string& relative) {
  for (const char* sub : {"tmp", "new", "cur"})
    std::filesystem::create_directories(dir.path() / relative / sub);
}

}  // namespace

TEST_CASE("maildir: the message appears in new/ with the exact bytes, nothing stays in tmp/") {
  TempDir dir;
  make_maildir(dir, "Maildir");
  std::string message = "Subject: hi\n\nline one\r\nbinary \x01\x80\xff end";
  message += std::string(200000, 'x');  // more than one copy buffer
  dir.write("mess", message);
  auto mess = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(mess);

  MaildirWriter writer("mx.example.test");
  std::string header = "Return-Path: <a@x.test>\nDelivered-To: b@y.test\n";
  auto file = writer.deliver((dir.path() / "Maildir").string(), header, mess->get(), message.size());
  REQUIRE(file);
  CHECK(file->bytes == header.size() + message.size());
  CHECK(names_in(dir.path() / "Maildir/new") == std::vector<std::string>{file->name});
  CHECK(names_in(dir.path() / "Maildir/tmp").empty());
  CHECK(dir.read("Maildir/new/" + file->name) == header + message);
  // Microseconds are zero-padded, so names of one second sort in delivery order.
  size_t m = file->name.find(".M"), p = file->name.find('P');
  REQUIRE(m != std::string::npos);
  CHECK(p == m + 8);  // ".M" and exactly six digits
  CHECK(file->name.substr(m + 2, 6).find_first_not_of("0123456789") == std::string::npos);
}

TEST_CASE("maildir: one open message serves several deliveries") {
  TempDir dir;
  make_maildir(dir, "a/Maildir");
  make_maildir(dir, "b/Maildir");
  dir.write("mess", "body\n");
  auto mess = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(mess);
  MaildirWriter writer("mx");
  auto first = writer.deliver((dir.path() / "a/Maildir").string(), "H: 1\n", mess->get(), 5);
  auto second = writer.deliver((dir.path() / "b/Maildir").string(), "H: 2\n", mess->get(), 5);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->name != second->name);
  CHECK(dir.read("a/Maildir/new/" + first->name) == "H: 1\nbody\n");
  CHECK(dir.read("b/Maildir/new/" + second->name) == "H: 2\nbody\n");
}

TEST_CASE("maildir: a missing Maildir is a temporary failure that leaves nothing") {
  TempDir dir;
  dir.write("mess", "body\n");
  auto mess = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(mess);
  MaildirWriter writer("mx");
  auto file = writer.deliver((dir.path() / "nobody/Maildir").string(), "H: 1\n", mess->get(), 5);
  REQUIRE_FALSE(file);
  CHECK(file.error().temporary_failure());
  CHECK_FALSE(std::filesystem::exists(dir.path() / "nobody"));
}

TEST_CASE("maildir: a failure after tmp/ was written removes the tmp file") {
  TempDir dir;
  // tmp/ exists but new/ does not: the rename fails after the file was written and synced.
  std::filesystem::create_directories(dir.path() / "Maildir/tmp");
  dir.write("mess", "body\n");
  auto mess = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(mess);
  MaildirWriter writer("mx");
  auto file = writer.deliver((dir.path() / "Maildir").string(), "H: 1\n", mess->get(), 5);
  REQUIRE_FALSE(file);
  CHECK(file.error().temporary_failure());
  CHECK(names_in(dir.path() / "Maildir/tmp").empty());
}

TEST_CASE("maildir: only the first message_bytes of the file are copied, and the sizes count only them") {
  TempDir dir;
  make_maildir(dir, "Maildir");
  // A queue entry file: the message (no final newline), then what must never be delivered.
  const std::string message = "Subject: cut\n\nlast line without LF";
  dir.write("entry", message + "Fs@x.test\0Tb@y.test\0\0"s + "\nTQ10000000000000022");
  auto entry = open_file((dir.path() / "entry").string(), O_RDONLY);
  REQUIRE(entry);
  MaildirWriter writer("mx");
  auto file = writer.deliver((dir.path() / "Maildir").string(), "H: 1\n", entry->get(), message.size());
  REQUIRE(file);
  CHECK(dir.read("Maildir/new/" + file->name) == "H: 1\n" + message);
  CHECK(file->bytes == 5 + message.size());
  CHECK(file->octets == 5 + message.size() + 3 + 2);  // three bare LFs, then the added CRLF

  auto empty = writer.deliver((dir.path() / "Maildir").string(), "H: 2\n", entry->get(), 0);
  REQUIRE(empty);
  CHECK(dir.read("Maildir/new/" + empty->name) == "H: 2\n");
}

TEST_CASE("maildir: a file shorter than message_bytes is a temporary failure that leaves nothing") {
  TempDir dir;
  make_maildir(dir, "Maildir");
  dir.write("mess", "body\n");
  auto mess = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(mess);
  MaildirWriter writer("mx");
  auto file = writer.deliver((dir.path() / "Maildir").string(), "H: 1\n", mess->get(), 6);
  REQUIRE_FALSE(file);
  CHECK(file.error().temporary_failure());
  CHECK(file.error().message() == "read message: it ends after 5 of 6 bytes");
  CHECK(names_in(dir.path() / "Maildir/tmp").empty());
  CHECK(names_in(dir.path() / "Maildir/new").empty());
}

TEST_CASE("maildir: unique names follow the standard shape with a safe host part") {
  CHECK(maildir_host("mx.example.test") == "mx.example.test");
  CHECK(maildir_host("a/b:c") == "a\\057b\\072c");
  MaildirWriter writer("a/b:c");
  std::string one = writer.unique_name();
  std::string two = writer.unique_name();
  CHECK(one != two);
  CHECK(one.find(".M") != std::string::npos);
  CHECK(one.find(fmt::format("P{}Q1.", ::getpid())) != std::string::npos);
  CHECK(one.ends_with(".a\\057b\\072c"));
  CHECK(two.find(fmt::format("P{}Q2.", ::getpid())) != std::string::npos);
}

TEST_CASE("maildir: the name in new/ states the file size (S=) and the POP3 size (W=)") {
  TempDir dir;
  make_maildir(dir, "Maildir");
  // Two bare LFs in the header, one CRLF and one bare LF in the message, no final newline.
  dir.write("mess", "a\r\nb\nno end");
  auto mess = open_file((dir.path() / "mess").string(), O_RDONLY);
  REQUIRE(mess);
  MaildirWriter writer("mx");
  auto file = writer.deliver((dir.path() / "Maildir").string(), "H: 1\nH: 2\n", mess->get(), 11);
  REQUIRE(file);
  uint64_t bytes = 10 + 11;
  uint64_t octets = bytes + 3 + 2;  // three bare LFs, and the CRLF ending the last line
  CHECK(file->bytes == bytes);
  CHECK(file->octets == octets);
  CHECK(file->name.ends_with(fmt::format(",S={},W={}", bytes, octets)));
  CHECK(names_in(dir.path() / "Maildir/new") == std::vector<std::string>{file->name});
  NameSizes sizes = parse_name_sizes(file->name + ":2,S");
  CHECK(sizes.bytes == bytes);
  CHECK(sizes.octets == octets);
}

TEST_CASE("maildir: CrlfSize counts the CRLF form, whatever the chunking") {
  auto octets = [](std::initializer_list<std::string_view> chunks) {
    CrlfSize size;
    for (auto c : chunks) size.feed(c);
    return size.octets();
  };
  CHECK(octets({}) == 0);
  CHECK(octets({"\n"}) == 2);
  CHECK(octets({"a\r\n"}) == 3);
  CHECK(octets({"a\r", "\n"}) == 3);  // a CRLF split between two chunks stays one CRLF
  CHECK(octets({"a\n", "\nb\n"}) == 8);
  CHECK(octets({"a\rb\n"}) == 5);     // a bare CR is a byte like any other
  CHECK(octets({"abc"}) == 5);        // the last line gets its CRLF
  CHECK(octets({"abc\r"}) == 5);      // ... or only the LF after a final CR
}

TEST_CASE("maildir: sizes in a name are read only from well-formed fields") {
  CHECK(parse_name_sizes("1.M2P3Q4.mx,S=100,W=104:2,S").octets == 104u);
  CHECK(parse_name_sizes("1.M2P3Q4.mx,S=100,W=104:2,S").bytes == 100u);
  CHECK_FALSE(parse_name_sizes("1.M2P3Q4.mx").octets);
  CHECK_FALSE(parse_name_sizes("1.M2P3Q4.mx,W=12x").octets);
  CHECK_FALSE(parse_name_sizes("1.M2P3Q4.mx,W=").octets);
  CHECK_FALSE(parse_name_sizes("1.M2P3Q4.mx:2,W=5").octets);  // in the info, not the name
  CHECK_FALSE(parse_name_sizes("1.M2P3Q4.mx,W=99999999999999999999").octets);
}
