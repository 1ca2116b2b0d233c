//! shim6d as a library: configuration, control interface, data plane and the service
//! loop; `src/main.rs` is a thin command line around [`run`].
pub mod config;
pub mod control;
pub mod core;
pub mod dataplane;
pub mod service;
mod sys;
