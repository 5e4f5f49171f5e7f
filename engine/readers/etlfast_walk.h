/* The record walk of the C accelerator: see _etlfast.c for what it takes
 * and what it hands back to the Python loop (EtlReader._decode). */
#ifndef HEAPLINT_ETLFAST_WALK_H
#define HEAPLINT_ETLFAST_WALK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

/* heap opcodes 32..36, as offsets from 32 */
enum { OP_CREATE, OP_ALLOC, OP_REALLOC, OP_DESTROY, OP_FREE, OP_COUNT };

/* One known stack of the cache (etlfast_stacks.c): `frames` points into the
 * bytes of `key`, the tuple (pid, header type, frame bytes) that found `sid`. */
typedef struct {
    uint64_t hash;
    uint32_t pid, ht;
    Py_ssize_t len;
    const uint8_t *frames;
    PyObject *key; /* NULL: an empty slot */
    PyObject *sid;
} stack_entry;

/* The state of one reader's decoding (the Python type Decoder). */
typedef struct {
    PyObject_HEAD
    PyTypeObject *event_type;  /* HeapEvent */
    PyObject *raw_stacks;      /* dict: (pid, header type, frame bytes) -> stack id */
    PyObject *kinds[OP_COUNT]; /* Kind value of each heap opcode */
    int64_t origin, num, den;  /* time_ns(ts) = (ts - origin) * num // den */
    uint8_t heap_guid[16];     /* the heap provider's GUID as stored in a record */
    uint64_t heap_counts[5][OP_COUNT]; /* heap records taken, by header type 1..4 and opcode */
    uint64_t counts[256];      /* other records taken, by header type */
    uint64_t messages;         /* WPP messages skipped */
    uint64_t other_provider;   /* classic / EVENT_HEADER records of other providers skipped */
    /* --jobs partitions (Decoder.partition): pid -> whether it is this
     * partition's; a heap record of a pid mapped to False becomes a light
     * event (see take_heap).  NULL: every record is decoded in full. */
    PyObject *ours;
    PyObject *zero;       /* the int 0, for the fields of light events */
    PyObject *light_line; /* the `line` of light events (-1; real events have 0) */
    /* known stacks, a cache in front of raw_stacks (etlfast_stacks.c) */
    stack_entry *stacks;
    size_t stack_capacity, stack_count;
} Decoder;

/* Decode the records of data[*pos:end] into `out` until the first one the
 * walk does not take; *pos and *index (the next event index) advance past
 * what was taken.  Returns 0, or -1 with a Python error set. */
int walk_buffer(Decoder *d, const uint8_t *data, Py_ssize_t end, PyObject *out, Py_ssize_t *pos, Py_ssize_t *index);

/* Whether `event` is a light event of another partition's process. */
int is_light(const Decoder *d, PyObject *event);

/* Decoder.split (etlfast_split.c): `items` (a list of events) as this
 * partition's events and runs of the others' times (dropped unless `stubs`). */
PyObject *split_items(Decoder *d, PyObject *items, PyObject *pids, int stubs);

/* The known-stack cache (etlfast_stacks.c).  stack_cache_find returns the
 * stack id (borrowed) or NULL; stack_cache_add copies a dict hit (0, or -1
 * with MemoryError); stack_cache_clear empties it (the Decoder's dealloc). */
uint64_t stack_hash(uint32_t pid, uint32_t ht, const uint8_t *frames, Py_ssize_t len);
PyObject *stack_cache_find(const Decoder *d, uint64_t hash, uint32_t pid, uint32_t ht, const uint8_t *frames,
                           Py_ssize_t len);
int stack_cache_add(Decoder *d, uint64_t hash, PyObject *key, PyObject *sid, uint32_t pid, uint32_t ht);
void stack_cache_clear(Decoder *d);

#endif
