package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// runc's output formats, which engines and people parse: ps's and list's
// table or JSON, events' JSON lines.

// WritePids writes ps's answer: "table" (a PID column) or "json".
func WritePids(w io.Writer, pids []int, format string) error {
	switch format {
	case "json":
		b, _ := json.Marshal(pids)
		_, err := fmt.Fprintf(w, "%s\n", b)
		return err
	case "table":
		fmt.Fprintln(w, "PID")
		for _, p := range pids {
			fmt.Fprintln(w, p)
		}
		return nil
	}
	return fmt.Errorf("ps: unknown format %q (table or json)", format)
}

// WriteList writes list's answer: "table" or "json", or with quiet the
// IDs alone.
func WriteList(w io.Writer, list []State, format string, quiet bool) error {
	switch {
	case quiet:
		for _, s := range list {
			fmt.Fprintln(w, s.ID)
		}
	case format == "json":
		if list == nil {
			list = []State{}
		}
		b, _ := json.Marshal(list)
		fmt.Fprintf(w, "%s\n", b)
	case format == "table":
		tw := tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)
		fmt.Fprint(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("list: unknown format %q (table or json)", format)
	}
	return nil
}

// Events writes the container's stats to w as JSON lines: once, or every
// interval until the container stops.
func (r *Runtime) Events(w io.Writer, id string, once bool, interval time.Duration) error {
	if interval <= 0 {
		return errors.New("events: --interval must be positive")
	}
	enc := json.NewEncoder(w)
	for {
		s, err := r.Stats(id)
		if err != nil {
			if !once && errors.Is(err, ErrNotRunning) {
				return nil // it stopped: the stream ends
			}
			return err
		}
		if err := enc.Encode(Event{Type: "stats", ID: id, Data: s}); err != nil {
			return err
		}
		if once {
			return nil
		}
		time.Sleep(interval)
	}
}
