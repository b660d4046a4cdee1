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
// whole file as one object when create failed, so kiln writes an error
// there once per failed command, and warnings (Warn: what config.json
// asks that the VM does not honour) only once a create succeeded.
type Log struct {
	Path   string // "" for none
	Format string // "json" or "text"
}

// Error appends msg to the log, if there is one.
func (l Log) Error(msg string) error { return l.write("error", msg) }

// Warn appends msg to the log as a warning (logrus's level name, as
// runc's warnings have it).
func (l Log) Warn(msg string) error { return l.write("warning", msg) }

func (l Log) write(level, msg string) error {
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
		}{level, msg, now})
	} else {
		line = fmt.Appendf(nil, "time=%q level=%s msg=%q", now, level, msg)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write the log %s: %w", l.Path, err)
	}
	return nil
}
