/*
 * jetflow._speedups: C versions of the codec's hot-path functions.
 *
 * Every function here has a pure-Python reference (named in its docstring) and must behave
 * exactly like it; tests/codec/test_speedups.py checks this on the real corpus, on hand-written
 * edge cases and on fuzzed input. jetflow/codec/accel.py swaps these in when the module builds.
 *
 * Conventions: internal helpers return 0 on success and -1 on failure. Every read of the input
 * is bounds-checked against an explicit length; recursion is bounded by MAX_DEPTH. Output is
 * built in a local growable buffer (Buf) and copied into a bytes object at the end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Limits of spec §9 (indigo atdata), as in jetflow/codec/cbor.py. */
#define MAX_RECORD_BYTES (1u << 20)
#define MAX_STRING_BYTES (1u << 20)
#define MAX_CONTAINER_ITEMS 131072u
#define MAX_KEY_BYTES 8192u
#define MAX_DEPTH 128
/* libipld refuses longer multihash digests (jetflow/codec/cid.py MAX_DIGEST_BYTES). */
#define MAX_DIGEST_BYTES 64u

static PyObject *InvalidRecordError; /* jetflow.errors.InvalidRecordError */
static PyObject *MalformedCARError;  /* jetflow.errors.MalformedCARError */
static PyObject *is_cid_str_func;    /* jetflow.codec.cid.is_cid_str, imported on first use */
static PyObject *hashlib_sha256;     /* hashlib.sha256 (OpenSSL, SHA-NI where the CPU has it) */

/* ------------------------------------------------------------------------------------------ */
/* Growable output buffer                                                                      */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} Buf;

/* Make room for `extra` more bytes; doubling keeps a long run of appends linear. */
static int
buf_reserve(Buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > (size_t)PY_SSIZE_T_MAX - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > (size_t)PY_SSIZE_T_MAX / 2 ? need : cap * 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Append `n` bytes. */
static int
buf_put(Buf *b, const void *src, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* Append one byte. */
static int
buf_putc(Buf *b, char c)
{
    if (b->len == b->cap && buf_reserve(b, 1) < 0)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

/* Append a NUL-terminated literal. */
static int
buf_puts(Buf *b, const char *s)
{
    return buf_put(b, s, strlen(s));
}

/* Append an integer as JSON writes it: plain decimal digits, '-' first if `negative`. */
static int
buf_put_uint(Buf *b, uint64_t magnitude, int negative)
{
    char tmp[21];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (negative)
        tmp[--i] = '-';
    return buf_put(b, tmp + i, sizeof tmp - i);
}

/* Append a signed 64-bit integer (INT64_MIN included). */
static int
buf_put_int(Buf *b, int64_t value)
{
    if (value < 0)
        return buf_put_uint(b, 0 - (uint64_t)value, 1);
    return buf_put_uint(b, (uint64_t)value, 0);
}

/* Hand the buffer's bytes to Python as a bytes object and free the buffer. */
static PyObject *
buf_finish(Buf *b)
{
    PyObject *result = PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len);
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* UTF-8, JSON strings and Go's escapes                                                        */

/* The end of the ASCII run starting at s[i], found eight bytes at a time where possible. */
static size_t
skip_ascii(const uint8_t *s, size_t n, size_t i)
{
    uint64_t word;
    while (n - i >= 8) {
        memcpy(&word, s + i, 8);
        if (word & 0x8080808080808080ULL)
            break;
        i += 8;
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

/* True if s[0..n) is UTF-8 as Python's strict decoder accepts it: no overlong forms, no
   surrogates, nothing above U+10FFFF. */
static int
utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i = skip_ascii(s, n, i);
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        }
        else
            return 0;
        if (n - i - 1 < need || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

static const char HEX[] = "0123456789abcdef";

/* Nonzero for bytes a JSON string cannot copy as they are (0xE2 may start U+2028/U+2029).
   Filled in at module init. */
static uint8_t NEEDS_ESCAPE[256];

/* The escape for byte `c` of a JSON string, as orjson writes it and then Go rewrites it
   (spec §0.1): \" \\ \n \r \t, \u00XX (lowercase) for other controls, \b and \f included
   (Go writes \u0008 and \u000c), and \u0026 \u003c \u003e for & < >. Writes to `out`
   (7 bytes max) and returns the length. */
static size_t
escape_byte(uint8_t c, char *out)
{
    out[0] = '\\';
    switch (c) {
    case '"': out[1] = '"'; return 2;
    case '\\': out[1] = '\\'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\r': out[1] = 'r'; return 2;
    case '\t': out[1] = 't'; return 2;
    default:
        memcpy(out + 1, "u00", 3);
        out[4] = HEX[c >> 4];
        out[5] = HEX[c & 15];
        return 6;
    }
}

/* True if s[i..n) starts with U+2028 or U+2029 (E2 80 A8 / E2 80 A9). */
static int
is_line_separator(const uint8_t *s, size_t n, size_t i)
{
    return n - i >= 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9);
}

/* Append valid UTF-8 text as a quoted JSON string with Go's escaping. Safe runs are copied
   with one memcpy each. */
static int
put_json_string(Buf *b, const uint8_t *s, size_t n)
{
    if (buf_reserve(b, n + 2) < 0 || buf_putc(b, '"') < 0)
        return -1;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (!NEEDS_ESCAPE[c])
            continue;
        char esc[8];
        size_t len, skip = 1;
        if (c == 0xE2) {
            if (!is_line_separator(s, n, i))
                continue;
            memcpy(esc, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            len = 6;
            skip = 3;
        }
        else
            len = escape_byte(c, esc);
        if (buf_put(b, s + start, i - start) < 0 || buf_put(b, esc, len) < 0)
            return -1;
        start = i + skip;
        i += skip - 1;
    }
    if (buf_put(b, s + start, n - start) < 0)
        return -1;
    return buf_putc(b, '"');
}

/* Append already-encoded JSON with jsonfmt.go_escape's rewrite, for a record embedded as is:
   & < > and U+2028/U+2029 become \u escapes, and an odd run of backslashes followed by b or f
   (a \b or \f escape) keeps the escaped backslashes and ends in \u0008 or \u000c. */
static int
put_go_escaped(Buf *b, const uint8_t *s, size_t n)
{
    size_t start = 0, i = 0;
    while (i < n) {
        uint8_t c = s[i];
        const char *fix = NULL;
        size_t end = i + 1, keep = i;
        if (c == '&' || c == '<' || c == '>')
            fix = c == '&' ? "\\u0026" : c == '<' ? "\\u003c" : "\\u003e";
        else if (is_line_separator(s, n, i)) {
            fix = s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
            end = i + 3;
        }
        else if (c == '\\') {
            size_t j = i;
            while (j < n && s[j] == '\\')
                j++;
            end = j;
            if ((j - i) % 2 == 1 && j < n && (s[j] == 'b' || s[j] == 'f')) {
                fix = s[j] == 'b' ? "\\u0008" : "\\u000c";
                keep = j - 1; /* the escaped backslashes before the final escape stay */
                end = j + 1;
            }
        }
        if (fix != NULL) {
            if (buf_put(b, s + start, keep - start) < 0 || buf_puts(b, fix) < 0)
                return -1;
            start = end;
        }
        i = end;
    }
    return buf_put(b, s + start, n - start);
}

/* ------------------------------------------------------------------------------------------ */
/* Base32, base58 and base64                                                                   */

static const char BASE32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char BASE58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append RFC 4648 base32, lowercase, unpadded: the body of a CIDv1 string. */
static int
put_base32(Buf *b, const uint8_t *s, size_t n)
{
    if (buf_reserve(b, (n * 8 + 4) / 5) < 0)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | s[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            b->data[b->len++] = BASE32[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        b->data[b->len++] = BASE32[(acc << (5 - bits)) & 31];
    return 0;
}

/* Append base58btc (Bitcoin alphabet, leading zero bytes as '1'): a CIDv0 string. Only short
   inputs reach it (a v0 CID is 34 bytes); 48 digits hold 35 bytes. */
static int
put_base58(Buf *b, const uint8_t *s, size_t n)
{
    uint8_t digits[48];
    size_t ndigits = 0, zeros = 0;
    if (n > 35) {
        PyErr_SetString(PyExc_SystemError, "base58 input too long");
        return -1;
    }
    while (zeros < n && s[zeros] == 0)
        zeros++;
    for (size_t i = zeros; i < n; i++) {
        unsigned carry = s[i];
        for (size_t j = 0; j < ndigits; j++) {
            carry += (unsigned)digits[j] << 8;
            digits[j] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry) {
            digits[ndigits++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    if (buf_reserve(b, zeros + ndigits) < 0)
        return -1;
    for (size_t i = 0; i < zeros; i++)
        b->data[b->len++] = '1';
    while (ndigits)
        b->data[b->len++] = BASE58[digits[--ndigits]];
    return 0;
}

/* Append standard base64 without padding: how Jetstream writes {"$bytes": …}. */
static int
put_base64(Buf *b, const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, (n + 2) / 3 * 4) < 0)
        return -1;
    char *out = b->data + b->len;
    size_t i = 0;
    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *out++ = BASE64[v >> 18];
        *out++ = BASE64[(v >> 12) & 63];
        *out++ = BASE64[(v >> 6) & 63];
        *out++ = BASE64[v & 63];
    }
    if (n - i == 1) {
        *out++ = BASE64[s[i] >> 2];
        *out++ = BASE64[(s[i] & 3) << 4];
    }
    else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 8 | s[i + 1];
        *out++ = BASE64[v >> 10];
        *out++ = BASE64[(v >> 4) & 63];
        *out++ = BASE64[(v << 2) & 63];
    }
    b->len = (size_t)(out - b->data);
    return 0;
}

/* True for the 64 characters of the standard base64 alphabet. */
static int
is_base64_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Mirror cbor._is_base64: base64.b64decode(text + '=' * (-len(text) % 4), validate=True)
   succeeds, i.e. binascii's strict mode on the padded text (Python 3.11): no leading '=',
   only alphabet and '=', no data after padding started, a pad that completes a quad must be
   the last character, and the data must end on a quad boundary otherwise. Non-ASCII bytes
   fail, as b64decode refuses non-ASCII text. */
static int
is_base64_text(const uint8_t *s, size_t n)
{
    size_t total = n + (4 - n % 4) % 4;
    int quad = 0, pads = 0, padding = 0;
    for (size_t i = 0; i < total; i++) {
        uint8_t c = i < n ? s[i] : '=';
        if (c == '=') {
            if (i == 0)
                return 0;
            padding = 1;
            if (quad >= 2 && quad + ++pads >= 4)
                return i + 1 == total;
            continue;
        }
        if (!is_base64_char(c) || padding)
            return 0;
        pads = 0;
        quad = (quad + 1) % 4;
    }
    return quad == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* CIDs                                                                                        */

/* Read a CID varint as cid._read_varint does: LEB128, at most 9 bytes, minimal. */
static int
read_cid_varint(const uint8_t *s, size_t n, size_t *pos, uint64_t *out)
{
    uint64_t value = 0;
    for (size_t i = 0; i < 9 && *pos + i < n; i++) {
        uint8_t byte = s[*pos + i];
        value |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) {
            if (byte == 0 && i > 0)
                return -1;
            *pos += i + 1;
            *out = value;
            return 0;
        }
    }
    return -1;
}

/* True if raw[0..n) is exactly one binary CID (cid.is_valid_cid): CIDv0 is 0x12 0x20 plus a
   32-byte digest; CIDv1 is version 1, codec, hash code and digest size varints, then exactly
   that many digest bytes (at most 64) and nothing after. */
static int
cid_is_valid(const uint8_t *raw, size_t n)
{
    if (n >= 2 && raw[0] == 0x12 && raw[1] == 0x20)
        return n == 34;
    size_t pos = 0;
    uint64_t version, codec, code, size;
    if (read_cid_varint(raw, n, &pos, &version) < 0 || version != 1)
        return 0;
    if (read_cid_varint(raw, n, &pos, &codec) < 0 || read_cid_varint(raw, n, &pos, &code) < 0)
        return 0;
    if (read_cid_varint(raw, n, &pos, &size) < 0 || size > MAX_DIGEST_BYTES)
        return 0;
    return n - pos == size;
}

/* Append a valid binary CID as libipld.encode_cid writes it: base58btc for v0, 'b' plus
   base32 for v1. */
static int
put_cid_string(Buf *b, const uint8_t *raw, size_t n)
{
    if (n == 34 && raw[0] == 0x12 && raw[1] == 0x20)
        return put_base58(b, raw, n);
    if (buf_putc(b, 'b') < 0)
        return -1;
    return put_base32(b, raw, n);
}

/* 1 if `text` parses as a CID string, 0 if not, -1 with a Python error set. Only literal
   {"$link": …} maps need this, which real records never hold, so the reference
   (jetflow.codec.cid.is_cid_str, i.e. libipld.decode_cid) is called rather than copying
   libipld's string parser. */
static int
text_is_cid(const uint8_t *s, size_t n)
{
    if (is_cid_str_func == NULL) {
        PyObject *module = PyImport_ImportModule("jetflow.codec.cid");
        if (module == NULL)
            return -1;
        is_cid_str_func = PyObject_GetAttrString(module, "is_cid_str");
        Py_DECREF(module);
        if (is_cid_str_func == NULL)
            return -1;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)s, (Py_ssize_t)n, "strict");
    if (text == NULL)
        return -1;
    PyObject *result = PyObject_CallOneArg(is_cid_str_func, text);
    Py_DECREF(text);
    if (result == NULL)
        return -1;
    int truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* ------------------------------------------------------------------------------------------ */
/* DAG-CBOR heads and map keys                                                                 */

typedef struct {
    int major;
    uint64_t arg; /* for major type 7: the additional info itself */
} Head;

typedef struct {
    const uint8_t *p;
    size_t n;
} Slice;

/* Read the item head at *pos, enforcing DAG-CBOR's minimal integer and length encodings and
   refusing indefinite lengths and reserved infos (cbor._read_head). Major type 7 is left to
   the caller, with `arg` set to its additional info and nothing after the first byte read. */
static int
read_head(const uint8_t *d, size_t len, size_t *pos, Head *h)
{
    if (*pos >= len)
        return -1;
    uint8_t initial = d[(*pos)++];
    int info = initial & 0x1F;
    h->major = initial >> 5;
    h->arg = (uint64_t)info;
    if (info < 24 || h->major == 7)
        return 0;
    if (info > 27)
        return -1;
    size_t size = (size_t)1 << (info - 24);
    static const uint64_t minimum[4] = {24, 0x100, 0x10000, 0x100000000ULL};
    if (len - *pos < size)
        return -1;
    uint64_t arg = 0;
    for (size_t i = 0; i < size; i++)
        arg = (arg << 8) | d[*pos + i];
    if (arg < minimum[info - 24])
        return -1;
    *pos += size;
    h->arg = arg;
    return 0;
}

/* True if `a` sorts before `b` in canonical DAG-CBOR key order: shorter first, then bytewise. */
static int
key_before(Slice a, Slice b)
{
    if (a.n != b.n)
        return a.n < b.n;
    return memcmp(a.p, b.p, a.n) < 0;
}

/* True if the slice holds exactly the NUL-terminated `text`. */
static int
slice_is(Slice s, const char *text)
{
    size_t n = strlen(text);
    return s.n == n && memcmp(s.p, text, n) == 0;
}

/* Read a map key at *pos: a text string, in bounds, valid UTF-8, and after `prev` (when not
   NULL) in canonical order, which also rules out repeated keys. */
static int
read_key(const uint8_t *d, size_t len, size_t *pos, Slice *key, const Slice *prev)
{
    Head h;
    if (read_head(d, len, pos, &h) < 0 || h.major != 3 || h.arg > len - *pos)
        return -1;
    key->p = d + *pos;
    key->n = (size_t)h.arg;
    *pos += key->n;
    if (!utf8_valid(key->p, key->n))
        return -1;
    if (prev != NULL && !key_before(*prev, *key))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Canonical DAG-CBOR walk (frames, CAR headers): canonical.is_canonical                       */

static int skip_item(const uint8_t *d, size_t len, size_t *pos, int depth);

/* Skip the map body of `count` entries: canonical keys, then any canonical value each. */
static int
skip_map(const uint8_t *d, size_t len, size_t *pos, uint64_t count, int depth)
{
    Slice key, prev;
    for (uint64_t i = 0; i < count; i++) {
        if (read_key(d, len, pos, &key, i ? &prev : NULL) < 0)
            return -1;
        prev = key;
        if (skip_item(d, len, pos, depth + 1) < 0)
            return -1;
    }
    return 0;
}

/* Skip a tag: only 42, wrapping a byte string of 0x00 plus exactly one valid CID. */
static int
skip_link(const uint8_t *d, size_t len, size_t *pos, uint64_t tag)
{
    Head h;
    if (tag != 42 || read_head(d, len, pos, &h) < 0 || h.major != 2 || h.arg > len - *pos)
        return -1;
    if (h.arg < 2 || d[*pos] != 0 || !cid_is_valid(d + *pos + 1, (size_t)h.arg - 1))
        return -1;
    *pos += (size_t)h.arg;
    return 0;
}

/* Skip a major-7 item: false, true, null or a finite 64-bit float other than -0.0 (libipld
   refuses to decode negative zero). */
static int
skip_simple(const uint8_t *d, size_t len, size_t *pos, uint64_t info)
{
    if (info >= 20 && info <= 22)
        return 0;
    if (info != 27 || len - *pos < 8)
        return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = (bits << 8) | d[*pos + i];
    double value;
    memcpy(&value, &bits, sizeof value);
    *pos += 8;
    return isfinite(value) && bits != 0x8000000000000000ULL ? 0 : -1;
}

/* Skip one canonical item without copying anything (byte strings are jumped over). Integers
   may use the whole 64-bit range; containers nest at most MAX_DEPTH deep. */
static int
skip_item(const uint8_t *d, size_t len, size_t *pos, int depth)
{
    Head h;
    if (read_head(d, len, pos, &h) < 0)
        return -1;
    switch (h.major) {
    case 0:
    case 1:
        return 0;
    case 2:
    case 3:
        if (h.arg > len - *pos)
            return -1;
        *pos += (size_t)h.arg;
        return h.major == 2 || utf8_valid(d + *pos - h.arg, (size_t)h.arg) ? 0 : -1;
    case 4:
        if (depth >= MAX_DEPTH)
            return -1;
        for (uint64_t i = 0; i < h.arg; i++)
            if (skip_item(d, len, pos, depth + 1) < 0)
                return -1;
        return 0;
    case 5:
        return depth >= MAX_DEPTH ? -1 : skip_map(d, len, pos, h.arg, depth);
    case 6:
        return skip_link(d, len, pos, h.arg);
    default:
        return skip_simple(d, len, pos, h.arg);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Record rendering: DAG-CBOR record block -> Jetstream record JSON (record.render_record)     */

enum {
    K_OTHER,   /* anything the special-map rules do not look at */
    K_INT,     /* an integer, or a float with an integer value */
    K_TEXT,    /* a text string */
    K_LINK,    /* tag 42, rendered {"$link": …} */
    K_LINKMAP, /* a literal {"$link": "<CID string>"} map */
};

typedef struct {
    int kind;
    Slice text; /* K_TEXT: the string's bytes in the input */
} Value;

/* One map entry while its map is being rendered. */
typedef struct {
    Slice key;
    Value value;
    size_t out_start, out_end; /* where "key":value sits in Render.out */
} Entry;

typedef struct {
    const uint8_t *d;
    size_t len, pos;
    Buf out;        /* the JSON */
    Buf scratch;    /* a copy of a map's entries while they are put in JSON order */
    Entry *entries; /* a stack: the entries of every map being rendered, outermost first */
    size_t n_entries, cap_entries;
    const char *error; /* why the record is invalid; NULL when a Python error is set instead */
    size_t error_pos;
} Render;

/* Record why the record is invalid (raised as InvalidRecordError at the top). */
static int
invalid(Render *r, const char *why)
{
    r->error = why;
    r->error_pos = r->pos;
    return -1;
}

static int render_value(Render *r, int depth, Value *v);

/* Take `n` bytes at the cursor for a (byte or text) string: in bounds and at most 1 MiB. */
static int
take_string(Render *r, uint64_t n, Slice *s)
{
    if (n > r->len - r->pos)
        return invalid(r, "string runs past the end");
    if (n > MAX_STRING_BYTES)
        return invalid(r, "string longer than 1 MiB");
    s->p = r->d + r->pos;
    s->n = (size_t)n;
    r->pos += s->n;
    return 0;
}

/* A byte string becomes {"$bytes":"<base64, unpadded>"}. */
static int
render_bytes(Render *r, uint64_t n)
{
    Slice s;
    if (take_string(r, n, &s) < 0)
        return -1;
    if (buf_puts(&r->out, "{\"$bytes\":\"") < 0 || put_base64(&r->out, s.p, s.n) < 0)
        return -1;
    return buf_puts(&r->out, "\"}");
}

/* A text string must be valid UTF-8; it is written with Go's escaping. */
static int
render_text(Render *r, uint64_t n, Value *v)
{
    if (take_string(r, n, &v->text) < 0)
        return -1;
    if (!utf8_valid(v->text.p, v->text.n))
        return invalid(r, "text string is not valid UTF-8");
    v->kind = K_TEXT;
    return put_json_string(&r->out, v->text.p, v->text.n);
}

/* Tag 42 must wrap 0x00 plus exactly one valid CID; it becomes {"$link":"<CID string>"}. */
static int
render_link(Render *r, uint64_t tag, Value *v)
{
    Head h;
    if (tag != 42)
        return invalid(r, "tag other than 42");
    if (read_head(r->d, r->len, &r->pos, &h) < 0 || h.major != 2 || h.arg > r->len - r->pos)
        return invalid(r, "tag 42 must wrap a byte string");
    if (h.arg < 2 || r->d[r->pos] != 0)
        return invalid(r, "CID link without the 0x00 multibase prefix");
    const uint8_t *raw = r->d + r->pos + 1;
    size_t n = (size_t)h.arg - 1;
    if (!cid_is_valid(raw, n))
        return invalid(r, "tag 42 holds an invalid CID");
    r->pos += (size_t)h.arg;
    v->kind = K_LINK;
    if (buf_puts(&r->out, "{\"$link\":\"") < 0 || put_cid_string(&r->out, raw, n) < 0)
        return -1;
    return buf_puts(&r->out, "\"}");
}

/* A float64 with an integer value in int64 range is written as that integer (indigo atdata);
   any other float invalidates the record. */
static int
render_float(Render *r, Value *v)
{
    if (r->len - r->pos < 8)
        return invalid(r, "unexpected end of data");
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = (bits << 8) | r->d[r->pos + i];
    r->pos += 8;
    double x;
    memcpy(&x, &bits, sizeof x);
    if (!isfinite(x))
        return invalid(r, "non-integer float");
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
        return invalid(r, "float out of int64 range");
    int64_t value = (int64_t)x;
    if ((double)value != x)
        return invalid(r, "non-integer float");
    v->kind = K_INT;
    return buf_put_int(&r->out, value);
}

/* Major type 7: false, true, null and 64-bit floats; half/single floats and other simple
   values are not DAG-CBOR. */
static int
render_simple(Render *r, uint64_t info, Value *v)
{
    switch (info) {
    case 20: return buf_puts(&r->out, "false");
    case 21: return buf_puts(&r->out, "true");
    case 22: return buf_puts(&r->out, "null");
    case 27: return render_float(r, v);
    case 25:
    case 26: return invalid(r, "half or single precision float");
    default: return invalid(r, "simple value not allowed in DAG-CBOR");
    }
}

/* An array: at most 131072 items, each rendered in order. */
static int
render_array(Render *r, uint64_t count, int depth)
{
    if (depth >= MAX_DEPTH)
        return invalid(r, "nested more than 128 levels");
    if (count > MAX_CONTAINER_ITEMS)
        return invalid(r, "array longer than 131072 items");
    if (buf_putc(&r->out, '[') < 0)
        return -1;
    for (uint64_t i = 0; i < count; i++) {
        Value item;
        if ((i && buf_putc(&r->out, ',') < 0) || render_value(r, depth + 1, &item) < 0)
            return -1;
    }
    return buf_putc(&r->out, ']');
}

/* Push a new entry on the entry stack; return its index, or -1. */
static Py_ssize_t
push_entry(Render *r)
{
    if (r->n_entries == r->cap_entries) {
        size_t cap = r->cap_entries ? r->cap_entries * 2 : 64;
        Entry *entries = PyMem_Realloc(r->entries, cap * sizeof *entries);
        if (entries == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->entries = entries;
        r->cap_entries = cap;
    }
    return (Py_ssize_t)r->n_entries++;
}

/* The entry whose key is `name`, or NULL. */
static Entry *
find_entry(Entry *e, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (slice_is(e[i].key, name))
            return &e[i];
    return NULL;
}

/* cbor._check_blob: exactly $type, ref, mimeType and size, with ref a CID link (tag 42 or a
   valid literal {"$link"} map), size an integer and mimeType a string. */
static int
check_blob(Render *r, Entry *e, size_t count)
{
    Entry *ref = find_entry(e, count, "ref");
    Entry *mime = find_entry(e, count, "mimeType");
    Entry *size = find_entry(e, count, "size");
    if (count != 4 || ref == NULL || mime == NULL || size == NULL)
        return invalid(r, "a blob must have exactly $type, ref, mimeType and size");
    if (ref->value.kind != K_LINK && ref->value.kind != K_LINKMAP)
        return invalid(r, "blob ref must be a CID link");
    if (size->value.kind != K_INT)
        return invalid(r, "blob size must be a number");
    if (mime->value.kind != K_TEXT)
        return invalid(r, "blob mimeType must be a string");
    return 0;
}

/* cbor._check_map: the rules for $type, blobs, and literal $link / $bytes maps. Sets *blob
   when the map is a blob and marks a valid {"$link"} map as K_LINKMAP. */
static int
check_special_map(Render *r, Entry *e, size_t count, Value *v, int *blob)
{
    Entry *type = find_entry(e, count, "$type");
    *blob = 0;
    if (type != NULL) {
        if (type->value.kind != K_TEXT || type->value.text.n == 0)
            return invalid(r, "$type must be a non-empty string");
        if (slice_is(type->value.text, "blob")) {
            *blob = 1;
            return check_blob(r, e, count);
        }
    }
    Entry *link = find_entry(e, count, "$link");
    if (link != NULL) {
        if (count != 1 || link->value.kind != K_TEXT)
            return invalid(r, "a $link map must hold exactly one valid CID string");
        int ok = text_is_cid(link->value.text.p, link->value.text.n);
        if (ok <= 0)
            return ok < 0 ? -1 : invalid(r, "a $link map must hold exactly one valid CID string");
        v->kind = K_LINKMAP;
    }
    Entry *bytes = find_entry(e, count, "$bytes");
    if (bytes != NULL && (count != 1 || bytes->value.kind != K_TEXT ||
                          !is_base64_text(bytes->value.text.p, bytes->value.text.n)))
        return invalid(r, "a $bytes map must hold exactly one base64 string");
    return 0;
}

/* qsort order of entries: their keys bytewise (Go's map order; keys are unique). */
static int
compare_keys(const void *pa, const void *pb)
{
    const Slice *a = &((const Entry *)pa)->key, *b = &((const Entry *)pb)->key;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    if (c != 0)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

/* The entries were written in input (canonical CBOR) order; put them in JSON order: keys
   sorted bytewise, except blobs, written $type, ref, mimeType, size. Entry segments move
   through the scratch buffer; the commas stay as many as before. */
static int
reorder_entries(Render *r, Entry *e, size_t count, int blob)
{
    if (count < 2)
        return 0;
    size_t region = e[0].out_start;
    qsort(e, count, sizeof *e, compare_keys);
    if (blob) { /* sorted: $type, mimeType, ref, size */
        Entry tmp = e[1];
        e[1] = e[2];
        e[2] = tmp;
    }
    size_t i = 1;
    while (i < count && e[i].out_start > e[i - 1].out_start)
        i++;
    if (i == count)
        return 0; /* already in JSON order */
    r->scratch.len = 0;
    if (buf_put(&r->scratch, r->out.data + region, r->out.len - region) < 0)
        return -1;
    char *dst = r->out.data + region;
    for (i = 0; i < count; i++) {
        size_t n = e[i].out_end - e[i].out_start;
        if (i)
            *dst++ = ',';
        memcpy(dst, r->scratch.data + (e[i].out_start - region), n);
        dst += n;
    }
    return 0;
}

/* Render one map entry: its key (canonical order, at most 8192 bytes) and its value. */
static int
render_entry(Render *r, size_t base, size_t i, int depth)
{
    Slice key;
    Py_ssize_t at = push_entry(r);
    if (at < 0)
        return -1;
    if (read_key(r->d, r->len, &r->pos, &key, i ? &r->entries[base + i - 1].key : NULL) < 0)
        return invalid(r, "map key is not a string, not valid UTF-8 or out of canonical order");
    if (key.n > MAX_KEY_BYTES)
        return invalid(r, "map key longer than 8192 bytes");
    r->entries[at].key = key;
    r->entries[at].out_start = r->out.len;
    if (put_json_string(&r->out, key.p, key.n) < 0 || buf_putc(&r->out, ':') < 0)
        return -1;
    Value value;
    if (render_value(r, depth + 1, &value) < 0)
        return -1;
    r->entries[at].value = value; /* the stack may have moved: index it again */
    r->entries[at].out_end = r->out.len;
    return 0;
}

/* A map: at most 131072 entries, keys in canonical order; checked against the special-map
   rules, then written in JSON order. Its entries live on the entry stack until it is done. */
static int
render_map(Render *r, uint64_t count, int depth, Value *v)
{
    if (depth >= MAX_DEPTH)
        return invalid(r, "nested more than 128 levels");
    if (count > MAX_CONTAINER_ITEMS)
        return invalid(r, "map longer than 131072 entries");
    size_t base = r->n_entries;
    int blob;
    if (buf_putc(&r->out, '{') < 0)
        return -1;
    if (count == 0)
        return buf_putc(&r->out, '}');
    for (size_t i = 0; i < (size_t)count; i++)
        if ((i && buf_putc(&r->out, ',') < 0) || render_entry(r, base, i, depth) < 0)
            return -1;
    Entry *e = r->entries + base;
    if (check_special_map(r, e, (size_t)count, v, &blob) < 0)
        return -1;
    if (reorder_entries(r, e, (size_t)count, blob) < 0)
        return -1;
    r->n_entries = base;
    return buf_putc(&r->out, '}');
}

/* Render the item at the cursor; `v` tells the enclosing map what kind of value it was. */
static int
render_value(Render *r, int depth, Value *v)
{
    Head h;
    v->kind = K_OTHER;
    if (read_head(r->d, r->len, &r->pos, &h) < 0)
        return invalid(r, "truncated, non-minimal, indefinite or reserved item head");
    switch (h.major) {
    case 0:
    case 1:
        if (h.arg > INT64_MAX)
            return invalid(r, "integer out of int64 range");
        v->kind = K_INT;
        return h.major == 0 ? buf_put_uint(&r->out, h.arg, 0) : buf_put_uint(&r->out, h.arg + 1, 1);
    case 2: return render_bytes(r, h.arg);
    case 3: return render_text(r, h.arg, v);
    case 4: return render_array(r, h.arg, depth);
    case 5: return render_map(r, h.arg, depth, v);
    case 6: return render_link(r, h.arg, v);
    default: return render_simple(r, h.arg, v);
    }
}

/* Render a whole record: at most 1 MiB, one item, nothing after it, and a map. */
static PyObject *
render_record_bytes(const uint8_t *d, size_t len)
{
    Render r;
    memset(&r, 0, sizeof r);
    r.d = d;
    r.len = len;
    PyObject *result = NULL;
    Value v;
    if (len > MAX_RECORD_BYTES) {
        PyErr_Format(InvalidRecordError, "record is %zu bytes, more than 1 MiB", len);
        return NULL;
    }
    if (buf_reserve(&r.out, len + len / 2 + 16) < 0)
        return NULL;
    int rc = render_value(&r, 0, &v);
    if (rc == 0 && r.pos != len)
        rc = invalid(&r, "trailing bytes after the record");
    if (rc == 0 && d[0] >> 5 != 5)
        rc = invalid(&r, "a record must be a map");
    if (rc == 0)
        result = buf_finish(&r.out);
    else if (r.error != NULL)
        PyErr_Format(InvalidRecordError, "%s at byte %zu", r.error, r.error_pos);
    PyMem_Free(r.out.data);
    PyMem_Free(r.scratch.data);
    PyMem_Free(r.entries);
    return result;
}

PyDoc_STRVAR(render_record_doc,
"render_record(block: bytes) -> bytes\n\n"
"A record block (DAG-CBOR) as Jetstream's record JSON, Go escaping applied; raises\n"
"InvalidRecordError when Jetstream would skip the op. Reference:\n"
"jetflow.codec.record.render_record.");

static PyObject *
speedups_render_record(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = render_record_bytes(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* is_canonical_frame                                                                          */

PyDoc_STRVAR(is_canonical_frame_doc,
"is_canonical_frame(data: bytes, header, body) -> bool\n\n"
"True if data is exactly two canonical DAG-CBOR items back to back; header and body are\n"
"ignored. Reference: jetflow.codec.canonical.is_canonical_frame.");

static PyObject *
speedups_is_canonical_frame(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "is_canonical_frame expected 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *d = view.buf;
    size_t len = (size_t)view.len, pos = 0;
    int ok = skip_item(d, len, &pos, 0) == 0 && skip_item(d, len, &pos, 0) == 0 && pos == len;
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

/* ------------------------------------------------------------------------------------------ */
/* SHA-256 (FIPS 180-4)                                                                        */

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define BIG_SIGMA0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BIG_SIGMA1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SMALL_SIGMA0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SMALL_SIGMA1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))

/* One round of FIPS 180-4 §6.2.2 step 3. Instead of shifting all eight working variables,
   the caller rotates their roles from one round to the next: only d and h change here. */
#define ROUND(a, b, c, d, e, f, g, h, t)                                                    \
    do {                                                                                    \
        uint32_t t1 = h + BIG_SIGMA1(e) + CH(e, f, g) + SHA256_K[t] + w[t];                 \
        d += t1;                                                                            \
        h = t1 + BIG_SIGMA0(a) + MAJ(a, b, c);                                              \
    } while (0)

/* Process one 64-byte block (FIPS 180-4 §6.2.2): message schedule, then 64 rounds, eight
   at a time so that the working variables stay in registers. */
static void
sha256_block_portable(uint32_t state[8], const uint8_t *block)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
               (uint32_t)block[4 * t + 2] << 8 | block[4 * t + 3];
    for (int t = 16; t < 64; t++)
        w[t] = SMALL_SIGMA1(w[t - 2]) + w[t - 7] + SMALL_SIGMA0(w[t - 15]) + w[t - 16];
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t += 8) {
        ROUND(a, b, c, d, e, f, g, h, t);
        ROUND(h, a, b, c, d, e, f, g, t + 1);
        ROUND(g, h, a, b, c, d, e, f, t + 2);
        ROUND(f, g, h, a, b, c, d, e, t + 3);
        ROUND(e, f, g, h, a, b, c, d, t + 4);
        ROUND(d, e, f, g, h, a, b, c, t + 5);
        ROUND(c, d, e, f, g, h, a, b, t + 6);
        ROUND(b, c, d, e, f, g, h, a, t + 7);
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SHA_NI_CODE 1
#include <cpuid.h>
#include <immintrin.h>

/* The same block function with the x86 SHA extensions (Intel's SHA-NI: two rounds per
   sha256rnds2, the schedule in sha256msg1/msg2), several times faster than the portable
   code. Used only when CPUID reports SHA, SSSE3 and SSE4.1. The state lives in two registers
   as ABEF and CDGH, the layout sha256rnds2 expects. */
__attribute__((target("sha,ssse3,sse4.1"))) static void
sha256_block_sha_ni(uint32_t state[8], const uint8_t *block)
{
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    /* lanes low to high: state A,B,C,D shuffled to C,D,A,B; E,F,G,H reversed to H,G,F,E */
    const __m128i cdab = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)state), 0xB1);
    const __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(state + 4)), 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, hgfe, 8);
    __m128i cdgh = _mm_blend_epi16(hgfe, cdab, 0xF0);
    const __m128i abef_before = abef, cdgh_before = cdgh;
    __m128i w[4];
    for (int group = 0; group < 16; group++) {
        /* w[group % 4] holds the schedule words 4*group .. 4*group+3. */
        __m128i *now = &w[group & 3];
        if (group < 4) {
            *now = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * group)),
                                    byte_swap);
        } else {
            const __m128i previous = w[(group + 3) & 3], before_previous = w[(group + 2) & 3];
            __m128i next = _mm_sha256msg1_epu32(*now, w[(group + 1) & 3]);
            next = _mm_add_epi32(next, _mm_alignr_epi8(previous, before_previous, 4));
            *now = _mm_sha256msg2_epu32(next, previous);
        }
        __m128i message =
            _mm_add_epi32(*now, _mm_loadu_si128((const __m128i *)(SHA256_K + 4 * group)));
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message);
        message = _mm_shuffle_epi32(message, 0x0E);
        /* cdgh now holds A,B,E,F after two rounds, which are C,D,G,H after four */
        abef = _mm_sha256rnds2_epu32(abef, cdgh, message);
    }
    abef = _mm_add_epi32(abef, abef_before);
    cdgh = _mm_add_epi32(cdgh, cdgh_before);
    const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)state, _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)(state + 4), _mm_alignr_epi8(dchg, feba, 8));
}

static int
cpu_has_sha_ni(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    const int ssse3 = (ecx >> 9) & 1, sse41 = (ecx >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return 0;
    return ssse3 && sse41 && ((ebx >> 29) & 1);
}
#endif

typedef void (*Sha256Block)(uint32_t state[8], const uint8_t *block);

/* The block function for this CPU, chosen once at import. */
static Sha256Block sha256_block = sha256_block_portable;

/* SHA-256 of data[0..n): whole blocks, then the padded tail (0x80, zeros, bit length). */
static void
sha256_with(Sha256Block block_function, const uint8_t *data, size_t n, uint8_t digest[32])
{
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t whole = n / 64 * 64;
    for (size_t i = 0; i < whole; i += 64)
        block_function(state, data + i);
    uint8_t tail[128] = {0};
    size_t rest = n - whole, tail_len = rest < 56 ? 64 : 128;
    if (rest)
        memcpy(tail, data + whole, rest);
    tail[rest] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    block_function(state, tail);
    if (tail_len == 128)
        block_function(state, tail + 64);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)state[i];
    }
}

static void
sha256(const uint8_t *data, size_t n, uint8_t digest[32])
{
    sha256_with(sha256_block, data, n, digest);
}

PyDoc_STRVAR(sha256_doc,
"_sha256(data: bytes, portable: bool = False) -> bytes\n\n"
"The SHA-256 digest, with this CPU's fastest block function or the portable one (for tests).");

static PyObject *
speedups_sha256(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"data", "portable", NULL};
    Py_buffer view;
    int portable = 0;
    uint8_t digest[32];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|p:_sha256", keywords, &view, &portable))
        return NULL;
    sha256_with(portable ? sha256_block_portable : sha256_block, view.buf, (size_t)view.len,
                digest);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)digest, 32);
}

/* ------------------------------------------------------------------------------------------ */
/* CAR files: check_car, find_block                                                            */

/* Read a CAR length varint as car._varint_at does: at most 4 bytes, non-minimal allowed. */
static int
car_varint(const uint8_t *d, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t value = 0;
    for (int shift = 0; shift < 28; shift += 7) {
        if (*pos >= len)
            return -1;
        uint8_t byte = d[(*pos)++];
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = value;
            return 0;
        }
    }
    return -1;
}

/* True if d[pos..end) is one canonical DAG-CBOR map holding "version": 1 (the integer) and
   "roots": an array; other keys may be there too. */
static int
car_header_ok(const uint8_t *d, size_t end, size_t pos)
{
    Head h;
    Slice key, prev;
    int version = 0, roots = 0;
    if (read_head(d, end, &pos, &h) < 0 || h.major != 5)
        return 0;
    for (uint64_t i = 0; i < h.arg; i++) {
        if (read_key(d, end, &pos, &key, i ? &prev : NULL) < 0)
            return 0;
        prev = key;
        size_t at = pos;
        if (skip_item(d, end, &pos, 1) < 0)
            return 0;
        if (slice_is(key, "version"))
            version = pos - at == 1 && d[at] == 0x01;
        else if (slice_is(key, "roots"))
            roots = d[at] >> 5 == 4;
    }
    return pos == end && version && roots;
}

/* The framing check of car.check_car: a header, then blocks of <varint length ≥ 1><bytes>
   that exactly fill the buffer. Returns a reason, or NULL if the CAR is well formed. */
static const char *
car_problem(const uint8_t *d, size_t len)
{
    size_t pos = 0;
    uint64_t n;
    if (car_varint(d, len, &pos, &n) < 0)
        return "truncated CAR or block length varint too long";
    if (n == 0 || n > len - pos)
        return "truncated CAR header";
    if (!car_header_ok(d, pos + (size_t)n, pos))
        return "CAR header is not a canonical map with version 1 and roots";
    pos += (size_t)n;
    while (pos < len) {
        if (car_varint(d, len, &pos, &n) < 0)
            return "truncated CAR or block length varint too long";
        if (n == 0)
            return "empty block";
        if (n > len - pos)
            return "CAR ends inside a block";
        pos += (size_t)n;
    }
    return NULL;
}

PyDoc_STRVAR(check_car_doc,
"check_car(car: bytes) -> None\n\n"
"Raise MalformedCARError unless car is a CAR v1 whose blocks exactly fill it.\n"
"Reference: jetflow.codec.car.check_car.");

static PyObject *
speedups_check_car(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const char *problem = car_problem(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (problem != NULL) {
        PyErr_SetString(MalformedCARError, problem);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The last start of `needle` that ends at or before `limit`, as bytes.rfind(needle, 0, limit)
   for a non-empty needle; -1 if none (and for an empty one). Candidates are found by the needle's last byte: every CID starts with the same
   few bytes, but its last byte is a digest byte, rare in the rest of the CAR. */
static Py_ssize_t
rfind(const uint8_t *hay, size_t limit, const uint8_t *needle, size_t n)
{
    if (n == 0 || n > limit)
        return -1;
    const uint8_t last = needle[n - 1];
    size_t end = limit; /* candidates for the needle's last byte lie in [n-1, end) */
    while (end > n - 1) {
#if defined(__GLIBC__)
        const uint8_t *hit = memrchr(hay + n - 1, last, end - (n - 1));
        if (hit == NULL)
            return -1;
        size_t at = (size_t)(hit - hay);
#else
        size_t at = end - 1;
        while (hay[at] != last) {
            if (at == n - 1)
                return -1;
            at--;
        }
#endif
        size_t start = at - (n - 1);
        if (memcmp(hay + start, needle, n - 1) == 0)
            return (Py_ssize_t)start;
        end = at;
    }
    return -1;
}

/* The SHA-256 digest a CID names, or NULL for CIDs no block can match (car.digest_matches:
   only sha2-256 CIDv1 dag-cbor/raw and CIDv0). */
static const uint8_t *
cid_sha256_digest(const uint8_t *cid, size_t n)
{
    if (n == 36 && cid[0] == 0x01 && (cid[1] == 0x71 || cid[1] == 0x55) && cid[2] == 0x12 &&
        cid[3] == 0x20)
        return cid + 4;
    if (n == 34 && cid[0] == 0x12 && cid[1] == 0x20)
        return cid + 2;
    return NULL;
}

/* 1 if data[0:n] hashes to `digest`, 0 if not, -1 with an exception set. Every record block
   is hashed, so the fastest available SHA-256 matters: our own with the CPU's SHA
   instructions, else hashlib (OpenSSL, which has assembly for many CPUs), else the portable
   code. */
static int
hashes_to(const uint8_t *data, size_t n, const uint8_t *digest)
{
    if (hashlib_sha256 == NULL || sha256_block != sha256_block_portable) {
        uint8_t got[32];
        sha256(data, n, got);
        return memcmp(got, digest, 32) == 0;
    }
    PyObject *view = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)n, PyBUF_READ);
    if (view == NULL)
        return -1;
    PyObject *hash = PyObject_CallOneArg(hashlib_sha256, view);
    Py_DECREF(view);
    if (hash == NULL)
        return -1;
    PyObject *got = PyObject_CallMethod(hash, "digest", NULL);
    Py_DECREF(hash);
    if (got == NULL)
        return -1;
    int equal = PyBytes_Check(got) && PyBytes_GET_SIZE(got) == 32 &&
                memcmp(PyBytes_AS_STRING(got), digest, 32) == 0;
    Py_DECREF(got);
    return equal;
}

/* Try the block lengths whose varint ends just before `start` (1 to 4 bytes, read backwards
   as car.find_block does); return the end of the first block hashing to `digest`, or 0. */
static size_t
try_block_at(const uint8_t *car, size_t len, size_t start, size_t cid_len, const uint8_t *digest)
{
    uint8_t byte = car[start - 1];
    if (byte >= 0x80)
        return 0;
    uint64_t total = byte;
    for (size_t width = 1;; width++) {
        if (total > cid_len && total <= len - start) {
            int equal = hashes_to(car + start + cid_len, (size_t)total - cid_len, digest);
            if (equal < 0)
                return 0; /* the caller sees the exception */
            if (equal)
                return start + (size_t)total;
        }
        if (width == 4 || start < width + 1)
            return 0;
        byte = car[start - width - 1];
        if (byte < 0x80)
            return 0;
        total = (total << 7) | (byte & 0x7F);
    }
}

PyDoc_STRVAR(find_block_doc,
"find_block(car: bytes, cid: bytes) -> bytes | None\n\n"
"The block stored under cid if it is present and hashes to it, else None.\n"
"Reference: jetflow.codec.car.find_block.");

static PyObject *
speedups_find_block(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer car, cid;
    PyObject *result = NULL;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "find_block expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &car, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &cid, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&car);
        return NULL;
    }
    const uint8_t *d = car.buf, *c = cid.buf;
    size_t len = (size_t)car.len, n = (size_t)cid.len;
    const uint8_t *digest = cid_sha256_digest(c, n);
    Py_ssize_t start = digest ? rfind(d, len, c, n) : -1;
    while (start > 0) {
        size_t end = try_block_at(d, len, (size_t)start, n, digest);
        if (PyErr_Occurred())
            break;
        if (end) {
            const char *block = (const char *)d + start + n;
            result = PyBytes_FromStringAndSize(block, (Py_ssize_t)(end - (size_t)start - n));
            break;
        }
        start = rfind(d, (size_t)start, c, n);
    }
    PyBuffer_Release(&car);
    PyBuffer_Release(&cid);
    if (result == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 3339 timestamps (Go's time.Parse(time.RFC3339, s)): rfc3339.is_rfc3339                  */

/* Read exactly `count` ASCII digits at *i into *value. */
static int
digits(const char *s, size_t n, size_t *i, int count, int *value)
{
    *value = 0;
    for (int k = 0; k < count; k++, (*i)++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9')
            return -1;
        *value = *value * 10 + (s[*i] - '0');
    }
    return 0;
}

/* Expect the character `c` at *i. */
static int
expect(const char *s, size_t n, size_t *i, char c)
{
    if (*i >= n || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

/* Days in `month` of `year`, proleptic Gregorian (year 0 is a leap year, as in Go). */
static int
days_in(int month, int year)
{
    static const int days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
        return 29;
    return days[month];
}

/* The time of day after 'T': a one- or two-digit hour (Go's general parser allows one),
   minutes, seconds, and an optional fraction after '.' or ','. */
static int
parse_clock(const char *s, size_t n, size_t *i, int *hour, int *minute, int *second)
{
    if (digits(s, n, i, 1, hour) < 0)
        return -1;
    if (*i < n && s[*i] >= '0' && s[*i] <= '9')
        *hour = *hour * 10 + (s[(*i)++] - '0');
    if (expect(s, n, i, ':') < 0 || digits(s, n, i, 2, minute) < 0 ||
        expect(s, n, i, ':') < 0 || digits(s, n, i, 2, second) < 0)
        return -1;
    if (n - *i >= 2 && (s[*i] == '.' || s[*i] == ',') && s[*i + 1] >= '0' && s[*i + 1] <= '9') {
        *i += 2;
        while (*i < n && s[*i] >= '0' && s[*i] <= '9')
            (*i)++;
    }
    return 0;
}

/* The zone: 'Z', or a sign and hh:mm up to 24:60 (Go's general parser allows both). */
static int
parse_zone(const char *s, size_t n, size_t *i)
{
    int hh, mm;
    if (*i < n && s[*i] == 'Z') {
        (*i)++;
        return 0;
    }
    if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
        return -1;
    (*i)++;
    if (digits(s, n, i, 2, &hh) < 0 || expect(s, n, i, ':') < 0 || digits(s, n, i, 2, &mm) < 0)
        return -1;
    return hh <= 24 && mm <= 60 ? 0 : -1;
}

/* True if Go's time.Parse(time.RFC3339, s) accepts the ASCII string s. */
static int
rfc3339_ok(const char *s, size_t n)
{
    size_t i = 0;
    int year, month, day, hour, minute, second;
    if (digits(s, n, &i, 4, &year) < 0 || expect(s, n, &i, '-') < 0 ||
        digits(s, n, &i, 2, &month) < 0 || expect(s, n, &i, '-') < 0 ||
        digits(s, n, &i, 2, &day) < 0 || expect(s, n, &i, 'T') < 0)
        return 0;
    if (parse_clock(s, n, &i, &hour, &minute, &second) < 0 || parse_zone(s, n, &i) < 0 || i != n)
        return 0;
    if (month < 1 || month > 12 || day < 1 || day > days_in(month, year))
        return 0;
    return hour <= 23 && minute <= 59 && second <= 59;
}

PyDoc_STRVAR(is_rfc3339_doc,
"is_rfc3339(value: str) -> bool\n\n"
"True if Go's time.Parse(time.RFC3339, value) accepts value.\n"
"Reference: jetflow.codec.rfc3339.is_rfc3339.");

static PyObject *
speedups_is_rfc3339(PyObject *Py_UNUSED(module), PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected str, got %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)) /* Go takes ASCII digits only */
        Py_RETURN_FALSE;
    const char *s = (const char *)PyUnicode_DATA(arg);
    return PyBool_FromLong(rfc3339_ok(s, (size_t)PyUnicode_GET_LENGTH(arg)));
}

/* ------------------------------------------------------------------------------------------ */
/* The commit envelope: envelope.commit_json                                                   */

/* Append a Python str as a JSON string (orjson refuses surrogates with a TypeError). */
static int
put_py_string(Buf *b, PyObject *text, const char *field)
{
    Py_ssize_t n;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", field, Py_TYPE(text)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "str is not valid UTF-8: surrogates not allowed");
        return -1;
    }
    return put_json_string(b, (const uint8_t *)s, (size_t)n);
}

/* Append an int as orjson does (bools as true/false; beyond 64 bits is a TypeError). */
static int
put_py_int(Buf *b, PyObject *value)
{
    int overflow;
    if (PyBool_Check(value))
        return buf_puts(b, value == Py_True ? "true" : "false");
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "time_us must be int, not %.100s", Py_TYPE(value)->tp_name);
        return -1;
    }
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow == 0)
        return buf_put_int(b, (int64_t)v);
    unsigned long long u = overflow > 0 ? PyLong_AsUnsignedLongLong(value) : 0;
    if (overflow < 0 || (u == (unsigned long long)-1 && PyErr_Occurred())) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "Integer exceeds 64-bit range");
        return -1;
    }
    return buf_put_uint(b, (uint64_t)u, 0);
}

/* Append ,"name":"value" (no comma first) unless value is None or "" (Go's omitempty). */
static int
put_optional_field(Buf *b, int *first, const char *name, PyObject *value)
{
    if (value == Py_None || (PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) == 0))
        return 0;
    if ((!*first && buf_putc(b, ',') < 0) || buf_putc(b, '"') < 0 || buf_puts(b, name) < 0 ||
        buf_puts(b, "\":") < 0)
        return -1;
    *first = 0;
    return put_py_string(b, value, name);
}

/* Append "record":<record_json> with go_escape applied, unless record_json is None. */
static int
put_record_field(Buf *b, int *first, PyObject *record_json)
{
    if (record_json == Py_None)
        return 0;
    if (!PyBytes_Check(record_json)) {
        PyErr_Format(PyExc_TypeError, "record_json must be bytes or None, not %.100s",
                     Py_TYPE(record_json)->tp_name);
        return -1;
    }
    if ((!*first && buf_putc(b, ',') < 0) || buf_puts(b, "\"record\":") < 0)
        return -1;
    *first = 0;
    return put_go_escaped(b, (const uint8_t *)PyBytes_AS_STRING(record_json),
                          (size_t)PyBytes_GET_SIZE(record_json));
}

PyDoc_STRVAR(commit_json_doc,
"commit_json(did, time_us, rev, operation, collection, rkey, record_json, cid) -> bytes\n\n"
"A commit event's JSON (spec sections 8.1-8.2); empty commit fields are omitted.\n"
"Reference: jetflow.codec.envelope.commit_json.");

static PyObject *
speedups_commit_json(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"did", "time_us", "rev", "operation", "collection",
                             "rkey", "record_json", "cid", NULL};
    PyObject *did, *time_us, *rev, *operation, *collection, *rkey, *record_json, *cid;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOO:commit_json", kwlist, &did, &time_us,
                                     &rev, &operation, &collection, &rkey, &record_json, &cid))
        return NULL;
    Buf b = {NULL, 0, 0};
    int first = 1;
    size_t record_len = PyBytes_Check(record_json) ? (size_t)PyBytes_GET_SIZE(record_json) : 0;
    if (buf_reserve(&b, 256 + record_len) < 0 || buf_puts(&b, "{\"did\":") < 0 ||
        put_py_string(&b, did, "did") < 0 ||
        buf_puts(&b, ",\"time_us\":") < 0 || put_py_int(&b, time_us) < 0 ||
        buf_puts(&b, ",\"kind\":\"commit\",\"commit\":{") < 0 ||
        put_optional_field(&b, &first, "rev", rev) < 0 ||
        put_optional_field(&b, &first, "operation", operation) < 0 ||
        put_optional_field(&b, &first, "collection", collection) < 0 ||
        put_optional_field(&b, &first, "rkey", rkey) < 0 ||
        put_record_field(&b, &first, record_json) < 0 ||
        put_optional_field(&b, &first, "cid", cid) < 0 || buf_puts(&b, "}}") < 0) {
        PyMem_Free(b.data);
        return NULL;
    }
    return buf_finish(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* Module                                                                                      */

static PyMethodDef speedups_methods[] = {
    {"render_record", speedups_render_record, METH_O, render_record_doc},
    {"check_car", speedups_check_car, METH_O, check_car_doc},
    {"find_block", (PyCFunction)(void (*)(void))speedups_find_block, METH_FASTCALL, find_block_doc},
    {"is_rfc3339", speedups_is_rfc3339, METH_O, is_rfc3339_doc},
    {"commit_json", (PyCFunction)(void (*)(void))speedups_commit_json, METH_VARARGS | METH_KEYWORDS,
     commit_json_doc},
    {"is_canonical_frame", (PyCFunction)(void (*)(void))speedups_is_canonical_frame, METH_FASTCALL,
     is_canonical_frame_doc},
    {"_sha256", (PyCFunction)(void (*)(void))speedups_sha256, METH_VARARGS | METH_KEYWORDS,
     sha256_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "jetflow._speedups",
    "C versions of jetflow's codec hot path; see jetflow/codec/accel.py.",
    -1,
    speedups_methods,
    NULL, NULL, NULL, NULL,
};

/* Mark the bytes put_json_string cannot copy as they are. */
static void
init_escape_table(void)
{
    for (int c = 0; c < 0x20; c++)
        NEEDS_ESCAPE[c] = 1;
    NEEDS_ESCAPE['"'] = NEEDS_ESCAPE['\\'] = 1;
    NEEDS_ESCAPE['&'] = NEEDS_ESCAPE['<'] = NEEDS_ESCAPE['>'] = 1;
    NEEDS_ESCAPE[0xE2] = 1;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *errors = PyImport_ImportModule("jetflow.errors");
    if (errors == NULL)
        return NULL;
    Py_XSETREF(InvalidRecordError, PyObject_GetAttrString(errors, "InvalidRecordError"));
    Py_XSETREF(MalformedCARError, PyObject_GetAttrString(errors, "MalformedCARError"));
    Py_DECREF(errors);
    if (InvalidRecordError == NULL || MalformedCARError == NULL)
        return NULL;
    init_escape_table();
    PyObject *hashlib = PyImport_ImportModule("hashlib");
    if (hashlib != NULL) {
        Py_XSETREF(hashlib_sha256, PyObject_GetAttrString(hashlib, "sha256"));
        Py_DECREF(hashlib);
    }
    PyErr_Clear(); /* without hashlib, the portable sha256() is used */
#ifdef HAVE_SHA_NI_CODE
    if (cpu_has_sha_ni())
        sha256_block = sha256_block_sha_ni;
#endif
    PyObject *module = PyModule_Create(&speedups_module);
    if (module != NULL &&
        PyModule_AddStringConstant(module, "SHA256_IMPLEMENTATION",
                                   sha256_block == sha256_block_portable ? "portable" : "sha-ni") < 0)
        Py_CLEAR(module);
    return module;
}
