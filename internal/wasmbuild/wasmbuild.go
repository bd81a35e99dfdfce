// Package wasmbuild builds a Go package into a wasm plugin the way `make
// plugins` does (standard Go, GOOS=wasip1, -buildmode=c-shared). Tests use
// it to build the plugins they load.
package wasmbuild

import (
	"fmt"
	"os"
	"os/exec"
)

// Build compiles the Go package at pkg (a directory or import path) to out.
func Build(pkg, out string) error {
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s for wasip1: %v\n%s", pkg, err, b)
	}
	return nil
}
