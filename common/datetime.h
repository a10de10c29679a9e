// common/datetime.h: dates as mail headers write them.
#pragma once

#include <ctime>
#include <string>

namespace tikimail {

// RFC 5322 section 3.3 date-time in local time with a numeric zone:
// "Mon, 23 Nov 2026 12:34:56 +0900". Day and month names are English, whatever the locale.
std::string rfc5322_date(time_t when);

}  // namespace tikimail
