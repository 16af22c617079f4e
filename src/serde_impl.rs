//! serde support (feature `serde`): [`Record`](crate::Record)'s `created` as
//! RFC 3339 text, and [`Error`]'s stable `{"error", "message"}` form.

use crate::Error;
use serde::de::{self, Deserializer};
use serde::ser::{self, SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// `SystemTime` as RFC 3339 in UTC with nanoseconds
/// (`2024-05-01T12:00:00.123456789Z`), through humantime. Parsing accepts any
/// number of fractional digits and `Z` or `+00:00`.
pub(crate) mod rfc3339 {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// First second that humantime can not format (year 10000).
    const YEAR_10000: u64 = 253_402_300_800;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        // humantime panics before the epoch and fails from year 10000 on:
        // report either as a serialization error instead.
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) if d.as_secs() < YEAR_10000 => {
                s.collect_str(&humantime::format_rfc3339_nanos(*t))
            }
            _ => Err(ser::Error::custom(
                "time outside 1970..=9999 has no RFC 3339 form here",
            )),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        humantime::parse_rfc3339(&s).map_err(de::Error::custom)
    }
}

/// `{"error": kind, "message": text}`, plus the variant's fields where it has
/// some: `len` and `max` (record/batch too large), `skipped` (lagged),
/// `detail` (invalid config), `key` (unknown key). `kind` is [`Error::kind`]; `message` is the
/// `Display` text. Deserializing reads `error` and the fields, and ignores
/// `message` and unknown fields.
impl Serialize for Error {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("error", self.kind())?;
        m.serialize_entry("message", &self.to_string())?;
        match self {
            Error::RecordTooLarge { len, max } | Error::BatchTooLarge { len, max } => {
                m.serialize_entry("len", len)?;
                m.serialize_entry("max", max)?;
            }
            Error::Lagged { skipped } => m.serialize_entry("skipped", skipped)?,
            Error::InvalidConfig(detail) => m.serialize_entry("detail", detail)?,
            Error::UnknownKey(key) => m.serialize_entry("key", key)?,
            _ => {}
        }
        m.end()
    }
}

#[derive(Deserialize)]
struct Repr {
    error: String,
    len: Option<usize>,
    max: Option<usize>,
    skipped: Option<u64>,
    detail: Option<String>,
    key: Option<String>,
}

/// Reads the form written by `Serialize` (see there).
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Repr::deserialize(d)?;
        let need = |v: Option<usize>, name| v.ok_or_else(|| de::Error::missing_field(name));
        Ok(match r.error.as_str() {
            "future_offset" => Error::FutureOffset,
            "out_of_range" => Error::OutOfRange,
            "lagged" => Error::Lagged {
                skipped: r
                    .skipped
                    .ok_or_else(|| de::Error::missing_field("skipped"))?,
            },
            "closed" => Error::Closed,
            "read_only" => Error::ReadOnly,
            "full" => Error::Full,
            "cancelled" => Error::Cancelled,
            "timeout" => Error::Timeout,
            "record_too_large" => Error::RecordTooLarge {
                len: need(r.len, "len")?,
                max: need(r.max, "max")?,
            },
            "batch_too_large" => Error::BatchTooLarge {
                len: need(r.len, "len")?,
                max: need(r.max, "max")?,
            },
            "invalid_config" => {
                Error::InvalidConfig(r.detail.ok_or_else(|| de::Error::missing_field("detail"))?)
            }
            "unknown_key" => {
                Error::UnknownKey(r.key.ok_or_else(|| de::Error::missing_field("key"))?)
            }
            other => {
                return Err(de::Error::unknown_variant(
                    other,
                    &[
                        "future_offset",
                        "out_of_range",
                        "lagged",
                        "record_too_large",
                        "closed",
                        "cancelled",
                        "timeout",
                        "invalid_config",
                        "unknown_key",
                        "batch_too_large",
                        "read_only",
                        "full",
                    ],
                ))
            }
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{Error, Log, Record};
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn record_serializes_with_rfc3339_nanos_and_round_trips() {
        let created = UNIX_EPOCH + Duration::new(1_714_564_800, 123_456_789);
        let r = Record {
            offset: 7,
            created,
            data: "hi".to_string(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"offset": 7, "created": "2024-05-01T12:00:00.123456789Z", "data": "hi"})
        );
        let back: Record<String> = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn record_from_a_log_round_trips_exactly() {
        let log = Log::new();
        log.write(vec![1u8, 2, 3]).unwrap();
        let r = log.read(0).unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Record<Vec<u8>>>(&text).unwrap(), r);
    }

    #[test]
    fn record_accepts_other_rfc3339_spellings() {
        let r: Record<u8> = serde_json::from_value(
            json!({"offset": 1, "created": "2024-05-01T12:00:00.5+00:00", "data": 3}),
        )
        .unwrap();
        assert_eq!(
            r.created,
            UNIX_EPOCH + Duration::new(1_714_564_800, 500_000_000)
        );
        assert!(serde_json::from_value::<Record<u8>>(
            json!({"offset": 1, "created": "yesterday", "data": 3})
        )
        .is_err());
    }

    #[test]
    fn times_without_an_rfc3339_form_fail_instead_of_panicking() {
        for created in [
            UNIX_EPOCH - Duration::from_secs(1),
            UNIX_EPOCH + Duration::from_secs(253_402_300_800),
        ] {
            let r = Record {
                offset: 0,
                created,
                data: (),
            };
            assert!(serde_json::to_string(&r).is_err());
        }
        let last = UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
        let r = Record {
            offset: 0,
            created: last,
            data: (),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("9999-12-31T23:59:59.999999999Z"), "{text}");
    }

    #[test]
    fn errors_have_stable_kinds_and_round_trip() {
        let all = [
            Error::FutureOffset,
            Error::OutOfRange,
            Error::Lagged { skipped: 7 },
            Error::RecordTooLarge { len: 10, max: 5 },
            Error::Closed,
            Error::Cancelled,
            Error::Timeout,
            Error::InvalidConfig("segment_size must be > 0".into()),
            Error::UnknownKey("teams".into()),
            Error::BatchTooLarge { len: 9, max: 4 },
            Error::ReadOnly,
            Error::Full,
        ];
        for e in all {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["error"], e.kind());
            assert_eq!(v["message"], e.to_string());
            assert_eq!(serde_json::from_value::<Error>(v).unwrap(), e);
        }
        assert_eq!(
            serde_json::to_value(Error::OutOfRange).unwrap(),
            json!({"error": "out_of_range",
                   "message": "offset is out of range: below the earliest retained offset"})
        );
        assert_eq!(
            serde_json::to_value(Error::RecordTooLarge { len: 10, max: 5 }).unwrap(),
            json!({"error": "record_too_large",
                   "message": "record too large: 10 bytes, the maximum is 5 bytes",
                   "len": 10, "max": 5})
        );
    }

    #[test]
    fn error_deserialize_rejects_unknown_kinds_and_missing_fields() {
        assert!(serde_json::from_value::<Error>(json!({"error": "nope"})).is_err());
        assert!(serde_json::from_value::<Error>(json!({"error": "record_too_large"})).is_err());
        // `message` is optional and extra fields are ignored.
        assert_eq!(
            serde_json::from_value::<Error>(json!({"error": "closed", "extra": 1})).unwrap(),
            Error::Closed
        );
    }
}
