package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a recorded value is off by less than 1/128 (0.8%).
const subBits = 7

// numBuckets covers every non-negative int64 number of nanoseconds.
const numBuckets = (64 - subBits) << subBits

// Histogram is a log-linear histogram of durations, in the manner of
// HdrHistogram: values below 128 ns are exact, larger ones fall into
// buckets whose width grows with the value. It has a fixed size (about 58
// KiB), records without allocating, and merges by addition, so each client
// keeps its own and they are added up at the end. The zero value is not
// usable; call NewHistogram.
type Histogram struct {
	counts   []uint64
	total    uint64
	sum      time.Duration
	min, max time.Duration
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64}
}

// bucket returns the index of v's bucket. Below 2^subBits the index is the
// value; above, it is the value's top subBits+1 bits offset by how far they
// were shifted, which keeps indexes contiguous.
func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)<<subBits + int(v>>uint(shift)) - 1<<subBits
}

// bounds returns the smallest value of bucket i and the bucket's width.
func bounds(i int) (low, width uint64) {
	if i < 1<<subBits {
		return uint64(i), 1
	}
	shift := i>>subBits - 1
	top := uint64(i - (shift+1)<<subBits + 1<<subBits)
	return top << uint(shift), 1 << uint(shift)
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d))]++
	h.total++
	h.sum += d
	h.min = min(h.min, d)
	h.max = max(h.max, d)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is how many values were recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Mean is the exact mean of the recorded values.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.max
}

// Quantile returns the value below which a fraction q (0 < q <= 1) of the
// recorded values fall: the middle of the bucket holding the value of rank
// ceil(q*count), clamped to the exact minimum and maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bounds(i)
			v := time.Duration(low + width/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
