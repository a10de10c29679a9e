// common/dsn_test.cpp: the delivery status notification, part by part, from real files.
#include "common/dsn.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/datetime.h"
#include "common/fd.h"
#include "common/queue_file.h"
#include "common/test_util.h"

using namespace tikimail;
using tikimail::testing::TempDir;

namespace {

constexpr time_t kNow = 1790000000;
constexpr time_t kArrival = 1789990000;
const std::string kOriginal =
    "From: Bob <bob@example.test>\nTo: alice@example.net\nSubject: hello\n\nHi Alice.\n";

const std::string kEntryEnvelope = std::string("Fenvelope@leak.test\0Tnever@leak.test\0\0", 38);

// An original message in a real queue entry file (common/queue_file.h), opened read-only:
// its envelope and trailer follow the message, so every notice below also shows that
// nothing past the message's length is read.
class Original {
 public:
  explicit Original(const std::string& content) : size_(content.size()) {
    dir_.write("entry", queue_file_contents(content, kEntryEnvelope));
    auto fd = open_file((dir_.path() / "entry").string(), O_RDONLY);
    REQUIRE(fd);
    fd_ = std::move(*fd);
  }
  int fd() const { return fd_.get(); }
  uint64_t size() const { return size_; }

 private:
  TempDir dir_;
  Fd fd_;
  uint64_t size_;
};

DsnRecipient remote_rcpt() {
  DsnRecipient r;
  r.address = "alice@example.net";
  r.status = "5.1.1";
  r.remote_host = "mx.example.net[192.0.2.1]:25";
  r.from_remote = true;
  r.text = "550 5.1.1 <alice@example.net>: Recipient address rejected: User unknown";
  r.last_attempt = kNow - 10;
  return r;
}

DsnRecipient local_rcpt() {
  DsnRecipient r;
  r.address = "nobody@example.test";
  r.status = "5.1.1";
  r.text = "no such user";
  return r;
}

DsnInput failure(std::vector<DsnRecipient> rcpts) {
  DsnInput in;
  in.reporting_mta = "mail.example.test";
  in.queue_id = "6560a1b2c3d4e5f6";
  in.to = "bob@example.test";
  in.original_sender = "bob@example.test";
  in.arrival = kArrival;
  in.rcpts = std::move(rcpts);
  return in;
}

std::string compose(const DsnInput& in, const std::string& original = kOriginal) {
  Original file(original);
  auto notice = compose_dsn(in, file.fd(), file.size(), kNow);
  REQUIRE(notice);
  CHECK(notice->find("leak.test") == std::string::npos);  // the envelope after the message
  CHECK(notice->find("TQ1") == std::string::npos);        // the trailer
  return *notice;
}

struct Part {
  std::string headers;  // each line with its "\n"
  std::string body;
};

// The notice cut the way a MIME reader cuts it: top headers, boundary, parts.
struct Notice {
  std::string headers;
  std::string boundary;
  std::vector<Part> parts;
  bool closed = false;  // ends with the close delimiter

  explicit Notice(const std::string& text) {
    size_t end = text.find("\n\n");
    REQUIRE(end != std::string::npos);
    headers = text.substr(0, end + 1);
    size_t b = headers.find("boundary=\"");
    REQUIRE(b != std::string::npos);
    boundary = headers.substr(b + 10, headers.find('"', b + 10) - b - 10);
    std::string delimiter = "\n--" + boundary;
    size_t pos = text.find(delimiter, end);
    while (pos != std::string::npos) {
      size_t line_end = text.find('\n', pos + 1);
      REQUIRE(line_end != std::string::npos);
      std::string line = text.substr(pos + 1, line_end - pos - 1);
      if (line == "--" + boundary + "--") {
        closed = line_end + 1 == text.size();
        break;
      }
      REQUIRE(line == "--" + boundary);
      size_t next = text.find(delimiter, line_end);
      REQUIRE(next != std::string::npos);
      // RFC 2046 5.1.1: the line end before a delimiter is the delimiter's.
      std::string raw = text.substr(line_end + 1, next - line_end - 1);
      size_t split = raw.find("\n\n");
      REQUIRE(split != std::string::npos);
      parts.push_back(Part{raw.substr(0, split + 1), raw.substr(split + 2)});
      pos = next;
    }
  }
};

// RFC 2045 6.7, the reading side: soft breaks go, =XX becomes the byte.
std::string qp_decode(const std::string& encoded) {
  std::string out;
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '=') { out += encoded[i]; continue; }
    if (i + 1 < encoded.size() && encoded[i + 1] == '\n') { ++i; continue; }
    REQUIRE(i + 2 < encoded.size());
    out += static_cast<char>(std::stoi(encoded.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// Every encoded line obeys RFC 2045 6.7: at most 76 characters, only printable ASCII, no
// whitespace at its end, '=' only as a soft break or before two hex digits.
void check_qp_lines(const std::string& encoded) {
  for (const std::string& line : lines(encoded)) {
    INFO(line);
    CHECK(line.size() <= 76);
    if (!line.empty()) CHECK(line.back() != ' ');
    if (!line.empty()) CHECK(line.back() != '\t');
    for (size_t i = 0; i < line.size(); ++i) {
      auto c = static_cast<unsigned char>(line[i]);
      CHECK(((c >= 33 && c <= 126) || c == ' ' || c == '\t'));
      if (c == '=' && i + 1 < line.size()) {
        REQUIRE(i + 2 < line.size());
        CHECK(std::isxdigit(static_cast<unsigned char>(line[i + 1])));
        CHECK(std::isxdigit(static_cast<unsigned char>(line[i + 2])));
      }
    }
  }
}

// The text with every run of spaces and line ends as one space: wrapping does not matter.
std::string flat(const std::string& text) {
  std::string out;
  for (char c : text) {
    bool space = c == ' ' || c == '\n';
    if (!space) out += c;
    else if (!out.empty() && out.back() != ' ') out += ' ';
  }
  return out;
}

// Display columns: ASCII one, other characters (Japanese here) two.
size_t columns(const std::string& line) {
  size_t n = 0;
  for (char ch : line) {
    auto c = static_cast<unsigned char>(ch);
    n += c < 0x80 ? 1 : c >= 0xc0 ? 2 : 0;
  }
  return n;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines(text))
    if (l == line) return true;
  return false;
}

bool has_line_starting(const std::string& text, const std::string& prefix) {
  for (const std::string& l : lines(text))
    if (l.starts_with(prefix)) return true;
  return false;
}

}  // namespace

TEST_CASE("bounce: a failure notice is a multipart/report of text, delivery-status and the original",
          "[bounce]") {
  std::string text = compose(failure({remote_rcpt()}));
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.ends_with("\n"));
  Notice n(text);
  CHECK(n.headers ==
        "From: Mail Delivery System <MAILER-DAEMON@mail.example.test>\n"
        "To: <bob@example.test>\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: " + rfc5322_date(kNow) + "\n"
        "Message-ID: <6560a1b2c3d4e5f6.1790000000.dsn@mail.example.test>\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        " boundary=\"=_tikimail-dsn-6560a1b2c3d4e5f6-1790000000\"\n"
        "Content-Transfer-Encoding: 7bit\n");
  CHECK(n.closed);
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[0].headers ==
        "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n"
        "Content-Description: Notification\n");
  CHECK(n.parts[1].headers ==
        "Content-Type: message/delivery-status\nContent-Description: Delivery report\n");
  CHECK(n.parts[2].headers ==
        "Content-Type: message/rfc822\nContent-Description: Undelivered message\n"
        "Content-Transfer-Encoding: 7bit\n");
  CHECK(n.parts[2].body == kOriginal);
}

TEST_CASE("bounce: the delivery-status part has the message fields and one block per recipient",
          "[bounce]") {
  Notice n(compose(failure({remote_rcpt(), local_rcpt()})));
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[1].body ==
        "Reporting-MTA: dns; mail.example.test\n"
        "X-Tikimail-Queue-ID: 6560a1b2c3d4e5f6\n"
        "Arrival-Date: " + rfc5322_date(kArrival) + "\n"
        "\n"
        "Final-Recipient: rfc822; alice@example.net\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "Remote-MTA: dns; mx.example.net\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <alice@example.net>: Recipient address\n"
        " rejected: User unknown\n"
        "Last-Attempt-Date: " + rfc5322_date(kNow - 10) + "\n"
        "\n"
        "Final-Recipient: rfc822; nobody@example.test\n"
        "Action: failed\n"
        "Status: 5.1.1\n");
}

TEST_CASE("bounce: a delay notice says delayed and until when it retries", "[bounce]") {
  DsnInput in = failure({remote_rcpt()});
  in.kind = DsnInput::Kind::kDelay;
  in.rcpts[0].status = "4.4.1";
  in.rcpts[0].from_remote = false;
  in.rcpts[0].text = "connection timed out";
  in.retry_until = kNow + 5 * 86400;
  std::string text = compose(in);
  Notice n(text);
  CHECK(has_line(n.headers, "Subject: Delayed Mail (still being retried)"));
  REQUIRE(n.parts.size() == 3);
  CHECK(has_line(n.parts[1].body, "Action: delayed"));
  CHECK(has_line(n.parts[1].body, "Status: 4.4.1"));
  CHECK(has_line(n.parts[1].body, "Will-Retry-Until: " + rfc5322_date(in.retry_until)));
  CHECK(has_line(n.parts[2].headers, "Content-Description: Delayed message"));
  std::string human = flat(qp_decode(n.parts[0].body));
  CHECK(human.find("This is a warning only") != std::string::npos);
  CHECK(human.find("You do not need to send it again.") != std::string::npos);
  CHECK(human.find("We will keep trying until " + rfc5322_date(in.retry_until)) != std::string::npos);
  CHECK(human.find("Status: 4.4.1 Remote server: mx.example.net[192.0.2.1]:25 Reason: connection "
                   "timed out") != std::string::npos);
  CHECK(human.find("もう一度お送りいただく必要はありません。") != std::string::npos);
  CHECK(human.find(rfc5322_date(in.retry_until) + " まで配信を試みます。") != std::string::npos);
  CHECK(human.find("Please check") == std::string::npos);  // nothing to do yet
}

TEST_CASE("bounce: a failure notice carries no retry fields", "[bounce]") {
  DsnInput in = failure({remote_rcpt()});
  in.retry_until = kNow + 3600;  // ignored for a failure
  Notice n(compose(in));
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[1].body.find("Will-Retry-Until") == std::string::npos);
  CHECK(n.parts[1].body.find("Action: delayed") == std::string::npos);
}

TEST_CASE("bounce: only the remote's reply is a Diagnostic-Code; our explanation is in the text",
          "[bounce]") {
  DsnRecipient ours = remote_rcpt();
  ours.from_remote = false;
  ours.text = "all MX hosts refused the connection";
  Notice n(compose(failure({ours})));
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[1].body.find("Diagnostic-Code") == std::string::npos);
  CHECK(has_line(n.parts[1].body, "Remote-MTA: dns; mx.example.net"));
  std::string human = qp_decode(n.parts[0].body);
  CHECK(human.find("    Reason: all MX hosts refused the connection\n") != std::string::npos);
  CHECK(human.find("    理由: all MX hosts refused the connection\n") != std::string::npos);

  Notice remote(compose(failure({remote_rcpt()})));
  human = qp_decode(remote.parts[0].body);
  CHECK(human.find("    Remote server: mx.example.net[192.0.2.1]:25\n") != std::string::npos);
  CHECK(human.find("    It replied: 550 5.1.1 <alice@example.net>: Recipient address\n"
                   "        rejected: User unknown\n") != std::string::npos);  // a hanging indent
  CHECK(human.find("    相手先サーバー: mx.example.net[192.0.2.1]:25\n") != std::string::npos);
}

TEST_CASE("bounce: Remote-MTA is the host name, without address and port, and only when known",
          "[bounce]") {
  CHECK(remote_mta_name("mx.example.net[192.0.2.1]:25") == "mx.example.net");
  CHECK(remote_mta_name("mx.example.net[2001:db8::1]:25") == "mx.example.net");
  CHECK(remote_mta_name("[192.0.2.1]:25") == "192.0.2.1");
  CHECK(remote_mta_name("mx.example.net:25") == "mx.example.net");
  CHECK(remote_mta_name("mx.example.net") == "mx.example.net");
  CHECK(remote_mta_name("") == "");

  Notice n(compose(failure({local_rcpt()})));
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[1].body.find("Remote-MTA") == std::string::npos);
  CHECK(qp_decode(n.parts[0].body).find("Remote server") == std::string::npos);
}

TEST_CASE("bounce: a malformed status code becomes the class default of the notice", "[bounce]") {
  DsnInput in = failure({local_rcpt()});
  in.rcpts[0].status = "5.1.1\nX-Evil: 1";
  Notice n(compose(in));
  REQUIRE(n.parts.size() == 3);
  CHECK(has_line(n.parts[1].body, "Status: 5.0.0"));
  in.kind = DsnInput::Kind::kDelay;
  in.rcpts[0].status = "";
  Notice d(compose(in));
  CHECK(has_line(d.parts[1].body, "Status: 4.0.0"));
}

TEST_CASE("bounce: an original of at most max_original bytes is attached whole", "[bounce]") {
  DsnInput in = failure({local_rcpt()});
  in.max_original = kOriginal.size();
  Notice n(compose(in));
  REQUIRE(n.parts.size() == 3);
  CHECK(has_line(n.parts[2].headers, "Content-Type: message/rfc822"));
  CHECK(n.parts[2].body == kOriginal);
  CHECK(qp_decode(n.parts[0].body).find("The original message is attached.") != std::string::npos);
  CHECK(qp_decode(n.parts[0].body).find("元のメールを添付しています。") != std::string::npos);
}

TEST_CASE("bounce: a larger original gives its header section only", "[bounce]") {
  DsnInput in = failure({local_rcpt()});
  in.max_original = kOriginal.size() - 1;
  Notice n(compose(in));
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[2].headers ==
        "Content-Type: text/rfc822-headers\nContent-Description: Headers of the undelivered message\n"
        "Content-Transfer-Encoding: 7bit\n");
  CHECK(n.parts[2].body == "From: Bob <bob@example.test>\nTo: alice@example.net\nSubject: hello\n");
  std::string human = flat(qp_decode(n.parts[0].body));
  CHECK(human.find(fmt::format("larger than {} bytes, so only its headers are attached.",
                               in.max_original)) != std::string::npos);
  CHECK(human.find("ヘッダーのみを添付しています。") != std::string::npos);
}

TEST_CASE("bounce: a header section longer than max_original is cut after a whole line",
          "[bounce]") {
  DsnInput in = failure({local_rcpt()});
  std::string original = "Subject: one\nX-Long: " + std::string(200, 'x') + "\n\nbody\n";
  in.max_original = 100;  // ends inside X-Long
  Notice n(compose(in, original));
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[2].body == "Subject: one\n");

  // Without an empty line all of the original is header, within the cap.
  std::string no_body = "A: 1\nB: 2\nC: 3\nD: 4\n";
  in.max_original = 12;
  Notice cut(compose(in, no_body));
  CHECK(cut.parts[2].body == "A: 1\nB: 2\n");
  CHECK(has_line(cut.parts[2].headers, "Content-Type: text/rfc822-headers"));

  // A first line longer than the cap leaves nothing to attach, and the notice still parses.
  in.max_original = 3;
  Notice empty(compose(in, no_body));
  REQUIRE(empty.parts.size() == 3);
  CHECK(empty.parts[2].body == "");
}

TEST_CASE("bounce: the original is read from offset 0 and the fd's offset stays", "[bounce]") {
  Original file(kOriginal);
  REQUIRE(::lseek(file.fd(), 7, SEEK_SET) == 7);
  auto notice = compose_dsn(failure({local_rcpt()}), file.fd(), file.size(), kNow);
  REQUIRE(notice);
  Notice n(*notice);
  CHECK(n.parts[2].body == kOriginal);
  CHECK(::lseek(file.fd(), 0, SEEK_CUR) == 7);
}

TEST_CASE("bounce: the original stops at its length: no envelope or trailer is attached", "[bounce]") {
  // Without a final newline, empty, and ending in bytes that look like a trailer: each is
  // attached byte for byte (a last line gets its LF), and nothing of what follows it.
  const std::string like_trailer = "Subject: t\n\nbody" + queue_file_trailer(9);
  for (const std::string& original : {std::string("Subject: x\n\nno newline"), std::string(), like_trailer}) {
    Original file(original);
    auto notice = compose_dsn(failure({local_rcpt()}), file.fd(), file.size(), kNow);
    REQUIRE(notice);
    Notice n(*notice);
    std::string expected = original.empty() || original.ends_with('\n') ? original : original + "\n";
    CHECK(n.parts[2].body == expected);
    CHECK(notice->find("leak.test") == std::string::npos);
  }
  // A length past the file's end (the file changed under us) is an error, not a short notice.
  Original file(kOriginal);
  auto cut = compose_dsn(failure({local_rcpt()}), file.fd(), file.size() + kEntryEnvelope.size() + 21, kNow);
  REQUIRE_FALSE(cut);
  CHECK(cut.error().temporary_failure());
  CHECK(cut.error().message().find("it ends after") != std::string::npos);
}

TEST_CASE("bounce: CRLF and bare CR in the original become LF; a last line gets its LF",
          "[bounce]") {
  Notice n(compose(failure({local_rcpt()}), "Subject: x\r\n\r\nline\rnext\r\nlast"));
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[2].body == "Subject: x\n\nline\nnext\nlast\n");
}

TEST_CASE("bounce: an 8-bit original is attached as 8bit, and so is the whole report", "[bounce]") {
  std::string original = "Subject: =?UTF-8?B?5pel5pys?=\n\nこんにちは\n";
  Notice n(compose(failure({local_rcpt()}), original));
  CHECK(has_line(n.headers, "Content-Transfer-Encoding: 8bit"));
  REQUIRE(n.parts.size() == 3);
  CHECK(has_line(n.parts[2].headers, "Content-Transfer-Encoding: 8bit"));
  CHECK(n.parts[2].body == original);
  // The text part stays 7-bit whatever the original holds.
  for (char c : n.parts[0].body) CHECK(static_cast<unsigned char>(c) < 0x80);
}

TEST_CASE("bounce: a boundary that occurs in the original is replaced by another", "[bounce]") {
  std::string first = "=_tikimail-dsn-6560a1b2c3d4e5f6-1790000000";
  std::string original = "Subject: trap\n\n--" + first + "\nand --" + first + "-1--\n";
  Notice n(compose(failure({local_rcpt()}), original));
  CHECK(n.boundary == first + "-2");
  REQUIRE(n.parts.size() == 3);
  CHECK(n.parts[2].body == original);
}

TEST_CASE("bounce: quoted-printable round-trips with short lines and no trailing space",
          "[bounce]") {
  std::vector<std::string> samples = {
      "",
      "plain\n",
      "a=b and =3D\n",
      "trailing space \ntrailing tab\t\n",
      std::string(200, 'x') + "\n",
      std::string(75, 'y') + " \n",
      std::string(74, 'z') + "=\n",
      "お送りいただいたメールを、以下の宛先に配信できませんでした。恒久的なエラーのため。\n",
      std::string(73, 'a') + "日本語\n",
      "no final line end",
      "bytes \x01\x7f\xff\n",
  };
  for (const std::string& s : samples) {
    INFO(s);
    std::string encoded = quoted_printable(s);
    CHECK(qp_decode(encoded) == s);
    check_qp_lines(encoded);
  }
  CHECK(quoted_printable("a b \n") == "a b=20\n");
  CHECK(quoted_printable("日\n") == "=E6=97=A5\n");
  // A soft break never splits a character's bytes.
  std::string encoded = quoted_printable(std::string(70, 'a') + "日本\n");
  CHECK(encoded == std::string(70, 'a') + "=\n=E6=97=A5=E6=9C=AC\n");
}

TEST_CASE("bounce: the text part is English then Japanese, and decodes as UTF-8", "[bounce]") {
  Notice n(compose(failure({remote_rcpt(), local_rcpt()})));
  REQUIRE(n.parts.size() == 3);
  check_qp_lines(n.parts[0].body);
  std::string human = qp_decode(n.parts[0].body);
  size_t english = human.find("Your message could not be delivered");
  size_t japanese = human.find("お送りいただいたメールを、以下の宛先に配信できませんでした。");
  REQUIRE(english != std::string::npos);
  REQUIRE(japanese != std::string::npos);
  CHECK(english < japanese);
  CHECK(human.find("<alice@example.net>\n    Status: 5.1.1\n") != std::string::npos);
  CHECK(human.find("<nobody@example.test>\n    状態コード: 5.1.1\n    理由: no such user\n") !=
        std::string::npos);
  CHECK(human.find("Please check that the addresses are spelled correctly") != std::string::npos);
  CHECK(human.find("宛先のメールアドレスに誤りがないかご確認のうえ") != std::string::npos);
  CHECK(human.find("Queue ID (キューID): 6560a1b2c3d4e5f6\n") != std::string::npos);
  CHECK(human.find("Original sender (元の差出人): <bob@example.test>\n") != std::string::npos);
  for (const std::string& line : lines(human)) CHECK(columns(line) <= 72);  // wrapped for reading
}

TEST_CASE("bounce: a double bounce names the null sender and goes to whom the caller says",
          "[bounce]") {
  DsnInput in = failure({local_rcpt()});
  in.to = "postmaster@example.test";
  in.original_sender = "";
  Notice n(compose(in));
  CHECK(has_line(n.headers, "To: <postmaster@example.test>"));
  CHECK(qp_decode(n.parts[0].body).find("Original sender (元の差出人): <> (the null sender)") !=
        std::string::npos);
  in.to = "";
  Notice nobody(compose(in));
  CHECK(has_line(nobody.headers, "To: undisclosed-recipients:;"));
}

TEST_CASE("bounce: CR, LF and control bytes in the input inject no header, field or boundary",
          "[bounce]") {
  DsnRecipient evil;
  evil.address = "evil@example.net\r\nBcc: victim@example.org\n";
  evil.status = "5.1.1";
  evil.remote_host = "mx.example.net\r\nX-Host: 1[192.0.2.1]:25";
  evil.from_remote = true;
  evil.text = "550 no\r\n\r\nFinal-Recipient: rfc822; x@y\n--=_tikimail-dsn-0-1\nContent-Type: text/html";
  DsnInput in = failure({evil});
  in.to = "bob@example.test>\r\nBcc: victim@example.org";
  in.reporting_mta = "mail.example.test\nX-Injected: 1";
  in.queue_id = "6560a1b2c3d4e5f6\nX-Injected: 2";
  in.original_sender = "a\nb@example.test";
  std::string text = compose(in);
  CHECK(text.find('\r') == std::string::npos);
  CHECK_FALSE(has_line_starting(text, "Bcc:"));
  CHECK_FALSE(has_line_starting(text, "X-Injected"));
  CHECK_FALSE(has_line_starting(text, "X-Host"));
  CHECK_FALSE(has_line_starting(text, "Content-Type: text/html"));
  CHECK_FALSE(has_line_starting(text, "--=_tikimail-dsn-0-1"));
  Notice n(text);
  CHECK(has_line(n.headers, "To: <bob@example.testBcc: victim@example.org>"));
  REQUIRE(n.parts.size() == 3);
  // One recipient block only, whatever the text says.
  size_t blocks = 0;
  for (const std::string& line : lines(n.parts[1].body)) blocks += line.starts_with("Final-Recipient:");
  CHECK(blocks == 1);
  CHECK(has_line_starting(n.parts[1].body, "Final-Recipient: rfc822; evil@example.netBcc:"));
  CHECK(has_line_starting(n.parts[1].body, "Diagnostic-Code: smtp; 550 no Final-Recipient:"));
  // Every field line of the report is a field or a continuation.
  for (const std::string& line : lines(n.parts[1].body))
    CHECK((line.empty() || line[0] == ' ' || line.find(':') != std::string::npos));
}

TEST_CASE("bounce: long fields fold at spaces within 78 and unfold to the text", "[bounce]") {
  std::string reply;
  for (int i = 0; i < 60; ++i) reply += fmt::format("word{} ", i);
  reply += "end";
  std::string field = header_field("Diagnostic-Code", "smtp; " + reply);
  std::string unfolded;
  for (const std::string& line : lines(field)) {
    CHECK(line.size() <= 78);
    unfolded += line;
  }
  CHECK(unfolded == "Diagnostic-Code: smtp; " + reply);

  // A word too long for one line is cut with a space put in, below 998 octets.
  std::string word(2500, 'w');
  field = header_field("Diagnostic-Code", "smtp; " + word);
  size_t letters = 0;
  for (const std::string& line : lines(field)) {
    CHECK(line.size() <= 998);
    letters += std::count(line.begin(), line.end(), 'w');
  }
  CHECK(letters == 2500);
  CHECK(header_field("X", "a \t b\r\nc") == "X: a b c\n");
}

TEST_CASE("bounce: an unreadable original is a temporary error, not a notice without it",
          "[bounce]") {
  auto closed = compose_dsn(failure({local_rcpt()}), -1, 10, kNow);
  REQUIRE_FALSE(closed);
  CHECK(closed.error().temporary_failure());

  TempDir dir;
  auto directory = open_file(dir.path().string(), O_RDONLY | O_DIRECTORY);
  REQUIRE(directory);
  auto eisdir = compose_dsn(failure({local_rcpt()}), directory->get(), 10, kNow);
  REQUIRE_FALSE(eisdir);
  CHECK(eisdir.error().temporary_failure());
}

TEST_CASE("bounce: a notice without recipients is refused", "[bounce]") {
  Original file(kOriginal);
  auto notice = compose_dsn(failure({}), file.fd(), file.size(), kNow);
  REQUIRE_FALSE(notice);
  CHECK(notice.error().permanent_failure());
}
