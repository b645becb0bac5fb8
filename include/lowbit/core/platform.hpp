// Which operating-system interfaces lowbit uses: POSIX (Linux, the BSDs, macOS) or only the
// C++17 standard library.
//
// A handful of headers call POSIX where the standard library has no equivalent: fsync of a
// file and its folder (io/atomic_write.hpp), isatty for the progress bar (io/progress.hpp),
// a non-blocking open so that a named pipe cannot hang the image loader
// (data/image_folder.hpp), anonymous page mappings (core/block_cache.hpp) and the re-execution
// that sets the OpenMP wait policy (kernels/omp_wait.hpp). Each has a standard-library branch
// that a non-POSIX platform compiles instead, with what it gives up said where it is.
//
// Define LOWBIT_NO_POSIX to compile those branches on a POSIX system too: the tests do
// (tests/portable/test_no_posix.cpp), so the branches are built and run on every CI pass,
// and the umbrella header is checked to include no POSIX-only header then.
#pragma once

#if (defined(__unix__) || defined(__APPLE__)) && !defined(LOWBIT_NO_POSIX)
#define LOWBIT_POSIX 1
#else
#define LOWBIT_POSIX 0
#endif
