package bus

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"time"
)

// idAndTime returns a new message id and the ce_time of a message published
// at now, in one allocation: the id is a UUIDv7 (RFC 9562) whose 48-bit
// timestamp is now's Unix milliseconds and whose 12 rand_a bits hold the
// sub-millisecond fraction of now (the RFC's method 3), so ids sort by
// publish time to about 250 ns; the other 62 bits are random. It takes no
// lock and reads no system randomness per call, which is why busline does
// not use github.com/google/uuid's NewV7 (a global mutex and an allocation
// per id) on the publish path.
func idAndTime(now time.Time) (id, at string) {
	var u [16]byte
	ms := uint64(now.UnixMilli())
	sub := uint64(now.Nanosecond()%1_000_000) * 4096 / 1_000_000
	r := rand.Uint64()
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(sub>>8)&0x0f
	u[7] = byte(sub)
	u[8] = 0x80 | byte(r>>56)&0x3f
	for i := 9; i < 16; i++ {
		u[i] = byte(r >> (8 * (15 - i)))
	}
	var b strings.Builder
	b.Grow(36 + len(time.RFC3339Nano) + 4)
	var hexed [36]byte
	hex.Encode(hexed[0:8], u[0:4])
	hexed[8] = '-'
	hex.Encode(hexed[9:13], u[4:6])
	hexed[13] = '-'
	hex.Encode(hexed[14:18], u[6:8])
	hexed[18] = '-'
	hex.Encode(hexed[19:23], u[8:10])
	hexed[23] = '-'
	hex.Encode(hexed[24:36], u[10:16])
	b.Write(hexed[:])
	var ts [40]byte
	b.Write(now.UTC().AppendFormat(ts[:0], time.RFC3339Nano))
	s := b.String()
	return s[:36], s[36:]
}
