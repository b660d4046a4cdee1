package config

// Observe says what kiln shows about a VM's inside while it runs: the
// exit trace and the exit statistics (kiln run --trace, --stats).
type Observe struct{}
