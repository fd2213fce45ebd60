#ifndef EGRESS_CZLIB_SHIM_H
#define EGRESS_CZLIB_SHIM_H
#include <zlib.h>

// deflateInit2 is a macro (it passes the header's version and z_stream size), which Swift does
// not import. windowBits 15 + 16 asks for a gzip header and trailer instead of zlib's.
static inline int CZlib_deflateInitGzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

// inflateInit2 likewise; 15 + 32 accepts a gzip or zlib header (tests decode with it).
static inline int CZlib_inflateInitAuto(z_stream *stream) {
    return inflateInit2(stream, 15 + 32);
}
#endif
