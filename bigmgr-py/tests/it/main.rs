//! Integration tests of the REST backend ([`bigmgr_py::rest::Rest`]) against real processes:
//! each test starts `bigmgr serve` on a free loopback port with its own data directory (and,
//! for a deploy, a real `bigmgr-agent`), through the `bigmgr-test-support` harness.
//!
//! The binaries are not this crate's: build them first with
//! `cargo build -p bigmgr-server --bin bigmgr -p bigmgr-agent --bin bigmgr-agent`. The harness finds them in the
//! target directory this test runs from (or `BIGMGR_TARGET_DIR`).

mod agent;
mod rest;

use bigmgr_core::view::JobDetailView;
use bigmgr_py::backend::Backend;
use bigmgr_py::rest::Rest;
use bigmgr_test_support::{ServerProc, stacks_dir, wait_until};
use std::sync::Arc;
use std::time::Duration;

/// Starts `bigmgr serve` with the repository's stacks and 1 s heartbeats.
fn server() -> ServerProc {
    ServerProc::serve()
        .stacks(&stacks_dir())
        .fast_heartbeat()
        .start()
}

/// A REST backend of `server` with the admin token.
fn rest(server: &ServerProc) -> Arc<dyn Backend> {
    Arc::new(
        Rest::new(
            &server.url,
            Some(&server.token()),
            Duration::from_secs(30),
            None,
        )
        .expect("the server's URL is valid"),
    )
}

/// Polls a job until it is final, and answers it.
async fn wait_job(rest: &dyn Backend, id: i64, timeout: Duration) -> JobDetailView {
    wait_until(&format!("job {id} to end"), timeout, || async {
        let j = rest.job(id).await.expect("the job");
        j.job.state.is_final().then_some(j)
    })
    .await
}
