// A private copy of stb_image_write (v1.16, libstb-dev) for writing SR pictures as PNG
// (data/sr/image.hpp, write_png). Isolated exactly as data/stb_image_resize_private.hpp does
// for stb_image_resize, so it never clashes with a user's own stb_image_write (or the tests'
// tests/stb_image_write_for_tests.hpp) in the same or another translation unit:
//   1. STB_IMAGE_WRITE_STATIC makes every stb function `static` (internal linkage) and, in
//      this version, drops the extern "C" of the declarations.
//   2. The file is included inside namespace lowbit_detail_stbiw (at global scope, so stb's
//      unqualified memmove/abs find the C functions); no renaming is needed.
//   3. Every macro it defines or reads (listed from v1.16 with
//      grep -oE '^\s*#\s*define\s+[A-Za-z_][A-Za-z0-9_]*' and the #if/#ifdef lines) is saved
//      with push_macro, undefined, and restored with pop_macro afterwards.
// STBI_WRITE_NO_STDIO: we only encode to memory (stbi_write_png_to_func) and write the bytes
// ourselves, atomically. stb keeps a few file-static settings (compression level, flip flag);
// lowbit never changes them, so concurrent calls are safe.
#pragma once

// Included at global scope first, so that their include guards stop stb from including them
// again inside our namespace.
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#if __has_include(<stb_image_write.h>)
#define LOWBIT_STB_IMAGE_WRITE_HEADER <stb_image_write.h>
#elif __has_include(<stb/stb_image_write.h>)
#define LOWBIT_STB_IMAGE_WRITE_HEADER <stb/stb_image_write.h>
#else
#error "lowbit/data: stb_image_write.h not found. Install libstb-dev, or put the directory holding stb_image_write.h on the include path (CMake: -DSTB_INCLUDE_DIR=<dir>)."
#endif

#define LOWBIT_STBIW_PRAGMA(x) _Pragma(#x)
#define LOWBIT_STBIW_PUSH(m) LOWBIT_STBIW_PRAGMA(push_macro(#m))
#define LOWBIT_STBIW_POP(m) LOWBIT_STBIW_PRAGMA(pop_macro(#m))
#define LOWBIT_STBIW_MACROS(X) \
  X(INCLUDE_STB_IMAGE_WRITE_H) X(STBIWDEF) X(STBIW_ASSERT) X(STBIW_CRC32) X(STBIW_EXTERN) \
  X(STBIW_FREE) X(STBIW_MALLOC) X(STBIW_MEMMOVE) X(STBIW_REALLOC) X(STBIW_REALLOC_SIZED) \
  X(STBIW_UCHAR) X(STBIW_WINDOWS_UTF8) X(STBIW_ZLIB_COMPRESS) X(STBI_WRITE_NO_STDIO) \
  X(STB_IMAGE_WRITE_IMPLEMENTATION) X(STB_IMAGE_WRITE_STATIC) X(_CRT_NONSTDC_NO_DEPRECATE) \
  X(_CRT_SECURE_NO_WARNINGS) X(stbiw__ZHASH) X(stbiw__max) X(stbiw__sbcount) X(stbiw__sbfree) \
  X(stbiw__sbgrow) X(stbiw__sbm) X(stbiw__sbmaybegrow) X(stbiw__sbn) X(stbiw__sbneedgrow) \
  X(stbiw__sbpush) X(stbiw__sbraw) X(stbiw__wp32) X(stbiw__wpng4) X(stbiw__wptag) \
  X(stbiw__zlib_add) X(stbiw__zlib_flush) X(stbiw__zlib_huff) X(stbiw__zlib_huff1) \
  X(stbiw__zlib_huff2) X(stbiw__zlib_huff3) X(stbiw__zlib_huff4) X(stbiw__zlib_huffa) \
  X(stbiw__zlib_huffb)

// ---- save and clear them ----------------------------------------------------------------
LOWBIT_STBIW_MACROS(LOWBIT_STBIW_PUSH)
#undef INCLUDE_STB_IMAGE_WRITE_H
#undef STBIWDEF
#undef STBIW_ASSERT
#undef STBIW_CRC32
#undef STBIW_EXTERN
#undef STBIW_FREE
#undef STBIW_MALLOC
#undef STBIW_MEMMOVE
#undef STBIW_REALLOC
#undef STBIW_REALLOC_SIZED
#undef STBIW_UCHAR
#undef STBIW_WINDOWS_UTF8
#undef STBIW_ZLIB_COMPRESS
#undef STBI_WRITE_NO_STDIO
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef STB_IMAGE_WRITE_STATIC
#undef _CRT_NONSTDC_NO_DEPRECATE
#undef _CRT_SECURE_NO_WARNINGS
#undef stbiw__ZHASH
#undef stbiw__max
#undef stbiw__sbcount
#undef stbiw__sbfree
#undef stbiw__sbgrow
#undef stbiw__sbm
#undef stbiw__sbmaybegrow
#undef stbiw__sbn
#undef stbiw__sbneedgrow
#undef stbiw__sbpush
#undef stbiw__sbraw
#undef stbiw__wp32
#undef stbiw__wpng4
#undef stbiw__wptag
#undef stbiw__zlib_add
#undef stbiw__zlib_flush
#undef stbiw__zlib_huff
#undef stbiw__zlib_huff1
#undef stbiw__zlib_huff2
#undef stbiw__zlib_huff3
#undef stbiw__zlib_huff4
#undef stbiw__zlib_huffa
#undef stbiw__zlib_huffb

// ---- our configuration ----------------------------------------------------------------------
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO

// stb is third-party C code: silence its warnings here only.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#pragma GCC diagnostic ignored "-Wpedantic"
#elif defined(_MSC_VER)
#pragma warning(push, 0)
#endif

namespace lowbit_detail_stbiw {
#include LOWBIT_STB_IMAGE_WRITE_HEADER
}  // namespace lowbit_detail_stbiw

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#elif defined(_MSC_VER)
#pragma warning(pop)
#endif

// ---- restore the caller's macros (pop_macro also un-defines what was undefined before) ----
#undef INCLUDE_STB_IMAGE_WRITE_H
#undef STBIWDEF
#undef STBIW_ASSERT
#undef STBIW_CRC32
#undef STBIW_EXTERN
#undef STBIW_FREE
#undef STBIW_MALLOC
#undef STBIW_MEMMOVE
#undef STBIW_REALLOC
#undef STBIW_REALLOC_SIZED
#undef STBIW_UCHAR
#undef STBIW_WINDOWS_UTF8
#undef STBIW_ZLIB_COMPRESS
#undef STBI_WRITE_NO_STDIO
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef STB_IMAGE_WRITE_STATIC
#undef _CRT_NONSTDC_NO_DEPRECATE
#undef _CRT_SECURE_NO_WARNINGS
#undef stbiw__ZHASH
#undef stbiw__max
#undef stbiw__sbcount
#undef stbiw__sbfree
#undef stbiw__sbgrow
#undef stbiw__sbm
#undef stbiw__sbmaybegrow
#undef stbiw__sbn
#undef stbiw__sbneedgrow
#undef stbiw__sbpush
#undef stbiw__sbraw
#undef stbiw__wp32
#undef stbiw__wpng4
#undef stbiw__wptag
#undef stbiw__zlib_add
#undef stbiw__zlib_flush
#undef stbiw__zlib_huff
#undef stbiw__zlib_huff1
#undef stbiw__zlib_huff2
#undef stbiw__zlib_huff3
#undef stbiw__zlib_huff4
#undef stbiw__zlib_huffa
#undef stbiw__zlib_huffb
LOWBIT_STBIW_MACROS(LOWBIT_STBIW_POP)
#undef LOWBIT_STBIW_MACROS
#undef LOWBIT_STBIW_POP
#undef LOWBIT_STBIW_PUSH
#undef LOWBIT_STBIW_PRAGMA
#undef LOWBIT_STB_IMAGE_WRITE_HEADER
