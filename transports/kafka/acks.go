package kafka

import (
	"encoding/base64"
	"sort"
	"strings"
	"sync"
)

// ackedPrefix starts the offset commit metadata that lists the records
// acked beyond the committed offset: a bitmap, base64url, whose bit i
// (least significant first) is offset+1+i.
const ackedPrefix = "busline-acked:v1:"

// maxAckedBitmap bounds the bitmap, so the metadata stays under the
// brokers' offset.metadata.max.bytes (4096 by default); acks beyond it are
// not recorded, and their records are handled again by a next owner.
const maxAckedBitmap = 2048

// acks tracks one partition's records from fetch to ack. The offset to
// commit is the first record not acked; the records acked after it are
// listed in the commit's metadata, so that a next owner of the partition
// (after a rebalance, a clean stop or a crash after the commit) skips them
// rather than handling them again.
type acks struct {
	mu    sync.Mutex
	offs  []int64 // fetched records from the first not acked on, ascending
	acked []bool
	next  int64          // offset to commit; -1 before the first record
	skip  map[int64]bool // acked by an earlier owner, from its commit metadata

	// Guarded by member.commitMu: what was last committed, and whether
	// the partition's last commit was made (it was revoked or lost).
	sentNext int64
	sentMeta string
	retired  bool
}

func newAcks() acks { return acks{next: -1, sentNext: -1} }

// restore takes the committed offset and metadata of the partition.
func (a *acks) restore(offset int64, meta string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	enc, ok := strings.CutPrefix(meta, ackedPrefix)
	if !ok || offset < 0 {
		return
	}
	bitmap, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return
	}
	a.skip = map[int64]bool{}
	for i, b := range bitmap {
		for j := range 8 {
			if b&(1<<j) != 0 {
				a.skip[offset+1+int64(8*i+j)] = true
			}
		}
	}
}

// add records a fetched record; it reports whether an earlier owner acked
// it already, in which case it counts as acked and is not handed out.
func (a *acks) add(offset int64) (done bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next < 0 || len(a.offs) == 0 && offset > a.next {
		a.next = offset
	}
	done = a.skip[offset]
	if done {
		delete(a.skip, offset)
	}
	a.offs = append(a.offs, offset)
	a.acked = append(a.acked, done)
	a.popLocked()
	return done
}

// ack records that the record at offset was acked.
func (a *acks) ack(offset int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := sort.Search(len(a.offs), func(i int) bool { return a.offs[i] >= offset })
	if i < len(a.offs) && a.offs[i] == offset {
		a.acked[i] = true
		a.popLocked()
	}
}

func (a *acks) popLocked() {
	n := 0
	for n < len(a.offs) && a.acked[n] {
		a.next = a.offs[n] + 1
		n++
	}
	if n > 0 {
		a.offs = a.offs[n:]
		a.acked = a.acked[n:]
	}
	if len(a.offs) > 0 {
		a.next = a.offs[0]
	}
}

// commit returns the offset to commit and the metadata listing the records
// acked beyond it; ok is false when nothing changed since the last commit.
func (a *acks) commit() (offset int64, meta string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next < 0 {
		return 0, "", false
	}
	var bitmap []byte
	for i, off := range a.offs {
		if !a.acked[i] {
			continue
		}
		bit := off - a.next - 1
		if bit < 0 || bit >= 8*maxAckedBitmap {
			continue
		}
		for int64(len(bitmap)) <= bit/8 {
			bitmap = append(bitmap, 0)
		}
		bitmap[bit/8] |= 1 << (bit % 8)
	}
	if len(bitmap) > 0 {
		meta = ackedPrefix + base64.RawURLEncoding.EncodeToString(bitmap)
	}
	if a.next == a.sentNext && meta == a.sentMeta {
		return 0, "", false
	}
	return a.next, meta, true
}
