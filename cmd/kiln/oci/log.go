package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Log is the file an engine passes with --log: where runc writes its
// errors, and where containerd's shim and podman (with
// runtime_supports_json) read them. With --log-format json each error is
// one object on a line, {"level":"error","msg":...,"time":RFC 3339};
// containerd takes the last line whose level is error, podman decodes the
// whole file as one object, so kiln writes only errors there, one per
// failed command.
type Log struct {
	Path   string // "" for none
	Format string // "json" or "text"
}

// Error appends msg to the log, if there is one.
func (l Log) Error(msg string) error {
	if l.Path == "" {
		return nil
	}
	f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open the log %s: %w", l.Path, err)
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var line []byte
	if l.Format == "json" {
		line, _ = json.Marshal(struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Time  string `json:"time"`
		}{"error", msg, now})
	} else {
		line = fmt.Appendf(nil, "time=%q level=error msg=%q", now, msg)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write the log %s: %w", l.Path, err)
	}
	return nil
}
