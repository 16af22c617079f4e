//! The HTTP example's server: `cargo run -p memlog-http-example [ADDR]`.
//!
//! Prints `listening on http://ADDR` once it accepts connections. On Ctrl-C
//! or SIGTERM it closes the log, lets every open stream send what was written
//! and end, and exits 0; if some stream has not ended 10 s after the
//! signal (a client that stopped reading), it exits 1.

use memlog_http_example::{listen_addr, new_log, serve, spawn_producer, AppState, LegacyApi};
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// How long open streams get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memlog-http-example: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen_addr()).await?;
    let addr = listener.local_addr()?;
    // Installed before the address is announced: a signal sent as soon as it
    // is printed is handled, not fatal.
    let signal = shutdown_signal()?;
    let state = AppState::new(new_log());
    let producer = spawn_producer(
        state.log.clone(),
        LegacyApi::default(),
        Duration::from_millis(5),
    );
    // A closed stdout (a caller that read only the first line) is no reason
    // to stop serving: write errors are ignored.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = writeln!(
        out,
        "  follow the log:    curl -N 'http://{addr}/stream?from=0'"
    );
    let _ = writeln!(
        out,
        "  append a record:   curl -X POST --data 'hello' http://{addr}/records"
    );
    let _ = writeln!(out, "  read one record:   curl http://{addr}/records/0");
    let _ = writeln!(
        out,
        "  a future offset:   curl -i http://{addr}/records/999999999   (404)"
    );
    let _ = writeln!(
        out,
        "  stop:              Ctrl-C or SIGTERM (open streams end cleanly)"
    );
    drop(out);

    let (signalled, grace_starts) = tokio::sync::oneshot::channel();
    let server = serve(listener, state.clone(), async move {
        let name = signal.await;
        eprintln!("{name}: closing the log; open streams send what was written, then end");
        let _ = signalled.send(());
    });
    let grace = async move {
        match grace_starts.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => served?,
        () = grace => {
            return Err(std::io::Error::other(format!(
                "{} stream(s) still open {SHUTDOWN_GRACE:?} after the signal; gave up",
                state.live_streams()
            )));
        }
    }
    // The log is closed: the producer's next write fails and it returns.
    producer.join().expect("the producer does not panic");
    eprintln!("shut down cleanly");
    Ok(())
}

/// A future that completes with the signal's name on the first Ctrl-C
/// (SIGINT) or SIGTERM; the handlers are installed when this is called.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

/// A future that completes on the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    Ok(async {
        // If the handler can not be installed, never shut down by signal.
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    })
}
