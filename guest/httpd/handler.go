package main

import (
	"encoding/json"
	"net/http"
	"time"
)

// hello is the answer to GET /.
type hello struct {
	Hello string    `json:"hello"`
	Host  string    `json:"host"`
	Time  time.Time `json:"time"`
}

// newHandler answers GET (and HEAD) / with a hello naming host and the
// time now returns, and GET /health with {"status":"ok"}; other paths
// are 404, other methods 405.
func newHandler(host string, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, hello{Hello: "kiln", Host: host, Time: now().UTC()})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v) // plain values: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
