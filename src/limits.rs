//! The bounds every input is held to, in one place.
//!
//! JSON shape limits are fixed (not flags) because they are what makes every stored document
//! readable: anything the write path accepts nests less deeply than serde_json's own recursion
//! limit (128), so the store can always decode it again. The same limits are checked on HTTP
//! bodies (on the raw bytes, before any tree is built), on gRPC `Struct`s and in the engine on
//! the document about to be stored.

use crate::error::Error;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Deepest nesting of objects and arrays in any JSON body or stored document, counted from the
/// outermost value (which is level 1). Jackson's `StreamReadConstraints` bound the same thing.
pub const MAX_JSON_DEPTH: usize = 100;

/// Most keys one JSON object may have, in a body or a stored document.
pub const MAX_OBJECT_KEYS: usize = 10_000;

/// How deep a stored document may nest and still be read back. Larger than [`MAX_JSON_DEPTH`]
/// so documents written before these limits existed (bodies were parsed with serde_json's
/// limit of 128, and stored one or two levels deeper) still read; small enough that decoding
/// never threatens a thread's stack.
pub const MAX_STORED_DEPTH: usize = 160;

/// The per-request bounds the engine enforces (each has a flag; see `config.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most uids one get-profiles call may name.
    pub max_uids: usize,
    /// Most `data` filter patterns one get or suggest call may give.
    pub max_data_patterns: usize,
    /// Most query clauses one suggest may build (Elasticsearch's
    /// `indices.query.bool.max_clause_count`).
    pub max_clause_count: usize,
    /// Most uids or label values one suggest hint may give (Elasticsearch's
    /// `index.max_terms_count`).
    pub max_terms_count: usize,
    /// Threads hashing passwords at once (0: one per core).
    pub hash_threads: usize,
    /// Password hashes that may wait for a thread before more are refused with 429.
    pub hash_queue: usize,
    /// Threads running suggest queries at once (0: one per core).
    pub search_threads: usize,
    /// Suggest queries that may wait for a thread before more are refused with 429.
    pub search_queue: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_uids: 1_000,
            max_data_patterns: 1_000,
            max_clause_count: 1_024,
            max_terms_count: 65_536,
            hash_threads: 0,
            hash_queue: 100,
            search_threads: 0,
            search_queue: 1_000,
        }
    }
}

/// Elasticsearch's `in_flight_requests` circuit breaker: the bytes of request bodies being
/// received or worked on at once, across all callers. A body that would take the total past
/// the limit is refused with 429 before it is read, so many large requests at once cannot
/// take the memory a parsed body needs (a JSON tree is tens of times its text).
pub struct InFlightBytes {
    used: AtomicU64,
    limit: u64,
}

/// Bytes held against [`InFlightBytes`] until dropped.
pub struct InFlightReservation {
    owner: Arc<InFlightBytes>,
    bytes: u64,
}

impl std::fmt::Debug for InFlightReservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightReservation")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Drop for InFlightReservation {
    fn drop(&mut self) {
        self.owner.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl InFlightBytes {
    /// A breaker allowing `limit` bytes in flight.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// Holds `bytes` for the life of the returned reservation, or refuses with Elasticsearch's
    /// `circuit_breaking_exception`.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<InFlightReservation, Error> {
        let mut current = self.used.load(Ordering::Acquire);
        loop {
            let wanted = current.saturating_add(bytes);
            if wanted > self.limit && bytes > 0 {
                return Err(Error::CircuitBreaking(format!(
                    "[in_flight_requests] Data too large, data for [<http_request>] would be [{wanted}/{}], which is larger than the limit of [{}/{}]",
                    human_bytes(wanted),
                    self.limit,
                    human_bytes(self.limit)
                )));
            }
            match self.used.compare_exchange_weak(
                current,
                wanted,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(InFlightReservation {
                        owner: Arc::clone(self),
                        bytes,
                    })
                }
                Err(actual) => current = actual,
            }
        }
    }
}

/// A byte count the way Elasticsearch's `ByteSizeValue` prints it (`10mb`, `1.5kb`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("b", 1)];
    for (unit, size) in UNITS {
        if bytes >= size || size == 1 {
            let value = bytes as f64 / size as f64;
            let rounded = (value * 10.0).round() / 10.0;
            return if rounded.fract() == 0.0 {
                format!("{}{unit}", rounded as u64)
            } else {
                format!("{rounded:.1}{unit}")
            };
        }
    }
    format!("{bytes}b")
}

/// Which JSON limit an input broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonViolation {
    /// Nesting went beyond `MAX_JSON_DEPTH` (the depth reached is `found`).
    TooDeep {
        /// The depth at which the limit was passed.
        found: usize,
    },
    /// An object had more than `MAX_OBJECT_KEYS` keys.
    TooManyKeys,
}

impl JsonViolation {
    /// A sentence for error messages, in the words Jackson uses for the same limit.
    pub fn describe(self) -> String {
        match self {
            JsonViolation::TooDeep { found } => format!(
                "Document nesting depth ({found}) exceeds the maximum allowed ({MAX_JSON_DEPTH})"
            ),
            JsonViolation::TooManyKeys => format!(
                "Document has an object with more than the maximum allowed ({MAX_OBJECT_KEYS}) keys"
            ),
        }
    }
}

/// Checks raw JSON text against the shape limits in one pass, before it is parsed into a tree.
/// Returns the violation and the byte offset where it was found. Only structure is looked at;
/// malformed JSON is left for the parser to report.
pub fn scan_json(
    raw: &[u8],
    max_depth: usize,
    max_keys: usize,
) -> Result<(), (JsonViolation, usize)> {
    // One entry per open container: `Some(keys)` for objects, `None` for arrays. The stack
    // never grows beyond `max_depth`, so the scan holds a bounded amount of memory.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &byte) in raw.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if open.len() == max_depth {
                    return Err((
                        JsonViolation::TooDeep {
                            found: max_depth + 1,
                        },
                        offset,
                    ));
                }
                open.push((byte == b'{').then_some(0));
            }
            b'}' | b']' => {
                open.pop();
            }
            b':' => {
                if let Some(Some(keys)) = open.last_mut() {
                    *keys += 1;
                    if *keys > max_keys {
                        return Err((JsonViolation::TooManyKeys, offset));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a parsed value against the shape limits, counting `value` itself as level
/// `start_depth`. Iterative, so no input can exhaust the stack.
pub fn check_value(value: &Value, start_depth: usize) -> Result<(), JsonViolation> {
    let mut pending: Vec<(&Value, usize)> = vec![(value, start_depth)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => {
                if map.len() > MAX_OBJECT_KEYS {
                    return Err(JsonViolation::TooManyKeys);
                }
                Box::new(map.values())
            }
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        if depth > MAX_JSON_DEPTH {
            return Err(JsonViolation::TooDeep { found: depth });
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// Decodes a stored document. Everything written under the current limits (depth 100) decodes
/// within serde_json's own recursion limit (128), so that is tried first; only a document past
/// it (stored before the write limits existed) takes the slow path: a depth check (a linear
/// scan), then a decode without serde_json's limit. So older documents read back too, and one
/// beyond even [`MAX_STORED_DEPTH`] is a clear error, not a crash.
pub fn decode_stored<T: DeserializeOwned>(raw: &[u8]) -> Result<T, String> {
    match serde_json::from_slice(raw) {
        Ok(value) => return Ok(value),
        Err(error) if !error.to_string().starts_with("recursion limit exceeded") => {
            return Err(error.to_string())
        }
        Err(_) => {}
    }
    // Documents from before the key limit existed may have more keys; they still read.
    if let Err((_, offset)) = scan_json(raw, MAX_STORED_DEPTH, usize::MAX) {
        return Err(format!(
            "stored document nests deeper than {MAX_STORED_DEPTH} levels (at byte {offset})"
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer).map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_scan_counts_objects_and_arrays_and_ignores_brackets_in_strings() {
        assert_eq!(
            scan_json(
                nested(MAX_JSON_DEPTH).as_bytes(),
                MAX_JSON_DEPTH,
                MAX_OBJECT_KEYS
            ),
            Ok(())
        );
        assert_eq!(
            scan_json(
                nested(MAX_JSON_DEPTH + 1).as_bytes(),
                MAX_JSON_DEPTH,
                MAX_OBJECT_KEYS
            ),
            Err((JsonViolation::TooDeep { found: 101 }, 100))
        );
        let quoted = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert_eq!(
            scan_json(quoted.as_bytes(), MAX_JSON_DEPTH, MAX_OBJECT_KEYS),
            Ok(())
        );
    }

    #[test]
    fn the_scan_counts_keys_per_object() {
        let keys = |n: usize| {
            let fields: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{{\"x\":1}}")).collect();
            format!("{{{}}}", fields.join(","))
        };
        assert_eq!(
            scan_json(keys(MAX_OBJECT_KEYS).as_bytes(), 10, MAX_OBJECT_KEYS),
            Ok(())
        );
        assert!(matches!(
            scan_json(keys(MAX_OBJECT_KEYS + 1).as_bytes(), 10, MAX_OBJECT_KEYS),
            Err((JsonViolation::TooManyKeys, _))
        ));
    }

    #[test]
    fn values_are_checked_without_recursion() {
        let deep: Value = serde_json::from_str(&nested(90)).unwrap();
        assert_eq!(check_value(&deep, 1), Ok(()));
        assert_eq!(
            check_value(&deep, 12),
            Err(JsonViolation::TooDeep { found: 101 })
        );
        assert_eq!(check_value(&json!({"a": 1}), MAX_JSON_DEPTH), Ok(()));
    }

    #[test]
    fn the_in_flight_breaker_holds_bytes_until_released() {
        let breaker = InFlightBytes::new(10 << 20);
        let first = breaker.reserve(6 << 20).unwrap();
        let refused = breaker.reserve(5 << 20).unwrap_err();
        assert_eq!(refused.http_status(), 429);
        assert_eq!(refused.es_type(), "circuit_breaking_exception");
        assert_eq!(
            refused.reason(),
            "[in_flight_requests] Data too large, data for [<http_request>] would be [11534336/11mb], which is larger than the limit of [10485760/10mb]"
        );
        drop(first);
        assert!(breaker.reserve(10 << 20).is_ok());
        assert_eq!(human_bytes(1536), "1.5kb");
        assert_eq!(human_bytes(12), "12b");
    }

    #[test]
    fn stored_documents_beyond_serde_defaults_still_decode() {
        let legacy = nested(140);
        assert!(serde_json::from_str::<Value>(&legacy).is_err());
        let decoded: Value = decode_stored(legacy.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&decoded).unwrap(), legacy);
        let hopeless = nested(MAX_STORED_DEPTH + 1);
        assert!(decode_stored::<Value>(hopeless.as_bytes())
            .unwrap_err()
            .contains("deeper than"));
        assert!(decode_stored::<Value>(b"{\"a\":").is_err());
    }
}
