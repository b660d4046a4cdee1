package oci

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeGuest records what a Process sends to the guest and what it ends.
type fakeGuest struct {
	mu        sync.Mutex
	delivered []Signal
	ended     []unix.Signal
	fail      error
}

func (g *fakeGuest) process() *Process {
	return &Process{
		Deliver: func(s Signal) error {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.fail != nil {
				return g.fail
			}
			g.delivered = append(g.delivered, s)
			return nil
		},
		End: func(sig unix.Signal) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.ended = append(g.ended, sig)
		},
	}
}

func started(t *testing.T, p *Process) {
	t.Helper()
	require.NoError(t, p.Start(func() error { return nil }))
}

func TestSignalsBeforeTheProcessExistsAreHeld(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	started(t, p)
	require.Equal(t, PhaseStarting, p.Phase())
	// kill right after start: the guest has not exec'd the process yet.
	require.NoError(t, p.Send(Signal{Sig: unix.SIGTERM}))
	require.NoError(t, p.Send(Signal{Sig: unix.SIGUSR1, All: true}))
	require.Empty(t, g.delivered, "nothing reaches a process that does not exist")
	require.Equal(t, []Signal{{Sig: unix.SIGTERM}, {Sig: unix.SIGUSR1, All: true}}, p.Held())

	require.NoError(t, p.Started())
	require.Equal(t, []Signal{{Sig: unix.SIGTERM}, {Sig: unix.SIGUSR1, All: true}}, g.delivered, "held signals go out in order")
	require.Empty(t, p.Held())
	require.NoError(t, p.Send(Signal{Sig: unix.SIGHUP}))
	require.Equal(t, Signal{Sig: unix.SIGHUP}, g.delivered[2], "once running, at once")
	require.Empty(t, g.ended)
}

func TestSignalBeforeStartEndsTheContainer(t *testing.T) {
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGKILL, unix.SIGUSR1, unix.SIGQUIT} {
		g := &fakeGuest{}
		p := g.process()
		require.NoError(t, p.Send(Signal{Sig: sig}))
		require.Equal(t, []unix.Signal{sig}, g.ended, "%v ends a created container", sig)
		require.Equal(t, PhaseExited, p.Phase())
		require.ErrorIs(t, p.Start(func() error { t.Fatal("started an ended container"); return nil }), ErrNotRunning)
		require.ErrorIs(t, p.Send(Signal{Sig: sig}), ErrNotRunning)
		require.Len(t, g.ended, 1, "ended once")
		require.Empty(t, g.delivered)
	}
}

func TestSignalsThatEndNothingWaitForTheStart(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	for _, sig := range []unix.Signal{unix.SIGSTOP, unix.SIGCONT, unix.SIGWINCH} {
		require.NoError(t, p.Send(Signal{Sig: sig}))
	}
	require.Empty(t, g.ended)
	require.Equal(t, PhaseCreated, p.Phase())
	started(t, p)
	require.NoError(t, p.Started())
	require.Equal(t, []Signal{{Sig: unix.SIGSTOP}, {Sig: unix.SIGCONT}, {Sig: unix.SIGWINCH}}, g.delivered)
}

func TestKillAllFollowsTheSameRule(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	require.NoError(t, p.Send(Signal{Sig: unix.SIGTERM, All: true}))
	require.Equal(t, []unix.Signal{unix.SIGTERM}, g.ended)

	g = &fakeGuest{}
	p = g.process()
	started(t, p)
	require.NoError(t, p.Send(Signal{Sig: unix.SIGTERM, All: true}))
	require.Empty(t, g.delivered)
	require.NoError(t, p.Started())
	require.Equal(t, []Signal{{Sig: unix.SIGTERM, All: true}}, g.delivered)
}

func TestSignalAfterTheExitIsNotRunning(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	started(t, p)
	require.NoError(t, p.Send(Signal{Sig: unix.SIGUSR2}))
	p.Exited() // the process ended (it failed to exec) before it was reported started
	require.Empty(t, p.Held())
	require.ErrorIs(t, p.Send(Signal{Sig: unix.SIGTERM}), ErrNotRunning)
	require.Error(t, p.Started(), "a start reported after the exit is not believed")
	require.Empty(t, g.delivered)
	require.Equal(t, PhaseExited, p.Phase())
}

func TestStartOnce(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	boom := errors.New("the guest is gone")
	require.ErrorIs(t, p.Start(func() error { return boom }), boom)
	require.Equal(t, PhaseCreated, p.Phase(), "a start that failed did not happen")
	started(t, p)
	require.ErrorIs(t, p.Start(func() error { return nil }), ErrStarted)
	require.NoError(t, p.Started())
	require.ErrorIs(t, p.Start(func() error { return nil }), ErrStarted)
}

func TestAnUnaskedStartIsNotBelieved(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	require.NoError(t, p.Send(Signal{Sig: unix.SIGCONT}))
	require.Error(t, p.Started(), "the guest reports a start before kiln start")
	require.Equal(t, PhaseCreated, p.Phase())
	require.Empty(t, g.delivered)
}

func TestAFailedDeliveryIsReported(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	started(t, p)
	require.NoError(t, p.Send(Signal{Sig: unix.SIGTERM}))
	g.fail = errors.New("connection reset")
	require.ErrorContains(t, p.Started(), "connection reset")
	require.ErrorContains(t, p.Send(Signal{Sig: unix.SIGTERM}), "connection reset")
}

// TestSignalsRaceTheStart sends signals from many goroutines while the
// guest reports the start: each is delivered exactly once.
func TestSignalsRaceTheStart(t *testing.T) {
	g := &fakeGuest{}
	p := g.process()
	started(t, p)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, p.Send(Signal{Sig: unix.SIGUSR1}))
		}()
	}
	require.NoError(t, p.Started())
	wg.Wait()
	require.Len(t, g.delivered, 50)
	require.Empty(t, p.Held())
}

func TestEnds(t *testing.T) {
	require.True(t, Ends(unix.SIGTERM))
	require.True(t, Ends(unix.SIGKILL))
	require.True(t, Ends(unix.Signal(34+3)), "a real-time signal")
	require.False(t, Ends(unix.SIGCHLD))
	require.False(t, Ends(unix.SIGSTOP))
	require.False(t, Ends(unix.SIGWINCH))
}
