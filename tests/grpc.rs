//! gRPC through the proxy.
mod support;
