package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// The HTTP/1.1 httpd speaks (RFC 9112): a request is a line, METHOD
// TARGET HTTP/1.1, then header lines up to an empty one, each line
// ending in CRLF; the answer is a status line, headers and a body of
// Content-Length bytes. A connection carries requests one after another
// until either side says "Connection: close" (HTTP/1.0 closes after
// each). httpd serves GET and HEAD only, so it never reads a body: a
// request that has one is answered and its connection closed.

// Bounds on what a client can make httpd hold.
const (
	maxLine     = 8 << 10 // bytes in the request line or a header line
	maxHeaders  = 100
	idleTimeout = 30 * time.Second // for the next request on a connection
)

// errBadRequest says a client sent something that is not an HTTP/1.x
// request: it is answered 400 and its connection closed.
var errBadRequest = errors.New("bad request")

// request is what httpd reads of a request.
type request struct {
	method, path string
	keepAlive    bool // the connection carries another request after this one
	hasBody      bool // it has a body, which httpd does not read
}

// readRequest reads one request's line and headers. At a clean end of
// the connection, before a request, it returns io.EOF.
func readRequest(r *bufio.Reader) (*request, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || target == "" || (proto != "HTTP/1.1" && proto != "HTTP/1.0") {
		return nil, fmt.Errorf("%w: request line %q", errBadRequest, line)
	}
	path, _, _ := strings.Cut(target, "?")
	req := &request{method: method, path: path, keepAlive: proto == "HTTP/1.1"}
	for n := 0; ; n++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		if line == "" {
			return req, nil
		}
		name, value, ok := strings.Cut(line, ":")
		if n == maxHeaders || !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: header line %q", errBadRequest, line)
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "connection":
			for _, tok := range strings.Split(value, ",") {
				if strings.EqualFold(strings.TrimSpace(tok), "close") {
					req.keepAlive = false
				}
			}
		case "content-length":
			req.hasBody = req.hasBody || value != "0"
		case "transfer-encoding":
			req.hasBody = true
		}
	}
}

// readLine reads a line of at most maxLine bytes (r's buffer) and
// returns it without its CRLF (or LF).
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: a line over %d bytes", errBadRequest, maxLine)
	}
	if errors.Is(err, io.EOF) && len(b) > 0 {
		return "", io.ErrUnexpectedEOF
	}
	if err != nil {
		return "", err
	}
	line := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.ContainsAny(line, "\r\x00") {
		return "", fmt.Errorf("%w: a line with CR or NUL inside", errBadRequest)
	}
	return line, nil
}

// hello is the answer to GET /.
type hello struct {
	Hello string    `json:"hello"`
	Host  string    `json:"host"`
	Time  time.Time `json:"time"`
}

// random is the answer to GET /random: bytes read from /dev/urandom for
// this request, and the address the request came to. Clones of one
// ready-app snapshot each answer with bytes of their own (kiln reseeds
// each one's kernel generator) on an address of their own.
type random struct {
	Random string `json:"random"`
	Addr   string `json:"addr"`
}

// urandom reads n bytes from /dev/urandom, now: not from a generator
// seeded when httpd started, which clones of a snapshot would share.
func urandom(n int) ([]byte, error) {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = io.ReadFull(f, b)
	return b, err
}

// server answers HTTP requests on a listener until shutdown.
type server struct {
	l    net.Listener
	host string
	now  func() time.Time

	mu      sync.Mutex
	conns   map[net.Conn]bool // open connections: true while a request is answered
	closing bool
	wg      sync.WaitGroup
	done    chan struct{} // closed when every connection has ended, after shutdown
}

func newServer(l net.Listener, host string, now func() time.Time) *server {
	return &server{l: l, host: host, now: now, conns: map[net.Conn]bool{}, done: make(chan struct{})}
}

// answer is the status and JSON body for a request.
func (s *server) answer(req *request, local net.Addr) (int, any) {
	if req.method != "GET" && req.method != "HEAD" {
		return 405, map[string]string{"error": "only GET and HEAD"}
	}
	switch req.path {
	case "/":
		return 200, hello{Hello: "kiln", Host: s.host, Time: s.now().UTC()}
	case "/health":
		return 200, map[string]string{"status": "ok"}
	case "/random":
		r, err := urandom(16)
		if err != nil {
			return 500, map[string]string{"error": err.Error()}
		}
		return 200, random{Random: hex.EncodeToString(r), Addr: local.String()}
	}
	return 404, map[string]string{"error": "not found"}
}

var statusText = map[int]string{200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}

// write sends a response; keep says whether the connection goes on.
func (s *server) write(w *bufio.Writer, status int, v any, head, keep bool) error {
	body, _ := json.Marshal(v) // plain values: cannot fail
	body = append(body, '\n')
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n",
		status, statusText[status], s.now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"), len(body))
	if status == 405 {
		w.WriteString("Allow: GET, HEAD\r\n")
	}
	if !keep {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if !head {
		w.Write(body)
	}
	return w.Flush()
}

// serve accepts connections until shutdown, then waits for them to
// end.
func (s *server) serve() error {
	for {
		c, err := s.l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if !closing {
				return err
			}
			<-s.done
			return nil
		}
		if !s.add(c) {
			c.Close()
			continue
		}
		go s.handle(c)
	}
}

// add starts tracking a new connection, unless the server is shutting
// down.
func (s *server) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = false
	s.wg.Add(1)
	return true
}

// track marks c idle (between requests) or busy; false says the server
// is shutting down.
func (s *server) track(c net.Conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = busy
	return !s.closing
}

// handle answers the requests on one connection.
func (s *server) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r, w := bufio.NewReaderSize(c, maxLine), bufio.NewWriter(c)
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		req, err := readRequest(r)
		if errors.Is(err, errBadRequest) {
			s.write(w, 400, map[string]string{"error": "bad request"}, false, false)
		}
		if err != nil {
			return
		}
		if !s.track(c, true) {
			req.keepAlive = false // answer this one, then close
		}
		status, v := s.answer(req, c.LocalAddr())
		keep := req.keepAlive && !req.hasBody && status != 405
		if s.write(w, status, v, req.method == "HEAD", keep) != nil || !keep {
			return
		}
		if !s.track(c, false) {
			return
		}
	}
}

// shutdown stops accepting, closes idle connections, and lets requests
// being answered finish, for at most grace; then serve returns.
func (s *server) shutdown(grace time.Duration) {
	s.mu.Lock()
	s.closing = true
	for c, busy := range s.conns {
		if !busy {
			c.SetReadDeadline(time.Now()) // wakes its reader, which ends
		}
	}
	s.mu.Unlock()
	s.l.Close()
	ended := make(chan struct{})
	go func() { s.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(grace):
	}
	close(s.done)
}
