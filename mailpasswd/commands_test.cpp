// mailpasswd/commands_test.cpp: mailpasswd's commands against a real prefix in a temp dir;
// the argument parser; reading a password from a pipe; creating a mailbox.
#include "mailpasswd/commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/apop_seal.h"
#include "common/fd.h"
#include "common/password.h"
#include "common/recipients.h"
#include "common/test_util.h"
#include "mailpasswd/mailbox.h"
#include "mailpasswd/password_input.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

// A prefix with control/rcpthosts, entered for the test's lifetime.
struct Prefix {
  Prefix() : cd(dir.path()) { dir.write("control/rcpthosts", "example.test\n.example.org\n"); }
  TempDir dir;
  ScopedChdir cd;
};

PasswordSource fixed(std::string password, int* calls = nullptr) {
  return [password, calls](std::string_view) -> Result<Secret> {
    if (calls != nullptr) ++*calls;
    return Secret(password);
  };
}

Result<std::string> run(std::vector<std::string> args, const PasswordSource& password = fixed("pw-1")) {
  auto request = parse_request(args);
  if (!request) return request.error();
  return run_request(*request, password);
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<Account> accounts_on_disk() {
  auto accounts = load_accounts(kAccountsPath);
  REQUIRE(accounts);
  return *accounts;
}

}  // namespace

TEST_CASE("mailpasswd: add creates the account, both files and the Maildir with their modes") {
  Prefix p;
  ::umask(077);  // modes must not depend on it
  auto out = run({"add", "alice@example.test", "--plan", "business", "--quota=1000"});
  ::umask(022);
  REQUIRE(out);
  CHECK(*out == "added alice@example.test; mailbox mail/example.test/alice/Maildir\n");
  auto accounts = accounts_on_disk();
  REQUIRE(accounts.size() == 1);
  CHECK(accounts[0].address == "alice@example.test");
  CHECK(accounts[0].plan == "business");
  CHECK(accounts[0].quota == 1000u);
  CHECK_FALSE(accounts[0].apop);
  CHECK(verify_password(accounts[0].hash, "pw-1"));
  CHECK(p.dir.read("users/recipients") == "alice@example.test\n");
  CHECK(mode_of("users/accounts") == 0600);
  CHECK(mode_of("users/recipients") == 0644);
  CHECK(mode_of("users/.lock") == 0600);
  for (const char* d : {"mail", "mail/example.test", "mail/example.test/alice"}) CHECK(mode_of(d) == 0750);
  for (const char* d : {"Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"})
    CHECK(mode_of(std::string("mail/example.test/alice/") + d) == 0700);
  struct stat st;
  REQUIRE(::stat("mail/example.test/alice/Maildir/new", &st) == 0);
  auto owner = mailbox_owner();
  CHECK(st.st_uid == (owner ? owner->uid : ::geteuid()));
}

TEST_CASE("mailpasswd: addresses are taken in any case and stored lowercase") {
  Prefix p;
  REQUIRE(run({"add", "Bob@Example.TEST"}));
  CHECK(accounts_on_disk()[0].address == "bob@example.test");
  CHECK(exists("mail/example.test/bob/Maildir/new"));
}

TEST_CASE("mailpasswd: a second add of the same address is refused (100) and changes nothing") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test"}));
  std::string before = p.dir.read("users/accounts");
  int calls = 0;
  auto again = run({"add", "alice@example.test"}, fixed("other", &calls));
  REQUIRE_FALSE(again);
  CHECK(exit_code_for(again.error()) == 100);
  CHECK(again.error().message() == "alice@example.test: account exists");
  CHECK(calls == 0);  // refused before asking for a password
  CHECK(p.dir.read("users/accounts") == before);
}

TEST_CASE("mailpasswd: a domain outside control/rcpthosts is refused (100)") {
  Prefix p;
  auto out = run({"add", "alice@elsewhere.test"});
  REQUIRE_FALSE(out);
  CHECK(exit_code_for(out.error()) == 100);
  CHECK(out.error().message() == "alice@elsewhere.test: domain elsewhere.test is not in control/rcpthosts");
  CHECK_FALSE(exists("mail"));
  CHECK_FALSE(exists("users/accounts"));
  // ".example.org" matches subdomains only, as in smtpd.
  CHECK(run({"add", "a@sub.example.org"}));
  CHECK_FALSE(run({"add", "a@example.org"}));
}

TEST_CASE("mailpasswd: a bad address or a refused password is permanent and writes nothing") {
  Prefix p;
  for (const char* bad : {"alice", "../x@example.test", "a/b@example.test", ".a@example.test", "a@b@example.test"}) {
    auto out = run({"add", bad});
    REQUIRE_FALSE(out);
    CHECK(exit_code_for(out.error()) == 100);
  }
  auto empty = run({"add", "alice@example.test"}, fixed(""));
  REQUIRE_FALSE(empty);
  CHECK(exit_code_for(empty.error()) == 100);
  CHECK_FALSE(exists("users/accounts"));
}

TEST_CASE("mailpasswd: del removes the account and keeps the mailbox") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test"}));
  REQUIRE(run({"add", "bob@example.test"}));
  p.dir.write("mail/example.test/alice/Maildir/new/1.msg", "hello\n");
  auto out = run({"del", "alice@example.test"});
  REQUIRE(out);
  CHECK(*out == "deleted alice@example.test; its mailbox mail/example.test/alice/Maildir stays on disk\n");
  REQUIRE(accounts_on_disk().size() == 1);
  CHECK(accounts_on_disk()[0].address == "bob@example.test");
  CHECK(p.dir.read("users/recipients") == "bob@example.test\n");
  CHECK(p.dir.read("mail/example.test/alice/Maildir/new/1.msg") == "hello\n");
  CHECK(mode_of("users/accounts") == 0600);
  CHECK(mode_of("users/recipients") == 0644);
  auto again = run({"del", "alice@example.test"});
  REQUIRE_FALSE(again);
  CHECK(exit_code_for(again.error()) == 100);
  CHECK(again.error().message() == "alice@example.test: no such account");
}

TEST_CASE("mailpasswd: add after del reuses the Maildir as it is") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test"}));
  p.dir.write("mail/example.test/alice/Maildir/cur/1.msg:2,S", "kept\n");
  REQUIRE(run({"del", "alice@example.test"}));
  REQUIRE(run({"add", "alice@example.test"}));
  CHECK(p.dir.read("mail/example.test/alice/Maildir/cur/1.msg:2,S") == "kept\n");
}

TEST_CASE("mailpasswd: passwd changes the hash and keeps every other field") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test", "--plan", "reseller", "--quota", "42"}));
  REQUIRE(run({"add", "bob@example.test"}));
  std::string bob_hash = accounts_on_disk()[1].hash;
  auto out = run({"passwd", "alice@example.test"}, fixed("pw-2"));
  REQUIRE(out);
  CHECK(*out == "changed the password of alice@example.test\n");
  auto accounts = accounts_on_disk();
  CHECK(verify_password(accounts[0].hash, "pw-2"));
  CHECK_FALSE(verify_password(accounts[0].hash, "pw-1"));
  CHECK(accounts[0].plan == "reseller");
  CHECK(accounts[0].quota == 42u);
  CHECK(accounts[1].hash == bob_hash);
  auto missing = run({"passwd", "carol@example.test"});
  REQUIRE_FALSE(missing);
  CHECK(exit_code_for(missing.error()) == 100);
}

TEST_CASE("mailpasswd: rewrites keep the APOP fields") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test"}));
  REQUIRE(run({"add", "bob@example.test"}));
  auto accounts = accounts_on_disk();
  accounts[0].apop = true;
  accounts[0].apop_secret = "c2VhbGVk";
  REQUIRE(replace_file(kAccountsPath, format_accounts(accounts), 0600));
  REQUIRE(run({"del", "bob@example.test"}));
  REQUIRE(run({"add", "carol@example.test"}));
  auto after = accounts_on_disk();
  CHECK(after[0] == accounts[0]);
}

TEST_CASE("mailpasswd: apop on seals the password under a new 0600 key; apop off erases it") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test"}, fixed("alice pw")));
  REQUIRE(run({"add", "bob@example.test"}, fixed("bob pw")));
  CHECK_FALSE(exists(kApopEnabledPath));
  CHECK_FALSE(exists(kApopKeyPath));

  auto on = run({"apop", "on", "Alice@example.test"}, fixed("alice pw"));
  REQUIRE(on);
  CHECK(*on == "APOP on for alice@example.test\n");
  CHECK(mode_of(kApopKeyPath) == 0600);
  CHECK(mode_of(kApopEnabledPath) == 0644);
  CHECK(p.dir.read(kApopEnabledPath).empty());
  auto accounts = accounts_on_disk();
  CHECK(accounts[0].apop);
  CHECK(p.dir.read(kAccountsPath).find("alice pw") == std::string::npos);
  auto key = load_apop_key(kApopKeyPath);
  REQUIRE(key);
  CHECK(unseal_apop_secret(*key, accounts[0].apop_secret)->view() == "alice pw");
  CHECK_FALSE(accounts[1].apop);
  CHECK(*run({"list"}) == "alice@example.test plan=- quota=- apop=on\nbob@example.test plan=- quota=- apop=off\n");

  REQUIRE(run({"apop", "on", "bob@example.test"}, fixed("bob pw")));
  REQUIRE(run({"apop", "off", "alice@example.test"}));
  accounts = accounts_on_disk();
  CHECK_FALSE(accounts[0].apop);
  CHECK(accounts[0].apop_secret.empty());
  CHECK(exists(kApopEnabledPath));  // bob still has it on
  REQUIRE(run({"del", "bob@example.test"}));
  CHECK_FALSE(exists(kApopEnabledPath));  // nobody has it on any more
  CHECK(exists(kApopKeyPath));            // the key stays
}

TEST_CASE("mailpasswd: apop on wants the account's own password (100 otherwise)") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test"}, fixed("alice pw")));
  auto wrong = run({"apop", "on", "alice@example.test"}, fixed("not it"));
  REQUIRE_FALSE(wrong);
  CHECK(exit_code_for(wrong.error()) == 100);
  CHECK_FALSE(accounts_on_disk()[0].apop);
  CHECK_FALSE(exists(kApopEnabledPath));
  auto missing = run({"apop", "on", "nobody@example.test"}, fixed("x"));
  REQUIRE_FALSE(missing);
  CHECK(exit_code_for(missing.error()) == 100);
  CHECK(exit_code_for(run({"apop", "off", "nobody@example.test"}).error()) == 100);
}

TEST_CASE("mailpasswd: passwd on an APOP account seals the new password in place of the old") {
  Prefix p;
  REQUIRE(run({"add", "alice@example.test"}, fixed("old pw")));
  REQUIRE(run({"apop", "on", "alice@example.test"}, fixed("old pw")));
  auto out = run({"passwd", "alice@example.test"}, fixed("new pw"));
  REQUIRE(out);
  CHECK(*out == "changed the password of alice@example.test (and its APOP secret)\n");
  auto account = accounts_on_disk()[0];
  CHECK(account.apop);
  CHECK(verify_password(account.hash, "new pw"));
  CHECK(unseal_apop_secret(*load_apop_key(kApopKeyPath), account.apop_secret)->view() == "new pw");
}

TEST_CASE("mailpasswd: list shows address, plan, quota and apop, never a hash") {
  Prefix p;
  CHECK(*run({"list"}) == "");
  REQUIRE(run({"add", "bob@example.test", "--plan", "personal"}));
  REQUIRE(run({"add", "alice@example.test", "--quota", "536870912"}));
  auto out = run({"list"});
  REQUIRE(out);
  CHECK(*out == "bob@example.test plan=personal quota=- apop=off\n"
                "alice@example.test plan=- quota=536870912 apop=off\n");
  CHECK(out->find("argon2") == std::string::npos);
}

TEST_CASE("mailpasswd: a broken accounts file is a temporary failure (111)") {
  Prefix p;
  p.dir.write("users/accounts", "not an account\n");
  for (std::vector<std::string> args : {std::vector<std::string>{"list"}, {"add", "alice@example.test"},
                                        {"del", "alice@example.test"}}) {
    auto out = run(args);
    REQUIRE_FALSE(out);
    CHECK(exit_code_for(out.error()) == 111);
  }
  CHECK(p.dir.read("users/accounts") == "not an account\n");
}

TEST_CASE("mailpasswd: recipients follow every change, sorted") {
  Prefix p;
  for (const char* a : {"zed@example.test", "alice@example.test", "m@sub.example.org"}) REQUIRE(run({"add", a}));
  CHECK(p.dir.read("users/recipients") == "alice@example.test\nm@sub.example.org\nzed@example.test\n");
  auto r = Recipients::load(kRecipientsPath);
  REQUIRE(r);
  CHECK(r->contains("zed@example.test"));
}

TEST_CASE("mailpasswd: argument parsing") {
  auto add = parse_request({"add", "a@example.test", "--quota", "-", "--plan=dedicated"});
  REQUIRE(add);
  CHECK(add->verb == Verb::kAdd);
  CHECK(add->plan == "dedicated");
  CHECK_FALSE(add->quota);
  auto plain = parse_request({"add", "a@example.test"});
  REQUIRE(plain);
  CHECK(plain->plan == "-");
  CHECK(parse_request({"list"})->verb == Verb::kList);
  CHECK(parse_request({"del", "a@example.test"})->verb == Verb::kDel);
  CHECK(parse_request({"passwd", "a@example.test"})->verb == Verb::kPasswd);
  CHECK(parse_request({"apop", "on", "a@example.test"})->verb == Verb::kApopOn);
  CHECK(parse_request({"apop", "off", "A@example.test"})->address == "a@example.test");
  for (std::vector<std::string> bad :
       {std::vector<std::string>{}, {"frob"}, {"add"}, {"add", "a@x.test", "b@x.test"}, {"list", "a@x.test"},
        {"add", "a@x.test", "--plan"}, {"add", "a@x.test", "--plan", "gold"}, {"add", "a@x.test", "--plan", "-"},
        {"add", "a@x.test", "--quota", "10M"}, {"add", "a@x.test", "--quota", "-5"},
        {"add", "a@x.test", "--quota="}, {"del", "a@x.test", "--plan", "personal"}, {"add", "a@x.test", "-v"},
        {"apop", "a@x.test"}, {"apop", "maybe", "a@x.test"}, {"apop", "on"}, {"apop", "off", "a@x.test", "b@x.test"},
        {"apop", "on", "a@x.test", "--plan", "personal"}}) {
    auto r = parse_request(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().permanent_failure());
  }
}

namespace {
// Feeds `input` through a pipe and reads a password line from it.
Result<Secret> password_from(std::string_view input, std::string* left = nullptr) {
  auto pipe = make_pipe();
  REQUIRE(pipe);
  REQUIRE(write_all(pipe->write.get(), input));
  REQUIRE(pipe->write.close());
  auto line = read_password_line(pipe->read.get());
  if (left != nullptr) {
    auto rest = read_file(fmt::format("/proc/self/fd/{}", pipe->read.get()), 1 << 20);
    REQUIRE(rest);
    *left = *rest;
  }
  return line;
}
}  // namespace

TEST_CASE("mailpasswd: the password is the first line of input, CR and LF stripped") {
  std::string left;
  auto pw = password_from("secret one\r\nsecond line\n", &left);
  REQUIRE(pw);
  CHECK(pw->view() == "secret one");
  CHECK(left == "second line\n");  // nothing after the line is consumed
  CHECK(password_from("no newline")->view() == "no newline");
  CHECK(password_from("lf only\n")->view() == "lf only");
  CHECK(password_from(std::string(kMaxPassword, 'p') + "\r\n")->size() == kMaxPassword);
}

TEST_CASE("mailpasswd: no input, an empty line, a long line or NUL/CR inside are refused") {
  using namespace std::string_literals;
  for (const std::string& bad : {""s, "\n"s, "\r\n"s, std::string(kMaxPassword + 1, 'p') + "\n",
                                 std::string(5000, 'p'), "a\0b\n"s, "a\rb\n"s}) {
    auto pw = password_from(bad);
    REQUIRE_FALSE(pw);
    CHECK(pw.error().permanent_failure());
  }
}

TEST_CASE("mailpasswd: a symlink on the way to a mailbox is refused") {
  TempDir dir;
  TempDir elsewhere;
  ScopedChdir cd(dir.path());
  REQUIRE(::mkdir("mail", 0750) == 0);
  REQUIRE(::symlink(elsewhere.path().c_str(), "mail/example.test") == 0);
  Status s = create_mailbox("example.test", "alice", std::nullopt);
  CHECK_FALSE(s);
  CHECK_FALSE(exists((elsewhere.path() / "alice").string()));
}
