/* The compiled path of the v2 row hasher (dqhash/core/compiled_hasher.py drives it).
 *
 * dqhash/core/hashing.py is the reference: this module encodes the values whose canonical form is plain to
 * compute (exact str, bool, int, float, Decimal, naive or UTC datetime, date, None) and hands every other value
 * to the reference's own encoder (the `slow` callable), so a refused value raises the reference's error and
 * a collection or a rarer type is encoded by the same code as before. The bytes hashed are the reference's
 * preimage, byte for byte; tests/unit/core/test_compiled_hasher.py checks that on golden vectors and on
 * generated rows.
 *
 * SHA-256 comes from the OpenSSL library the interpreter's hashlib uses, found at import with dlopen (no
 * headers needed to build), or from the portable implementation below where there is none.
 *
 * Two functions of the reconciler's hot path live here too, each with its Python reference and fallback:
 * Kafka's default partitioner (dqhash/core/partitioning.py) and the check of a record's column digests
 * (dqhash/core/contracts.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

/* ---- SHA-256 ------------------------------------------------------------------------------------------ */

/* OpenSSL's low-level SHA-256 (its one-shot SHA256() looks the algorithm up on every call in OpenSSL 3); the
 * context is opaque here, held in space larger than OpenSSL's SHA256_CTX (112 bytes) */
typedef struct {
    _Alignas(16) unsigned char space[256];
} OpenSSLContext;
typedef int (*sha256_init_fn)(OpenSSLContext *context);
typedef int (*sha256_update_fn)(OpenSSLContext *context, const void *data, size_t length);
typedef int (*sha256_final_fn)(unsigned char *digest, OpenSSLContext *context);
static sha256_init_fn openssl_init = NULL;
static sha256_update_fn openssl_update = NULL;
static sha256_final_fn openssl_final = NULL;

static const uint32_t K256[64] = {
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

static void sha256_block(uint32_t state[8], const unsigned char block[64]) {
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 |
               (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
    state[4] += e, state[5] += f, state[6] += g, state[7] += h;
}

static void portable_sha256(const unsigned char *data, size_t length, unsigned char digest[32]) {
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char tail[128];
    size_t whole = length & ~(size_t)63, rest = length - whole, padded;
    uint64_t bits = (uint64_t)length * 8;
    for (size_t offset = 0; offset < whole; offset += 64)
        sha256_block(state, data + offset);
    memset(tail, 0, sizeof tail);
    memcpy(tail, data + whole, rest);
    tail[rest] = 0x80;
    padded = rest < 56 ? 64 : 128;
    for (int i = 0; i < 8; i++)
        tail[padded - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha256_block(state, tail);
    if (padded == 128)
        sha256_block(state, tail + 64);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (unsigned char)(state[i] >> 24), digest[4 * i + 1] = (unsigned char)(state[i] >> 16);
        digest[4 * i + 2] = (unsigned char)(state[i] >> 8), digest[4 * i + 3] = (unsigned char)state[i];
    }
}

static int use_portable = 0;

static int have_openssl(void) {
    return openssl_init != NULL && openssl_update != NULL && openssl_final != NULL;
}

static void sha256(const unsigned char *data, size_t length, unsigned char digest[32]) {
    if (have_openssl() && !use_portable) {
        OpenSSLContext context;
        openssl_init(&context);
        openssl_update(&context, data, length);
        openssl_final(digest, &context);
    } else {
        portable_sha256(data, length, digest);
    }
}

static void find_openssl(void) {
    static const char *names[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so", NULL};
    for (int i = 0; names[i] != NULL && !have_openssl(); i++) {
        void *library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (library == NULL)
            continue;
        openssl_init = (sha256_init_fn)dlsym(library, "SHA256_Init");
        openssl_update = (sha256_update_fn)dlsym(library, "SHA256_Update");
        openssl_final = (sha256_final_fn)dlsym(library, "SHA256_Final");
    }
}

/* ---- an output buffer ----------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t length, capacity;
    char inline_space[2048];
} Buffer;

static int reserve(Buffer *buffer, Py_ssize_t more) {
    if (buffer->length + more <= buffer->capacity)
        return 0;
    Py_ssize_t capacity = buffer->capacity * 2;
    while (capacity < buffer->length + more)
        capacity *= 2;
    char *grown = PyMem_Malloc(capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(grown, buffer->data, buffer->length);
    if (buffer->data != buffer->inline_space)
        PyMem_Free(buffer->data);
    buffer->data = grown, buffer->capacity = capacity;
    return 0;
}

static int append(Buffer *buffer, const char *bytes, Py_ssize_t length) {
    if (reserve(buffer, length) < 0)
        return -1;
    memcpy(buffer->data + buffer->length, bytes, length);
    buffer->length += length;
    return 0;
}

/* tag, payload's byte length, ':', payload: the v2 encoding of a scalar */
static int append_scalar(Buffer *buffer, char tag, const char *payload, Py_ssize_t length) {
    char head[32];
    int head_length = snprintf(head, sizeof head, "%c%zd:", tag, length);
    if (append(buffer, head, head_length) < 0)
        return -1;
    return append(buffer, payload, length);
}

/* ---- the fast encoders: 1 written, 0 not this encoder's value (the reference encodes it), -1 error ------ */

enum Kind {
    K_INFER, K_TEXT, K_INT8, K_INT16, K_INT32, K_INT64, K_VARINT,
    K_DOUBLE, K_DECIMAL, K_BOOLEAN, K_TIMESTAMP, K_DATE, K_REFERENCE
};

static PyObject *decimal_type = NULL;

static int encode_text(Buffer *buffer, PyObject *value) {
    Py_ssize_t length;
    const char *text;
    if (!PyUnicode_CheckExact(value))
        return 0;
    text = PyUnicode_AsUTF8AndSize(value, &length);
    if (text == NULL) { /* a lone surrogate: the reference says so */
        PyErr_Clear();
        return 0;
    }
    return append_scalar(buffer, 's', text, length) < 0 ? -1 : 1;
}

static int encode_integer(Buffer *buffer, PyObject *value, int bits) {
    int overflow;
    long long number;
    char text[24];
    if (!PyLong_CheckExact(value))
        return 0;
    number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow != 0 || (number == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0; /* beyond 64 bits: the reference writes it, or refuses it for its type */
    }
    if (bits < 64 && (number < -(1LL << (bits - 1)) || number >= (1LL << (bits - 1))))
        return 0;
    return append_scalar(buffer, 'i', text, snprintf(text, sizeof text, "%lld", number)) < 0 ? -1 : 1;
}

static int encode_double(Buffer *buffer, PyObject *value) {
    double number;
    uint64_t bits;
    char text[17];
    if (!PyFloat_CheckExact(value))
        return 0;
    number = PyFloat_AS_DOUBLE(value);
    if (number != number)
        return append_scalar(buffer, 'f', "7ff8000000000000", 16) < 0 ? -1 : 1;
    if (number == 0.0)
        number = 0.0; /* -0.0 equals 0.0 */
    memcpy(&bits, &number, sizeof bits);
    snprintf(text, sizeof text, "%016llx", (unsigned long long)bits);
    return append_scalar(buffer, 'f', text, 16) < 0 ? -1 : 1;
}

#define MAX_NUMBER_CHARS 1000

/* A Decimal's plain notation (the reference's _decimal_payload), read from its str(): digits, exponent */
static int write_plain_decimal(Buffer *buffer, int negative, const char *digits, Py_ssize_t count, long exponent) {
    char *out;
    Py_ssize_t length, position = 0;
    while (exponent < 0 && count > 0 && digits[count - 1] == '0')
        count--, exponent++;
    while (count > 1 && digits[0] == '0')
        digits++, count--;
    if (exponent >= 0)
        length = count + exponent;
    else
        length = count > -exponent ? count + 1 : 2 - exponent;
    if (length + negative > MAX_NUMBER_CHARS)
        return 0;
    char head[16];
    int head_length = snprintf(head, sizeof head, "d%zd:", length + negative);
    if (append(buffer, head, head_length) < 0 || reserve(buffer, length + negative) < 0)
        return -1;
    out = buffer->data + buffer->length;
    if (negative)
        out[position++] = '-';
    if (exponent >= 0) {
        memcpy(out + position, digits, count), position += count;
        memset(out + position, '0', exponent), position += exponent;
    } else if (count > -exponent) {
        Py_ssize_t whole = count + exponent;
        memcpy(out + position, digits, whole), position += whole;
        out[position++] = '.';
        memcpy(out + position, digits + whole, -exponent), position += -exponent;
    } else {
        out[position++] = '0', out[position++] = '.';
        memset(out + position, '0', -exponent - count), position += -exponent - count;
        memcpy(out + position, digits, count), position += count;
    }
    buffer->length += position;
    return 1;
}

static int encode_decimal(Buffer *buffer, PyObject *value) {
    char digits[64];
    Py_ssize_t length, count = 0, fraction = 0, i = 0;
    long exponent = 0;
    int negative = 0, zero = 1, in_fraction = 0, result = 0;
    if (decimal_type == NULL || (PyObject *)Py_TYPE(value) != decimal_type)
        return 0;
    PyObject *shown = PyObject_Str(value);
    if (shown == NULL)
        return -1;
    const char *text = PyUnicode_AsUTF8AndSize(shown, &length);
    if (text == NULL)
        goto done;
    if (i < length && text[i] == '-')
        negative = 1, i++;
    for (; i < length && count < (Py_ssize_t)sizeof digits; i++) {
        char c = text[i];
        if (c == '.') {
            in_fraction = 1;
            continue;
        }
        if (c < '0' || c > '9')
            break;
        digits[count++] = c, fraction += in_fraction, zero &= c == '0';
    }
    if (count == 0) /* NaN, sNaN, Infinity: the reference's */
        goto done;
    if (i < length) {
        char *end;
        if (text[i] != 'E' || length - i > 12)
            goto done; /* more digits than kept, or an exponent beyond long: the reference's */
        exponent = strtol(text + i + 1, &end, 10);
        if (end != text + length)
            goto done;
    }
    if (zero)
        result = append_scalar(buffer, 'd', "0", 1) < 0 ? -1 : 1;
    else
        result = write_plain_decimal(buffer, negative, digits, count, exponent - (long)fraction);
done:
    if (result == 0)
        PyErr_Clear();
    Py_DECREF(shown);
    return result;
}

/* days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static long long civil_days(int year, int month, int day) {
    year -= month <= 2;
    long long era = (year >= 0 ? year : year - 399) / 400;
    unsigned year_of_era = (unsigned)(year - era * 400);
    unsigned day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + (long long)day_of_era - 719468;
}

static int append_number(Buffer *buffer, char tag, long long number) {
    char text[24];
    return append_scalar(buffer, tag, text, snprintf(text, sizeof text, "%lld", number)) < 0 ? -1 : 1;
}

static int encode_timestamp(Buffer *buffer, PyObject *value) {
    if (!PyDateTime_CheckExact(value))
        return 0;
    PyObject *zone = PyDateTime_DATE_GET_TZINFO(value);
    if (zone != Py_None && zone != PyDateTime_TimeZone_UTC)
        return 0; /* an offset other than UTC's: the reference's */
    long long seconds = civil_days(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                   PyDateTime_GET_DAY(value)) * 86400 +
                        PyDateTime_DATE_GET_HOUR(value) * 3600 + PyDateTime_DATE_GET_MINUTE(value) * 60 +
                        PyDateTime_DATE_GET_SECOND(value);
    return append_number(buffer, 't', seconds * 1000 + PyDateTime_DATE_GET_MICROSECOND(value) / 1000);
}

static int encode_date(Buffer *buffer, PyObject *value) {
    if (!PyDate_CheckExact(value))
        return 0;
    return append_number(buffer, 'D',
                         civil_days(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value), PyDateTime_GET_DAY(value)));
}

static int encode_boolean(Buffer *buffer, PyObject *value) {
    if (value == Py_True)
        return append_scalar(buffer, 'b', "true", 4) < 0 ? -1 : 1;
    if (value == Py_False)
        return append_scalar(buffer, 'b', "false", 5) < 0 ? -1 : 1;
    return 0;
}

/* an undeclared column: the type the reference infers from the value, in the reference's order */
static int encode_inferred(Buffer *buffer, PyObject *value) {
    if (PyUnicode_CheckExact(value))
        return encode_text(buffer, value);
    if (PyBool_Check(value))
        return encode_boolean(buffer, value);
    if (PyLong_CheckExact(value))
        return encode_integer(buffer, value, 128);
    if (PyFloat_CheckExact(value))
        return encode_double(buffer, value);
    if (PyDateTime_CheckExact(value))
        return encode_timestamp(buffer, value);
    if (PyDate_CheckExact(value))
        return encode_date(buffer, value);
    return encode_decimal(buffer, value);
}

static int encode_fast(Buffer *buffer, PyObject *value, int kind) {
    if (value == Py_None)
        return append(buffer, "n", 1) < 0 ? -1 : 1;
    switch (kind) {
    case K_INFER: return encode_inferred(buffer, value);
    case K_TEXT: return encode_text(buffer, value);
    case K_INT8: return encode_integer(buffer, value, 8);
    case K_INT16: return encode_integer(buffer, value, 16);
    case K_INT32: return encode_integer(buffer, value, 32);
    case K_INT64: return encode_integer(buffer, value, 64);
    case K_VARINT: return encode_integer(buffer, value, 128);
    case K_DOUBLE: return encode_double(buffer, value);
    case K_DECIMAL: return encode_decimal(buffer, value);
    case K_BOOLEAN: return encode_boolean(buffer, value);
    case K_TIMESTAMP: return encode_timestamp(buffer, value);
    case K_DATE: return encode_date(buffer, value);
    default: return 0;
    }
}

/* ---- the row -------------------------------------------------------------------------------------------- */

static const char HEX[] = "0123456789abcdef";

static PyObject *hex_text(const unsigned char digest[32], Py_ssize_t characters) {
    PyObject *text = PyUnicode_New(characters, 127);
    if (text == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < characters; i++)
        out[i] = HEX[(digest[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    return text;
}

static int encode_column(Buffer *buffer, PyObject *value, int kind, PyObject *reference, Py_ssize_t index) {
    int written = kind == K_REFERENCE ? 0 : encode_fast(buffer, value, kind);
    if (written != 0)
        return written < 0 ? -1 : 0;
    PyObject *encoded = PyObject_CallFunction(reference, "nO", index, value);
    if (encoded == NULL)
        return -1;
    if (!PyBytes_Check(encoded)) {
        Py_DECREF(encoded);
        PyErr_SetString(PyExc_TypeError, "the reference encoder must return bytes");
        return -1;
    }
    int failed = append(buffer, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    return failed;
}

PyDoc_STRVAR(v2_row_doc,
"v2_row(row, names, encoded_names, kinds, reference, header, digest_hex) -> (row_hex, digests or None)\n\n"
"The v2 hash of a dict row over `names` (absent columns null), and each column's digest cut to `digest_hex`\n"
"hex characters (none when 0). `reference(index, value)` returns the reference's encoding of a value the\n"
"compiled encoders leave to it.");

static PyObject *v2_row(PyObject *module, PyObject *args) {
    PyObject *row, *names, *encoded_names, *reference, *digests = NULL, *result = NULL;
    const char *kinds, *header;
    Py_ssize_t kinds_length, header_length, digest_hex;
    Buffer buffer;
    unsigned char digest[32];
    if (!PyArg_ParseTuple(args, "O!O!O!y#Oy#n", &PyDict_Type, &row, &PyTuple_Type, &names, &PyTuple_Type,
                          &encoded_names, &kinds, &kinds_length, &reference, &header, &header_length, &digest_hex))
        return NULL;
    Py_ssize_t columns = PyTuple_GET_SIZE(names);
    if (PyTuple_GET_SIZE(encoded_names) != columns || kinds_length != columns || digest_hex < 0 || digest_hex > 64) {
        PyErr_SetString(PyExc_ValueError, "names, encoded names and kinds must be as long as each other");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < columns; i++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(encoded_names, i))) {
            PyErr_SetString(PyExc_TypeError, "encoded names must be bytes");
            return NULL;
        }
    buffer.data = buffer.inline_space, buffer.length = 0, buffer.capacity = sizeof buffer.inline_space;
    char count[32];
    if (append(&buffer, header, header_length) < 0 ||
        append(&buffer, count, snprintf(count, sizeof count, "%zd:", columns)) < 0)
        goto done;
    if (digest_hex > 0 && (digests = PyDict_New()) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < columns; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i), *encoded_name = PyTuple_GET_ITEM(encoded_names, i);
        PyObject *value = PyDict_GetItemWithError(row, name);
        if (value == NULL && PyErr_Occurred())
            goto done;
        value = Py_NewRef(value == NULL ? Py_None : value); /* held: the reference encoder runs Python code */
        Py_ssize_t start = buffer.length;
        int failed = append(&buffer, PyBytes_AS_STRING(encoded_name), PyBytes_GET_SIZE(encoded_name)) < 0 ||
                     encode_column(&buffer, value, (unsigned char)kinds[i], reference, i) < 0;
        Py_DECREF(value);
        if (failed)
            goto done;
        if (digests != NULL) {
            sha256((unsigned char *)buffer.data + start, buffer.length - start, digest);
            PyObject *text = hex_text(digest, digest_hex);
            if (text == NULL || PyDict_SetItem(digests, name, text) < 0) {
                Py_XDECREF(text);
                goto done;
            }
            Py_DECREF(text);
        }
    }
    sha256((unsigned char *)buffer.data, buffer.length, digest);
    PyObject *row_hex = hex_text(digest, 64);
    if (row_hex != NULL)
        result = Py_BuildValue("(NO)", row_hex, digests != NULL ? digests : Py_None);
done:
    Py_XDECREF(digests);
    if (buffer.data != buffer.inline_space)
        PyMem_Free(buffer.data);
    return result;
}

PyDoc_STRVAR(sha256_hex_doc, "sha256_hex(data, portable=False) -> str: for the tests of both SHA-256 paths.");

static PyObject *sha256_hex(PyObject *module, PyObject *args) {
    Py_buffer data;
    int portable = 0;
    unsigned char digest[32];
    if (!PyArg_ParseTuple(args, "y*|p", &data, &portable))
        return NULL;
    if (portable)
        portable_sha256(data.buf, data.len, digest);
    else
        sha256(data.buf, data.len, digest);
    PyBuffer_Release(&data);
    return hex_text(digest, 64);
}

PyDoc_STRVAR(configure_doc,
"configure(decimal_type, portable_sha256) -> str: the Decimal type to encode, and whether to use the portable\n"
"SHA-256 even where OpenSSL's is found (for the tests); returns the SHA-256 in use: 'openssl' or 'portable'.");

static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *type;
    int portable;
    if (!PyArg_ParseTuple(args, "O!p", &PyType_Type, &type, &portable))
        return NULL;
    Py_XSETREF(decimal_type, Py_NewRef(type));
    use_portable = portable;
    return PyUnicode_FromString(have_openssl() && !use_portable ? "openssl" : "portable");
}

PyDoc_STRVAR(key_partition_doc,
"key_partition(key, partitions) -> int: the partition Kafka's default partitioner gives a record keyed ``key``:\n"
"murmur2 (seed 0x9747b28c), its sign bit cleared, modulo ``partitions`` (``partitioning.murmur2`` is the reference).");

static PyObject *key_partition(PyObject *module, PyObject *args) {
    Py_buffer key;
    Py_ssize_t partitions;
    if (!PyArg_ParseTuple(args, "y*n", &key, &partitions))
        return NULL;
    if (partitions < 1) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "partitions must be at least 1");
        return NULL;
    }
    const unsigned char *data = key.buf;
    const Py_ssize_t length = key.len;
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t i = 0;
    for (; i + 4 <= length; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h = h * m ^ k;
    }
    switch (length & 3) {
    case 3:
        h ^= (uint32_t)data[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[i + 1] << 8;
        /* fall through */
    case 1:
        h ^= data[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    PyBuffer_Release(&key);
    return PyLong_FromSsize_t((Py_ssize_t)(h & 0x7fffffffu) % partitions);
}

PyDoc_STRVAR(column_digests_ok_doc,
"column_digests_ok(digests, max_name, digest_length) -> bool: whether a record's ``column_digests`` object is\n"
"already what ``contracts._checked_one_by_one`` would return: each name a str of 1 to ``max_name`` characters\n"
"without a control character, each digest a str of ``digest_length`` lower-case hex digits\n"
"(``contracts._well_formed_reference`` is the reference).");

static PyObject *column_digests_ok(PyObject *module, PyObject *args) {
    PyObject *digests, *name, *digest;
    Py_ssize_t max_name, digest_length, position = 0;
    if (!PyArg_ParseTuple(args, "O!nn", &PyDict_Type, &digests, &max_name, &digest_length))
        return NULL;
    while (PyDict_Next(digests, &position, &name, &digest)) {
        if (!PyUnicode_Check(name) || !PyUnicode_CheckExact(digest))
            Py_RETURN_FALSE;
        if (PyUnicode_READY(name) < 0 || PyUnicode_READY(digest) < 0)
            return NULL;
        const Py_ssize_t name_length = PyUnicode_GET_LENGTH(name);
        if (name_length == 0 || name_length > max_name)
            Py_RETURN_FALSE;
        const int kind = PyUnicode_KIND(name);
        const void *text = PyUnicode_DATA(name);
        for (Py_ssize_t i = 0; i < name_length; i++) {
            const Py_UCS4 c = PyUnicode_READ(kind, text, i);
            if (c < 0x20 || c == 0x7f)
                Py_RETURN_FALSE;
        }
        if (PyUnicode_GET_LENGTH(digest) != digest_length || PyUnicode_KIND(digest) != PyUnicode_1BYTE_KIND)
            Py_RETURN_FALSE;
        const Py_UCS1 *hex = PyUnicode_1BYTE_DATA(digest);
        for (Py_ssize_t i = 0; i < digest_length; i++) {
            if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
                Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"key_partition", key_partition, METH_VARARGS, key_partition_doc},
    {"v2_row", v2_row, METH_VARARGS, v2_row_doc},
    {"sha256_hex", sha256_hex, METH_VARARGS, sha256_hex_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {"column_digests_ok", column_digests_ok, METH_VARARGS, column_digests_ok_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "dqhash.core._fasthash", "The compiled path of the v2 row hasher, of the default partitioner, and of the column-digest check.", -1, methods,
};

PyMODINIT_FUNC PyInit__fasthash(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    find_openssl();
    return PyModule_Create(&module_definition);
}
