//! Integration tests of the REST backend ([`bigmgr_py::rest::Rest`]) against real processes:
//! each test starts `bigmgr serve` on a free loopback port with its own data directory (and,
//! for a deploy, a real `bigmgr-agent`).
//!
//! The binaries are not this crate's: build them first with
//! `cargo build -p bigmgr-server --bin bigmgr -p bigmgr-agent`. [`harness`] finds them in the
//! target directory this test runs from (or `BIGMGR_TARGET_DIR`).

mod agent;
mod harness;
mod rest;
