// smtpd/replies.h: every fixed reply smtpd sends. The seed texts (S4, S5) are exact; the
// rest carry RFC 3463 enhanced status codes. Tests compare against these constants.
#pragma once

#include <string_view>

namespace tikimail::smtp {

struct Reply {
  int code;
  std::string_view text;
};

// Seeds: exact texts, no enhanced code in front.
inline constexpr Reply kRelayDenied{550, "Relaying denied."};
inline constexpr Reply kTooBig{552, "sorry, that message size exceeds my databytes limit (#5.3.4)"};

inline constexpr Reply kMailOk{250, "2.1.0 Ok"};
inline constexpr Reply kRcptOk{250, "2.1.5 Ok"};
inline constexpr Reply kOk{250, "2.0.0 Ok"};
inline constexpr Reply kStartData{354, "End data with <CR><LF>.<CR><LF>"};
inline constexpr Reply kVrfy{252, "2.5.2 Cannot VRFY user, but will accept message and attempt delivery"};
inline constexpr Reply kHelp{214, "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"};
inline constexpr Reply kBye{221, "2.0.0 Bye"};

inline constexpr Reply kNeedHelo{503, "5.5.1 Send HELO or EHLO first"};
inline constexpr Reply kNeedMail{503, "5.5.1 Send MAIL first"};
inline constexpr Reply kNeedRcpt{503, "5.5.1 Send RCPT first"};
inline constexpr Reply kNoValidRcpt{554, "5.5.1 No valid recipients"};
inline constexpr Reply kLooping{554, "5.4.6 Too many hops, this message is looping"};
inline constexpr Reply kNestedMail{503, "5.5.1 Already in a mail transaction"};
inline constexpr Reply kUnknownCommand{500, "5.5.2 Command not recognized"};
inline constexpr Reply kNotImplemented{502, "5.5.1 Command not implemented"};
inline constexpr Reply kLineTooLong{500, "5.5.2 Line too long"};
inline constexpr Reply kSyntax{501, "5.5.4 Syntax error in parameters"};
inline constexpr Reply kHeloSyntax{501, "5.5.4 HELO and EHLO need a host name"};
inline constexpr Reply kBadSender{501, "5.1.7 Bad sender address syntax"};
inline constexpr Reply kBadRcpt{501, "5.1.3 Bad recipient address syntax"};
// RFC 3463: 5.1.7 is the sender's address, 5.1.3 a recipient's.
inline constexpr Reply kSenderPathTooLong{501, "5.1.7 Path too long"};
inline constexpr Reply kRcptPathTooLong{501, "5.1.3 Path too long"};
inline constexpr Reply kUnknownParam{555, "5.5.4 Unsupported parameter"};
inline constexpr Reply kUnknownUser{550, "5.1.1 No such user here"};
inline constexpr Reply kTooManyRcpts{452, "4.5.3 Too many recipients"};
inline constexpr Reply kNoRecipientList{451, "4.3.0 Recipient list unavailable, try again later"};
inline constexpr Reply kQueueStart{451, "4.3.0 Cannot start the queue, try again later"};
inline constexpr Reply kDataNoParams{501, "5.5.4 DATA takes no parameters"};

// STARTTLS (RFC 3207).
inline constexpr Reply kReadyTls{220, "2.0.0 Ready to start TLS"};
inline constexpr Reply kStartTlsNoParams{501, "5.5.4 STARTTLS takes no parameters"};

// SMTP AUTH (RFC 4954) and the submission rules.
inline constexpr Reply kAuthOk{235, "2.7.0 Authentication successful"};
inline constexpr Reply kAuthUsername{334, "VXNlcm5hbWU6"};  // base64 "Username:" (LOGIN)
inline constexpr Reply kAuthPassword{334, "UGFzc3dvcmQ6"};  // base64 "Password:" (LOGIN)
inline constexpr Reply kAuthContinue{334, ""};              // PLAIN without an initial response
inline constexpr Reply kAuthNeedsTls{538, "5.7.11 Encryption required for requested authentication mechanism"};
inline constexpr Reply kAuthUnknownMechanism{504, "5.5.4 Unrecognized authentication type"};
inline constexpr Reply kAuthAlready{503, "5.5.1 Already authenticated"};
inline constexpr Reply kAuthInTransaction{503, "5.5.1 AUTH not permitted during a mail transaction"};
inline constexpr Reply kAuthCancelled{501, "5.0.0 Authentication cancelled"};
inline constexpr Reply kAuthBadBase64{501, "5.5.2 Cannot decode response"};
inline constexpr Reply kAuthMalformed{501, "5.5.2 Malformed authentication response"};
inline constexpr Reply kAuthLineTooLong{500, "5.5.6 Authentication exchange line is too long"};
inline constexpr Reply kAuthInvalid{535, "5.7.8 Authentication credentials invalid"};
inline constexpr Reply kAuthTemporary{454, "4.7.0 Temporary authentication failure"};
inline constexpr Reply kAuthRequired{530, "5.7.0 Authentication required"};
inline constexpr Reply kSenderNotOwned{553, "5.7.1 Sender address not owned by authenticated account"};

// Closing replies (followed by the end of the session).
inline constexpr Reply kTooManyErrors{421, "4.7.0 Too many errors, closing connection"};
inline constexpr Reply kTimeout{421, "4.4.2 Timeout, closing connection"};
inline constexpr Reply kTooManyAuthFailures{421, "4.7.0 Too many authentication failures"};
inline constexpr Reply kUnavailable{421, "4.3.0 Service temporarily unavailable, closing connection"};

}  // namespace tikimail::smtp
