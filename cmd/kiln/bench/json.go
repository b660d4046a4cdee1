package bench

import (
	"encoding/json"
	"io"
)

// WriteJSON writes the results, every sample included, as indented JSON.
// Durations are integer nanoseconds, sizes KiB; each method also carries
// its summaries so a reader need not recompute them.
func WriteJSON(w io.Writer, r *Results) error {
	type methodOut struct {
		Method
		Userspace *Summary `json:"userspace,omitempty"`
		Exit      *Summary `json:"exit,omitempty"`
	}
	out := struct {
		*Results
		Methods []methodOut `json:"methods"`
	}{Results: r}
	for _, m := range r.Methods {
		mo := methodOut{Method: m}
		if s := m.Summary(ToUserspace); s.N > 0 {
			mo.Userspace = &s
		}
		if s := m.Summary(ToExit); s.N > 0 {
			mo.Exit = &s
		}
		out.Methods = append(out.Methods, mo)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// ReadJSON reads results written by WriteJSON.
func ReadJSON(rd io.Reader) (*Results, error) {
	var r Results
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}
