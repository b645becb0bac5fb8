# lowbitCatchAddTests.cmake -- drop-in replacement for Catch2 v2's CatchAddTests.cmake,
# the script that catch_discover_tests() runs after building the test executable.
# tests/CMakeLists.txt selects it by setting _CATCH_DISCOVER_TESTS_SCRIPT after
# include(Catch). It takes the same -D variables as the original.
#
# Fixes over Catch2 2.13's version, which can make tests vanish silently:
#   * a test name containing ';' was split into several bogus ctest tests that
#     matched nothing and "passed" without running anything;
#   * when the executable failed to list its tests (e.g. a duplicate TEST_CASE
#     name, exit code 255 and an error on stderr) it registered zero tests and
#     the build still succeeded -- here that is a build error;
#   * '\' and '"' in names were not escaped in the Catch test spec.
# Every registered test is run as `<exe> <escaped name> <extra args>`; combined
# with `-w NoTests` in EXTRA_ARGS, a spec that matches nothing fails.

set(prefix "${TEST_PREFIX}")
set(suffix "${TEST_SUFFIX}")
set(spec ${TEST_SPEC})
set(extra_args ${TEST_EXTRA_ARGS})
set(properties ${TEST_PROPERTIES})
set(reporter ${TEST_REPORTER})
set(output_dir ${TEST_OUTPUT_DIR})
set(output_prefix ${TEST_OUTPUT_PREFIX})
set(output_suffix ${TEST_OUTPUT_SUFFIX})
set(script "")
set(tests "")

function(add_command NAME)
  set(_args "")
  math(EXPR _last_arg "${ARGC} - 1")
  foreach(_n RANGE 1 ${_last_arg})
    set(_arg "${ARGV${_n}}")
    if(_arg STREQUAL "")
      continue()
    endif()
    if(_arg MATCHES "[^-./:a-zA-Z0-9_]")
      set(_args "${_args} [==[${_arg}]==]")  # bracket argument: no expansion, ';' kept
    else()
      set(_args "${_args} ${_arg}")
    endif()
  endforeach()
  set(script "${script}${NAME}(${_args})\n" PARENT_SCOPE)
endfunction()

if(NOT EXISTS "${TEST_EXECUTABLE}")
  message(FATAL_ERROR "Specified test executable '${TEST_EXECUTABLE}' does not exist")
endif()

execute_process(
  COMMAND ${TEST_EXECUTOR} "${TEST_EXECUTABLE}" ${spec} --list-test-names-only
  OUTPUT_VARIABLE output
  ERROR_VARIABLE error_output
  RESULT_VARIABLE result
  WORKING_DIRECTORY "${TEST_WORKING_DIR}")

# --list-test-names-only exits with the number of tests (mod 256), so the exit
# code alone cannot tell failure from success; stderr output or a non-numeric
# result (crash) means the listing failed.
if(NOT result MATCHES "^[0-9]+$" OR NOT error_output STREQUAL "")
  message(FATAL_ERROR
    "Listing the tests of '${TEST_EXECUTABLE}' failed (exit code ${result}).\n"
    "stderr:\n${error_output}\nstdout:\n${output}")
endif()
if(result EQUAL 0)
  message(WARNING "Test executable '${TEST_EXECUTABLE}' contains no tests!")
endif()

# Protect ';' (the CMake list separator) inside names before splitting lines.
set(semi_placeholder "@LOWBIT_SEMICOLON@")
string(REPLACE ";" "${semi_placeholder}" output "${output}")
string(REPLACE "\r" "" output "${output}")
string(REPLACE "\n" ";" lines "${output}")

if(reporter)
  set(reporter_args --reporter "${reporter}")
else()
  set(reporter_args "")
endif()
if(output_dir AND NOT IS_ABSOLUTE "${output_dir}")
  set(output_dir "${TEST_WORKING_DIR}/${output_dir}")
endif()
if(output_dir AND NOT EXISTS "${output_dir}")
  file(MAKE_DIRECTORY "${output_dir}")
endif()

foreach(line IN LISTS lines)
  if(line STREQUAL "")
    continue()
  endif()
  string(REPLACE "${semi_placeholder}" ";" test "${line}")

  # Escape the characters Catch's test-spec parser treats specially.
  set(test_spec "${test}")
  foreach(char "\\" "," "[" "]" "\"")
    string(REPLACE "${char}" "\\${char}" test_spec "${test_spec}")
  endforeach()
  # A leading '~' would mean "exclude".
  if(test_spec MATCHES "^~")
    string(SUBSTRING "${test_spec}" 1 -1 _rest)
    set(test_spec "\\~${_rest}")
  endif()

  set(output_dir_args "")
  if(output_dir)
    string(REGEX REPLACE "[^A-Za-z0-9_]" "_" test_name_clean "${test}")
    set(output_dir_args --out "${output_dir}/${output_prefix}${test_name_clean}${output_suffix}")
  endif()

  add_command(add_test
    "${prefix}${test}${suffix}"
    ${TEST_EXECUTOR}
    "${TEST_EXECUTABLE}"
    "${test_spec}"
    ${extra_args}
    ${reporter_args}
    ${output_dir_args})
  add_command(set_tests_properties
    "${prefix}${test}${suffix}"
    PROPERTIES
    WORKING_DIRECTORY "${TEST_WORKING_DIR}"
    ${properties})
  string(REPLACE ";" "\\;" _escaped "${prefix}${test}${suffix}")
  list(APPEND tests "${_escaped}")
endforeach()

# <target>_TESTS: the discovered test names, for TEST_INCLUDE_FILES scripts.
set(script "${script}set(${TEST_LIST} [==[${tests}]==])\n")

file(WRITE "${CTEST_FILE}" "${script}")
