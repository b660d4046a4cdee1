// Package setupfail imports a package that does not exist.
package setupfail

import (
	"testing"

	_ "example.com/nowhere/missing"
)

func TestNever(t *testing.T) {}
