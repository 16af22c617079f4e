//! Typed records as JSON: encode before a write, decode after a read or a
//! stream (serde and serde_json, which the NATS client already uses).
//!
//! ```
//! # let server = memlog_jetstream::testing::Server::start()?;
//! use memlog_jetstream::{json, JetStreamLog};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Order { id: u32, item: String }
//!
//! let log = JetStreamLog::builder(&server.url(), "orders").create_blocking()?;
//! let offset = log.write(json::encode(&Order { id: 7, item: "tea".into() })?)?;
//! let order: memlog::Record<Order> = json::decode(log.read(offset)?)?;
//! assert_eq!(order.data, Order { id: 7, item: "tea".into() });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::Error;
use bytes::Bytes;
use memlog::Record;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `value` as JSON bytes, to write.
///
/// # Errors
/// [`Error::Codec`] if it does not serialize (a map with non-string keys).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, Error> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Codec(e.to_string()))
}

/// A record read or streamed, with its JSON payload decoded.
///
/// # Errors
/// [`Error::Codec`] with the offset and what was wrong.
pub fn decode<T: DeserializeOwned>(record: Record<Bytes>) -> Result<Record<T>, Error> {
    let data = serde_json::from_slice(&record.data)
        .map_err(|e| Error::Codec(format!("record {}: {e}", record.offset)))?;
    Ok(record.map(|_| data))
}
