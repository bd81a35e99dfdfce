//go:build wasip1

package eventpipe

import "unsafe"

func pack(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&b[0])))<<32 | int64(len(b))
}

//go:wasmexport eventpipe_abi_v1
func abiV1() int32 { return 1 }

var manifestBuf []byte

//go:wasmexport eventpipe_manifest
func manifest() int64 {
	manifestBuf = manifestJSON()
	return pack(manifestBuf)
}

//go:wasmexport eventpipe_buffer
func buffer(size int32) int32 {
	if int(size) > cap(in) {
		in = make([]byte, size)
	}
	in = in[:cap(in)]
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

//go:wasmexport eventpipe_init
func initPlugin(ptr, n int32) int32 {
	if err := initWith(in[:n]); err != nil {
		lastErr = err.Error()
		return 1
	}
	return 0
}

//go:wasmexport eventpipe_process
func process(ptr, n int32) int64 {
	res, err := processBatch(in[:n])
	if err != nil {
		lastErr = err.Error()
		return -1
	}
	if len(res) == 0 {
		// An empty output still needs a valid pointer.
		res = append(res[:0], 0)
		return pack(res) &^ 0xffffffff
	}
	return pack(res)
}

var errBuf []byte

//go:wasmexport eventpipe_error
func lastError() int64 {
	errBuf = []byte(lastErr)
	return pack(errBuf)
}
