package oci

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// The VMM's control socket (ctl in the state directory): kiln start and
// kiln kill ask a container's VMM process to start the container or to
// relay a signal, one request a connection, a line of JSON each way.

// Request is what a kiln command asks of the VMM.
type Request struct {
	Op     string `json:"op"` // "start" or "signal"
	Signal int    `json:"signal,omitempty"`
	All    bool   `json:"all,omitempty"`
}

// Reply is the VMM's answer: Error is empty on success. NotRunning says
// the container's process has exited (a kill then fails as runc's does).
type Reply struct {
	Error      string `json:"error,omitempty"`
	NotRunning bool   `json:"not_running,omitempty"`
}

// Call sends req to the VMM listening at path and waits for its reply.
func Call(path string, req Request) error {
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return fmt.Errorf("reach the container's VMM: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("ask the container's VMM: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("the container's VMM did not answer: %w", err)
	}
	var r Reply
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("the container's VMM answered %q: %w", line, err)
	}
	if r.NotRunning {
		return ErrNotRunning
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

// Serve answers requests on ln with handle until ln is closed.
func Serve(ln net.Listener, handle func(Request) error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			line, err := bufio.NewReader(c).ReadBytes('\n')
			if err != nil {
				return
			}
			var req Request
			var r Reply
			if err := json.Unmarshal(line, &req); err != nil {
				r.Error = "bad request: " + err.Error()
			} else if err := handle(req); err != nil {
				r.Error = err.Error()
				r.NotRunning = errors.Is(err, ErrNotRunning)
			}
			b, _ := json.Marshal(r)
			c.Write(append(b, '\n'))
		}()
	}
}
