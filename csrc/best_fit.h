/* The best-fit engine: exact address-ordered best fit over offsets, in flat memory.
 *
 * The specification is src/slaballoc/policies/best_fit.py: for every sequence
 * of operations this engine hands out the same offsets, accepts and refuses
 * the same requests and reports the same blocks.  It knows nothing of Python
 * (the binding in best_fit_type.c turns its status codes into the Python
 * errors) so that the same code can later run inside a shared-memory segment
 * (issue 9).
 *
 * All state lives in ONE region of memory that starts with a bf_heap header
 * and holds no pointers: nodes are named by 32-bit indices into the node
 * array, and the arrays are found by byte offsets from the region's start.
 * The region can therefore be copied, moved (growth copies it into a larger
 * one) or mapped at different addresses by different processes.
 *
 * Layout of the region:
 *
 *   bf_heap header | bf_node nodes[node_slots] | uint32_t hash[hash_slots]
 *
 * One node per block, live or free.  Node 0 is the red-black tree's black
 * sentinel ("nil"); a block index of 0 means "none".
 *
 * - Blocks form a doubly linked list in address order (prev/next), so a freed
 *   block finds its neighbours in O(1) and merges with them at once.
 * - FREE blocks are also in red-black trees ordered by (size, start): one
 *   tree per small size (fewer than BF_BINS alignment units), holding the
 *   free blocks of exactly that size in address order, and one tree for all
 *   larger sizes.  A bitmap says which small-size trees are non-empty.  The
 *   best fit for a small request is the lowest-addressed block of the first
 *   non-empty small size at least as large (a bitmap scan, then a short
 *   descent: each per-size tree is small); otherwise the first node of the
 *   large tree whose size is at least the request.  Either way the exact
 *   address-ordered best fit, in O(log n), with far shorter descents than one
 *   tree over every free block (fewer cache misses once it outgrows them).
 * - An open-addressing hash (linear probing, backward-shift deletion, load
 *   at most 1/2) maps a block's start offset to its node, for release(),
 *   size_of() and resize() by offset in O(1).
 * - Unused node slots are chained through `next` (node_free_list).
 *
 * Every store into the region goes through BF_STORE so that a shared-memory
 * build can log the old value first (undo log for crash consistency).
 *
 * Invariants (checked by bf_check):
 *   the blocks tile [0, capacity) in address order, each of positive size
 *   and a multiple of the alignment; no two free blocks are adjacent;
 *   used == sum of live sizes; live_count/free_count count them; the tree
 *   holds exactly the free blocks, in (size, start) order, as a valid
 *   red-black tree; the hash finds every block by its start.
 */
#ifndef SLABALLOC_BEST_FIT_H
#define SLABALLOC_BEST_FIT_H

#include <stddef.h>
#include <stdint.h>

/* One metadata store.  A shared-memory build defines this to log the old
 * value of `lvalue` before writing it. */
#ifndef BF_STORE
#define BF_STORE(heap, lvalue, value) ((void)(heap), (lvalue) = (value))
#endif

typedef uint64_t bf_off;  /* byte offsets and sizes */
typedef uint32_t bf_idx;  /* node indices; 0 = none (the sentinel) */

#define BF_BINS 512u        /* sizes below this many alignment units get their own tree */
#define BF_NODE_IN_USE 1u   /* the slot holds a block (else it is on the slot free list) */
#define BF_NODE_FREE 2u     /* the block is free (and so in the tree) */
#define BF_NODE_RED 4u      /* red-black colour */

typedef struct {
    bf_off start;  /* first byte of the block */
    bf_off size;   /* bytes, a multiple of the alignment */
    bf_idx prev, next;            /* neighbours in address order (next: slot free list) */
    bf_idx left, right, parent;   /* tree links, meaningful for free blocks only */
    uint32_t flags;               /* BF_NODE_* */
} bf_node;

typedef struct {
    uint64_t capacity;     /* bytes managed: a multiple of the alignment */
    uint64_t alignment;    /* a power of two */
    uint64_t used;         /* bytes in live blocks */
    uint64_t live_count;   /* live blocks */
    uint64_t free_count;   /* free blocks */
    uint64_t region_bytes; /* size of the whole region, header included */
    uint64_t nodes_at;     /* byte offset of the node array in the region */
    uint64_t hash_at;      /* byte offset of the hash array in the region */
    uint32_t node_slots;   /* length of the node array, sentinel included */
    uint32_t node_free_list; /* first unused node slot, 0 if none */
    uint32_t hash_slots;   /* a power of two */
    uint32_t hash_count;   /* occupied hash slots (== blocks) */
    bf_idx root;           /* of the tree of free blocks of BF_BINS units or more */
    bf_idx tail;           /* the highest-addressed block, 0 if none */
    bf_idx head;           /* the block at offset 0, 0 if none (never merged away) */
    uint32_t align_shift;  /* log2(alignment) */
    uint64_t bin_map[BF_BINS / 64]; /* bit u: bin_root[u] is non-empty */
    bf_idx bin_root[BF_BINS];       /* per small size u (units): tree of its free blocks */
} bf_heap;

/* What an operation says.  On any status but BF_OK nothing changed. */
typedef enum {
    BF_OK = 0,
    BF_NO_MEMORY,  /* no free block is large enough (allocate) */
    BF_TOO_LARGE,  /* larger than the capacity: no block can ever be that large */
    BF_BAD_SIZE,   /* zero */
    BF_NOT_LIVE,   /* the offset is not the start of any block */
    BF_FREED,      /* the offset is the start of a free block (double free) */
    BF_NO_ROOM,    /* the region has no spare node or hash slot: grow it, try again */
    BF_MOVE        /* resize: the block would have to move (nothing changed) */
} bf_status;

#define BF_MIN_NODE_SLOTS 8u
#define BF_MAX_NODE_SLOTS (1u << 30)  /* keeps hash_slots (2x, a power of two) in 32 bits */

/* Bytes of a region with `node_slots` node slots (sentinel included), or 0
 * when node_slots is outside [BF_MIN_NODE_SLOTS, BF_MAX_NODE_SLOTS]. */
size_t bf_region_bytes(uint32_t node_slots);
/* Lay out an empty heap of `capacity` bytes (rounded down to `alignment`, a
 * power of two) in a region of bf_region_bytes(node_slots) bytes. */
void bf_init(bf_heap *heap, uint32_t node_slots, uint64_t capacity, uint64_t alignment);
/* Node slots for the region to grow to when an operation said BF_NO_ROOM
 * (0 when it cannot grow further). */
uint32_t bf_grown_slots(const bf_heap *heap);
/* Copy the heap `from` into the separate region `to` of
 * bf_region_bytes(node_slots) bytes, node_slots > from->node_slots.  Node
 * indices do not change.  O(n). */
void bf_grow_into(const bf_heap *from, bf_heap *to, uint32_t node_slots);

/* The operations.  Sizes are validated here too (0 and > capacity).
 * bf_allocate also names the new block's node (stable while it is live). */
bf_status bf_allocate(bf_heap *heap, bf_off size, bf_off *offset, bf_idx *node);
bf_status bf_release(bf_heap *heap, bf_off offset, bf_off *size);
/* Release the block of `node`, which the caller knows is live; its size. */
bf_off bf_release_node(bf_heap *heap, bf_idx node);
/* The node of the block (live or free) starting at `offset`, 0 if none.  O(1). */
bf_idx bf_find(const bf_heap *heap, bf_off offset);
bf_status bf_resize(bf_heap *heap, bf_off offset, bf_off size);
bf_status bf_size_of(const bf_heap *heap, bf_off offset, bf_off *size);
/* BF_NOT_LIVE, BF_FREED or BF_OK for the block starting at `offset`. */
bf_status bf_classify(const bf_heap *heap, bf_off offset);

/* Facts. */
bf_off bf_largest_free(const bf_heap *heap);
/* Start of the top block (the free block reaching the end), else capacity. */
bf_off bf_top(const bf_heap *heap);
/* Walking every block in address order: first, then next until 0. */
bf_idx bf_first(const bf_heap *heap);
bf_idx bf_next(const bf_heap *heap, bf_idx node);
const bf_node *bf_node_at(const bf_heap *heap, bf_idx node);

/* What bf_check found wrong; BF_CHECK_OK when all is well. */
typedef enum {
    BF_CHECK_OK = 0,
    BF_CHECK_TILING,      /* blocks do not tile [0, capacity) in address order */
    BF_CHECK_BLOCK,       /* a block is empty or not aligned */
    BF_CHECK_ADJACENT,    /* two free blocks are adjacent */
    BF_CHECK_COUNTS,      /* used / live / free counts disagree with the blocks */
    BF_CHECK_TREE,        /* the free trees are not valid red-black (size, start) trees of exactly the free blocks */
    BF_CHECK_HASH,        /* the start index does not find every block */
    BF_CHECK_LINKS        /* address links or the slot free list are broken */
} bf_check_status;

/* Verify every invariant; O(n).  `where` gets the offset of the block at fault. */
bf_check_status bf_check(const bf_heap *heap, bf_off *where);

#endif
