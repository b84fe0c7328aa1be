//! Endpoints: FIFOs, files that are both input and output, closed or non-blocking standard streams, names in messages.
