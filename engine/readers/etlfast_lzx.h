/* Plain LZ77 ("LZXpress", [MS-XCA] 2.3/2.4) decompression, in C.
 *
 * The reference implementation is engine/readers/lzxpress.py; this one must
 * give the same output, or fail where it fails (tests/test_etl_lzxpress.py
 * runs both through the same cases and random inputs).
 */
#ifndef HEAPLINT_ETLFAST_LZX_H
#define HEAPLINT_ETLFAST_LZX_H

#include <stddef.h>
#include <stdint.h>

/* A growable output buffer owned by the caller (free(out.data) when done). */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} lzx_output;

typedef enum {
    LZX_OK = 0,
    LZX_CORRUPT = 1, /* malformed input: *message says why (a PyErr_Format
                        format taking *detail as its one %zu) */
    LZX_NO_MEMORY = 2,
} lzx_status;

/* Decompress src[0:n] into *out (which must start empty).  With limit >= 0,
 * decoding stops as soon as limit bytes are produced (a match crossing the
 * limit is cut there); limit < 0 means no limit.  Never reads outside
 * src[0:n] nor writes outside the output buffer. */
lzx_status lzx_decompress(const uint8_t *src, size_t n, int64_t limit, lzx_output *out, const char **message,
                          size_t *detail);

#endif
