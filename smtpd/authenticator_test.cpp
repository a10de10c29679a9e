// smtpd/authenticator_test.cpp: the checkpassword call of SMTP AUTH, against small shell
// scripts that play checkpassword: what arrives on fd 3 and in the environment, and how
// exit codes, signals and a hung child are read.
#include "smtpd/authenticator.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "common/test_util.h"

using namespace tikimail;
using namespace std::string_literals;
using tikimail::testing::TempDir;

namespace {

// A script in `dir` named `name` with `body`, executable.
std::string script(const TempDir& dir, const std::string& name, const std::string& body) {
  dir.write(name, "#!/bin/sh\n" + body);
  std::string path = (dir.path() / name).string();
  ::chmod(path.c_str(), 0755);
  return path;
}

}  // namespace

TEST_CASE("authenticator: fd 3 carries user NUL password NUL NUL; AUTHSERVICE and AUTHMECH are set") {
  TempDir dir;
  std::string out = (dir.path() / "seen").string();
  std::string check = script(dir, "check",
                             "cat <&3 > \"" + out + "\"; echo \"$AUTHSERVICE $AUTHMECH\" >> \"" + out +
                                 "\"; [ -t 0 ] || read x; exit 0\n");
  CHECK(run_checkpassword_smtp({check}, "alice@example.test", "pw word", "PLAIN", 10) == AuthVerdict::kOk);
  CHECK(dir.read("seen") == "alice@example.test\0pw word\0\0smtp PLAIN\n"s);
}

TEST_CASE("authenticator: exit 1 is wrong, other codes, signals and no program are temporary") {
  TempDir dir;
  CHECK(run_checkpassword_smtp({script(dir, "wrong", "exit 1\n")}, "a", "b", "LOGIN", 10) == AuthVerdict::kWrong);
  CHECK(run_checkpassword_smtp({script(dir, "temp", "exit 111\n")}, "a", "b", "LOGIN", 10) ==
        AuthVerdict::kTemporary);
  CHECK(run_checkpassword_smtp({script(dir, "misuse", "exit 2\n")}, "a", "b", "LOGIN", 10) ==
        AuthVerdict::kTemporary);
  CHECK(run_checkpassword_smtp({script(dir, "killed", "kill -9 $$\n")}, "a", "b", "LOGIN", 10) ==
        AuthVerdict::kTemporary);
  CHECK(run_checkpassword_smtp({(dir.path() / "missing").string()}, "a", "b", "LOGIN", 10) ==
        AuthVerdict::kTemporary);
  CHECK(run_checkpassword_smtp({}, "a", "b", "LOGIN", 10) == AuthVerdict::kTemporary);
}

TEST_CASE("authenticator: a checkpassword that hangs is killed at the deadline") {
  TempDir dir;
  auto start = std::chrono::steady_clock::now();
  CHECK(run_checkpassword_smtp({script(dir, "hang", "exec sleep 30\n")}, "a", "b", "PLAIN", 1) ==
        AuthVerdict::kTemporary);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}
