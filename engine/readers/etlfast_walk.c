/* The record walk of the C accelerator (see _etlfast.c for what it takes and
 * what it hands back): EtlReader._decode's hot loop, for the common records.
 *
 * Every record field is read only after the record's size has been checked
 * against the bytes left in the buffer.
 */
#include "etlfast_walk.h"

#include <string.h>

#define EVENT_FIELDS 15 /* HeapEvent: kind, time, pid, tid, heap, address, size,
                           old_address, old_size, source, stack, flags, image, index, line */
enum { F_KIND, F_TIME, F_PID, F_TID, F_HEAP, F_ADDRESS, F_SIZE, F_OLD_ADDRESS,
       F_OLD_SIZE, F_SOURCE, F_STACK, F_FLAGS, F_IMAGE, F_INDEX, F_LINE };

#define HEAP_GROUP 0x10
#define STACKWALK_HOOK 0x1820
#define MAX_SOURCE 6 /* larger Source values are counted by the Python side */

/* what take_record() and its helpers return (or -1 with a Python error set) */
enum { HAND_BACK = 0, TAKEN_STACK = 1, TAKEN_EVENT = 2, SKIPPED = 3 };

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static uint64_t get_pointer(const uint8_t *p, int size) { return size == 8 ? get_u64(p) : get_u32(p); }

/* A raw timestamp as ns of trace time, with Python's floor division; 0 when
 * the arithmetic would leave int64 (the Python side then does it exactly). */
static int time_ns(const Decoder *d, int64_t ts, int64_t *t)
{
    if ((d->origin > 0 && ts < INT64_MIN + d->origin) || (d->origin < 0 && ts > INT64_MAX + d->origin))
        return 0;
    int64_t diff = ts - d->origin;
    if (diff > INT64_MAX / d->num || diff < INT64_MIN / d->num)
        return 0;
    int64_t scaled = diff * d->num;
    int64_t q = scaled / d->den;
    if (scaled % d->den != 0 && scaled < 0)
        q--;
    *t = q;
    return 1;
}

/* One-entry caches of the last pid / tid / heap objects: consecutive records
 * mostly repeat them, and reusing the int object saves an allocation. */
typedef struct {
    uint64_t value;
    PyObject *obj;
} int_cache;

static PyObject *cached_int(int_cache *c, uint64_t value)
{
    if (c->obj == NULL || c->value != value) {
        PyObject *obj = PyLong_FromUnsignedLongLong(value);
        if (obj == NULL)
            return NULL;
        Py_XSETREF(c->obj, obj);
        c->value = value;
    }
    Py_INCREF(c->obj);
    return c->obj;
}

typedef struct {
    int_cache pid, tid, heap;
    /* the last pid looked up in Decoder.ours, and whether it is another partition's */
    int foreign_known;
    uint32_t foreign_pid;
    int foreign;
} walk_caches;

static void clear_caches(walk_caches *c)
{
    Py_CLEAR(c->pid.obj);
    Py_CLEAR(c->tid.obj);
    Py_CLEAR(c->heap.obj);
}

/* Leave an event holding only ints, strings and None out of the cyclic
 * garbage collector, as CPython's own collector does with such tuples when it
 * first meets them: a million events of a trace then add nothing to every
 * collection's work (measured: the decode took 40% longer with them tracked). */
static void untrack_if_atomic(PyObject *event)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(event); i++) {
        PyObject *item = PyTuple_GET_ITEM(event, i);
        if (item != Py_None && !PyLong_CheckExact(item) && !PyUnicode_CheckExact(item))
            return;
    }
    PyObject_GC_UnTrack(event);
}

/* A HeapEvent from its 15 items (references stolen, NULL ones are errors). */
static PyObject *make_event(PyTypeObject *type, PyObject **items)
{
    for (int i = 0; i < EVENT_FIELDS; i++) {
        if (items[i] == NULL) {
            for (int j = 0; j < EVENT_FIELDS; j++)
                Py_XDECREF(items[j]);
            return NULL;
        }
    }
#if PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
    /* what tuple.__new__(HeapEvent, items) does, minus the temporary tuple;
     * tuples of 3.14 cache their hash in a field this would not reset */
    PyObject *event = type->tp_alloc(type, EVENT_FIELDS);
    if (event != NULL) {
        for (int i = 0; i < EVENT_FIELDS; i++)
            PyTuple_SET_ITEM(event, i, items[i]);
        untrack_if_atomic(event);
        return event;
    }
    for (int i = 0; i < EVENT_FIELDS; i++)
        Py_DECREF(items[i]);
    return NULL;
#else
    PyObject *plain = PyTuple_New(EVENT_FIELDS);
    if (plain == NULL) {
        for (int i = 0; i < EVENT_FIELDS; i++)
            Py_DECREF(items[i]);
        return NULL;
    }
    for (int i = 0; i < EVENT_FIELDS; i++)
        PyTuple_SET_ITEM(plain, i, items[i]);
    PyObject *args = PyTuple_Pack(1, plain);
    Py_DECREF(plain);
    if (args == NULL)
        return NULL;
    PyObject *event = PyTuple_Type.tp_new(type, args, NULL);
    Py_DECREF(args);
    if (event != NULL)
        untrack_if_atomic(event);
    return event;
#endif
}

/* Whether heap records of `pid` become light events: the reader of a --jobs
 * partition has mapped the pid to False in d->ours.  1, 0, or -1 on error. */
static int foreign_pid(Decoder *d, walk_caches *c, uint32_t pid)
{
    if (d->ours == NULL)
        return 0;
    if (c->foreign_known && c->foreign_pid == pid)
        return c->foreign;
    PyObject *key = cached_int(&c->pid, pid);
    if (key == NULL)
        return -1;
    PyObject *verdict = PyDict_GetItemWithError(d->ours, key); /* borrowed; an int key runs no Python code */
    Py_DECREF(key);
    if (verdict == NULL && PyErr_Occurred())
        return -1;
    c->foreign_known = 1;
    c->foreign_pid = pid;
    c->foreign = verdict == Py_False;
    return c->foreign;
}

int is_light(const Decoder *d, PyObject *event)
{
    return PyTuple_Check(event) && PyTuple_GET_SIZE(event) == EVENT_FIELDS &&
           PyTuple_GET_ITEM(event, F_LINE) == d->light_line;
}

/* A light event: another partition's heap record, of which the partition
 * needs only the time (and kind, pid and tid, to attach its stack records
 * as a whole reading does); the other fields are shared zeros and None. */
static PyObject *light_event(Decoder *d, walk_caches *c, int op, int64_t t, uint32_t pid, uint32_t tid)
{
    PyObject *items[EVENT_FIELDS];
    items[F_KIND] = Py_NewRef(d->kinds[op]);
    items[F_TIME] = PyLong_FromLongLong(t);
    items[F_PID] = cached_int(&c->pid, pid);
    items[F_TID] = cached_int(&c->tid, tid);
    items[F_HEAP] = Py_NewRef(d->zero);
    items[F_ADDRESS] = Py_NewRef(d->zero);
    items[F_SIZE] = Py_NewRef(d->zero);
    items[F_OLD_ADDRESS] = Py_NewRef(d->zero);
    items[F_OLD_SIZE] = Py_NewRef(Py_None);
    items[F_SOURCE] = Py_NewRef(d->zero);
    items[F_STACK] = Py_NewRef(Py_None);
    items[F_FLAGS] = Py_NewRef(d->zero);
    items[F_IMAGE] = Py_NewRef(Py_None);
    items[F_INDEX] = Py_NewRef(d->zero);
    items[F_LINE] = Py_NewRef(d->light_line);
    return make_event(d->event_type, items);
}

/* pointer-sized payload fields of each heap opcode, and whether a 32-bit
 * field (Flags for create, Source otherwise) follows them */
static const int heap_pointers[OP_COUNT] = {1, 3, 5, 1, 2};
static const int heap_has_u32[OP_COUNT] = {1, 1, 1, 0, 1};

/* Decode the heap record at `rec` (header type 1..4, marker 0xC0); returns
 * TAKEN_EVENT, HAND_BACK or -1 on a Python error. */
static int take_heap(Decoder *d, walk_caches *c, const uint8_t *rec, Py_ssize_t avail, uint32_t ht,
                     uint32_t size, int op, PyObject *out, Py_ssize_t index)
{
    int psize = (ht == 2 || ht == 4) ? 8 : 4;
    int hlen = ht <= 2 ? 32 : 24;
    uint32_t need = (uint32_t)(hlen + heap_pointers[op] * psize + 4 * heap_has_u32[op]);
    if (size < need || (Py_ssize_t)size > avail)
        return HAND_BACK;
    uint64_t f[5];
    for (int i = 0; i < heap_pointers[op]; i++)
        f[i] = get_pointer(rec + hlen + i * psize, psize);
    uint32_t extra = heap_has_u32[op] ? get_u32(rec + hlen + heap_pointers[op] * psize) : 0;
    if (op != OP_CREATE && extra > MAX_SOURCE)
        return HAND_BACK;
    int64_t t;
    if (!time_ns(d, (int64_t)get_u64(rec + 16), &t))
        return HAND_BACK;
    int foreign = foreign_pid(d, c, get_u32(rec + 12));
    if (foreign < 0)
        return -1;
    if (foreign) {
        PyObject *light = light_event(d, c, op, t, get_u32(rec + 12), get_u32(rec + 8));
        int failed = light == NULL || PyList_Append(out, light) < 0;
        Py_XDECREF(light);
        if (failed)
            return -1;
        d->heap_counts[ht][op]++;
        return TAKEN_EVENT;
    }

    PyObject *items[EVENT_FIELDS];
    items[F_KIND] = Py_NewRef(d->kinds[op]);
    items[F_TIME] = PyLong_FromLongLong(t);
    items[F_PID] = cached_int(&c->pid, get_u32(rec + 12));
    items[F_TID] = cached_int(&c->tid, get_u32(rec + 8));
    items[F_HEAP] = cached_int(&c->heap, f[0]);
    uint64_t address = 0, bytes = 0, old = 0;
    items[F_OLD_SIZE] = Py_NewRef(Py_None);
    if (op == OP_ALLOC) {
        bytes = f[1];
        address = f[2];
    } else if (op == OP_FREE) {
        address = f[1];
    } else if (op == OP_REALLOC) {
        address = f[1];
        old = f[2];
        bytes = f[3];
        Py_SETREF(items[F_OLD_SIZE], PyLong_FromUnsignedLongLong(f[4]));
    }
    items[F_ADDRESS] = PyLong_FromUnsignedLongLong(address);
    items[F_SIZE] = PyLong_FromUnsignedLongLong(bytes);
    items[F_OLD_ADDRESS] = PyLong_FromUnsignedLongLong(old);
    items[F_SOURCE] = PyLong_FromUnsignedLong(op == OP_CREATE ? 0 : extra);
    items[F_STACK] = Py_NewRef(Py_None);
    items[F_FLAGS] = PyLong_FromUnsignedLong(op == OP_CREATE ? extra : 0);
    items[F_IMAGE] = Py_NewRef(Py_None);
    items[F_INDEX] = PyLong_FromSsize_t(index);
    items[F_LINE] = PyLong_FromLong(0);
    PyObject *event = make_event(d->event_type, items);
    if (event == NULL)
        return -1;
    int failed = PyList_Append(out, event);
    Py_DECREF(event);
    if (failed)
        return -1;
    d->heap_counts[ht][op]++;
    return TAKEN_EVENT;
}

/* Whether `obj` is an int equal to `value`. */
static int int_equals(PyObject *obj, long long value)
{
    int overflow;
    if (!PyLong_CheckExact(obj))
        return 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    return !overflow && v == value && !(v == -1 && PyErr_Occurred());
}

/* The stack id of these frames of `pid` (borrowed), or NULL (with an error
 * set on failure): the cache first, then the dict (a hit there is cached). */
static PyObject *known_stack(Decoder *d, uint32_t pid, uint32_t ht, const uint8_t *frames, Py_ssize_t len)
{
    uint64_t hash = stack_hash(pid, ht, frames, len);
    PyObject *sid = stack_cache_find(d, hash, pid, ht, frames, len);
    if (sid != NULL)
        return sid;
    PyObject *key = Py_BuildValue("(kIy#)", (unsigned long)pid, ht, (const char *)frames, len);
    if (key == NULL)
        return NULL;
    sid = PyDict_GetItemWithError(d->raw_stacks, key); /* borrowed */
    if (sid != NULL && stack_cache_add(d, hash, key, sid, pid, ht) < 0)
        sid = NULL;
    Py_DECREF(key);
    return sid;
}

/* The StackWalk record at `rec` (perfinfo header) when it follows its event
 * (the last one of `out`) and its frames were seen before: the event gets
 * the known stack id.  Returns TAKEN_STACK, HAND_BACK or -1 on error. */
static int take_stack(Decoder *d, const uint8_t *rec, Py_ssize_t avail, uint32_t ht, uint32_t size, PyObject *out)
{
    Py_ssize_t n = PyList_GET_SIZE(out);
    if (n == 0 || size < 32 || (Py_ssize_t)size > avail)
        return HAND_BACK;
    PyObject *last = PyList_GET_ITEM(out, n - 1);
    if (Py_TYPE(last) != d->event_type || PyTuple_GET_SIZE(last) != EVENT_FIELDS)
        return HAND_BACK;
    int64_t t;
    uint32_t pid = get_u32(rec + 24), tid = get_u32(rec + 28);
    if (!time_ns(d, (int64_t)get_u64(rec + 16), &t))
        return HAND_BACK;
    PyObject *kind = PyTuple_GET_ITEM(last, F_KIND);
    long k = PyLong_CheckExact(kind) ? PyLong_AsLong(kind) : 0;
    if (k == -1 && PyErr_Occurred())
        PyErr_Clear();
    if (!(int_equals(PyTuple_GET_ITEM(last, F_TID), tid) && int_equals(PyTuple_GET_ITEM(last, F_TIME), t) &&
          int_equals(PyTuple_GET_ITEM(last, F_PID), pid) && k > 0 && k <= 5))
        return HAND_BACK;
    PyObject *sid = known_stack(d, pid, ht, rec + 32, (Py_ssize_t)(size - 32)); /* borrowed */
    if (sid == NULL)
        return PyErr_Occurred() ? -1 : HAND_BACK; /* new frames: Python resolves them */
    if (is_light(d, last)) { /* another partition's event: its stack is never looked at */
        d->counts[ht]++;
        return TAKEN_STACK;
    }
    PyObject *items[EVENT_FIELDS];
    for (int i = 0; i < EVENT_FIELDS; i++)
        items[i] = Py_NewRef(PyTuple_GET_ITEM(last, i));
    Py_SETREF(items[F_STACK], Py_NewRef(sid));
    PyObject *event = make_event(d->event_type, items);
    if (event == NULL || PyList_SetItem(out, n - 1, event) < 0)
        return -1;
    d->counts[ht]++;
    return TAKEN_STACK;
}

/* Fixed header length of the classic and EVENT_HEADER header types (whose
 * first word is the record size), 0 for the others: HEADER_LENGTH in
 * etl_container.py. */
static uint32_t classic_header_length(uint32_t ht)
{
    switch (ht) {
    case 10: case 20: return 48; /* full32, full64 */
    case 11: case 21: return 72; /* instance32, instance64 */
    case 18: case 19: return 80; /* event_header32, event_header64 */
    default: return 0;
    }
}

/* Records EtlReader._decode only counts, taken here with the same checks:
 * hooked records of groups it does not decode, other providers' classic and
 * EVENT_HEADER records, and WPP messages.  *size is set to the record size. */
static int skip_record(Decoder *d, const uint8_t *rec, Py_ssize_t avail, uint32_t first, uint32_t ht,
                       uint32_t marker, uint32_t hook, uint32_t *size)
{
    if ((marker & 0xC0) == 0xC0 && ht && (ht <= 4 || ht == 16 || ht == 17)) {
        uint32_t group = hook >> 8;
        /* heap, process, image and StackWalk groups: decoded by Python */
        if (group == HEAP_GROUP || group == 0x03 || group == 0x14 || group == 0x18 || *size < 8)
            return HAND_BACK;
        d->counts[ht]++;
        return SKIPPED;
    }
    uint32_t hlen = classic_header_length(ht);
    if (hlen && (marker & 0xC0) == 0xC0) {
        if (first < hlen || (Py_ssize_t)first > avail || memcmp(rec + 24, d->heap_guid, 16) == 0)
            return HAND_BACK;
        *size = first;
        d->counts[ht]++;
        d->other_provider++;
        return SKIPPED;
    }
    if ((marker & 0xD0) == 0x90 && first >= 8) {
        *size = first;
        d->messages++;
        return SKIPPED;
    }
    return HAND_BACK;
}

/* Decode the record at data[pos] if it is one walk() takes (see the top). */
static int take_record(Decoder *d, walk_caches *c, const uint8_t *data, Py_ssize_t pos, Py_ssize_t end,
                       PyObject *out, Py_ssize_t index, uint32_t *size)
{
    const uint8_t *rec = data + pos;
    uint32_t typemark = get_u16(rec + 2), hook = get_u16(rec + 6);
    uint32_t ht = typemark & 0xFF, marker = typemark >> 8;
    *size = get_u16(rec + 4);
    if (marker == 0xC0 && ht >= 1 && ht <= 4 && hook >> 8 == HEAP_GROUP && (hook & 0xFF) - 32u < OP_COUNT)
        return take_heap(d, c, rec, end - pos, ht, *size, (int)(hook & 0xFF) - 32, out, index);
    if (hook == STACKWALK_HOOK && (typemark == 0xC010 || typemark == 0xC011)) {
        int taken = take_stack(d, rec, end - pos, ht, *size, out);
        if (taken != HAND_BACK)
            return taken;
    }
    return skip_record(d, rec, end - pos, get_u16(rec), ht, marker, hook, size);
}

/* Walk data[*pos:end] (see etlfast_walk.h). */
int walk_buffer(Decoder *d, const uint8_t *data, Py_ssize_t end, PyObject *out, Py_ssize_t *pos, Py_ssize_t *index)
{
    walk_caches caches = {{0, NULL}, {0, NULL}, {0, NULL}, 0, 0, 0};
    int taken = TAKEN_EVENT;
    while (end - *pos >= 8) {
        uint32_t size;
        taken = take_record(d, &caches, data, *pos, end, out, *index, &size);
        if (taken <= 0)
            break;
        if (taken == TAKEN_EVENT)
            (*index)++;
        *pos += (Py_ssize_t)((size + 7) & ~7u);
    }
    clear_caches(&caches);
    return taken < 0 ? -1 : 0;
}
