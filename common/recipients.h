// common/recipients.h: lookups in users/recipients, the public, sorted list of account
// addresses that mailpasswd derives from users/accounts (common/README.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tikimail {

// Loads the file once; each lookup is a binary search. A missing file is an empty list.
class Recipients {
 public:
  static Result<Recipients> load(const std::string& path);
  // `address` is compared lowercased; the file holds lowercase addresses.
  bool contains(std::string_view address) const;
  size_t size() const { return count_; }

 private:
  std::string text_;      // the whole file
  std::string index_;     // offsets of line starts, 4 bytes each
  size_t count_ = 0;
};

// The rcpthosts rule: `domain` (lowercase) is ours when listed exactly, or when a
// line `.suffix` matches its end ("sub.example.test" for ".example.test").
class DomainList {
 public:
  static Result<DomainList> load(const std::string& path);
  static DomainList from_lines(std::vector<std::string> lines);
  bool contains(std::string_view domain) const;
  bool empty() const { return lines_.empty(); }

 private:
  std::vector<std::string> lines_;
};

}  // namespace tikimail
