package i8042

// State is the controller as a snapshot holds it.
type State struct {
	Status  byte `json:"status"`
	Config  byte `json:"config"`
	Out     byte `json:"out"`
	Pending byte `json:"pending"`
}

// Save returns the controller's state.
func (c *Controller) Save() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return State{Status: c.status, Config: c.config, Out: c.out, Pending: c.pending}
}

// Restore sets the controller to s.
func (c *Controller) Restore(s State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.config, c.out, c.pending = s.Status, s.Config, s.Out, s.Pending
}
