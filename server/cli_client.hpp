#pragma once
// What every CLI verb that talks to a running server shares: where the server is (--server or
// SLUICE_SERVER, default http://127.0.0.1:8080), the bearer token (--token or SLUICE_TOKEN), an HTTP
// client for it, and how a failed request is reported.

#include <httplib.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
/// `value` with `decimals` digits after the point.
std::string fixed(double value, int decimals);
/// GETs `path` and prints render(answer); with `watch`, again every second whenever the text changes,
/// until interrupted. Returns the exit code (1 when the request fails or the answer is not JSON).
int show(const Target& target, const std::string& path, bool watch,
         const std::function<std::string(const nlohmann::json&)>& render);
/// Why a request to the target failed without an answer, in words: for a failed connection the operating
/// system's reason ("Connection refused", "Name or service not known"), found by connecting again, since
/// httplib reports every such failure as Error::Connection.
std::string transport_error_text(const Target& target, httplib::Error error);
/// Prints the server's error ({"error": …}) or the transport error; returns exit code 1.
int report_failure(const Target& target, const httplib::Result& res);

}  // namespace sluice::cli
