# sluice_library(NAME [DEPS dep...])
#   One library per component folder: every .cpp in the folder (not in subfolders named tests),
#   public headers beside the sources, included as "component/header.hpp".
function(sluice_library name)
  cmake_parse_arguments(ARG "" "" "DEPS;SRCS" ${ARGN})
  if(NOT ARG_SRCS)
    file(GLOB ARG_SRCS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp ${CMAKE_CURRENT_SOURCE_DIR}/*/*.cpp)
  endif()
  if(NOT ARG_SRCS)
    # A component with headers only so far.
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  sluice_compile_options(${name})
  sluice_ubsan(${name})
endfunction()

# sluice_ubsan(TARGET): UndefinedBehaviorSanitizer on a target of Sluice's own code (sanitizer builds).
function(sluice_ubsan target)
  if(SLUICE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=undefined -fno-sanitize-recover=undefined)
  endif()
endfunction()

# sluice_test(NAME SRCS src... DEPS dep... [LABELS label...] [PROPERTIES name value...])
#   A GoogleTest executable registered with ctest, one ctest entry per test case.
# Conformance material the tests run (CESQL TCK, KPA scenarios): the shared reference folder beside the
# checkout when there is one, else the verbatim copy in tests/reference/.
if(EXISTS "${PROJECT_SOURCE_DIR}/../shared/reference/cesql-tck")
  get_filename_component(SLUICE_REFERENCE_DIR "${PROJECT_SOURCE_DIR}/../shared/reference" ABSOLUTE)
else()
  set(SLUICE_REFERENCE_DIR "${PROJECT_SOURCE_DIR}/tests/reference")
endif()

function(sluice_test name)
  cmake_parse_arguments(ARG "" "" "DEPS;SRCS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(${name} PRIVATE
    SLUICE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    SLUICE_BINARY_DIR="${CMAKE_BINARY_DIR}"
    SLUICE_REFERENCE_DIR="${SLUICE_REFERENCE_DIR}")
  sluice_compile_options(${name})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 300 ${ARG_PROPERTIES})
endfunction()

function(sluice_compile_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 needs -fcoroutines for C++20 coroutines with Asio.
    target_compile_options(${target} PRIVATE -fcoroutines)
    # GCC 12 reports false -Wrestrict positives inside libstdc++'s std::string at -O3 (GCC bug 105329).
    target_compile_options(${target} PRIVATE -Wno-restrict)
    # ...and false -Wmismatched-new-delete positives on Asio's coroutine frame allocator at -O2 and under ASan.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
    # A unity build #includes a target's sources into a few generated files, so GCC takes each source for
    # a header and warns about its types that use an anonymous namespace (coroutine frames, lambdas).
    target_compile_options(${target} PRIVATE $<$<BOOL:$<TARGET_PROPERTY:UNITY_BUILD>>:-Wno-subobject-linkage>)
  endif()
  if(SLUICE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# AddressSanitizer everywhere; UndefinedBehaviorSanitizer on Sluice's own code (the component
# libraries and the server: sluice_ubsan), not on test, example and fuzz-replay sources, where it added
# a third to the compile time of the CI build (dispatcher_test.cpp: 23.8 s with both, 16.6 s with ASan).
if(SLUICE_SANITIZE)
  add_compile_options(-fsanitize=address -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(SLUICE_FUZZ)
  # Coverage instrumentation for every library the fuzz targets link.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

include(GoogleTest)
