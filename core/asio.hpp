#pragma once
// Include this instead of Asio or Beast directly: Boost 1.74's Asio uses std::exchange from <utility>
// without including it.

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

namespace sluice {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
}  // namespace sluice
