// Package mainfails fails in TestMain, after its tests passed.
package mainfails

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Println("leaked 3 temporary directories")
	if code == 0 {
		code = 1
	}
	os.Exit(code)
}

func TestFine(t *testing.T) {}
