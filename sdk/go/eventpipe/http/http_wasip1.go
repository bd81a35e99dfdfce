//go:build wasip1

package http

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"unsafe"
)

//go:wasmimport eventpipe http_request
func httpRequest(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) int32

// Do sends req through the host. An error is a refusal (a host not in
// allowed_hosts) or a network failure; an HTTP error status is a Response.
func Do(req Request) (Response, error) {
	wire, _ := json.Marshal(map[string]any{
		"method": req.Method, "url": req.URL, "headers": req.Headers,
		"body": base64.StdEncoding.EncodeToString(req.Body),
	})
	buf := make([]byte, 64<<10)
	for {
		n := httpRequest(unsafe.Pointer(&wire[0]), uint32(len(wire)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
		if n == -1 {
			return Response{}, errors.New("eventpipe http: the host could not write the response")
		}
		if n < 0 {
			buf = make([]byte, -n) // too small: the host said how much it needs
			continue
		}
		var r struct {
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body"`
			Error   string            `json:"error"`
		}
		if err := json.Unmarshal(buf[:n], &r); err != nil {
			return Response{}, err
		}
		if r.Error != "" {
			return Response{}, errors.New(r.Error)
		}
		body, _ := base64.StdEncoding.DecodeString(r.Body)
		return Response{Status: r.Status, Headers: r.Headers, Body: body}, nil
	}
}
