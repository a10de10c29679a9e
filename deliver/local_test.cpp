// deliver/local_test.cpp: recipient classification against real control files.
#include "deliver/local.h"

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::ScopedChdir;
using tikimail::testing::TempDir;

namespace {

// A prefix with two domains (one by suffix rule), three accounts and a postmaster.
LocalConfig load_config(const TempDir& dir, bool with_postmaster = true) {
  dir.write("control/rcpthosts", "example.test\n.example.org\n");
  dir.write("users/recipients",
            "a+b@example.test\nadmin@example.test\nalice@example.test\nbad/x@example.test\n"
            "carol@sub.example.org\n");
  if (with_postmaster) dir.write("control/postmaster", "Admin@Example.TEST\n");
  ScopedChdir in(dir.path());
  auto config = LocalConfig::load();
  REQUIRE(config);
  return std::move(*config);
}

}  // namespace

TEST_CASE("route: a listed account of our domain is local, lowercased, with its Maildir") {
  TempDir dir;
  auto config = load_config(dir);
  Route r = route_rcpt("Alice@EXAMPLE.test", config);
  CHECK(r.kind == Route::Kind::kLocal);
  CHECK(r.address == "alice@example.test");
  CHECK(r.maildir == "mail/example.test/alice/Maildir");
  r = route_rcpt("carol@sub.example.org", config);
  CHECK(r.kind == Route::Kind::kLocal);
  CHECK(r.maildir == "mail/sub.example.org/carol/Maildir");
  CHECK(route_rcpt("a+b@example.test", config).kind == Route::Kind::kLocal);
}

TEST_CASE("route: a domain not in rcpthosts is remote") {
  TempDir dir;
  auto config = load_config(dir);
  Route r = route_rcpt("Someone@Elsewhere.test", config);
  CHECK(r.kind == Route::Kind::kRemote);
  CHECK(r.address == "someone@elsewhere.test");
  CHECK(route_rcpt("x@example.org.evil.test", config).kind == Route::Kind::kRemote);
}

TEST_CASE("route: postmaster, bare or at any of our domains, goes to control/postmaster") {
  TempDir dir;
  auto config = load_config(dir);
  for (const char* rcpt : {"postmaster", "PostMaster", "postmaster@example.test", "POSTMASTER@x.example.org"}) {
    Route r = route_rcpt(rcpt, config);
    INFO(rcpt);
    CHECK(r.kind == Route::Kind::kLocal);
    CHECK(r.address == "admin@example.test");
    CHECK(r.maildir == "mail/example.test/admin/Maildir");
  }
  CHECK(route_rcpt("postmaster@elsewhere.test", config).kind == Route::Kind::kRemote);
}

TEST_CASE("route: without control/postmaster, postmaster is a temporary failure") {
  TempDir dir;
  auto config = load_config(dir, false);
  Route r = route_rcpt("postmaster@example.test", config);
  CHECK(r.kind == Route::Kind::kDeferred);
  CHECK(r.reason.find("control/postmaster") != std::string::npos);
}

TEST_CASE("route: an unknown user of our domain fails permanently") {
  TempDir dir;
  auto config = load_config(dir);
  Route r = route_rcpt("nobody@example.test", config);
  CHECK(r.kind == Route::Kind::kFailed);
  CHECK(r.reason == "no such user");
  CHECK(route_rcpt("alice", config).kind == Route::Kind::kFailed);  // no domain, not postmaster
}

TEST_CASE("route: an unsafe local part never becomes a path, even when listed") {
  TempDir dir;
  auto config = load_config(dir);
  Route r = route_rcpt("bad/x@example.test", config);
  CHECK(r.kind == Route::Kind::kFailed);
  CHECK(r.maildir.empty());
  CHECK(safe_local_part("alice.b+tag_1-x"));
  CHECK_FALSE(safe_local_part(".alice"));
  CHECK_FALSE(safe_local_part(".."));
  CHECK_FALSE(safe_local_part(""));
  CHECK_FALSE(safe_local_part("a/b"));
  CHECK_FALSE(safe_local_part("a b"));
  CHECK_FALSE(safe_local_part("Alice"));  // callers lowercase first
}

TEST_CASE("route: the delivery header carries Return-Path and Delivered-To, no injected lines") {
  CHECK(delivery_header("a@x.test", "b@y.test") == "Return-Path: <a@x.test>\nDelivered-To: b@y.test\n");
  CHECK(delivery_header("", "b@y.test") == "Return-Path: <>\nDelivered-To: b@y.test\n");
  CHECK(delivery_header("a@x\r\nBcc: z", "b@y.test") == "Return-Path: <a@xBcc: z>\nDelivered-To: b@y.test\n");
  // RFC 5321 4.4: the reverse-path as it was given, a quoted local part quoted again.
  CHECK(delivery_header("john doe; x@q.test", "b@y.test") ==
        "Return-Path: <\"john doe; x\"@q.test>\nDelivered-To: b@y.test\n");
  CHECK(delivery_header("q\"x@q.test", "b@y.test") == "Return-Path: <\"q\\\"x\"@q.test>\nDelivered-To: b@y.test\n");
  CHECK(delivery_header("a@b@q.test", "b@y.test") == "Return-Path: <\"a@b\"@q.test>\nDelivered-To: b@y.test\n");
}
