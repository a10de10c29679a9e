// deliver-remote/mx_test.cpp: MX answers from hand-built DNS packets, and plans (no network:
// only "localhost" and address literals are resolved).
#include "deliver-remote/mx.h"

#include <catch2/catch.hpp>

using namespace tikimail;
using Kind = RemoteResult::Kind;

namespace {

// A DNS response to "<qname> IN MX" with the given rcode and answer records.
class Packet {
 public:
  explicit Packet(const std::string& qname, int rcode = 0) {
    put16(0x1234);              // id
    put16(0x8180 | rcode);      // QR, RD, RA, rcode
    put16(1);                   // QDCOUNT
    put16(0);                   // ANCOUNT, set by finish()
    put16(0);
    put16(0);
    put_name(qname);
    put16(15);                  // QTYPE MX
    put16(1);                   // QCLASS IN
  }
  Packet& mx(unsigned preference, const std::string& exchange) {
    answer(15, [&] {
      put16(preference);
      put_name(exchange);
    });
    return *this;
  }
  Packet& cname(const std::string& target) {
    answer(5, [&] { put_name(target); });
    return *this;
  }
  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> b = b_;
    b[6] = static_cast<unsigned char>(count_ >> 8);
    b[7] = static_cast<unsigned char>(count_ & 0xff);
    return b;
  }

 private:
  void put16(unsigned v) {
    b_.push_back(static_cast<unsigned char>(v >> 8));
    b_.push_back(static_cast<unsigned char>(v & 0xff));
  }
  void put_name(const std::string& name) {
    size_t start = 0;
    while (start < name.size()) {
      size_t dot = name.find('.', start);
      if (dot == std::string::npos) dot = name.size();
      b_.push_back(static_cast<unsigned char>(dot - start));
      b_.insert(b_.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
      start = dot + 1;
    }
    b_.push_back(0);
  }
  template <typename F>
  void answer(unsigned type, F rdata) {
    b_.push_back(0xc0);  // owner: a pointer to the question's name
    b_.push_back(12);
    put16(type);
    put16(1);
    put16(0);
    put16(300);  // TTL
    size_t len_at = b_.size();
    put16(0);
    size_t start = b_.size();
    rdata();
    size_t len = b_.size() - start;
    b_[len_at] = static_cast<unsigned char>(len >> 8);
    b_[len_at + 1] = static_cast<unsigned char>(len & 0xff);
    ++count_;
  }
  std::vector<unsigned char> b_;
  unsigned count_ = 0;
};

MxAnswer parse(const Packet& p) {
  auto bytes = p.bytes();
  return parse_mx_answer(bytes);
}

}  // namespace

TEST_CASE("deliver-remote: MX records sorted by preference", "[deliver-remote]") {
  MxAnswer a = parse(Packet("example.net").mx(20, "MX2.example.net").mx(10, "mx1.example.net.").mx(30, "mx3.example.net"));
  REQUIRE(a.kind == MxAnswer::Kind::kHosts);
  REQUIRE(a.hosts.size() == 3);
  CHECK(a.hosts[0].name == "mx1.example.net");
  CHECK(a.hosts[0].preference == 10);
  CHECK(a.hosts[1].name == "mx2.example.net");
  CHECK(a.hosts[2].name == "mx3.example.net");
}

TEST_CASE("deliver-remote: CNAMEs and unusable exchanges are skipped", "[deliver-remote]") {
  MxAnswer a = parse(Packet("example.net").cname("other.example.net").mx(10, "mx.other.example.net").mx(5, "bad_name.example.net"));
  REQUIRE(a.kind == MxAnswer::Kind::kHosts);
  REQUIRE(a.hosts.size() == 1);
  CHECK(a.hosts[0].name == "mx.other.example.net");
}

TEST_CASE("deliver-remote: null MX, NODATA, NXDOMAIN, server failure, garbage", "[deliver-remote]") {
  CHECK(parse(Packet("example.net").mx(0, "")).kind == MxAnswer::Kind::kNullMx);
  MxAnswer mixed = parse(Packet("example.net").mx(0, "").mx(10, "mx.example.net"));
  REQUIRE(mixed.kind == MxAnswer::Kind::kHosts);  // a "." among others is ignored
  CHECK(mixed.hosts.size() == 1);
  CHECK(parse(Packet("example.net")).kind == MxAnswer::Kind::kNoData);
  CHECK(parse(Packet("example.net").cname("x.example.net")).kind == MxAnswer::Kind::kNoData);
  CHECK(parse(Packet("example.net", 3)).kind == MxAnswer::Kind::kNotFound);
  CHECK(parse(Packet("example.net", 2)).kind == MxAnswer::Kind::kTemporary);

  auto bytes = Packet("example.net").mx(10, "mx.example.net").bytes();
  bytes.resize(bytes.size() - 5);  // cut inside the last record
  CHECK(parse_mx_answer(bytes).kind == MxAnswer::Kind::kTemporary);
  std::vector<unsigned char> tiny = {1, 2, 3};
  CHECK(parse_mx_answer(tiny).kind == MxAnswer::Kind::kTemporary);
  // An exchange that points past the end of the packet.
  bytes = Packet("example.net").mx(10, "mx.example.net").bytes();
  bytes[bytes.size() - 16] = 0xc0;
  bytes[bytes.size() - 15] = 0xff;
  CHECK(parse_mx_answer(bytes).kind != MxAnswer::Kind::kNullMx);
}

TEST_CASE("deliver-remote: equal preferences are shuffled among themselves only", "[deliver-remote]") {
  std::vector<MxHost> hosts = {{"a", 10}, {"b", 10}, {"c", 10}, {"d", 20}, {"e", 30}, {"f", 30}};
  std::mt19937 rng(7);
  bool moved = false;
  for (int i = 0; i < 20; ++i) {
    auto h = hosts;
    shuffle_equal_preferences(&h, &rng);
    CHECK(h[3].name == "d");
    CHECK(h[0].preference == 10);
    CHECK(h[2].preference == 10);
    CHECK(h[4].preference == 30);
    if (h[0].name != "a") moved = true;
  }
  CHECK(moved);
}

TEST_CASE("deliver-remote: plans from MX answers", "[deliver-remote]") {
  std::mt19937 rng(1);
  MxAnswer null_mx;
  null_mx.kind = MxAnswer::Kind::kNullMx;
  Plan p = plan_from_mx("example.net", null_mx, &rng);
  CHECK(p.targets.empty());
  CHECK(p.failure.kind == Kind::kPermanent);
  CHECK(p.failure.status == "5.1.10");
  CHECK(encode_result(p.failure) == "D 5.1.10 - l domain example.net does not accept mail (null MX)\n");

  MxAnswer nx;
  nx.kind = MxAnswer::Kind::kNotFound;
  p = plan_from_mx("nowhere.test", nx, &rng);
  CHECK(p.failure.kind == Kind::kPermanent);
  CHECK(p.failure.status == "5.1.2");

  MxAnswer fail;
  fail.error = "timeout";
  p = plan_from_mx("example.net", fail, &rng);
  CHECK(p.failure.kind == Kind::kTemporary);
  CHECK(p.failure.status == "4.4.3");

  MxAnswer hosts;
  hosts.kind = MxAnswer::Kind::kHosts;
  hosts.hosts = {{"localhost", 10}};
  p = plan_from_mx("example.net", hosts, &rng);
  REQUIRE_FALSE(p.targets.empty());
  CHECK(p.targets[0].name == "localhost");
  CHECK(p.targets[0].port == 25);
  CHECK(p.targets.size() <= kMaxAddresses);

  MxAnswer numeric;
  numeric.kind = MxAnswer::Kind::kHosts;  // an MX that names an address is not followed
  numeric.hosts = {{"127.0.0.1", 10}};
  p = plan_from_mx("example.net", numeric, &rng);
  CHECK(p.targets.empty());
  CHECK(p.failure.text.find("IP address") != std::string::npos);

  MxAnswer empty;
  empty.kind = MxAnswer::Kind::kHosts;  // MX records, none usable
  p = plan_from_mx("example.net", empty, &rng);
  CHECK(p.targets.empty());
  CHECK(p.failure.status == "4.4.3");
}

TEST_CASE("deliver-remote: routes and address literals need no DNS", "[deliver-remote]") {
  DomainRules<Relay> routes;
  routes.add("example.net", Relay{"127.0.0.1", true, 2525});
  Plan p = plan_delivery("example.net", routes);
  REQUIRE(p.targets.size() == 1);
  CHECK(p.how == "route");
  CHECK(p.targets[0].label() == "[127.0.0.1]:2525");

  p = plan_delivery("[198.51.100.7]", routes);
  REQUIRE(p.targets.size() == 1);
  CHECK(p.how == "literal");
  CHECK(p.targets[0].port == 25);
  CHECK(p.targets[0].name.empty());

  p = plan_delivery("[ipv6:2001:db8::1]", routes);
  REQUIRE(p.targets.size() == 1);
  CHECK(p.targets[0].label() == "[2001:db8::1]:25");

  // A literal naming this host would come straight back: a loop, refused for good. A route
  // may name it (above).
  for (const char* self : {"[127.0.0.1]", "[127.3.4.5]", "[ipv6:::1]", "[0.0.0.0]"}) {
    p = plan_delivery(self, routes);
    CHECK(p.targets.empty());
    CHECK(p.failure.kind == RemoteResult::Kind::kPermanent);
    CHECK(p.failure.status == "5.4.6");
  }

  routes.add("", Relay{"localhost", false, 26});
  p = plan_delivery("anything.test", routes);
  REQUIRE_FALSE(p.targets.empty());
  CHECK(p.targets[0].name == "localhost");
  CHECK(p.targets[0].port == 26);
}
