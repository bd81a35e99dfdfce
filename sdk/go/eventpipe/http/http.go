// Package http lets an eventpipe plugin make HTTP requests through the
// host (the "http" capability, sdk/ABI.md): only to the hosts the pipeline
// lists in allowed_hosts. Import it only in plugins that declare "http".
package http

import "errors"

// Request is an HTTP request.
type Request struct {
	Method  string // default POST
	URL     string
	Headers map[string]string
	Body    []byte
}

// Response is what the server answered.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// ErrUnavailable is returned outside wasm.
var ErrUnavailable = errors.New("eventpipe http: only available inside a plugin")
