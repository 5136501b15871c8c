#pragma once
// Bearer-token authentication: static tokens from a file, and JWTs verified against a JWKS.
//
// Tokens file (one token a line; `#` starts a comment):
//
//   s3cr3t-token-for-ci   ci-publisher              publishers
//   another-long-token    alice                     admin,publishers
//   TOKEN                 SUBJECT                   [GROUP,GROUP...]
//
// Only SHA-256 digests of the tokens are kept in memory and compared, so a lookup takes the same time
// whatever the token; tokens never appear in errors or logs.
//
// JWTs (RFC 7519) signed with RS256, ES256 or HS256 are verified against the keys of a JWKS (RFC 7517:
// `kty` RSA with n/e, EC P-256 with x/y, oct with k), picked by `kid` when the token names one. The JWKS
// is a file, an http(s) URL, or found through OpenID Connect discovery: the `jwks_uri` of
// `{issuer}/.well-known/openid-configuration` (whose `issuer` must be the one configured; tokens must then
// carry it as `iss`). `exp` and `nbf` are checked with 60 s of leeway, `iss` and `aud` when configured. The
// subject is `sub`; groups come from the `groups` claim (an array of strings, or one string).
//
// The files are read again when their modification time changes (reload_if_changed()), and a JWKS
// fetched over HTTP again every `jwks_refresh` (on a thread of its own), so tokens and keys rotate
// without a restart.

#include <chrono>
#include <map>
#include <thread>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/principal.hpp"
#include "core/result.hpp"

namespace sluice {

struct AuthOptions {
  std::string tokens_file;
  std::string jwks_file;    // a file, or an http:// or https:// URL
  std::string issuer;       // required `iss` when not empty
  std::string audience;     // required in `aud` when not empty
  std::string oidc_issuer;  // discover the JWKS from this issuer (and require it as `iss`)
  std::chrono::seconds jwks_refresh{300};
};

class Authenticator {
 public:
  /// Loads the files. An unreadable or malformed file is an error naming it and the line or key.
  static Result<std::unique_ptr<Authenticator>> create(AuthOptions options, Clock& clock);
  ~Authenticator();

  /// True when any way of authenticating is configured.
  bool enabled() const {
    return !options_.tokens_file.empty() || !options_.jwks_file.empty() || !options_.oidc_issuer.empty();
  }

  /// Authenticates an `Authorization` header value ("Bearer TOKEN"). Errors (code 401) say what is
  /// wrong without echoing the token: missing, not a bearer token, unknown, expired, bad signature...
  Result<Principal> authenticate(std::string_view authorization) const;

  /// Re-reads files whose modification time changed; a bad new file is logged and the old one kept.
  void reload_if_changed();

  struct Keys;  // internal

 private:
  Authenticator(AuthOptions options, Clock& clock) : options_(std::move(options)), clock_(clock) {}
  Status load_tokens();
  Status load_jwks();
  /// The JWKS document: the file, or the URL (found by discovery first when configured).
  Result<std::string> read_jwks();
  void refresh_loop();
  Result<Principal> verify_jwt(std::string_view token) const;

  AuthOptions options_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Principal> tokens_;  // SHA-256(token) → principal
  std::shared_ptr<const Keys> keys_;
  std::int64_t tokens_mtime_ = 0;
  std::int64_t jwks_mtime_ = 0;
  std::string jwks_url_;  // set when the JWKS comes over HTTP
  std::condition_variable refresh_cv_;
  bool stopping_ = false;
  std::thread refresher_;
};

/// Decodes base64url without padding (RFC 4648 §5), as JWTs and JWKs use; nullopt when malformed.
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64url_encode(std::string_view bytes);

}  // namespace sluice
