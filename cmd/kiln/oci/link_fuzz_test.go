package oci

import (
	"bytes"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// FuzzLinkControl: whatever a guest sends on its control connections
// (the input, split at each 0x00 into connections made one after
// another), the VMM's side neither panics nor keeps a goroutine once the
// guest has hung up and the link is closed, and Ready returns.
func FuzzLinkControl(f *testing.F) {
	f.Add([]byte(`{"op":"ready"}` + "\n"))
	f.Add([]byte(`{"op":"error","error":"mount /proc: no such device"}` + "\n"))
	f.Add(bytes.Repeat([]byte(`{"op":"ready"}`+"\n"), 40))
	f.Add([]byte("{\"op\":\"winsize\"}\n\x00{\"op\":\"ready\"}\n\x00garbage\n"))
	f.Add(append(bytes.Repeat([]byte{'x'}, 70000), '\n'))
	f.Fuzz(func(t *testing.T, in []byte) {
		base := runtime.NumGoroutine()
		vsock := filepath.Join(t.TempDir(), "v")
		l, err := Listen(vsock, ControlPort, false)
		if err != nil {
			t.Fatal(err)
		}
		conns := bytes.Split(in, []byte{0})
		if len(conns) > 32 {
			conns = conns[:32]
		}
		for _, chunk := range conns {
			c, err := net.Dial("unix", vsock+"_"+strconv.Itoa(ControlPort))
			if err != nil {
				t.Fatal(err)
			}
			c.Write(chunk)
			c.Close()
		}
		never := make(chan struct{})
		l.Ready(never, never, 20*time.Millisecond) // any answer; it must return
		l.Close()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines left after the guest hung up:\n%s", runtime.NumGoroutine()-base, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
