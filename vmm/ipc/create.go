package ipc

// Created is a container's VMM telling kiln create that the container is
// created (its VM runs, the guest has set it up and waits for start), or
// why it could not be. Written by the VMM on its fd 3, read by create.
type Created struct {
	Error string `json:"error,omitempty"`
}

// Adopted is create's answer to a Created without an error: the state
// directory, the pid file and the console socket are done, and the VMM
// lives on its own from now on. A VMM that reads the end of the stream
// instead ends its VM: its create died before it could record it.
// Written by create, read by the VMM.
type Adopted struct{}
