/* The process filter of a --jobs partition (Decoder.split): one merge
 * round's records as this partition's events and, between them, the other
 * partitions' records as lists of their times (etl_partition.split_round in
 * Python, the reference).
 *
 * A record is another partition's when it is a light event (see
 * take_heap in etlfast_walk.c: its pid was mapped to False before its
 * buffer was decoded) or when Decoder.ours maps its pid to False; a pid not
 * in Decoder.ours is asked about once, `pid in pids`, in the order the
 * records come out, and the answer is stored there.
 */
#include "etlfast_walk.h"

/* The last pid asked about (only plain ints that fit a long long). */
typedef struct {
    int known;
    long long pid;
    int ours;
} pid_cache;

/* Whether `pid` is this partition's: 1, 0, or -1 with an error set. */
static int owns(Decoder *d, PyObject *pids, PyObject *pid, pid_cache *c)
{
    long long value = 0;
    int exact = 0;
    if (PyLong_CheckExact(pid)) {
        int overflow;
        value = PyLong_AsLongLongAndOverflow(pid, &overflow);
        if (value == -1 && PyErr_Occurred())
            return -1;
        exact = !overflow;
        if (exact && c->known && c->pid == value)
            return c->ours;
    }
    int ours;
    PyObject *verdict = PyDict_GetItemWithError(d->ours, pid); /* borrowed */
    if (verdict != NULL) {
        ours = PyObject_IsTrue(verdict);
    } else if (PyErr_Occurred()) {
        return -1;
    } else {
        ours = PySequence_Contains(pids, pid);
        if (ours >= 0 && PyDict_SetItem(d->ours, pid, ours ? Py_True : Py_False) < 0)
            return -1;
    }
    if (ours >= 0 && exact) {
        c->known = 1;
        c->pid = value;
        c->ours = ours;
    }
    return ours;
}

/* Append `run` (a list of times, stolen; NULL: nothing) to `out`. */
static int flush_run(PyObject *out, PyObject **run)
{
    if (*run == NULL)
        return 0;
    int failed = PyList_Append(out, *run);
    Py_CLEAR(*run);
    return failed;
}

/* One item of the round; 0, or -1 with an error set. */
static int split_one(Decoder *d, PyObject *item, PyObject *pids, int stubs, pid_cache *cache, PyObject *out,
                     PyObject **run)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 3) {
        PyErr_SetString(PyExc_TypeError, "split: items must be events");
        return -1;
    }
    int ours = is_light(d, item) ? 0 : owns(d, pids, PyTuple_GET_ITEM(item, 2), cache);
    if (ours < 0)
        return -1;
    if (ours)
        return flush_run(out, run) < 0 ? -1 : PyList_Append(out, item);
    if (!stubs)
        return 0;
    if (*run == NULL && (*run = PyList_New(0)) == NULL)
        return -1;
    return PyList_Append(*run, PyTuple_GET_ITEM(item, 1));
}

PyObject *split_items(Decoder *d, PyObject *items, PyObject *pids, int stubs)
{
    if (d->ours == NULL) {
        PyErr_SetString(PyExc_ValueError, "split: call partition() first");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    PyObject *run = NULL;
    pid_cache cache = {0, 0, 0};
    /* `pid in pids` may run Python code: the size is read again each time
     * and the item held while it is looked at */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(items, i));
        int failed = split_one(d, item, pids, stubs, &cache, out, &run);
        Py_DECREF(item);
        if (failed < 0)
            goto error;
    }
    if (flush_run(out, &run) < 0)
        goto error;
    return out;
error:
    Py_XDECREF(run);
    Py_DECREF(out);
    return NULL;
}
