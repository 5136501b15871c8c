#include "core/auth.hpp"

#include <strings.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include <algorithm>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/base64.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/url.hpp"

namespace sluice {
namespace {

bool is_url(const std::string& source) {
  return source.rfind("http://", 0) == 0 || source.rfind("https://", 0) == 0;
}

/// GET of an http(s) URL (server certificates checked against the system's CAs): the body of a 200.
Result<std::string> http_get(const std::string& url) {
  const auto host_end = url.find('/', url.find("://") + 3);
  httplib::Client client(url.substr(0, host_end));
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(5));
  auto res = client.Get(host_end == std::string::npos ? "/" : url.substr(host_end));
  if (!res) {
    // cpp-httplib names only the kind of failure ("Connection"): say why the connection failed.
    std::string why = res.error() == httplib::Error::Connection ? tcp_connect_failure(url) : "";
    return make_error(url, "cannot fetch: " + (why.empty() ? httplib::to_string(res.error()) : why));
  }
  if (res->status != 200) return make_error(url, "answered HTTP " + std::to_string(res->status));
  return res->body;
}

constexpr std::int64_t kLeewaySeconds = 60;

std::string sha256(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::int64_t mtime_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

Error unauthorized(std::string message) {
  return Error{"authorization", std::move(message), 401};
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

/// Builds a public key from OpenSSL parameters (RSA n/e, EC point).
Pkey key_from_params(const char* type, OSSL_PARAM_BLD* builder) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(builder);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (ctx && params && EVP_PKEY_fromdata_init(ctx) == 1)
    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return Pkey(key);
}

Pkey rsa_key(const std::string& n, const std::string& e) {
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  BIGNUM* bn_n =
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e =
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  Pkey key;
  if (builder && bn_n && bn_e && OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
      OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
    key = key_from_params("RSA", builder);
  BN_free(bn_n);
  BN_free(bn_e);
  OSSL_PARAM_BLD_free(builder);
  return key;
}

Pkey ec_p256_key(const std::string& x, const std::string& y) {
  if (x.size() != 32 || y.size() != 32) return nullptr;
  std::string point = "\x04" + x + y;  // uncompressed SEC1 point
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  Pkey key;
  if (builder && OSSL_PARAM_BLD_push_utf8_string(builder, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(builder, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1)
    key = key_from_params("EC", builder);
  OSSL_PARAM_BLD_free(builder);
  return key;
}

bool verify_digest_signature(EVP_PKEY* key, std::string_view signed_part, const std::string& signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

/// JWS ES256 signatures are r || s (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> es256_to_der(const std::string& raw) {
  if (raw.size() != 64) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

/// A JWT header field or claim that must be a string when present: nullopt when it is another type
/// (nlohmann's value() would throw on the request path instead).
std::optional<std::string> string_member(const nlohmann::json& object, const char* name) {
  if (!object.contains(name)) return std::string();
  if (!object[name].is_string()) return std::nullopt;
  return object[name].get<std::string>();
}

}  // namespace

struct Authenticator::Keys {
  struct Key {
    std::string kid;
    std::string kty;  // RSA | EC | oct
    std::shared_ptr<EVP_PKEY> pkey;
    std::string secret;  // oct
  };
  std::vector<Key> keys;
};

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string standard(text);
  for (auto& c : standard) {
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (c == '+' || c == '/' || c == '=')
      return std::nullopt;
  }
  while (standard.size() % 4 != 0) standard += '=';
  return base64_decode(standard);
}

std::string base64url_encode(std::string_view bytes) {
  std::string out = base64_encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
  }
  return out;
}

Result<std::unique_ptr<Authenticator>> Authenticator::create(AuthOptions options, Clock& clock) {
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(options), clock));
  if (!auth->options_.tokens_file.empty())
    if (auto st = auth->load_tokens(); !st) return st.error();
  auto& o = auth->options_;
  if (!o.oidc_issuer.empty() && o.issuer.empty()) o.issuer = o.oidc_issuer;
  if (!o.jwks_file.empty() || !o.oidc_issuer.empty())
    if (auto st = auth->load_jwks(); !st) return st.error();
  if (!auth->jwks_url_.empty()) auth->refresher_ = std::thread([raw = auth.get()] { raw->refresh_loop(); });
  return auth;
}

Authenticator::~Authenticator() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  refresh_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

void Authenticator::refresh_loop() {
  std::unique_lock lock(mu_);
  while (!refresh_cv_.wait_for(lock, options_.jwks_refresh, [&] { return stopping_; })) {
    lock.unlock();
    if (auto st = load_jwks(); !st)
      SLUICE_LOG(server, err, "keeping the previous keys: {}", st.error().to_string());
    lock.lock();
  }
}

Result<std::string> Authenticator::read_jwks() {
  std::string url = is_url(options_.jwks_file) ? options_.jwks_file : "";
  if (options_.jwks_file.empty() && !options_.oidc_issuer.empty()) {
    std::string issuer = options_.oidc_issuer;
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    const std::string discovery = issuer + "/.well-known/openid-configuration";
    auto text = http_get(discovery);
    if (!text) return make_error(discovery, "OpenID Connect discovery failed: " + text.error().message);
    auto doc = nlohmann::json::parse(text.value(), nullptr, false);
    if (!doc.is_object() || !doc.contains("jwks_uri") || !doc["jwks_uri"].is_string())
      return make_error(discovery, "not an OpenID Provider configuration (no \"jwks_uri\")");
    const auto issuer_named = string_member(doc, "issuer").value_or("");
    if (issuer_named != options_.oidc_issuer)
      return make_error(discovery,
                        "names the issuer \"" + issuer_named + "\", not \"" + options_.oidc_issuer + "\"");
    url = doc["jwks_uri"].get<std::string>();
    if (!is_url(url)) return make_error(discovery, "jwks_uri \"" + url + "\" is not an http(s) URL");
  }
  if (url.empty()) {
    auto text = read_file(options_.jwks_file);
    if (!text) return make_error(options_.jwks_file, "cannot read the JWKS file: " + text.error().message);
    return text;
  }
  {
    std::lock_guard lock(mu_);
    jwks_url_ = url;
  }
  return http_get(url);
}

Status Authenticator::load_tokens() {
  const auto& path = options_.tokens_file;
  const auto mtime = mtime_of(path);
  auto text = read_file(path);
  if (!text) return make_error(path, "cannot read the tokens file: " + text.error().message);
  std::map<std::string, Principal> tokens;
  std::istringstream in(text.value());
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string token, subject, groups, extra;
    if (!(fields >> token)) continue;
    if (!(fields >> subject))
      return make_error(path + ":" + std::to_string(number), "expected TOKEN SUBJECT [GROUP,...]");
    fields >> groups;
    if (fields >> extra)
      return make_error(path + ":" + std::to_string(number),
                        "too many fields: expected TOKEN SUBJECT [GROUP,...] (groups separated by commas)");
    if (token.size() < 16)
      return make_error(path + ":" + std::to_string(number), "tokens must be at least 16 characters long");
    Principal p;
    p.subject = subject;
    std::istringstream g(groups);
    for (std::string group; std::getline(g, group, ',');)
      if (!group.empty()) p.groups.push_back(group);
    if (!tokens.emplace(sha256(token), std::move(p)).second)
      return make_error(path + ":" + std::to_string(number), "the same token appears twice");
  }
  std::lock_guard lock(mu_);
  tokens_ = std::move(tokens);
  tokens_mtime_ = mtime;
  return ok();
}

Status Authenticator::load_jwks() {
  const auto mtime = is_url(options_.jwks_file) ? 0 : mtime_of(options_.jwks_file);
  auto text = read_jwks();
  if (!text) return text.error();
  std::string path;
  {
    std::lock_guard lock(mu_);
    path = jwks_url_.empty() ? options_.jwks_file : jwks_url_;
  }
  auto doc = nlohmann::json::parse(text.value(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    return make_error(path, "a JWKS is a JSON object with a \"keys\" array (RFC 7517)");
  auto keys = std::make_shared<Keys>();
  for (std::size_t i = 0; i < doc["keys"].size(); ++i) {
    const auto& jwk = doc["keys"][i];
    const std::string where = path + ": keys[" + std::to_string(i) + "]";
    if (!jwk.is_object()) return make_error(where, "must be an object");
    Keys::Key key;
    const auto kid = string_member(jwk, "kid");
    const auto kty = string_member(jwk, "kty");
    if (!kid) return make_error(where + ".kid", "must be a string");
    if (!kty) return make_error(where + ".kty", "must be RSA, EC or oct");
    key.kid = *kid;
    key.kty = *kty;
    auto field = [&](const char* name) -> std::optional<std::string> {
      if (!jwk.contains(name) || !jwk[name].is_string()) return std::nullopt;
      return base64url_decode(jwk[name].get<std::string>());
    };
    if (key.kty == "RSA") {
      auto n = field("n"), e = field("e");
      if (!n || !e) return make_error(where, "an RSA key needs base64url \"n\" and \"e\"");
      key.pkey.reset(rsa_key(*n, *e).release(), EVP_PKEY_free);
    } else if (key.kty == "EC") {
      if (string_member(jwk, "crv") != "P-256")
        return make_error(where + ".crv", "only P-256 (ES256) is supported");
      auto x = field("x"), y = field("y");
      if (!x || !y) return make_error(where, "an EC key needs base64url \"x\" and \"y\"");
      key.pkey.reset(ec_p256_key(*x, *y).release(), EVP_PKEY_free);
    } else if (key.kty == "oct") {
      auto k = field("k");
      if (!k || k->size() < 32)
        return make_error(where, "an oct key needs a base64url \"k\" of at least 32 bytes");
      key.secret = *k;
    } else {
      return make_error(where + ".kty", "must be RSA, EC or oct");
    }
    if (key.kty != "oct" && !key.pkey) return make_error(where, "not a valid public key");
    keys->keys.push_back(std::move(key));
  }
  std::lock_guard lock(mu_);
  keys_ = std::move(keys);
  jwks_mtime_ = mtime;
  return ok();
}

void Authenticator::reload_if_changed() {
  auto reload = [](const std::string& path, std::int64_t known, auto&& load) {
    if (path.empty() || mtime_of(path) == known) return;
    if (auto st = load(); !st)
      SLUICE_LOG(server, err, "keeping the previous credentials: {}", st.error().to_string());
    else
      SLUICE_LOG(server, info, "reloaded {}", path);
  };
  std::int64_t tokens_mtime, jwks_mtime;
  {
    std::lock_guard lock(mu_);
    tokens_mtime = tokens_mtime_;
    jwks_mtime = jwks_mtime_;
  }
  reload(options_.tokens_file, tokens_mtime, [this] { return load_tokens(); });
  if (!is_url(options_.jwks_file)) reload(options_.jwks_file, jwks_mtime, [this] { return load_jwks(); });
}

Result<Principal> Authenticator::authenticate(std::string_view authorization) const {
  if (authorization.empty()) return unauthorized("missing Authorization header (expected \"Bearer TOKEN\")");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      strncasecmp(authorization.data(), kBearer.data(), kBearer.size()) != 0)
    return unauthorized("the Authorization header must be \"Bearer TOKEN\"");
  std::string_view token = authorization.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(sha256(token));
    if (it != tokens_.end()) return it->second;
  }
  if (keys_ && std::count(token.begin(), token.end(), '.') == 2) return verify_jwt(token);
  return unauthorized("unknown token");
}

Result<Principal> Authenticator::verify_jwt(std::string_view token) const {
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  auto header_text = base64url_decode(token.substr(0, dot1));
  auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!header_text || !payload_text || !signature) return unauthorized("malformed JWT (bad base64url)");
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  auto claims = nlohmann::json::parse(*payload_text, nullptr, false);
  if (!header.is_object() || !claims.is_object()) return unauthorized("malformed JWT (not JSON objects)");
  const auto alg_field = string_member(header, "alg");
  const auto kid_field = string_member(header, "kid");
  if (!alg_field || !kid_field) return unauthorized("malformed JWT (alg and kid must be strings)");
  const std::string& alg = *alg_field;
  const std::string& kid = *kid_field;
  const char* kty = alg == "RS256" ? "RSA" : alg == "ES256" ? "EC" : alg == "HS256" ? "oct" : nullptr;
  if (!kty) return unauthorized("JWT algorithm \"" + alg + "\" is not accepted (RS256, ES256, HS256)");

  std::shared_ptr<const Keys> keys;
  {
    std::lock_guard lock(mu_);
    keys = keys_;
  }
  const std::string_view signed_part = token.substr(0, dot2);
  bool verified = false;
  bool candidate = false;
  for (const auto& key : keys->keys) {
    if (key.kty != kty || (!kid.empty() && !key.kid.empty() && key.kid != kid)) continue;
    candidate = true;
    if (key.kty == "oct") {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
           reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &mac_len);
      verified = signature->size() == mac_len && CRYPTO_memcmp(mac, signature->data(), mac_len) == 0;
    } else if (key.kty == "EC") {
      auto der = es256_to_der(*signature);
      verified = der && verify_digest_signature(key.pkey.get(), signed_part, *der);
    } else {
      verified = verify_digest_signature(key.pkey.get(), signed_part, *signature);
    }
    if (verified) break;
  }
  if (!candidate)
    return unauthorized("no key in the JWKS matches the JWT (kid \"" + kid + "\", " + alg + ")");
  if (!verified) return unauthorized("the JWT's signature does not verify");

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count();
  if (claims.contains("exp")) {
    if (!claims["exp"].is_number()) return unauthorized("the JWT's exp is not a number");
    if (claims["exp"].get<double>() + kLeewaySeconds < static_cast<double>(now))
      return unauthorized("the JWT has expired");
  }
  if (claims.contains("nbf")) {
    if (!claims["nbf"].is_number()) return unauthorized("the JWT's nbf is not a number");
    if (claims["nbf"].get<double>() - kLeewaySeconds > static_cast<double>(now))
      return unauthorized("the JWT is not valid yet (nbf)");
  }
  const auto iss = string_member(claims, "iss");
  const auto sub = string_member(claims, "sub");
  if (!iss || !sub) return unauthorized("the JWT's iss and sub claims must be strings");
  if (!options_.issuer.empty() && *iss != options_.issuer)
    return unauthorized("the JWT's issuer is not \"" + options_.issuer + "\"");
  if (!options_.audience.empty()) {
    bool found = false;
    if (claims.contains("aud") && claims["aud"].is_string()) found = claims["aud"] == options_.audience;
    if (claims.contains("aud") && claims["aud"].is_array())
      for (const auto& a : claims["aud"]) found = found || (a.is_string() && a == options_.audience);
    if (!found) return unauthorized("the JWT's audience does not include \"" + options_.audience + "\"");
  }
  Principal p;
  p.subject = *sub;
  if (p.subject.empty()) return unauthorized("the JWT has no sub claim");
  if (claims.contains("groups")) {
    const auto& g = claims["groups"];
    if (g.is_string()) p.groups.push_back(g.get<std::string>());
    if (g.is_array())
      for (const auto& item : g)
        if (item.is_string()) p.groups.push_back(item.get<std::string>());
  }
  return p;
}

}  // namespace sluice
