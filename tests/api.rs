//! The API as a user of std and futures meets it: no inherent method shadows,
//! or is shadowed by, a trait method in scope (issue #8), and ended streams
//! stay ended (`FusedIterator`, `FusedStream`).

use memlog::{Error, Log, Stream};
use std::iter::FusedIterator;

/// `Iterator` is in scope (the prelude) and is implemented for `&mut Stream`,
/// so on a `&mut Stream` method lookup tries `Iterator`'s methods before the
/// stream's own: `next_offset` must still reach the stream's method (its old
/// name, `position`, resolved to `Iterator::position` there: E0061), and
/// `Iterator::position` is still reachable.
fn through_mut_ref(s: &mut Stream<u32>) {
    assert_eq!(s.next_offset(), 0);
    assert_eq!(s.next().unwrap().unwrap().data, 10);
    assert_eq!(s.next_offset(), 1);
    // `Iterator::position` is the iterator's: the index of the first match.
    assert_eq!(s.position(|r| r.unwrap().data == 12), Some(1));
    assert_eq!(s.next_offset(), 3);
    // The other inherent names next to `Iterator`'s.
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
    assert_eq!(
        s.recv_timeout(std::time::Duration::ZERO),
        Err(Error::Timeout)
    );
    assert_eq!(s.ended(), None);
    assert!(!s.canceller().is_cancelled());
}

#[test]
fn inherent_names_through_mut_ref_with_iterator_in_scope() {
    let log = Log::new();
    log.write_batch([10u32, 11, 12]).unwrap();
    let mut stream = log.stream(0);
    through_mut_ref(&mut stream);
    assert_eq!(stream.next_offset(), 3);
}

fn fused<I: FusedIterator>(_: &I) {}

/// A log that keeps one record: each write purges the one before.
fn one_record_segments() -> Log<u8> {
    Log::builder()
        .segment_size(1)
        .history_segments(0)
        .build()
        .unwrap()
}

/// Every ending is for good: `None` for ever after the first `None`.
#[test]
fn stream_is_fused_after_each_ending() {
    let log = one_record_segments();
    let mut behind = log.stream(0);
    let mut cancelled = log.stream(0);
    cancelled.canceller().cancel();
    log.write_batch([1]).unwrap();
    log.write(2).unwrap(); // purges offset 0
    log.close();
    let mut closed = log.stream(1);
    fused(&closed);

    assert_eq!(closed.next().unwrap().unwrap().data, 2);
    assert_eq!(behind.next(), Some(Err(Error::OutOfRange)));
    assert_eq!(cancelled.next(), Some(Err(Error::Cancelled)));
    for (s, why) in [
        (&mut closed, Error::Closed),
        (&mut behind, Error::OutOfRange),
        (&mut cancelled, Error::Cancelled),
    ] {
        for _ in 0..3 {
            assert_eq!(s.next(), None);
        }
        assert_eq!(s.ended(), Some(&why));
        assert_eq!(s.try_recv(), Err(why));
        assert_eq!(s.next(), None);
    }
}

#[cfg(feature = "async")]
mod async_api {
    use futures_core::FusedStream;
    use memlog::{Error, Log};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// With `TryStreamExt` in scope, `s.try_next().await` is the trait's
    /// (the stream's own method used to be called `try_next` and hid it).
    #[test]
    fn try_stream_ext_try_next_is_not_shadowed() {
        use futures_util::TryStreamExt;

        let log = Log::new();
        log.write_batch(["a", "b"]).unwrap();
        log.close();
        let mut s = log.stream_async(0);
        block_on(async {
            let first: Option<memlog::Record<&str>> = s.try_next().await.unwrap();
            assert_eq!(first.unwrap().data, "a");
            assert_eq!(s.try_next().await, Ok(Some(log.read(1)?)));
            assert_eq!(s.try_next().await, Ok(None));
            Ok::<(), Error>(())
        })
        .unwrap();
        // The stream's own non-waiting read, next to the trait's.
        assert_eq!(s.try_recv(), Err(Error::Closed));
    }

    /// With `StreamExt` in scope, the inherent names still resolve.
    #[test]
    fn stream_ext_in_scope_inherent_names_resolve() {
        use futures_util::StreamExt;

        let log = Log::new();
        log.write(1u8).unwrap();
        let mut s = log.stream_async(0);
        assert_eq!(s.next_offset(), 0);
        assert_eq!(block_on(s.next()).unwrap().unwrap().data, 1);
        let by_ref = &mut s;
        assert_eq!(by_ref.next_offset(), 1);
        assert_eq!(s.try_recv(), Err(Error::FutureOffset));
        assert_eq!(s.ended(), None);
        s.canceller().cancel();
        assert_eq!(block_on(s.next()), Some(Err(Error::Cancelled)));
    }

    /// `is_terminated` turns true when `None` is returned, and stays so.
    #[test]
    fn async_stream_is_fused_after_each_ending() {
        use futures_util::StreamExt;

        let log = super::one_record_segments();
        let mut behind = log.stream_async(0);
        let mut cancelled = log.stream_async(0);
        cancelled.canceller().cancel();
        log.write(1).unwrap();
        log.write(2).unwrap(); // purges offset 0
        log.close();
        let mut closed = log.stream_async(1);
        block_on(async {
            assert!(!closed.is_terminated());
            assert_eq!(closed.next().await.unwrap().unwrap().data, 2);
            assert!(!closed.is_terminated());
            assert_eq!(behind.next().await, Some(Err(Error::OutOfRange)));
            assert!(!behind.is_terminated(), "None not yet returned");
            assert_eq!(cancelled.next().await, Some(Err(Error::Cancelled)));
            for s in [&mut closed, &mut behind, &mut cancelled] {
                for _ in 0..3 {
                    assert_eq!(s.next().await, None);
                    assert!(s.is_terminated());
                }
            }
        });
        // Ended through `try_recv`: the next poll is `None`, then terminated.
        let mut s = log.stream_async(2);
        assert_eq!(s.try_recv(), Err(Error::Closed));
        assert!(!s.is_terminated());
        assert_eq!(block_on(s.next()), None);
        assert!(s.is_terminated());
        assert_eq!(log.waiter_count(), 0);
    }

    #[test]
    fn auto_traits() {
        fn send_static_debug<T: Send + 'static + std::fmt::Debug + Unpin>() {}
        send_static_debug::<memlog::AsyncStream<u64>>();
        send_static_debug::<memlog::AsyncStream<String>>();
    }
}
