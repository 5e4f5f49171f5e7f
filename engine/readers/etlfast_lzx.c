/* Plain LZ77 ("LZXpress") decompression: see etlfast_lzx.h and the format
 * summary in engine/readers/lzxpress.py (the reference implementation).
 *
 * Every read of the input is checked against its end before it happens, and
 * every write goes through out_reserve(), which never lets the output grow
 * past the limit: hostile input can only make this fail, not overrun.
 */
#include "etlfast_lzx.h"

#include <stdlib.h>
#include <string.h>

/* Make room for `extra` more output bytes (growing by doubling). */
static int out_reserve(lzx_output *out, size_t extra)
{
    if (extra <= out->cap - out->len)
        return 1;
    if (extra > SIZE_MAX / 2 - out->len)
        return 0;
    size_t cap = out->cap ? out->cap : 4096;
    while (cap - out->len < extra)
        cap *= 2;
    uint8_t *grown = realloc(out->data, cap);
    if (grown == NULL)
        return 0;
    out->data = grown;
    out->cap = cap;
    return 1;
}

/* Bytes still allowed before the limit (SIZE_MAX when there is none). */
static size_t room_left(const lzx_output *out, int64_t limit)
{
    if (limit < 0)
        return SIZE_MAX;
    return (uint64_t)limit > out->len ? (size_t)((uint64_t)limit - out->len) : 0;
}

static uint32_t read_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The input cursor and the nibble state shared by consecutive matches. */
typedef struct {
    const uint8_t *src;
    size_t n;
    size_t ip;
    size_t half; /* position of a length byte whose high nibble is unused, or SIZE_MAX */
} lzx_input;

/* Decode a match's length from its 3 low token bits and any extension
 * bytes ([MS-XCA] 2.4.4: 3 bits, then a shared nibble, a byte, a 16-bit and
 * a 32-bit word).  Returns 0 and sets *message on malformed input. */
static int match_length(lzx_input *in, uint32_t token, uint64_t *length, const char **message)
{
    uint64_t len = token & 7;
    if (len == 7) {
        if (in->half == SIZE_MAX) {
            if (in->ip >= in->n)
                goto truncated;
            len = in->src[in->ip] & 15;
            in->half = in->ip++;
        } else {
            len = in->src[in->half] >> 4;
            in->half = SIZE_MAX;
        }
        if (len == 15) {
            if (in->ip >= in->n)
                goto truncated;
            len = in->src[in->ip++];
            if (len == 255) {
                if (in->n - in->ip < 2)
                    goto truncated;
                len = read_u16(in->src + in->ip);
                in->ip += 2;
                if (len == 0) {
                    if (in->n - in->ip < 4)
                        goto truncated;
                    len = read_u32(in->src + in->ip);
                    in->ip += 4;
                }
                if (len < 22) {
                    *message = "match length below its encoding's minimum";
                    return 0;
                }
                len -= 22;
            }
            len += 15;
        }
        len += 7;
    }
    *length = len + 3;
    return 1;
truncated:
    *message = "compressed data ends inside a token";
    return 0;
}

/* Append `length` bytes copied from `distance` bytes back (an overlapping
 * copy repeats the pattern, as LZ77 intends), cut at the limit. */
static lzx_status copy_match(lzx_output *out, uint64_t distance, uint64_t length, int64_t limit,
                             const char **message, size_t *detail)
{
    if (distance > out->len) {
        *message = "match reaches %zu bytes before the start of the output";
        *detail = (size_t)(distance - out->len);
        return LZX_CORRUPT;
    }
    size_t room = room_left(out, limit);
    size_t count = length < room ? (size_t)length : room;
    if (!out_reserve(out, count))
        return LZX_NO_MEMORY;
    uint8_t *dst = out->data + out->len;
    const uint8_t *from = dst - distance;
    if (distance >= count) {
        memcpy(dst, from, count);
    } else {
        for (size_t i = 0; i < count; i++)
            dst[i] = from[i];
    }
    out->len += count;
    return LZX_OK;
}

lzx_status lzx_decompress(const uint8_t *src, size_t n, int64_t limit, lzx_output *out, const char **message,
                          size_t *detail)
{
    lzx_input in = {src, n, 0, SIZE_MAX};
    if (limit > 0 && !out_reserve(out, (uint64_t)limit < 4 * n + 4096 ? (size_t)limit : 4 * n + 4096))
        return LZX_NO_MEMORY;
    while (in.ip < n) {
        if (room_left(out, limit) == 0)
            return LZX_OK;
        if (n - in.ip < 4) {
            *message = "compressed data ends inside a flag word";
            return LZX_CORRUPT;
        }
        uint32_t flags = read_u32(src + in.ip);
        in.ip += 4;
        for (int bit = 31; bit >= 0; bit--) {
            if (in.ip >= n)
                return LZX_OK; /* input used up: a literal run or the end marker */
            if (!(flags >> bit & 1)) {
                if (!out_reserve(out, 1))
                    return LZX_NO_MEMORY;
                out->data[out->len++] = src[in.ip++];
            } else {
                if (n - in.ip < 2) {
                    *message = "compressed data ends inside a token";
                    return LZX_CORRUPT;
                }
                uint32_t token = read_u16(src + in.ip);
                in.ip += 2;
                uint64_t length;
                if (!match_length(&in, token, &length, message))
                    return LZX_CORRUPT;
                lzx_status status = copy_match(out, (token >> 3) + 1, length, limit, message, detail);
                if (status != LZX_OK)
                    return status;
            }
            if (room_left(out, limit) == 0)
                return LZX_OK;
        }
    }
    return LZX_OK;
}
