//! [`Record`], a record read from a log (a copy), [`RecordRef`], one lent
//! by reference, and [`Offset`].

use std::time::SystemTime;

/// A position in a log. Offsets are dense: each write takes the next one.
///
/// Its text form is the decimal number (serde: an unsigned integer). Note for
/// JSON consumers in JavaScript: offsets above 2^53 lose precision there.
///
/// ```
/// use memlog::{Log, Offset};
///
/// let log = Log::builder().start_offset(100).build()?;
/// let offset: Offset = log.write("x")?;
/// assert_eq!(offset, 100);
/// # Ok::<(), memlog::Error>(())
/// ```
pub type Offset = u64;

/// A record read from a log.
///
/// With the `serde` feature it serializes as
/// `{"offset":7,"created":"2024-05-01T12:00:00.123456789Z","data":…}`:
/// `created` in RFC 3339, UTC, with nanoseconds, so that it round-trips
/// exactly. Times before 1970 or after 9999 can not be written in that form
/// and fail to serialize.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let log = memlog::Log::new();
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// log.write_timed(t, "hello")?;
/// let r = log.read(0)?;
/// assert_eq!(r, memlog::Record { offset: 0, created: t, data: "hello" });
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Record<T> {
    /// Where the record sits in the log.
    pub offset: Offset,
    /// The log's clock, read by the writer just before it claimed the offset.
    /// With concurrent writers, a later offset can carry an earlier time.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::rfc3339"))]
    pub created: SystemTime,
    /// The payload.
    pub data: T,
}

impl<T> Record<T> {
    /// The same record with its payload transformed, for example into a form
    /// to serialize.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write(b"hi".to_vec())?;
    /// let r = log.read(0)?.map(|d| String::from_utf8_lossy(&d).into_owned());
    /// assert_eq!(r.data, "hi");
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "map returns a new record"]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Record<U> {
        Record {
            offset: self.offset,
            created: self.created,
            data: f(self.data),
        }
    }
}

/// A record lent by reference: its payload stays in the log's slot, and the
/// borrow ends before the log may free it. Given to the closure of
/// [`Stream::visit`](crate::Stream::visit) and returned by [`Pinned::get`](crate::Pinned::get).
///
/// ```
/// use memlog::{Log, Record, RecordRef};
///
/// let log = Log::new();
/// log.write(String::from("hello"))?;
/// let pinned = log.pin();
/// let r: RecordRef<'_, String> = pinned.get(0)?;
/// assert_eq!((r.offset, r.data.as_str()), (0, "hello"));
/// let owned: Record<String> = r.to_owned(); // clones the payload
/// assert_eq!(owned.data, "hello");
/// # Ok::<(), memlog::Error>(())
/// ```
///
/// With the `serde` feature it serializes exactly as a [`Record`] does,
/// straight from the slot:
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// let log = memlog::Log::new();
/// log.write(String::from("hi"))?;
/// let by_ref = serde_json::to_string(&log.pin().get(0)?).unwrap();
/// assert_eq!(by_ref, serde_json::to_string(&log.read(0)?).unwrap());
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RecordRef<'a, T> {
    /// Where the record sits in the log.
    pub offset: Offset,
    /// As [`Record::created`].
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::serde_impl::rfc3339::serialize")
    )]
    pub created: SystemTime,
    /// The payload, in place.
    pub data: &'a T,
}

impl<T> Clone for RecordRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for RecordRef<'_, T> {}

impl<T: Clone> RecordRef<'_, T> {
    /// A [`Record`] with a clone of the payload, to keep after the borrow
    /// ends.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write(vec![1u8, 2])?;
    /// let mut kept = Vec::new();
    /// let mut stream = log.stream(0);
    /// stream.try_visit(10, |r| kept.push(r.to_owned()))?;
    /// assert_eq!(kept[0].data, [1, 2]);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "to_owned returns the copy"]
    pub fn to_owned(&self) -> Record<T> {
        Record {
            offset: self.offset,
            created: self.created,
            data: self.data.clone(),
        }
    }
}

impl<T: Clone> From<RecordRef<'_, T>> for Record<T> {
    /// As [`RecordRef::to_owned`].
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write("x")?;
    /// let r: memlog::Record<&str> = log.pin().get(0)?.into();
    /// assert_eq!(r, log.read(0)?);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    fn from(r: RecordRef<'_, T>) -> Self {
        r.to_owned()
    }
}
