// A private copy of stb_image_resize (v0.9x, the resizer of libstb-dev) for the image-folder
// reader's optional resize (ImageFolderOptions::size). Only lowbit/data/image_folder.hpp
// includes this header; it calls lowbit_detail_stbir::stbir_resize_uint8.
//
// Why, and how, exactly as data/stb_image_private.hpp does for stb_image: the implementation
// is compiled into every translation unit that includes lowbit, isolated so that it never
// clashes with a user's own stb_image_resize:
//   1. STB_IMAGE_RESIZE_STATIC makes every stb function `static` (internal linkage).
//   2. The file is included inside namespace lowbit_detail_stbir (at global scope, so stb's
//      unqualified pow/floor/memset find the C functions). Unlike stb_image, this header
//      declares nothing extern "C" when STB_IMAGE_RESIZE_STATIC is set, so the namespace alone
//      keeps its names apart from a user's copy; no renaming is needed.
//   3. Every macro it defines or reads (listed from v0.97 with
//      grep -oE '^\s*#\s*define\s+[A-Za-z_][A-Za-z0-9_]*' and the #if/#ifdef lines) is saved
//      with push_macro, undefined, and restored with pop_macro afterwards, so our copy is
//      configured only by us and a user's later #include <stb_image_resize.h> (with or
//      without STB_IMAGE_RESIZE_IMPLEMENTATION) sees the state it would have seen without us.
// stbir_resize_uint8 allocates its own work memory per call, so OpenMP threads may resize
// concurrently.
#pragma once

// Included at global scope first, so that their include guards stop stb from including them
// again inside our namespace.
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// As for stb_image: the CMake target lowbit::stb puts the stb directory itself on the include
// path; a plain Debian/Ubuntu system has <stb/stb_image_resize.h>. (Newer stb releases moved
// this file to deprecated/ in favour of stb_image_resize2.h, whose API differs.)
#if __has_include(<stb_image_resize.h>)
#define LOWBIT_STB_IMAGE_RESIZE_HEADER <stb_image_resize.h>
#elif __has_include(<stb/stb_image_resize.h>)
#define LOWBIT_STB_IMAGE_RESIZE_HEADER <stb/stb_image_resize.h>
#else
#error "lowbit/data: stb_image_resize.h not found. Install libstb-dev, or put the directory holding stb_image_resize.h on the include path (CMake: -DSTB_INCLUDE_DIR=<dir>)."
#endif

#define LOWBIT_STBIR_PRAGMA(x) _Pragma(#x)
#define LOWBIT_STBIR_PUSH(m) LOWBIT_STBIR_PRAGMA(push_macro(#m))
#define LOWBIT_STBIR_POP(m) LOWBIT_STBIR_PRAGMA(pop_macro(#m))
#define LOWBIT_STBIR_MACROS(X) \
  X(OVERWRITE_ARRAY_SIZE) X(STBIRDEF) X(STBIR_ALPHA_CHANNEL_NONE) X(STBIR_ALPHA_EPSILON) \
  X(STBIR_ASSERT) X(STBIR_DEBUG_OVERWRITE_TEST) X(STBIR_DEFAULT_FILTER_DOWNSAMPLE) \
  X(STBIR_DEFAULT_FILTER_UPSAMPLE) X(STBIR_FLAG_ALPHA_PREMULTIPLIED) \
  X(STBIR_FLAG_ALPHA_USES_COLORSPACE) X(STBIR_FREE) X(STBIR_INCLUDE_STB_IMAGE_RESIZE_H) \
  X(STBIR_MALLOC) X(STBIR_MAX_CHANNELS) X(STBIR_NON_IEEE_FLOAT) X(STBIR_NO_ALPHA_EPSILON) \
  X(STBIR_PROGRESS_REPORT) X(STBIR_SATURATE_INT) X(STBIR__ARRAY_SIZE) X(STBIR__DECODE) \
  X(STBIR__ENCODE_LINEAR16) X(STBIR__ENCODE_LINEAR8) X(STBIR__NEXT_MEMPTR) X(STBIR__NOTUSED) \
  X(STBIR__ROUND_INT) X(STBIR__ROUND_UINT) X(STBIR__SATURATE_INT) X(STBIR__UNUSED_PARAM) \
  X(STB_IMAGE_RESIZE_IMPLEMENTATION) X(STB_IMAGE_RESIZE_STATIC) X(stbir__inline)

// ---- save and clear them ----------------------------------------------------------------
LOWBIT_STBIR_MACROS(LOWBIT_STBIR_PUSH)
#undef OVERWRITE_ARRAY_SIZE
#undef STBIRDEF
#undef STBIR_ALPHA_CHANNEL_NONE
#undef STBIR_ALPHA_EPSILON
#undef STBIR_ASSERT
#undef STBIR_DEBUG_OVERWRITE_TEST
#undef STBIR_DEFAULT_FILTER_DOWNSAMPLE
#undef STBIR_DEFAULT_FILTER_UPSAMPLE
#undef STBIR_FLAG_ALPHA_PREMULTIPLIED
#undef STBIR_FLAG_ALPHA_USES_COLORSPACE
#undef STBIR_FREE
#undef STBIR_INCLUDE_STB_IMAGE_RESIZE_H
#undef STBIR_MALLOC
#undef STBIR_MAX_CHANNELS
#undef STBIR_NON_IEEE_FLOAT
#undef STBIR_NO_ALPHA_EPSILON
#undef STBIR_PROGRESS_REPORT
#undef STBIR_SATURATE_INT
#undef STBIR__ARRAY_SIZE
#undef STBIR__DECODE
#undef STBIR__ENCODE_LINEAR16
#undef STBIR__ENCODE_LINEAR8
#undef STBIR__NEXT_MEMPTR
#undef STBIR__NOTUSED
#undef STBIR__ROUND_INT
#undef STBIR__ROUND_UINT
#undef STBIR__SATURATE_INT
#undef STBIR__UNUSED_PARAM
#undef STB_IMAGE_RESIZE_IMPLEMENTATION
#undef STB_IMAGE_RESIZE_STATIC
#undef stbir__inline

// ---- our configuration: static implementation, defaults otherwise -----------------------
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION

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

namespace lowbit_detail_stbir {
#include LOWBIT_STB_IMAGE_RESIZE_HEADER
}  // namespace lowbit_detail_stbir

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#elif defined(_MSC_VER)
#pragma warning(pop)
#endif

// ---- restore the caller's macros (pop_macro also un-defines what was undefined before) ----
#undef OVERWRITE_ARRAY_SIZE
#undef STBIRDEF
#undef STBIR_ALPHA_CHANNEL_NONE
#undef STBIR_ALPHA_EPSILON
#undef STBIR_ASSERT
#undef STBIR_DEBUG_OVERWRITE_TEST
#undef STBIR_DEFAULT_FILTER_DOWNSAMPLE
#undef STBIR_DEFAULT_FILTER_UPSAMPLE
#undef STBIR_FLAG_ALPHA_PREMULTIPLIED
#undef STBIR_FLAG_ALPHA_USES_COLORSPACE
#undef STBIR_FREE
#undef STBIR_INCLUDE_STB_IMAGE_RESIZE_H
#undef STBIR_MALLOC
#undef STBIR_MAX_CHANNELS
#undef STBIR_NON_IEEE_FLOAT
#undef STBIR_NO_ALPHA_EPSILON
#undef STBIR_PROGRESS_REPORT
#undef STBIR_SATURATE_INT
#undef STBIR__ARRAY_SIZE
#undef STBIR__DECODE
#undef STBIR__ENCODE_LINEAR16
#undef STBIR__ENCODE_LINEAR8
#undef STBIR__NEXT_MEMPTR
#undef STBIR__NOTUSED
#undef STBIR__ROUND_INT
#undef STBIR__ROUND_UINT
#undef STBIR__SATURATE_INT
#undef STBIR__UNUSED_PARAM
#undef STB_IMAGE_RESIZE_IMPLEMENTATION
#undef STB_IMAGE_RESIZE_STATIC
#undef stbir__inline
LOWBIT_STBIR_MACROS(LOWBIT_STBIR_POP)
#undef LOWBIT_STBIR_MACROS
#undef LOWBIT_STBIR_POP
#undef LOWBIT_STBIR_PUSH
#undef LOWBIT_STBIR_PRAGMA
#undef LOWBIT_STB_IMAGE_RESIZE_HEADER
