/*
 * tracekit._jsonscan: the fast path of tracekit.score's reading of a line's response, in C.
 *
 * scan_string(text, start) -> (value, end, slash) or None.
 *
 * text[start] is the first character after the opening quote of a JSON string. For the
 * common strings it returns what json.decoder.scanstring(text, start) returns (the string's
 * value and the index just after its closing quote) and whether an escaped slash was read
 * (json.dumps writes "\/" as "/"), in one pass over the characters. For anything else it
 * returns None and Python decides: a \u escape, a control character, a surrogate code point,
 * an escape JSON does not have, no closing quote. So both paths always agree (a property
 * test checks it). Model text is only scanned; nothing is ever evaluated.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* 1: a character that ends the plain run of a string: '"', '\\' or a control character */
static unsigned char stops[256];

static Py_UCS4 unescaped(Py_UCS4 e) {
    switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return e; /* '"', '\\', '/' */
    }
}

/* the scan for one string kind: sets *close (the closing quote), *escapes, *bits (every character
   or-ed together: its highest bit is the widest character's, all PyUnicode_New needs) and *slash;
   returns 0, or 1 where Python must decide */
#define SCAN(TYPE)                                                                                 \
    static int scan_##TYPE(const TYPE *s, Py_ssize_t start, Py_ssize_t n, Py_ssize_t *close,       \
                           Py_ssize_t *escapes, Py_UCS4 *bits, int *slash) {                       \
        Py_ssize_t i = start;                                                                      \
        Py_UCS4 all = 0;                                                                           \
        for (;;) {                                                                                 \
            while (i < n && (s[i] > 0xff || !stops[s[i]])) {                                       \
                if (sizeof(TYPE) > 1 && (Py_UCS4)(s[i] - 0xd800) < 0x800) return 1; /* surrogate */ \
                all |= s[i++];                                                                     \
            }                                                                                      \
            if (i >= n) return 1;                                                                  \
            if (s[i] == '"') break;                                                                \
            if (s[i] != '\\' || i + 1 >= n) return 1; /* a control character, or text ends */     \
            switch (s[i + 1]) {                                                                    \
            case '/': *slash = 1; /* fall through */                                               \
            case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't': break;          \
            default: return 1; /* \u and the escapes JSON does not have */                         \
            }                                                                                      \
            ++*escapes;                                                                            \
            i += 2;                                                                                \
        }                                                                                          \
        *close = i;                                                                                \
        *bits = all;                                                                               \
        return 0;                                                                                  \
    }

SCAN(Py_UCS2)
SCAN(Py_UCS4)

/* one-byte text (ASCII, Latin-1: the usual case) eight bytes at a time: a word with no '"', '\\'
   or control character is or-ed in whole */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline uint64_t zero_byte(uint64_t v) { return (v - ONES) & ~v & HIGHS; }

static int scan_Py_UCS1(const Py_UCS1 *s, Py_ssize_t start, Py_ssize_t n, Py_ssize_t *close,
                        Py_ssize_t *escapes, Py_UCS4 *bits, int *slash) {
    Py_ssize_t i = start;
    uint64_t all = 0;
    for (;;) {
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            /* some byte is '"', '\\' or below 0x20 (the last test may flag a word falsely: fine) */
            if (zero_byte(x ^ (ONES * '"')) | zero_byte(x ^ (ONES * '\\')) | ((x - ONES * 0x20) & ~x & HIGHS))
                break;
            all |= x;
            i += 8;
        }
        while (i < n && !stops[s[i]]) all |= s[i++];
        if (i >= n) return 1;
        if (s[i] == '"') break;
        if (s[i] != '\\' || i + 1 >= n) return 1; /* a control character, or text ends */
        switch (s[i + 1]) {
        case '/': *slash = 1; /* fall through */
        case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't': break;
        default: return 1; /* \u and the escapes JSON does not have */
        }
        ++*escapes;
        i += 2;
    }
    all |= all >> 32;
    all |= all >> 16;
    all |= all >> 8;
    *close = i;
    *bits = (Py_UCS4)(all & 0xff);
    return 0;
}

/* the value of the string s[start:close] with its escapes read, into out (of the same kind) */
#define UNESCAPE(TYPE)                                                                             \
    static void unescape_##TYPE(const TYPE *s, Py_ssize_t start, Py_ssize_t close, TYPE *out) {    \
        Py_ssize_t i = start;                                                                      \
        while (i < close) {                                                                        \
            Py_ssize_t run = i;                                                                    \
            while (run < close && s[run] != '\\') run++;                                           \
            memcpy(out, s + i, (size_t)(run - i) * sizeof(TYPE));                                  \
            out += run - i;                                                                        \
            if (run >= close) break;                                                               \
            *out++ = (TYPE)unescaped(s[run + 1]);                                                  \
            i = run + 2;                                                                           \
        }                                                                                          \
    }

UNESCAPE(Py_UCS2)
UNESCAPE(Py_UCS4)

static void unescape_Py_UCS1(const Py_UCS1 *s, Py_ssize_t start, Py_ssize_t close, Py_UCS1 *out) {
    Py_ssize_t i = start;
    while (i < close) {
        const Py_UCS1 *at = memchr(s + i, '\\', (size_t)(close - i));
        Py_ssize_t run = at == NULL ? close : at - s;
        memcpy(out, s + i, (size_t)(run - i));
        out += run - i;
        if (run >= close) break;
        *out++ = (Py_UCS1)unescaped(s[run + 1]);
        i = run + 2;
    }
}

static PyObject *scan_string(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan_string(text, start): a str and an int");
        return NULL;
    }
    PyObject *text = args[0];
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) return NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return NULL;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (start < 0 || start > n) Py_RETURN_NONE;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t close = 0, escapes = 0;
    Py_UCS4 bits = 0;
    int slash = 0, ask;
    if (kind == PyUnicode_1BYTE_KIND)
        ask = scan_Py_UCS1(data, start, n, &close, &escapes, &bits, &slash);
    else if (kind == PyUnicode_2BYTE_KIND)
        ask = scan_Py_UCS2(data, start, n, &close, &escapes, &bits, &slash);
    else
        ask = scan_Py_UCS4(data, start, n, &close, &escapes, &bits, &slash);
    if (ask) Py_RETURN_NONE;

    PyObject *value;
    if (escapes == 0) {
        value = PyUnicode_Substring(text, start, close);
    } else {
        /* the unescaped characters are ASCII: the widest character is a plain one, and the
           highest bit of `bits` tells PyUnicode_New the same kind as the widest character */
        Py_UCS4 widest = bits > 0x10ffff ? 0x10ffff : bits;
        value = PyUnicode_New(close - start - escapes, widest);
        if (value == NULL) return NULL;
        if (PyUnicode_KIND(value) == kind) {
            if (kind == PyUnicode_1BYTE_KIND)
                unescape_Py_UCS1(data, start, close, PyUnicode_DATA(value));
            else if (kind == PyUnicode_2BYTE_KIND)
                unescape_Py_UCS2(data, start, close, PyUnicode_DATA(value));
            else
                unescape_Py_UCS4(data, start, close, PyUnicode_DATA(value));
        } else { /* a narrower value than its text (other lines hold the wide characters) */
            int out_kind = PyUnicode_KIND(value);
            void *out = PyUnicode_DATA(value);
            Py_ssize_t o = 0;
            for (Py_ssize_t j = start; j < close; j++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, j);
                if (c == '\\') c = unescaped(PyUnicode_READ(kind, data, ++j));
                PyUnicode_WRITE(out_kind, out, o++, c);
            }
        }
    }
    if (value == NULL) return NULL;
    return Py_BuildValue("(NnO)", value, close + 1, slash ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"scan_string", (PyCFunction)(void (*)(void))scan_string, METH_FASTCALL,
     "scan_string(text, start) -> (value, end, slash) or None (ask json.decoder.scanstring)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonscan", "Fast path of tracekit.score.", -1, methods};

PyMODINIT_FUNC PyInit__jsonscan(void) {
    for (int c = 0; c < 0x20; c++) stops[c] = 1;
    stops['"'] = 1;
    stops['\\'] = 1;
    return PyModule_Create(&module);
}
