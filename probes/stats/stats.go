// Package stats computes the per-round statistics of a probe round: loss,
// RTT summary, jitter (RFC 3393 style and the RFC 3550 estimator) and a MOS
// from a simplified E-model. All functions are pure and exact on known series.
package stats

import (
	"math"
	"sort"
	"time"
)

// Summary is the statistics of one round. Durations are in milliseconds.
type Summary struct {
	Sent       int
	Received   int
	Duplicates int
	Reordered  int
	LossRatio  float64

	MinMs, AvgMs, MaxMs float64
	P50Ms, P95Ms, P99Ms float64
	StddevMs            float64
	JitterMs            float64 // mean |RTT[i]-RTT[i-1]| over consecutive answered packets
	JitterRFC3550Ms     float64 // J += (|D|-J)/16 over the same pairs
	MOS                 float64
	RTTsUs              []uint32 // answered packets, in send order
}

// Compute summarises a round: sent packets, the RTTs of the answered ones in
// send order, and the duplicate and reordered counts the prober observed.
// With no answer every RTT field is 0 and MOS is 1.
func Compute(sent int, rtts []time.Duration, duplicates, reordered int) Summary {
	s := Summary{Sent: sent, Received: len(rtts), Duplicates: duplicates, Reordered: reordered}
	if sent > 0 {
		s.LossRatio = float64(sent-len(rtts)) / float64(sent)
		if s.LossRatio < 0 {
			s.LossRatio = 0
		}
	}
	s.RTTsUs = make([]uint32, len(rtts))
	ms := make([]float64, len(rtts))
	for i, d := range rtts {
		us := d.Microseconds()
		if us < 0 {
			us = 0
		}
		if us > math.MaxUint32 {
			us = math.MaxUint32
		}
		s.RTTsUs[i] = uint32(us)
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	if len(ms) == 0 {
		s.MOS = MOS(0, 0, s.LossRatio)
		return s
	}
	sum := 0.0
	s.MinMs, s.MaxMs = ms[0], ms[0]
	for _, v := range ms {
		sum += v
		s.MinMs = math.Min(s.MinMs, v)
		s.MaxMs = math.Max(s.MaxMs, v)
	}
	s.AvgMs = sum / float64(len(ms))
	varSum := 0.0
	for _, v := range ms {
		varSum += (v - s.AvgMs) * (v - s.AvgMs)
	}
	s.StddevMs = math.Sqrt(varSum / float64(len(ms))) // population, like ping's mdev
	s.JitterMs, s.JitterRFC3550Ms = Jitter(ms)
	sorted := append([]float64(nil), ms...)
	sort.Float64s(sorted)
	s.P50Ms = Percentile(sorted, 50)
	s.P95Ms = Percentile(sorted, 95)
	s.P99Ms = Percentile(sorted, 99)
	s.MOS = MOS(s.AvgMs, s.JitterMs, s.LossRatio)
	return s
}

// Percentile returns the nearest-rank percentile p (0 < p ≤ 100) of sorted
// values: the smallest value such that at least p% of the values are ≤ it.
// It is always one of the measured values.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

// Jitter returns the mean absolute difference of consecutive values (RFC 3393
// IPDV, averaged) and the RFC 3550 section 6.4.1 estimator J += (|D|-J)/16
// started at 0, both over consecutive pairs of the series. Fewer than two
// values give 0, 0.
func Jitter(ms []float64) (mean, rfc3550 float64) {
	if len(ms) < 2 {
		return 0, 0
	}
	sum := 0.0
	for i := 1; i < len(ms); i++ {
		d := math.Abs(ms[i] - ms[i-1])
		sum += d
		rfc3550 += (d - rfc3550) / 16
	}
	return sum / float64(len(ms)-1), rfc3550
}

// MOS is a simplified ITU-T G.107 E-model (the form popularised by Cole and
// Rosenbluth, 2001), from one-way-agnostic RTT figures in milliseconds and
// the loss ratio in [0,1]:
//
//	Leff = avg + 2·jitter + 10
//	R    = 93.2 − Leff/40                 when Leff < 160
//	R    = 93.2 − (Leff − 120)/10         otherwise
//	R   −= 2.5 · loss%                    (loss% = 100·loss)
//	R clamped to [0, 100]
//	MOS  = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R)
//
// A round with every packet lost has MOS 1.
func MOS(avgMs, jitterMs, loss float64) float64 {
	if loss >= 1 {
		return 1
	}
	leff := avgMs + 2*jitterMs + 10
	var r float64
	if leff < 160 {
		r = 93.2 - leff/40
	} else {
		r = 93.2 - (leff-120)/10
	}
	r -= 2.5 * loss * 100
	r = math.Max(0, math.Min(100, r))
	return 1 + 0.035*r + 7e-6*r*(r-60)*(100-r)
}
