package main

import (
	"maps"
	"os"
	"slices"
	"strings"
)

// The guest-wide environment. kiln can set a variable for every program
// of a guest through the kernel command line: the kernel hands a
// KEY=VALUE parameter it does not know to init as its environment. Under
// kvm-pvm it sets two (config.PVMGuestEnv) that keep Go's runtime and
// glibc off the AVX registers, which the guest kernel cannot save there.
// Programs that init starts with its own environment (kiln run's
// command, the shell) inherit them; a container's process and an exec,
// which get an environment of their own, get them from withGuestEnv.

// guestEnvSep lists the variables that init passes on to every process,
// with the separator of the settings in each.
var guestEnvSep = map[string]string{
	"GODEBUG":        ",",
	"GLIBC_TUNABLES": ":",
}

// guestEnv is what init's environment held of them when it started,
// before a job's environment was applied.
var guestEnv = func() map[string]string {
	m := map[string]string{}
	for k := range guestEnvSep {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			m[k] = v
		}
	}
	return m
}()

// withGuestEnv returns env with the guest-wide variables added. Where env
// sets one too, its settings follow the guest's in the same variable, so
// that the process's own win where both set the same thing (later
// settings override earlier ones in GODEBUG and GLIBC_TUNABLES alike).
func withGuestEnv(env []string) []string {
	if len(guestEnv) == 0 {
		return env
	}
	out := make([]string, 0, len(env)+len(guestEnv))
	seen := map[string]bool{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if g, ok := guestEnv[k]; ok && !seen[k] {
			seen[k] = true
			kv = k + "=" + mergeSettings(g, v, guestEnvSep[k])
		}
		out = append(out, kv)
	}
	for _, k := range slices.Sorted(maps.Keys(guestEnv)) {
		if !seen[k] {
			out = append(out, k+"="+guestEnv[k])
		}
	}
	return out
}

// mergeSettings joins the guest's settings and a process's own.
func mergeSettings(guest, own, sep string) string {
	switch {
	case own == "":
		return guest
	case own == guest || strings.HasPrefix(own, guest+sep):
		return own // already merged: an exec of init's own environment
	}
	return guest + sep + own
}
