// pop3d/pop3_replies.h: every fixed reply pop3d-session sends (RFC 1939, response codes of
// RFC 2449 and RFC 3206). Replies with numbers are formatted in transaction.cpp from the
// format strings here. Tests compare against these constants.
#pragma once

#include <string_view>

namespace tikimail::pop3_session {

// Before the TRANSACTION state: each answers the client's PASS or APOP, then the stage exits.
inline constexpr std::string_view kInUse = "-ERR [IN-USE] mailbox in use by another session";
inline constexpr std::string_view kLoginDelayFormat = "-ERR [LOGIN-DELAY] wait {} more seconds";
inline constexpr std::string_view kCannotOpen = "-ERR [SYS/TEMP] cannot open the mailbox, try again later";
inline constexpr std::string_view kRefuseRoot = "-ERR [SYS/TEMP] mailbox service misconfigured";
inline constexpr std::string_view kNoConfig = "-ERR [SYS/TEMP] cannot read the configuration, try again later";
// The successful login: "+OK 2 messages (320 octets)".
inline constexpr std::string_view kLoggedInFormat = "+OK {} messages ({} octets)";

// TRANSACTION state.
inline constexpr std::string_view kOk = "+OK";
inline constexpr std::string_view kStatFormat = "+OK {} {}";
inline constexpr std::string_view kListFollows = "+OK {} messages ({} octets)";
inline constexpr std::string_view kListOneFormat = "+OK {} {}";
inline constexpr std::string_view kUidlFollows = "+OK unique-id listing follows";
inline constexpr std::string_view kUidlOneFormat = "+OK {} {}";
inline constexpr std::string_view kRetrFormat = "+OK {} octets";
inline constexpr std::string_view kTopFollows = "+OK top of message follows";
inline constexpr std::string_view kDeletedFormat = "+OK message {} deleted";
inline constexpr std::string_view kRsetFormat = "+OK maildrop has {} messages ({} octets)";
inline constexpr std::string_view kCapaFollows = "+OK capability list follows";
inline constexpr std::string_view kBye = "+OK bye";

inline constexpr std::string_view kNoSuchMessage = "-ERR no such message";
inline constexpr std::string_view kAlreadyDeletedFormat = "-ERR message {} already deleted";
inline constexpr std::string_view kGoneFormat = "-ERR [SYS/TEMP] message {} is gone";
inline constexpr std::string_view kUnreadableFormat = "-ERR [SYS/TEMP] cannot read message {}";
inline constexpr std::string_view kSyntax = "-ERR syntax error";
inline constexpr std::string_view kUnknownCommand = "-ERR unknown command";
inline constexpr std::string_view kNotInThisState = "-ERR command not valid in this state";
inline constexpr std::string_view kLineTooLong = "-ERR line too long";
// The last reply before the stage closes the connection.
inline constexpr std::string_view kTooManyErrors = "-ERR too many errors";

// UPDATE state (after QUIT).
inline constexpr std::string_view kNotRemoved = "-ERR [SYS/TEMP] some deleted messages were not removed";

}  // namespace tikimail::pop3_session
