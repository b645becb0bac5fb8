# cmake -P script behind the consumer_find_package ctest test:
#   1. cmake --install <lowbit build dir> --prefix <WORK_DIR>/prefix
#   2. configure tests/consumer with CMAKE_PREFIX_PATH=<prefix>, WITHOUT any -march flags
#   3. build it, check no ISA flag reached the compile commands, run it.
# Everything is written under WORK_DIR (inside the build tree), never the source tree.
#
# Required: -DLOWBIT_BINARY_DIR= -DCONSUMER_SOURCE_DIR= -DWORK_DIR=
# Optional: -DCONSUMER_GENERATOR= -DCONSUMER_CXX_COMPILER=

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
message(STATUS "consumer_find_package: OK")
