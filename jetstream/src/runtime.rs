//! [`Runtime`]: the small tokio runtime that the blocking API and a
//! blocking replica run on (as `reqwest::blocking` does).

use crate::Error;
use std::fmt;
use std::future::Future;

/// The runtime that runs the connection and the blocking calls. Dropping it
/// stops its threads without waiting (and never panics, even inside another
/// runtime).
pub(crate) struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    pub(crate) fn new() -> Result<Runtime, Error> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("memlog-jetstream")
            .enable_all()
            .build()
            .map(|rt| Runtime(Some(rt)))
            .map_err(|e| Error::invalid(format!("could not start the client runtime: {e}")))
    }

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0
            .as_ref()
            .expect("runtime lives until drop")
            .block_on(f)
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("runtime lives until drop").handle()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Runtime")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
