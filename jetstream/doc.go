// Package jetstream makes NATS JetStream eventpipe's durable store, and
// NATS a source and an output.
//
// The store (type jetstream, the persist section of pipeline.yaml) keeps
// every accepted event in a JetStream stream before the stages see it: a
// source is answered only once the stream acknowledged the event, and the
// pipeline reads the stream with a durable consumer that acknowledges a
// batch only after every output it was routed to took it or it was
// dead-lettered. By default the stream lives in a nats-server embedded in
// the process, with file storage under a data directory and no port open;
// url points at an external server or cluster through the same code.
//
// Encoding. A stored message holds the events of one type from one
// published batch, as JSON lines (the event format of docs/event-format.md),
// under the subject <subject_prefix>.<type>. One message per event would
// give JetStream the most to index but costs ~15 times the publishing
// work (see docs/operations.md for the measured trade-off); grouping by
// type keeps subject filters exact for type queries while most of the
// cost is paid once per group.
//
// The package imports the core and the component seam; the core never
// imports it.
package jetstream
