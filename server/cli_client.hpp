#pragma once
// What every CLI verb that talks to a running server shares: where the server is (--server or
// SLUICE_SERVER, default http://127.0.0.1:8080), the bearer token (--token or SLUICE_TOKEN), an HTTP
// client for it, and how a failed request is reported.

#include <httplib.h>

#include <ostream>
#include <string>
#include <vector>

namespace sluice::cli {

struct Target {
  std::string base;   // http://host:port
  std::string token;  // sent as "Authorization: Bearer …" when not empty
};

/// Takes --server and --token from the arguments (falling back to the environment).
Target server_of(std::vector<std::string>& args);
httplib::Client client_for(const Target& target);
/// Percent-encodes everything but unreserved characters (RFC 3986), for one path segment.
std::string escape_path_segment(const std::string& segment);
/// Prints rows as left-aligned columns three spaces apart (the first row is the header).
void print_columns(std::ostream& out, const std::vector<std::vector<std::string>>& rows);
/// Prints the server's error ({"error": …}) or the transport error; returns exit code 1.
int report_failure(const Target& target, const httplib::Result& res);

}  // namespace sluice::cli
