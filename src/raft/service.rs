//! The tonic services on the controller listener: raft RPCs and the controller's Execute.
