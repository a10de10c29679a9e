// relayctl/relay_db_test.cpp: the relay db in a real temp dir: canonical IPs, atomic entries,
// expiry deciding, malformed entries, list order, purge.
#include "relayctl/relay_db.h"

#include <sys/stat.h>
#include <utime.h>

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

constexpr time_t kNow = 1700000000;

struct Store {
  TempDir dir;
  RelayDb db{(dir.path() / "relay").string()};
  Store() { std::filesystem::create_directory(dir.path() / "relay"); }
  bool exists(const std::string& name) const { return std::filesystem::exists(dir.path() / "relay" / name); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() / "relay"))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace

TEST_CASE("relay_db: canonical_ip gives one spelling per address") {
  CHECK(canonical_ip("192.0.2.1") == "192.0.2.1");
  CHECK(canonical_ip("::1") == "::1");
  CHECK(canonical_ip("2001:DB8:0:0:0:0:0:1") == "2001:db8::1");
  CHECK(canonical_ip("2001:0db8::0001") == "2001:db8::1");
  CHECK(canonical_ip("::ffff:192.0.2.1") == "192.0.2.1");  // IPv4-mapped: the IPv4 form
  CHECK(canonical_ip("::FFFF:c000:0201") == "192.0.2.1");
  CHECK(canonical_ip("::192.0.2.1") == "::192.0.2.1");    // IPv4-compatible is not mapped
}

TEST_CASE("relay_db: canonical_ip refuses what is not an IP address, so no path can escape") {
  for (std::string_view bad :
       {"", ".", "..", "../etc/passwd", "/", "a/b", "192.0.2.1/24", "192.0.2", "192.0.2.256", "192.0.2.01",
        " 192.0.2.1", "192.0.2.1 ", "[::1]", "fe80::1%eth0", "localhost", "::ffff:192.0.2.1/../x",
        "1.2.3.4\n", "0x7f.0.0.1", "2001:db8::1::2"}) {
    INFO(bad);
    CHECK_FALSE(canonical_ip(bad));
  }
  CHECK_FALSE(canonical_ip(std::string_view("127.0.0.1\0x", 11)));
  CHECK_FALSE(canonical_ip(std::string(100, '1')));
}

TEST_CASE("relay_db: an entry is formatted and parsed back; anything else is malformed") {
  RelayEntry e{"192.0.2.1", kNow + 1200, kNow, "alice@example.test"};
  CHECK(format_relay_entry(e) == "1700001200 1700000000 alice@example.test\n");
  CHECK(parse_relay_entry("192.0.2.1", format_relay_entry(e)) == e);
  for (std::string_view bad : {"", "1700001200 1700000000 alice\n\n", "1700001200 1700000000 alice",
                               "1700001200 1700000000\n", "1700001200  1700000000 a\n", "-5 1 a\n", "x 1 a\n",
                               "01 1 a\n", "1 1 a b\n", "1 1 \n", "99999999999999999999 1 a\n"}) {
    INFO(bad);
    CHECK_FALSE(parse_relay_entry("192.0.2.1", bad));
  }
}

TEST_CASE("relay_db: allow then check: live until the expiry, not at it") {
  Store s;
  REQUIRE(s.db.allow("192.0.2.1", "alice@example.test", kNow, kNow + 1200));
  CHECK(s.dir.read("relay/192.0.2.1") == "1700001200 1700000000 alice@example.test\n");
  CHECK(*s.db.check("192.0.2.1", kNow) == true);
  CHECK(*s.db.check("192.0.2.1", kNow + 1199) == true);
  CHECK(*s.db.check("192.0.2.1", kNow + 1200) == false);  // "not in the future" is no entry
  CHECK(*s.db.check("192.0.2.2", kNow) == false);         // no entry
  struct stat st{};
  REQUIRE(::stat((s.dir.path() / "relay/192.0.2.1").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(s.names() == std::vector<std::string>{"192.0.2.1"});  // no temp file left behind
}

TEST_CASE("relay_db: IPv4-mapped and IPv4 spellings are one entry") {
  Store s;
  REQUIRE(s.db.allow("::ffff:192.0.2.9", "", kNow, kNow + 60));
  CHECK(s.exists("192.0.2.9"));
  CHECK(*s.db.check("192.0.2.9", kNow) == true);
  CHECK(*s.db.check("::ffff:192.0.2.9", kNow) == true);
  CHECK(s.dir.read("relay/192.0.2.9") == "1700000060 1700000000 -\n");  // no login: "-"
}

TEST_CASE("relay_db: the expiry field decides, not the file's mtime") {
  Store s;
  s.dir.write("relay/192.0.2.1", "1700000100 1699999000 bob\n");
  struct utimbuf old_times{100, 100};  // an ancient mtime does not expire a live entry
  REQUIRE(::utime((s.dir.path() / "relay/192.0.2.1").c_str(), &old_times) == 0);
  CHECK(*s.db.check("192.0.2.1", kNow) == true);
  s.dir.write("relay/192.0.2.2", "1699999999 1699990000 bob\n");  // fresh file, past expiry
  CHECK(*s.db.check("192.0.2.2", kNow) == false);
}

TEST_CASE("relay_db: a renewed entry replaces the old one") {
  Store s;
  REQUIRE(s.db.allow("192.0.2.1", "a", kNow - 5000, kNow - 3800));
  CHECK(*s.db.check("192.0.2.1", kNow) == false);
  REQUIRE(s.db.allow("192.0.2.1", "b", kNow, kNow + 1200));
  CHECK(*s.db.check("192.0.2.1", kNow) == true);
  CHECK(s.dir.read("relay/192.0.2.1") == "1700001200 1700000000 b\n");
}

TEST_CASE("relay_db: allow refuses a bad IP or login, permanently, writing nothing") {
  Store s;
  Status bad_ip = s.db.allow("../x", "a", kNow, kNow + 1);
  CHECK(bad_ip.permanent_failure());
  CHECK(s.db.allow("192.0.2.1", "a b", kNow, kNow + 1).permanent_failure());
  CHECK(s.db.allow("192.0.2.1", "a\nb", kNow, kNow + 1).permanent_failure());
  CHECK(s.db.allow("192.0.2.1", std::string(kMaxRelayLogin + 1, 'a'), kNow, kNow + 1).permanent_failure());
  CHECK(s.db.check("..", kNow).error().permanent_failure());
  CHECK(s.names().empty());
}

TEST_CASE("relay_db: a malformed entry is no entry") {
  Store s;
  s.dir.write("relay/192.0.2.1", "garbage\n");
  s.dir.write("relay/192.0.2.2", "");
  s.dir.write("relay/192.0.2.3", std::string(kMaxRelayEntry + 1, '1'));
  for (const char* ip : {"192.0.2.1", "192.0.2.2", "192.0.2.3"}) CHECK(*s.db.check(ip, kNow) == false);
  CHECK(s.db.list()->empty());
}

TEST_CASE("relay_db: a missing directory is an empty db; an unreadable one an error") {
  TempDir dir;
  RelayDb missing((dir.path() / "relay").string());
  CHECK(*missing.check("192.0.2.1", kNow) == false);
  CHECK(missing.list()->empty());
  CHECK(*missing.purge(kNow) == 0);
  dir.write("file", "x");
  RelayDb not_a_dir((dir.path() / "file").string());
  auto checked = not_a_dir.check("192.0.2.1", kNow);
  REQUIRE_FALSE(checked);
  CHECK(checked.error().temporary_failure());
  CHECK_FALSE(not_a_dir.allow("192.0.2.1", "a", kNow, kNow + 1));
}

TEST_CASE("relay_db: list gives every well-formed entry sorted by address") {
  Store s;
  REQUIRE(s.db.allow("2001:db8::1", "v6", kNow, kNow + 10));
  REQUIRE(s.db.allow("192.0.2.10", "ten", kNow, kNow + 10));
  REQUIRE(s.db.allow("192.0.2.9", "nine", kNow - 100, kNow - 10));  // expired, still listed
  REQUIRE(s.db.allow("10.0.0.1", "", kNow, kNow + 10));
  s.dir.write("relay/192.0.2.50", "bad\n");
  s.dir.write("relay/notes", "1700001200 1700000000 x\n");  // not an IP name: not an entry
  std::filesystem::create_directory(s.dir.path() / "relay/192.0.2.60");
  auto entries = s.db.list();
  REQUIRE(entries);
  std::vector<std::string> ips;
  for (const auto& e : *entries) ips.push_back(e.ip);
  CHECK(ips == std::vector<std::string>{"10.0.0.1", "192.0.2.9", "192.0.2.10", "2001:db8::1"});
  CHECK((*entries)[1] == RelayEntry{"192.0.2.9", kNow - 10, kNow - 100, "nine"});
}

TEST_CASE("relay_db: purge removes expired and malformed entries and stale temp files only") {
  Store s;
  REQUIRE(s.db.allow("192.0.2.1", "live", kNow, kNow + 1));
  REQUIRE(s.db.allow("192.0.2.2", "expired", kNow - 100, kNow));
  REQUIRE(s.db.allow("192.0.2.3", "expired", kNow - 100, kNow - 50));
  s.dir.write("relay/192.0.2.4", "garbage\n");
  s.dir.write("relay/notes", "kept\n");
  s.dir.write("relay/192.0.2.5.tmp123", "stale temp\n");
  s.dir.write("relay/192.0.2.6.tmp456", "fresh temp\n");
  struct utimbuf old_times{kNow - 1000, kNow - 1000};
  REQUIRE(::utime((s.dir.path() / "relay/192.0.2.5.tmp123").c_str(), &old_times) == 0);
  struct utimbuf new_times{kNow, kNow};
  REQUIRE(::utime((s.dir.path() / "relay/192.0.2.6.tmp456").c_str(), &new_times) == 0);
  auto removed = s.db.purge(kNow);
  REQUIRE(removed);
  CHECK(*removed == 3);
  CHECK(s.names() == std::vector<std::string>{"192.0.2.1", "192.0.2.6.tmp456", "notes"});
  CHECK(*s.db.check("192.0.2.1", kNow) == true);
  CHECK(*s.db.purge(kNow) == 0);
}
