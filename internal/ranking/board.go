package ranking

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/google/uuid"
)

// key orders the leaderboard: higher score first, then earlier member,
// then user id.
type key struct {
	score int64
	since int64 // the user's created_at, unix nanoseconds
	id    uuid.UUID
	// hash is the first 8 bytes of the user's external-id lookup hash (0
	// when unknown): not part of the order, it names the user in byHash.
	hash uint64
}

// hashPrefix is the part of a lookup hash the board keeps (0 for none).
func hashPrefix(h []byte) uint64 {
	if len(h) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(h)
}

func (a key) compare(b key) int {
	switch {
	case a.score != b.score:
		if a.score > b.score {
			return -1
		}
		return 1
	case a.since != b.since:
		if a.since < b.since {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// blockSize is the target size of a block; a block splits at twice it.
const blockSize = 512

// order is an order-statistics list: the ranked users in leaderboard order,
// in sorted blocks, so that inserting, removing and finding the position of
// a key cost a walk over the blocks' lengths (n/512 additions) plus a
// binary search and a copy within one block. At 1,000,000 users that is
// about 2,000 blocks: microseconds per operation.
type order struct {
	blocks [][]key
	users  map[uuid.UUID]key
	// byHash finds a ranked user by the prefix of their lookup hash, so
	// that a request naming the user by external id can guess their place
	// before reading anything (Service.AroundHash). Only a guess: two users
	// may share a prefix, and a user's hash may change without the board
	// seeing it (anonymisation); the database's answer decides.
	byHash map[uint64]uuid.UUID
}

func newOrder() *order { return &order{users: map[uuid.UUID]key{}, byHash: map[uint64]uuid.UUID{}} }

// buildOrder makes the list of keys (one per user) in one sort: inserting
// a million keys one by one would walk the blocks a million times.
func buildOrder(keys []key) *order {
	o := &order{users: make(map[uuid.UUID]key, len(keys)), byHash: make(map[uint64]uuid.UUID, len(keys))}
	slices.SortFunc(keys, key.compare)
	for _, k := range keys {
		o.users[k.id] = k
		if k.hash != 0 {
			o.byHash[k.hash] = k.id
		}
	}
	for len(keys) > 0 {
		n := min(blockSize, len(keys))
		o.blocks = append(o.blocks, slices.Clone(keys[:n]))
		keys = keys[n:]
	}
	return o
}

func (o *order) len() int { return len(o.users) }

// block returns the index of the block where k belongs (the first whose
// last key is not before k; the last block when k is after every key).
func (o *order) block(k key) int {
	for i, b := range o.blocks {
		if b[len(b)-1].compare(k) >= 0 {
			return i
		}
	}
	return len(o.blocks) - 1
}

// set puts user id (whose lookup hash starts with hash) at score
// (removing them when score is not positive).
func (o *order) set(id uuid.UUID, score, since int64, hash uint64) {
	if old, ok := o.users[id]; ok {
		if old.score == score && old.since == since && old.hash == hash {
			return
		}
		o.forget(old)
	}
	if score <= 0 {
		return
	}
	k := key{score: score, since: since, id: id, hash: hash}
	o.users[id] = k
	if hash != 0 {
		o.byHash[hash] = id
	}
	if len(o.blocks) == 0 {
		o.blocks = append(o.blocks, []key{k})
		return
	}
	i := o.block(k)
	b := o.blocks[i]
	j, _ := slices.BinarySearchFunc(b, k, key.compare)
	b = slices.Insert(b, j, k)
	if len(b) >= 2*blockSize {
		right := slices.Clone(b[blockSize:])
		b = b[:blockSize:blockSize]
		o.blocks = slices.Insert(o.blocks, i+1, right)
	}
	o.blocks[i] = b
}

// drop removes user id.
func (o *order) drop(id uuid.UUID) {
	if old, ok := o.users[id]; ok {
		o.forget(old)
	}
}

// forget removes the ranked user k from the blocks and both maps.
func (o *order) forget(k key) {
	o.remove(k)
	delete(o.users, k.id)
	if o.byHash[k.hash] == k.id {
		delete(o.byHash, k.hash)
	}
}

func (o *order) remove(k key) {
	i := o.block(k)
	if i < 0 {
		return
	}
	b := o.blocks[i]
	j, found := slices.BinarySearchFunc(b, k, key.compare)
	if !found {
		return
	}
	b = slices.Delete(b, j, j+1)
	if len(b) == 0 {
		o.blocks = slices.Delete(o.blocks, i, i+1)
		return
	}
	o.blocks[i] = b
}

// position is the number of keys before k (k's 0-based position if it is
// in the list).
func (o *order) position(k key) int {
	n := 0
	for _, b := range o.blocks {
		if b[len(b)-1].compare(k) >= 0 {
			j, _ := slices.BinarySearchFunc(b, k, key.compare)
			return n + j
		}
		n += len(b)
	}
	return n
}

// rank is the competition rank of score: 1 + the users with more points.
func (o *order) rank(score int64) int64 {
	return int64(o.position(key{score: score, since: -1 << 63})) + 1
}

// slice returns the keys at positions [from, to).
func (o *order) slice(from, to int) []key {
	from, to = max(from, 0), min(to, o.len())
	out := make([]key, 0, max(to-from, 0))
	n := 0
	for _, b := range o.blocks {
		if n >= to {
			break
		}
		if n+len(b) > from {
			lo, hi := max(from-n, 0), min(to-n, len(b))
			out = append(out, b[lo:hi]...)
		}
		n += len(b)
	}
	return out
}
