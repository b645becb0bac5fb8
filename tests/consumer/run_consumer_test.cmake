# cmake -P script behind the consumer_find_package ctest test:
#   1. cmake --install <lowbit build dir> --prefix <WORK_DIR>/prefix
#   2. configure tests/consumer with CMAKE_PREFIX_PATH=<prefix>, WITHOUT any -march flags
#   3. build it, check no ISA flag reached the compile commands, run it;
#   4. with -DEXPECT_PROGRAMS=ON: the installed train_cifar, predict and report answer --version;
#   5. build the consumer again from `pkg-config --cflags --libs lowbit` alone, run it.
# Everything is written under WORK_DIR (inside the build tree), never the source tree.
#
# Required: -DLOWBIT_BINARY_DIR= -DCONSUMER_SOURCE_DIR= -DWORK_DIR=
# Optional: -DCONSUMER_GENERATOR= -DCONSUMER_CXX_COMPILER= -DEXPECT_PROGRAMS= -DEXPECT_VERSION=

foreach(_v LOWBIT_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer_test.cmake: -D${_v}=... is required")
  endif()
endforeach()

set(_prefix "${WORK_DIR}/prefix")
set(_build  "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Nothing from the environment may sneak ISA flags in.
set(ENV{CXXFLAGS} "")
set(ENV{CFLAGS} "")
set(ENV{LDFLAGS} "")

function(_run step)
  message(STATUS "consumer_find_package: ${step}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "consumer_find_package: ${step} failed (${_rc})")
  endif()
endfunction()

_run(install "${CMAKE_COMMAND}" --install "${LOWBIT_BINARY_DIR}" --prefix "${_prefix}")

set(_cfg_args
  -S "${CONSUMER_SOURCE_DIR}" -B "${_build}"
  "-DCMAKE_PREFIX_PATH=${_prefix}"
  -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_CXX_FLAGS="
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
  # Only the installed copy may be found, not a registry entry or a stale build tree.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(CONSUMER_GENERATOR)
  list(APPEND _cfg_args -G "${CONSUMER_GENERATOR}")
endif()
if(CONSUMER_CXX_COMPILER)
  list(APPEND _cfg_args "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}")
endif()
_run(configure "${CMAKE_COMMAND}" ${_cfg_args})

_run(build "${CMAKE_COMMAND}" --build "${_build}")

# Prove the consumer was compiled without -march & co.
set(_cc "${_build}/compile_commands.json")
if(EXISTS "${_cc}")
  file(READ "${_cc}" _cmds)
  if(_cmds MATCHES "-m(arch|tune|cpu|avx|fma|native)[^ \"]*")
    message(FATAL_ERROR "consumer_find_package: consumer compiled with ISA flag '${CMAKE_MATCH_0}'")
  endif()
  message(STATUS "consumer_find_package: no -march/-m<isa> flags in the consumer's compile commands")
endif()

# Check it really used the installed package.
file(STRINGS "${_build}/CMakeCache.txt" _lowbit_dir REGEX "^lowbit_DIR:")
message(STATUS "consumer_find_package: ${_lowbit_dir}")
string(FIND "${_lowbit_dir}" "${_prefix}/" _pos)
if(_pos EQUAL -1)
  message(FATAL_ERROR "consumer_find_package: lowbit was not found in the install prefix ${_prefix}")
endif()

set(_exe "${_build}/lowbit_consumer")
if(NOT EXISTS "${_exe}")
  file(GLOB_RECURSE _exe "${_build}/lowbit_consumer" "${_build}/lowbit_consumer.exe")
endif()
_run(run ${_exe})

# The programs, when the examples were built (EXPECT_PROGRAMS): bin/train_cifar, bin/predict and bin/report,
# each answering --version with the project's version.
if(EXPECT_PROGRAMS)
  foreach(_p train_cifar predict report)
    execute_process(COMMAND "${_prefix}/bin/${_p}" --version OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0 OR NOT _out STREQUAL "lowbit ${EXPECT_VERSION}\n")
      message(FATAL_ERROR "consumer_find_package: installed ${_p} --version gave '${_out}' (exit ${_rc}), "
                          "expected 'lowbit ${EXPECT_VERSION}'")
    endif()
  endforeach()
  message(STATUS "consumer_find_package: installed train_cifar, predict and report answer --version")
endif()

# pkg-config: the same consumer compiled by hand with `pkg-config --cflags --libs lowbit` from
# the installed share/pkgconfig/lowbit.pc (no CMake on the consumer's side).
find_program(_pkgconfig NAMES pkg-config pkgconf)
if(NOT _pkgconfig)
  message(FATAL_ERROR "consumer_find_package: needs pkg-config (scripts/install_deps.sh tests installs pkgconf)")
endif()
set(ENV{PKG_CONFIG_PATH} "${_prefix}/share/pkgconfig")
execute_process(COMMAND "${_pkgconfig}" --cflags --libs lowbit OUTPUT_VARIABLE _flags RESULT_VARIABLE _rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "consumer_find_package: pkg-config --cflags --libs lowbit failed (${_rc})")
endif()
message(STATUS "consumer_find_package: pkg-config gives: ${_flags}")
if(_flags MATCHES "-lstb" OR _flags MATCHES "-m(arch|tune|cpu|avx|fma|native)")
  message(FATAL_ERROR "consumer_find_package: pkg-config flags must not link libstb nor set an ISA: ${_flags}")
endif()
separate_arguments(_flags UNIX_COMMAND "${_flags}")
set(_cxx "${CONSUMER_CXX_COMPILER}")
if(NOT _cxx)
  set(_cxx c++)
endif()
_run(pkgconfig-build "${_cxx}" "${CONSUMER_SOURCE_DIR}/main.cpp" ${_flags} -o "${WORK_DIR}/consumer_pkgconfig")
_run(pkgconfig-run "${WORK_DIR}/consumer_pkgconfig")
message(STATUS "consumer_find_package: OK")
