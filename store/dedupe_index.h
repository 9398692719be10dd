// DedupeIndex: the store thread's memory of recent producer message ids.
//
// A re-sent publish (same msg_id within store.dedupe_window) must be answered
// `duplicate` with the seq it was first stored as, and stored once. This
// index maps each recent id to that seq and forgets ids first-in first-out,
// by age and by count. It replaces an unordered_map<string, ...> plus a
// deque of key pointers, which cost a node malloc per id, a free per
// eviction and ~4 hash probes per message (8-12% of the store thread).
//
// Layout (all of it reused or freed first-in first-out, no allocation per id):
//   entries_  a ring of 32-byte Entry {key pointer, key length, tag, seq,
//             stored_at}, in arrival order. Entry number n (monotonic,
//             64-bit) is the n-th id ever inserted; the oldest live one is
//             head_no_.
//   blocks_   key bytes, appended to 16 KiB blocks in arrival order (a key
//             longer than a block gets a block of its own); a block is freed
//             when its last live key is forgotten.
//   table_    open addressing, linear probing, power-of-two size, load kept
//             <= 5/8, backward-shift deletion (no tombstones). A slot is
//             8 bytes {tag, entry number mod 2^32}: tag is the top 32 bits
//             of the id's 64-bit hash (never 0: 0 marks an empty slot), and
//             the slot's home bucket is the tag's top bits, so probing and
//             deleting never touch an entry unless the tags match.
//
// Exact: a tag match is confirmed by comparing the key bytes, so two ids
// whose hashes are equal are still two ids (a false "duplicate" would lose a
// message).
//
// Memory per held id (64-bit): a 32 B entry (the ring settles at max_ids,
// or 1/8 above it when commit groups overshoot before their Evict), 8 B per
// slot at load 0.31-0.625 (13-26 B; 21 B at the default 100k ids, 2^18
// slots), and the key bytes (block slack < 1%). dedupe_bench, 100k ids of
// 19-24 bytes: 81 B per id on the heap, allocator overhead included, against
// 159 B for the map + deque. Forgetting ids shrinks the ring and the table
// and frees blocks: an empty index holds ~1.2 KiB.
//
// Reserve: growing is a stop-the-world copy (the ring) and rehash (the
// table), 10-30 ms on this machine's store thread at 64k-131k ids, and
// every message in flight waits for it: at 20,000 msg/s those stalls were
// most of the producers' ack p99 (issue 4). An index made with reserve_ids
// starts with room for that many ids (and 1/8 more, for the commit group
// that overshoots before its Evict) and never shrinks below it, so it never
// resizes while it holds no more than that. The table is allocated zeroed
// by the kernel (calloc), so its pages cost memory only once touched.
//
// Thread-safety: none; one thread (the store thread). Keys are copied: the
// string_view passed to Insert need not outlive the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string_view>

namespace edgespool::store {

class DedupeIndex {
 public:
  // A replacement hash for tests (e.g. one that makes every id collide).
  using HashFn = uint64_t (*)(std::string_view);

  // max_ids: the count bound Evict() enforces (< 2^30; 0 keeps nothing past
  // an Evict, as store.dedupe_max_ids = 0 asks). hash: nullptr
  // for the built-in one, seeded per instance (so a producer cannot choose
  // ids that all land in one probe run). reserve_ids: see Reserve above.
  explicit DedupeIndex(size_t max_ids, HashFn hash = nullptr, size_t reserve_ids = 0);
  ~DedupeIndex();
  DedupeIndex(const DedupeIndex&) = delete;
  DedupeIndex& operator=(const DedupeIndex&) = delete;

  // The seq stored under id, or 0 when unknown (seqs are >= 1).
  uint64_t Find(std::string_view id) const;

  // Remembers a new id. Preconditions: id non-empty and < 4 GiB, seq >= 1,
  // Find(id) == 0 (checked only by assert: a second Insert of a held id
  // leaves two entries, and Find answers either seq until both are gone).
  void Insert(std::string_view id, uint64_t seq, int64_t stored_at_ms);

  // Forgets the oldest ids while the oldest is older than cutoff_ms
  // (stored_at < cutoff_ms) or while more than max_ids are held. Arrival
  // order decides, not stored_at: if the wall clock stepped back, an id
  // inserted after a younger-stamped one is kept until that one goes.
  void Evict(int64_t cutoff_ms);

  // Forgets the n most recently inserted ids (all of them when n > size()),
  // as if they had never been inserted: for a commit group that rolled
  // back. Ids forgotten by Evict are not brought back.
  void PopNewest(size_t n);

  size_t size() const { return static_cast<size_t>(count_); }
  size_t max_ids() const { return max_ids_; }
  // Heap bytes held: ring, table, key blocks (not the object itself).
  size_t memory_bytes() const;
  // Table size in slots (for tests and the bench).
  size_t table_slots() const { return table_mask_ + 1; }

 private:
  struct Entry {
    const char* key;
    uint32_t len;
    uint32_t tag;
    uint64_t seq;
    int64_t stored_at_ms;
  };
  struct Slot {
    uint32_t tag;    // 0: empty
    uint32_t entry;  // entry number mod 2^32 (live numbers span < 2^32)
  };
  struct FreeSlots {
    void operator()(Slot* p) const { std::free(p); }
  };
  struct Block {
    std::unique_ptr<char[]> data;
    size_t capacity;
    size_t used;
    size_t live;  // keys in this block not yet forgotten
  };

  uint32_t TagOf(std::string_view id) const;
  size_t Home(uint32_t tag) const { return tag >> table_shift_; }
  // Offset of an entry (by its slot number) from the oldest, then its place.
  const Entry& EntryAt(uint32_t entry_no) const;
  const char* StoreKey(std::string_view id);
  // Removes the slot that points at entry_no, whose tag is tag.
  void EraseSlot(uint32_t tag, uint32_t entry_no);
  void PlaceSlot(uint32_t tag, uint32_t entry_no);
  void PopOldest();
  void PopNewestOne();
  void ResizeTable(size_t slots);
  void ResizeRing(size_t capacity);
  void GrowRing();
  void MaybeShrink();

  const size_t max_ids_;
  const HashFn hash_fn_;
  const uint64_t seed_;
  // Sizes the ring and the table never shrink below (reserve_ids).
  const size_t floor_ring_;
  const size_t floor_slots_;

  std::unique_ptr<Entry[]> entries_;
  size_t ring_capacity_ = 0;
  size_t ring_head_ = 0;  // index of the oldest entry in entries_
  // Entry number of the oldest entry. It starts just below 2^32 so that
  // every run (and every test) crosses the wrap of the slots' 32-bit
  // numbers within its first few hundred ids.
  uint64_t head_no_ = (uint64_t{1} << 32) - 256;
  uint64_t count_ = 0;

  std::unique_ptr<Slot[], FreeSlots> table_;
  size_t table_mask_ = 0;
  int table_shift_ = 0;  // 32 - log2(slots): home = tag >> shift

  std::deque<Block> blocks_;
  size_t block_bytes_ = 0;  // sum of block capacities
};

}  // namespace edgespool::store
