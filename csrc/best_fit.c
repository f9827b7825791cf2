/* The best-fit engine; see best_fit.h for the layout and the invariants.
 *
 * No CPython API here: the engine is plain C over one flat region, so that
 * the shared heap (issue 9) can run it inside a shared-memory segment.
 */
#include "best_fit.h"

#include <string.h>

/* -- the region ------------------------------------------------------------------ */

static inline bf_node *
nodes_of(const bf_heap *heap)
{
    return (bf_node *)((char *)heap + heap->nodes_at);
}

static inline uint32_t *
hash_of(const bf_heap *heap)
{
    return (uint32_t *)((char *)heap + heap->hash_at);
}

#define SET(lvalue, value) BF_STORE(heap, lvalue, value)

static uint32_t
hash_slots_for(uint32_t node_slots)
{
    /* At least twice the node slots, so the load stays at most 1/2 and a
     * block always finds a hash slot without a separate growth check. */
    uint32_t slots = 1;
    while (slots < 2u * node_slots) {
        slots <<= 1;
    }
    return slots;
}

static size_t
nodes_at(void)
{
    /* The header's size, rounded up to the node's alignment (8). */
    return (sizeof(bf_heap) + 7u) & ~(size_t)7u;
}

size_t
bf_region_bytes(uint32_t node_slots)
{
    if (node_slots < BF_MIN_NODE_SLOTS || node_slots > BF_MAX_NODE_SLOTS) {
        return 0;
    }
    uint64_t bytes = (uint64_t)nodes_at() + (uint64_t)node_slots * sizeof(bf_node) +
                     (uint64_t)hash_slots_for(node_slots) * sizeof(uint32_t);
    if (bytes > (uint64_t)SIZE_MAX) {
        return 0;
    }
    return (size_t)bytes;
}

static void
lay_out(bf_heap *heap, uint32_t node_slots)
{
    SET(heap->node_slots, node_slots);
    SET(heap->hash_slots, hash_slots_for(node_slots));
    SET(heap->nodes_at, (uint64_t)nodes_at());
    SET(heap->hash_at, (uint64_t)(nodes_at() + (size_t)node_slots * sizeof(bf_node)));
    SET(heap->region_bytes, (uint64_t)bf_region_bytes(node_slots));
}

/* Chain the node slots [first, end) onto the slot free list, lowest first. */
static void
chain_unused(bf_heap *heap, uint32_t first, uint32_t end)
{
    bf_node *nd = nodes_of(heap);
    for (uint32_t i = end; i-- > first;) {
        SET(nd[i].flags, 0u);
        SET(nd[i].next, heap->node_free_list);
        SET(heap->node_free_list, i);
    }
}

/* -- the start index: open addressing, linear probing -------------------------------- */

static inline uint32_t
home_of(const bf_heap *heap, bf_off start)
{
    /* Fibonacci hashing; the high half mixes every bit of the offset. */
    return (uint32_t)((start * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (heap->hash_slots - 1u);
}

/* The hash slot holding the block that starts at `start`, or -1. */
static int64_t
slot_of(const bf_heap *heap, bf_off start)
{
    const uint32_t *table = hash_of(heap);
    const bf_node *nd = nodes_of(heap);
    uint32_t mask = heap->hash_slots - 1u;
    for (uint32_t i = home_of(heap, start);; i = (i + 1u) & mask) {
        uint32_t node = table[i];
        if (node == 0) {
            return -1;
        }
        if (nd[node].start == start) {
            return (int64_t)i;
        }
    }
}

bf_idx
bf_find(const bf_heap *heap, bf_off start)
{
    int64_t slot = slot_of(heap, start);
    return slot < 0 ? 0 : hash_of(heap)[slot];
}

static void
hash_insert(bf_heap *heap, bf_idx node)
{
    uint32_t *table = hash_of(heap);
    uint32_t mask = heap->hash_slots - 1u;
    uint32_t i = home_of(heap, nodes_of(heap)[node].start);
    while (table[i] != 0) {
        i = (i + 1u) & mask;
    }
    SET(table[i], node);
    SET(heap->hash_count, heap->hash_count + 1u);
}

/* Empty slot `hole`, shifting back the entries after it that probed past it
 * (so that lookups never need tombstones). */
static void
hash_delete_slot(bf_heap *heap, uint32_t hole)
{
    uint32_t *table = hash_of(heap);
    const bf_node *nd = nodes_of(heap);
    uint32_t mask = heap->hash_slots - 1u;
    for (uint32_t j = (hole + 1u) & mask; table[j] != 0; j = (j + 1u) & mask) {
        uint32_t home = home_of(heap, nd[table[j]].start);
        /* The entry at j may fill the hole unless its home lies in (hole, j]. */
        int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            SET(table[hole], table[j]);
            hole = j;
        }
    }
    SET(table[hole], 0u);
    SET(heap->hash_count, heap->hash_count - 1u);
}

static void
hash_delete(bf_heap *heap, bf_idx node)
{
    int64_t slot = slot_of(heap, nodes_of(heap)[node].start);
    /* The node is in the index: every block is, by invariant. */
    hash_delete_slot(heap, (uint32_t)slot);
}

/* -- the free tree: red-black, keyed by (size, start), sentinel 0 -------------------- */

static inline int
key_less(const bf_node *nd, bf_idx a, bf_idx b)
{
    return nd[a].size < nd[b].size || (nd[a].size == nd[b].size && nd[a].start < nd[b].start);
}

static inline int
is_red(const bf_node *nd, bf_idx x)
{
    return (nd[x].flags & BF_NODE_RED) != 0;
}

static inline void
paint(bf_heap *heap, bf_idx x, int red)
{
    bf_node *nd = nodes_of(heap);
    uint32_t flags = red ? (nd[x].flags | BF_NODE_RED) : (nd[x].flags & ~BF_NODE_RED);
    if (flags != nd[x].flags) {
        SET(nd[x].flags, flags);
    }
}

/* The tree that holds (or would hold) free blocks of `size` bytes. */
static inline bf_idx *
root_for(bf_heap *heap, bf_off size)
{
    bf_off units = size >> heap->align_shift;
    return units < BF_BINS ? &heap->bin_root[units] : &heap->root;
}

static inline int
lowest_bit(uint64_t word)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(word);
#else
    int bit = 0;
    while (!(word & 1u)) {
        word >>= 1;
        bit++;
    }
    return bit;
#endif
}

static inline int
highest_bit(uint64_t word)
{
#if defined(__GNUC__) || defined(__clang__)
    return 63 - __builtin_clzll(word);
#else
    int bit = 0;
    while (word >>= 1) {
        bit++;
    }
    return bit;
#endif
}

/* Keep bin_map's bit for the small-size tree at `root` in step with it. */
static void
update_bin_bit(bf_heap *heap, const bf_idx *root)
{
    if (root == &heap->root) {
        return;
    }
    size_t units = (size_t)(root - heap->bin_root);
    uint64_t bit = UINT64_C(1) << (units & 63u);
    uint64_t word = heap->bin_map[units >> 6];
    uint64_t updated = *root != 0 ? (word | bit) : (word & ~bit);
    if (updated != word) {
        SET(heap->bin_map[units >> 6], updated);
    }
}

/* Make `child` take the place of `old` under old's parent. */
static void
replace_child(bf_heap *heap, bf_idx *root, bf_idx old, bf_idx child)
{
    bf_node *nd = nodes_of(heap);
    bf_idx parent = nd[old].parent;
    if (parent == 0) {
        SET(*root, child);
    }
    else if (nd[parent].left == old) {
        SET(nd[parent].left, child);
    }
    else {
        SET(nd[parent].right, child);
    }
    SET(nd[child].parent, parent); /* may write the sentinel's parent, as CLRS does */
}

/* Red-black rebalancing is mirror-symmetric: each step is written once, for a
 * side (LEFT or RIGHT), and its mirror image is the same code with the other side. */
enum { LEFT = 0, RIGHT = 1 };

static inline bf_idx *
link(bf_node *nd, bf_idx x, int side)
{
    return side == LEFT ? &nd[x].left : &nd[x].right;
}

/* Turn x down towards `side`: its child on the other side takes its place
 * (rotate(LEFT) is the textbook left rotation). */
static void
rotate(bf_heap *heap, bf_idx *root, bf_idx x, int side)
{
    bf_node *nd = nodes_of(heap);
    bf_idx y = *link(nd, x, !side);
    bf_idx inner = *link(nd, y, side);
    SET(*link(nd, x, !side), inner);
    if (inner != 0) {
        SET(nd[inner].parent, x);
    }
    replace_child(heap, root, x, y);
    SET(*link(nd, y, side), x);
    SET(nd[x].parent, y);
}

static void
tree_insert(bf_heap *heap, bf_idx z)
{
    bf_node *nd = nodes_of(heap);
    bf_idx *root = root_for(heap, nd[z].size);
    bf_idx parent = 0;
    for (bf_idx x = *root; x != 0; x = key_less(nd, z, x) ? nd[x].left : nd[x].right) {
        parent = x;
    }
    SET(nd[z].parent, parent);
    SET(nd[z].left, 0u);
    SET(nd[z].right, 0u);
    SET(nd[z].flags, nd[z].flags | BF_NODE_FREE | BF_NODE_RED);
    if (parent == 0) {
        SET(*root, z);
        update_bin_bit(heap, root);
    }
    else if (key_less(nd, z, parent)) {
        SET(nd[parent].left, z);
    }
    else {
        SET(nd[parent].right, z);
    }
    /* Restore "no red node has a red child". */
    while (is_red(nd, nd[z].parent)) {
        bf_idx p = nd[z].parent, g = nd[p].parent;
        int side = p == nd[g].left ? LEFT : RIGHT; /* p's side of g */
        bf_idx uncle = *link(nd, g, !side);
        if (is_red(nd, uncle)) {
            paint(heap, p, 0);
            paint(heap, uncle, 0);
            paint(heap, g, 1);
            z = g;
            continue;
        }
        if (z == *link(nd, p, !side)) {
            z = p;
            rotate(heap, root, z, side);
            p = nd[z].parent;
        }
        paint(heap, p, 0);
        paint(heap, g, 1);
        rotate(heap, root, g, !side);
    }
    paint(heap, *root, 0);
}

static bf_idx
tree_minimum(const bf_node *nd, bf_idx x)
{
    while (nd[x].left != 0) {
        x = nd[x].left;
    }
    return x;
}

static void
tree_remove(bf_heap *heap, bf_idx z)
{
    bf_node *nd = nodes_of(heap);
    bf_idx *root = root_for(heap, nd[z].size);
    bf_idx y = z, x;
    int removed_red = is_red(nd, y);
    if (nd[z].left == 0) {
        x = nd[z].right;
        replace_child(heap, root, z, x);
    }
    else if (nd[z].right == 0) {
        x = nd[z].left;
        replace_child(heap, root, z, x);
    }
    else {
        y = tree_minimum(nd, nd[z].right);
        removed_red = is_red(nd, y);
        x = nd[y].right;
        if (nd[y].parent == z) {
            SET(nd[x].parent, y);
        }
        else {
            replace_child(heap, root, y, x);
            SET(nd[y].right, nd[z].right);
            SET(nd[nd[y].right].parent, y);
        }
        replace_child(heap, root, z, y);
        SET(nd[y].left, nd[z].left);
        SET(nd[nd[y].left].parent, y);
        paint(heap, y, is_red(nd, z));
    }
    SET(nd[z].flags, nd[z].flags & ~(BF_NODE_FREE | BF_NODE_RED));
    update_bin_bit(heap, root);
    if (removed_red) {
        return;
    }
    /* x carries an extra black: push it up or resolve it. */
    while (x != *root && !is_red(nd, x)) {
        bf_idx p = nd[x].parent;
        int side = x == nd[p].left ? LEFT : RIGHT; /* x's side of p */
        bf_idx w = *link(nd, p, !side);            /* x's sibling */
        if (is_red(nd, w)) {
            paint(heap, w, 0);
            paint(heap, p, 1);
            rotate(heap, root, p, side);
            w = *link(nd, p, !side);
        }
        if (!is_red(nd, nd[w].left) && !is_red(nd, nd[w].right)) {
            paint(heap, w, 1);
            x = p;
            continue;
        }
        if (!is_red(nd, *link(nd, w, !side))) {
            paint(heap, *link(nd, w, side), 0);
            paint(heap, w, 1);
            rotate(heap, root, w, !side);
            w = *link(nd, p, !side);
        }
        paint(heap, w, is_red(nd, p));
        paint(heap, p, 0);
        paint(heap, *link(nd, w, !side), 0);
        rotate(heap, root, p, side);
        x = *root;
    }
    paint(heap, x, 0);
}

/* The free block of least (size, start) with size >= need: the exact
 * address-ordered best fit.  0 if none. */
static bf_idx
best_fit(const bf_heap *heap, bf_off need)
{
    const bf_node *nd = nodes_of(heap);
    bf_off units = need >> heap->align_shift;
    if (units < BF_BINS) {
        /* The first non-empty small size >= need; its lowest address. */
        size_t word = (size_t)(units >> 6);
        uint64_t bits = heap->bin_map[word] & (~UINT64_C(0) << (units & 63u));
        while (bits == 0 && ++word < BF_BINS / 64) {
            bits = heap->bin_map[word];
        }
        if (bits != 0) {
            bf_idx x = heap->bin_root[word * 64 + (size_t)lowest_bit(bits)];
            while (nd[x].left != 0) {
                x = nd[x].left;
            }
            return x;
        }
    }
    bf_idx best = 0;
    for (bf_idx x = heap->root; x != 0;) {
        if (nd[x].size >= need) {
            best = x;
            x = nd[x].left;
        }
        else {
            x = nd[x].right;
        }
    }
    return best;
}

/* -- blocks -------------------------------------------------------------------------- */

/* A new free block [start, start + size) right after `before` in address order. */
static bf_idx
new_free_block_after(bf_heap *heap, bf_idx before, bf_off start, bf_off size)
{
    bf_node *nd = nodes_of(heap);
    bf_idx m = heap->node_free_list; /* the caller checked that there is one */
    SET(heap->node_free_list, nd[m].next);
    SET(nd[m].start, start);
    SET(nd[m].size, size);
    SET(nd[m].flags, BF_NODE_IN_USE);
    SET(nd[m].prev, before);
    SET(nd[m].next, nd[before].next);
    if (nd[before].next != 0) {
        SET(nd[nd[before].next].prev, m);
    }
    else {
        SET(heap->tail, m);
    }
    SET(nd[before].next, m);
    hash_insert(heap, m);
    tree_insert(heap, m);
    SET(heap->free_count, heap->free_count + 1u);
    return m;
}

/* Forget block `r` (not in the tree), which has a block before it. */
static void
drop_block(bf_heap *heap, bf_idx r)
{
    bf_node *nd = nodes_of(heap);
    hash_delete(heap, r);
    SET(nd[nd[r].prev].next, nd[r].next);
    if (nd[r].next != 0) {
        SET(nd[nd[r].next].prev, nd[r].prev);
    }
    else {
        SET(heap->tail, nd[r].prev);
    }
    SET(nd[r].flags, 0u);
    SET(nd[r].next, heap->node_free_list);
    SET(heap->node_free_list, r);
}

/* Move the start of free block `r` (out of the tree) to `start`, keeping its end. */
static void
move_start(bf_heap *heap, bf_idx r, bf_off start)
{
    bf_node *nd = nodes_of(heap);
    bf_off end = nd[r].start + nd[r].size;
    hash_delete(heap, r);
    SET(nd[r].start, start);
    SET(nd[r].size, end - start);
    hash_insert(heap, r);
}

static inline bf_off
round_up(const bf_heap *heap, bf_off size)
{
    /* size <= capacity, a multiple of the alignment: cannot overflow. */
    bf_off mask = heap->alignment - 1u;
    return (size + mask) & ~mask;
}

static bf_status
check_size(const bf_heap *heap, bf_off size)
{
    if (size == 0) {
        return BF_BAD_SIZE;
    }
    return size > heap->capacity ? BF_TOO_LARGE : BF_OK;
}

/* -- the operations ------------------------------------------------------------------ */

void
bf_init(bf_heap *heap, uint32_t node_slots, uint64_t capacity, uint64_t alignment)
{
    memset(heap, 0, nodes_at());
    lay_out(heap, node_slots);
    SET(heap->alignment, alignment);
    SET(heap->align_shift, (uint32_t)lowest_bit(alignment));
    SET(heap->capacity, capacity - capacity % alignment);
    memset(nodes_of(heap), 0, (size_t)node_slots * sizeof(bf_node));
    memset(hash_of(heap), 0, (size_t)heap->hash_slots * sizeof(uint32_t));
    chain_unused(heap, 1u, node_slots);
    if (heap->capacity == 0) {
        return;
    }
    bf_node *nd = nodes_of(heap);
    bf_idx first = heap->node_free_list;
    SET(heap->node_free_list, nd[first].next);
    SET(nd[first].start, 0u);
    SET(nd[first].size, heap->capacity);
    SET(nd[first].prev, 0u);
    SET(nd[first].next, 0u);
    SET(nd[first].flags, BF_NODE_IN_USE);
    SET(heap->head, first);
    SET(heap->tail, first);
    hash_insert(heap, first);
    tree_insert(heap, first);
    SET(heap->free_count, 1u);
}

uint32_t
bf_grown_slots(const bf_heap *heap)
{
    uint64_t slots = (uint64_t)heap->node_slots + heap->node_slots / 2u;
    if (slots > BF_MAX_NODE_SLOTS) {
        slots = BF_MAX_NODE_SLOTS;
    }
    return slots > heap->node_slots ? (uint32_t)slots : 0u;
}

void
bf_grow_into(const bf_heap *from, bf_heap *heap, uint32_t node_slots)
{
    memcpy(heap, from, nodes_at());
    lay_out(heap, node_slots);
    memcpy(nodes_of(heap), nodes_of(from), (size_t)from->node_slots * sizeof(bf_node));
    memset(hash_of(heap), 0, (size_t)heap->hash_slots * sizeof(uint32_t));
    SET(heap->hash_count, 0u);
    chain_unused(heap, from->node_slots, node_slots);
    /* Slots unused in `from` stay chained after the new ones. */
    bf_node *nd = nodes_of(heap);
    for (bf_idx x = heap->head; x != 0; x = nd[x].next) {
        hash_insert(heap, x);
    }
}

bf_status
bf_allocate(bf_heap *heap, bf_off size, bf_off *offset, bf_idx *node)
{
    bf_status status = check_size(heap, size);
    if (status != BF_OK) {
        return status;
    }
    bf_off need = round_up(heap, size);
    bf_idx n = best_fit(heap, need);
    if (n == 0) {
        return BF_NO_MEMORY;
    }
    bf_node *nd = nodes_of(heap);
    int split = nd[n].size > need;
    if (split && heap->node_free_list == 0) {
        return BF_NO_ROOM;
    }
    tree_remove(heap, n);
    SET(heap->free_count, heap->free_count - 1u);
    if (split) {
        /* Carve from the low end; the rest stays free after it. */
        bf_off rest = nd[n].size - need;
        SET(nd[n].size, need);
        new_free_block_after(heap, n, nd[n].start + need, rest);
    }
    SET(heap->used, heap->used + need);
    SET(heap->live_count, heap->live_count + 1u);
    *offset = nd[n].start;
    *node = n;
    return BF_OK;
}

bf_status
bf_classify(const bf_heap *heap, bf_off offset)
{
    bf_idx n = bf_find(heap, offset);
    if (n == 0) {
        return BF_NOT_LIVE;
    }
    return (nodes_of(heap)[n].flags & BF_NODE_FREE) ? BF_FREED : BF_OK;
}

bf_status
bf_size_of(const bf_heap *heap, bf_off offset, bf_off *size)
{
    bf_idx n = bf_find(heap, offset);
    if (n == 0) {
        return BF_NOT_LIVE;
    }
    const bf_node *node = &nodes_of(heap)[n];
    if (node->flags & BF_NODE_FREE) {
        return BF_FREED;
    }
    *size = node->size;
    return BF_OK;
}

bf_status
bf_release(bf_heap *heap, bf_off offset, bf_off *size)
{
    bf_idx n = bf_find(heap, offset);
    if (n == 0) {
        return BF_NOT_LIVE;
    }
    if (nodes_of(heap)[n].flags & BF_NODE_FREE) {
        return BF_FREED;
    }
    *size = bf_release_node(heap, n);
    return BF_OK;
}

/* Merge the adjacent blocks `lower` and `upper`, one of which (`free_one`) is
 * free and leaves its tree: `lower` keeps its start and takes `upper`'s bytes,
 * and `upper`'s node is forgotten.  Returns `lower`. */
static bf_idx
absorb(bf_heap *heap, bf_idx lower, bf_idx upper, bf_idx free_one)
{
    bf_node *nd = nodes_of(heap);
    tree_remove(heap, free_one);
    SET(heap->free_count, heap->free_count - 1u);
    SET(nd[lower].size, nd[lower].size + nd[upper].size);
    drop_block(heap, upper);
    return lower;
}

bf_off
bf_release_node(bf_heap *heap, bf_idx n)
{
    bf_node *nd = nodes_of(heap);
    bf_off size = nd[n].size;
    SET(heap->used, heap->used - size);
    SET(heap->live_count, heap->live_count - 1u);
    bf_idx left = nd[n].prev;
    if (left != 0 && (nd[left].flags & BF_NODE_FREE)) {
        n = absorb(heap, left, n, left); /* into the free block before: it keeps its start */
    }
    bf_idx right = nd[n].next;
    if (right != 0 && (nd[right].flags & BF_NODE_FREE)) {
        absorb(heap, n, right, right);
    }
    tree_insert(heap, n);
    SET(heap->free_count, heap->free_count + 1u);
    return size;
}

bf_status
bf_resize(bf_heap *heap, bf_off offset, bf_off size)
{
    bf_off old;
    bf_status status = bf_size_of(heap, offset, &old);
    if (status != BF_OK) {
        return status;
    }
    status = check_size(heap, size);
    if (status != BF_OK) {
        return status;
    }
    bf_off need = round_up(heap, size);
    bf_node *nd = nodes_of(heap);
    bf_idx n = bf_find(heap, offset);
    bf_idx right = nd[n].next;
    int right_free = right != 0 && (nd[right].flags & BF_NODE_FREE);
    if (need < old) {
        /* The tail becomes free, merged with a free block after it. */
        if (right_free) {
            tree_remove(heap, right);
            move_start(heap, right, offset + need);
            tree_insert(heap, right);
        }
        else {
            if (heap->node_free_list == 0) {
                return BF_NO_ROOM;
            }
            SET(nd[n].size, need);
            new_free_block_after(heap, n, offset + need, old - need);
        }
    }
    else if (need > old) {
        if (!right_free || nd[right].size < need - old) {
            return BF_MOVE;
        }
        tree_remove(heap, right);
        if (nd[right].size > need - old) {
            move_start(heap, right, offset + need);
            tree_insert(heap, right);
        }
        else {
            SET(heap->free_count, heap->free_count - 1u);
            drop_block(heap, right);
        }
    }
    SET(nd[n].size, need);
    SET(heap->used, heap->used - old + need);
    return BF_OK;
}

/* -- facts --------------------------------------------------------------------------- */

bf_off
bf_largest_free(const bf_heap *heap)
{
    const bf_node *nd = nodes_of(heap);
    bf_idx x = heap->root;
    if (x == 0) {
        for (size_t word = BF_BINS / 64; word-- > 0;) {
            if (heap->bin_map[word] != 0) {
                return (bf_off)(word * 64 + (size_t)highest_bit(heap->bin_map[word]))
                       << heap->align_shift;
            }
        }
        return 0;
    }
    while (nd[x].right != 0) {
        x = nd[x].right;
    }
    return nd[x].size;
}

bf_off
bf_top(const bf_heap *heap)
{
    const bf_node *nd = nodes_of(heap);
    bf_idx t = heap->tail;
    return (t != 0 && (nd[t].flags & BF_NODE_FREE)) ? nd[t].start : heap->capacity;
}

bf_idx
bf_first(const bf_heap *heap)
{
    return heap->head;
}

bf_idx
bf_next(const bf_heap *heap, bf_idx node)
{
    return nodes_of(heap)[node].next;
}

const bf_node *
bf_node_at(const bf_heap *heap, bf_idx node)
{
    return &nodes_of(heap)[node];
}

/* -- the checker --------------------------------------------------------------------- */

/* Black height of the subtree at x, or -1 when it breaks a rule; counts its nodes.
 * `tree` is the small size (units) every node must have, or BF_BINS: the large tree. */
static int
check_subtree(const bf_heap *heap, size_t tree, bf_idx x, bf_idx parent, uint64_t *count,
              int depth, bf_off *where)
{
    const bf_node *nd = nodes_of(heap);
    if (x == 0) {
        return 1;
    }
    *where = nd[x].start;
    if (depth > 128 || x >= heap->node_slots || nd[x].parent != parent ||
        (tree < BF_BINS ? nd[x].size >> heap->align_shift != tree
                        : nd[x].size >> heap->align_shift < BF_BINS) ||
        (nd[x].flags & (BF_NODE_IN_USE | BF_NODE_FREE)) != (BF_NODE_IN_USE | BF_NODE_FREE) ||
        (nd[x].left != 0 && (nd[x].left >= heap->node_slots || !key_less(nd, nd[x].left, x))) ||
        (nd[x].right != 0 && (nd[x].right >= heap->node_slots || !key_less(nd, x, nd[x].right))) ||
        (is_red(nd, x) && (is_red(nd, nd[x].left) || is_red(nd, nd[x].right)))) {
        return -1;
    }
    ++*count;
    int left = check_subtree(heap, tree, nd[x].left, x, count, depth + 1, where);
    if (left < 0) {
        return -1;
    }
    int right = check_subtree(heap, tree, nd[x].right, x, count, depth + 1, where);
    if (right != left) {
        *where = nd[x].start;
        return -1;
    }
    return left + !is_red(nd, x);
}

bf_check_status
bf_check(const bf_heap *heap, bf_off *where)
{
    const bf_node *nd = nodes_of(heap);
    bf_off expected = 0, used = 0;
    uint64_t live = 0, free = 0, blocks = 0;
    bf_idx previous = 0;
    *where = 0;
    if (heap->capacity == 0 ? heap->head != 0 : heap->head == 0) {
        return BF_CHECK_LINKS;
    }
    for (bf_idx x = heap->head; x != 0; previous = x, x = nd[x].next) {
        *where = expected;
        if (x >= heap->node_slots || ++blocks >= heap->node_slots || nd[x].prev != previous ||
            !(nd[x].flags & BF_NODE_IN_USE)) {
            return BF_CHECK_LINKS;
        }
        if (nd[x].start != expected) {
            return BF_CHECK_TILING;
        }
        if (nd[x].size == 0 || nd[x].start % heap->alignment || nd[x].size % heap->alignment ||
            nd[x].size > heap->capacity - nd[x].start) {
            return BF_CHECK_BLOCK;
        }
        int is_free = (nd[x].flags & BF_NODE_FREE) != 0;
        if (is_free && previous != 0 && (nd[previous].flags & BF_NODE_FREE)) {
            return BF_CHECK_ADJACENT;
        }
        if (is_free) {
            ++free;
        }
        else {
            ++live;
            used += nd[x].size;
        }
        if (bf_find(heap, nd[x].start) != x) {
            return BF_CHECK_HASH;
        }
        expected += nd[x].size;
    }
    *where = expected;
    if (expected != heap->capacity || heap->tail != previous) {
        return BF_CHECK_TILING;
    }
    if (used != heap->used || live != heap->live_count || free != heap->free_count) {
        return BF_CHECK_COUNTS;
    }
    if (heap->hash_count != blocks) {
        return BF_CHECK_HASH;
    }
    uint64_t in_trees = 0;
    for (size_t tree = 0; tree <= BF_BINS; tree++) {
        /* The small-size trees, then the large one (tree == BF_BINS). */
        bf_idx root = tree < BF_BINS ? heap->bin_root[tree] : heap->root;
        uint64_t in_tree = 0;
        if (tree < BF_BINS && (root != 0) != ((heap->bin_map[tree >> 6] >> (tree & 63u)) & 1u)) {
            return BF_CHECK_TREE;
        }
        if ((root != 0 && (is_red(nd, root) || nd[root].parent != 0)) ||
            check_subtree(heap, tree, root, 0, &in_tree, 0, where) < 0) {
            return BF_CHECK_TREE;
        }
        in_trees += in_tree;
    }
    if (in_trees != free) {
        return BF_CHECK_TREE;
    }
    uint64_t unused = 0;
    for (bf_idx x = heap->node_free_list; x != 0; x = nd[x].next) {
        if (x >= heap->node_slots || ++unused >= heap->node_slots || nd[x].flags != 0) {
            return BF_CHECK_LINKS;
        }
    }
    if (unused + blocks + 1u != heap->node_slots) {
        return BF_CHECK_LINKS;
    }
    return BF_CHECK_OK;
}
