// Package stage holds the native stages that run on batches after the bus
// buffer: Filter (conditions on event fields and data), Sanitize (paths,
// secrets, user data) and Router (type patterns to named outputs).
//
// The logic is plain Go with no operating-system dependencies, so the
// built-in wasm plugins (plugins/filter, plugins/sanitize) compile the very
// same code to wasm; a differential test holds the two to identical output.
package stage
