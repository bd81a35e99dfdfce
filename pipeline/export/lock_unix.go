//go:build unix

package export

import (
	"os"
	"syscall"
)

// lockFile takes an advisory lock (flock) on path, created if need be:
// shared or exclusive, failing at once when it is held in a conflicting
// way. Closing the file releases it.
func lockFile(path string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := relock(f, exclusive); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// relock changes the kind of a lock lockFile took.
func relock(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
}
