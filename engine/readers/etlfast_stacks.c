/* The known-stack cache of the C walk: a hash table in front of the
 * reader's dict of raw stacks (Decoder.raw_stacks, (pid, header type, frame
 * bytes) -> stack id), so that a StackWalk record whose frames were seen
 * before costs no Python objects: no key tuple, no bytes copy, no SipHash.
 *
 * The dict stays the truth.  The Python side is the only one that adds to
 * it (the first time a stack is seen, EtlReader._decode resolves its
 * frames), and it never removes or changes an entry, so an entry copied
 * here never goes stale.  A miss here falls back to the dict (etlfast_walk.c,
 * take_stack); a hit there is copied here.
 *
 * Measured (callgrind, 50k-event busy-2proc .etl): building the key and the
 * dict lookup were about a quarter of the whole .etl reading.
 */
#include "etlfast_walk.h"

#include <stdlib.h>
#include <string.h>

#define FIRST_CAPACITY 256 /* a power of two */

/* A 64-bit hash of a stack's identity: the frame bytes, then pid and header type. */
uint64_t stack_hash(uint32_t pid, uint32_t ht, const uint8_t *frames, Py_ssize_t len)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)len;
    Py_ssize_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, frames + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, frames + i, (size_t)(len - i));
    h = (h ^ tail ^ ((uint64_t)pid << 8) ^ ht) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

static int same_stack(const stack_entry *e, uint64_t hash, uint32_t pid, uint32_t ht, const uint8_t *frames,
                      Py_ssize_t len)
{
    return e->hash == hash && e->pid == pid && e->ht == ht && e->len == len && memcmp(e->frames, frames, (size_t)len) == 0;
}

PyObject *stack_cache_find(const Decoder *d, uint64_t hash, uint32_t pid, uint32_t ht, const uint8_t *frames,
                           Py_ssize_t len)
{
    if (d->stacks == NULL)
        return NULL;
    size_t mask = d->stack_capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        const stack_entry *e = &d->stacks[i];
        if (e->key == NULL)
            return NULL;
        if (same_stack(e, hash, pid, ht, frames, len))
            return e->sid;
    }
}

/* Put `e` (whose references the table takes over) in the table `stacks`. */
static void place(stack_entry *stacks, size_t capacity, const stack_entry *e)
{
    size_t mask = capacity - 1;
    size_t i = (size_t)e->hash & mask;
    while (stacks[i].key != NULL)
        i = (i + 1) & mask;
    stacks[i] = *e;
}

static int grow(Decoder *d)
{
    size_t capacity = d->stacks == NULL ? FIRST_CAPACITY : 2 * d->stack_capacity;
    stack_entry *stacks = calloc(capacity, sizeof(stack_entry));
    if (stacks == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; d->stacks != NULL && i < d->stack_capacity; i++) {
        if (d->stacks[i].key != NULL)
            place(stacks, capacity, &d->stacks[i]);
    }
    free(d->stacks);
    d->stacks = stacks;
    d->stack_capacity = capacity;
    return 0;
}

int stack_cache_add(Decoder *d, uint64_t hash, PyObject *key, PyObject *sid, uint32_t pid, uint32_t ht)
{
    /* the key is the tuple (pid, header type, frame bytes) that found `sid` */
    PyObject *bytes = PyTuple_GET_ITEM(key, 2);
    if (!PyBytes_CheckExact(bytes))
        return 0; /* not a key this table can hold: the dict keeps answering */
    if ((d->stack_count + 1) * 2 > d->stack_capacity && grow(d) < 0)
        return -1;
    stack_entry e = {hash, pid, ht, PyBytes_GET_SIZE(bytes), (const uint8_t *)PyBytes_AS_STRING(bytes),
                     Py_NewRef(key), Py_NewRef(sid)};
    place(d->stacks, d->stack_capacity, &e);
    d->stack_count++;
    return 0;
}

void stack_cache_clear(Decoder *d)
{
    for (size_t i = 0; d->stacks != NULL && i < d->stack_capacity; i++) {
        Py_XDECREF(d->stacks[i].key);
        Py_XDECREF(d->stacks[i].sid);
    }
    free(d->stacks);
    d->stacks = NULL;
    d->stack_capacity = d->stack_count = 0;
}
