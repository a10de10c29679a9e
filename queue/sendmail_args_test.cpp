// queue/sendmail_args_test.cpp: the sendmail command line.
#include "queue/sendmail_args.h"

#include <catch2/catch.hpp>

using namespace tikimail;

namespace {

SendmailOptions parse(std::vector<std::string> args) {
  auto opts = parse_sendmail_args(args);
  REQUIRE(opts);
  return *opts;
}

bool refused(std::vector<std::string> args) { return !parse_sendmail_args(args).has_value(); }

}  // namespace

TEST_CASE("sendmail args: no options means recipients as arguments, a lone dot ends input") {
  auto o = parse({"alice@example.test", "bob"});
  CHECK(o.mode == SendmailMode::kSend);
  CHECK_FALSE(o.recipients_from_headers);
  CHECK(o.dot_ends_input);
  CHECK_FALSE(o.sender);
  CHECK(o.recipients == std::vector<std::string>{"alice@example.test", "bob"});
}

TEST_CASE("sendmail args: -t, -i and -oi") {
  CHECK(parse({"-t"}).recipients_from_headers);
  CHECK_FALSE(parse({"-i"}).dot_ends_input);
  CHECK_FALSE(parse({"-oi"}).dot_ends_input);
  auto grouped = parse({"-ti"});
  CHECK(grouped.recipients_from_headers);
  CHECK_FALSE(grouped.dot_ends_input);
}

TEST_CASE("sendmail args: -f and -r set the sender, attached or as the next argument") {
  CHECK(parse({"-f", "me@x.test", "a@y.test"}).sender == "me@x.test");
  CHECK(parse({"-fme@x.test"}).sender == "me@x.test");
  CHECK(parse({"-r", "<>"}).sender == "<>");
  CHECK(parse({"-f", ""}).sender == "");
  CHECK(parse({"-F", "Web Server", "-t"}).full_name == "Web Server");
  CHECK(parse({"-FWeb"}).full_name == "Web");
}

TEST_CASE("sendmail args: -- ends the options, and so does the first recipient") {
  auto o = parse({"-t", "--", "-notanoption@x.test"});
  CHECK(o.recipients == std::vector<std::string>{"-notanoption@x.test"});
  CHECK(parse({"a@x.test", "-t"}).recipients == std::vector<std::string>{"a@x.test", "-t"});
}

TEST_CASE("sendmail args: the usual harmless options are accepted and ignored") {
  auto o = parse({"-oem", "-odi", "-odb", "-oXlog", "-v", "-B8BITMIME", "-B", "7BIT", "-Nnever", "-N", "success",
                  "-bm", "-U", "a@x.test"});
  CHECK(o.mode == SendmailMode::kSend);
  CHECK(o.dot_ends_input);
  CHECK(o.recipients == std::vector<std::string>{"a@x.test"});
}

TEST_CASE("sendmail args: -bp lists the queue, other modes are usage errors") {
  CHECK(parse({"-bp"}).mode == SendmailMode::kListQueue);
  CHECK(refused({"-bs"}));
  CHECK(refused({"-bd"}));
  CHECK(refused({"-bi"}));
  CHECK(refused({"-bv", "a@x.test"}));
}

TEST_CASE("sendmail args: unknown options and missing values are usage errors") {
  CHECK(refused({"-q"}));
  CHECK(refused({"-C", "/etc/other.cf"}));
  CHECK(refused({"-f"}));
  CHECK(refused({"-t", "-F"}));
  CHECK(refused({"-o"}));
}
