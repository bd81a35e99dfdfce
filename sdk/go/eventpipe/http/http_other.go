//go:build !wasip1

package http

// Do is only available inside a plugin (GOOS=wasip1).
func Do(Request) (Response, error) { return Response{}, ErrUnavailable }
