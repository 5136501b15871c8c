# Every dependency is a Debian package (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(Protobuf REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(GTest REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
find_path(HTTPLIB_INCLUDE_DIR httplib.h REQUIRED)
# Debian ships cpp-httplib compiled (libcpp-httplib.so); the header alone does not link.
find_library(HTTPLIB_LIBRARY cpp-httplib REQUIRED)
if(SLUICE_BENCH)
  find_package(benchmark REQUIRED)
endif()

add_library(sluice_httplib INTERFACE)
target_include_directories(sluice_httplib SYSTEM INTERFACE ${HTTPLIB_INCLUDE_DIR})
target_link_libraries(sluice_httplib INTERFACE ${HTTPLIB_LIBRARY} OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
# The compiled library was built with these: the header must see the same, or the classes' layouts differ.
target_compile_definitions(sluice_httplib INTERFACE CPPHTTPLIB_OPENSSL_SUPPORT CPPHTTPLIB_ZLIB_SUPPORT
                           CPPHTTPLIB_BROTLI_SUPPORT)

add_library(sluice_asio INTERFACE)
# Boost 1.74's Asio uses std::exchange without including <utility>; core/asio.hpp includes it first.
target_link_libraries(sluice_asio INTERFACE Boost::boost Threads::Threads)
target_compile_definitions(sluice_asio INTERFACE BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)
