#pragma once
// Who is calling: the subject and groups authentication found (core/auth.hpp), for authorization.

#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// Who sent a request, once the server's guard authenticated it (see HttpServer::set_guard).
struct Principal {
  std::string subject;              // empty: anonymous (authentication is off, or an open path)
  std::vector<std::string> groups;  // roles from the token file or the JWT's `groups` claim

  bool in_group(std::string_view group) const {
    for (const auto& g : groups)
      if (g == group) return true;
    return false;
  }
};

}  // namespace sluice
