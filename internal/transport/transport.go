// Package transport is how daemons move messages to the other machines of
// a dataflow: the contract every implementation (NATS today, Zenoh once
// Go bindings can be had) provides to the daemon.
//
// A stream is one output of one dataflow. Its publisher is the daemon that
// runs the output's node; its subscribers are the daemons that run nodes
// with an input fed by it. Traffic between nodes of one machine never goes
// through a transport.
package transport

// Stream names one output of one dataflow.
type Stream struct {
	Dataflow string
	Node     string
	// Output is the output id as the node sends it ("out", or
	// "operator/out" for runtime nodes).
	Output string
}

func (s Stream) String() string { return s.Dataflow + "/" + s.Node + "/" + s.Output }

// Transport carries streams between daemons.
type Transport interface {
	// Publisher returns the sending end of a stream, which has
	// subscribers subscriptions (one per machine with a node it feeds).
	// Only one publisher per stream may exist at a time.
	Publisher(s Stream, subscribers int) Publisher
	// Subscribe delivers the stream's messages to h, in the order they
	// were published, on one goroutine per subscription. Once Subscribe
	// returns, every message published afterwards reaches h.
	Subscribe(s Stream, h Handler) (Subscription, error)
	// Retarget moves the transport to another endpoint (the coordinator
	// restarted elsewhere); subscriptions are carried over.
	Retarget(endpoint string) error
	// Close ends every subscription and the connection.
	Close() error
}

// Publisher sends the messages of one stream. Calls must not overlap.
type Publisher interface {
	// Publish sends one message: metadata encoded as in abi/PROTOCOL.md,
	// and the payload, of any size. The slices are not kept after the
	// call returns. It waits while the slowest subscriber is too far
	// behind, so that messages wait in the caller's queue, where the
	// oldest can be dropped, rather than on the way.
	Publish(metadata, data []byte) error
	// End says the output closed: subscribers get Closed after every
	// message published before.
	End() error
}

// Handler receives one stream. Its slices are only valid during the call.
type Handler interface {
	Message(metadata, data []byte)
	// Closed is the stream's last call.
	Closed()
	// Lost reports n messages that were published but never arrived
	// whole (detected by their sequence numbers).
	Lost(n uint64)
}

// Subscription is a subscribed stream.
type Subscription interface {
	// Unsubscribe stops deliveries. A Handler call in progress may still
	// finish after it returns.
	Unsubscribe() error
}
