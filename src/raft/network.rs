//! openraft's RPCs as tonic calls. A connection is made lazily and re-made after a failure.
