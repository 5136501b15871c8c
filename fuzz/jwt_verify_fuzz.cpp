// libFuzzer target: bearer-token authentication with JWTs (core/auth.hpp). The first byte picks the mode.
// 0 (even): the input is a token checked against a fixed JWKS (an RSA, an EC P-256 and an HMAC key) with
// an issuer and an audience configured; whatever is accepted is checked again here, independently: the
// signature with the public keys (PEM) or the secret, and iss, aud, exp, nbf and sub. The seeds are tokens
// signed with the matching private keys, which are not kept.
// 1 (odd): the input is a JWKS, a NUL, and a token: loading the JWKS and checking the token must not
// crash, and no token with an empty signature or another algorithm than RS256, ES256, HS256 passes.
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/auth.hpp"
#include "core/clock.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "fuzz/work_dir.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "jwt_verify_fuzz: %s\n", what.c_str());
  std::abort();
}

constexpr std::int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
constexpr const char* kIssuer = "https://issuer.example";
constexpr const char* kAudience = "sluice";

constexpr const char* kJwks =
    R"({"keys": [{"kty": "RSA", "kid": "rsa-1", "n": "sPr0kL-I9OJb4dILg487UvtVt_1TCetLEJgCwbHzt6hm-Ww4WgMaf3XJ7a4FyQoRvbJhs5gFUqRcLEv5Maep6ga62zNbYNeOrL-n5C7Bg4IomW1bPjnZ9Fo4_1a74smrkaUppiEu2jLsOftYintNJU5wm5ZRoA4jf3Pl9USljyGFA7Rx_aPb6UryhuMIqox7gD3PrEZrZYC2iy_1lS7i33wWSzwcSfNqiB0-FvN3eJls9KyGm8IpNTOi7m_8dDQhbQD2ED_RwMLLPcfi8C_RoLRjH46VcdI3OHRSaj9R4JwIqTv0gIBaIqFj8JWJKirP8SMANRjF3Nybp7Q1e6PBOQ", "e": "AQAB"}, {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "Hkq8sd3HyybZFq11rGnOkbstgvNyj0H69r1qpMQnCwE", "y": "QhXymeS6Z5BBWqT1T-2u_eiBWyLdr2fGwRh2LDUTVYI"}, {"kty": "oct", "kid": "hmac-1", "k": "Hq_dbc41VNGYFSt8e7KnEy8hv1BzQ_hrgNB3_NB9ECA"}]})";
constexpr const char* kRsaPem = R"(-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsPr0kL+I9OJb4dILg487
UvtVt/1TCetLEJgCwbHzt6hm+Ww4WgMaf3XJ7a4FyQoRvbJhs5gFUqRcLEv5Maep
6ga62zNbYNeOrL+n5C7Bg4IomW1bPjnZ9Fo4/1a74smrkaUppiEu2jLsOftYintN
JU5wm5ZRoA4jf3Pl9USljyGFA7Rx/aPb6UryhuMIqox7gD3PrEZrZYC2iy/1lS7i
33wWSzwcSfNqiB0+FvN3eJls9KyGm8IpNTOi7m/8dDQhbQD2ED/RwMLLPcfi8C/R
oLRjH46VcdI3OHRSaj9R4JwIqTv0gIBaIqFj8JWJKirP8SMANRjF3Nybp7Q1e6PB
OQIDAQAB
-----END PUBLIC KEY-----
)";
constexpr const char* kEcPem = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHkq8sd3HyybZFq11rGnOkbstgvNy
j0H69r1qpMQnCwFCFfKZ5LpnkEFapPVP7a796IFbIt2vZ8bBGHYsNRNVgg==
-----END PUBLIC KEY-----
)";
constexpr const char* kSecret = "Hq_dbc41VNGYFSt8e7KnEy8hv1BzQ_hrgNB3_NB9ECA";

sluice::ManualClock& clock_at_now() {
  static sluice::ManualClock clock(sluice::SteadyTime{} + std::chrono::hours(1),
                                   sluice::WallTime{} + std::chrono::seconds(kNow));
  return clock;
}

/// base64url without padding, decoded strictly (RFC 4648 §5); nullopt when malformed.
std::optional<std::string> decode(std::string_view text) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const auto at = kAlphabet.find(c);
    if (at == std::string_view::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(at);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

std::shared_ptr<EVP_PKEY> pem_key(const char* pem) {
  BIO* bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) fail("bad PEM key");
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

bool verify(EVP_PKEY* key, std::string_view signed_part, const std::string& signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

/// ES256's r || s as the DER that OpenSSL verifies.
std::string es256_der(const std::string& raw) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(std::max(len, 0)));
  OPENSSL_free(der);
  return out;
}

/// Checks an accepted token again, without the Authenticator's code.
void check_accepted(std::string_view token, const sluice::Principal& principal) {
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  if (dot1 == std::string_view::npos || dot2 == std::string_view::npos ||
      token.find('.', dot2 + 1) != std::string_view::npos)
    fail("accepted a token that is not three parts");
  auto header_text = decode(token.substr(0, dot1));
  auto claims_text = decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = decode(token.substr(dot2 + 1));
  if (!header_text || !claims_text || !signature) fail("accepted a token that is not base64url");
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  auto claims = nlohmann::json::parse(*claims_text, nullptr, false);
  if (!header.is_object() || !claims.is_object() || !header.contains("alg") || !header["alg"].is_string())
    fail("accepted a token whose header or claims are not JSON objects with an alg");
  const std::string alg = header["alg"].get<std::string>();
  const std::string_view signed_part = token.substr(0, dot2);
  bool good = false;
  if (alg == "RS256") {
    static const auto rsa = pem_key(kRsaPem);
    good = verify(rsa.get(), signed_part, *signature);
  } else if (alg == "ES256") {
    static const auto ec = pem_key(kEcPem);
    good = signature->size() == 64 && verify(ec.get(), signed_part, es256_der(*signature));
  } else if (alg == "HS256") {
    static const std::string secret = *decode(kSecret);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &mac_len);
    good = signature->size() == mac_len && CRYPTO_memcmp(mac, signature->data(), mac_len) == 0;
  }
  if (!good) fail("accepted a token whose signature does not verify (alg " + alg + ")");
  auto string_claim = [&](const char* name) -> std::string {
    if (!claims.contains(name) || !claims[name].is_string())
      fail(std::string("accepted without a string ") + name);
    return claims[name].get<std::string>();
  };
  if (string_claim("iss") != kIssuer) fail("accepted another issuer");
  if (string_claim("sub").empty() || principal.subject != string_claim("sub")) fail("accepted a bad subject");
  bool audience = false;
  if (claims.contains("aud") && claims["aud"].is_string()) audience = claims["aud"] == kAudience;
  if (claims.contains("aud") && claims["aud"].is_array())
    for (const auto& a : claims["aud"]) audience = audience || a == kAudience;
  if (!audience) fail("accepted another audience");
  if (claims.contains("exp") && !(claims["exp"].is_number() && claims["exp"].get<double>() + 60 >= kNow))
    fail("accepted an expired token");
  if (claims.contains("nbf") && !(claims["nbf"].is_number() && claims["nbf"].get<double>() - 60 <= kNow))
    fail("accepted a token before its nbf");
}

std::string_view trimmed(std::string_view token) {
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = [] {
    sluice::log::set_level("off");
    return sluice::fuzz::work_dir("jwt-fuzz");
  }();
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  if ((data[0] & 1) == 0) {
    static const auto fixed = [] {
      if (!sluice::write_file_atomic(dir + "/fixed.jwks", kJwks)) fail("cannot write the JWKS");
      sluice::AuthOptions options;
      options.jwks_file = dir + "/fixed.jwks";
      options.issuer = kIssuer;
      options.audience = kAudience;
      auto auth = sluice::Authenticator::create(options, clock_at_now());
      if (!auth) fail("the fixed JWKS does not load: " + auth.error().to_string());
      return std::shared_ptr<sluice::Authenticator>(std::move(auth).value());
    }();
    const std::string authorization = "Bearer " + std::string(input);
    auto principal = fixed->authenticate(authorization);
    if (principal) check_accepted(trimmed(input), principal.value());
    return 0;
  }

  const auto nul = input.find('\0');
  const std::string_view jwks = input.substr(0, nul);
  const std::string_view token = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  const std::string path = dir + "/input.jwks";
  if (!sluice::write_file_atomic(path, jwks)) fail("cannot write the JWKS");
  sluice::AuthOptions options;
  options.jwks_file = path;
  auto auth = sluice::Authenticator::create(options, clock_at_now());
  if (!auth) return 0;
  auto principal = auth.value()->authenticate("Bearer " + std::string(token));
  if (!principal) return 0;
  const std::string_view t = trimmed(token);
  const auto dot1 = t.find('.');
  const auto dot2 = t.find('.', dot1 + 1);
  auto header_text = decode(t.substr(0, dot1));
  auto signature = decode(t.substr(dot2 + 1));
  if (!header_text || !signature || signature->empty()) fail("accepted a token without a signature");
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  const std::string alg = header.is_object() && header.contains("alg") && header["alg"].is_string()
                              ? header["alg"].get<std::string>()
                              : std::string();
  if (alg != "RS256" && alg != "ES256" && alg != "HS256") fail("accepted alg \"" + alg + "\"");
  return 0;
}
