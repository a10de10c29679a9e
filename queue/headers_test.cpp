// queue/headers_test.cpp: the header section and RFC 5322 address lists as sendmail -t reads them.
#include "queue/headers.h"

#include <catch2/catch.hpp>

using namespace tikimail;

namespace {

// The addresses of a list as "local@domain" texts, or {"error"} when it does not parse.
std::vector<std::string> addresses(std::string_view value) {
  auto list = parse_address_list(value);
  if (!list) return {"error"};
  std::vector<std::string> out;
  for (const auto& a : *list) out.push_back(a.text());
  return out;
}

using List = std::vector<std::string>;

}  // namespace

TEST_CASE("headers: the section ends at the empty line, which belongs to neither part") {
  std::string text = "To: a@x\nSubject: hi\n\nbody\n";
  HeaderEnd end;
  REQUIRE(end.scan(text));
  CHECK(text.substr(0, end.header_bytes()) == "To: a@x\nSubject: hi\n");
  CHECK(text.substr(end.body_offset()) == "body\n");
}

TEST_CASE("headers: a line that is no field starts the body") {
  std::string text = "To: a@x\nthis is body text\nmore\n";
  HeaderEnd end;
  REQUIRE(end.scan(text));
  CHECK(end.header_bytes() == 8);
  CHECK(end.body_offset() == 8);
  HeaderEnd none;
  REQUIRE(none.scan(" indented first line\n"));
  CHECK(none.header_bytes() == 0);
}

TEST_CASE("headers: the end is found as lines arrive, and at EOF everything is header") {
  HeaderEnd end;
  std::string text = "To: a@x\nCc: b";
  CHECK_FALSE(end.scan(text));
  text += "@y\n continued\n";
  CHECK_FALSE(end.scan(text));
  end.at_eof(text);
  CHECK(end.header_bytes() == text.size());
  CHECK(end.body_offset() == text.size());
}

TEST_CASE("headers: fields keep their continuation lines and unfold on request") {
  auto fields = split_fields("To: a@x,\n\tb@y\nSubject: s\n");
  REQUIRE(fields.size() == 2);
  CHECK(fields[0].name == "To");
  CHECK(fields[0].text == "To: a@x,\n\tb@y\n");
  CHECK(fields[0].unfolded_value() == " a@x,\tb@y");
  CHECK(fields[1].is("SUBJECT"));
}

TEST_CASE("address lists: plain mailboxes and display names") {
  CHECK(addresses("a@x.test") == List{"a@x.test"});
  CHECK(addresses("a@x.test, b@y.test") == List{"a@x.test", "b@y.test"});
  CHECK(addresses("Alice Example <alice@x.test>, \"Bob, the builder\" <bob@y.test>") ==
        List{"alice@x.test", "bob@y.test"});
  CHECK(addresses("=?UTF-8?B?5bGx55Sw?= <yamada@x.test>") == List{"yamada@x.test"});
  CHECK(addresses("J. R. Dobbs <bob@x.test>") == List{"bob@x.test"});
}

TEST_CASE("address lists: comments vanish wherever they stand") {
  CHECK(addresses("alice@x.test (Alice (the first))") == List{"alice@x.test"});
  CHECK(addresses("(lead) Alice <alice(home)@(main)x.test>") == List{"alice@x.test"});
  CHECK(addresses("alice@x.test (a \\) paren)") == List{"alice@x.test"});
}

TEST_CASE("address lists: quoted local parts keep their quotes for parse_mailbox") {
  CHECK(addresses("\"john doe\"@x.test") == List{"\"john doe\"@x.test"});
  CHECK(addresses("Name <\"a,b\"@x.test>") == List{"\"a,b\"@x.test"});
}

TEST_CASE("address lists: groups give their members, an empty group gives none") {
  CHECK(addresses("team: a@x.test, B <b@x.test>;, c@y.test") == List{"a@x.test", "b@x.test", "c@y.test"});
  CHECK(addresses("undisclosed-recipients:;").empty());
  CHECK(addresses("team: a@x.test").size() == 1);  // a missing ';' at the end is forgiven
}

TEST_CASE("address lists: obsolete forms are read") {
  CHECK(addresses("<@relay.test,@other.test:a@x.test>") == List{"a@x.test"});
  CHECK(addresses("a@x.test,, ,b@y.test") == List{"a@x.test", "b@y.test"});
  CHECK(addresses("a . b @ x . test") == List{"a.b@x.test"});
}

TEST_CASE("address lists: bare names come back without a domain") {
  auto list = parse_address_list("root, Admin <admin>");
  REQUIRE(list);
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].local == "root");
  CHECK((*list)[0].domain.empty());
  CHECK((*list)[1].local == "admin");
}

TEST_CASE("address lists: malformed lists are errors") {
  CHECK(addresses("a@x.test (unterminated") == List{"error"});
  CHECK(addresses("\"unterminated@x.test") == List{"error"});
  CHECK(addresses("Alice <alice@x.test") == List{"error"});
  CHECK(addresses("a@") == List{"error"});
  CHECK(addresses("two words@x.test") == List{"error"});
  CHECK(addresses("a@x.test b@y.test") == List{"error"});
  CHECK(addresses("g1: g2: a@x;;") == List{"error"});
}
