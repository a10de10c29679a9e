// pop3d/checkpassword_test.cpp: the checkpassword stage: fd 3 input, the check against a
// real accounts file, APOP on and off, POP before SMTP, the Maildir.
#include "pop3d/checkpassword.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/apop_seal.h"
#include "common/fd.h"
#include "common/test_util.h"
#include "pop3d/apop.h"
#include "pop3d/login_policy.h"
#include "pop3d/mailbox.h"
#include "relayctl/relay_db.h"

using namespace tikimail;
using namespace std::string_literals;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

Credentials creds(std::string user, std::string password, std::string timestamp = "") {
  auto c = parse_credentials(user + '\0' + password + '\0' + timestamp + '\0');
  REQUIRE(c);
  return std::move(*c);
}

// A prefix with two accounts: alice (APOP on, secret "alice pw") and bob (APOP off).
struct Prefix {
  TempDir dir;
  ScopedChdir cd{dir.path()};
  std::vector<Account> accounts;
  Prefix() {
    REQUIRE(::mkdir("control", 0755) == 0);
    auto key = load_or_create_apop_key(kApopKeyPath);
    REQUIRE(key);
    Account alice;
    alice.address = "alice@example.test";
    alice.hash = *hash_password("alice pw");
    alice.apop = true;
    alice.apop_secret = *seal_apop_secret(*key, "alice pw");
    Account bob;
    bob.address = "bob@example.test";
    bob.hash = *hash_password("bob pw");
    accounts = {alice, bob};
  }
  LoginCheck check(const Credentials& c) { return check_login(c, accounts, kApopKeyPath); }
};

constexpr std::string_view kStamp = "<4242.1700000000@mx.example.test>";

std::string digest(std::string_view secret) { return *apop_digest(kStamp, secret); }

}  // namespace

TEST_CASE("checkpassword: fd 3 carries exactly three NUL-terminated fields") {
  auto c = parse_credentials("alice@example.test\0pw word\0\0"s);
  REQUIRE(c);
  CHECK(c->user == "alice@example.test");
  CHECK(c->password.view() == "pw word");
  CHECK(c->method() == LoginMethod::kPass);
  auto a = parse_credentials("alice\0c4c9334bac560ecc979e58001b3e22fb\0<1.2@h>\0"s);
  REQUIRE(a);
  CHECK(a->method() == LoginMethod::kApop);
  CHECK(a->timestamp == "<1.2@h>");
  for (const std::string& bad : {""s, "alice"s, "alice\0pw\0"s, "alice\0pw\0ts"s, "alice\0pw\0\0extra"s,
                                 "a\0b\0c\0d\0"s, std::string(600, 'a') + "\0b\0\0"s}) {
    auto r = parse_credentials(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().permanent_failure());
  }
}

TEST_CASE("checkpassword: credentials are read from a pipe up to its end, at most 512 bytes") {
  auto pipe = make_pipe();
  REQUIRE(pipe);
  REQUIRE(write_all(pipe->write.get(), "bob@example.test\0bob pw\0\0"s));
  REQUIRE(pipe->write.close());
  auto c = read_credentials(pipe->read.get());
  REQUIRE(c);
  CHECK(c->password.view() == "bob pw");

  auto big = make_pipe();
  REQUIRE(big);
  REQUIRE(write_all(big->write.get(), std::string(513, 'x')));
  REQUIRE(big->write.close());
  CHECK_FALSE(read_credentials(big->read.get()));
}

TEST_CASE("checkpassword: USER/PASS checks the argon2 hash; the address is taken in any case") {
  Prefix p;
  auto ok = p.check(creds("bob@example.test", "bob pw"));
  CHECK(ok.verdict == Verdict::kOk);
  CHECK(ok.address == "bob@example.test");
  CHECK(p.check(creds("Bob@Example.TEST", "bob pw")).verdict == Verdict::kOk);
  CHECK(p.check(creds("bob@example.test", "bob PW")).verdict == Verdict::kWrong);
  CHECK(p.check(creds("bob@example.test", "")).verdict == Verdict::kWrong);
  CHECK(p.check(creds("alice@example.test", "alice pw")).verdict == Verdict::kOk);  // APOP on: PASS still works
}

TEST_CASE("checkpassword: an unknown or malformed account fails like a wrong password") {
  Prefix p;
  for (const char* user : {"carol@example.test", "", "bob", "../../etc/passwd", "bob@example.test/..", "a/b@x"}) {
    auto r = p.check(creds(user, "bob pw"));
    CHECK(r.verdict == Verdict::kWrong);
    CHECK(r.address.empty());
  }
}

TEST_CASE("checkpassword: APOP works only for an account with APOP on") {
  Prefix p;
  CHECK(p.check(creds("alice@example.test", digest("alice pw"), std::string(kStamp))).verdict == Verdict::kOk);
  CHECK(p.check(creds("alice@example.test", digest("wrong"), std::string(kStamp))).verdict == Verdict::kWrong);
  // bob's APOP is off: the right digest of the right password is still refused, as wrong.
  auto off = p.check(creds("bob@example.test", digest("bob pw"), std::string(kStamp)));
  CHECK(off.verdict == Verdict::kWrong);
  CHECK(off.why == "APOP is off");
  CHECK(p.check(creds("nobody@example.test", digest("x"), std::string(kStamp))).verdict == Verdict::kWrong);
}

TEST_CASE("checkpassword: APOP with a missing key or a tampered secret is temporary, not a pass") {
  Prefix p;
  p.accounts[0].apop_secret[10] = p.accounts[0].apop_secret[10] == 'A' ? 'B' : 'A';
  CHECK(p.check(creds("alice@example.test", digest("alice pw"), std::string(kStamp))).verdict == Verdict::kTemporary);
  Prefix q;
  REQUIRE(::unlink(kApopKeyPath) == 0);
  CHECK(q.check(creds("alice@example.test", digest("alice pw"), std::string(kStamp))).verdict == Verdict::kTemporary);
}

TEST_CASE("checkpassword: a login opens the relay for 20 minutes, POP3S only when configured") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  REQUIRE(::mkdir("relay", 0750) == 0);
  Log log("checkpassword-test");
  auto policy = RelayPolicy::load();
  REQUIRE(policy);
  CHECK(policy->window == 1200);
  CHECK_FALSE(policy->from_pop3s);
  CHECK(open_relay(*policy, "::ffff:192.0.2.7", "bob@example.test", false, 1000, log) == "opened");
  RelayDb db("relay");
  CHECK(*db.check("192.0.2.7", 1000 + 1199));
  CHECK_FALSE(*db.check("192.0.2.7", 1000 + 1200));
  CHECK(open_relay(*policy, "192.0.2.8", "bob@example.test", true, 1000, log) == "skipped-pop3s");
  CHECK_FALSE(*db.check("192.0.2.8", 1000));
  CHECK(open_relay(*policy, "unknown", "bob@example.test", false, 1000, log) == "no-ip");

  dir.write("control/relayfrompop3s", "1\n");
  dir.write("control/relaywindow", "60\n");
  auto pop3s = RelayPolicy::load();
  REQUIRE(pop3s);
  CHECK(open_relay(*pop3s, "192.0.2.8", "bob@example.test", true, 1000, log) == "opened");
  CHECK(*db.check("192.0.2.8", 1059));
  CHECK_FALSE(*db.check("192.0.2.8", 1060));
}

TEST_CASE("checkpassword: a relay db that cannot be written does not stop the login") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  Log log("checkpassword-test");
  dir.write("relay", "a file where the directory should be");
  CHECK(open_relay(RelayPolicy{}, "192.0.2.7", "bob@example.test", false, 1000, log) == "failed");
}

TEST_CASE("checkpassword: the session starts in the account's Maildir, which must exist") {
  TempDir dir;
  ScopedChdir cd(dir.path());
  auto missing = enter_maildir("bob@example.test");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().temporary_failure());
  std::filesystem::create_directories("mail/example.test/bob/Maildir/new");
  auto entered = enter_maildir("bob@example.test");
  REQUIRE(entered);
  CHECK(*entered == std::filesystem::canonical(dir.path() / "mail/example.test/bob/Maildir").string());
  CHECK(std::filesystem::exists("new"));
}

TEST_CASE("checkpassword: AUTHSERVICE=smtp selects the verify-only mode and names the mechanism") {
  CHECK_FALSE(smtp_auth_method(nullptr, nullptr));
  CHECK_FALSE(smtp_auth_method("pop3", "PLAIN"));
  CHECK_FALSE(smtp_auth_method("SMTP ", nullptr));
  CHECK(smtp_auth_method("smtp", "PLAIN") == "smtp-plain");
  CHECK(smtp_auth_method("smtp", "login") == "smtp-login");
  CHECK(smtp_auth_method("smtp", "CRAM-MD5") == "smtp");
  CHECK(smtp_auth_method("smtp", nullptr) == "smtp");
}

TEST_CASE("checkpassword: SMTP AUTH credentials (no timestamp) are checked like USER/PASS") {
  Prefix p;
  CHECK(p.check(creds("alice@example.test", "alice pw")).verdict == Verdict::kOk);
  CHECK(p.check(creds("BOB@example.test", "bob pw")).verdict == Verdict::kOk);
  CHECK(p.check(creds("bob@example.test", "alice pw")).verdict == Verdict::kWrong);
  CHECK(p.check(creds("carol@example.test", "x")).verdict == Verdict::kWrong);
}

TEST_CASE("checkpassword: set-uid, only the pop3d user may ask for the full login") {
  CHECK(caller_may_log_in(1000, 1000));  // not set-uid: a demo run by one user
  CHECK(caller_may_log_in(0, 0));
  CHECK(caller_may_log_in(0, 5));        // root calling it directly
  const passwd* pop3 = ::getpwnam(kPop3User);
  uid_t stranger = pop3 != nullptr && pop3->pw_uid == 65534 ? 65533 : 65534;
  CHECK_FALSE(caller_may_log_in(stranger, 0));  // smtpd's uid, say: verify only
  if (pop3 != nullptr) CHECK(caller_may_log_in(pop3->pw_uid, 0));
}

TEST_CASE("checkpassword: a login the session will refuse opens no relay") {
  TempDir dir;
  std::string maildir = (dir.path() / "Maildir").string();
  for (const char* sub : {"cur", "new", "tmp"}) std::filesystem::create_directories(dir.path() / "Maildir" / sub);
  auto policy = dir.path() / "pop3loginpolicy";
  CHECK_FALSE(session_will_refuse(maildir, false, policy));  // no lock file, no policy
  CHECK_FALSE(std::filesystem::exists(dir.path() / "Maildir" / std::string(kPop3LockFile)));  // none made

  {
    auto held = lock_mailbox(maildir);  // a session is running
    REQUIRE(held);
    CHECK(session_will_refuse(maildir, false, policy));
  }
  CHECK_FALSE(session_will_refuse(maildir, false, policy));

  dir.write("pop3loginpolicy", "plain 0 3600\n");
  CHECK_FALSE(session_will_refuse(maildir, false, policy));  // no login recorded yet
  REQUIRE(touch_last_login(maildir));
  CHECK(session_will_refuse(maildir, false, policy));        // too soon for a plain session
  CHECK_FALSE(session_will_refuse(maildir, true, policy));   // no rule for TLS sessions
}
