/* heaplint.engine.readers._etlfast: the optional C accelerator of the .etl reader.
 *
 * Two things, each with a pure-Python reference implementation that stays
 * the fallback (and that tests compare this module against):
 *
 *   decompress(src, out_size=-1) -> bytes
 *       plain LZ77 decompression (etlfast_lzx.c; lzxpress.py in Python);
 *       raises ValueError on malformed input.
 *   Decoder(event_type, origin, num, den, raw_stacks, kinds, heap_guid)
 *       .walk(data, pos, out, index): the common records of one buffer
 *       (etlfast_walk.c; EtlReader._decode in Python);
 *       .partition(ours) and .split(items, pids, stubs): a --jobs
 *       partition's process filter (light events of the other partitions'
 *       heap records in walk(); etlfast_split.c; etl_partition.py in Python).
 *
 * walk() decodes records from `pos` on and appends their events to the list
 * `out`, for as long as each record is one it takes: a heap block record
 * under a system or compact header with marker flags 0xC0, a StackWalk
 * record right after its event whose frames were seen before, or a record the
 * Python loop would only count (other event groups and providers, WPP
 * messages).  At the first other record it returns (its offset, the next
 * event index), and the Python loop decodes that record (process, image,
 * unusual or malformed records, with their messages) and calls walk() again.
 * So every record is decoded by exactly one side, and the Python side alone
 * decides what is an error.
 *
 * Buffers come from the file: every field read is bounds-checked against
 * the buffer first, and any value the fast path does not expect (a size out
 * of range, an unknown Source, a timestamp whose conversion would overflow)
 * hands the record back to Python rather than guessing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "etlfast_lzx.h"
#include "etlfast_walk.h"

/* Bumped when walk()/Decoder change; etl.py ignores a stale build. */
#define ETLFAST_API 3

/* ---------------------------------------------------------------- decompress */

static PyObject *etlfast_decompress(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer src;
    Py_ssize_t limit = -1;
    if (!PyArg_ParseTuple(args, "y*|n:decompress", &src, &limit))
        return NULL;
    lzx_output out = {NULL, 0, 0};
    const char *message = "";
    size_t detail = 0;
    lzx_status status;
    Py_BEGIN_ALLOW_THREADS
    status = lzx_decompress(src.buf, (size_t)src.len, limit, &out, &message, &detail);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    PyObject *result = NULL;
    if (status == LZX_OK)
        result = PyBytes_FromStringAndSize(out.data ? (const char *)out.data : "", (Py_ssize_t)out.len);
    else if (status == LZX_CORRUPT)
        PyErr_Format(PyExc_ValueError, message, detail);
    else
        PyErr_NoMemory();
    free(out.data);
    return result;
}

/* ---------------------------------------------------------------- the decoder */

static PyObject *Decoder_walk(Decoder *d, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "walk(data: bytes, pos: int, out: list, index: int)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t index = PyLong_AsSsize_t(args[3]);
    if ((pos == -1 || index == -1) && PyErr_Occurred())
        return NULL;
    if (pos < 0) {
        PyErr_SetString(PyExc_ValueError, "walk: negative position");
        return NULL;
    }
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    if (walk_buffer(d, data, PyBytes_GET_SIZE(args[0]), args[2], &pos, &index) < 0)
        return NULL;
    return Py_BuildValue("nn", pos, index);
}

/* partition(ours): decode heap records of pids that the dict `ours` maps to
 * False as light events (a --jobs partition's reader; see etl_partition.py). */
static PyObject *Decoder_partition(Decoder *d, PyObject *ours)
{
    if (!PyDict_Check(ours)) {
        PyErr_SetString(PyExc_TypeError, "partition(ours: dict)");
        return NULL;
    }
    Py_XSETREF(d->ours, Py_NewRef(ours));
    Py_RETURN_NONE;
}

static PyObject *Decoder_split(Decoder *d, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "split(items: list, pids, stubs: bool)");
        return NULL;
    }
    int stubs = PyObject_IsTrue(args[2]);
    if (stubs < 0)
        return NULL;
    return split_items(d, args[0], args[1], stubs);
}

/* Decoder(event_type, origin, num, den, raw_stacks, kinds, heap_guid): `kinds`
 * holds the Kind values of heap opcodes 32..36.  OverflowError when the clock does not
 * fit int64 arithmetic (the reader then stays with pure Python). */
static PyObject *Decoder_new(PyTypeObject *type, PyObject *args, PyObject *Py_UNUSED(kwargs))
{
    PyObject *event_type, *raw_stacks, *kinds;
    long long origin, num, den;
    const char *guid;
    Py_ssize_t guid_size;
    if (!PyArg_ParseTuple(args, "O!LLLO!O!y#:Decoder", &PyType_Type, &event_type, &origin, &num, &den, &PyDict_Type,
                          &raw_stacks, &PyTuple_Type, &kinds, &guid, &guid_size))
        return NULL;
    if (guid_size != 16) {
        PyErr_SetString(PyExc_ValueError, "Decoder: the heap provider GUID must be 16 bytes");
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)event_type, &PyTuple_Type) || PyTuple_GET_SIZE(kinds) != OP_COUNT) {
        PyErr_SetString(PyExc_TypeError, "Decoder: event_type must be a tuple type and kinds a 5-tuple");
        return NULL;
    }
    if (num < 1 || den < 1) {
        PyErr_SetString(PyExc_OverflowError, "Decoder: the clock ratio must be positive");
        return NULL;
    }
    Decoder *d = (Decoder *)type->tp_alloc(type, 0);
    if (d == NULL)
        return NULL;
    d->event_type = (PyTypeObject *)Py_NewRef(event_type);
    d->raw_stacks = Py_NewRef(raw_stacks);
    for (int i = 0; i < OP_COUNT; i++)
        d->kinds[i] = Py_NewRef(PyTuple_GET_ITEM(kinds, i));
    memcpy(d->heap_guid, guid, 16);
    d->ours = NULL;
    d->stacks = NULL;
    d->stack_capacity = d->stack_count = 0;
    d->zero = PyLong_FromLong(0);
    d->light_line = PyLong_FromLong(-1);
    if (d->zero == NULL || d->light_line == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    d->origin = origin;
    d->num = num;
    d->den = den;
    return (PyObject *)d;
}

static void Decoder_dealloc(Decoder *d)
{
    Py_XDECREF(d->event_type);
    Py_XDECREF(d->raw_stacks);
    for (int i = 0; i < OP_COUNT; i++)
        Py_XDECREF(d->kinds[i]);
    Py_XDECREF(d->ours);
    Py_XDECREF(d->zero);
    Py_XDECREF(d->light_line);
    stack_cache_clear(d);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

/* counts[key] = n (the reference to key is stolen; a NULL key is an error). */
static int set_count(PyObject *counts, PyObject *key, uint64_t n)
{
    PyObject *value = key ? PyLong_FromUnsignedLongLong(n) : NULL;
    int status = value ? PyDict_SetItem(counts, key, value) : -1;
    Py_XDECREF(key);
    Py_XDECREF(value);
    return status;
}

/* counts() -> ({(header type, opcode): heap records}, {header type: other records},
 *              WPP messages, records of other providers): what walk() took (the
 * Python side counts the records it decodes itself). */
static PyObject *Decoder_counts(Decoder *d, PyObject *Py_UNUSED(unused))
{
    PyObject *heap = PyDict_New(), *other = PyDict_New();
    if (heap == NULL || other == NULL)
        goto error;
    for (int ht = 1; ht <= 4; ht++) {
        for (int op = 0; op < OP_COUNT; op++) {
            if (d->heap_counts[ht][op] && set_count(heap, Py_BuildValue("(ii)", ht, op + 32), d->heap_counts[ht][op]) < 0)
                goto error;
        }
    }
    for (int ht = 0; ht < 256; ht++) {
        if (d->counts[ht] && set_count(other, PyLong_FromLong(ht), d->counts[ht]) < 0)
            goto error;
    }
    return Py_BuildValue("(NNKK)", heap, other, (unsigned long long)d->messages,
                         (unsigned long long)d->other_provider);
error:
    Py_XDECREF(heap);
    Py_XDECREF(other);
    return NULL;
}

static PyMethodDef Decoder_methods[] = {
    {"walk", (PyCFunction)(void (*)(void))Decoder_walk, METH_FASTCALL,
     "walk(data, pos, out, index) -> (pos, index): decode records until one it does not take"},
    {"counts", (PyCFunction)Decoder_counts, METH_NOARGS, "counts() -> (heap records, StackWalk records) taken"},
    {"partition", (PyCFunction)Decoder_partition, METH_O,
     "partition(ours): heap records of pids ours maps to False become light events"},
    {"split", (PyCFunction)(void (*)(void))Decoder_split, METH_FASTCALL,
     "split(items, pids, stubs) -> list: this partition's events and runs of the others' times"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "heaplint.engine.readers._etlfast.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decodes the common records of .etl buffers (see the module docstring).",
    .tp_new = Decoder_new,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_methods = Decoder_methods,
};

/* ---------------------------------------------------------------- the module */

static PyMethodDef module_methods[] = {
    {"decompress", etlfast_decompress, METH_VARARGS,
     "decompress(src, out_size=-1) -> bytes: plain LZ77 ([MS-XCA] 2.3/2.4); ValueError when malformed"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef etlfast_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "heaplint.engine.readers._etlfast",
    .m_doc = "Optional C accelerator of the .etl reader (LZ77 decompression, record decoding).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__etlfast(void)
{
    if (PyType_Ready(&DecoderType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&etlfast_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "API", ETLFAST_API) < 0 ||
        PyModule_AddObjectRef(module, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
