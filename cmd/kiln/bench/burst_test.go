package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	require.Equal(t, time.Duration(0), Percentile(nil, 50))
	require.Equal(t, 7*time.Millisecond, Percentile(ms(7), 99))
	// Nearest rank: always one of the values, never between two.
	d := ms(5, 1, 4, 2, 3) // unsorted on purpose
	require.Equal(t, 3*time.Millisecond, Percentile(d, 50))
	require.Equal(t, 5*time.Millisecond, Percentile(d, 99))
	require.Equal(t, 1*time.Millisecond, Percentile(d, 1))
	require.Equal(t, ms(5, 1, 4, 2, 3), d, "the input is left as it was")
	var hundred []time.Duration
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, Percentile(hundred, 50))
	require.Equal(t, 99*time.Millisecond, Percentile(hundred, 99))
	require.Equal(t, 100*time.Millisecond, Percentile(hundred, 100))
}

// TestBurst: the burst sends exactly its requests, never more at once
// than its connections, reuses connections with keep-alive and opens one
// per request without.
func TestBurst(t *testing.T) {
	for _, keep := range []bool{true, false} {
		var inFlight, peak, served atomic.Int64
		var mu sync.Mutex
		conns := map[string]bool{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			mu.Lock()
			conns[r.RemoteAddr] = true
			mu.Unlock()
			time.Sleep(time.Millisecond)
			served.Add(1)
			w.Write([]byte(`{"hello":"kiln"}`))
		}))
		r := Burst(context.Background(), BurstSpec{URL: srv.URL, Requests: 60, Conns: 3, KeepAlive: keep, Deadline: time.Minute})
		srv.Close()
		require.Equal(t, 60, r.Requests, "keep-alive %v: %+v", keep, r)
		require.Equal(t, 0, r.Errors)
		require.False(t, r.Cut)
		require.EqualValues(t, 60, served.Load(), "exactly the burst's requests, no retries")
		require.LessOrEqual(t, peak.Load(), int64(3), "never more in flight than the connections")
		require.GreaterOrEqual(t, r.P50, time.Millisecond)
		require.GreaterOrEqual(t, r.P99, r.P50)
		require.GreaterOrEqual(t, r.Max, r.P99)
		require.Greater(t, r.RPS, 0.0)
		if keep {
			require.LessOrEqual(t, len(conns), 3, "keep-alive: each of the 3 connections carries many requests")
		} else {
			require.Equal(t, 60, len(conns), "keep-alive off: one connection per request")
		}
	}
}

// TestBurstErrorsAndDeadline: answers other than 200 are errors, and a
// deadline cuts a burst short and says so.
func TestBurstErrorsAndDeadline(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	r := Burst(context.Background(), BurstSpec{URL: srv.URL, Requests: 20, Conns: 1, KeepAlive: true, Deadline: time.Minute})
	require.Equal(t, 10, r.Requests)
	require.Equal(t, 10, r.Errors)
	require.Equal(t, "status 503", r.FirstErr)

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte("ok"))
	}))
	defer slow.Close()
	r = Burst(context.Background(), BurstSpec{URL: slow.URL, Requests: 1000, Conns: 2, KeepAlive: true, Deadline: 300 * time.Millisecond})
	require.True(t, r.Cut, "%+v", r)
	require.Less(t, r.Requests, 1000)
	require.Equal(t, 0, r.Errors, "requests the deadline cut are not errors")
}

// TestBurstDial: the burst's connections come from its Dial (the bench's
// way into a VM's network namespace).
func TestBurstDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	var dials atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	r := Burst(context.Background(), BurstSpec{URL: "http://10.0.2.2:8080/", Requests: 10, Conns: 2, KeepAlive: true, Deadline: time.Minute, Dial: dial})
	require.Equal(t, 10, r.Requests, "%+v", r)
	require.LessOrEqual(t, dials.Load(), int64(2))
	require.Greater(t, dials.Load(), int64(0))
}

// TestFirstOK: polling until the service answers 200, and giving up when
// the instance is gone.
func TestFirstOK(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 4 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := firstOK(ctx, srv.URL, nil, time.Millisecond, nil)
	require.NoError(t, err)
	require.EqualValues(t, 4, n.Load())

	// Nothing listens; the instance says it ended.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String() + "/"
	l.Close()
	_, err = firstOK(ctx, url, nil, time.Millisecond, func() error { return errGone })
	require.ErrorContains(t, err, "the instance ended before it answered: gone")

	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = firstOK(short, url, nil, 5*time.Millisecond, nil)
	require.ErrorContains(t, err, "never answered 200")
}

var errGone = errorString("gone")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestParseStatPPID(t *testing.T) {
	pp, err := parseStatPPID("1234 (a) b) S 77 1234 1234 0 -1")
	require.NoError(t, err)
	require.Equal(t, 77, pp)
	_, err = parseStatPPID("garbage")
	require.Error(t, err)
	_, err = parseStatPPID("1 (x)")
	require.Error(t, err)
}
