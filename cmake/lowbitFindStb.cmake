# lowbitFindStb.cmake -- locate the header-only stb libraries (stb_image.h, ...)
# and expose them as the imported INTERFACE target `lowbit::stb`, so that
# `#include <stb_image.h>` works for everything linking lowbit::lowbit.
#
# Used both by the source tree (CMakeLists.txt) and by the installed package
# (lowbitConfig.cmake), so the include path is found again on the consumer's
# machine instead of being hard-coded at install time.
#
# Debian/Ubuntu (libstb-dev) put the headers in /usr/include/stb/ and ship no
# CMake config; a stb.pc exists but it also adds `-lstb`, which lowbit does not
# need, so only the header location is taken from it (as a hint).
#
# Input (optional):  STB_INCLUDE_DIR  cache variable, set it to override the search.
# Output:            lowbit::stb      imported INTERFACE target (SYSTEM include dir)
#                    lowbit_stb_FOUND TRUE/FALSE

if(TARGET lowbit::stb)
  set(lowbit_stb_FOUND TRUE)
  return()
endif()

set(_lowbit_stb_hints "")
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(_LOWBIT_PC_STB QUIET stb)
  if(_LOWBIT_PC_STB_FOUND)
    list(APPEND _lowbit_stb_hints ${_LOWBIT_PC_STB_INCLUDE_DIRS})
  endif()
endif()

find_path(STB_INCLUDE_DIR
  NAMES stb_image.h
  HINTS ${_lowbit_stb_hints}
  PATH_SUFFIXES stb
  DOC "Directory containing stb_image.h (header-only stb libraries)")
unset(_lowbit_stb_hints)

if(STB_INCLUDE_DIR)
  # GLOBAL so that lowbit::lowbit also works from other directories when lowbit
  # is pulled in with add_subdirectory().
  add_library(lowbit::stb INTERFACE IMPORTED GLOBAL)
  set_target_properties(lowbit::stb PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${STB_INCLUDE_DIR}")
  set(lowbit_stb_FOUND TRUE)
else()
  set(lowbit_stb_FOUND FALSE)
endif()
