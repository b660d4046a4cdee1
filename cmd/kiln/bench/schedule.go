package bench

// Slot is one start in the benchmark's order.
type Slot struct {
	Round  int // 1-based; warm-up rounds are numbered too
	Warmup bool
	Method int // index into the methods
}

// Schedule interleaves the methods: warm-up rounds first, then rounds, each
// round starting every method once in the same order (A B C A B C ...).
// Interleaving spreads slow drifts of the machine (other load, thermal
// state, page cache) over all methods instead of loading them onto
// whichever ran last.
func Schedule(methods, warmup, rounds int) []Slot {
	var out []Slot
	for r := 1; r <= warmup+rounds; r++ {
		for m := 0; m < methods; m++ {
			out = append(out, Slot{Round: r, Warmup: r <= warmup, Method: m})
		}
	}
	return out
}
