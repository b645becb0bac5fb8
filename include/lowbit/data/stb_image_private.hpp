// A private copy of stb_image (JPEG, PNG and BMP decoding) for lowbit's image-folder reader.
// Only lowbit/data/image_folder.hpp includes this header; it calls
//   lowbit_detail_stbi::lowbit_stbi_load_from_memory / lowbit_stbi_image_free /
//   lowbit_stbi_failure_reason.
//
// Why: stb_image's implementation must be compiled in exactly one translation unit
// (STB_IMAGE_IMPLEMENTATION), which a header-only library cannot arrange. Instead every
// translation unit that includes lowbit gets its own private copy, isolated three ways:
//   1. STB_IMAGE_STATIC makes every stb function `static` (internal linkage), so any number
//      of TUs including lowbit link together, and they never clash with a user's own
//      non-static stb_image implementation in another TU.
//   2. The public stbi_* names are renamed to lowbit_stbi_* and the whole file is included
//      inside namespace lowbit_detail_stbi, so a user's own stb_image in the SAME TU
//      (declarations or implementation, included before or after lowbit) does not collide
//      (stb declares its API extern "C", and C-linkage names ignore namespaces — hence the
//      renaming as well as the namespace). The namespace is at global scope, not inside
//      namespace lowbit, on purpose: stb calls C functions unqualified (abs, pow, ldexp),
//      and inside lowbit those names would find lowbit::abs etc. and hide ::abs.
//   3. Every macro stb_image defines or reads as configuration is saved with push_macro,
//      undefined, and restored with pop_macro afterwards, so our copy is configured only by
//      us and the user's later `#define STB_IMAGE_IMPLEMENTATION / #include <stb_image.h>`
//      sees exactly the state it would have seen without lowbit.
// The macro list below was generated from stb_image 2.28 (Debian 12 libstb-dev) with
//   grep -oE '^\s*#\s*define\s+[A-Za-z_][A-Za-z0-9_]*' stb_image.h   (+ the STBIDEF names
// and the documented configuration macros). A macro a future stb version adds and that is
// not listed only matters if the user also includes stb_image.h in the same TU as lowbit.
//
// Configuration: STBI_ONLY_JPEG/PNG/BMP keep compile time down; STBI_NO_STDIO because
// lowbit reads files itself and decodes from memory; STBI_NO_LINEAR (no float API). Decoding
// from memory is reentrant (the failure reason is thread_local under C++11), so OpenMP
// threads may decode concurrently. stbi_set_flip_vertically_on_load is never called (its
// non-_thread variant sets a global).
//
// The one formal wrinkle: lowbit's inline functions call these internal-linkage functions,
// so each TU's copy of an inline function refers to its own (token-for-token identical)
// stb copy. Every copy behaves identically, which is the price of staying header-only.
#pragma once

// stb_image includes these C headers; include them at global scope first so that their
// include guards stop stb from including them again inside our namespace.
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64) || \
    (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#endif
#if defined(_MSC_VER)
#include <intrin.h>
#endif
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
#include <arm_neon.h>
#endif

// The CMake target lowbit::stb puts the stb directory itself on the include path
// (<stb_image.h>); a plain Debian/Ubuntu system without it has <stb/stb_image.h>.
#if __has_include(<stb_image.h>)
#define LOWBIT_STB_IMAGE_HEADER <stb_image.h>
#elif __has_include(<stb/stb_image.h>)
#define LOWBIT_STB_IMAGE_HEADER <stb/stb_image.h>
#else
#error "lowbit/data: stb_image.h not found. Install libstb-dev, or put the directory holding stb_image.h on the include path (CMake: -DSTB_INCLUDE_DIR=<dir>)."
#endif

// ---- save and clear every macro stb_image defines or reads -------------------------------
#define LOWBIT_STBI_PRAGMA(x) _Pragma(#x)
#define LOWBIT_STBI_PUSH(m) LOWBIT_STBI_PRAGMA(push_macro(#m))
#define LOWBIT_STBI_POP(m) LOWBIT_STBI_PRAGMA(pop_macro(#m))
#define LOWBIT_STBI_MACROS(X) \
  X(FAST_BITS) X(STBIDEF) X(STBI_ASSERT) X(STBI_EXTERN) X(STBI_FAILURE_USERMSG) \
  X(STBI_FREE) X(STBI_HAS_LROTL) X(STBI_INCLUDE_STB_IMAGE_H) X(STBI_MALLOC) \
  X(STBI_MAX_DIMENSIONS) X(STBI_MINGW_ENABLE_SSE2) X(STBI_NEON) X(STBI_NOTUSED) \
  X(STBI_NO_BMP) X(STBI_NO_FAILURE_STRINGS) X(STBI_NO_GIF) X(STBI_NO_HDR) X(STBI_NO_JPEG) \
  X(STBI_NO_LINEAR) X(STBI_NO_PIC) X(STBI_NO_PNG) X(STBI_NO_PNM) X(STBI_NO_PSD) \
  X(STBI_NO_SIMD) X(STBI_NO_STDIO) X(STBI_NO_TGA) X(STBI_NO_THREAD_LOCALS) X(STBI_NO_ZLIB) \
  X(STBI_ONLY_BMP) X(STBI_ONLY_GIF) X(STBI_ONLY_HDR) X(STBI_ONLY_JPEG) X(STBI_ONLY_PIC) \
  X(STBI_ONLY_PNG) X(STBI_ONLY_PNM) X(STBI_ONLY_PSD) X(STBI_ONLY_TGA) X(STBI_ONLY_ZLIB) \
  X(STBI_REALLOC) X(STBI_REALLOC_SIZED) X(STBI_SIMD_ALIGN) X(STBI_SSE2) \
  X(STBI_SUPPORT_ZLIB) X(STBI_THREAD_LOCAL) X(STBI_VERSION) X(STBI_WINDOWS_UTF8) \
  X(STBI__BYTECAST) X(STBI__CASE) X(STBI__COMBO) X(STBI__HDR_BUFLEN) X(STBI__IDCT_1D) \
  X(STBI__MARKER_none) X(STBI__PNG_TYPE) X(STBI__RESTART) X(STBI__X64_TARGET) \
  X(STBI__X86_TARGET) X(STBI__ZFAST_BITS) X(STBI__ZFAST_MASK) X(STBI__ZNSYMS) \
  X(STB_IMAGE_IMPLEMENTATION) X(STB_IMAGE_STATIC) X(dct_bfly32o) X(dct_const) \
  X(dct_interleave16) X(dct_interleave8) X(dct_long_mac) X(dct_long_mul) X(dct_pass) \
  X(dct_rot) X(dct_trn16) X(dct_trn32) X(dct_trn64) X(dct_trn8_16) X(dct_trn8_32) \
  X(dct_trn8_8) X(dct_wadd) X(dct_widen) X(dct_wsub) X(stbi__DNL) X(stbi__EOI) \
  X(stbi__SOF) X(stbi__SOF_progressive) X(stbi__SOI) X(stbi__SOS) X(stbi__de_iphone_flag) \
  X(stbi__div16) X(stbi__div4) X(stbi__err) X(stbi__errpf) X(stbi__errpuc) X(stbi__f2f) \
  X(stbi__float2fixed) X(stbi__float2int) X(stbi__fsh) X(stbi__unpremultiply_on_load) \
  X(stbi__unpremultiply_on_load_thread) X(stbi__vertically_flip_on_load) \
  X(stbi_convert_iphone_png_to_rgb) X(stbi_convert_iphone_png_to_rgb_thread) \
  X(stbi_convert_wchar_to_utf8) X(stbi_failure_reason) X(stbi_hdr_to_ldr_gamma) \
  X(stbi_hdr_to_ldr_scale) X(stbi_image_free) X(stbi_info) X(stbi_info_from_callbacks) \
  X(stbi_info_from_file) X(stbi_info_from_memory) X(stbi_inline) X(stbi_is_16_bit) \
  X(stbi_is_16_bit_from_callbacks) X(stbi_is_16_bit_from_file) \
  X(stbi_is_16_bit_from_memory) X(stbi_is_hdr) X(stbi_is_hdr_from_callbacks) \
  X(stbi_is_hdr_from_file) X(stbi_is_hdr_from_memory) X(stbi_ldr_to_hdr_gamma) \
  X(stbi_ldr_to_hdr_scale) X(stbi_load) X(stbi_load_16) X(stbi_load_16_from_callbacks) \
  X(stbi_load_16_from_memory) X(stbi_load_from_callbacks) X(stbi_load_from_file) \
  X(stbi_load_from_file_16) X(stbi_load_from_memory) X(stbi_load_gif_from_memory) \
  X(stbi_loadf) X(stbi_loadf_from_callbacks) X(stbi_loadf_from_file) \
  X(stbi_loadf_from_memory) X(stbi_lrot) X(stbi_set_flip_vertically_on_load) \
  X(stbi_set_flip_vertically_on_load_thread) X(stbi_set_unpremultiply_on_load) \
  X(stbi_set_unpremultiply_on_load_thread) X(stbi_zlib_decode_buffer) \
  X(stbi_zlib_decode_malloc) X(stbi_zlib_decode_malloc_guesssize) \
  X(stbi_zlib_decode_malloc_guesssize_headerflag) X(stbi_zlib_decode_noheader_buffer) \
  X(stbi_zlib_decode_noheader_malloc) 

LOWBIT_STBI_MACROS(LOWBIT_STBI_PUSH)
#undef FAST_BITS
#undef STBIDEF
#undef STBI_ASSERT
#undef STBI_EXTERN
#undef STBI_FAILURE_USERMSG
#undef STBI_FREE
#undef STBI_HAS_LROTL
#undef STBI_INCLUDE_STB_IMAGE_H
#undef STBI_MALLOC
#undef STBI_MAX_DIMENSIONS
#undef STBI_MINGW_ENABLE_SSE2
#undef STBI_NEON
#undef STBI_NOTUSED
#undef STBI_NO_BMP
#undef STBI_NO_FAILURE_STRINGS
#undef STBI_NO_GIF
#undef STBI_NO_HDR
#undef STBI_NO_JPEG
#undef STBI_NO_LINEAR
#undef STBI_NO_PIC
#undef STBI_NO_PNG
#undef STBI_NO_PNM
#undef STBI_NO_PSD
#undef STBI_NO_SIMD
#undef STBI_NO_STDIO
#undef STBI_NO_TGA
#undef STBI_NO_THREAD_LOCALS
#undef STBI_NO_ZLIB
#undef STBI_ONLY_BMP
#undef STBI_ONLY_GIF
#undef STBI_ONLY_HDR
#undef STBI_ONLY_JPEG
#undef STBI_ONLY_PIC
#undef STBI_ONLY_PNG
#undef STBI_ONLY_PNM
#undef STBI_ONLY_PSD
#undef STBI_ONLY_TGA
#undef STBI_ONLY_ZLIB
#undef STBI_REALLOC
#undef STBI_REALLOC_SIZED
#undef STBI_SIMD_ALIGN
#undef STBI_SSE2
#undef STBI_SUPPORT_ZLIB
#undef STBI_THREAD_LOCAL
#undef STBI_VERSION
#undef STBI_WINDOWS_UTF8
#undef STBI__BYTECAST
#undef STBI__CASE
#undef STBI__COMBO
#undef STBI__HDR_BUFLEN
#undef STBI__IDCT_1D
#undef STBI__MARKER_none
#undef STBI__PNG_TYPE
#undef STBI__RESTART
#undef STBI__X64_TARGET
#undef STBI__X86_TARGET
#undef STBI__ZFAST_BITS
#undef STBI__ZFAST_MASK
#undef STBI__ZNSYMS
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef dct_bfly32o
#undef dct_const
#undef dct_interleave16
#undef dct_interleave8
#undef dct_long_mac
#undef dct_long_mul
#undef dct_pass
#undef dct_rot
#undef dct_trn16
#undef dct_trn32
#undef dct_trn64
#undef dct_trn8_16
#undef dct_trn8_32
#undef dct_trn8_8
#undef dct_wadd
#undef dct_widen
#undef dct_wsub
#undef stbi__DNL
#undef stbi__EOI
#undef stbi__SOF
#undef stbi__SOF_progressive
#undef stbi__SOI
#undef stbi__SOS
#undef stbi__de_iphone_flag
#undef stbi__div16
#undef stbi__div4
#undef stbi__err
#undef stbi__errpf
#undef stbi__errpuc
#undef stbi__f2f
#undef stbi__float2fixed
#undef stbi__float2int
#undef stbi__fsh
#undef stbi__unpremultiply_on_load
#undef stbi__unpremultiply_on_load_thread
#undef stbi__vertically_flip_on_load
#undef stbi_convert_iphone_png_to_rgb
#undef stbi_convert_iphone_png_to_rgb_thread
#undef stbi_convert_wchar_to_utf8
#undef stbi_failure_reason
#undef stbi_hdr_to_ldr_gamma
#undef stbi_hdr_to_ldr_scale
#undef stbi_image_free
#undef stbi_info
#undef stbi_info_from_callbacks
#undef stbi_info_from_file
#undef stbi_info_from_memory
#undef stbi_inline
#undef stbi_is_16_bit
#undef stbi_is_16_bit_from_callbacks
#undef stbi_is_16_bit_from_file
#undef stbi_is_16_bit_from_memory
#undef stbi_is_hdr
#undef stbi_is_hdr_from_callbacks
#undef stbi_is_hdr_from_file
#undef stbi_is_hdr_from_memory
#undef stbi_ldr_to_hdr_gamma
#undef stbi_ldr_to_hdr_scale
#undef stbi_load
#undef stbi_load_16
#undef stbi_load_16_from_callbacks
#undef stbi_load_16_from_memory
#undef stbi_load_from_callbacks
#undef stbi_load_from_file
#undef stbi_load_from_file_16
#undef stbi_load_from_memory
#undef stbi_load_gif_from_memory
#undef stbi_loadf
#undef stbi_loadf_from_callbacks
#undef stbi_loadf_from_file
#undef stbi_loadf_from_memory
#undef stbi_lrot
#undef stbi_set_flip_vertically_on_load
#undef stbi_set_flip_vertically_on_load_thread
#undef stbi_set_unpremultiply_on_load
#undef stbi_set_unpremultiply_on_load_thread
#undef stbi_zlib_decode_buffer
#undef stbi_zlib_decode_malloc
#undef stbi_zlib_decode_malloc_guesssize
#undef stbi_zlib_decode_malloc_guesssize_headerflag
#undef stbi_zlib_decode_noheader_buffer
#undef stbi_zlib_decode_noheader_malloc

// ---- our configuration --------------------------------------------------------------------
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define stbi__unpremultiply_on_load_thread lowbit_stbi__unpremultiply_on_load_thread
#define stbi_convert_iphone_png_to_rgb lowbit_stbi_convert_iphone_png_to_rgb
#define stbi_convert_iphone_png_to_rgb_thread lowbit_stbi_convert_iphone_png_to_rgb_thread
#define stbi_convert_wchar_to_utf8 lowbit_stbi_convert_wchar_to_utf8
#define stbi_failure_reason lowbit_stbi_failure_reason
#define stbi_hdr_to_ldr_gamma lowbit_stbi_hdr_to_ldr_gamma
#define stbi_hdr_to_ldr_scale lowbit_stbi_hdr_to_ldr_scale
#define stbi_image_free lowbit_stbi_image_free
#define stbi_info lowbit_stbi_info
#define stbi_info_from_callbacks lowbit_stbi_info_from_callbacks
#define stbi_info_from_file lowbit_stbi_info_from_file
#define stbi_info_from_memory lowbit_stbi_info_from_memory
#define stbi_is_16_bit lowbit_stbi_is_16_bit
#define stbi_is_16_bit_from_callbacks lowbit_stbi_is_16_bit_from_callbacks
#define stbi_is_16_bit_from_file lowbit_stbi_is_16_bit_from_file
#define stbi_is_16_bit_from_memory lowbit_stbi_is_16_bit_from_memory
#define stbi_is_hdr lowbit_stbi_is_hdr
#define stbi_is_hdr_from_callbacks lowbit_stbi_is_hdr_from_callbacks
#define stbi_is_hdr_from_file lowbit_stbi_is_hdr_from_file
#define stbi_is_hdr_from_memory lowbit_stbi_is_hdr_from_memory
#define stbi_ldr_to_hdr_gamma lowbit_stbi_ldr_to_hdr_gamma
#define stbi_ldr_to_hdr_scale lowbit_stbi_ldr_to_hdr_scale
#define stbi_load lowbit_stbi_load
#define stbi_load_16 lowbit_stbi_load_16
#define stbi_load_16_from_callbacks lowbit_stbi_load_16_from_callbacks
#define stbi_load_16_from_memory lowbit_stbi_load_16_from_memory
#define stbi_load_from_callbacks lowbit_stbi_load_from_callbacks
#define stbi_load_from_file lowbit_stbi_load_from_file
#define stbi_load_from_file_16 lowbit_stbi_load_from_file_16
#define stbi_load_from_memory lowbit_stbi_load_from_memory
#define stbi_load_gif_from_memory lowbit_stbi_load_gif_from_memory
#define stbi_loadf lowbit_stbi_loadf
#define stbi_loadf_from_callbacks lowbit_stbi_loadf_from_callbacks
#define stbi_loadf_from_file lowbit_stbi_loadf_from_file
#define stbi_loadf_from_memory lowbit_stbi_loadf_from_memory
#define stbi_set_flip_vertically_on_load lowbit_stbi_set_flip_vertically_on_load
#define stbi_set_flip_vertically_on_load_thread lowbit_stbi_set_flip_vertically_on_load_thread
#define stbi_set_unpremultiply_on_load lowbit_stbi_set_unpremultiply_on_load
#define stbi_set_unpremultiply_on_load_thread lowbit_stbi_set_unpremultiply_on_load_thread
#define stbi_zlib_decode_buffer lowbit_stbi_zlib_decode_buffer
#define stbi_zlib_decode_malloc lowbit_stbi_zlib_decode_malloc
#define stbi_zlib_decode_malloc_guesssize lowbit_stbi_zlib_decode_malloc_guesssize
#define stbi_zlib_decode_malloc_guesssize_headerflag lowbit_stbi_zlib_decode_malloc_guesssize_headerflag
#define stbi_zlib_decode_noheader_buffer lowbit_stbi_zlib_decode_noheader_buffer
#define stbi_zlib_decode_noheader_malloc lowbit_stbi_zlib_decode_noheader_malloc

// stb is third-party C code: silence its warnings here only.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#pragma GCC diagnostic ignored "-Wpedantic"
#elif defined(_MSC_VER)
#pragma warning(push, 0)
#endif

namespace lowbit_detail_stbi {
#include LOWBIT_STB_IMAGE_HEADER
}  // namespace lowbit_detail_stbi

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#elif defined(_MSC_VER)
#pragma warning(pop)
#endif

// ---- restore the caller's macros (pop_macro also un-defines what was undefined before) ----
#undef FAST_BITS
#undef STBIDEF
#undef STBI_ASSERT
#undef STBI_EXTERN
#undef STBI_FAILURE_USERMSG
#undef STBI_FREE
#undef STBI_HAS_LROTL
#undef STBI_INCLUDE_STB_IMAGE_H
#undef STBI_MALLOC
#undef STBI_MAX_DIMENSIONS
#undef STBI_MINGW_ENABLE_SSE2
#undef STBI_NEON
#undef STBI_NOTUSED
#undef STBI_NO_BMP
#undef STBI_NO_FAILURE_STRINGS
#undef STBI_NO_GIF
#undef STBI_NO_HDR
#undef STBI_NO_JPEG
#undef STBI_NO_LINEAR
#undef STBI_NO_PIC
#undef STBI_NO_PNG
#undef STBI_NO_PNM
#undef STBI_NO_PSD
#undef STBI_NO_SIMD
#undef STBI_NO_STDIO
#undef STBI_NO_TGA
#undef STBI_NO_THREAD_LOCALS
#undef STBI_NO_ZLIB
#undef STBI_ONLY_BMP
#undef STBI_ONLY_GIF
#undef STBI_ONLY_HDR
#undef STBI_ONLY_JPEG
#undef STBI_ONLY_PIC
#undef STBI_ONLY_PNG
#undef STBI_ONLY_PNM
#undef STBI_ONLY_PSD
#undef STBI_ONLY_TGA
#undef STBI_ONLY_ZLIB
#undef STBI_REALLOC
#undef STBI_REALLOC_SIZED
#undef STBI_SIMD_ALIGN
#undef STBI_SSE2
#undef STBI_SUPPORT_ZLIB
#undef STBI_THREAD_LOCAL
#undef STBI_VERSION
#undef STBI_WINDOWS_UTF8
#undef STBI__BYTECAST
#undef STBI__CASE
#undef STBI__COMBO
#undef STBI__HDR_BUFLEN
#undef STBI__IDCT_1D
#undef STBI__MARKER_none
#undef STBI__PNG_TYPE
#undef STBI__RESTART
#undef STBI__X64_TARGET
#undef STBI__X86_TARGET
#undef STBI__ZFAST_BITS
#undef STBI__ZFAST_MASK
#undef STBI__ZNSYMS
#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef dct_bfly32o
#undef dct_const
#undef dct_interleave16
#undef dct_interleave8
#undef dct_long_mac
#undef dct_long_mul
#undef dct_pass
#undef dct_rot
#undef dct_trn16
#undef dct_trn32
#undef dct_trn64
#undef dct_trn8_16
#undef dct_trn8_32
#undef dct_trn8_8
#undef dct_wadd
#undef dct_widen
#undef dct_wsub
#undef stbi__DNL
#undef stbi__EOI
#undef stbi__SOF
#undef stbi__SOF_progressive
#undef stbi__SOI
#undef stbi__SOS
#undef stbi__de_iphone_flag
#undef stbi__div16
#undef stbi__div4
#undef stbi__err
#undef stbi__errpf
#undef stbi__errpuc
#undef stbi__f2f
#undef stbi__float2fixed
#undef stbi__float2int
#undef stbi__fsh
#undef stbi__unpremultiply_on_load
#undef stbi__unpremultiply_on_load_thread
#undef stbi__vertically_flip_on_load
#undef stbi_convert_iphone_png_to_rgb
#undef stbi_convert_iphone_png_to_rgb_thread
#undef stbi_convert_wchar_to_utf8
#undef stbi_failure_reason
#undef stbi_hdr_to_ldr_gamma
#undef stbi_hdr_to_ldr_scale
#undef stbi_image_free
#undef stbi_info
#undef stbi_info_from_callbacks
#undef stbi_info_from_file
#undef stbi_info_from_memory
#undef stbi_inline
#undef stbi_is_16_bit
#undef stbi_is_16_bit_from_callbacks
#undef stbi_is_16_bit_from_file
#undef stbi_is_16_bit_from_memory
#undef stbi_is_hdr
#undef stbi_is_hdr_from_callbacks
#undef stbi_is_hdr_from_file
#undef stbi_is_hdr_from_memory
#undef stbi_ldr_to_hdr_gamma
#undef stbi_ldr_to_hdr_scale
#undef stbi_load
#undef stbi_load_16
#undef stbi_load_16_from_callbacks
#undef stbi_load_16_from_memory
#undef stbi_load_from_callbacks
#undef stbi_load_from_file
#undef stbi_load_from_file_16
#undef stbi_load_from_memory
#undef stbi_load_gif_from_memory
#undef stbi_loadf
#undef stbi_loadf_from_callbacks
#undef stbi_loadf_from_file
#undef stbi_loadf_from_memory
#undef stbi_lrot
#undef stbi_set_flip_vertically_on_load
#undef stbi_set_flip_vertically_on_load_thread
#undef stbi_set_unpremultiply_on_load
#undef stbi_set_unpremultiply_on_load_thread
#undef stbi_zlib_decode_buffer
#undef stbi_zlib_decode_malloc
#undef stbi_zlib_decode_malloc_guesssize
#undef stbi_zlib_decode_malloc_guesssize_headerflag
#undef stbi_zlib_decode_noheader_buffer
#undef stbi_zlib_decode_noheader_malloc
LOWBIT_STBI_MACROS(LOWBIT_STBI_POP)
#undef LOWBIT_STBI_MACROS
#undef LOWBIT_STBI_POP
#undef LOWBIT_STBI_PUSH
#undef LOWBIT_STBI_PRAGMA
#undef LOWBIT_STB_IMAGE_HEADER
