/* The block scan of a --jobs partition reading canonical JSON Lines
 * (engine/readers/canonical_partition.py), in C.
 *
 * scan(buf, pos, end, owners) classifies the lines of buf that start after
 * the newline at buf[pos] and end at or before end (buf[end - 1] is a
 * newline).  A line is
 *
 *   - claimed when it starts as the canonical writer writes an event:
 *     {"kind":"<event kind>","time":<1-19 digits>,"pid":<1-19 digits>
 *     followed by ',' or '}'.  Its pid is looked up in ``owners`` (a dict
 *     pid -> bool: whether the process is this partition's);
 *   - an other process's event when claimed with a known pid whose owner
 *     is false: its time joins the current run (a list of ints);
 *   - an own event when claimed with a known pid whose owner is true and a
 *     ',' after the pid: it comes out as (line, time, pid, end of line);
 *   - anything else (a pid not in ``owners`` or written with a leading
 *     zero, stack and facts records, blank, odd or broken lines): the scan
 *     stops before it.
 *
 * Returns (items, pos): the runs and own events in input order, and the
 * position of the newline before the first line not taken (``end - 1``
 * when all were).  This is exactly what the pure-Python scan
 * (_Lines.scanner) matches; both are checked against decoding every
 * record (tests/test_jobs_reader.py, tests/test_jobs_scan.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define API_VERSION 1

static const char *const KINDS[] = {"alloc", "free", "realloc", "create", "destroy",
                                    "process_start", "process_end", NULL};

/* Digits at p (1 to 19 of them, before lim): their value in *out and the
 * position after them, or NULL. */
static const char *
digits(const char *p, const char *lim, unsigned long long *out)
{
    unsigned long long v = 0;
    const char *start = p;
    while (p < lim && *p >= '0' && *p <= '9') {
        if (p - start == 19)
            return NULL;
        v = v * 10 + (unsigned long long)(*p - '0');
        p++;
    }
    if (p == start)
        return NULL;
    *out = v;
    return p;
}

static int
literal(const char **p, const char *lim, const char *text, Py_ssize_t n)
{
    if (lim - *p < n || memcmp(*p, text, (size_t)n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* The head of an event line at p: time, pid and the byte after the pid
 * (',' or '}'); 0 when the line does not start so. */
static int
head(const char *p, const char *lim, unsigned long long *t, unsigned long long *pid, char *after)
{
    static const char KIND[] = "{\"kind\":\"";
    static const char TIME[] = "\",\"time\":";
    static const char PID[] = ",\"pid\":";
    if (!literal(&p, lim, KIND, sizeof KIND - 1))
        return 0;
    int known = 0;
    for (int i = 0; KINDS[i] != NULL; i++) {
        const char *q = p;
        if (literal(&q, lim, KINDS[i], (Py_ssize_t)strlen(KINDS[i])) && literal(&q, lim, TIME, sizeof TIME - 1)) {
            p = q;
            known = 1;
            break;
        }
    }
    if (!known || (p = digits(p, lim, t)) == NULL || !literal(&p, lim, PID, sizeof PID - 1))
        return 0;
    const char *pid_text = p;
    if ((p = digits(p, lim, pid)) == NULL || p >= lim || (*p != ',' && *p != '}'))
        return 0;
    if (*pid_text == '0' && p - pid_text > 1)
        return 0; /* as the pure-Python scan, which looks for each pid as Python writes it */
    *after = *p;
    return 1;
}

/* Append the current run to items (when there is one) and start a new one. */
static int
flush(PyObject *items, PyObject **run)
{
    if (*run == NULL)
        return 0;
    int err = PyList_Append(items, *run);
    Py_CLEAR(*run);
    return err;
}

#define CACHE 4

static void
release(PyObject **cached)
{
    for (int i = 0; i < CACHE; i++)
        Py_CLEAR(cached[i]);
}

static PyObject *
scan(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, end;
    PyObject *owners;
    if (!PyArg_ParseTuple(args, "y*nnO!", &view, &pos, &end, &PyDict_Type, &owners))
        return NULL;
    const char *buf = view.buf;
    if (pos < 0 || end > view.len || pos >= end || buf[end - 1] != '\n') {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan: pos and end must be newlines of buf, pos < end");
        return NULL;
    }
    PyObject *items = PyList_New(0), *run = NULL;
    /* the last CACHE pids looked up (as ints and objects) and their owners:
     * lines of a few busy processes alternate, and a dict lookup needs an
     * int object */
    PyObject *cached[CACHE] = {NULL};
    unsigned long long values[CACHE] = {0};
    int owned[CACHE] = {0}, next = 0, slot = 0;
    if (items == NULL)
        goto error;
    while (pos < end - 1) {
        const char *line = buf + pos + 1;
        const char *nl = memchr(line, '\n', (size_t)(buf + end - line));
        unsigned long long t, pid;
        char after;
        if (!head(line, nl, &t, &pid, &after))
            break;
        for (slot = 0; slot < CACHE && (cached[slot] == NULL || values[slot] != pid); slot++)
            ;
        if (slot == CACHE) {
            PyObject *key = PyLong_FromUnsignedLongLong(pid);
            if (key == NULL)
                goto error;
            PyObject *owner = PyDict_GetItemWithError(owners, key);
            int yes = owner != NULL ? PyObject_IsTrue(owner) : -1;
            if (yes < 0) {
                Py_DECREF(key);
                if (PyErr_Occurred())
                    goto error;
                break; /* a process seen for the first time */
            }
            slot = next;
            next = (next + 1) % CACHE;
            Py_XSETREF(cached[slot], key);
            values[slot] = pid;
            owned[slot] = yes;
        }
        if (!owned[slot]) {
            if (run == NULL && (run = PyList_New(0)) == NULL)
                goto error;
            PyObject *value = PyLong_FromUnsignedLongLong(t);
            if (value == NULL || PyList_Append(run, value) < 0) {
                Py_XDECREF(value);
                goto error;
            }
            Py_DECREF(value);
        } else {
            if (after != ',')
                break;
            if (flush(items, &run) < 0)
                goto error;
            Py_ssize_t stop = nl - buf;
            PyObject *own = Py_BuildValue("(y#KOn)", line, (Py_ssize_t)(nl + 1 - line), t, cached[slot], stop);
            if (own == NULL || PyList_Append(items, own) < 0) {
                Py_XDECREF(own);
                goto error;
            }
            Py_DECREF(own);
        }
        pos = nl - buf;
    }
    if (flush(items, &run) < 0)
        goto error;
    release(cached);
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", items, pos);
error:
    Py_XDECREF(items);
    Py_XDECREF(run);
    release(cached);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(buf, pos, end, owners) -> (items, pos): the block scan of canonical_partition"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsonlscan", "The block scan of canonical JSONL partitions (optional accelerator).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__jsonlscan(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "API", API_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
