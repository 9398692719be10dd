#include "store/dedupe_index.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

namespace edgespool::store {
namespace {

// Key bytes are appended to blocks of this size: big enough that a block
// holds ~600 ids of ~24 bytes (one malloc and one free per 600 ids), small
// enough that the partly forgotten oldest block wastes little.
constexpr size_t kBlockBytes = 16 << 10;
constexpr size_t kMinSlots = 16;
constexpr size_t kMinRing = 16;

// 64x64 -> 128-bit multiply, low half in *a, high half in *b.
#if defined(__SIZEOF_INT128__)
inline void Mum(uint64_t* a, uint64_t* b) {
  __uint128_t r = static_cast<__uint128_t>(*a) * *b;
  *a = static_cast<uint64_t>(r);
  *b = static_cast<uint64_t>(r >> 64);
}
#else
// 32-bit targets (armhf) have no __uint128_t: the same product from halves.
inline void Mum(uint64_t* a, uint64_t* b) {
  uint64_t ha = *a >> 32, hb = *b >> 32, la = static_cast<uint32_t>(*a),
           lb = static_cast<uint32_t>(*b);
  uint64_t rh = ha * hb, rm0 = ha * lb, rm1 = hb * la, rl = la * lb;
  uint64_t t = rl + (rm0 << 32);
  uint64_t carry = t < rl;
  uint64_t lo = t + (rm1 << 32);
  carry += lo < t;
  *a = lo;
  *b = rh + (rm0 >> 32) + (rm1 >> 32) + carry;
}
#endif

inline uint64_t Mix(uint64_t a, uint64_t b) {
  Mum(&a, &b);
  return a ^ b;
}

inline uint64_t Read8(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint64_t Read4(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

constexpr uint64_t kSecret[4] = {0x2d358dccaa6c78a5ull, 0x8bb84b93962eacc9ull,
                                 0x4b33a62ed433d4a3ull, 0x4d5a2da51de1aa47ull};

// wyhash's construction (public domain): 16 bytes per 128-bit multiply,
// ids of <= 16 bytes in one step. Ids here are ~20-40 bytes, where it runs
// at ~3-6 ns; std::hash (murmur) takes about twice that. Quality matters
// only for speed: every hit is confirmed by comparing bytes.
uint64_t HashBytes(std::string_view s, uint64_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t len = s.size();
  // (wyhash mixes the seed here on every call; MakeSeed's is mixed already)
  uint64_t a, b;
  if (len <= 16) {
    if (len >= 4) {
      a = (Read4(p) << 32) | Read4(p + ((len >> 3) << 2));
      b = (Read4(p + len - 4) << 32) | Read4(p + len - 4 - ((len >> 3) << 2));
    } else if (len > 0) {
      a = (uint64_t{p[0]} << 16) | (uint64_t{p[len >> 1]} << 8) | p[len - 1];
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    size_t i = len;
    if (i > 48) {
      uint64_t see1 = seed, see2 = seed;
      do {
        seed = Mix(Read8(p) ^ kSecret[1], Read8(p + 8) ^ seed);
        see1 = Mix(Read8(p + 16) ^ kSecret[2], Read8(p + 24) ^ see1);
        see2 = Mix(Read8(p + 32) ^ kSecret[3], Read8(p + 40) ^ see2);
        p += 48;
        i -= 48;
      } while (i > 48);
      seed ^= see1 ^ see2;
    }
    while (i > 16) {
      seed = Mix(Read8(p) ^ kSecret[1], Read8(p + 8) ^ seed);
      i -= 16;
      p += 16;
    }
    a = Read8(p + i - 16);
    b = Read8(p + i - 8);
  }
  a ^= kSecret[1];
  b ^= seed;
  Mum(&a, &b);
  return Mix(a ^ kSecret[0] ^ len, b ^ kSecret[1]);
}

// A per-instance seed from addresses that ASLR moves (heap, stack, code),
// so ids a producer picks cannot be aimed at one probe run. Not a secret
// against a local attacker who can read our memory map; producers are local
// processes anyway, this only keeps a careless or hostile id scheme from
// turning lookups linear. (std::random_device would throw where no entropy
// source exists, and exceptions stay out of the store thread.)
uint64_t MakeSeed(const void* object) {
  static std::atomic<uint64_t> counter{0};  // two journals may open at once
  int on_stack = 0;
  uint64_t s = Mix(reinterpret_cast<uintptr_t>(object) ^ kSecret[2],
                   reinterpret_cast<uintptr_t>(&on_stack) ^ kSecret[3]);
  return Mix(s ^ counter.fetch_add(1, std::memory_order_relaxed),
             reinterpret_cast<uintptr_t>(&MakeSeed) ^ kSecret[0]);
}

// Most ids a table of `slots` holds before it doubles. Measured with
// dedupe_bench's per-id pattern at 1M ids: ~65 ns/id at load 0.38, ~75 at
// 0.5, ~93 at 0.61, ~100 at 0.72 and ~115 at 0.76 (the backward-shift scan
// on eviction walks to the end of the cluster, as a miss does), so 5/8.
size_t MaxLoad(size_t slots) { return slots / 8 * 5; }

// Fewest slots (a power of two) that hold n ids.
size_t SlotsFor(uint64_t n) {
  size_t slots = kMinSlots;
  while (n > MaxLoad(slots)) slots <<= 1;
  return slots;
}

int Log2(size_t pow2) {
  int bits = 0;
  while ((size_t{1} << bits) < pow2) ++bits;
  return bits;
}

}  // namespace

DedupeIndex::DedupeIndex(size_t max_ids, HashFn hash, size_t reserve_ids)
    : max_ids_(max_ids),
      hash_fn_(hash),
      seed_(MakeSeed(this)),
      floor_ring_(std::max(kMinRing, reserve_ids + reserve_ids / 8)),
      floor_slots_(SlotsFor(reserve_ids + reserve_ids / 8)) {
  assert(max_ids_ < (size_t{1} << 30) && reserve_ids < (size_t{1} << 28));
  ResizeRing(floor_ring_);
  ResizeTable(floor_slots_);
}

DedupeIndex::~DedupeIndex() = default;

uint32_t DedupeIndex::TagOf(std::string_view id) const {
  uint64_t h = hash_fn_ ? hash_fn_(id) : HashBytes(id, seed_);
  auto tag = static_cast<uint32_t>(h >> 32);
  // 0 marks an empty slot. 1 has the same home bucket as 0 (the table has
  // at most 2^30 slots), so remapping keeps probing consistent.
  return tag ? tag : 1;
}

const DedupeIndex::Entry& DedupeIndex::EntryAt(uint32_t entry_no) const {
  // Live entry numbers span fewer than 2^32 values, so the distance from the
  // oldest is exact in 32-bit arithmetic even after the numbers wrap.
  size_t offset = static_cast<uint32_t>(entry_no - static_cast<uint32_t>(head_no_));
  assert(offset < count_);
  size_t i = ring_head_ + offset;
  if (i >= ring_capacity_) i -= ring_capacity_;
  return entries_[i];
}

uint64_t DedupeIndex::Find(std::string_view id) const {
  if (id.empty()) return 0;
  uint32_t tag = TagOf(id);
  for (size_t i = Home(tag);; i = (i + 1) & table_mask_) {
    const Slot& s = table_[i];
    if (s.tag == 0) return 0;
    if (s.tag != tag) continue;
    const Entry& e = EntryAt(s.entry);
    if (e.len == id.size() && std::memcmp(e.key, id.data(), id.size()) == 0) return e.seq;
  }
}

void DedupeIndex::Insert(std::string_view id, uint64_t seq, int64_t stored_at_ms) {
  assert(!id.empty() && seq >= 1);
  assert(id.size() <= std::numeric_limits<uint32_t>::max());
  assert(Find(id) == 0);
  if (count_ == ring_capacity_) GrowRing();
  if (count_ + 1 > MaxLoad(table_mask_ + 1)) ResizeTable((table_mask_ + 1) * 2);

  uint32_t tag = TagOf(id);
  uint64_t no = head_no_ + count_;
  size_t i = ring_head_ + static_cast<size_t>(count_);
  if (i >= ring_capacity_) i -= ring_capacity_;
  entries_[i] = Entry{StoreKey(id), static_cast<uint32_t>(id.size()), tag, seq, stored_at_ms};
  ++count_;
  PlaceSlot(tag, static_cast<uint32_t>(no));
}

const char* DedupeIndex::StoreKey(std::string_view id) {
  if (blocks_.empty() || blocks_.back().capacity - blocks_.back().used < id.size()) {
    // A key longer than a block gets a block of its own; the rest of the
    // current block stays unused (ids that long are rare).
    size_t capacity = std::max(kBlockBytes, id.size());
    blocks_.push_back(Block{std::unique_ptr<char[]>(new char[capacity]), capacity, 0, 0});
    block_bytes_ += capacity;
  }
  Block& b = blocks_.back();
  char* key = b.data.get() + b.used;
  std::memcpy(key, id.data(), id.size());
  b.used += id.size();
  ++b.live;
  return key;
}

void DedupeIndex::PlaceSlot(uint32_t tag, uint32_t entry_no) {
  size_t i = Home(tag);
  while (table_[i].tag != 0) i = (i + 1) & table_mask_;
  table_[i] = Slot{tag, entry_no};
}

void DedupeIndex::EraseSlot(uint32_t tag, uint32_t entry_no) {
  size_t i = Home(tag);
  while (table_[i].tag != tag || table_[i].entry != entry_no) {
    assert(table_[i].tag != 0);  // every live entry has its slot
    i = (i + 1) & table_mask_;
  }
  // Backward-shift deletion: pull later members of the probe run into the
  // hole when their home allows it, so no tombstones accumulate (the index
  // erases as often as it inserts).
  for (size_t j = (i + 1) & table_mask_; table_[j].tag != 0; j = (j + 1) & table_mask_) {
    size_t home = Home(table_[j].tag);
    // Movable iff home is not cyclically within (i, j].
    bool home_in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!home_in_range) {
      table_[i] = table_[j];
      i = j;
    }
  }
  table_[i] = Slot{0, 0};
}

void DedupeIndex::PopOldest() {
  const Entry& e = entries_[ring_head_];
  EraseSlot(e.tag, static_cast<uint32_t>(head_no_));
  Block& b = blocks_.front();
  assert(b.live > 0 && e.key >= b.data.get() && e.key < b.data.get() + b.capacity);
  if (--b.live == 0) {
    block_bytes_ -= b.capacity;
    blocks_.pop_front();
  }
  if (++ring_head_ == ring_capacity_) ring_head_ = 0;
  ++head_no_;
  --count_;
}

void DedupeIndex::PopNewestOne() {
  uint64_t no = head_no_ + count_ - 1;
  size_t i = ring_head_ + static_cast<size_t>(count_ - 1);
  if (i >= ring_capacity_) i -= ring_capacity_;
  const Entry& e = entries_[i];
  EraseSlot(e.tag, static_cast<uint32_t>(no));
  // The newest key is the last one appended to the last block.
  Block& b = blocks_.back();
  assert(b.live > 0 && e.key + e.len == b.data.get() + b.used);
  b.used -= e.len;
  if (--b.live == 0) {
    block_bytes_ -= b.capacity;
    blocks_.pop_back();
  }
  --count_;
}

// Each id forgotten costs a cache miss on its slot whenever the table
// outgrows the cache (2 MiB at 100k ids). Entries are read in order, so the
// slots of the next ids to forget are known early: while forgetting a run
// (the journal evicts once per commit group), load the slot kPrefetchAhead
// ids ahead; when done, load the next one's, for the next Evict (usually
// one id later). Measured by dedupe_bench: per id 113 -> 67 ns, per commit
// group of 100 ids 94 -> 61 ns.
void DedupeIndex::Evict(int64_t cutoff_ms) {
  constexpr size_t kPrefetchAhead = 8;
  while (count_ > 0 && (count_ > max_ids_ || entries_[ring_head_].stored_at_ms < cutoff_ms)) {
    if (count_ > kPrefetchAhead) {
      size_t ahead = ring_head_ + kPrefetchAhead;
      if (ahead >= ring_capacity_) ahead -= ring_capacity_;
      __builtin_prefetch(&table_[Home(entries_[ahead].tag)], 1);
    }
    PopOldest();
  }
  MaybeShrink();
  if (count_ > 0) __builtin_prefetch(&table_[Home(entries_[ring_head_].tag)], 1);
}

void DedupeIndex::PopNewest(size_t n) {
  for (size_t k = 0; k < n && count_ > 0; ++k) PopNewestOne();
  MaybeShrink();
}

// Shrinks only well below the grow points (1/8 of the table, 1/4 of the
// ring), so a size that hovers at a boundary never rehashes back and forth.
void DedupeIndex::MaybeShrink() {
  size_t slots = table_mask_ + 1;
  if (slots > floor_slots_ && count_ < slots / 8) {
    ResizeTable(std::max(floor_slots_, SlotsFor(count_ * 2)));
  }
  if (ring_capacity_ > floor_ring_ && count_ < ring_capacity_ / 4) {
    ResizeRing(std::max<size_t>(floor_ring_, static_cast<size_t>(count_) * 2));
  }
}

void DedupeIndex::GrowRing() {
  // Up to max_ids the ring doubles (capped at max_ids, where it settles);
  // past it (a commit group inserted before the next Evict) it grows by
  // 1/8, enough to stay amortized O(1) without doubling a 100k ring.
  size_t capacity = ring_capacity_ < max_ids_
                        ? std::min(ring_capacity_ * 2, max_ids_)
                        : ring_capacity_ + std::max(ring_capacity_ / 8, kMinRing);
  ResizeRing(std::max(capacity, ring_capacity_ + 1));
}

void DedupeIndex::ResizeRing(size_t capacity) {
  assert(capacity >= count_);
  std::unique_ptr<Entry[]> fresh(new Entry[capacity]);
  for (uint64_t k = 0; k < count_; ++k) {
    size_t i = ring_head_ + static_cast<size_t>(k);
    if (i >= ring_capacity_) i -= ring_capacity_;
    fresh[k] = entries_[i];
  }
  entries_ = std::move(fresh);
  ring_capacity_ = capacity;
  ring_head_ = 0;
}

void DedupeIndex::ResizeTable(size_t slots) {
  assert(slots >= kMinSlots && (slots & (slots - 1)) == 0 && slots <= (size_t{1} << 30));
  std::unique_ptr<Slot[], FreeSlots> old = std::move(table_);
  size_t old_slots = old ? table_mask_ + 1 : 0;
  // calloc: a big table comes zeroed from the kernel, its pages untouched
  // until a slot on them is used.
  auto* fresh = static_cast<Slot*>(std::calloc(slots, sizeof(Slot)));
  if (fresh == nullptr) throw std::bad_alloc();
  table_.reset(fresh);
  table_mask_ = slots - 1;
  table_shift_ = 32 - Log2(slots);
  for (size_t i = 0; i < old_slots; ++i) {
    if (old[i].tag != 0) PlaceSlot(old[i].tag, old[i].entry);
  }
}

size_t DedupeIndex::memory_bytes() const {
  // std::deque keeps its Blocks in 512-byte nodes plus a small map.
  size_t block_headers = (blocks_.size() * sizeof(Block) / 512 + 1) * 512 + 64;
  return ring_capacity_ * sizeof(Entry) + (table_mask_ + 1) * sizeof(Slot) + block_bytes_ +
         block_headers;
}

}  // namespace edgespool::store
