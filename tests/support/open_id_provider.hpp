#pragma once
// A test OpenID Provider on 127.0.0.1: its discovery document (/.well-known/openid-configuration) and
// its JWKS (/keys), which a test may change while clients use it.

#include <httplib.h>

#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace sluice::testing {

class OpenIdProvider {
 public:
  explicit OpenIdProvider(std::string jwks) : jwks_(std::move(jwks)) {
    port_ = server_.bind_to_any_port("127.0.0.1");
    issuer_ = "http://127.0.0.1:" + std::to_string(port_);
    server_.Get("/.well-known/openid-configuration", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(nlohmann::json{{"issuer", claimed_issuer_.empty() ? issuer_ : claimed_issuer_},
                                     {"jwks_uri", issuer_ + "/keys"}}
                          .dump(),
                      "application/json");
    });
    server_.Get("/keys", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu_);
      res.set_content(jwks_, "application/json");
    });
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~OpenIdProvider() {
    server_.stop();
    thread_.join();
  }
  const std::string& issuer() const { return issuer_; }
  void set_jwks(std::string jwks) {
    std::lock_guard lock(mu_);
    jwks_ = std::move(jwks);
  }
  /// What the discovery document says the issuer is (default: the provider's own URL).
  void claim_issuer(std::string issuer) { claimed_issuer_ = std::move(issuer); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::string issuer_;
  std::string claimed_issuer_;
  std::mutex mu_;
  std::string jwks_;
  std::thread thread_;
};

}  // namespace sluice::testing
