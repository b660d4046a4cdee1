package ipc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxLine bounds a message: no kiln message comes near it, and a reader
// never holds more than this for one line.
const MaxLine = 1 << 20

// Write sends v as one line of JSON.
func Write(w io.Writer, v any) error {
	what := strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("send %s: %w", what, err)
	}
	return nil
}

// Reader reads messages, one line of JSON each.
type Reader struct{ r *bufio.Reader }

// NewReader reads messages from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r)} }

// ErrClosed says the other process closed its end before a whole message
// came: it ended, or chose to say nothing.
var ErrClosed = errors.New("the other side closed the connection")

// Read reads the next message into v. A line cut short by the end of the
// stream is no message: ErrClosed.
func (r *Reader) Read(v any) error {
	what := strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
	var line []byte
	for {
		chunk, err := r.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxLine {
			return fmt.Errorf("read %s: a line of more than %d bytes", what, MaxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return fmt.Errorf("read %s: %w", what, ErrClosed)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		break
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

// Read reads one message from r into v (for a stream that carries one).
func Read(r io.Reader, v any) error { return NewReader(r).Read(v) }
