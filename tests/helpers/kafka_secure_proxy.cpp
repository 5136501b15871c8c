// A TLS and SASL/PLAIN front for librdkafka's mock cluster, which speaks only plaintext without SASL, so
// that tests prove Kafka clients work over SSL, SASL_PLAINTEXT and SASL_SSL end to end.
//
//   kafka_secure_proxy --upstream HOST:PORT[,HOST:PORT...] [--cert F --key F [--client-ca F]]
//                      [--sasl-user U --sasl-password P]
//
// One listener on 127.0.0.1 per upstream broker (the mock cluster's bootstrap list). With --cert/--key the
// listeners speak TLS; --client-ca also requires a client certificate signed by that CA. With --sasl-user
// the listeners require SASL/PLAIN. Prints "bootstrap=127.0.0.1:PORT,..." (the listeners, in the order of
// --upstream) once they accept connections, and exits at the end of stdin.
//
// Kafka framing (protocol guide, "Network"): every request and response is a 4-byte big-endian size and
// that many bytes. Requests go to the upstream unchanged; the proxy remembers each correlation id's API key
// and version so that it can rewrite the responses that name brokers or versions:
//   - ApiVersions (18): Metadata (3) is capped at v8 and FindCoordinator (10) at v2, their last
//     non-flexible versions; with SASL, SaslHandshake (17) v0-1 and SaslAuthenticate (36) v0-1 are added.
//   - Metadata v0-8 and FindCoordinator v0-2: each upstream broker's host:port becomes the proxy's
//     listener for it, so that a client never bypasses the proxy.
// With SASL the proxy answers SaslHandshake and SaslAuthenticate itself, and closes a connection that sends
// anything but ApiVersions before it authenticates, or that fails to authenticate.

#include <array>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/asio.hpp"

#include <boost/asio/ssl.hpp>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using ErrorCode = boost::system::error_code;

constexpr std::int16_t kMetadata = 3;
constexpr std::int16_t kFindCoordinator = 10;
constexpr std::int16_t kSaslHandshake = 17;
constexpr std::int16_t kApiVersions = 18;
constexpr std::int16_t kSaslAuthenticate = 36;
constexpr std::int16_t kUnsupportedSaslMechanism = 33;
constexpr std::int16_t kSaslAuthenticationFailed = 58;

struct Options {
  std::vector<std::string> upstreams;  // host:port of each mock broker
  std::string cert, key, client_ca;
  std::string sasl_user, sasl_password;
  bool sasl() const { return !sasl_user.empty(); }
};

struct Proxy {
  Options options;
  std::map<std::string, int> listener_of;  // upstream host:port -> proxy port
  std::unique_ptr<asio::ssl::context> tls;
};

/// Reads a message and copies what it does not change into `out` (big-endian fixed-size integers,
/// INT16-sized STRING / NULLABLE_STRING, UNSIGNED_VARINT).
struct Rewriter {
  explicit Rewriter(std::string_view message) : in(message) {}
  std::string_view in;
  std::size_t at = 0;
  std::string out;
  bool ok = true;

  std::string_view take(std::size_t n) {
    if (at + n > in.size()) {
      ok = false;
      at = in.size();
      return {};
    }
    at += n;
    return in.substr(at - n, n);
  }
  std::int64_t integer(std::size_t size) {
    std::uint64_t v = 0;
    for (unsigned char c : take(size)) v = (v << 8) | c;
    if (size < 8 && (v >> (8 * size - 1)) != 0) v |= ~std::uint64_t{0} << (8 * size);  // sign-extend
    return static_cast<std::int64_t>(v);
  }
  std::uint64_t uvarint() {
    std::uint64_t v = 0;
    for (int shift = 0; ok && shift < 64; shift += 7) {
      const auto byte = static_cast<unsigned char>(take(1).empty() ? 0 : in[at - 1]);
      v |= std::uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) break;
    }
    return v;
  }
  std::optional<std::string> string() {  // INT16 length, -1 for null
    const auto length = integer(2);
    if (length < 0) return std::nullopt;
    return std::string(take(static_cast<std::size_t>(length)));
  }
  void skip_tags() {  // a tagged-field buffer of a flexible version: count, then (tag, size, bytes)
    for (auto n = uvarint(); ok && n > 0; --n) {
      uvarint();
      take(uvarint());
    }
  }
  void copy(std::size_t n) { out += take(n); }
  void copy_string() {
    const std::size_t from = at;
    string();
    out += in.substr(from, at - from);
  }
  void copy_rest() { out += in.substr(at); }
};

void put(std::string& out, std::int64_t v, std::size_t size) {
  for (std::size_t i = size; i-- > 0;)
    out += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}
void put_uvarint(std::string& out, std::uint64_t v) {
  for (; v >= 0x80; v >>= 7) out += static_cast<char>((v & 0x7f) | 0x80);
  out += static_cast<char>(v);
}
void put_string(std::string& out, std::string_view s) {
  put(out, static_cast<std::int64_t>(s.size()), 2);
  out += s;
}

/// Host and port of a broker in a response: the proxy's listener for it when it is an upstream.
void rewrite_endpoint(Rewriter& r, const Proxy& proxy) {
  const auto host = r.string().value_or("");
  const auto port = r.integer(4);
  const auto it = proxy.listener_of.find(host + ":" + std::to_string(port));
  put_string(r.out, it != proxy.listener_of.end() ? "127.0.0.1" : host);
  put(r.out, it != proxy.listener_of.end() ? it->second : port, 4);
}

/// ApiVersions response: v0-2 => error_code [api_key min_version max_version] throttle_time_ms (v1+);
/// v3 (flexible body, but response header v0) => the array is COMPACT_ARRAY and each entry and the body end
/// with tagged fields.
std::string rewrite_api_versions(Rewriter& r, std::int16_t version, const Proxy& proxy) {
  struct Api {
    std::int16_t key, min, max;
    std::string tags;
  };
  const bool flexible = version >= 3;
  r.copy(4 + 2);  // correlation_id, error_code
  const std::uint64_t count = flexible ? r.uvarint() - 1 : static_cast<std::uint64_t>(r.integer(4));
  std::vector<Api> apis;
  for (std::uint64_t i = 0; r.ok && i < count; ++i) {
    Api api{static_cast<std::int16_t>(r.integer(2)), static_cast<std::int16_t>(r.integer(2)),
            static_cast<std::int16_t>(r.integer(2)), flexible ? std::string(1, '\0') : ""};
    const std::size_t tags_from = r.at;
    if (flexible) r.skip_tags();
    if (flexible) api.tags = std::string(r.in.substr(tags_from, r.at - tags_from));
    if (api.key == kMetadata) api.max = std::min<std::int16_t>(api.max, 8);
    if (api.key == kFindCoordinator) api.max = std::min<std::int16_t>(api.max, 2);
    if (!proxy.options.sasl() || (api.key != kSaslHandshake && api.key != kSaslAuthenticate))
      apis.push_back(std::move(api));
  }
  if (proxy.options.sasl()) {
    apis.push_back({kSaslHandshake, 0, 1, flexible ? std::string(1, '\0') : ""});
    apis.push_back({kSaslAuthenticate, 0, 1, flexible ? std::string(1, '\0') : ""});
  }
  if (flexible)
    put_uvarint(r.out, apis.size() + 1);
  else
    put(r.out, static_cast<std::int64_t>(apis.size()), 4);
  for (const auto& api : apis) {
    put(r.out, api.key, 2);
    put(r.out, api.min, 2);
    put(r.out, api.max, 2);
    r.out += api.tags;
  }
  r.copy_rest();  // throttle_time_ms and the body's tagged fields
  return std::move(r.out);
}

/// A response from the upstream as the client must see it. `frame` starts with the correlation id
/// (response header v0: every API rewritten here has a non-flexible header at these versions).
std::string rewrite_response(std::string frame, std::int16_t api_key, std::int16_t version,
                             const Proxy& proxy) {
  Rewriter r(frame);
  if (api_key == kApiVersions) {
    auto out = rewrite_api_versions(r, version, proxy);
    return r.ok ? out : frame;
  }
  if (api_key == kMetadata && version <= 8) {
    // [throttle_time_ms (v3+)] [brokers: node_id host port rack (v1+)] cluster_id ... (kept)
    r.copy(4);
    if (version >= 3) r.copy(4);
    const auto brokers = r.integer(4);
    put(r.out, brokers, 4);
    for (std::int64_t i = 0; r.ok && i < brokers; ++i) {
      r.copy(4);
      rewrite_endpoint(r, proxy);
      if (version >= 1) r.copy_string();
    }
  } else if (api_key == kFindCoordinator && version <= 2) {
    // v0: error_code node_id host port; v1-2: throttle_time_ms error_code error_message node_id host port
    r.copy(4);
    if (version >= 1) {
      r.copy(4 + 2);
      r.copy_string();
    } else {
      r.copy(2);
    }
    r.copy(4);
    rewrite_endpoint(r, proxy);
  } else {
    return frame;
  }
  r.copy_rest();
  return r.ok ? std::move(r.out) : frame;
}

struct RequestHeader {
  std::int16_t api_key = -1, api_version = -1;
  std::int32_t correlation_id = 0;
  std::string_view body;  // after client_id: the body of a request with a v1 header (non-flexible)
};

RequestHeader parse_request(const std::string& frame) {
  Rewriter r(frame);
  RequestHeader h;
  h.api_key = static_cast<std::int16_t>(r.integer(2));
  h.api_version = static_cast<std::int16_t>(r.integer(2));
  h.correlation_id = static_cast<std::int32_t>(r.integer(4));
  r.string();  // client_id
  h.body = r.in.substr(r.at);
  if (!r.ok) h.api_key = -1;
  return h;
}

template <class Stream>
awaitable<std::optional<std::string>> read_frame(Stream& stream) {
  std::array<unsigned char, 4> size{};
  ErrorCode ec;
  co_await asio::async_read(stream, asio::buffer(size), asio::redirect_error(use_awaitable, ec));
  const std::uint32_t n = (std::uint32_t{size[0]} << 24) | (size[1] << 16) | (size[2] << 8) | size[3];
  if (ec || n > (64u << 20)) co_return std::nullopt;
  std::string frame(n, '\0');
  co_await asio::async_read(stream, asio::buffer(frame), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return std::nullopt;
  co_return frame;
}

template <class Stream>
awaitable<bool> write_frame(Stream& stream, const std::string& frame) {
  std::string out;
  put(out, static_cast<std::int64_t>(frame.size()), 4);
  out += frame;
  ErrorCode ec;
  co_await asio::async_write(stream, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

/// One client connection and its upstream connection; Stream is a TCP socket or a TLS stream over one.
template <class Stream>
struct Connection {
  Connection(Stream s, const Proxy& p) : client(std::move(s)), upstream(client.get_executor()), proxy(p) {}
  Stream client;
  tcp::socket upstream;
  const Proxy& proxy;
  std::map<std::int32_t, std::pair<std::int16_t, std::int16_t>> pending;  // correlation id -> key, version

  void close() {
    ErrorCode ec;
    client.lowest_layer().close(ec);
    upstream.close(ec);
  }
  /// A response the proxy makes itself: correlation id, then `body`.
  awaitable<bool> answer(std::int32_t correlation_id, const std::string& body) {
    std::string frame;
    put(frame, correlation_id, 4);
    co_return co_await write_frame(client, frame + body);
  }
};

/// SASL/PLAIN's message (RFC 4616): authzid NUL authcid NUL passwd.
bool plain_credentials_match(std::string_view token, const Options& options) {
  const auto first = token.find('\0');
  const auto second = first == std::string_view::npos ? first : token.find('\0', first + 1);
  if (second == std::string_view::npos) return false;
  return token.substr(first + 1, second - first - 1) == options.sasl_user &&
         token.substr(second + 1) == options.sasl_password;
}

/// The SASL exchange, before anything else is forwarded (ApiVersions excepted, which the client sends first).
/// True once the client authenticated.
template <class Stream>
awaitable<bool> authenticate(Connection<Stream>& c) {
  int handshake_version = -1;
  for (;;) {
    auto frame = co_await read_frame(c.client);
    if (!frame) co_return false;
    if (handshake_version == 0) {
      // SaslHandshake v0: the token comes as a bare frame, and success is an empty bare frame.
      if (!plain_credentials_match(*frame, c.proxy.options)) co_return false;
      co_return co_await write_frame(c.client, "");
    }
    const auto h = parse_request(*frame);
    std::string body;
    if (h.api_key == kApiVersions) {
      if (!co_await write_frame(c.upstream, *frame)) co_return false;
      auto response = co_await read_frame(c.upstream);
      if (!response || !co_await write_frame(c.client, rewrite_response(std::move(*response), kApiVersions,
                                                                        h.api_version, c.proxy)))
        co_return false;
    } else if (h.api_key == kSaslHandshake && h.api_version <= 1) {
      Rewriter r(h.body);
      const bool plain = r.string().value_or("") == "PLAIN";
      put(body, plain ? 0 : kUnsupportedSaslMechanism, 2);  // error_code [mechanisms]
      put(body, 1, 4);
      put_string(body, "PLAIN");
      if (plain) handshake_version = h.api_version;
      if (!co_await c.answer(h.correlation_id, body)) co_return false;
    } else if (h.api_key == kSaslAuthenticate && h.api_version <= 1 && handshake_version == 1) {
      Rewriter r(h.body);
      const auto length = r.integer(4);  // auth_bytes: BYTES
      const bool good = r.ok && length >= 0 &&
                        plain_credentials_match(r.take(static_cast<std::size_t>(length)), c.proxy.options);
      // error_code error_message auth_bytes [session_lifetime_ms (v1)]
      put(body, good ? 0 : kSaslAuthenticationFailed, 2);
      if (good) {
        put(body, -1, 2);
      } else {
        put_string(body, "Authentication failed: Invalid username or password");
        std::cerr << "kafka_secure_proxy: SASL/PLAIN authentication failed" << std::endl;
      }
      put(body, 0, 4);
      if (h.api_version >= 1) put(body, 0, 8);
      const bool sent = co_await c.answer(h.correlation_id, body);
      co_return good&& sent;
    } else {
      std::cerr << "kafka_secure_proxy: API key " << h.api_key << " v" << h.api_version
                << " before SASL authentication; closing" << std::endl;
      co_return false;
    }
  }
}

template <class Stream>
awaitable<void> to_client(std::shared_ptr<Connection<Stream>> c) {
  while (auto frame = co_await read_frame(c->upstream)) {
    Rewriter r(*frame);
    const auto correlation_id = static_cast<std::int32_t>(r.integer(4));
    auto it = c->pending.find(correlation_id);
    if (it != c->pending.end()) {
      *frame = rewrite_response(std::move(*frame), it->second.first, it->second.second, c->proxy);
      c->pending.erase(it);
    }
    if (!co_await write_frame(c->client, *frame)) break;
  }
  c->close();
}

template <class Stream>
awaitable<void> to_upstream(std::shared_ptr<Connection<Stream>> c) {
  while (auto frame = co_await read_frame(c->client)) {
    const auto h = parse_request(*frame);
    c->pending[h.correlation_id] = {h.api_key, h.api_version};
    if (!co_await write_frame(c->upstream, *frame)) break;
  }
  c->close();
}

template <class Stream>
awaitable<void> serve(std::shared_ptr<Connection<Stream>> c, tcp::endpoint upstream) {
  ErrorCode ec;
  if constexpr (!std::is_same_v<Stream, tcp::socket>) {
    co_await c->client.async_handshake(asio::ssl::stream_base::server,
                                       asio::redirect_error(use_awaitable, ec));
    if (ec) {
      std::cerr << "kafka_secure_proxy: TLS handshake failed: " << ec.message() << std::endl;
      c->close();
      co_return;
    }
  }
  co_await c->upstream.async_connect(upstream, asio::redirect_error(use_awaitable, ec));
  if (ec || (c->proxy.options.sasl() && !co_await authenticate(*c))) {
    c->close();
    co_return;
  }
  asio::co_spawn(c->client.get_executor(), to_client(c), asio::detached);
  co_await to_upstream(c);
}

awaitable<void> accept_loop(tcp::acceptor& acceptor, tcp::endpoint upstream, const Proxy& proxy) {
  for (;;) {
    ErrorCode ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    socket.set_option(tcp::no_delay(true), ec);
    const auto executor = socket.get_executor();
    if (proxy.tls) {
      using TlsStream = asio::ssl::stream<tcp::socket>;
      auto c = std::make_shared<Connection<TlsStream>>(TlsStream(std::move(socket), *proxy.tls), proxy);
      asio::co_spawn(executor, serve(c, upstream), asio::detached);
    } else {
      auto c = std::make_shared<Connection<tcp::socket>>(std::move(socket), proxy);
      asio::co_spawn(executor, serve(c, upstream), asio::detached);
    }
  }
}

std::vector<std::string> split(const std::string& list, char separator) {
  std::vector<std::string> out;
  for (std::size_t from = 0; from <= list.size();) {
    auto to = list.find(separator, from);
    if (to == std::string::npos) to = list.size();
    if (to > from) out.push_back(list.substr(from, to - from));
    from = to + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Proxy proxy;
  Options& o = proxy.options;
  const std::map<std::string, std::string*> flags = {{"--cert", &o.cert},
                                                     {"--key", &o.key},
                                                     {"--client-ca", &o.client_ca},
                                                     {"--sasl-user", &o.sasl_user},
                                                     {"--sasl-password", &o.sasl_password}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--upstream" && i + 1 < argc) {
      o.upstreams = split(argv[++i], ',');
    } else if (flags.count(arg) && i + 1 < argc) {
      *flags.at(arg) = argv[++i];
    } else {
      o.upstreams.clear();
      break;
    }
  }
  if (o.upstreams.empty() || o.cert.empty() != o.key.empty() || (!o.client_ca.empty() && o.cert.empty())) {
    std::cerr << "usage: " << argv[0]
              << " --upstream HOST:PORT[,...] [--cert F --key F [--client-ca F]] [--sasl-user U "
                 "--sasl-password P]\n";
    return 2;
  }
  try {
    if (!o.cert.empty()) {
      proxy.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      proxy.tls->use_certificate_chain_file(o.cert);
      proxy.tls->use_private_key_file(o.key, asio::ssl::context::pem);
      if (!o.client_ca.empty()) {
        proxy.tls->load_verify_file(o.client_ca);
        proxy.tls->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
      }
    }
    asio::io_context io(1);
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::string bootstrap;
    for (const auto& upstream : o.upstreams) {
      const auto colon = upstream.rfind(':');
      if (colon == std::string::npos)
        throw std::runtime_error("--upstream " + upstream + ": expected HOST:PORT");
      const tcp::endpoint target(asio::ip::make_address(upstream.substr(0, colon)),
                                 static_cast<unsigned short>(std::stoi(upstream.substr(colon + 1))));
      acceptors.push_back(
          std::make_unique<tcp::acceptor>(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
      const int port = acceptors.back()->local_endpoint().port();
      proxy.listener_of[upstream] = port;
      bootstrap += (bootstrap.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
      asio::co_spawn(io, accept_loop(*acceptors.back(), target, proxy), asio::detached);
    }
    std::thread loop([&io] { io.run(); });
    std::printf("bootstrap=%s\n", bootstrap.c_str());
    std::fflush(stdout);
    char line[256];
    while (std::fgets(line, sizeof line, stdin) != nullptr) {
    }
    io.stop();
    loop.join();
  } catch (const std::exception& e) {
    std::cerr << "kafka_secure_proxy: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
