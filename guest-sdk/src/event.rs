//! What a processor sees of an event besides its value, and what it answers.

use crate::bindings::weft::processor::types as wit;

/// An event header: a string key and raw bytes.
pub use wit::Header;

/// Key, headers and timestamp of the input event being processed.
#[derive(Debug, Clone, Copy)]
pub struct EventMeta<'a> {
    key: Option<&'a [u8]>,
    headers: &'a [Header],
    timestamp: Option<i64>,
}

impl<'a> EventMeta<'a> {
    /// Metadata as the host passes it; public so processors can be unit-tested directly.
    pub fn new(key: Option<&'a [u8]>, headers: &'a [Header], timestamp: Option<i64>) -> Self {
        Self {
            key,
            headers,
            timestamp,
        }
    }

    /// Metadata of an event with no key, headers or timestamp.
    pub fn empty() -> EventMeta<'static> {
        EventMeta {
            key: None,
            headers: &[],
            timestamp: None,
        }
    }

    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// Milliseconds since the Unix epoch, if the source knew it.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    pub fn headers(&self) -> &'a [Header] {
        self.headers
    }

    /// The value of the first header named `key`.
    pub fn header(&self, key: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_slice())
    }
}

/// One output event whose key, headers or timestamp differ from the input event's.
///
/// Whatever is not overridden is carried over from the input event.
#[derive(Debug, Clone)]
pub struct Event<T> {
    pub(crate) value: T,
    pub(crate) key: Option<Option<Vec<u8>>>,
    pub(crate) headers: Option<Vec<Header>>,
    pub(crate) set_headers: Vec<Header>,
    pub(crate) timestamp: Option<Option<i64>>,
}

impl<T> Event<T> {
    /// An output event carrying the input event's key, headers and timestamp.
    pub fn new(value: T) -> Self {
        Self {
            value,
            key: None,
            headers: None,
            set_headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Replaces the key (`None` removes it).
    pub fn with_key(mut self, key: Option<Vec<u8>>) -> Self {
        self.key = Some(key);
        self
    }

    /// Replaces the timestamp (`None` removes it).
    pub fn with_timestamp(mut self, timestamp: Option<i64>) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Replaces all headers.
    pub fn with_headers(mut self, headers: Vec<Header>) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Sets one header, replacing any header of the same key.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.set_headers.push(Header {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    pub(crate) fn headers_from(&mut self, input: &[Header]) -> Vec<Header> {
        let mut headers = self.headers.take().unwrap_or_else(|| input.to_vec());
        for header in self.set_headers.drain(..) {
            headers.retain(|h| h.key != header.key);
            headers.push(header);
        }
        headers
    }
}

impl<T> From<T> for Event<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

/// What a typed processor made of one input event.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    /// Emit one event; key, headers and timestamp are the input event's.
    Emit(T),
    /// Emit several events, each with the input event's key, headers and timestamp.
    EmitMany(Vec<T>),
    /// Emit events with their own key, headers or timestamp.
    EmitEvents(Vec<Event<T>>),
    /// Emit nothing: the event is filtered out (not an error).
    Drop,
    /// The event cannot be processed: it goes to the dead-letter sink with this reason.
    Reject(String),
}

impl<T> Outcome<T> {
    /// Shorthand for [`Outcome::Reject`].
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::Reject(reason.into())
    }
}
