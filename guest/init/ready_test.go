package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-vmm/kiln/guest/contract"
)

// fakeGuest is a guest for readyWait: a clock that sleeping advances,
// and what listens, exists and has exited at each moment.
type fakeGuest struct {
	t0, now   time.Time
	slept     int
	listenAt  time.Duration // port 8080 listens from this moment (0: never)
	exitAt    time.Duration // the app exits with status 3 at this moment (0: never)
	fileAt    time.Duration // /run/ready exists from this moment (0: never)
	maxSleeps int
}

func (g *fakeGuest) wait(t *testing.T, cond contract.Ready) (int, bool, time.Duration) {
	t.Helper()
	g.t0 = time.Unix(1000, 0)
	g.now = g.t0
	at := func(d time.Duration) bool { return d != 0 && g.now.Sub(g.t0) >= d }
	w := &readyWait{
		cond: cond,
		now:  func() time.Time { return g.now },
		sleep: func(d time.Duration) {
			g.slept++
			require.Less(t, g.slept, g.maxSleeps, "the wait never ends")
			g.now = g.now.Add(d)
		},
		listening: func(port int) bool { return port == 8080 && at(g.listenAt) },
		exists:    func(path string) bool { return path == "/run/ready" && at(g.fileAt) },
		exited: func() (int, bool) {
			if at(g.exitAt) {
				return 3, true
			}
			return 0, false
		},
	}
	status, ready := w.wait(g.t0)
	return status, ready, g.now.Sub(g.t0)
}

func TestReadyWait(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cond   contract.Ready
		guest  fakeGuest
		ready  bool
		status int
		at     time.Duration // when the wait ended
	}{
		{"port listens", contract.Ready{Port: 8080}, fakeGuest{listenAt: 2 * time.Second}, true, 0, 2 * time.Second},
		{"another port listens", contract.Ready{Port: 9090}, fakeGuest{listenAt: time.Second, exitAt: 5 * time.Second}, false, 3, 5 * time.Second},
		{"file written", contract.Ready{File: "/run/ready"}, fakeGuest{fileAt: 1500 * time.Millisecond}, true, 0, 1500 * time.Millisecond},
		{"time passed", contract.Ready{After: 3 * time.Second}, fakeGuest{}, true, 0, 3 * time.Second},
		{"app exits first", contract.Ready{After: 3 * time.Second}, fakeGuest{exitAt: time.Second}, false, 3, time.Second},
		{"exit seen before a met condition", contract.Ready{Port: 8080}, fakeGuest{listenAt: time.Second, exitAt: time.Second}, false, 3, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.guest
			g.maxSleeps = 1000
			status, ready, at := g.wait(t, tc.cond)
			require.Equal(t, tc.ready, ready)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.at, at, "the wait ends at the first poll that sees it")
		})
	}
}

// TestListensIn reads /proc/net/tcp tables: only LISTEN (0A) sockets on
// the port count, whatever their address; malformed lines are skipped.
func TestListensIn(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0016 0100007F:A2B4 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
   2: garbage
   3: 0100007F:ZZZZ 00000000:0000 0A
`
	require.True(t, listensIn(strings.NewReader(table), 8080))
	require.False(t, listensIn(strings.NewReader(table), 22), "port 22 is an established connection, not a listener")
	require.False(t, listensIn(strings.NewReader(table), 1), "nothing listens on port 1")
	require.False(t, listensIn(strings.NewReader("  sl  local_address rem_address   st\n"), 8080))
	tcp6 := `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
`
	require.True(t, listensIn(strings.NewReader(tcp6), 80))
}

// TestListeningOnThisHost: a real listener shows up in this host's own
// /proc/net/tcp, the same file the guest's kernel serves, and is gone
// once closed.
func TestListeningOnThisHost(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.True(t, listeningOn(port, "/proc/net/tcp", "/proc/net/tcp6"))
	c, err := net.Dial("tcp4", l.Addr().String())
	require.NoError(t, err)
	l.Close()
	defer c.Close()
	// The connection remains, established; nothing listens.
	require.False(t, listeningOn(port, "/proc/net/tcp", "/proc/net/tcp6"))
	require.False(t, listeningOn(port, filepath.Join(t.TempDir(), "none")), "a missing table is not a listener")
}

// TestReapNoHang: a child that has not exited is not reported; once it
// has, its status is, as a shell gives it.
func TestReapNoHang(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "read x; exit 7"}, &os.ProcAttr{Files: []*os.File{r, os.Stdout, os.Stderr}})
	require.NoError(t, err)
	_, ok := reapNoHang(p.Pid)
	require.False(t, ok, "the child still runs")
	w.Close() // its read ends
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if status, ok := reapNoHang(p.Pid); ok {
			require.Equal(t, 7, status)
			return
		}
	}
	t.Fatal("the child's exit was never reaped")
}
