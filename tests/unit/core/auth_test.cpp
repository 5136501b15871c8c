// Authenticator: static tokens and JWTs (RS256, ES256, HS256) signed here with freshly generated keys.

#include "core/auth.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/support/open_id_provider.hpp"
#include "tests/support/process.hpp"
#include "tests/support/wait.hpp"

namespace sluice {
namespace {

AuthOptions auth_options(std::string tokens, std::string jwks, std::string issuer = "",
                         std::string audience = "") {
  AuthOptions options;
  options.tokens_file = std::move(tokens);
  options.jwks_file = std::move(jwks);
  options.issuer = std::move(issuer);
  options.audience = std::move(audience);
  return options;
}

std::string bn_param(EVP_PKEY* key, const char* name, std::size_t pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  if (out.size() < pad) out.insert(0, pad - out.size(), '\0');
  return out;
}

std::string digest_sign(EVP_PKEY* key, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(data.data()), data.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  return sig;
}

std::string der_to_raw(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  const BIGNUM *r, *s;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string raw(64, '\0');
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rsa_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    ec_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    ASSERT_TRUE(rsa_ && ec_);
    nlohmann::json jwks = {{"keys",
                            {{{"kty", "RSA"},
                              {"kid", "rsa-1"},
                              {"n", base64url_encode(bn_param(rsa_, OSSL_PKEY_PARAM_RSA_N))},
                              {"e", base64url_encode(bn_param(rsa_, OSSL_PKEY_PARAM_RSA_E))}},
                             {{"kty", "EC"},
                              {"kid", "ec-1"},
                              {"crv", "P-256"},
                              {"x", base64url_encode(bn_param(ec_, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
                              {"y", base64url_encode(bn_param(ec_, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}},
                             {{"kty", "oct"}, {"kid", "hs-1"}, {"k", base64url_encode(secret_)}}}}};
    std::ofstream(dir_.path() + "/jwks.json") << jwks.dump();
    std::ofstream(dir_.path() + "/tokens") << "static-token-0123456789 robot builders,admin\n";
  }
  void TearDown() override {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(ec_);
  }

  std::unique_ptr<Authenticator> make(std::string issuer = "https://issuer.example",
                                      std::string audience = "sluice") {
    AuthOptions options = auth_options(dir_.path() + "/tokens", dir_.path() + "/jwks.json", issuer, audience);
    auto auth = Authenticator::create(options, clock_);
    EXPECT_TRUE(auth) << (auth ? "" : auth.error().to_string());
    return std::move(auth).value();
  }

  std::int64_t now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count();
  }
  nlohmann::json claims() const {
    return {{"sub", "alice"},
            {"iss", "https://issuer.example"},
            {"aud", {"other", "sluice"}},
            {"exp", now() + 300},
            {"groups", {"admin", "publishers"}}};
  }

  std::string jwt(const std::string& alg, const std::string& kid, const nlohmann::json& payload) {
    const std::string signing =
        base64url_encode(nlohmann::json{{"alg", alg}, {"kid", kid}, {"typ", "JWT"}}.dump()) + "." +
        base64url_encode(payload.dump());
    std::string sig;
    if (alg == "RS256") sig = digest_sign(rsa_, signing);
    if (alg == "ES256") sig = der_to_raw(digest_sign(ec_, signing));
    if (alg == "HS256") {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
           reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &len);
      sig.assign(reinterpret_cast<char*>(mac), len);
    }
    return signing + "." + base64url_encode(sig);
  }

  testing::TempDir dir_;
  ManualClock clock_;
  EVP_PKEY* rsa_ = nullptr;
  EVP_PKEY* ec_ = nullptr;
  std::string secret_ = std::string(32, 'k');
};

TEST_F(AuthTest, StaticTokens) {
  auto auth = make();
  auto who = auth->authenticate("Bearer static-token-0123456789");
  ASSERT_TRUE(who) << who.error().to_string();
  EXPECT_EQ(who.value().subject, "robot");
  EXPECT_EQ(who.value().groups, (std::vector<std::string>{"builders", "admin"}));
  EXPECT_TRUE(auth->authenticate("bearer   static-token-0123456789  "));

  for (const char* bad : {"", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer static-token-0123456788"}) {
    auto r = auth->authenticate(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, 401);
    EXPECT_EQ(r.error().message.find("0123456788"), std::string::npos) << "never echoes the token";
  }
}

TEST_F(AuthTest, JwtsOfEachAlgorithm) {
  auto auth = make();
  for (auto [alg, kid] : {std::pair{"RS256", "rsa-1"}, {"ES256", "ec-1"}, {"HS256", "hs-1"}, {"RS256", ""}}) {
    auto who = auth->authenticate("Bearer " + jwt(alg, kid, claims()));
    ASSERT_TRUE(who) << alg << ": " << who.error().to_string();
    EXPECT_EQ(who.value().subject, "alice");
    EXPECT_TRUE(who.value().in_group("publishers"));
  }
}

TEST_F(AuthTest, JwtChecks) {
  auto auth = make();
  auto expect_refused = [&](const std::string& token, const std::string& why) {
    auto r = auth->authenticate("Bearer " + token);
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().code, 401);
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  auto c = claims();
  c["exp"] = now() - 120;
  expect_refused(jwt("RS256", "rsa-1", c), "expired");
  c = claims();
  c["exp"] = now() - 30;  // within the leeway
  EXPECT_TRUE(auth->authenticate("Bearer " + jwt("RS256", "rsa-1", c)));
  c = claims();
  c["nbf"] = now() + 600;
  expect_refused(jwt("RS256", "rsa-1", c), "not valid yet");
  c = claims();
  c["iss"] = "https://evil.example";
  expect_refused(jwt("ES256", "ec-1", c), "issuer");
  c = claims();
  c["aud"] = "someone-else";
  expect_refused(jwt("ES256", "ec-1", c), "audience");
  c = claims();
  c.erase("sub");
  expect_refused(jwt("HS256", "hs-1", c), "sub");

  // A signature made for other claims: swap the payload.
  auto token = jwt("RS256", "rsa-1", claims());
  auto other = jwt("RS256", "rsa-1", nlohmann::json{{"sub", "mallory"}, {"exp", now() + 300}});
  auto first_dot = token.find('.'), second_dot = token.rfind('.');
  auto forged = token.substr(0, first_dot) +
                other.substr(other.find('.'), other.rfind('.') - other.find('.')) + token.substr(second_dot);
  (void)first_dot;
  expect_refused(forged, "signature");
  expect_refused(jwt("RS256", "unknown-kid", claims()), "no key");
  expect_refused(jwt("none", "", claims()), "not accepted");
  expect_refused("a.b.c", "malformed");
}

// Header fields and claims of the wrong JSON type are refused with 401 (they used to throw out of the
// request guard, which dropped the connection without an answer).
TEST_F(AuthTest, JwtFieldsOfTheWrongTypeAreRefused) {
  auto auth = make();
  auto hs256 = [&](const nlohmann::json& header, const nlohmann::json& payload) {
    const std::string signing = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &len);
    return signing + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
  };
  auto expect_refused = [&](const std::string& token, const std::string& why) {
    Result<Principal> r = make_error("", "not called");
    EXPECT_NO_THROW(r = auth->authenticate("Bearer " + token)) << why;
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().code, 401);
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  expect_refused(hs256({{"alg", 5}, {"kid", "hs-1"}}, claims()), "alg and kid must be strings");
  expect_refused(hs256({{"alg", "HS256"}, {"kid", {1}}}, claims()), "alg and kid must be strings");
  for (const char* claim : {"iss", "sub"}) {
    auto c = claims();
    c[claim] = 42;
    expect_refused(hs256({{"alg", "HS256"}, {"kid", "hs-1"}}, c), "must be strings");
  }
  auto c = claims();
  c["nbf"] = std::to_string(now() + 600);
  expect_refused(hs256({{"alg", "HS256"}, {"kid", "hs-1"}}, c), "nbf is not a number");
  EXPECT_TRUE(auth->authenticate("Bearer " + hs256({{"alg", "HS256"}, {"kid", "hs-1"}}, claims())));
}

TEST_F(AuthTest, FilesAreReloadedWhenTheyChange) {
  auto auth = make();
  ASSERT_TRUE(auth->authenticate("Bearer static-token-0123456789"));
  std::ofstream(dir_.path() + "/tokens") << "rotated-token-0123456789 robot\n";
  // A different modification time even on coarse file systems.
  clock_.advance(std::chrono::seconds(1));
  const std::string path = dir_.path() + "/tokens";
  struct timespec times[2] = {{0, UTIME_NOW}, {static_cast<time_t>(now()), 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  auth->reload_if_changed();
  EXPECT_FALSE(auth->authenticate("Bearer static-token-0123456789"));
  EXPECT_TRUE(auth->authenticate("Bearer rotated-token-0123456789"));
  // A broken file keeps the previous tokens.
  std::ofstream(path) << "tiny robot\n";
  struct timespec later[2] = {{0, UTIME_NOW}, {static_cast<time_t>(now() + 1), 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), later, 0), 0);
  auth->reload_if_changed();
  EXPECT_TRUE(auth->authenticate("Bearer rotated-token-0123456789"));
}

TEST(AuthFiles, ErrorsNameTheFileAndLine) {
  testing::TempDir dir;
  ManualClock clock;
  std::ofstream(dir.path() + "/tokens") << "# comment\n\nlong-enough-token-123 alice\nshort bob\n";
  auto r = Authenticator::create(auth_options(dir.path() + "/tokens", ""), clock);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, dir.path() + "/tokens:4");
  std::ofstream(dir.path() + "/jwks.json") << R"({"keys": [{"kty": "RSA", "n": "AQAB"}]})";
  r = Authenticator::create(auth_options("", dir.path() + "/jwks.json"), clock);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("keys[0]"), std::string::npos) << r.error().to_string();
  EXPECT_FALSE(Authenticator::create(auth_options(dir.path() + "/missing", ""), clock));
}

TEST(Base64Url, RoundTripsWithoutPadding) {
  for (std::string s : {"", "f", "fo", "foo", "\xff\xfe\xfd?>"}) {
    auto encoded = base64url_encode(s);
    EXPECT_EQ(encoded.find('='), std::string::npos);
    EXPECT_EQ(base64url_decode(encoded), s);
  }
  EXPECT_FALSE(base64url_decode("a+b/"));
}

// OpenID Connect discovery: the JWKS comes from the issuer's jwks_uri, tokens must name that issuer, and
// keys the provider rotates in are picked up at the next refresh.
TEST_F(AuthTest, OidcDiscoveryFindsTheKeysAndRefreshesThem) {
  std::string all_keys;
  {
    std::ifstream in(dir_.path() + "/jwks.json");
    all_keys.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto only_ec = nlohmann::json::parse(all_keys);
  only_ec["keys"] = nlohmann::json::array({only_ec["keys"][1]});
  testing::OpenIdProvider provider(only_ec.dump());
  AuthOptions options;
  options.oidc_issuer = provider.issuer();
  options.audience = "sluice";
  options.jwks_refresh = std::chrono::seconds(1);
  auto auth = Authenticator::create(options, clock_);
  ASSERT_TRUE(auth) << auth.error().to_string();
  ASSERT_TRUE(auth.value()->enabled());

  nlohmann::json payload = claims();
  payload["iss"] = provider.issuer();
  auto who = auth.value()->authenticate("Bearer " + jwt("ES256", "ec-1", payload));
  ASSERT_TRUE(who) << who.error().to_string();
  EXPECT_EQ(who.value().subject, "alice");
  auto other_issuer = auth.value()->authenticate("Bearer " + jwt("ES256", "ec-1", claims()));
  ASSERT_FALSE(other_issuer);
  EXPECT_NE(other_issuer.error().message.find("iss"), std::string::npos) << other_issuer.error().message;
  EXPECT_FALSE(auth.value()->authenticate("Bearer " + jwt("RS256", "rsa-1", payload))) << "not published yet";

  provider.set_jwks(all_keys);  // the provider rotates an RSA key in
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return static_cast<bool>(auth.value()->authenticate("Bearer " + jwt("RS256", "rsa-1", payload)));
      },
      std::chrono::seconds(10)));

  // The JWKS URL given directly.
  AuthOptions direct;
  direct.jwks_file = provider.issuer() + "/keys";
  auto by_url = Authenticator::create(direct, clock_);
  ASSERT_TRUE(by_url) << by_url.error().to_string();
  EXPECT_TRUE(by_url.value()->authenticate("Bearer " + jwt("HS256", "hs-1", payload)));
}

TEST_F(AuthTest, OidcDiscoveryErrorsNameTheProviderAndWhatIsWrong) {
  testing::OpenIdProvider provider(R"({"keys": []})");
  provider.claim_issuer("https://someone-else.example");
  AuthOptions options;
  options.oidc_issuer = provider.issuer();
  auto auth = Authenticator::create(options, clock_);
  ASSERT_FALSE(auth);
  EXPECT_NE(auth.error().to_string().find("/.well-known/openid-configuration"), std::string::npos)
      << auth.error().to_string();
  EXPECT_NE(auth.error().message.find("someone-else"), std::string::npos) << auth.error().message;

  options.oidc_issuer = "http://127.0.0.1:1";  // nothing listens
  auth = Authenticator::create(options, clock_);
  ASSERT_FALSE(auth);
  EXPECT_NE(auth.error().message.find("OpenID Connect discovery failed"), std::string::npos)
      << auth.error().message;
  EXPECT_NE(auth.error().message.find("Connection refused"), std::string::npos) << auth.error().message;
}

// A JWKS URL that cannot be fetched is named with the reason the connection failed, not only its kind.
TEST_F(AuthTest, AJwksUrlThatCannotBeFetchedSaysWhy) {
  AuthOptions options;
  options.jwks_file = "http://127.0.0.1:1/jwks.json";  // nothing listens
  auto auth = Authenticator::create(options, clock_);
  ASSERT_FALSE(auth);
  EXPECT_NE(auth.error().to_string().find("http://127.0.0.1:1/jwks.json"), std::string::npos)
      << auth.error().to_string();
  EXPECT_NE(auth.error().message.find("cannot fetch: Connection refused"), std::string::npos)
      << auth.error().message;
}

}  // namespace
}  // namespace sluice
