// pop3d/prelogin_replies.h: every reply the pre-login stage (pop3d) sends. Response codes in
// brackets are RFC 2449's RESP-CODES and RFC 3206's AUTH and SYS/TEMP. Tests compare against
// these constants.
#pragma once

#include <string_view>

namespace tikimail::pop3 {

inline constexpr std::string_view kGreeting = "+OK tikimail POP3 server ready";  // + " <pid.time@host>" with APOP
inline constexpr std::string_view kUserOk = "+OK send PASS";
inline constexpr std::string_view kCapaHead = "+OK capability list follows";
inline constexpr std::string_view kBye = "+OK tikimail POP3 server signing off";

// Login failures: the same text whatever went wrong (unknown account, wrong password, APOP
// off), so that a client learns nothing about which addresses exist.
inline constexpr std::string_view kAuthFailed = "-ERR [AUTH] authentication failed";
inline constexpr std::string_view kTooManyFailures = "-ERR [AUTH] too many failures";
inline constexpr std::string_view kTemporary = "-ERR [SYS/TEMP] temporary failure, try again later";

inline constexpr std::string_view kNeedUser = "-ERR send USER first";
inline constexpr std::string_view kUserSyntax = "-ERR USER wants one account address";
inline constexpr std::string_view kPassSyntax = "-ERR PASS wants a password";
inline constexpr std::string_view kApopSyntax = "-ERR APOP wants an account address and 32 hex digits";
inline constexpr std::string_view kNoApop = "-ERR APOP is not available here";
inline constexpr std::string_view kStlsGo = "+OK begin TLS negotiation";          // RFC 2595 section 4
inline constexpr std::string_view kTlsActive = "-ERR TLS is already active";       // STLS over TLS
inline constexpr std::string_view kNoStls = "-ERR STLS is not available here";     // no tlsd control fd
inline constexpr std::string_view kStlsSyntax = "-ERR STLS takes no argument";
inline constexpr std::string_view kStlsAfterUser = "-ERR STLS must come before USER";
inline constexpr std::string_view kNotYet = "-ERR not before login";  // RFC 1939: TRANSACTION commands
inline constexpr std::string_view kUnknownCommand = "-ERR unknown command";
inline constexpr std::string_view kLineTooLong = "-ERR line too long";
inline constexpr std::string_view kTooManyBad = "-ERR too many bad commands";
inline constexpr std::string_view kUnavailable = "-ERR [SYS/TEMP] service unavailable";  // could not start

}  // namespace tikimail::pop3
