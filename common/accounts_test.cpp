// common/accounts_test.cpp: the users/accounts format, address rules, and users/recipients.
#include "common/accounts.h"

#include <catch2/catch.hpp>

#include "common/recipients.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {
constexpr std::string_view kHash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

Account account(std::string address) {
  Account a;
  a.address = std::move(address);
  a.hash = kHash;
  return a;
}

// The first error message of parsing `text`, or "" when it parses.
std::string parse_error(std::string_view text) {
  auto parsed = parse_accounts(text);
  return parsed ? "" : parsed.error().message();
}
}  // namespace

TEST_CASE("accounts: a line holds address, hash, plan, quota, apop and the apop secret") {
  std::string text = fmt::format("alice@example.test:{}:personal:-:0:\n"
                                 "bob@example.test:!:-:536870912:1:c2VhbGVk\n",
                                 kHash);
  auto parsed = parse_accounts(text);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 2);
  const Account& alice = (*parsed)[0];
  CHECK(alice.address == "alice@example.test");
  CHECK(alice.hash == kHash);
  CHECK(alice.plan == "personal");
  CHECK_FALSE(alice.quota);
  CHECK_FALSE(alice.apop);
  CHECK(alice.apop_secret.empty());
  const Account& bob = (*parsed)[1];
  CHECK(bob.hash == "!");
  CHECK(bob.plan == "-");
  CHECK(bob.quota == 536870912u);
  CHECK(bob.apop);
  CHECK(bob.apop_secret == "c2VhbGVk");
}

TEST_CASE("accounts: comments and blank lines are skipped, a missing final newline is fine") {
  std::string text = fmt::format("# accounts\n\n   \n#x:y\nalice@example.test:{}:-:-:0:", kHash);
  auto parsed = parse_accounts(text);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  CHECK((*parsed)[0].address == "alice@example.test");
  CHECK(parse_accounts("")->empty());
}

TEST_CASE("accounts: format and parse round-trip, and formatting again gives the same bytes") {
  std::vector<Account> accounts{account("alice@example.test"), account("bob.smith+tag@example.org")};
  accounts[0].plan = "business";
  accounts[0].quota = 805306368;
  accounts[1].plan = "dedicated";
  accounts[1].quota = 0;
  accounts[1].apop = true;
  accounts[1].apop_secret = "bm9uY2UuY2lwaGVy";
  std::string text = format_accounts(accounts);
  CHECK(text.starts_with("#"));
  CHECK(text.find("alice@example.test:$argon2id$v=19$m=65536,t=2,p=1$c2Fsd") != std::string::npos);
  CHECK(text.find(":business:805306368:0:\n") != std::string::npos);
  CHECK(text.find(":dedicated:0:1:bm9uY2UuY2lwaGVy\n") != std::string::npos);
  auto parsed = parse_accounts(text);
  REQUIRE(parsed);
  CHECK(*parsed == accounts);
  CHECK(format_accounts(*parsed) == text);
  CHECK(format_accounts({}) == format_accounts(*parse_accounts(format_accounts({}))));
}

TEST_CASE("accounts: a bad line is an error naming its line number") {
  std::string good = fmt::format("alice@example.test:{}:-:-:0:\n", kHash);
  CHECK(parse_error("# one\n\n" + fmt::format("x@example.test:{}:-:-:0\n", kHash)) ==
        "line 3: expected 6 fields separated by ':'");
  CHECK(parse_error(good + fmt::format("x@example.test:{}:-:-:0::\n", kHash)) ==
        "line 2: expected 6 fields separated by ':'");
  CHECK(parse_error(good + fmt::format("Alice@example.test:{}:-:-:0:\n", kHash)).starts_with("line 2: "));
  CHECK(parse_error(good + "x@example.test::-:-:0:\n") == "line 2: bad password hash");
  CHECK(parse_error(good + "x@example.test:a b:-:-:0:\n") == "line 2: bad password hash");
  CHECK(parse_error(good + "x@example.test:!:gold:-:0:\n") == "line 2: unknown plan 'gold'");
  CHECK(parse_error(good + "x@example.test:!:-:10M:0:\n") == "line 2: quota is neither bytes nor '-'");
  CHECK(parse_error(good + "x@example.test:!:-:010:0:\n") == "line 2: quota is neither bytes nor '-'");
  CHECK(parse_error(good + "x@example.test:!:-:-1:0:\n") == "line 2: quota is neither bytes nor '-'");
  CHECK(parse_error(good + "x@example.test:!:-:99999999999999999999:0:\n") == "line 2: quota is neither bytes nor '-'");
  CHECK(parse_error(good + "x@example.test:!:-:-:yes:\n") == "line 2: apop is neither 0 nor 1");
  CHECK(parse_error(good + "x@example.test:!:-:-:0:secret\n") ==
        "line 2: APOP secret must be set exactly when apop is 1");
  CHECK(parse_error(good + "x@example.test:!:-:-:1:\n") == "line 2: APOP secret must be set exactly when apop is 1");
  CHECK(parse_error(good + "x@example.test:!:-:-:0:\r\n") == "line 2: bad APOP secret");
  CHECK(parse_error(good + "\n" + good) == "line 3: alice@example.test appears twice");
}

TEST_CASE("accounts: address validation") {
  for (std::string_view ok : {"alice@example.test", "a@b.c", "first.last@example.test", "a_b+c-d@example.test",
                              "0123@sub.example.test"})
    CHECK(check_account_address(ok));
  CHECK(check_account_address(std::string(64, 'a') + "@example.test"));
  CHECK_FALSE(check_account_address(std::string(65, 'a') + "@example.test"));
  std::string long_domain;
  for (int i = 0; i < 4; ++i) long_domain += std::string(60, 'd') + ".";
  long_domain += "test";  // 248 bytes
  CHECK(check_account_address("abcde@" + long_domain));     // 254 in all
  CHECK_FALSE(check_account_address("abcdef@" + long_domain));  // 255
  for (std::string_view bad : {"", "alice", "@example.test", "alice@", "Alice@example.test", "alice@Example.test",
                               ".alice@example.test", "alice.@example.test", "a..b@example.test",
                               "a/b@example.test", "../x@example.test", "a@b@example.test", "a b@example.test",
                               "a%b@example.test", "a!b@example.test", "alice@example.test.", "alice@-x.test",
                               "alice@[192.0.2.1]", "alice@exa_mple.test", "alice@.."})
    CHECK_FALSE(check_account_address(bad));
}

TEST_CASE("accounts: find, add and remove") {
  std::vector<Account> accounts;
  CHECK(add_account(accounts, account("alice@example.test")));
  CHECK(add_account(accounts, account("bob@example.test")));
  Status dup = add_account(accounts, account("alice@example.test"));
  CHECK(dup.permanent_failure());
  CHECK(dup.message() == "alice@example.test: account exists");
  CHECK(add_account(accounts, account("Carol@example.test")).permanent_failure());
  REQUIRE(find_account(accounts, "bob@example.test") != nullptr);
  CHECK(find_account(accounts, "carol@example.test") == nullptr);
  find_account(accounts, "bob@example.test")->plan = "reseller";
  CHECK(accounts[1].plan == "reseller");
  CHECK(remove_account(accounts, "alice@example.test"));
  CHECK_FALSE(remove_account(accounts, "alice@example.test"));
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].address == "bob@example.test");
}

TEST_CASE("accounts: plans are the four of seed 002, or '-'") {
  for (std::string_view p : {"personal", "business", "reseller", "dedicated", "-"}) CHECK(valid_plan(p));
  for (std::string_view p : {"", "Personal", "gold", "personal "}) CHECK_FALSE(valid_plan(p));
}

TEST_CASE("accounts: recipients are lowercase, sorted bytewise, one a line") {
  std::vector<Account> accounts{account("zed@example.test"), account("Bob@Example.test"), account("alice@example.test"),
                                account("alice-x@example.test"), account("alice@example.org")};
  CHECK(recipients_text(accounts) ==
        "alice-x@example.test\nalice@example.org\nalice@example.test\nbob@example.test\nzed@example.test\n");
  CHECK(recipients_text({}).empty());
}

TEST_CASE("accounts: the recipients text is what Recipients looks up") {
  TempDir dir;
  std::vector<Account> accounts{account("zed@example.test"), account("alice@example.test"), account("m.x@example.org")};
  dir.write("recipients", recipients_text(accounts));
  auto r = Recipients::load((dir.path() / "recipients").string());
  REQUIRE(r);
  CHECK(r->size() == 3);
  for (const auto& a : accounts) CHECK(r->contains(a.address));
  CHECK(r->contains("ALICE@example.test"));
  CHECK_FALSE(r->contains("bob@example.test"));
}

TEST_CASE("accounts: load gives no accounts for a missing file and a temporary error for a broken one") {
  TempDir dir;
  auto missing = load_accounts((dir.path() / "accounts").string());
  REQUIRE(missing);
  CHECK(missing->empty());
  dir.write("accounts", "# header\nbroken line\n");
  auto broken = load_accounts((dir.path() / "accounts").string());
  REQUIRE_FALSE(broken);
  CHECK(broken.error().temporary_failure());
  CHECK(broken.error().message().ends_with("accounts line 2: expected 6 fields separated by ':'"));
}
