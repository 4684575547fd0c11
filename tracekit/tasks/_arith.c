/*
 * tracekit.tasks._arith: the fast path of tracekit.tasks.arith.evaluate_raw, in C.
 *
 * evaluate(text) -> (numerator, denominator, literals) or None.
 *
 * It reads the same grammar as the Python evaluator (+ - * / and parentheses over
 * non-negative integer literals, unary minus, 'x'/'X' for '*', ASCII whitespace) with
 * the same operator-precedence stacks, and returns the very same unreduced fraction.
 * It answers only the common, well-formed case: for anything else (non-ASCII text,
 * a parse error, a limit reached, division by zero, a value past 63 bits) it returns
 * None and the Python evaluator decides, so both paths always agree (a property test
 * checks it). Model text is only scanned byte by byte; nothing is ever evaluated.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* the limits of tracekit.tasks.arith (passed in by the caller at import, see init) */
static Py_ssize_t max_chars = 2000;
static int max_digits = 12;
static int max_tokens = 400;
static int max_depth = 40;

#define STACK 512 /* >= max_tokens; checked in configure() */

typedef struct {
    int64_t num, den;
} frac;

static int fits(__int128 v) { return v >= -(((__int128)1) << 63) + 1 && v <= (((__int128)1) << 63) - 1; }

static int prec(char op) {
    switch (op) {
    case '+': case '-': return 1;
    case '*': case '/': return 2;
    case 'u': return 3;
    default: return 0;
    }
}

/* apply op to the top of nums; 0 = ok, -1 = leave it to Python */
static int apply(char op, frac *nums, int *n) {
    if (op == 'u') {
        if (*n < 1) return -1;
        nums[*n - 1].num = -nums[*n - 1].num; /* |num| < 2**63 - 1, so no overflow */
        return 0;
    }
    if (*n < 2) return -1;
    frac y = nums[--*n];
    frac x = nums[*n - 1];
    __int128 a = x.num, b = x.den, c = y.num, d = y.den, r_num, r_den;
    switch (op) {
    case '+': r_num = a * d + c * b; r_den = b * d; break;
    case '-': r_num = a * d - c * b; r_den = b * d; break;
    case '*': r_num = a * c; r_den = b * d; break;
    case '/':
        if (c == 0) return -1; /* division_by_zero: Python reports it */
        if (c > 0) { r_num = a * d; r_den = b * c; }
        else { r_num = -a * d; r_den = -b * c; }
        break;
    default: return -1;
    }
    if (!fits(r_num) || !fits(r_den)) return -1;
    nums[*n - 1].num = (int64_t)r_num;
    nums[*n - 1].den = (int64_t)r_den;
    return 0;
}

static PyObject *evaluate(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg) || !PyUnicode_IS_ASCII(arg)) Py_RETURN_NONE;
    Py_ssize_t len = PyUnicode_GET_LENGTH(arg);
    if (len > max_chars) Py_RETURN_NONE;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(arg);

    frac nums[STACK];
    char ops[STACK];
    int64_t literals[STACK];
    int n_nums = 0, n_ops = 0, n_lits = 0, tokens = 0, depth = 0, unary = 0, expect_operand = 1;

    for (Py_ssize_t i = 0; i < len;) {
        char ch = s[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') { i++; continue; }
        if (++tokens > max_tokens) Py_RETURN_NONE;
        if (ch >= '0' && ch <= '9') {
            int64_t value = 0;
            int digits = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (++digits > max_digits) Py_RETURN_NONE;
                value = value * 10 + (s[i] - '0');
                i++;
            }
            if (!expect_operand) Py_RETURN_NONE; /* a number right after a number */
            literals[n_lits++] = value;
            nums[n_nums].num = value;
            nums[n_nums].den = 1;
            n_nums++;
            expect_operand = 0;
            unary = 0;
            continue;
        }
        if (ch == 'x' || ch == 'X') ch = '*';
        i++;
        if (expect_operand) {
            if (ch == '(') {
                if (++depth > max_depth) Py_RETURN_NONE;
                ops[n_ops++] = '(';
            } else if (ch == '-') {
                if (++unary > max_depth) Py_RETURN_NONE;
                ops[n_ops++] = 'u';
            } else {
                Py_RETURN_NONE;
            }
        } else if (ch == ')') {
            while (n_ops > 0 && ops[n_ops - 1] != '(')
                if (apply(ops[--n_ops], nums, &n_nums) < 0) Py_RETURN_NONE;
            if (n_ops == 0) Py_RETURN_NONE;
            n_ops--;
            depth--;
        } else if (ch == '+' || ch == '-' || ch == '*' || ch == '/') {
            int p = prec(ch);
            while (n_ops > 0 && ops[n_ops - 1] != '(' && prec(ops[n_ops - 1]) >= p)
                if (apply(ops[--n_ops], nums, &n_nums) < 0) Py_RETURN_NONE;
            ops[n_ops++] = ch;
            expect_operand = 1;
        } else {
            Py_RETURN_NONE;
        }
    }
    if (tokens == 0 || expect_operand) Py_RETURN_NONE;
    while (n_ops > 0) {
        char op = ops[--n_ops];
        if (op == '(' || apply(op, nums, &n_nums) < 0) Py_RETURN_NONE;
    }
    if (n_nums != 1) Py_RETURN_NONE;

    PyObject *lits = PyTuple_New(n_lits);
    if (lits == NULL) return NULL;
    for (int k = 0; k < n_lits; k++) {
        PyObject *v = PyLong_FromLongLong(literals[k]);
        if (v == NULL) { Py_DECREF(lits); return NULL; }
        PyTuple_SET_ITEM(lits, k, v);
    }
    return Py_BuildValue("(LLN)", (long long)nums[0].num, (long long)nums[0].den, lits);
}

static PyObject *configure(PyObject *self, PyObject *args) {
    Py_ssize_t chars;
    int digits, tokens, depth;
    if (!PyArg_ParseTuple(args, "niii", &chars, &digits, &tokens, &depth)) return NULL;
    if (digits < 1 || digits > 18 || tokens < 1 || tokens >= STACK || depth < 1 || chars < 1) {
        PyErr_SetString(PyExc_ValueError, "_arith.configure: limits out of range for the native evaluator");
        return NULL;
    }
    max_chars = chars;
    max_digits = digits;
    max_tokens = tokens;
    max_depth = depth;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"evaluate", evaluate, METH_O, "evaluate(text) -> (numerator, denominator, literals) or None (ask Python)."},
    {"configure", configure, METH_VARARGS, "configure(max_chars, max_digits, max_tokens, max_depth)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_arith", "Fast path of tracekit.tasks.arith.", -1, methods};

PyMODINIT_FUNC PyInit__arith(void) { return PyModule_Create(&module); }
