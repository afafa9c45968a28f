// Package wire holds what travels on the wire, spelled once for the bus and
// every transport: the CloudEvents attribute keys busline writes and reads,
// busline's own busline_ failure keys and the failure record, and the names
// of a group's lane topics. It is a leaf package: transports import it and
// package transports, never the typed bus or the middleware.
//
// # CloudEvents
//
// busline writes CloudEvents 1.0 in binary content mode: the attributes are
// metadata under the ce_ prefix (MetaID, MetaType, ...) and the payload is
// the event's data. Each transport maps the metadata to its protocol
// binding's header names. Reading is liberal: content types are compared by
// media type only (MediaType), and events in structured mode
// (ReadStructured) are read as well.
//
// # Failure metadata
//
// The failure pipeline records a failure under the busline_ prefix: the
// Meta constants of failure.go are the complete list, and Failure reads and
// writes them as one record.
package wire
