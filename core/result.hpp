#pragma once
// Result types for the request path: no exceptions cross a handler or coroutine boundary.

#include <string>
#include <utility>

#include <boost/outcome.hpp>

namespace sluice {

/// A user-visible error: what is wrong (`subject`: the attribute, field, broker…) and why.
/// `code` is an optional machine-readable kind (for example an HTTP status or a CESQL error kind).
struct Error {
  std::string subject;
  std::string message;
  int code = 0;
  /// A CamelCase cause for a resource's Ready condition (`BrokerDoesNotExist`), as Kubernetes conditions
  /// give one; empty when the error has none.
  std::string reason = {};

  /// "subject: message", or just the message when there is no subject.
  std::string to_string() const { return subject.empty() ? message : subject + ": " + message; }
};

/// `Result<T>` holds a T or an Error. Accessing the wrong alternative terminates: check first.
template <class T>
using Result = boost::outcome_v2::result<T, Error, boost::outcome_v2::policy::terminate>;

using Status = Result<void>;

inline Status ok() {
  return boost::outcome_v2::success();
}

inline Error make_error(std::string subject, std::string message, int code = 0) {
  return Error{std::move(subject), std::move(message), code};
}

/// `error` with a condition reason (see Error::reason).
inline Error with_reason(Error error, std::string reason) {
  error.reason = std::move(reason);
  return error;
}

}  // namespace sluice
