// common/status.h: Status and Result<T>, the error values every module returns (no exceptions).
#pragma once

#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace tikimail {

// A failure is temporary (try again later: disk full, timeout, peer gone) or
// permanent (the request itself is wrong). Context says what was being done.
class Status {
 public:
  enum class Kind { kOk, kTemporary, kPermanent };

  Status() = default;
  static Status ok() { return Status(); }
  static Status temporary(std::string what) { return Status(Kind::kTemporary, std::move(what)); }
  static Status permanent(std::string what) { return Status(Kind::kPermanent, std::move(what)); }
  // A syscall failure: "open control/me: Permission denied". Temporary, as
  // almost every errno on a mail host is (EACCES included: fix it and retry).
  static Status from_errno(std::string_view what, int err);

  bool is_ok() const { return kind_ == Kind::kOk; }
  explicit operator bool() const { return is_ok(); }
  bool temporary_failure() const { return kind_ == Kind::kTemporary; }
  bool permanent_failure() const { return kind_ == Kind::kPermanent; }
  Kind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  int errno_value() const { return errno_; }

 private:
  Status(Kind kind, std::string message) : kind_(kind), message_(std::move(message)) {}
  Kind kind_ = Kind::kOk;
  std::string message_;
  int errno_ = 0;
};

// Result<T> holds a T or a failed Status; it has std::expected's shape
// (has_value, operator*, operator->, error) so C++23 can replace it.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                         // NOLINT: implicit by design
  Result(Status error) : v_(std::move(error)) {}                    // NOLINT: implicit by design
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const Status& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

inline Status Status::from_errno(std::string_view what, int err) {
  Status s(Kind::kTemporary, fmt::format("{}: {}", what, std::strerror(err)));
  s.errno_ = err;
  return s;
}

}  // namespace tikimail
