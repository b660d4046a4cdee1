package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTP workload's load: a fixed, bounded burst of GET requests from
// the host, spread over a few connections at once, each request timed
// from its write to the last byte of its answer. Bounded both ways: a
// number of requests, and a deadline after which the burst stops and
// says how many it got through.

// BurstSpec is one burst.
type BurstSpec struct {
	URL       string        `json:"-"`
	Requests  int           `json:"requests"`
	Conns     int           `json:"conns"`      // requests in flight at once, each on its own connection
	KeepAlive bool          `json:"keep_alive"` // each connection carries many requests; off: one per connection
	Deadline  time.Duration `json:"deadline_ns"`
	// Dial makes the connections; nil dials from this process's own
	// network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) `json:"-"`
}

// BurstResult is what a burst measured.
type BurstResult struct {
	Requests int           `json:"requests"` // answered 200, whole
	Errors   int           `json:"errors"`
	FirstErr string        `json:"first_error,omitempty"`
	Took     time.Duration `json:"took_ns"` // first request sent to last answer
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	// RPS is answered requests per second of Took.
	RPS float64 `json:"rps"`
	// Cut says the deadline stopped the burst before all its requests.
	Cut bool `json:"cut,omitempty"`
}

// Percentile is the p-th percentile (0 < p ≤ 100) of d by nearest rank:
// the smallest value with at least p% of the values at or below it, so
// it is always one of the values. 0 for none.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	r := int(float64(len(s))*p/100 + 0.999999999) // ceil, 1-based
	r = min(max(r, 1), len(s))
	return s[r-1]
}

// Burst sends spec.Requests GETs of spec.URL, spec.Conns at a time, and
// times them. A request counts if it is answered 200 and its body read
// whole; anything else is an error, counted, the first one kept.
func Burst(ctx context.Context, spec BurstSpec) BurstResult {
	conns := max(spec.Conns, 1)
	tr := &http.Transport{
		DisableKeepAlives:   !spec.KeepAlive,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
	if spec.Dial != nil {
		tr.DialContext = spec.Dial
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if spec.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Deadline)
		defer cancel()
	}

	var (
		next     atomic.Int64
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, spec.Requests)
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	one := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.URL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(spec.Requests) && ctx.Err() == nil {
				t := time.Now()
				err := one()
				d := time.Since(t)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil { // not the deadline's cut
						errs++
						if firstErr == "" {
							firstErr = err.Error()
						}
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r := BurstResult{Requests: len(lat), Errors: errs, FirstErr: firstErr, Took: time.Since(start),
		P50: Percentile(lat, 50), P99: Percentile(lat, 99), Cut: len(lat)+errs < spec.Requests}
	if len(lat) > 0 {
		r.Max = slices.Max(lat)
	}
	if r.Took > 0 {
		r.RPS = float64(r.Requests) / r.Took.Seconds()
	}
	return r
}

// firstOK polls url until it answers 200, every interval, each attempt
// bounded by a short timeout, and returns when it did; it gives up at
// the context's end or when dead reports the instance gone.
func firstOK(ctx context.Context, url string, dial func(context.Context, string, string) (net.Conn, error),
	interval time.Duration, dead func() error) (time.Time, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	if dial != nil {
		tr.DialContext = dial
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		last = err
		if dead != nil {
			if derr := dead(); derr != nil {
				return time.Time{}, fmt.Errorf("the instance ended before it answered: %v", derr)
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s never answered 200: %v", url, last)
		case <-time.After(interval):
		}
	}
}
