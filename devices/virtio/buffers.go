package virtio

// Helpers that cut a chain's buffers where a protocol puts its headers.

// splitFront takes the first n bytes of bufs as one header (copied if it
// spans buffers) and returns the rest. It returns a nil header if bufs
// hold fewer than n bytes.
func splitFront(bufs [][]byte, n int) (hdr []byte, rest [][]byte) {
	if total(bufs) < n {
		return nil, nil
	}
	if len(bufs[0]) >= n {
		hdr = bufs[0][:n]
	} else {
		hdr = make([]byte, 0, n)
	}
	need := n
	for i, b := range bufs {
		if need == 0 {
			return hdr, append(rest, bufs[i:]...)
		}
		k := min(need, len(b))
		if len(bufs[0]) < n {
			hdr = append(hdr, b[:k]...)
		}
		need -= k
		if k < len(b) {
			rest = append(rest, b[k:])
		}
	}
	return hdr, rest
}

// splitBack takes the last n bytes of bufs, which must lie in the last
// buffer (as a status byte does), and returns the buffers before them.
func splitBack(bufs [][]byte, n int) (rest [][]byte, tail []byte) {
	if len(bufs) == 0 || len(bufs[len(bufs)-1]) < n {
		return nil, nil
	}
	last := bufs[len(bufs)-1]
	rest = append(rest, bufs[:len(bufs)-1]...)
	if len(last) > n {
		rest = append(rest, last[:len(last)-n])
	}
	return rest, last[len(last)-n:]
}

// flatten copies bufs into one slice.
func flatten(bufs [][]byte) []byte {
	out := make([]byte, 0, total(bufs))
	for _, b := range bufs {
		out = append(out, b...)
	}
	return out
}

// cut returns the first n bytes of bufs, as slices of the same memory.
func cut(bufs [][]byte, n int) [][]byte {
	var out [][]byte
	for _, b := range bufs {
		if n <= 0 {
			break
		}
		k := min(n, len(b))
		out = append(out, b[:k])
		n -= k
	}
	return out
}
